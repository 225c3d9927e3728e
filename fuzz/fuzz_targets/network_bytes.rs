//! Reading a stored network back from arbitrary bytes: refused or accepted,
//! never a panic, and an accepted network answers queries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"CITYNET1".to_vec();
    bytes.extend_from_slice(data);
    if let Ok(network) = cityos_transit::Network::from_bytes(&bytes) {
        let _ = network.summary();
        let mut out = Vec::new();
        network.stops_nearby_into(37.5, 127.0, 1000.0, 10, &mut out);
        let _ = network.search_stops("a");
        let day = jiff::civil::date(2026, 3, 2);
        if let (Some(a), Some(b)) = (network.instant(day, 0), network.instant(day, 30 * 3600)) {
            for stop in 0..network.data().stops.len().min(50) as u32 {
                let _ = network.departures(stop, a, b, 10);
            }
        }
    }
});
