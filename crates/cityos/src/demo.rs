//! The demo's simulated riders: each gets a card, tops it up, and taps on
//! and off the city's buses and subway through the same card desk that real
//! validators use, as the day's clock reaches each tap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cityos_card::{Answer, CardDesk, Request};
use cityos_fare::{Category, Mode, TapKind};
use cityos_transit::Network;

/// Riders simulated per day.
pub const RIDERS: usize = 3000;

/// Runs the riders of today (and of each following day) forever.
pub async fn run_riders(desk: CardDesk, network: Arc<Network>, seed: u64) {
    let mut cards: HashMap<usize, i64> = HashMap::new();
    loop {
        let tz = network.timezone().clone();
        let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
        let plan = {
            let network = network.clone();
            match tokio::task::spawn_blocking(move || {
                cityos_sim::riders::plan_day(&network, today, RIDERS, seed)
            })
            .await
            {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::warn!("rider simulation failed: {e}");
                    return;
                }
            }
        };
        tracing::info!(taps = plan.len(), %today, "simulated riders planned");
        let day_code = i64::from(today.year()) * 10_000
            + i64::from(today.month()) * 100
            + i64::from(today.day());
        let mut next = 0;
        while next < plan.len() {
            let now = jiff::Timestamp::now().to_zoned(tz.clone()).datetime();
            if now.date() != today {
                break;
            }
            let due = plan[next..].partition_point(|t| t.at <= now);
            let mut requests = Vec::with_capacity(due);
            for (k, tap) in plan[next..next + due].iter().enumerate() {
                let Some(card_id) = card_for(&desk, &mut cards, tap.rider, day_code).await else {
                    continue;
                };
                let (validator, mode) = match tap.mode {
                    "subway" => (format!("gate-{}", tap.stop_id), Mode::Subway),
                    other => (format!("bus-{}", tap.trip_id), mode_named(other)),
                };
                let counter = day_code * 1_000_000 + (next + k) as i64;
                let request = Request::Tap {
                    card_id,
                    validator_id: validator.clone(),
                    counter,
                    direction: if tap.tap_in {
                        TapKind::In
                    } else {
                        TapKind::Out
                    },
                    stop_id: tap.stop_id.clone(),
                    route_id: tap.route_id.clone(),
                    mode,
                    vehicle_id: Some(tap.trip_id.clone()),
                    at: tap.at,
                };
                requests.push((format!("tap:{validator}:{counter}"), request));
            }
            // In time order, so each card's taps are priced as they happened.
            for answer in desk.submit_many(requests).await {
                if let Err(e) = answer {
                    tracing::debug!("simulated tap not taken: {e}");
                }
            }
            next += due;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Wait for the next day.
        while jiff::Timestamp::now().to_zoned(tz.clone()).date() == today {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

/// The rider's card, issued and topped up for the day on first use.
async fn card_for(
    desk: &CardDesk,
    cards: &mut HashMap<usize, i64>,
    rider: usize,
    day_code: i64,
) -> Option<i64> {
    if let Some(&card) = cards.get(&rider) {
        return Some(card);
    }
    let category = match rider % 10 {
        0 => Category::Youth,
        1 => Category::Child,
        _ => Category::Adult,
    };
    let Ok(Answer::Issued { card_id, .. }) = desk
        .submit(
            &format!("demo-card-{rider}"),
            Request::Issue {
                category,
                registered_to: None,
            },
        )
        .await
    else {
        return None;
    };
    let _ = desk
        .submit(
            &format!("demo-top-{day_code}-{rider}"),
            Request::TopUp {
                card_id,
                amount: 20_000,
            },
        )
        .await;
    cards.insert(rider, card_id);
    Some(card_id)
}

fn mode_named(name: &str) -> Mode {
    match name {
        "branch" => Mode::Branch,
        "circular" => Mode::Circular,
        "night" => Mode::Night,
        _ => Mode::Trunk,
    }
}

/// Seconds between two positions of one simulated vehicle.
const REPORT_EVERY_S: i64 = 10;

/// Runs the simulated fleet of today (and of each following day) forever:
/// every vehicle on a trip publishes its position every
/// [`REPORT_EVERY_S`] seconds to the broker at `broker`, as a GTFS-realtime
/// `FeedMessage`, logged in with its own API key exactly as a real bus's
/// on-board unit would. Keys are kept in `keys_file` so restarts reuse them.
pub async fn run_vehicles(
    accounts: cityos_accounts::Accounts,
    broker: std::net::SocketAddr,
    network: Arc<Network>,
    seed: u64,
    keys_file: std::path::PathBuf,
) {
    use cityos_mqtt::{DeviceClient, DeviceRole};
    use cityos_sim::vehicles::{Fleet, FleetOptions};
    use prost::Message as _;

    let mut keys: HashMap<String, String> = std::fs::read_to_string(&keys_file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut online: HashMap<u32, (DeviceClient, i64)> = HashMap::new();
    let mut fixes = Vec::new();
    let tz = network.timezone().clone();
    loop {
        let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
        let fleet = {
            let network = network.clone();
            let options = FleetOptions {
                seed,
                ..FleetOptions::new(today)
            };
            match tokio::task::spawn_blocking(move || Fleet::plan(&network, &options)).await {
                Ok(fleet) => fleet,
                Err(e) => {
                    tracing::warn!("vehicle simulation failed: {e}");
                    return;
                }
            }
        };
        tracing::info!(vehicles = fleet.vehicle_count(), trips = fleet.trip_count(), %today, "simulated fleet planned");
        // Keys for every vehicle of the day, made once and kept.
        let mut new_keys = false;
        for v in 0..fleet.vehicle_count() as u32 {
            let id = fleet.vehicle_id(v);
            if keys.contains_key(id) {
                continue;
            }
            match accounts
                .create_api_key(
                    &format!("vehicle:{id}"),
                    cityos_accounts::Role::TransitOperator,
                    None,
                )
                .await
            {
                Ok((_, key)) => {
                    keys.insert(id.to_owned(), key);
                    new_keys = true;
                }
                Err(e) => tracing::warn!(vehicle = id, "cannot issue a key: {e}"),
            }
        }
        if new_keys && let Ok(text) = serde_json::to_string(&keys) {
            let _ = std::fs::write(&keys_file, text);
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while jiff::Timestamp::now().to_zoned(tz.clone()).date() == today {
            tick.tick().await;
            let now = jiff::Timestamp::now().as_second();
            fleet.fixes_at(now, &mut fixes);
            for fix in &fixes {
                // Each vehicle reports at its own second, as real fleets spread out.
                if (now + i64::from(fix.vehicle)) % REPORT_EVERY_S != 0 {
                    continue;
                }
                let id = fleet.vehicle_id(fix.vehicle);
                if let std::collections::hash_map::Entry::Vacant(slot) = online.entry(fix.vehicle) {
                    let Some(key) = keys.get(id) else { continue };
                    let host = broker.ip().to_string();
                    match DeviceClient::connect(&host, broker.port(), DeviceRole::Vehicle, id, key)
                        .await
                    {
                        Ok(client) => {
                            slot.insert((client, now));
                        }
                        Err(e) => {
                            tracing::debug!(vehicle = id, "cannot connect: {e}");
                            continue;
                        }
                    }
                }
                let Some((client, seen)) = online.get_mut(&fix.vehicle) else {
                    continue;
                };
                *seen = now;
                let position = cityos_realtime::PositionRecord {
                    vehicle_id: id.to_owned(),
                    trip_id: network.data().trips.ids.id(fix.trip).to_owned(),
                    start_date: Some(today),
                    latitude: fix.lat,
                    longitude: fix.lon,
                    bearing: Some(fix.bearing),
                    speed: Some(fix.speed),
                    timestamp: Some(fix.time),
                    ..Default::default()
                };
                let payload =
                    cityos_realtime::decode::positions_to_feed(&[position], now).encode_to_vec();
                if let Err(e) = client.publish(payload).await {
                    tracing::debug!(vehicle = id, "cannot publish: {e}");
                }
            }
            // Vehicles off duty for ten minutes hang up.
            let idle: Vec<u32> = online
                .iter()
                .filter(|(_, (_, seen))| now - seen > 600)
                .map(|(v, _)| *v)
                .collect();
            for v in idle {
                if let Some((client, _)) = online.remove(&v) {
                    let _ = client.close().await;
                }
            }
        }
    }
}
