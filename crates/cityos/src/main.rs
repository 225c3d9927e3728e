//! The `cityos` command: serve, import, generate, demo and benchmark a smart city.

mod bench;
mod bench_complaints;
mod bench_mqtt;
mod config;
mod demo;
mod replay;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use cityos_accounts::{Accounts, Role};
use cityos_server::{AppState, Served, UiConfig};
use cityos_sim::{CityOptions, CitySize};
use cityos_store::Store;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use config::{ServeArgs, Settings, StoreArgs};

/// cityos: an open smart-city platform (transit network, real-time, accounts, open data).
#[derive(Debug, Parser)]
#[command(name = "cityos", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API, the web map and the live feeds.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Import data into the store.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Write a deterministic GTFS feed of a Seoul-like city.
    GenerateCity {
        /// Output directory for the feed's .txt files.
        #[arg(long, default_value = "city-gtfs")]
        out: PathBuf,
        #[command(flatten)]
        city: CityArgs,
    },
    /// Generate a city, import it and serve it: the whole system on embedded defaults.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        city: CityArgs,
        /// Do not try to open a web browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Push recorded vehicle positions through the real-time engine on a
    /// replayed clock, serving the API and feeds as it goes.
    Replay {
        #[command(flatten)]
        replay: replay::ReplayArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Fares and the card ledger.
    #[command(subcommand)]
    Fare(FareCommand),
    /// Measure speed against reference implementations.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Internal: one measured run of a benchmark in a fresh process.
    #[command(hide = true)]
    BenchWorker(bench::WorkerArgs),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import a GTFS feed (zip or folder) and make it the served network.
    Gtfs {
        /// The feed.
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from CITYOS_PASSWORD or standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// citizen, department_staff, complaints_officer, transit_operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Issue an API key for a machine; prints the key once.
    ApiKey {
        /// Which machine uses it.
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

#[derive(Debug, Subcommand)]
enum FareCommand {
    /// Price a rider's taps: reads `{"category": "adult", "taps": [...]}` as JSON on standard input.
    Quote {
        /// TOML fare rules [default: the configured ones, else Seoul's].
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Check the card ledger: sums to zero, every balance equals its entries, no card below its limit.
    Audit,
    /// Write the fare rules as GTFS Fares v2 files, as far as Fares v2 can express them.
    ExportGtfs {
        /// Output directory.
        #[arg(long, default_value = "fares-gtfs")]
        out: PathBuf,
        /// TOML fare rules [default: the configured ones, else Seoul's].
        #[arg(long)]
        rules: Option<PathBuf>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| {
        format!("'{text}' is not a role (citizen, department_staff, complaints_officer, transit_operator, admin)")
    })
}

/// How to generate a city.
#[derive(Debug, Clone, clap::Args)]
pub struct CityArgs {
    /// Random seed: the same seed (and start date) gives the same city.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First service date, YYYY-MM-DD; the timetable covers a year from it
    /// [default: yesterday in Seoul, so that it covers today and last night's buses].
    #[arg(long)]
    start_date: Option<jiff::civil::Date>,
    /// small, medium or large (Seoul-like).
    #[arg(long, default_value = "small")]
    size: CitySize,
    /// Scale the timetable to about this many stop times (e.g. 20000000 for Seoul metro scale).
    #[arg(long)]
    stop_times: Option<u64>,
}

impl CityArgs {
    fn options(&self) -> CityOptions {
        let live = CityOptions::starting_yesterday();
        CityOptions {
            seed: self.seed,
            size: self.size,
            stop_times_target: self.stop_times,
            start_date: self.start_date.map_or(live.start_date, |d| {
                (i32::from(d.year()), d.month() as u8, d.day() as u8)
            }),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CITYOS_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::BenchWorker(args) = &cli.command {
        return bench::worker(args);
    }
    if let Command::GenerateCity { out, city } = &cli.command {
        return generate(out, city).map(|_| ());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { serve } => {
            let settings = Settings::resolve(&cli.store, Some(&serve))?;
            let store = open_store(&settings).await?;
            serve_http(store, &settings, None, |_, _| {}, shutdown_signal()).await
        }
        Command::Replay { replay, serve } => {
            let settings = Settings::resolve(&cli.store, Some(&serve))?;
            replay_command(&settings, replay).await
        }
        Command::Import(ImportCommand::Gtfs { path }) => {
            let settings = Settings::resolve(&cli.store, None)?;
            let store = open_store(&settings).await?;
            import(&store, &path).await.map(|_| ())
        }
        Command::Demo {
            serve,
            city,
            no_open,
        } => {
            let settings = Settings::resolve(&cli.store, Some(&serve))?;
            demo(&settings, &city, no_open).await
        }
        Command::User(command) => {
            let settings = Settings::resolve(&cli.store, None)?;
            let accounts = Accounts::new(open_store(&settings).await?);
            match command {
                UserCommand::Create { email, name, role } => {
                    let password = read_password()?;
                    let user = accounts.create_user(&email, &password, &name, role).await?;
                    println!(
                        "created user {} ({}) with role {}",
                        user.id,
                        user.email,
                        role.as_str()
                    );
                }
                UserCommand::ApiKey { name, role } => {
                    let (id, key) = accounts.create_api_key(&name, role, None).await?;
                    eprintln!(
                        "API key {id} for '{name}' ({}); it is shown only now:",
                        role.as_str()
                    );
                    println!("{key}");
                }
            }
            Ok(())
        }
        Command::Fare(command) => fare(command, &cli.store).await,
        Command::Bench(command) => {
            let settings = Settings::resolve(&cli.store, None)?;
            bench::run(command, &settings).await
        }
        Command::GenerateCity { .. } | Command::BenchWorker(_) => {
            unreachable!("handled before the runtime starts")
        }
    }
}

async fn fare(command: FareCommand, store_args: &StoreArgs) -> anyhow::Result<()> {
    let rules_for = |rules: Option<PathBuf>| {
        // These commands take --rules; the server's CITYOS_FARE_RULES applies to them too.
        let rules = rules.or_else(|| std::env::var_os("CITYOS_FARE_RULES").map(PathBuf::from));
        let serve = ServeArgs {
            fare_rules: rules,
            mqtt_listen: Some("off".to_owned()),
            ..ServeArgs::default()
        };
        Settings::resolve(store_args, Some(&serve))
    };
    match command {
        FareCommand::Quote { rules } => {
            let settings = rules_for(rules)?;
            let rules = settings.fare_rules()?;
            #[derive(serde::Deserialize)]
            struct Input {
                category: cityos_fare::Category,
                taps: Vec<cityos_fare::Tap>,
            }
            let input: Input = serde_json::from_reader(std::io::stdin().lock())
                .context("standard input must be JSON like {\"category\": \"adult\", \"taps\": [{\"at\": \"2026-03-02T08:00:00\", \"kind\": \"in\", \"stop_id\": \"…\", \"route_id\": \"…\", \"mode\": \"trunk\"}]}")?;
            let store = open_store(&settings).await?;
            let network: std::sync::Arc<dyn cityos_card::NetworkView> =
                match store.active_network().await? {
                    Some(record) => {
                        let bytes = store.network_bytes(record.id).await?;
                        std::sync::Arc::new(cityos_card::TransitView(std::sync::Arc::new(
                            cityos_transit::Network::from_bytes(&bytes)?,
                        )))
                    }
                    None => std::sync::Arc::new(cityos_card::NoNetwork),
                };
            let quote = cityos_fare::quote(&rules, input.category, &input.taps, network.as_ref())?;
            println!("{}", serde_json::to_string_pretty(&quote)?);
            Ok(())
        }
        FareCommand::Audit => {
            let settings = rules_for(None)?;
            let store = open_store(&settings).await?;
            // Audit with the rules the store last used: an audit changes nothing.
            let latest = store.fare_rules_versions().await?.pop().map(|v| v.1);
            let rules = latest.unwrap_or_else(|| cityos_fare::FareRules::seoul_toml().to_owned());
            let desk = cityos_card::CardDesk::open(
                store,
                &rules,
                std::sync::Arc::new(
                    || -> std::sync::Arc<dyn cityos_card::NetworkView + Send + Sync> {
                        std::sync::Arc::new(cityos_card::NoNetwork)
                    },
                ),
            )
            .await
            .context("the card log could not be replayed")?;
            let report = desk.audit().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.holds() {
                bail!("the ledger audit FAILED");
            }
            eprintln!(
                "the ledger audit holds: {} operations, {} transfers, balances sum to zero",
                report.operations, report.transfers
            );
            Ok(())
        }
        FareCommand::ExportGtfs { out, rules } => {
            let rules = rules_for(rules)?.fare_rules()?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            for (name, text) in cityos_fare::export_gtfs_fares_v2(&rules) {
                std::fs::write(out.join(name), text)
                    .with_context(|| format!("cannot write {name}"))?;
            }
            eprintln!(
                "wrote GTFS Fares v2 files to {} (see docs/fares.md for what Fares v2 cannot express)",
                out.display()
            );
            Ok(())
        }
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(&settings.database)
        .await
        .with_context(|| format!("cannot open the store at {}", settings.database))
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("CITYOS_PASSWORD") {
        return Ok(p);
    }
    eprintln!("password (then Enter):");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    bar
}

/// Writes a generated city, showing progress.
fn generate(out: &Path, city: &CityArgs) -> anyhow::Result<cityos_sim::CitySummary> {
    let progress = bar(
        0,
        "{spinner} generating {msg} [{bar:40}] {human_pos}/{human_len} stop times ({eta})",
    );
    progress.set_message(format!(
        "a {} city (seed {})",
        city.size.as_str(),
        city.seed
    ));
    let started = Instant::now();
    let summary =
        cityos_sim::generate_city_with_progress(&city.options(), out, &mut |done, total| {
            progress.set_length(total);
            progress.set_position(done);
        })
        .with_context(|| format!("cannot generate the city into {}", out.display()))?;
    progress.finish_and_clear();
    eprintln!(
        "generated {} routes, {} stops, {} trips, {} stop times into {} in {:.1} s",
        summary.routes,
        summary.stops,
        summary.trips,
        summary.stop_times,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// Imports a feed into the store, showing progress and the loader's report.
async fn import(store: &Store, path: &Path) -> anyhow::Result<cityos_server::network::Imported> {
    let progress = bar(
        0,
        "{spinner} importing {msg} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({eta})",
    );
    let bar_handle = progress.clone();
    let started = Instant::now();
    let source = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let result = cityos_server::import_feed(store, path.to_owned(), &source, move |p| {
        bar_handle.set_length(p.bytes_total);
        bar_handle.set_position(p.bytes_done);
        bar_handle.set_message(p.file.to_owned());
    })
    .await;
    progress.finish_and_clear();
    let imported = match result {
        Ok(imported) => imported,
        Err(cityos_server::network::ImportError::Feed(cityos_transit::LoadError::Invalid(
            report,
        ))) => {
            eprint!("{report}");
            bail!(
                "{} was not imported: {} error(s), {} warning(s); the network already served is unchanged",
                path.display(),
                report.error_count(),
                report.warning_count()
            );
        }
        Err(e) => return Err(e).with_context(|| format!("{} was not imported", path.display())),
    };
    for warning in &imported.report.warnings {
        eprintln!("warning: {warning}");
    }
    if imported.report.more_warnings > 0 {
        eprintln!(
            "warning: … and {} more warnings",
            imported.report.more_warnings
        );
    }
    let s = imported.network.summary();
    eprintln!(
        "imported {}: {} agencies, {} routes, {} stops, {} trips, {} stop times ({} warnings) in {:.1} s; now serving network {}",
        path.display(),
        s.agencies,
        s.routes,
        s.stops,
        s.trips,
        s.stop_times,
        imported.report.warning_count(),
        started.elapsed().as_secs_f64(),
        imported.record.id
    );
    Ok(imported)
}

/// Serves until SIGTERM or Ctrl-C; `served` is a network already in memory;
/// `on_ready` starts whatever else runs beside the server (the demo's riders).
async fn serve_http(
    store: Store,
    settings: &Settings,
    served: Option<Served>,
    on_ready: impl FnOnce(&AppState, Option<std::net::SocketAddr>),
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut state = AppState::new(
        store.clone(),
        UiConfig {
            basemap_url: settings.basemap_url.clone(),
            city_name: settings.city_name.clone(),
        },
    );
    state
        .start_cards(&settings.fare_rules_toml()?)
        .await
        .context("the card desk could not start")?;
    state
        .start_civic(settings.civic.clone())
        .await
        .context("the complaint desk could not start")?;
    match served {
        Some(served) => state.network.set(served, &state.metrics),
        None => {
            if let Err(e) = state.network.refresh(&store, &state.metrics).await {
                tracing::error!("the stored network could not be loaded: {e}");
            }
            if state.network.get().is_none() {
                tracing::warn!(
                    "no transit network yet: import one with `cityos import gtfs <feed>`"
                );
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    // Devices' messages flow once both the broker and its subscriber are up.
    let mqtt = match settings.mqtt.clone() {
        Some(source) => Some(
            cityos_server::mqtt::start(&state, source)
                .await
                .context("MQTT could not start")?,
        ),
        None => None,
    };
    if let Some(addr) = mqtt.as_ref().and_then(|m| m.broker_addr()) {
        eprintln!(
            "MQTT broker for devices on {addr} (username = device id, password = its API key)"
        );
    }
    use cityos_server::realtime::PolledFeed;
    let polled = (settings.poll_positions.iter())
        .map(|u| (u, PolledFeed::VehiclePositions))
        .chain(
            settings
                .poll_trip_updates
                .iter()
                .map(|u| (u, PolledFeed::TripUpdates)),
        );
    for (url, kind) in polled {
        eprintln!("polling {kind:?} from {url} every 10 s");
        tokio::spawn(cityos_server::realtime::poll_feed(
            state.clone(),
            url.clone(),
            kind,
            std::time::Duration::from_secs(10),
        ));
    }
    on_ready(&state, mqtt.as_ref().and_then(|m| m.broker_addr()));
    eprintln!("cityos is serving http://{address}/ (API docs: http://{address}/docs)");
    cityos_server::serve(listener, state, until).await?;
    drop(mqtt);
    eprintln!("cityos stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// The whole system on embedded defaults: generate, import, create an admin, serve.
async fn demo(settings: &Settings, city: &CityArgs, no_open: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let feed_dir = settings
        .data_dir
        .join(format!("city-{}-{}", city.size.as_str(), city.seed));
    let out = feed_dir.clone();
    let args = city.clone();
    tokio::task::spawn_blocking(move || generate(&out, &args)).await??;
    let store = open_store(settings).await?;
    let imported = import(&store, &feed_dir).await?;
    let accounts = Accounts::new(store.clone());
    let password_file = settings.data_dir.join("admin-password.txt");
    let password = match std::fs::read_to_string(&password_file) {
        Ok(p) => p.trim().to_owned(),
        Err(_) => {
            let p = format!("demo-{:016x}", rand_seed());
            std::fs::write(&password_file, &p)
                .with_context(|| format!("cannot write {}", password_file.display()))?;
            p
        }
    };
    accounts
        .ensure_admin("admin@cityos.local", &password)
        .await?;
    eprintln!(
        "admin login: admin@cityos.local / {password} (kept in {})",
        password_file.display()
    );
    if !no_open {
        open_browser(&format!("http://{}/", settings.listen));
    }
    let network = std::sync::Arc::new(imported.network);
    let served = Served {
        id: imported.record.id,
        network: network.clone(),
    };
    let seed = city.seed;
    let keys_file = settings.data_dir.join("device-keys.json");
    let on_ready = move |state: &AppState, broker: Option<std::net::SocketAddr>| {
        if let Some(desk) = state.civic.clone() {
            tokio::spawn(demo::run_citizens(desk, network.clone(), seed));
        }
        let Some(broker) = broker else {
            tracing::warn!(
                "the simulated vehicles and validators publish to the embedded MQTT broker, which is off"
            );
            return;
        };
        let keys = demo::DeviceKeys::open(state.accounts.clone(), keys_file);
        if let Some(desk) = state.cards.clone() {
            tokio::spawn(demo::run_riders(
                desk,
                network.clone(),
                seed,
                broker,
                keys.clone(),
            ));
        }
        tokio::spawn(demo::run_vehicles(broker, network, seed, keys));
    };
    serve_http(store, settings, Some(served), on_ready, shutdown_signal()).await
}

async fn replay_command(settings: &Settings, args: replay::ReplayArgs) -> anyhow::Result<()> {
    if !(args.speed.is_finite() && args.speed >= 0.0) {
        bail!(
            "--speed must be 0 (as fast as possible) or a positive number of replayed seconds per second"
        );
    }
    // Bad positions fail before anything is imported.
    let path = args.positions.clone();
    let (positions, skipped) =
        tokio::task::spawn_blocking(move || replay::read_positions(&path)).await??;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let store = open_store(settings).await?;
    let imported = import(&store, &args.gtfs).await?;
    let served = Served {
        id: imported.record.id,
        network: std::sync::Arc::new(imported.network),
    };
    let outcome = std::sync::Arc::new(std::sync::OnceLock::new());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let recorded = outcome.clone();
    let (speed, snapshots) = (args.speed, args.snapshots.clone());
    let on_ready = move |state: &AppState, _| {
        let state = state.clone();
        tokio::spawn(async move {
            let Some(served) = state.network.get() else {
                return;
            };
            let result = replay::drive(state, served, positions, speed, snapshots).await;
            match &result {
                Ok(summary) => replay::report(summary, skipped),
                Err(e) => eprintln!("error: the replay stopped: {e:#}"),
            }
            let _ = recorded.set(result.is_ok());
            let _ = done_tx.send(());
        });
    };
    let linger = args.linger;
    let until = async move {
        if linger {
            shutdown_signal().await;
        } else {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = done_rx => {}
            }
        }
    };
    serve_http(store, settings, Some(served), on_ready, until).await?;
    match outcome.get() {
        Some(true) | None => Ok(()),
        Some(false) => bail!("the replay failed"),
    }
}

fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Opens the page in a browser when there is a desktop to show it on.
fn open_browser(url: &str) {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return;
    }
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
