//! `cityos bench mqtt`: vehicle positions end to end through MQTT (the
//! embedded broker, decode, validate, match, the live snapshot with its
//! predictions), from a separate load process in two shapes (every vehicle
//! its own connection with its own key; one gateway connection for the
//! whole fleet), each side by side with Debian's Mosquitto relaying the same
//! load, and Mosquitto alone relaying 200-byte messages at QoS 0 from one
//! publisher on the same machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cityos_mqtt::{
    DeviceLoad, DeviceRole, PublisherArgs, RelayBroker, bench_relay, publish_as_devices,
};
use cityos_realtime::PositionRecord;
use cityos_realtime::synth::{SynthOptions, drive};
use cityos_server::mqtt::{MqttSource, start};
use cityos_server::{AppState, Served, UiConfig, import_feed};
use cityos_sim::{CityOptions, CitySize};
use cityos_store::Store;
use jiff::civil::Date;
use prost::Message as _;

/// Minutes of positions replayed: within the engine's five-minute freshness.
const WINDOW_S: i64 = 240;
/// Seconds between two reports of one vehicle.
const EVERY_S: i64 = 10;
/// The weekday morning peak the load comes from.
const DATE: (i16, i8, i8) = (2026, 3, 3);
const FROM_S: u32 = 8 * 3600;

/// The positions of the load: `WINDOW_S` of the morning peak, every vehicle
/// reporting every `EVERY_S` seconds, and where the window ends.
fn load_positions(feed: &Path) -> anyhow::Result<(Vec<PositionRecord>, i64)> {
    let (network, _) = cityos_transit::load_network(feed, &|_| {})?;
    let date = Date::new(DATE.0, DATE.1, DATE.2)?;
    let from = network
        .instant(date, FROM_S)
        .context("the city has no service on the benchmark's day")?
        .as_second();
    let positions = drive(
        &network,
        &SynthOptions {
            date,
            window: from..from + WINDOW_S,
            every_s: EVERY_S,
            gps_error_m: 4.0,
            seed: 11,
        },
    );
    Ok((positions, from + WINDOW_S))
}

/// How the load reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadShape {
    /// Every vehicle its own connection with its own key.
    Vehicles,
    /// One gateway connection (an operator's AVL system) carrying every
    /// vehicle's positions, one position per message.
    Gateway,
}

impl LoadShape {
    fn as_str(self) -> &'static str {
        match self {
            LoadShape::Vehicles => "vehicles",
            LoadShape::Gateway => "gateway",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            LoadShape::Vehicles => "every vehicle its own connection",
            LoadShape::Gateway => "one gateway connection for the whole fleet",
        }
    }
}

/// The gateway's device id in the [`LoadShape::Gateway`] load.
const GATEWAY_ID: &str = "avl-1";

/// The load process: reads the plan, connects every vehicle (or the one
/// gateway), publishes.
pub fn vehicles_worker(args: &[String]) -> anyhow::Result<()> {
    let [feed, host, port, keys, shape] = args else {
        bail!("vehicles worker arguments: feed host port keys-file vehicles|gateway");
    };
    let gateway = shape == LoadShape::Gateway.as_str();
    let (positions, _) = load_positions(Path::new(feed))?;
    let keys: std::collections::HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(keys)?)?;
    let mut index = std::collections::HashMap::new();
    let mut devices: Vec<DeviceLoad> = Vec::new();
    let mut order = Vec::with_capacity(positions.len());
    for p in &positions {
        let (role, id) = if gateway {
            (DeviceRole::Gateway, GATEWAY_ID)
        } else {
            (DeviceRole::Vehicle, p.vehicle_id.as_str())
        };
        let d = *index.entry(id.to_owned()).or_insert_with(|| {
            devices.push(DeviceLoad {
                role,
                device_id: id.to_owned(),
                password: keys.get(id).cloned().unwrap_or_default(),
                payloads: Vec::new(),
            });
            devices.len() as u32 - 1
        });
        let payload = cityos_realtime::decode::positions_to_feed(
            std::slice::from_ref(p),
            p.timestamp.unwrap_or(0),
        )
        .encode_to_vec();
        devices[d as usize].payloads.push(payload);
        order.push(d);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publish_as_devices(host, port.parse()?, devices, &order))?;
    Ok(())
}

