//! Helpers shared by the server's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use cityos_server::{AppState, Served, UiConfig, import_feed};
use cityos_store::{Store, testing};

/// A served generated city on its own store, and its network.
pub async fn city(dir: &std::path::Path) -> (AppState, std::sync::Arc<cityos_transit::Network>) {
    let feed = dir.join("city");
    if !feed.exists() {
        cityos_sim::generate_city(&cityos_sim::CityOptions::default(), &feed).unwrap();
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
