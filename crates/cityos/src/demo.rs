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
