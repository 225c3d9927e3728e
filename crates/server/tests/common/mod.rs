//! Helpers shared by the server's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use cityos_server::{AppState, Served, UiConfig, import_feed};
use cityos_store::{Store, testing};

/// A served generated city on its own store, and its network.
pub async fn city(dir: &std::path::Path) -> (AppState, std::sync::Arc<cityos_transit::Network>) {
    let feed = dir.join("city");
    if !feed.exists() {
        // Tests here run on the clock: the timetable covers today.
        cityos_sim::generate_city(&cityos_sim::CityOptions::starting_yesterday(), &feed).unwrap();
    }
    let store = Store::open(&testing::sqlite_path(
        &dir.join(format!("db-{}", rand_suffix())),
    ))
    .await
    .unwrap();
    let state = AppState::new(store.clone(), UiConfig::default());
    let imported = import_feed(&store, feed, "test", |_| {}).await.unwrap();
    let network = std::sync::Arc::new(imported.network);
    state.network.set(
        Served {
            id: imported.record.id,
            network: network.clone(),
        },
        &state.metrics,
    );
    (state, network)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The ids of the vehicles in `state`'s live snapshot, sorted.
pub fn vehicle_ids(state: &AppState) -> Vec<String> {
    let mut ids: Vec<String> = state
        .live
        .snapshot()
        .vehicles
        .iter()
        .map(|v| v.vehicle_id.clone())
        .collect();
    ids.sort();
    ids
}

/// A new API key named `name` with `role`.
pub async fn api_key(state: &AppState, name: &str, role: cityos_accounts::Role) -> String {
    state
        .accounts
        .create_api_key(name, role, None)
        .await
        .unwrap()
        .1
}

/// The embedded broker on a free loopback port, started for `state`, and that port.
pub async fn embedded_mqtt(state: &AppState) -> (cityos_server::mqtt::MqttRunning, u16) {
    let mqtt = cityos_server::mqtt::start(
        state,
        cityos_server::mqtt::MqttSource::Embedded("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let port = mqtt.broker_addr().unwrap().port();
    (mqtt, port)
}
