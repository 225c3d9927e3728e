//! Simulated riders: who boards which vehicle where, and where they get
//! off, as card taps. The demo sends these taps to the card desk exactly as
//! validators on buses and at subway gates would.

use cityos_transit::network::is_boardable_place;
use cityos_transit::{NONE, Network, RouteKind};
use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp};

use crate::rng::Rng;

/// Share of journeys with a transfer to a second vehicle.
const TRANSFER_SHARE: f64 = 0.35;
/// Longest wait a rider accepts for a departure.
const MAX_WAIT_MINUTES: i64 = 40;

/// One tap of a simulated card.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTap {
    /// Which simulated rider (0-based); the demo maps riders to cards.
    pub rider: usize,
    /// `true` for a tap in, `false` for a tap out.
    pub tap_in: bool,
    /// The stop, or the station for subway gates.
    pub stop_id: String,
    /// The bus route; `None` at subway gates.
    pub route_id: Option<String>,
    /// Fare mode name: `subway`, `trunk`, `branch`, `circular`, `night`.
    pub mode: &'static str,
    /// The vehicle's trip, so validators can be per vehicle.
    pub trip_id: String,
    /// Local time of the city.
    pub at: DateTime,
}

/// Weight of an hour of the day in how many journeys start then (morning and evening peaks).
fn hour_weight(hour: i64) -> f64 {
    match hour {
        7..=8 | 18..=19 => 3.0,
        6 | 9 | 17 | 20 => 1.8,
        10..=16 => 1.0,
        21..=23 => 0.6,
        _ => 0.1,
    }
}

fn mode_of(kind: RouteKind) -> &'static str {
    match kind {
        RouteKind::Subway | RouteKind::Rail | RouteKind::Tram => "subway",
        RouteKind::Branch => "branch",
        RouteKind::Circular => "circular",
        RouteKind::Night => "night",
        _ => "trunk",
    }
}

/// Plans `riders` journeys on `date`, deterministic for a seed; taps come back in time order.
pub fn plan_day(network: &Network, date: Date, riders: usize, seed: u64) -> Vec<SimTap> {
    let d = network.data();
    let places: Vec<u32> = (0..d.stops.len())
        .filter(|&s| is_boardable_place(&d.stops, s))
        .map(|s| s as u32)
        .collect();
    let mut taps = Vec::new();
    if places.is_empty() {
        return taps;
    }
    let total: f64 = (0..24).map(hour_weight).sum();
    for rider in 0..riders {
        let mut rng = Rng::derive(seed, &[u64::from(date.day() as u8), rider as u64]);
        // Pick the hour by weight, then a minute.
        let mut pick = rng.f64() * total;
        let mut hour = 0;
        while hour < 23 && pick >= hour_weight(hour) {
            pick -= hour_weight(hour);
            hour += 1;
        }
        let Some(start) =
            network.instant(date, (hour * 3600 + rng.range_i32(0, 3599) as i64) as u32)
        else {
            continue;
        };
        let origin = places[rng.index(places.len())];
        let Some((leg_taps, arrived_at, arrived_place, route)) =
            ride(network, &mut rng, rider, origin, start, None)
        else {
            continue;
        };
        taps.extend(leg_taps);
        if rng.chance(TRANSFER_SHARE) {
            let walk = arrived_at + SignedDuration::from_mins(i64::from(rng.range_i32(1, 6)));
            if let Some((more, ..)) =
                ride(network, &mut rng, rider, arrived_place, walk, Some(route))
            {
                taps.extend(more);
            }
        }
    }
    taps.sort_by(|a, b| a.at.cmp(&b.at).then(a.rider.cmp(&b.rider)));
    taps
}

