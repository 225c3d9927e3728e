//! Writes every detected WMATA stop event as CSV to stdout, for analysis.
//!
//! `cargo run --release -p cityos-realtime --example wmata_events > events.csv`

use std::path::Path;

use cityos_realtime::{Config, Engine, read_positions_csv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/avl/wmata-vehiclepositions-2026-02-16");
    let (network, _) =
        cityos_transit::load_network(&dir.join("wmata_gtfs_C53_D40_D96.zip"), &|_| {})?;
    let mut positions =
        read_positions_csv(std::fs::File::open(dir.join("wmata_gtfsrt_021626.csv"))?)?.positions;
    positions.sort_by_key(|p| p.timestamp);
    let mut engine = Engine::new(&network, Config::default());
    let data = network.data();
    println!("trip,route,stop_index,stops,kind,time,observed,sched_arr,sched_dep,timepoint,dist");
    for p in &positions {
        let t = p.timestamp.unwrap_or_default();
        let _ = engine.ingest(p.view(), t);
        if t % 600 == 0 {
            eprintln!(
                "{t} model choice {:?} pace spread (tau, sigma) {:.3?}",
                engine.model_choice(),
                engine.pace_spread()
            );
        }
        let events: Vec<_> = engine.drain_events().collect();
        for e in events {
            let range = data.trips.stop_time_range(e.trip);
            let st = range.start + e.stop_index as usize;
            let origin = network.instant(e.date, 0).map_or(0, |t| t.as_second());
            let dist = engine
                .index()
                .stop_distances(e.trip)
                .map_or(0.0, |d| d[e.stop_index as usize]);
            println!(
                "{},{},{},{},{:?},{:.1},{},{},{},{},{:.0}",
                data.trips.ids.id(e.trip),
                data.route_ids.id(data.trips.route[e.trip as usize]),
                e.stop_index,
                range.len(),
                e.kind,
                e.time,
                e.observed,
                origin + i64::from(data.stop_times.arrival[st]),
                origin + i64::from(data.stop_times.departure[st]),
                data.stop_times.flags[st] & 0x10 != 0,
                dist,
            );
        }
    }
    Ok(())
}
