//! The timetable: service calendars, headways by time of day, running times
//! and vehicle blocks.

use crate::date;
use crate::network::{Headways, Kind, Network, Pattern};
use crate::rng::Rng;

/// Seconds in an hour.
const H: u32 = 3600;
/// Minutes in seconds.
const MIN: u32 = 60;
/// Key of the departure streams.
const TAG_DEPARTURES: u64 = 0x6465_7073;

/// Which days a service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayType {
    Weekday,
    Saturday,
    /// Sundays and public holidays.
    Sunday,
}

/// A row of calendar.txt.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub id: String,
    pub day: DayType,
    /// Which timetable period of the year it belongs to.
    pub period: u32,
    /// First and last day (day numbers), inclusive.
    pub start: i64,
    pub end: i64,
}

/// A row of calendar_dates.txt.
#[derive(Debug, Clone)]
pub(crate) struct CalendarDate {
    pub service: usize,
    pub date: i64,
    /// 1 = added, 2 = removed.
    pub exception: u8,
}

/// The year from `start` to `end` split into `periods` timetables, each
/// with its weekday, Saturday and Sunday service.
pub(crate) fn services(start: i64, end: i64, periods: u32) -> Vec<Service> {
    let days = end - start + 1;
    let p = i64::from(periods);
    let mut out = Vec::with_capacity(3 * periods as usize);
    for k in 0..p {
        let (s, e) = (start + k * days / p, start + (k + 1) * days / p - 1);
        for (day, code) in [
            (DayType::Weekday, "WD"),
            (DayType::Saturday, "SA"),
            (DayType::Sunday, "SU"),
        ] {
            let id = if periods == 1 {
                code.to_owned()
            } else {
                format!("{code}{:02}", k + 1)
            };
            out.push(Service {
                id,
                day,
                period: k as u32,
                start: s,
                end: e,
            });
        }
    }
    out
}

/// Public holidays run the Sunday timetable instead of the usual one.
pub(crate) fn holiday_exceptions(services: &[Service]) -> Vec<CalendarDate> {
    let (Some(first), Some(last)) = (services.first(), services.last()) else {
        return Vec::new();
    };
    let (start, end) = (first.start, last.end);
    let (y0, y1) = (date::civil_from_days(start).0, date::civil_from_days(end).0);
    let mut out = Vec::new();
    for year in y0..=y1 {
        for (m, d) in date::korean_holidays(year) {
            let z = date::days_from_civil(year, m, d);
            if z < start || z > end {
                continue;
            }
            let replaced = match date::weekday(z) {
                0..=4 => DayType::Weekday,
                5 => DayType::Saturday,
                _ => continue,
            };
            let of_day = |day: DayType| {
                services
                    .iter()
                    .position(|s| s.day == day && s.start <= z && z <= s.end)
            };
            if let (Some(off), Some(on)) = (of_day(replaced), of_day(DayType::Sunday)) {
                out.push(CalendarDate {
                    service: off,
                    date: z,
                    exception: 2,
                });
                out.push(CalendarDate {
                    service: on,
                    date: z,
                    exception: 1,
                });
            }
        }
    }
    out
}

fn is_peak(day: DayType, hour: f64) -> bool {
    day == DayType::Weekday && ((7.0..9.5).contains(&hour) || (18.0..20.0).contains(&hour))
}

/// Minutes to the next departure at `t` (seconds after midnight).
fn headway_min(kind: Kind, h: &Headways, day: DayType, t: u32) -> f64 {
    let hour = f64::from(t % (24 * H)) / f64::from(H);
    let sunday = if day == DayType::Sunday { 1.15 } else { 1.0 };
    match kind {
        Kind::Night => h.peak * if day == DayType::Weekday { 1.0 } else { 1.1 },
        Kind::Subway => match day {
            _ if is_peak(day, hour) => h.peak,
            _ if !(7.0..22.0).contains(&hour) => h.late,
            DayType::Weekday => h.midday,
            _ => h.weekend * sunday,
        },
        _ => match day {
            DayType::Weekday => match hour {
                x if x < 7.0 => h.midday,
                x if x < 9.0 => h.peak,
                x if x < 18.0 => h.midday,
                x if x < 20.0 => h.peak,
                x if x < 22.0 => h.evening,
                _ => h.late,
            },
            _ if hour >= 22.0 => h.late * sunday,
            _ => h.weekend * sunday,
        },
    }
}

