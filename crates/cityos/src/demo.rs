//! The demo's simulated city in motion, through the same doors real
//! devices use: the fleet's vehicles publish their positions, and the
//! riders' taps reach the card desk from validators on the buses and at the
//! subway gates, all over MQTT, each device with its own API key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cityos_accounts::{Accounts, Role};
use cityos_card::{Answer, CardDesk, Request};
use cityos_fare::Category;
use cityos_mqtt::{DeviceClient, DeviceRole};
use cityos_sim::vehicles::device_id;
use cityos_transit::Network;
use tokio::sync::Mutex;

/// The demo's devices' API keys by key name (`vehicle:{id}`,
/// `validator:{id}`), issued once and kept in a file so restarts reuse them.
pub struct DeviceKeys {
    accounts: Accounts,
    file: PathBuf,
    keys: HashMap<String, String>,
}

impl DeviceKeys {
    /// The keys kept in `file`, issuing new ones through `accounts`.
    pub fn open(accounts: Accounts, file: PathBuf) -> Arc<Mutex<DeviceKeys>> {
        let keys = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Arc::new(Mutex::new(DeviceKeys {
            accounts,
            file,
            keys,
        }))
    }

    /// The key of device `id` with role `role`, issued if it has none.
    async fn key(&mut self, role: DeviceRole, id: &str) -> Option<String> {
        let name = format!("{}:{id}", role.as_str());
        if let Some(key) = self.keys.get(&name) {
            return Some(key.clone());
        }
        match self
            .accounts
            .create_api_key(&name, Role::TransitOperator, None)
            .await
        {
            Ok((_, key)) => {
                self.keys.insert(name, key.clone());
                if let Ok(text) = serde_json::to_string(&self.keys) {
                    let _ = std::fs::write(&self.file, text);
                }
                Some(key)
            }
            Err(e) => {
                tracing::warn!(device = id, "cannot issue a key: {e}");
                None
            }
        }
    }
}

/// Riders simulated per day.
pub const RIDERS: usize = 3000;

