//! Prints one WMATA trip's pings, stops and detected arrivals, for debugging.
//!
//! `cargo run --release -p cityos-realtime --example wmata_trace -- TRIP_ID`

use std::path::Path;

use cityos_realtime::{Config, Engine, read_positions_csv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/avl/wmata-vehiclepositions-2026-02-16");
    let trip_id = std::env::args().nth(1).unwrap_or_default();
    let (network, _) =
        cityos_transit::load_network(&dir.join("wmata_gtfs_C53_D40_D96.zip"), &|_| {})?;
    let mut positions =
        read_positions_csv(std::fs::File::open(dir.join("wmata_gtfsrt_021626.csv"))?)?.positions;
    positions.sort_by_key(|p| p.timestamp);
    let mut engine = Engine::new(&network, Config::default());
    let Some(trip) = network.data().trips.ids.get(&trip_id) else {
        eprintln!("no trip {trip_id}");
        return Ok(());
    };
    let data = network.data();
    let range = data.trips.stop_time_range(trip);
    let dist = engine
        .index()
        .stop_distances(trip)
        .map(<[f32]>::to_vec)
        .unwrap_or_default();
    for (i, st) in range.clone().enumerate() {
        let s = data.stop_times.stop[st] as usize;
        println!(
            "stop {i:>3} {:>8} d={:>8.1} arr={} dep={} tp={} {}",
            data.stops.ids.id(s as u32),
            dist[i],
            cityos_transit::time::format_time(data.stop_times.arrival[st]),
            cityos_transit::time::format_time(data.stop_times.departure[st]),
            data.stop_times.flags[st] & 0x10 != 0,
            data.stops.names[s]
        );
    }
    for p in &positions {
        let t = p.timestamp.unwrap_or_default();
        let result = engine.ingest(p.view(), t);
        let events: Vec<String> = engine
            .drain_events()
            .filter(|e| e.trip == trip)
            .map(|e| {
                format!(
                    "{:?}@{} {:.0}{}",
                    e.kind,
                    e.stop_index,
                    e.time,
                    if e.observed { "" } else { "?" }
                )
            })
            .collect();
        if p.trip_id == trip_id {
            let local = jiff::Timestamp::from_second(t)?.to_zoned(network.timezone().clone());
            match result {
                Ok(a) => {
                    let delay = engine
                        .runs(t)
                        .find(|r| r.trip == trip)
                        .map_or(f64::NAN, |r| r.delay_s);
                    println!(
                        "{} t={t} {} d={:>8.1} off={:>5.1} delay={:>6.0} speed={:?} status={:?} seq={:?} {}",
                        p.vehicle_id,
                        local.strftime("%H:%M:%S"),
                        a.distance_m,
                        a.offset_m,
                        delay,
                        p.speed,
                        p.current_status,
                        p.current_stop_sequence,
                        events.join(" ")
                    )
                }
                Err(e) => println!(
                    "{} t={t} {} refused: {e}",
                    p.vehicle_id,
                    local.strftime("%H:%M:%S")
                ),
            }
        }
    }
    Ok(())
}