/// Scheduled speed in metres per second at `t`: buses crawl in the rush hours.
fn speed_mps(kind: Kind, day: DayType, t: u32) -> f64 {
    let hour = f64::from(t % (24 * H)) / f64::from(H);
    let kmh = if kind == Kind::Subway {
        34.0
    } else {
        let road = match day {
            DayType::Weekday => match hour {
                x if x < 5.0 => 28.0,
                x if x < 7.0 => 22.0,
                x if x < 9.5 => 14.0,
                x if x < 17.5 => 18.0,
                x if x < 20.0 => 13.0,
                x if x < 22.0 => 20.0,
                _ => 24.0,
            },
            DayType::Saturday => match hour {
                x if x < 5.0 => 28.0,
                x if x < 10.0 => 21.0,
                x if x < 20.0 => 17.0,
                _ => 22.0,
            },
            DayType::Sunday => match hour {
                x if x < 5.0 => 28.0,
                x if x < 22.0 => 20.0,
                _ => 25.0,
            },
        };
        // Trunk routes mostly run in median bus lanes; downtown loops do not.
        road * match kind {
            Kind::Trunk => 1.15,
            Kind::Circular => 0.9,
            _ => 1.0,
        }
    };
    kmh / 3.6
}

/// Seconds spent at an intermediate stop.
fn dwell(kind: Kind, day: DayType, t: u32) -> u32 {
    let peak = is_peak(day, f64::from(t % (24 * H)) / f64::from(H));
    match kind {
        Kind::Subway if peak => 40,
        Kind::Subway => 30,
        Kind::Night => 10,
        _ if peak => 25,
        _ => 15,
    }
}

/// Arrival and departure (seconds after midnight of the service day) at each
/// stop of a trip leaving its first stop at `dep`.
pub(crate) fn trip_times(
    kind: Kind,
    pattern: &Pattern,
    day: DayType,
    dep: u32,
    out: &mut Vec<(u32, u32)>,
) {
    out.clear();
    let n = pattern.dist.len();
    let mut t = dep;
    for i in 0..n {
        if i > 0 {
            let seg = pattern.dist[i] - pattern.dist[i - 1];
            t += ((seg / speed_mps(kind, day, t)).round() as u32).max(1);
        }
        let arr = t;
        if i > 0 && i + 1 < n {
            t += dwell(kind, day, t);
        }
        out.push((arr, t));
    }
}

/// A trip of the timetable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trip {
    pub pattern: u32,
    pub service: u32,
    /// Departure from the first stop, seconds after midnight.
    pub dep: u32,
    /// Vehicle of the route and service that runs it (its block).
    pub vehicle: u32,
    /// Number of the trip within its route, service and direction.
    pub num: u32,
}

/// Calls `f` with each departure of `pattern` on `service`.
///
/// `mult` scales every headway (the night buses' only down). The draws depend only on the seed, route,
/// direction and period, so counting and planning see the same departures.
fn for_each_departure(
    seed: u64,
    net: &Network,
    pattern: usize,
    service: &Service,
    mult: f64,
    mut f: impl FnMut(u32),
) {
    let pat = &net.patterns[pattern];
    let route = &net.routes[pat.route];
    let mut rng = Rng::derive(
        seed,
        &[
            TAG_DEPARTURES,
            pat.route as u64,
            u64::from(pat.direction),
            u64::from(service.period),
        ],
    );
    // Each period's timetable differs a little, so its trips are distinct.
    let period_factor = rng.range_f64(0.95, 1.05);
    let jitter = |rng: &mut Rng, max_min: u32| rng.below(u64::from(max_min * MIN)) as u32;
    let (first, last, min_gap) = match route.kind {
        Kind::Night => (
            23 * H + 30 * MIN + jitter(&mut rng, 10),
            27 * H + 50 * MIN + jitter(&mut rng, 15),
            5 * MIN,
        ),
        Kind::Subway => (
            5 * H + 30 * MIN + jitter(&mut rng, 5),
            23 * H + 45 * MIN + jitter(&mut rng, 10),
            90,
        ),
        // Day buses start at four, as Seoul's first buses do, when the
        // last night buses are finishing: a bus runs at every hour.
        _ => (
            4 * H + jitter(&mut rng, 20),
            23 * H + 30 * MIN + jitter(&mut rng, 15),
            2 * MIN,
        ),
    };
    // A thinner timetable (the small demo city) does not thin the night
    // service: at three in the morning the city still has its N buses.
    let mult = if route.kind == Kind::Night {
        mult.min(1.0)
    } else {
        mult
    };
    let mut t = first;
    let mut prev = (first, 0);
    while t <= last {
        f(t);
        let hw = headway_min(route.kind, &route.headways, service.day, t)
            * f64::from(MIN)
            * mult
            * period_factor;
        let hw = (hw.round() as u32).max(min_gap);
        prev = (t, hw);
        t += hw;
    }
    // The last trip leaves at the advertised last-departure time, as
    // timetables promise one, unless a regular one left just before.
    if last >= prev.0 + (prev.1 / 3).max(min_gap) {
        f(last);
    }
}

