//! Ingest throughput on a generated city: decode GTFS-realtime feeds,
//! validate, match and update, on one core.
//!
//! `cargo run --release -p cityos-realtime --example ingest_bench -- [small|medium|large] [minutes]`
//!
//! Generates the city with `cityos-sim`, drives every trip of a weekday
//! morning peak with [`cityos_realtime::synth`] (a position every 10 s per
//! vehicle), packs each 10 s of positions into one `FeedMessage`, and
//! times the ingest path over all of them, single-threaded. Reading every
//! live run's full prediction list (what a TripUpdates feed needs) is timed
//! separately, once per 30 s of replayed time.

use std::time::Instant;

use cityos_realtime::synth::{SynthOptions, drive};
use cityos_realtime::{Config, Engine, decode::positions_to_feed, for_each_position};
use prost::Message;

/// This thread's CPU time in seconds (user + system), from procfs; 0 where
/// it cannot be read.
fn thread_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ")".
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size: cityos_sim::CitySize = args.next().as_deref().unwrap_or("large").parse()?;
    let minutes: i64 = args.next().map_or(Ok(60), |m| m.parse())?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let summary = cityos_sim::generate_city(
        &cityos_sim::CityOptions {
            size,
            ..Default::default()
        },
        dir.path(),
    )?;
    eprintln!(
        "generated a {size} city: {} trips, {} stop times ({:.1?})",
        summary.trips,
        summary.stop_times,
        started.elapsed()
    );
    let (network, _) = cityos_transit::load_network(dir.path(), &|_| {})?;

    let started = Instant::now();
    let engine = Engine::new(&network, Config::default());
    eprintln!(
        "trip index: {} patterns, {} links ({:.1?})",
        engine.index().pattern_count(),
        engine.index().link_count(),
        started.elapsed()
    );

    // A Tuesday morning peak, 07:00 local onwards.
    let date = jiff::civil::date(2026, 3, 3);
    let from = network
        .instant(date, 7 * 3600)
        .ok_or("no service day")?
        .as_second();
    let every = 10;
    let positions = drive(
        &network,
        &SynthOptions {
            date,
            window: from..from + minutes * 60,
            every_s: every,
            gps_error_m: 5.0,
            seed: 7,
        },
    );
    let vehicles: std::collections::HashSet<&str> =
        positions.iter().map(|p| p.vehicle_id.as_str()).collect();
    eprintln!(
        "{} positions from {} vehicles over {minutes} min",
        positions.len(),
        vehicles.len()
    );
    let mut feeds: Vec<(i64, Vec<u8>)> = Vec::new();
    for chunk in positions.chunk_by(|a, b| {
        a.timestamp.unwrap_or_default() / every == b.timestamp.unwrap_or_default() / every
    }) {
        let at = chunk[0].timestamp.unwrap_or_default() / every * every + every;
        feeds.push((at, positions_to_feed(chunk, at).encode_to_vec()));
    }
    let bytes: usize = feeds.iter().map(|f| f.1.len()).sum();
    eprintln!(
        "{} feeds, {:.1} MiB of protobuf",
        feeds.len(),
        bytes as f64 / 1048576.0
    );
    drop(positions);

    // Decode only.
    let started = Instant::now();
    let mut decoded = 0usize;
    for (_, feed) in &feeds {
        decoded += for_each_position(feed, |p| {
            std::hint::black_box(p);
        })?
        .positions;
    }
    let decode_s = started.elapsed().as_secs_f64();

    // The whole ingest path, best of three fresh engines: other processes on
    // the machine can only slow a run down. Wall time and this thread's CPU
    // time are both kept; "per core" is positions per CPU second.
    let mut best: Option<(f64, f64, Engine<&cityos_transit::Network>)> = None;
    for _ in 0..3 {
        let mut engine = Engine::new(&network, Config::default());
        let (started, cpu) = (Instant::now(), thread_cpu_s());
        for (at, feed) in &feeds {
            for_each_position(feed, |p| {
                let _ = engine.ingest(p, *at);
            })?;
            engine.drain_events().for_each(drop);
        }
        let (wall, cpu) = (started.elapsed().as_secs_f64(), thread_cpu_s() - cpu);
        if best.as_ref().is_none_or(|b| wall < b.0) {
            best = Some((wall, cpu, engine));
        }
    }
    let (ingest_s, ingest_cpu_s, engine) = best.ok_or("no run")?;
    let counters = engine.counters().clone();

    // Reading every live run's predictions every 30 s of replayed time.
    let mut buffer = Vec::new();
    let (mut reads, mut predicted) = (0usize, 0usize);
    let started = Instant::now();
    let mut now = from;
    while now < from + minutes * 60 {
        now += 30;
        let runs: Vec<_> = engine.runs(now).map(|r| r.id).collect();
        for run in runs {
            engine.predict(run, now, &mut buffer);
            reads += 1;
            predicted += buffer.len();
        }
    }
    let read_s = started.elapsed().as_secs_f64();

    println!("positions:        {decoded}");
    println!(
        "accepted:         {} (refused {:?})",
        counters.accepted, counters.rejected
    );
    println!(
        "decode only:      {:.2} s  {:>12.0} positions/s",
        decode_s,
        decoded as f64 / decode_s
    );
    println!(
        "ingest (decode + validate + match + detect + learn): {:.2} s wall, {:.2} s CPU: \
         {:.0} positions/s wall, {:.0} per CPU second (target 1,000,000 per core)",
        ingest_s,
        ingest_cpu_s,
        decoded as f64 / ingest_s,
        decoded as f64 / ingest_cpu_s
    );
    println!(
        "prediction reads: {reads} run lists, {predicted} stop predictions in {:.2} s ({:.0} ns per stop)",
        read_s,
        read_s * 1e9 / predicted.max(1) as f64
    );
    Ok(())
}
