//! Generates a feed and reports its size and the time it took.
//!
//! `cargo run --release -p cityos-sim --example generate -- OUT_DIR [small|medium|large] [STOP_TIMES|-] [SEED]`

use std::time::Instant;

use cityos_sim::{CityOptions, generate_city};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: generate OUT_DIR [SIZE] [STOP_TIMES] [SEED]")?;
    let mut opts = CityOptions::default();
    if let Some(size) = args.next() {
        opts.size = size.parse()?;
    }
    if let Some(n) = args.next().filter(|n| n != "-") {
        opts.stop_times_target = Some(n.parse()?);
    }
    if let Some(seed) = args.next() {
        opts.seed = seed.parse()?;
    }
    let t = Instant::now();
    let summary = generate_city(&opts, std::path::Path::new(&out))?;
    println!("{summary:?} in {:.2?}", t.elapsed());
    Ok(())
}