/// Number of stop_times rows the timetable would have with headways × `mult`.
pub(crate) fn count_stop_times(seed: u64, net: &Network, services: &[Service], mult: f64) -> u64 {
    let mut total = 0;
    for service in services {
        for (p, pat) in net.patterns.iter().enumerate() {
            let len = pat.stops.len() as u64;
            for_each_departure(seed, net, p, service, mult, |_| total += len);
        }
    }
    total
}

/// The trips, grouped by route and service and in departure order within
/// each; vehicles are chained into blocks greedily at the terminals.
pub(crate) fn plan_trips(seed: u64, net: &Network, services: &[Service], mult: f64) -> Vec<Trip> {
    let mut trips = Vec::new();
    let mut deps: Vec<(u32, usize)> = Vec::new();
    let mut times = Vec::new();
    // (terminal stop, free from) of each vehicle.
    let mut vehicles: Vec<(usize, u32)> = Vec::new();
    for route in &net.routes {
        let layover = match route.kind {
            Kind::Subway => 4 * MIN,
            Kind::Circular => 3 * MIN,
            _ => 5 * MIN,
        };
        for (s, service) in services.iter().enumerate() {
            deps.clear();
            for &p in &route.patterns {
                for_each_departure(seed, net, p, service, mult, |t| deps.push((t, p)));
            }
            deps.sort_unstable();
            vehicles.clear();
            let mut nums = [0u32; 2];
            for &(dep, p) in &deps {
                let pat = &net.patterns[p];
                trip_times(route.kind, pat, service.day, dep, &mut times);
                let end = times.last().map_or(dep, |t| t.0);
                let (from, to) = (pat.stops[0], pat.stops[pat.stops.len() - 1]);
                // The vehicle waiting longest at this terminal, else a new one.
                let vehicle = vehicles
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.0 == from && v.1 <= dep)
                    .min_by_key(|(i, v)| (v.1, *i))
                    .map(|(i, _)| i)
                    .unwrap_or_else(|| {
                        vehicles.push((from, 0));
                        vehicles.len() - 1
                    });
                vehicles[vehicle] = (to, end + layover);
                let dir = usize::from(pat.direction.min(1));
                nums[dir] += 1;
                trips.push(Trip {
                    pattern: p as u32,
                    service: s as u32,
                    dep,
                    vehicle: vehicle as u32,
                    num: nums[dir],
                });
            }
        }
    }
    trips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_the_year_without_gaps() {
        let start = date::days_from_civil(2026, 1, 1);
        let end = date::days_from_civil(2026, 12, 31);
        for periods in [1, 2, 7, 52] {
            let s = services(start, end, periods);
            assert_eq!(s.len(), 3 * periods as usize);
            assert_eq!(s[0].start, start);
            assert_eq!(s[s.len() - 1].end, end);
            for w in s.windows(4) {
                assert_eq!(w[3].start, w[0].end + 1);
                assert!(w[0].end - w[0].start >= 6, "a period holds a whole week");
            }
        }
        // 2026-02-17 (설날, a Tuesday) runs the Sunday timetable.
        let ex = holiday_exceptions(&services(start, end, 1));
        let seollal = date::days_from_civil(2026, 2, 17);
        assert!(
            ex.iter()
                .any(|e| e.date == seollal && e.service == 0 && e.exception == 2)
        );
        assert!(
            ex.iter()
                .any(|e| e.date == seollal && e.service == 2 && e.exception == 1)
        );
    }

    #[test]
    fn headways_follow_the_day() {
        let h = Headways {
            peak: 6.0,
            midday: 11.0,
            evening: 15.0,
            late: 19.0,
            weekend: 12.0,
        };
        let at = |k, d, hh: u32| headway_min(k, &h, d, hh * H);
        assert_eq!(at(Kind::Trunk, DayType::Weekday, 8), 6.0);
        assert_eq!(at(Kind::Trunk, DayType::Weekday, 12), 11.0);
        assert_eq!(at(Kind::Trunk, DayType::Weekday, 21), 15.0);
        assert_eq!(at(Kind::Trunk, DayType::Saturday, 8), 12.0);
        assert!(
            speed_mps(Kind::Branch, DayType::Weekday, 8 * H)
                < speed_mps(Kind::Branch, DayType::Weekday, 12 * H)
        );
    }
}
