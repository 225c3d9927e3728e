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
        let form = format!(
            "{body}&lat={}&long={}&description={description}",
            at.0, at.1
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

/// What the demo's citizens complain about: an Open311 form (without place) and a description.
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
        "service_code=illegal_parking&attribute[seen_at]=2026-03-02T08:00:00%2B09:00",
        "버스정류장+앞+불법주차",
    ),
    ("service_code=trash", "Rubbish+bags+left+by+the+bus+stop"),
    ("service_code=graffiti", "Graffiti+on+the+shelter"),
];
