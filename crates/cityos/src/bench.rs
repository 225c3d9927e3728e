//! `cityos bench …`: each figure beside its peer, measured in the same run.
//!
//! Loaders are measured in fresh child processes (`cityos bench-worker`) so
//! each one's peak memory is its own, read from the kernel (VmHWM).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use cityos_transit::{Network, load_network};

use crate::config::Settings;

/// What to measure.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// GTFS loading: this project's loader vs the gtfs-structures crate (time, peak memory).
    Gtfs {
        /// The feed [default: ../shared/data HART feed if present, else a generated medium city].
        feed: Option<PathBuf>,
        /// Runs per loader; the fastest counts.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Full import of a generated Seoul-metro-scale feed: generate, load, index, store.
    Import {
        /// Stop times in the generated feed.
        #[arg(long, default_value_t = 20_000_000)]
        stop_times: u64,
    },
    /// Durable taps per second through the card desk (validate, price, ledger, commit), vs pgbench's TPC-B on PostgreSQL.
    Fare {
        /// Taps to drive.
        #[arg(long, default_value_t = 400_000)]
        taps: usize,
        /// Concurrent validators submitting.
        #[arg(long, default_value_t = 256)]
        validators: usize,
        /// Seconds pgbench runs.
        #[arg(long, default_value_t = 15)]
        pgbench_seconds: u32,
    },
    /// Open311 filings and filtered listings per second over HTTP with a million complaints stored, vs nginx serving the same listing.
    Complaints {
        /// Complaints in the store before the load starts.
        #[arg(long, default_value_t = 1_000_000)]
        seed: usize,
        /// Seconds each load runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Arrival prediction accuracy on recorded positions, vs the schedule and OneBusAway's method.
    Predict {
        /// GTFS feed the positions refer to [default: the WMATA feed in ../shared/data].
        #[arg(long)]
        gtfs: Option<PathBuf>,
        /// Positions in the flattened GTFS-RT CSV layout [default: the WMATA afternoon in ../shared/data].
        #[arg(long)]
        positions: Option<PathBuf>,
        /// Hours of a simulated day (generated city) to score as well.
        #[arg(long, default_value_t = 3)]
        simulated_hours: i64,
    },
    /// Vehicle positions end to end through MQTT (broker, decode, validate,
    /// match, predict) from a separate load process, vs Mosquitto alone relaying.
    Mqtt {
        /// Size of the generated city whose morning peak is the load.
        #[arg(long, default_value = "large")]
        size: cityos_sim::CitySize,
        /// Messages Mosquitto relays in its run.
        #[arg(long, default_value_t = 1_000_000)]
        relay_messages: u64,
        /// Runs of each load; the medians are compared.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Nearby-stop queries per second in process, vs a linear scan of all stops.
    Nearby {
        /// The feed [default: a generated large city].
        feed: Option<PathBuf>,
        /// Queries to run.
        #[arg(long, default_value_t = 2_000_000)]
        queries: usize,
        /// Search radius in metres.
        #[arg(long, default_value_t = 500.0)]
        radius: f64,
    },
}

/// Arguments of the hidden worker command.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// `ours` or `gtfs-structures` (load a feed), `vehicles` or
    /// `relay-publisher` (MQTT load).
    kind: String,
    /// The kind's own arguments (for the loaders: the feed).
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// One measured load.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    seconds: f64,
    peak_kib: u64,
    stop_times: usize,
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs one load in this (fresh) process and prints `seconds peak_kib stop_times`.
pub fn worker(args: &WorkerArgs) -> anyhow::Result<()> {
    match args.kind.as_str() {
        "vehicles" => return crate::bench_mqtt::vehicles_worker(&args.args),
        "relay-publisher" => return crate::bench_mqtt::relay_publisher(&args.args),
        _ => {}
    }
    let feed = PathBuf::from(args.args.first().context("the loader needs a feed")?);
    let started = Instant::now();
    let stop_times = match args.kind.as_str() {
        "ours" => {
            let (network, _) = load_network(&feed, &|_| {})?;
            network.data().stop_times.len()
        }
        "gtfs-structures" => {
            let gtfs = gtfs_structures::Gtfs::from_path(&feed)
                .map_err(|e| anyhow::anyhow!("gtfs-structures could not load the feed: {e}"))?;
            gtfs.trips.values().map(|t| t.stop_times.len()).sum()
        }
        other => bail!("unknown loader '{other}'"),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!("{seconds} {} {stop_times}", peak_rss_kib());
    Ok(())
}

fn measure(loader: &str, feed: &Path) -> anyhow::Result<Measurement> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["bench-worker", loader])
        .arg(feed)
        .output()?;
    if !out.status.success() {
        bail!("{loader} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let mut next = || parts.next().context("worker output is malformed");
    Ok(Measurement {
        seconds: next()?.parse()?,
        peak_kib: next()?.parse()?,
        stop_times: next()?.parse()?,
    })
}

fn shared_hart() -> Option<PathBuf> {
    let candidates = [
        "../shared/data/gtfs/hart-tampa-2018/hart.zip",
        "../../shared/data/gtfs/hart-tampa-2018/hart.zip",
    ];
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

fn generated(
    size: cityos_sim::CitySize,
    stop_times: Option<u64>,
) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("feed");
    // The benchmarks' days are fixed (a Tuesday in March 2026), so is their city.
    let args = crate::CityArgs {
        seed: 42,
        size,
        stop_times,
        start_date: Some(jiff::civil::date(2026, 1, 1)),
    };
    crate::generate(&feed, &args)?;
    Ok((dir, feed))
}

/// Runs a benchmark and prints its figures.
pub async fn run(command: BenchCommand, _settings: &Settings) -> anyhow::Result<()> {
    match command {
        BenchCommand::Gtfs { feed, runs } => bench_gtfs(feed, runs),
        BenchCommand::Mqtt {
            size,
            relay_messages,
            rounds,
        } => crate::bench_mqtt::bench_mqtt(size, relay_messages, rounds).await,
        BenchCommand::Import { stop_times } => bench_import(stop_times).await,
        BenchCommand::Nearby {
            feed,
            queries,
            radius,
        } => bench_nearby(feed, queries, radius),
        BenchCommand::Predict {
            gtfs,
            positions,
            simulated_hours,
        } => bench_predict(gtfs, positions, simulated_hours),
        BenchCommand::Fare {
            taps,
            validators,
            pgbench_seconds,
        } => bench_fare(taps, validators, pgbench_seconds).await,
        BenchCommand::Complaints {
            seed,
            seconds,
            connections,
        } => crate::bench_complaints::run(seed, seconds, connections).await,
    }
}

fn bench_gtfs(feed: Option<PathBuf>, runs: usize) -> anyhow::Result<()> {
    let (_keep, feed) = match feed.or_else(shared_hart) {
        Some(f) => (None, f),
        None => {
            eprintln!("no feed given and ../shared/data is absent: using a generated medium city");
            let (dir, f) = generated(cityos_sim::CitySize::Medium, None)?;
            (Some(dir), f)
        }
    };
    println!(
        "GTFS load of {} ({} runs each, fastest kept; fresh process per run)",
        feed.display(),
        runs
    );
    let best = |loader: &str| -> anyhow::Result<Measurement> {
        let mut best: Option<Measurement> = None;
        for _ in 0..runs.max(1) {
            let m = measure(loader, &feed)?;
            if best.is_none_or(|b| m.seconds < b.seconds) {
                best = Some(m);
            }
        }
        best.context("no run")
    };
    let ours = best("ours")?;
    let peer = best("gtfs-structures")?;
    println!(
        "{:<18} {:>10} {:>14} {:>12}",
        "loader", "time (s)", "peak RSS (MiB)", "stop_times"
    );
    for (name, m) in [("cityos", ours), ("gtfs-structures", peer)] {
        println!(
            "{:<18} {:>10.3} {:>14.1} {:>12}",
            name,
            m.seconds,
            m.peak_kib as f64 / 1024.0,
            m.stop_times
        );
    }
    println!(
        "cityos is {:.1}x faster and uses {:.2}x the memory of gtfs-structures (targets: >= 3x faster, <= 0.33x memory)",
        peer.seconds / ours.seconds,
        ours.peak_kib as f64 / peer.peak_kib as f64
    );
    if ours.stop_times != peer.stop_times {
        bail!(
            "the loaders disagree on the stop time count: {} vs {}",
            ours.stop_times,
            peer.stop_times
        );
    }
    Ok(())
}

async fn bench_import(stop_times: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let (dir, feed) = generated(cityos_sim::CitySize::Large, Some(stop_times))?;
    let generate_s = started.elapsed().as_secs_f64();
    let store =
        cityos_store::Store::open(&dir.path().join("bench.db").display().to_string()).await?;
    let started = Instant::now();
    let load = {
        let feed = feed.clone();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let (data, _) = cityos_transit::gtfs::load(&feed, &|_| {})?;
            let parse_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let network = Network::new(data)?;
            let index_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let bytes = network.to_bytes();
            let encode_s = t.elapsed().as_secs_f64();
            anyhow::Ok((network, bytes, parse_s, index_s, encode_s))
        })
    };
    let (network, bytes, parse_s, index_s, encode_s) = load.await??;
    let t = Instant::now();
    let summary = serde_json::to_string(&network.summary())?;
    store.save_network("bench", &summary, &bytes).await?;
    let store_s = t.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();
    println!(
        "generated {} stop times in {generate_s:.1} s; import: parse {parse_s:.1} s + index {index_s:.1} s + encode {encode_s:.1} s + store {store_s:.1} s = {total:.1} s (target: < 20 s); {:.0} MiB stored",
        network.data().stop_times.len(),
        bytes.len() as f64 / (1 << 20) as f64
    );
    Ok(())
}

fn bench_nearby(feed: Option<PathBuf>, queries: usize, radius: f64) -> anyhow::Result<()> {
    let (_keep, feed) = match feed {
        Some(f) => (None, f),
        None => {
            let (dir, f) = generated(cityos_sim::CitySize::Large, None)?;
            (Some(dir), f)
        }
    };
    let (network, _) = load_network(&feed, &|_| {})?;
    let bbox = network
        .summary()
        .bbox
        .context("the feed has no stops with positions")?;
    // A fixed linear congruential sequence: the same points every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let points: Vec<(f64, f64)> = (0..queries.max(1))
        .map(|_| {
            (
                bbox[1] + (bbox[3] - bbox[1]) * next(),
                bbox[0] + (bbox[2] - bbox[0]) * next(),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(64);
    let mut found = 0usize;
    let started = Instant::now();
    for &(lat, lon) in &points {
        network.stops_nearby_into(lat, lon, radius, 10, &mut out);
        found += out.len();
    }
    let ours = points.len() as f64 / started.elapsed().as_secs_f64();
    // The peer: what a program without a spatial index does.
    let stops = &network.data().stops;
    let scan_n = (points.len() / 200).max(100);
    let started = Instant::now();
    let mut scan_found = 0usize;
    for &(lat, lon) in points.iter().take(scan_n) {
        scan_found += (0..stops.len())
            .filter(|&s| {
                cityos_transit::haversine_m(lat, lon, stops.lat[s], stops.lon[s]) <= radius
            })
            .count()
            .min(10);
    }
    let scan = scan_n as f64 / started.elapsed().as_secs_f64();
    std::hint::black_box((found, scan_found));
    println!(
        "nearby stops within {radius} m over {} stops: R-tree {:.2} M queries/s, linear scan {:.0} queries/s, {:.0}x (target: > 1 M/s); {:.1} stops found per query",
        stops.len(),
        ours / 1e6,
        scan,
        ours / scan,
        found as f64 / points.len() as f64
    );
    Ok(())
}

async fn bench_fare(taps: usize, validators: usize, pgbench_seconds: u32) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite =
        cityos_store::Store::open(&dir.path().join("cards.db").display().to_string()).await?;
    let on_sqlite = drive_desk(sqlite, taps, validators).await?;
    println!("cityos card desk (SQLite, WAL, synchronous=FULL): {on_sqlite}");
    // The peer: pgbench's TPC-B-like transactions on a durable PostgreSQL on
    // this machine, and the same desk on that same server.
    let server = cityos_store::testing::start_server(true)
        .map(|url| format!("{url}/postgres"))
        .map_err(anyhow::Error::msg);
    let url = match server {
        Ok(url) => url,
        Err(e) => {
            println!("PostgreSQL not run: {e} (install Debian's postgresql package)");
            return Ok(());
        }
    };
    let on_postgres = drive_desk(cityos_store::Store::open(&url).await?, taps, validators).await?;
    println!("cityos card desk (PostgreSQL, fsync on, synchronous_commit on): {on_postgres}");
    let tps = pgbench(&url, pgbench_seconds)?;
    println!(
        "pgbench TPC-B (the same PostgreSQL, 16 clients): {tps:.0} transactions/s; cityos is {:.1}x on SQLite and {:.1}x on PostgreSQL (targets: >= 100,000 taps/s and >= 10x pgbench)",
        on_sqlite.rate / tps,
        on_postgres.rate / tps
    );
    Ok(())
}

/// What [`drive_desk`] measured.
struct DeskRun {
    taps: usize,
    validators: usize,
    seconds: f64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl std::fmt::Display for DeskRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} taps by {} validators in {:.1} s = {:.0} durable taps/s; latency p50 {:.1} ms, p99 {:.1} ms; audit holds",
            self.taps, self.validators, self.seconds, self.rate, self.p50_ms, self.p99_ms
        )
    }
}

