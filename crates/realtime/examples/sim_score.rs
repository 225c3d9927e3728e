//! Scores arrival predictions on a generated city: a second scenario,
//! independent of WMATA, until the real simulator publishes positions.
//!
//! `cargo run --release -p cityos-realtime --example sim_score -- [small|medium|large] [hours]`
//!
//! Vehicles drive a Tuesday from 06:00 with [`cityos_realtime::synth`]
//! (a position every 20 s), and the replay is scored like WMATA's.

use cityos_realtime::synth::{SynthOptions, drive};
use cityos_realtime::{ScoreConfig, replay_score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size: cityos_sim::CitySize = args.next().as_deref().unwrap_or("small").parse()?;
    let hours: i64 = args.next().map_or(Ok(3), |h| h.parse())?;
    let dir = tempfile::tempdir()?;
    cityos_sim::generate_city(
        &cityos_sim::CityOptions {
            size,
            ..Default::default()
        },
        dir.path(),
    )?;
    let (network, _) = cityos_transit::load_network(dir.path(), &|_| {})?;
    let date = jiff::civil::date(2026, 3, 3);
    let from = network
        .instant(date, 6 * 3600)
        .ok_or("no service day")?
        .as_second();
    let positions = drive(
        &network,
        &SynthOptions {
            date,
            window: from..from + hours * 3600,
            every_s: 20,
            gps_error_m: 5.0,
            seed: 1,
        },
    );
    println!(
        "{}",
        replay_score(&network, positions, &ScoreConfig::default())
    );
    Ok(())
}