/// Runs the vehicles' load process against the broker at `broker` and
/// measures, with `count`, how many messages came through and over how long:
/// (messages, seconds from the first to the last).
async fn drive_load(
    feed: &Path,
    broker: std::net::SocketAddr,
    keys_file: &Path,
    shape: LoadShape,
    expected: u64,
    count: impl Fn() -> u64,
) -> anyhow::Result<(u64, f64)> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench-worker", "vehicles"])
        .arg(feed)
        .args([broker.ip().to_string(), broker.port().to_string()])
        .arg(keys_file)
        .arg(shape.as_str())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let (mut first, mut last, mut seen) = (None, Instant::now(), 0);
    let mut done = None;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = count();
        if now != seen {
            seen = now;
            last = Instant::now();
            first.get_or_insert(last);
        }
        if done.is_none()
            && let Some(status) = child.try_wait()?
        {
            if !status.success() {
                bail!("the load process failed: {status}");
            }
            done = Some(Instant::now());
        }
        let quiet = done.is_some_and(|d| d.elapsed() > Duration::from_secs(5))
            && last.elapsed() > Duration::from_secs(2);
        if seen >= expected || quiet {
            break;
        }
    }
    Ok((
        seen,
        first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
    ))
}

/// Mosquitto relaying the very same load (every vehicle its own
/// connection and password) to one subscriber.
async fn mosquitto_same_load(
    feed: &Path,
    keys_file: &Path,
    shape: LoadShape,
    expected: u64,
) -> anyhow::Result<(u64, f64)> {
    use cityos_mqtt::mosquitto::Mosquitto;
    let keys: std::collections::HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(keys_file)?)?;
    let ingest_password = format!("bench-{}", std::process::id());
    let mut users: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    users.push(("cityos-ingest", &ingest_password));
    let mosquitto = Mosquitto::start(&users, 1_000_000)?;
    let url = cityos_mqtt::BrokerUrl {
        host: "127.0.0.1".to_owned(),
        port: mosquitto.port(),
        username: Some("cityos-ingest".to_owned()),
        password: Some(ingest_password.clone()),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let ingest = cityos_mqtt::Ingest::start(cityos_mqtt::IngestConfig::new(url), tx);
    tokio::time::timeout(Duration::from_secs(10), ingest.subscribed()).await??;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = received.clone();
    let drain = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let broker = std::net::SocketAddr::from(([127, 0, 0, 1], mosquitto.port()));
    let result = drive_load(feed, broker, keys_file, shape, expected, || {
        received.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    drain.abort();
    result
}

/// The load: a generated city and its morning peak's positions.
struct Load {
    feed: PathBuf,
    positions: Vec<PositionRecord>,
    /// Where the load's window ends: the engine's clock during the run.
    end: i64,
    mean_bytes: f64,
    vehicles: Vec<String>,
}

async fn prepare_load(size: CitySize, dir: &Path) -> anyhow::Result<Load> {
    let feed = dir.join("city");
    let options = CityOptions {
        size,
        ..CityOptions::default()
    };
    let out = feed.clone();
    tokio::task::spawn_blocking(move || cityos_sim::generate_city(&options, &out)).await??;
    let plan_feed = feed.clone();
    let (positions, end) =
        tokio::task::spawn_blocking(move || load_positions(&plan_feed)).await??;
    let mean_bytes = positions
        .iter()
        .take(1000)
        .map(|p| {
            cityos_realtime::decode::positions_to_feed(std::slice::from_ref(p), 0).encoded_len()
                as f64
        })
        .sum::<f64>()
        / positions.len().clamp(1, 1000) as f64;
    let mut vehicles: Vec<String> = positions.iter().map(|p| p.vehicle_id.clone()).collect();
    vehicles.sort_unstable();
    vehicles.dedup();
    eprintln!("{} vehicles, {} positions", vehicles.len(), positions.len());
    Ok(Load {
        feed,
        positions,
        end,
        mean_bytes,
        vehicles,
    })
}

/// What one end-to-end run measured.
struct EndToEnd {
    processed: u64,
    accepted: u64,
    seconds: f64,
    keys_file: PathBuf,
}

impl EndToEnd {
    fn rate(&self) -> f64 {
        self.processed as f64 / self.seconds.max(1e-9)
    }
}

/// One end-to-end run on a fresh server in `dir`.
async fn end_to_end(load: &Load, shape: LoadShape, dir: &Path) -> anyhow::Result<EndToEnd> {
    let feed = load.feed.clone();
    std::fs::create_dir_all(dir)?;
    let store = Store::open(&dir.join("bench.sqlite").display().to_string()).await?;
    let state = AppState::new(store.clone(), UiConfig::default());
    let imported = import_feed(&store, feed.clone(), "bench", |_| {}).await?;
    state.network.set(
        Served {
            id: imported.record.id,
            network: std::sync::Arc::new(imported.network),
        },
        &state.metrics,
    );
    let devices: Vec<(DeviceRole, &str)> = match shape {
        LoadShape::Vehicles => load
            .vehicles
            .iter()
            .map(|v| (DeviceRole::Vehicle, v.as_str()))
            .collect(),
        LoadShape::Gateway => vec![(DeviceRole::Gateway, GATEWAY_ID)],
    };
    let mut keys = std::collections::HashMap::new();
    for (role, id) in devices {
        let (_, key) = state
            .accounts
            .create_api_key(
                &format!("{}:{id}", role.as_str()),
                cityos_accounts::Role::TransitOperator,
                None,
            )
            .await?;
        keys.insert(id.to_string(), key);
    }
    let keys_file = dir.join("keys.json");
    std::fs::write(&keys_file, serde_json::to_string(&keys)?)?;
    // The engine judges freshness on the load's own clock.
    state.live.clock.replay_at(load.end);
    let mqtt = start(&state, MqttSource::Embedded("127.0.0.1:0".parse()?)).await?;
    let broker = mqtt
        .broker_addr()
        .context("the embedded broker did not start")?;
    let refresh = tokio::spawn(cityos_server::realtime::run(state.clone()));
    let (seen, seconds) = drive_load(
        &feed,
        broker,
        &keys_file,
        shape,
        load.positions.len() as u64,
        || state.metrics.mqtt_positions.get(),
    )
    .await?;
    refresh.abort();
    let accepted = state.metrics.positions_accepted.get();
    Ok(EndToEnd {
        processed: seen,
        accepted,
        seconds,
        keys_file,
    })
}

/// The median of `rates`.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

/// Runs both measurements and prints them side by side: `rounds` runs of
/// each load shape on each broker, alternating, and their medians (one run
/// lasts about a second).
pub async fn bench_mqtt(size: CitySize, relay_messages: u64, rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let load = prepare_load(size, dir.path()).await?;
    let sent = load.positions.len();
    let shapes = [LoadShape::Vehicles, LoadShape::Gateway];
    let mut ours = vec![Vec::new(); shapes.len()];
    let mut theirs = vec![Vec::new(); shapes.len()];
    for round in 0..rounds.max(1) {
        for (s, &shape) in shapes.iter().enumerate() {
            let run_dir = dir.path().join(format!("run-{round}-{}", shape.as_str()));
            let e2e = end_to_end(&load, shape, &run_dir).await?;
            println!(
                "cityos end to end ({} city, {}): {sent} positions of ~{:.0} bytes, {} processed ({} accepted) in {:.2} s = {:.0} positions/s",
                size.as_str(),
                shape.describe(),
                load.mean_bytes,
                e2e.processed,
                e2e.accepted,
                e2e.seconds,
                e2e.rate()
            );
            ours[s].push(e2e.rate());
            match mosquitto_same_load(&load.feed, &e2e.keys_file, shape, sent as u64).await {
                Ok((relayed, seconds)) => {
                    let rate = relayed as f64 / seconds.max(1e-9);
                    println!(
                        "Mosquitto relaying the same load ({}, to one subscriber): {relayed} of {sent} in {seconds:.2} s = {rate:.0} messages/s",
                        shape.describe()
                    );
                    theirs[s].push(rate);
                }
                Err(e) => println!("Mosquitto (same load) not measured: {e}"),
            }
        }
    }
    println!();
    let mut gateway_rate = 0.0;
    for (s, &shape) in shapes.iter().enumerate() {
        let rate = median(std::mem::take(&mut ours[s]));
        if shape == LoadShape::Gateway {
            gateway_rate = rate;
        }
        let peer = median(std::mem::take(&mut theirs[s]));
        println!(
            "median of {rounds}, {}: cityos end to end {rate:.0} positions/s, {} vehicles; Mosquitto relaying the same load {peer:.0} messages/s; cityos / Mosquitto = {:.2}",
            shape.describe(),
            load.vehicles.len(),
            rate / peer.max(1e-9)
        );
    }
    let exe: PathBuf = std::env::current_exe()?;
    match bench_relay(
        RelayBroker::Mosquitto,
        relay_messages,
        200,
        |args: &PublisherArgs| {
            let mut command = tokio::process::Command::new(&exe);
            command
                .args(["bench-worker", "relay-publisher"])
                .args(args.to_args())
                .stdout(Stdio::null());
            command
        },
    )
    .await
    {
        Ok(report) => {
            let rate = report.per_second();
            println!(
                "Mosquitto alone (Debian's, QoS 0, 200-byte messages, one publisher process): {} of {} relayed in {:.2} s = {:.0} messages/s",
                report.received, report.sent, report.seconds, rate
            );
            println!(
                "cityos end to end (one gateway connection, ~{:.0}-byte messages) / Mosquitto relay (one publisher, 200-byte messages) = {:.2} (target >= 1)",
                load.mean_bytes,
                gateway_rate / rate.max(1e-9)
            );
        }
        Err(e) => println!("Mosquitto not measured: {e} (install Debian's mosquitto package)"),
    }
    Ok(())
}

/// The relay benchmark's publisher, in its own process.
pub fn relay_publisher(args: &[String]) -> anyhow::Result<()> {
    let publisher = PublisherArgs::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publisher.run())?;
    Ok(())
}
