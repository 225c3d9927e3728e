//! Settings: command-line flags win over `CITYOS_…` environment variables
//! (both handled by clap), which win over the TOML config file, which wins
//! over the defaults here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Settings shared by every command that touches the store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// TOML file with any of: data_dir, database, listen, basemap_url, city_name, fare_rules, mqtt_listen, mqtt, poll_positions, poll_trip_updates, photo_dir, smtp, mail_from, complaints_per_account, complaints_per_address.
    #[arg(long, env = "CITYOS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and other files [default: ./cityos-data].
    #[arg(long, env = "CITYOS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` for PostgreSQL; default: a SQLite file in the data directory.
    #[arg(long, env = "CITYOS_DATABASE", global = true)]
    pub database: Option<String>,
}

/// Settings of the HTTP server.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CITYOS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// XYZ tile URL template for a basemap under the web map (none by default: it works offline).
    #[arg(long, env = "CITYOS_BASEMAP_URL")]
    pub basemap_url: Option<String>,
    /// The city's name in the web page header.
    #[arg(long, env = "CITYOS_CITY_NAME")]
    pub city_name: Option<String>,
    /// TOML file of fare rules [default: Seoul's, built in].
    #[arg(long, env = "CITYOS_FARE_RULES")]
    pub fare_rules: Option<PathBuf>,
    /// Where the embedded MQTT broker listens, or `off` [default: 127.0.0.1:1883; 0.0.0.0:1883 for real devices].
    #[arg(long, env = "CITYOS_MQTT_LISTEN")]
    pub mqtt_listen: Option<String>,
    /// An external MQTT broker to subscribe to instead, e.g. `mqtt://user:pass@host:1883`.
    #[arg(long, env = "CITYOS_MQTT")]
    pub mqtt: Option<String>,
    /// A GTFS-realtime VehiclePositions feed to poll every 10 s (repeat for several).
    #[arg(
        long = "poll-positions",
        env = "CITYOS_POLL_POSITIONS",
        value_delimiter = ','
    )]
    pub poll_positions: Vec<String>,
    /// Another system's GTFS-realtime TripUpdates feed to poll every 10 s, shown where no vehicle reports to cityos.
    #[arg(
        long = "poll-trip-updates",
        env = "CITYOS_POLL_TRIP_UPDATES",
        value_delimiter = ','
    )]
    pub poll_trip_updates: Vec<String>,
    /// Where complaint photos are stored [default: <data_dir>/photos].
    #[arg(long, env = "CITYOS_PHOTO_DIR")]
    pub photo_dir: Option<PathBuf>,
    /// SMTP server for complaint notifications, `smtp://host:port` [default: none, in-app only].
    #[arg(long, env = "CITYOS_SMTP")]
    pub smtp: Option<String>,
    /// Sender address of notification emails [default: complaints@cityos.local].
    #[arg(long, env = "CITYOS_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Complaints one account may file per hour [default: 20].
    #[arg(long, env = "CITYOS_COMPLAINTS_PER_ACCOUNT")]
    pub complaints_per_account: Option<u32>,
    /// Complaints one client address may file per hour [default: 60].
    #[arg(long, env = "CITYOS_COMPLAINTS_PER_ADDRESS")]
    pub complaints_per_address: Option<u32>,
}

/// The config file's contents; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database: Option<String>,
    listen: Option<SocketAddr>,
    basemap_url: Option<String>,
    city_name: Option<String>,
    fare_rules: Option<PathBuf>,
    mqtt_listen: Option<String>,
    mqtt: Option<String>,
    poll_positions: Option<Vec<String>>,
    poll_trip_updates: Option<Vec<String>>,
    photo_dir: Option<PathBuf>,
    smtp: Option<String>,
    mail_from: Option<String>,
    complaints_per_account: Option<u32>,
    complaints_per_address: Option<u32>,
}

/// Settings after merging every source.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Store location (a SQLite path or a PostgreSQL URL).
    pub database: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Basemap template.
    pub basemap_url: Option<String>,
    /// City name.
    pub city_name: String,
    /// Fare rules file, if not Seoul's.
    pub fare_rules: Option<PathBuf>,
    /// Where MQTT comes from; `None` when switched off.
    pub mqtt: Option<cityos_server::mqtt::MqttSource>,
    /// GTFS-realtime VehiclePositions URLs to poll.
    pub poll_positions: Vec<String>,
    /// GTFS-realtime TripUpdates URLs of other systems to poll.
    pub poll_trip_updates: Vec<String>,
    /// The complaint desk's photo folder, SMTP server and rate limits.
    pub civic: cityos_civic::Settings,
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

impl Settings {
    /// The fare rules in force as TOML: the configured file, or Seoul's; checked before use.
    pub fn fare_rules_toml(&self) -> anyhow::Result<String> {
        let text = match &self.fare_rules {
            None => return Ok(cityos_fare::FareRules::seoul_toml().to_owned()),
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read fare rules {}", path.display()))?,
        };
        let path = self.fare_rules.as_deref().unwrap_or(Path::new(""));
        cityos_fare::FareRules::from_toml(&text)
            .with_context(|| format!("fare rules {} are not valid", path.display()))?;
        Ok(text)
    }

    /// The fare rules in force.
    pub fn fare_rules(&self) -> anyhow::Result<cityos_fare::FareRules> {
        Ok(cityos_fare::FareRules::from_toml(&self.fare_rules_toml()?)?)
    }