/// Drives `taps` taps from `validators` concurrent validators through a card
/// desk on `store`, each answered only once durable, and checks the audit.
async fn drive_desk(
    store: cityos_store::Store,
    taps: usize,
    validators: usize,
) -> anyhow::Result<DeskRun> {
    use cityos_card::{Answer, CardDesk, NetworkView, Request};
    use cityos_fare::{Category, DistanceTable, FareRules, Mode, TapKind};
    use std::sync::Arc;

    let mut table = DistanceTable::new();
    table.insert_both_ways(Some("741"), "A", "B", 14_000);
    struct Net(DistanceTable);
    impl cityos_fare::Distances for Net {
        fn distance_m(&self, r: Option<&str>, a: &str, b: &str) -> Option<u32> {
            self.0.distance_m(r, a, b)
        }
    }
    impl NetworkView for Net {
        fn operator(&self, _: Option<&str>, _: &str) -> String {
            "bus".to_owned()
        }
    }
    let view: Arc<dyn NetworkView + Send + Sync> = Arc::new(Net(table));
    let desk = CardDesk::open(
        store,
        FareRules::seoul_toml(),
        Arc::new(move || view.clone()),
    )
    .await?;
    let validators = validators.max(1);
    let mut cards = Vec::with_capacity(validators);
    for v in 0..validators {
        let Answer::Issued { card_id, .. } = desk
            .submit(
                &format!("issue-{v}"),
                Request::Issue {
                    category: Category::Adult,
                    registered_to: None,
                },
            )
            .await?
        else {
            bail!("card not issued")
        };
        desk.submit(
            &format!("top-{v}"),
            Request::TopUp {
                card_id,
                amount: 500_000,
            },
        )
        .await?;
        cards.push(card_id);
    }
    let per_validator = taps / validators;
    let started = Instant::now();
    let mut handles = Vec::with_capacity(validators);
    for (v, card) in cards.into_iter().enumerate() {
        let desk = desk.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_validator);
            let day = jiff::civil::date(2026, 3, 4);
            for i in 0..per_validator {
                // Each card rides back and forth every 2 hours of card time.
                let at = day.at(5, 0, 0, 0)
                    + jiff::SignedDuration::from_mins((i as i64 / 2) * 120 + (i as i64 % 2) * 40);
                let request = Request::Tap {
                    card_id: card,
                    validator_id: format!("v{v}"),
                    counter: i as i64,
                    direction: if i % 2 == 0 {
                        TapKind::In
                    } else {
                        TapKind::Out
                    },
                    stop_id: if i % 4 < 2 { "A" } else { "B" }.to_owned(),
                    route_id: Some("741".to_owned()),
                    mode: Mode::Trunk,
                    vehicle_id: None,
                    at,
                };
                if i % 200 == 199 {
                    // Riders top up as they go; a top-up past the card limit is refused and skipped.
                    desk.submit(
                        &format!("top-{v}-{i}"),
                        Request::TopUp {
                            card_id: card,
                            amount: 150_000,
                        },
                    )
                    .await?;
                }
                let sent = Instant::now();
                let answer = desk.submit(&format!("tap:v{v}:{i}"), request).await?;
                latencies.push(sent.elapsed());
                if matches!(answer, Answer::Refused { .. }) {
                    anyhow::bail!("tap refused: {answer:?}");
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(taps);
    for h in handles {
        latencies.extend(h.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let p = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let audit = desk.audit().await?;
    anyhow::ensure!(
        audit.holds(),
        "the audit failed after the benchmark: {audit:?}"
    );
    Ok(DeskRun {
        taps: latencies.len(),
        validators,
        seconds: elapsed,
        rate: latencies.len() as f64 / elapsed,
        p50_ms: p(0.5),
        p99_ms: p(0.99),
    })
}

/// Runs pgbench (TPC-B-like, 16 clients, 2 threads) against the PostgreSQL at `url` and returns its TPS.
fn pgbench(url: &str, seconds: u32) -> anyhow::Result<f64> {
    let bin = cityos_store::testing::bin_dir().map_err(anyhow::Error::msg)?;
    let init = Command::new(bin.join("pgbench"))
        .args(["-i", "-q", "-s", "16", url])
        .output()?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let run = Command::new(bin.join("pgbench"))
        .args(["-c", "16", "-j", "2", "-T", &seconds.to_string(), "-n", url])
        .output()?;
    let text = String::from_utf8_lossy(&run.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| {
            l.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| {
            format!(
                "pgbench printed no tps: {text}{}",
                String::from_utf8_lossy(&run.stderr)
            )
        })
}

fn bench_predict(
    gtfs: Option<PathBuf>,
    positions: Option<PathBuf>,
    simulated_hours: i64,
) -> anyhow::Result<()> {
    use cityos_realtime::{ScoreConfig, read_positions_csv, replay_score};
    let wmata = [
        "../shared/data/avl/wmata-vehiclepositions-2026-02-16",
        "../../shared/data/avl/wmata-vehiclepositions-2026-02-16",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    let gtfs = gtfs.or_else(|| wmata.as_ref().map(|d| d.join("wmata_gtfs_C53_D40_D96.zip")));
    let positions = positions.or_else(|| wmata.as_ref().map(|d| d.join("wmata_gtfsrt_021626.csv")));
    match (gtfs, positions) {
        (Some(gtfs), Some(positions)) => {
            let (network, _) = load_network(&gtfs, &|_| {})?;
            let file = std::fs::File::open(&positions)
                .with_context(|| format!("cannot read {}", positions.display()))?;
            let csv = read_positions_csv(file)?;
            println!(
                "Recorded positions: {} ({} rows)",
                positions.display(),
                csv.positions.len()
            );
            println!(
                "{}",
                replay_score(&network, csv.positions, &ScoreConfig::default())
            );
        }
        _ => println!(
            "skipped the recorded replay: no --gtfs/--positions and ../shared/data is absent"
        ),
    }
    if simulated_hours > 0 {
        let (_dir, feed) = generated(cityos_sim::CitySize::Small, None)?;
        let (network, _) = load_network(&feed, &|_| {})?;
        let date = jiff::civil::date(2026, 3, 3);
        let from = network
            .instant(date, 6 * 3600)
            .context("no service day")?
            .as_second();
        let positions = cityos_realtime::synth::drive(
            &network,
            &cityos_realtime::synth::SynthOptions {
                date,
                window: from..from + simulated_hours * 3600,
                every_s: 20,
                gps_error_m: 5.0,
                seed: 1,
            },
        );
        println!(
            "Simulated day: generated small city, {simulated_hours} h from 06:00, {} positions",
            positions.len()
        );
        println!(
            "{}",
            replay_score(&network, positions, &ScoreConfig::default())
        );
    }
    Ok(())
}