/// Runs the riders of today (with yesterday's riding its night buses past
/// midnight, and then of each following day) forever. Cards are
/// issued and topped up at the desk (a ticket office); every tap goes
/// through the validator of its bus (one per vehicle) or subway gate, over
/// MQTT to the broker at `broker`, and its answer comes back on the
/// validator's answer topic once durable.
pub async fn run_riders(
    desk: CardDesk,
    network: Arc<Network>,
    seed: u64,
    broker: SocketAddr,
    keys: Arc<Mutex<DeviceKeys>>,
) {
    let mut cards: HashMap<usize, i64> = HashMap::new();
    let mut validators: HashMap<String, DeviceClient> = HashMap::new();
    let tz = network.timezone().clone();
    loop {
        let now = jiff::Timestamp::now().to_zoned(tz.clone()).datetime();
        let today = now.date();
        // Today's riders, and yesterday's still to ride its night buses
        // after midnight; each tap numbered on its day's validator counter.
        let mut plan: Vec<(i64, cityos_sim::riders::SimTap)> = Vec::new();
        for date in cityos_sim::service_days_running_on(today) {
            let all = date == today;
            let network = network.clone();
            let day = match tokio::task::spawn_blocking(move || {
                cityos_sim::riders::plan_day(&network, date, RIDERS, seed)
            })
            .await
            {
                Ok(day) => day,
                Err(e) => {
                    tracing::warn!("rider simulation failed: {e}");
                    return;
                }
            };
            let day_code = i64::from(date.year()) * 10_000
                + i64::from(date.month()) * 100
                + i64::from(date.day());
            // Of yesterday's, the taps still to come, and the tap in that
            // began a ride whose tap out is still to come (a repeat of a
            // tap already sent is answered as before).
            let mut keep: Vec<bool> = day.iter().map(|tap| all || tap.at > now).collect();
            let mut last_tap_of: HashMap<usize, usize> = HashMap::new();
            for (k, tap) in day.iter().enumerate() {
                if keep[k]
                    && !tap.tap_in
                    && let Some(&prev) = last_tap_of.get(&tap.rider)
                    && day[prev].tap_in
                {
                    keep[prev] = true;
                }
                last_tap_of.insert(tap.rider, k);
            }
            plan.extend(
                day.into_iter()
                    .enumerate()
                    .filter(|&(k, _)| keep[k])
                    .map(|(k, tap)| (day_code * 1_000_000 + k as i64, tap)),
            );
        }
        plan.sort_by_key(|(_, tap)| tap.at);
        tracing::info!(taps = plan.len(), %today, "simulated riders planned");
        let mut next = 0;
        while next < plan.len() {
            let now = jiff::Timestamp::now().to_zoned(tz.clone()).datetime();
            if now.date() != today {
                break;
            }
            let due = plan[next..].partition_point(|(_, t)| t.at <= now);
            for (counter, tap) in &plan[next..next + due] {
                let day_code = counter / 1_000_000;
                let Some(card_id) = card_for(&desk, &mut cards, tap.rider, day_code).await else {
                    continue;
                };
                let validator = match tap.mode {
                    "subway" => device_id("gate", &tap.stop_id),
                    _ => device_id("val", &vehicle_of(&network, &tap.trip_id)),
                };
                if !validators.contains_key(&validator) {
                    let Some(key) = keys
                        .lock()
                        .await
                        .key(DeviceRole::Validator, &validator)
                        .await
                    else {
                        continue;
                    };
                    match DeviceClient::connect_validator(
                        &broker.ip().to_string(),
                        broker.port(),
                        &validator,
                        &key,
                    )
                    .await
                    {
                        Ok((client, answers)) => {
                            tokio::spawn(count_answers(validator.clone(), answers));
                            validators.insert(validator.clone(), client);
                        }
                        Err(e) => {
                            tracing::debug!(%validator, "cannot connect: {e}");
                            continue;
                        }
                    }
                }
                let body = serde_json::json!({
                    "card_id": card_id,
                    "counter": counter,
                    "direction": if tap.tap_in { "in" } else { "out" },
                    "stop_id": tap.stop_id,
                    "route_id": tap.route_id,
                    "mode": tap.mode,
                    "vehicle_id": tap.trip_id,
                    "at": tap.at.to_string(),
                });
                if let Some(client) = validators.get(&validator)
                    && let Err(e) = client.publish(body.to_string().into_bytes()).await
                {
                    tracing::debug!(%validator, "cannot publish a tap: {e}");
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

/// The vehicle that drives `trip_id`: its block, or the trip itself.
fn vehicle_of(network: &Network, trip_id: &str) -> String {
    let data = network.data();
    data.trips
        .ids
        .get(trip_id)
        .and_then(|t| data.string(data.trips.block[t as usize]))
        .unwrap_or(trip_id)
        .to_owned()
}

/// Reads a validator's answers, logging refusals (a simulated rider with
/// too little money is refused as a real one would be).
async fn count_answers(validator: String, mut answers: tokio::sync::mpsc::Receiver<Vec<u8>>) {
    while let Some(answer) = answers.recv().await {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&answer) else {
            continue;
        };
        if value["result"] != "tap_accepted" {
            tracing::debug!(%validator, answer = %value, "simulated tap not accepted");
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

/// Seconds between two positions of one simulated vehicle.
const REPORT_EVERY_S: i64 = 10;

/// Runs the simulated fleet of today (with yesterday's night buses, and then of each following day) forever:
/// every vehicle on a trip publishes its position every
/// [`REPORT_EVERY_S`] seconds to the broker at `broker`, as a GTFS-realtime
/// `FeedMessage`, logged in with its own API key exactly as a real bus's
/// on-board unit would.
pub async fn run_vehicles(
    broker: SocketAddr,
    network: Arc<Network>,
    seed: u64,
    keys: Arc<Mutex<DeviceKeys>>,
) {
    use cityos_sim::vehicles::{Fleet, FleetOptions};
    use prost::Message as _;

    let mut online: HashMap<String, (DeviceClient, i64)> = HashMap::new();
    let mut fixes = Vec::new();
    let tz = network.timezone().clone();
    loop {
        let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
        // Yesterday's service day too: its night buses run past midnight
        // (GTFS times after 24:00), until today's first buses start.
        let mut fleets = Vec::new();
        for date in cityos_sim::service_days_running_on(today) {
            let network = network.clone();
            let options = FleetOptions {
                seed,
                ..FleetOptions::new(date)
            };
            match tokio::task::spawn_blocking(move || Fleet::plan(&network, &options)).await {
                Ok(fleet) => fleets.push((date, fleet)),
                Err(e) => {
                    tracing::warn!("vehicle simulation failed: {e}");
                    return;
                }
            }
        }
        let (_, fleet) = &fleets[fleets.len() - 1];
        tracing::info!(vehicles = fleet.vehicle_count(), trips = fleet.trip_count(), %today, "simulated fleet planned");
        // Keys for every vehicle of the two days, made once and kept.
        let mut day_keys = HashMap::new();
        {
            let mut keys = keys.lock().await;
            for (_, fleet) in &fleets {
                for v in 0..fleet.vehicle_count() as u32 {
                    let id = fleet.vehicle_id(v);
                    if let Some(key) = keys.key(DeviceRole::Vehicle, id).await {
                        day_keys.insert(id.to_owned(), key);
                    }
                }
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while jiff::Timestamp::now().to_zoned(tz.clone()).date() == today {
            tick.tick().await;
            let now = jiff::Timestamp::now().as_second();
            for (date, fleet) in &fleets {
                fleet.fixes_at(now, &mut fixes);
                for fix in &fixes {
                    // Each vehicle reports at its own second, as real fleets spread out.
                    if (now + i64::from(fix.vehicle)) % REPORT_EVERY_S != 0 {
                        continue;
                    }
                    let id = fleet.vehicle_id(fix.vehicle);
                    let Some(key) = day_keys.get(id) else {
                        continue;
                    };
                    if !online.contains_key(id) {
                        let host = broker.ip().to_string();
                        match DeviceClient::connect(
                            &host,
                            broker.port(),
                            DeviceRole::Vehicle,
                            id,
                            key,
                        )
                        .await
                        {
                            Ok(client) => {
                                online.insert(id.to_owned(), (client, now));
                            }
                            Err(e) => {
                                tracing::debug!(vehicle = id, "cannot connect: {e}");
                                continue;
                            }
                        }
                    }
                    let Some(client) = online.get_mut(id) else {
                        continue;
                    };
                    client.1 = now;
                    let position = cityos_realtime::PositionRecord {
                        vehicle_id: id.to_owned(),
                        trip_id: network.data().trips.ids.id(fix.trip).to_owned(),
                        start_date: Some(*date),
                        latitude: fix.lat,
                        longitude: fix.lon,
                        bearing: Some(fix.bearing),
                        speed: Some(fix.speed),
                        timestamp: Some(fix.time),
                        ..Default::default()
                    };
                    let payload = cityos_realtime::decode::positions_to_feed(&[position], now)
                        .encode_to_vec();
                    if let Err(e) = client.0.publish(payload).await {
                        tracing::debug!(vehicle = id, "cannot publish: {e}");
                    }
                }
            }
            // Vehicles off duty for ten minutes hang up.
            let idle: Vec<String> = online
                .iter()
                .filter(|(_, (_, seen))| now - seen > 600)
                .map(|(v, _)| v.clone())
                .collect();
            for v in idle {
                if let Some((client, _)) = online.remove(&v) {
                    let _ = client.close().await;
                }
            }
        }
    }
}

/// Complaints the demo's citizens file when it starts, so the map has some at once.
pub const FIRST_COMPLAINTS: usize = 40;
/// Then one every this many seconds.
const COMPLAINT_EVERY: Duration = Duration::from_secs(15);

/// The demo's citizens: they file complaints near the city's stops through the
/// complaint desk, and the city's staff acknowledge and resolve some of them.
pub async fn run_citizens(desk: cityos_civic::Desk, network: Arc<Network>, seed: u64) {
    let d = network.data();
    let places: Vec<(f64, f64)> = (0..d.stops.len())
        .map(|s| (d.stops.lat[s], d.stops.lon[s]))
        .filter(|&p| p.0.is_finite() && p.1.is_finite() && desk.catalog().covers(p))
        .collect();
    if places.is_empty() {
        tracing::warn!("no stop lies inside the complaint desk's city: no demo complaints");
        return;
    }
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: usize| {
        // xorshift64: deterministic per seed, and no dependency for a demo.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n.max(1) as u64) as usize
    };
    let staff = cityos_civic::Actor::Staff("demo-staff@cityos.local".into());
    let mut filed = Vec::new();
    for n in 0.. {
        let (lat, lon) = places[next(places.len())];
        // Within about 30 m of the stop, so some complaints land on each other's duplicates.
        let jitter = |k: usize| (k as f64 - 50.0) * 0.000_006;
        let at = (lat + jitter(next(100)), lon + jitter(next(100)));
        let (body, description) = DEMO_COMPLAINTS[next(DEMO_COMPLAINTS.len())];
        // A time in a form ("{now}"): the moment of filing, in the city's zone.
        let now = jiff::Zoned::now()
            .with_time_zone(network.timezone().clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace('+', "%2B");
        let form = format!(
            "{}&lat={}&long={}&description={description}",
            body.replace("{now}", &now),
            at.0,
            at.1
        );
        let filing = cityos_civic::form::decode(form.as_bytes())
            .and_then(|raw| cityos_civic::form::validate(&raw, desk.catalog()));
        match filing {
            Ok(filing) => match desk.file(filing, None, None).await {
                Ok(f) => filed.push(f.complaint.id),
                Err(e) => tracing::debug!("demo complaint not filed: {e}"),
            },
            Err(e) => tracing::warn!("demo complaint is not valid: {e}"),
        }
        // Staff take up an older complaint now and then.
        if n % 3 == 2 && !filed.is_empty() {
            let id = filed[next(filed.len())];
            let status = [
                cityos_civic::Status::Acknowledged,
                cityos_civic::Status::InProgress,
                cityos_civic::Status::Resolved,
            ][next(3)];
            let update = cityos_civic::Update {
                status: Some(status),
                text: "현장 확인 중입니다. / We are on it.".into(),
                public: true,
            };
            if let Err(e) = desk.update(id, &staff, update).await {
                tracing::debug!("demo update refused: {e}");
            }
        }
        if n >= FIRST_COMPLAINTS {
            tokio::time::sleep(COMPLAINT_EVERY).await;
        }
    }
}

/// What the demo's citizens complain about: an Open311 form (without place;
/// `{now}` is the moment of filing) and a description.
const DEMO_COMPLAINTS: &[(&str, &str)] = &[
    (
        "service_code=pothole&attribute[lane]=car_lane&attribute[size_cm]=40",
        "도로에+큰+구멍이+있어요",
    ),
    (
        "service_code=streetlight&attribute[problems]=out",
        "가로등이+꺼져+있습니다",
    ),
    (
        "service_code=illegal_parking&attribute[seen_at]={now}",
        "버스정류장+앞+불법주차",
    ),
    ("service_code=trash", "Rubbish+bags+left+by+the+bus+stop"),
    ("service_code=graffiti", "Graffiti+on+the+shelter"),
];
