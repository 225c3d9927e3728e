//! Writes every judged WMATA prediction as CSV to stdout, for analysis.
//!
//! `cargo run --release -p cityos-realtime --example wmata_dump > judged.csv`

use std::path::Path;

use cityos_realtime::{ScoreConfig, read_positions_csv, replay_judged};

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
    let (report, judged) = replay_judged(&network, csv.positions, &ScoreConfig::default());
    eprintln!("{report}");
    println!("method,trip,stop_index,next_stop,made_at,predicted,p10,p90,actual,under_way");
    for j in judged {
        println!(
            "{},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{}",
            j.method.name(),
            network.data().trips.ids.id(j.trip),
            j.stop_index,
            j.next_stop,
            j.made_at,
            j.predicted,
            j.p10,
            j.p90,
            j.actual,
            j.under_way
        );
    }
    Ok(())
}
