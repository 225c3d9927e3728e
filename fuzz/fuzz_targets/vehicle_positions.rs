//! The real-time ingest on garbage: arbitrary bytes as a GTFS-realtime feed
//! (the zero-copy reader and prost's decoder), as a positions CSV, and every
//! position decoded fed to the engine on a generated city. Refused or
//! accepted, never a panic.
#![no_main]

use std::sync::OnceLock;

use cityos_realtime::{Config, Engine, decode_vehicle_positions, read_positions_csv};
use cityos_transit::Network;
use libfuzzer_sys::fuzz_target;

fn city() -> &'static Network {
    static CITY: OnceLock<Network> = OnceLock::new();
    CITY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        cityos_sim::generate_city(&cityos_sim::CityOptions::default(), dir.path()).expect("city");
        cityos_transit::load_network(dir.path(), &|_| {}).expect("load").0
    })
}

fuzz_target!(|data: &[u8]| {
    let zero_copy = decode_vehicle_positions(data);
    let _ = cityos_realtime::decode::decode_feed(data);
    if let Ok(feed) = &zero_copy {
        let mut engine = Engine::new(city(), Config::default());
        for p in &feed.positions {
            let now = p.timestamp.unwrap_or(0);
            let _ = engine.ingest(p.view(), now);
            let _ = engine.trip_updates(now);
        }
    }
    if let Ok(csv) = read_positions_csv(data) {
        let mut engine = Engine::new(city(), Config::default());
        for p in &csv.positions {
            let _ = engine.ingest(p.view(), p.timestamp.unwrap_or(0));
        }
    }
});
