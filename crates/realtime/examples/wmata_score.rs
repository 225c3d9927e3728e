//! Scores arrival predictions on the recorded WMATA afternoon in
//! `../shared/data/avl/wmata-vehiclepositions-2026-02-16/`.
//!
//! `cargo run --release -p cityos-realtime --example wmata_score`

use std::path::Path;

use cityos_realtime::{ScoreConfig, read_positions_csv, replay_score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/avl/wmata-vehiclepositions-2026-02-16");
    if !dir.exists() {
        eprintln!("skipped: {} is absent", dir.display());
        return Ok(());
    }
    let (network, _) =
        cityos_transit::load_network(&dir.join("wmata_gtfs_C53_D40_D96.zip"), &|_| {})?;
    let csv = read_positions_csv(std::fs::File::open(dir.join("wmata_gtfsrt_021626.csv"))?)?;
    let started = std::time::Instant::now();
    let report = replay_score(&network, csv.positions, &ScoreConfig::default());
    println!("{report}");
    eprintln!("replay took {:.2?}", started.elapsed());
    Ok(())
}
