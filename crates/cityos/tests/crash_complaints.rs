//! An acknowledged complaint is never lost: citizens' apps (this test process)
//! file complaints over Open311 to a real `cityos serve` while the server is
//! killed with SIGKILL again and again. After each restart every complaint
//! that was answered with an id is in the store under that id, as filed.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cityos, run, serve_with};

const FILERS: usize = 8;
const KILLS: usize = 4;
/// The rate limits would stop one address filing this fast: lift them for the test.
const UNLIMITED: &[(&str, &str)] = &[
    ("CITYOS_COMPLAINTS_PER_ACCOUNT", "100000000"),
    ("CITYOS_COMPLAINTS_PER_ADDRESS", "100000000"),
    ("CITYOS_MQTT_LISTEN", "off"),
];

/// Acknowledged complaints: id → the description sent.
type Acknowledged = Arc<Mutex<BTreeMap<i64, String>>>;

async fn filer(
    n: usize,
    key: String,
    url: Arc<Mutex<String>>,
    acked: Acknowledged,
    stop: Arc<AtomicBool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        let description = format!("crash test filer {n} complaint {k}");
        let lat = format!(
            "{:.6}",
            37.55 + (n as f64) * 0.001 + (k % 50) as f64 * 0.0001
        );
        let form = [
            ("api_key", key.as_str()),
            ("service_code", "graffiti"),
            ("lat", lat.as_str()),
            ("long", "126.98"),
            ("description", description.as_str()),
        ];
        let base = url.lock().unwrap().clone();
        let reply = client
            .post(format!("{base}/open311/v2/requests.json"))
            .form(&form)
            .send()
            .await;
        match reply {
            Ok(r) if r.status().is_success() => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                let id: i64 = body[0]["service_request_id"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let previous = acked.lock().unwrap().insert(id, description);
                assert!(previous.is_none(), "id {id} was given twice");
                k += 1;
            }
            // The server is down or was killed mid-request: nothing was acknowledged, send again.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn check(dir: &std::path::Path, acked: &BTreeMap<i64, String>) {
    let db = rusqlite::Connection::open(dir.join("cityos.db")).unwrap();
    for (id, description) in acked {
        let stored: String = db
            .query_row(
                "SELECT description FROM complaints WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("acknowledged complaint {id} is lost: {e}"));
        assert_eq!(&stored, description, "complaint {id}");
    }
}

#[test]
fn acknowledged_complaints_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, key, err) =
        run(cityos(dir.path()).args(["user", "api-key", "--name", "app", "--role", "citizen"]));
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut child, first) = serve_with(dir.path(), UNLIMITED);
    let url = Arc::new(Mutex::new(first));
    let acked: Acknowledged = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..FILERS)
        .map(|n| {
            runtime.spawn(filer(
                n,
                key.clone(),
                url.clone(),
                acked.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // A fixed, printed schedule, so a failure can be replayed.
    let pauses = [700u64, 1100, 450, 900];
    eprintln!("kill schedule (ms after each start): {pauses:?}");
    for pause in pauses.iter().take(KILLS) {
        std::thread::sleep(Duration::from_millis(*pause));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let snapshot = acked.lock().unwrap().clone();
        check(dir.path(), &snapshot);
        let (next, next_url) = serve_with(dir.path(), UNLIMITED);
        child = next;
        *url.lock().unwrap() = next_url;
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    let all = acked.lock().unwrap().clone();
    assert!(
        all.len() > 100,
        "only {} complaints were acknowledged",
        all.len()
    );
    check(dir.path(), &all);
}