/// One leg from `place` after `after`: the tap in, the tap out, when and where it ended, and the route.
fn ride(
    network: &Network,
    rng: &mut Rng,
    rider: usize,
    place: u32,
    after: Timestamp,
    not_route: Option<u32>,
) -> Option<(Vec<SimTap>, Timestamp, u32, u32)> {
    let d = network.data();
    let until = after + SignedDuration::from_mins(MAX_WAIT_MINUTES);
    let departures = network.departures(place, after, until, 12);
    let choice = departures
        .iter()
        .find(|dep| Some(d.trips.route[dep.trip as usize]) != not_route)?;
    let trip = choice.trip;
    let route = d.trips.route[trip as usize];
    let kind = d.routes[route as usize].kind();
    let range = d.trips.stop_time_range(trip);
    let board = choice.stop_time as usize;
    let remaining = range.end - board - 1;
    if remaining == 0 {
        return None;
    }
    let alight = board + 1 + rng.index(remaining.min(14));
    let tz = network.timezone();
    let local = |t: Timestamp| t.to_zoned(tz.clone()).datetime();
    let alight_at = network.instant(choice.service_date, d.stop_times.arrival[alight])?;
    let gate = |stop: u32| {
        let parent = d.stops.parent[stop as usize];
        // Subway validators are at the station's gates, not on the platform.
        if kind == RouteKind::Subway && parent != NONE {
            parent
        } else {
            stop
        }
    };
    let subway = mode_of(kind) == "subway";
    let route_id = (!subway).then(|| d.route_ids.id(route).to_owned());
    let trip_id = d.trips.ids.id(trip).to_owned();
    let board_place = gate(d.stop_times.stop[board]);
    let alight_place = gate(d.stop_times.stop[alight]);
    let taps = vec![
        SimTap {
            rider,
            tap_in: true,
            stop_id: d.stops.ids.id(board_place).to_owned(),
            route_id: route_id.clone(),
            mode: mode_of(kind),
            trip_id: trip_id.clone(),
            at: local(choice.at),
        },
        SimTap {
            rider,
            tap_in: false,
            stop_id: d.stops.ids.id(alight_place).to_owned(),
            route_id,
            mode: mode_of(kind),
            trip_id,
            at: local(alight_at),
        },
    ];
    Some((taps, alight_at, alight_place, route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn riders_tap_in_then_out_on_real_departures_with_peaks() {
        let dir = tempfile::tempdir().unwrap();
        crate::generate_city(&crate::CityOptions::default(), dir.path()).unwrap();
        let (network, _) = cityos_transit::load_network(dir.path(), &|_| {}).unwrap();
        let date = jiff::civil::date(2026, 3, 4);
        let taps = plan_day(&network, date, 400, 1);
        assert!(
            taps.len() >= 600,
            "most riders find a departure: {}",
            taps.len()
        );
        assert_eq!(taps, plan_day(&network, date, 400, 1), "deterministic");
        assert!(taps.windows(2).all(|w| w[0].at <= w[1].at), "in time order");
        for rider in 0..400 {
            let mine: Vec<&SimTap> = taps.iter().filter(|t| t.rider == rider).collect();
            assert!(
                mine.len().is_multiple_of(2)
                    && mine
                        .chunks(2)
                        .all(|p| p[0].tap_in && !p[1].tap_in && p[0].at < p[1].at)
            );
        }
        let peak = taps
            .iter()
            .filter(|t| t.tap_in && (7..9).contains(&t.at.hour()))
            .count();
        let night = taps
            .iter()
            .filter(|t| t.tap_in && (1..3).contains(&t.at.hour()))
            .count();
        assert!(
            peak > 5 * night.max(1),
            "morning peak {peak} vs night {night}"
        );
        assert!(
            taps.iter()
                .any(|t| t.mode == "subway" && t.route_id.is_none()),
            "subway taps are at gates"
        );
        let stations = &network.data().stops;
        assert!(
            taps.iter()
                .filter(|t| t.mode == "subway")
                .all(
                    |t| stations.location_type[stations.ids.get(&t.stop_id).unwrap() as usize] == 1
                )
        );
    }
}