    /// Merges flags/env (`store`, `serve`) over the config file over defaults.
    pub fn resolve(store: &StoreArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Settings> {
        let file = read_file(store.config.as_deref())?;
        let data_dir = store
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("cityos-data"));
        let database = store
            .database
            .clone()
            .or(file.database)
            .unwrap_or_else(|| data_dir.join("cityos.db").display().to_string());
        let listen = serve
            .and_then(|s| s.listen)
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let basemap_url = serve
            .and_then(|s| s.basemap_url.clone())
            .or(file.basemap_url);
        if let Some(url) = &basemap_url {
            anyhow::ensure!(
                url.contains("{z}") && url.contains("{x}") && url.contains("{y}"),
                "basemap_url '{url}' must be an XYZ template with {{z}}, {{x}} and {{y}}"
            );
        }
        let city_name = serve
            .and_then(|s| s.city_name.clone())
            .or(file.city_name)
            .unwrap_or_else(|| "cityos".to_owned());
        let fare_rules = serve.and_then(|s| s.fare_rules.clone()).or(file.fare_rules);
        let mqtt = match (
            serve.and_then(|s| s.mqtt.clone()).or(file.mqtt),
            serve
                .and_then(|s| s.mqtt_listen.clone())
                .or(file.mqtt_listen),
        ) {
            (Some(url), _) => Some(cityos_server::mqtt::MqttSource::External(url)),
            (None, Some(off)) if off == "off" => None,
            (None, Some(addr)) => Some(cityos_server::mqtt::MqttSource::Embedded(
                addr.parse().with_context(|| {
                    format!("mqtt_listen '{addr}' is not an address like 127.0.0.1:1883 (or 'off')")
                })?,
            )),
            (None, None) => Some(cityos_server::mqtt::MqttSource::Embedded(SocketAddr::from(
                ([127, 0, 0, 1], cityos_mqtt::DEFAULT_PORT),
            ))),
        };
        let urls = |key: &str, flag: Option<Vec<String>>, file: Option<Vec<String>>| {
            let urls = match flag {
                Some(urls) if !urls.is_empty() => urls,
                _ => file.unwrap_or_default(),
            };
            for url in &urls {
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "{key} '{url}' is not an http:// or https:// URL"
                );
            }
            Ok(urls)
        };
        let poll_positions = urls(
            "poll_positions",
            serve.map(|s| s.poll_positions.clone()),
            file.poll_positions,
        )?;
        let poll_trip_updates = urls(
            "poll_trip_updates",
            serve.map(|s| s.poll_trip_updates.clone()),
            file.poll_trip_updates,
        )?;
        let mut civic = cityos_civic::Settings::new(&data_dir);
        if let Some(dir) = serve.and_then(|s| s.photo_dir.clone()).or(file.photo_dir) {
            civic.photo_dir = dir;
        }
        let mail_from = serve
            .and_then(|s| s.mail_from.clone())
            .or(file.mail_from)
            .unwrap_or_else(|| "complaints@cityos.local".to_owned());
        if let Some(url) = serve.and_then(|s| s.smtp.clone()).or(file.smtp) {
            civic.smtp = Some(
                cityos_civic::mail::SmtpSettings::parse(&url, &mail_from)
                    .map_err(|e| anyhow::anyhow!("smtp: {e}"))?,
            );
        }
        if let Some(n) = serve
            .and_then(|s| s.complaints_per_account)
            .or(file.complaints_per_account)
        {
            civic.per_account_per_hour = n;
        }
        if let Some(n) = serve
            .and_then(|s| s.complaints_per_address)
            .or(file.complaints_per_address)
        {
            civic.per_address_per_hour = n;
        }
        Ok(Settings {
            data_dir,
            database,
            listen,
            basemap_url,
            city_name,
            fare_rules,
            mqtt,
            poll_positions,
            poll_trip_updates,
            civic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_args(config: Option<PathBuf>, database: Option<&str>) -> StoreArgs {
        StoreArgs {
            config,
            data_dir: None,
            database: database.map(str::to_owned),
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cityos.toml");
        std::fs::write(
            &file,
            "database = \"postgres://db/city\"\nlisten = \"0.0.0.0:9000\"\ncity_name = \"Busan\"\n",
        )
        .unwrap();
        let from_file = Settings::resolve(&store_args(Some(file.clone()), None), None).unwrap();
        assert_eq!(from_file.database, "postgres://db/city");
        assert_eq!(from_file.listen.port(), 9000);
        assert_eq!(from_file.city_name, "Busan");
        let serve = ServeArgs {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..ServeArgs::default()
        };
        let flagged =
            Settings::resolve(&store_args(Some(file), Some("/tmp/x.db")), Some(&serve)).unwrap();
        assert_eq!(flagged.database, "/tmp/x.db");
        assert_eq!(flagged.listen.port(), 7000);
        let defaults = Settings::resolve(&store_args(None, None), None).unwrap();
        assert_eq!(defaults.database, "cityos-data/cityos.db");
        assert_eq!(defaults.listen.port(), 8080);
    }

    #[test]
    fn a_bad_config_file_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cityos.toml");
        std::fs::write(&file, "databse = \"x\"\n").unwrap();
        let err = Settings::resolve(&store_args(Some(file), None), None).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `databse`"),
            "{err:#}"
        );
    }
}
