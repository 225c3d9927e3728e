//! Nothing acknowledged is lost: validators (this test process) send taps to
//! a real `cityos serve` while the server is killed with SIGKILL at random
//! moments, many times over. After each restart every acknowledged tap is in
//! the store exactly once, none was charged twice, and the ledger audit holds.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cityos, run, serve};

const VALIDATORS: usize = 12;
const KILLS: usize = 6;

/// An acknowledged tap: (validator, counter) → the answer received.
type Acknowledged = Arc<Mutex<BTreeMap<(usize, i64), serde_json::Value>>>;

fn kill_hard(mut child: Child) {
    let _ = child.kill(); // SIGKILL: no chance to flush or finish anything
    let _ = child.wait();
}

/// What every simulated validator shares with the test.
#[derive(Clone)]
struct Shared {
    url: Arc<Mutex<String>>,
    key: String,
    route_id: String,
    stops: (String, String),
    acknowledged: Acknowledged,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Sends taps for one validator until told to stop, retrying each until it is acknowledged.
async fn validator(v: usize, card_id: i64, shared: Shared) {
    let Shared {
        url,
        key,
        route_id,
        stops: stop_ids,
        acknowledged,
        stop,
    } = shared;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut counter = 0i64;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let tap_in = counter % 2 == 0;
        let minutes = counter / 2 * 90 + if tap_in { 0 } else { 25 };
        let at =
            jiff::civil::date(2026, 3, 4).at(5, 0, 0, 0) + jiff::SignedDuration::from_mins(minutes);
        let body = serde_json::json!({
            "card_id": card_id, "validator_id": format!("crash-{v}"), "counter": counter,
            "direction": if tap_in { "in" } else { "out" },
            "stop_id": if tap_in { &stop_ids.0 } else { &stop_ids.1 }, "route_id": route_id, "mode": "trunk",
            "at": at.to_string(),
        });
        let base = url.lock().unwrap().clone();
        let reply = client
            .post(format!("{base}/api/v1/taps"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await;
        match reply {
            Ok(r) if r.status().is_success() => {
                let answer: serde_json::Value = r.json().await.unwrap_or_default();
                if answer["result"] == "tap_accepted" {
                    acknowledged.lock().unwrap().insert((v, counter), answer);
                    counter += 1;
                    // A validator taps a few times a second, not flat out: the card's balance must last the test.
                    tokio::time::sleep(Duration::from_millis(8)).await;
                } else {
                    panic!("tap refused: {answer}");
                }
            }
            // Not acknowledged (server down, 503): send the same tap again later.
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Checks the store directly, reading the card journal as plain JSON: each
/// acknowledged tap once, charged once; and the audit.
fn check(data_dir: &Path, acknowledged: &BTreeMap<(usize, i64), serde_json::Value>) {
    let db = rusqlite::Connection::open(data_dir.join("cityos.db")).unwrap();
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    let mut fares: BTreeMap<String, usize> = BTreeMap::new();
    let mut statement = db
        .prepare("SELECT body FROM card_log ORDER BY batch")
        .unwrap();
    let bodies = statement
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap);
    for body in bodies {
        let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        for entry in entries {
            let op_id = entry["op"]["op_id"].as_str().unwrap().to_owned();
            for t in entry["transfers"].as_array().into_iter().flatten() {
                if t["kind"] == "fare" {
                    *fares
                        .entry(t["id"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
            *stored.entry(op_id).or_default() += 1;
        }
    }
    for (v, counter) in acknowledged.keys() {
        let op_id = format!("tap:crash-{v}:{counter}");
        assert_eq!(
            stored.get(&op_id),
            Some(&1),
            "acknowledged tap {op_id} is stored exactly once"
        );
        let charged = fares.get(&format!("{op_id}:fare:0")).copied().unwrap_or(0);
        assert!(charged <= 1, "tap {op_id} charged {charged} times");
    }
    let (ok, out, err) = run(cityos(data_dir).args(["fare", "audit"]));
    assert!(ok, "the audit holds after a crash: {out}{err}");
}

#[test]
fn acknowledged_taps_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("city");
    assert!(
        run(cityos(dir.path())
            .args(["generate-city", "--out"])
            .arg(&feed))
        .0
    );
    assert!(run(cityos(dir.path()).args(["import", "gtfs"]).arg(&feed)).0);
    let (ok, key, err) = run(cityos(dir.path()).args([
        "user",
        "api-key",
        "--name",
        "validators",
        "--role",
        "transit_operator",
    ]));
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    // A trunk route and two of its stops, from the feed itself.
    let (route_id, stops) = {
        let (data, _) = cityos_transit::gtfs::load(&feed, &|_| {}).unwrap();
        let trip = (0..data.trips.len() as u32)
            .find(|&t| {
                data.routes[data.trips.route[t as usize] as usize].kind()
                    == cityos_transit::RouteKind::Trunk
            })
            .unwrap();
        let range = data.trips.stop_time_range(trip);
        let stop = |k: usize| data.stops.ids.id(data.stop_times.stop[k]).to_owned();
        (
            data.route_ids
                .id(data.trips.route[trip as usize])
                .to_owned(),
            (stop(range.start), stop(range.start + 5)),
        )
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut child, first_url) = serve(dir.path());
    let url = Arc::new(Mutex::new(first_url.clone()));
    let client = reqwest::Client::new();
    let cards: Vec<i64> = runtime.block_on(async {
        let mut cards = vec![];
        for v in 0..VALIDATORS {
            let issued: serde_json::Value = client
                .post(format!("{first_url}/api/v1/cards"))
                .bearer_auth(&key)
                .json(&serde_json::json!({"op_id": format!("issue-{v}"), "category": "adult", "anonymous": true}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let card_id = issued["card_id"].as_i64().unwrap();
            let top = client
                .post(format!("{first_url}/api/v1/cards/{card_id}/top-ups"))
                .bearer_auth(&key)
                .json(&serde_json::json!({"op_id": format!("top-{v}"), "amount": 500000}))
                .send()
                .await
                .unwrap();
            assert!(top.status().is_success());
            cards.push(card_id);
        }
        cards
    });

    let acknowledged: Acknowledged = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shared = Shared {
        url: url.clone(),
        key: key.clone(),
        route_id: route_id.clone(),
        stops: stops.clone(),
        acknowledged: acknowledged.clone(),
        stop: stop.clone(),
    };
    let handles: Vec<_> = cards
        .iter()
        .enumerate()
        .map(|(v, &card)| runtime.spawn(validator(v, card, shared.clone())))
        .collect();

    // Kill at pseudo-random moments (a fixed sequence, printed, so a failure can be replayed).
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for round in 0..KILLS {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let wait = Duration::from_millis(300 + (state >> 33) % 900);
        eprintln!("round {round}: killing after {wait:?}");
        std::thread::sleep(wait);
        kill_hard(child);
        let seen = acknowledged.lock().unwrap().clone();
        check(dir.path(), &seen);
        let (next, next_url) = serve(dir.path());
        child = next;
        *url.lock().unwrap() = next_url;
    }
    // Let the validators finish their retries, then stop them and check once more.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    for h in handles {
        let left = deadline.saturating_duration_since(Instant::now());
        runtime
            .block_on(async { tokio::time::timeout(left, h).await })
            .expect("validators stop")
            .unwrap();
    }
    kill_hard(child);
    let seen = acknowledged.lock().unwrap().clone();
    assert!(
        seen.len() > VALIDATORS * 4,
        "the load really ran: {} taps acknowledged",
        seen.len()
    );
    check(dir.path(), &seen);

    // Every acknowledged answer is what the server answers again for the same tap after all the crashes.
    let (child, last_url) = serve(dir.path());
    runtime.block_on(async {
        for ((v, counter), answer) in seen.iter().step_by(7) {
            let again: serde_json::Value = client
                .post(format!("{last_url}/api/v1/taps"))
                .bearer_auth(&key)
                .json(&serde_json::json!({
                    "card_id": cards[*v], "validator_id": format!("crash-{v}"), "counter": counter, "direction": "in",
                    "stop_id": "anything", "route_id": route_id, "mode": "trunk", "at": "2026-03-04T05:00:00",
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(&again, answer, "a repeated counter gets the acknowledged answer");
        }
    });
    kill_hard(child);
}
