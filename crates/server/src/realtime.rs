//! Live transit: positions in (HTTP or MQTT; GTFS-realtime protobuf or
//! JSON), the real-time engine of `cityos-realtime`, and what it serves.
//!
//! Ingest takes the engine's lock for each batch. Everything read — the
//! feeds, the vehicles, the stop boards' predictions, road speeds — comes
//! from a [`LiveSnapshot`] that [`run`] rebuilds every second and publishes
//! on a `watch` channel, so readers never wait for ingest and the SSE
//! streams wake when it changes. The same task stores the stop events
//! detected since the last snapshot (history) and the incidents the engine
//! proposes.
//!
//! The engine is bound to one network; when another network is served, the
//! next position starts a fresh engine on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use cityos_realtime::detect::EventKind;
use cityos_realtime::gtfsrt::FeedEntity;
use cityos_realtime::incidents::{self, Incident};
use cityos_realtime::{
    Config, DecodeError, Engine, PositionRecord, PositionView, RoadSpeed, RoadSpeeds, RunInfo,
    StopEvent, StopPrediction, for_each_position,
};
use cityos_store::live::StopEventRow;
use cityos_transit::Network;
use jiff::civil::Date;
use prost::Message as _;
use rustc_hash::FxHashMap;
use tokio::sync::watch;

use crate::AppState;
use crate::metrics::Metrics;
use crate::network::Served;

/// What one batch of positions did.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct IngestSummary {
    /// Positions taken in.
    pub accepted: u64,
    /// Positions refused, by reason (`unknown_trip`, `stale`, `off_route`, …).
    pub rejected: BTreeMap<String, u64>,
}

/// Why a batch of positions was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not a GTFS-realtime `FeedMessage`.
    #[error(transparent)]
    Feed(#[from] DecodeError),
    /// JSON that is not a position or an array of positions.
    #[error("not a JSON position: {0}")]
    Json(String),
    /// A device sent a position of another vehicle.
    #[error("vehicle_id '{0}' is not this device")]
    NotThisDevice(String),
}

/// One vehicle position as JSON, for devices and systems that do not speak
/// protobuf. The field names are GTFS-realtime's.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonPosition {
    /// The vehicle; a device's own id when it publishes over MQTT.
    #[serde(default)]
    vehicle_id: Option<String>,
    /// The trip it serves.
    #[serde(default)]
    trip_id: Option<String>,
    /// The route.
    #[serde(default)]
    route_id: Option<String>,
    /// Service date of the trip, `YYYYMMDD` or `YYYY-MM-DD`.
    #[serde(default)]
    start_date: Option<String>,
    /// WGS-84 latitude.
    latitude: f64,
    /// WGS-84 longitude.
    longitude: f64,
    /// Heading, degrees clockwise from north.
    #[serde(default)]
    bearing: Option<f32>,
    /// Speed, metres per second.
    #[serde(default)]
    speed: Option<f32>,
    /// When measured, POSIX seconds.
    #[serde(default)]
    timestamp: Option<i64>,
}

impl JsonPosition {
    fn into_record(self) -> Result<PositionRecord, IngestError> {
        let start_date = match self.start_date.as_deref() {
            None => None,
            Some(text) => {
                let parsed = if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..])
                        .parse::<Date>()
                        .ok()
                } else {
                    text.parse::<Date>().ok()
                };
                Some(parsed.ok_or_else(|| {
                    IngestError::Json(format!("start_date '{text}' is not a date like 20260303"))
                })?)
            }
        };
        Ok(PositionRecord {
            vehicle_id: self.vehicle_id.unwrap_or_default(),
            trip_id: self.trip_id.unwrap_or_default(),
            route_id: self.route_id.unwrap_or_default(),
            start_date,
            latitude: self.latitude,
            longitude: self.longitude,
            bearing: self.bearing,
            speed: self.speed,
            timestamp: self.timestamp,
            ..PositionRecord::default()
        })
    }
}

/// The ingest clock: wall time, or the replayed time during `cityos replay`.
#[derive(Debug, Default)]
pub struct Clock {
    replayed: AtomicI64,
}

impl Clock {
    /// Now, POSIX seconds.
    pub fn now(&self) -> i64 {
        match self.replayed.load(Ordering::Relaxed) {
            0 => jiff::Timestamp::now().as_second(),
            t => t,
        }
    }

    /// Puts the clock at `t` (POSIX seconds) for a replay.
    pub fn replay_at(&self, t: i64) {
        self.replayed.store(t.max(1), Ordering::Relaxed);
    }
}

/// One live run's predictions, for stop boards.
#[derive(Debug, Clone)]
pub struct LiveRun {
    /// The vehicle serving it.
    pub vehicle_id: String,
    /// Predicted arrivals at its remaining stops, in stop order.
    pub predictions: Vec<StopPrediction>,
}

impl LiveRun {
    /// The prediction for stop `index` of the trip, if it is still ahead.
    pub fn at_stop(&self, index: u32) -> Option<&StopPrediction> {
        let first = self.predictions.first()?.stop_index;
        self.predictions.get(index.checked_sub(first)? as usize)
    }

    /// Whether the vehicle has already passed stop `index`.
    pub fn passed(&self, index: u32) -> bool {
        self.predictions
            .first()
            .is_none_or(|p| index < p.stop_index)
    }
}

/// A vehicle on a trip, as the map and the vehicle API show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LiveVehicle {
    /// The vehicle.
    pub vehicle_id: String,
    /// Its trip.
    pub trip_id: String,
    /// The trip's route.
    pub route_id: String,
    /// The route's short name.
    pub route_short_name: String,
    /// `#RRGGBB`.
    pub route_color: Option<String>,
    /// Service date, `YYYY-MM-DD`.
    pub service_date: String,
    /// Last reported latitude.
    pub lat: f64,
    /// Last reported longitude.
    pub lon: f64,
    /// Heading, degrees clockwise from north.
    pub bearing: Option<f32>,
    /// Speed, metres per second.
    pub speed: Option<f32>,
    /// Minutes late (negative: early), against the timetable at its position.
    pub delay_minutes: f64,
    /// The next stop it will reach.
    pub next_stop_id: Option<String>,
    /// When it last reported, POSIX seconds.
    pub last_seen: i64,
    /// Since when it has stood still, POSIX seconds, if it does.
    pub halted_since: Option<i64>,
}

/// Everything the live endpoints read, as of one moment.
#[derive(Debug, Default)]
pub struct LiveSnapshot {
    /// When, POSIX seconds.
    pub at: i64,
    /// The network the engine runs on.
    pub network_id: i64,
    /// Live runs by (trip, service date).
    pub runs: FxHashMap<(u32, Date), LiveRun>,
    /// Vehicles on trips.
    pub vehicles: Vec<LiveVehicle>,
    /// The TripUpdates feed, encoded.
    pub trip_updates: Bytes,
    /// The VehiclePositions feed, encoded.
    pub vehicle_positions: Bytes,
    /// The ServiceAlerts feed, encoded.
    pub alerts: Bytes,
    /// Road speeds, with the local hour the typical speeds are for.
    pub roads: Vec<RoadSpeed>,
    /// Stop boards rendered from this snapshot, by (stop, query), so a
    /// display polling a busy stop costs a lookup; gone with the snapshot.
    pub boards: Mutex<HashMap<(u32, String), Bytes>>,
}

/// Most boards one snapshot keeps rendered.
pub const MAX_CACHED_BOARDS: usize = 20_000;

impl LiveSnapshot {
    /// The board of `stop` for `query`, rendered by `render` unless this
    /// snapshot already holds it.
    pub fn board(&self, stop: u32, query: &str, render: impl FnOnce() -> Bytes) -> Bytes {
        let key = (stop, query.to_owned());
        if let Some(hit) = self
            .boards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return hit.clone();
        }
        let rendered = render();
        let mut boards = self.boards.lock().unwrap_or_else(|e| e.into_inner());
        if boards.len() < MAX_CACHED_BOARDS {
            boards.insert(key, rendered.clone());
        }
        rendered
    }

    /// The moment boards built from this snapshot are for: the snapshot's
    /// own, so every request in the same second gets the same board.
    pub fn now(&self, clock: &Clock) -> i64 {
        if self.at > 0 { self.at } else { clock.now() }
    }
}

struct LiveEngine {
    network_id: i64,
    engine: Engine<Arc<Network>>,
    speeds: RoadSpeeds,
    /// Stop events not yet stored.
    events: Vec<StopEvent>,
}

/// The real-time engine of the served network and its latest snapshot.
pub struct LiveTransit {
    /// The ingest clock.
    pub clock: Clock,
    engine: Mutex<Option<LiveEngine>>,
    snapshot: watch::Sender<Arc<LiveSnapshot>>,
    alerts_changed: AtomicBool,
    proposals: tokio::sync::Mutex<Proposals>,
    /// Another system's predictions by run, with when they were received.
    external: Mutex<FxHashMap<(u32, Date), (i64, LiveRun)>>,
    /// History kept from before a restart, for the next engine made.
    remembered: Mutex<Option<cityos_realtime::LearnedHistory>>,
}

/// How often what the engine learned is written to the store.
pub const SAVE_HISTORY_EVERY_S: i64 = 300;

/// How long another system's prediction of a run stands without news.
pub const EXTERNAL_MAX_AGE_S: i64 = 300;

impl Default for LiveTransit {
    fn default() -> LiveTransit {
        LiveTransit {
            clock: Clock::default(),
            alerts_changed: AtomicBool::new(false),
            proposals: tokio::sync::Mutex::default(),
            external: Mutex::default(),
            remembered: Mutex::default(),
            engine: Mutex::new(None),
            snapshot: watch::Sender::new(Arc::default()),
        }
    }
}

/// Whether `bytes` look like JSON rather than protobuf: a protobuf
/// `FeedMessage` starts with field 1 or 2 (bytes 0x0a or 0x12), never `{` or `[`.
fn is_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[')
}

impl LiveTransit {
    /// The path along the shape of each road, in order (`None` where the
    /// engine no longer knows the trip); briefly holds the engine's lock.
    pub fn road_paths(&self, roads: &[RoadSpeed]) -> Vec<Option<Vec<(f64, f64)>>> {
        let guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        roads
            .iter()
            .map(|road| {
                let live = guard.as_ref()?;
                live.engine
                    .index()
                    .path_between(road.trip, road.stop_index as usize)
            })
            .collect()
    }

    /// Road speeds with the typical speeds of local hour `hour`.
    pub fn road_speeds_at_hour(&self, hour: u8) -> Vec<RoadSpeed> {
        let now = self.clock.now() as f64;
        let guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .map(|live| live.speeds.speeds(now, hour).collect())
            .unwrap_or_default()
    }

    /// Says that incidents changed, so the next snapshot rebuilds the alerts.
    pub fn incidents_changed(&self) {
        self.alerts_changed.store(true, Ordering::Relaxed);
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<LiveSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on each new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<LiveSnapshot>> {
        self.snapshot.subscribe()
    }

    /// Takes in positions: a GTFS-realtime `FeedMessage` of VehiclePositions,
    /// or JSON (one [`JsonPosition`] or an array). From a device, every
    /// position is that device's: one naming another vehicle refuses the
    /// batch, and one naming none is given the device's id.
    pub fn ingest(
        &self,
        served: &Served,
        bytes: &[u8],
        metrics: &Metrics,
        device: Option<&str>,
    ) -> Result<IngestSummary, IngestError> {
        let records = if is_json(bytes) {
            let value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| IngestError::Json(e.to_string()))?;
            let list = match value {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            };
            let records = list
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    serde_json::from_value::<JsonPosition>(item)
                        .map_err(|e| IngestError::Json(format!("position {i}: {e}")))
                        .and_then(JsonPosition::into_record)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(records)
        } else {
            None
        };
        // A feed that breaks halfway is refused whole, before anything is taken in.
        if records.is_none() {
            for_each_position(bytes, |_| {})?;
        }
        if let Some(device) = device {
            let foreign = |id: &str| !id.is_empty() && id != device;
            match &records {
                Some(records) => {
                    if let Some(r) = records.iter().find(|r| foreign(&r.vehicle_id)) {
                        return Err(IngestError::NotThisDevice(r.vehicle_id.clone()));
                    }
                }
                None => {
                    let mut other = None;
                    for_each_position(bytes, |v| {
                        if foreign(v.vehicle_id) && other.is_none() {
                            other = Some(v.vehicle_id.to_owned());
                        }
                    })?;
                    if let Some(id) = other {
                        return Err(IngestError::NotThisDevice(id));
                    }
                }
            }
        }
        match &records {
            Some(records) => Ok(self.ingest_with(served, metrics, device, |take| {
                records.iter().for_each(|r| take(r.view()));
                Ok(())
            })?),
            None => self.ingest_with(served, metrics, device, |take| {
                for_each_position(bytes, take)?;
                Ok(())
            }),
        }
    }

    /// The engine's lock, with an engine for `served` in it: a new network
    /// starts a fresh engine.
    fn engine_of(&self, served: &Served) -> std::sync::MutexGuard<'_, Option<LiveEngine>> {
        let mut guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|e| e.network_id != served.id) {
            let mut engine = Engine::new(served.network.clone(), Config::default());
            let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(history) = remembered.as_ref() {
                let taken = engine.learn_history(history);
                tracing::info!(taken, "link times learned before are in use again");
            }
            *guard = Some(LiveEngine {
                network_id: served.id,
                engine,
                speeds: RoadSpeeds::new(),
                events: Vec::new(),
            });
        }
        guard
    }

    /// What the engine has learned by time of day and day type, if one runs.
    pub fn learned_history(&self) -> Option<cityos_realtime::LearnedHistory> {
        let guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|live| live.engine.learned_history())
    }

    /// History learned before (kept in the store), for every engine made from now on.
    pub fn remember(&self, history: cityos_realtime::LearnedHistory) {
        *self.remembered.lock().unwrap_or_else(|e| e.into_inner()) = Some(history);
    }

    /// Takes in another system's predictions: a GTFS-realtime TripUpdates
    /// feed. They stand for runs the engine has no vehicle on, until
    /// replaced or [`EXTERNAL_MAX_AGE_S`] old. Returns the runs taken.
    pub fn ingest_trip_updates(&self, served: &Served, bytes: &[u8]) -> Result<usize, IngestError> {
        let feed = cityos_realtime::decode::decode_feed(bytes)?;
        let now = self.clock.now();
        let read =
            cityos_realtime::external::trip_updates_to_predictions(&served.network, &feed, now);
        // The snapshot is built from the engine, so there must be one.
        drop(self.engine_of(served));
        let mut external = self.external.lock().unwrap_or_else(|e| e.into_inner());
        external.retain(|_, (at, _)| *at >= now - EXTERNAL_MAX_AGE_S);
        let taken = read.runs.len();
        for run in read.runs {
            external.insert(
                (run.trip, run.date),
                (
                    now,
                    LiveRun {
                        vehicle_id: run.vehicle_id.unwrap_or_default(),
                        predictions: run.predictions,
                    },
                ),
            );
        }
        Ok(taken)
    }

    /// Takes in positions already decoded (a replay reads them from files).
    pub fn ingest_records(
        &self,
        served: &Served,
        records: &[PositionRecord],
        metrics: &Metrics,
    ) -> IngestSummary {
        self.ingest_with(served, metrics, None, |take| {
            records.iter().for_each(|r| take(r.view()));
            Ok(())
        })
        .unwrap_or_default()
    }

    /// Runs `feed`, which hands each position to the engine, judged against
    /// the clock's now; positions from `device` take its id.
    fn ingest_with(
        &self,
        served: &Served,
        metrics: &Metrics,
        device: Option<&str>,
        feed: impl FnOnce(&mut dyn FnMut(PositionView<'_>)) -> Result<(), IngestError>,
    ) -> Result<IngestSummary, IngestError> {
        let now = self.clock.now();
        let mut guard = self.engine_of(served);
        let Some(live) = guard.as_mut() else {
            return Ok(IngestSummary::default());
        };
        let mut summary = IngestSummary::default();
        let mut take = |view: PositionView<'_>| {
            let view = match device {
                Some(device) => PositionView {
                    vehicle_id: device,
                    ..view
                },
                None => view,
            };
            match live.engine.ingest(view, now) {
                Ok(_) => summary.accepted += 1,
                Err(rejection) => {
                    metrics.positions_rejected(rejection.as_str());
                    *summary
                        .rejected
                        .entry(rejection.as_str().to_owned())
                        .or_default() += 1;
                }
            }
        };
        let result = feed(&mut take);
        metrics.positions_accepted.inc_by(summary.accepted);
        let LiveEngine { engine, events, .. } = live;
        events.extend(engine.drain_events());
        result.map(|()| summary)
    }

    /// Rebuilds the snapshot as of the clock's now, publishes it, and
    /// returns the stop events detected since the last call and the
    /// incidents the engine proposes.
    fn refresh(
        &self,
        served: &Served,
        alerts: Bytes,
    ) -> (Vec<StopEventRow>, Vec<incidents::Detection>) {
        let now = self.clock.now();
        let network = &served.network;
        let tz = network.timezone().clone();
        let hour_of = |t: f64| {
            jiff::Timestamp::from_second(t as i64)
                .map(|ts| ts.to_zoned(tz.clone()).hour() as u8)
                .unwrap_or(0)
        };
        let mut guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        let Some(live) = guard.as_mut().filter(|l| l.network_id == served.id) else {
            drop(guard);
            self.snapshot.send_replace(Arc::new(LiveSnapshot {
                at: now,
                network_id: served.id,
                trip_updates: Bytes::from(
                    cityos_realtime::decode::positions_to_feed(&[], now).encode_to_vec(),
                ),
                vehicle_positions: Bytes::from(
                    cityos_realtime::decode::positions_to_feed(&[], now).encode_to_vec(),
                ),
                alerts,
                ..LiveSnapshot::default()
            }));
            return (Vec::new(), Vec::new());
        };
        live.engine.expire(now);
        live.events.extend(live.engine.drain_events());
        let events = std::mem::take(&mut live.events);
        for event in &events {
            live.speeds
                .observe(live.engine.index(), event, hour_of(event.time));
        }
        live.speeds.expire(now as f64);
        let engine = &live.engine;
        let data = network.data();
        let infos: Vec<RunInfo> = engine.runs(now).collect();
        let mut runs = FxHashMap::default();
        let mut vehicles = Vec::with_capacity(infos.len());
        let mut positions = Vec::with_capacity(infos.len());
        let mut predictions = Vec::new();
        for info in &infos {
            engine.predict(info.id, now, &mut predictions);
            let vehicle_id = engine.vehicle_id(info.id).unwrap_or_default().to_owned();
            let range = data.trips.stop_time_range(info.trip);
            let next_stop = data
                .stop_times
                .stop
                .get(range.start + info.next_stop as usize)
                .copied();
            let route_index = data.trips.route[info.trip as usize];
            let route = &data.routes[route_index as usize];
            vehicles.push(LiveVehicle {
                vehicle_id: vehicle_id.clone(),
                trip_id: data.trips.ids.id(info.trip).to_owned(),
                route_id: data.route_ids.id(route_index).to_owned(),
                route_short_name: if route.short_name.is_empty() {
                    route.long_name.clone()
                } else {
                    route.short_name.clone()
                },
                route_color: route.color.as_ref().map(|c| format!("#{c}")),
                service_date: info.date.to_string(),
                lat: info.position.0,
                lon: info.position.1,
                bearing: info.bearing,
                speed: info.speed,
                delay_minutes: (info.delay_s / 6.0).round() / 10.0,
                next_stop_id: next_stop.map(|s| data.stops.ids.id(s).to_owned()),
                last_seen: info.last_seen,
                halted_since: info.halted_since,
            });
            positions.push(PositionRecord {
                vehicle_id: vehicle_id.clone(),
                trip_id: data.trips.ids.id(info.trip).to_owned(),
                route_id: data.route_ids.id(route_index).to_owned(),
                start_date: Some(info.date),
                latitude: info.position.0,
                longitude: info.position.1,
                bearing: info.bearing,
                speed: info.speed,
                timestamp: Some(info.last_seen),
                current_stop_sequence: data
                    .stop_times
                    .sequence
                    .get(range.start + info.next_stop as usize)
                    .copied(),
                stop_id: next_stop
                    .map(|s| data.stops.ids.id(s).to_owned())
                    .unwrap_or_default(),
                current_status: Some(if info.halted_since.is_some() {
                    cityos_realtime::gtfsrt::VehicleStopStatus::StoppedAt
                } else {
                    cityos_realtime::gtfsrt::VehicleStopStatus::InTransitTo
                }),
                ..PositionRecord::default()
            });
            runs.insert(
                (info.trip, info.date),
                LiveRun {
                    vehicle_id,
                    predictions: predictions.clone(),
                },
            );
        }
        // Another system's predictions stand where no vehicle of ours reports.
        let mut feed = engine.trip_updates(now);
        {
            let external = self.external.lock().unwrap_or_else(|e| e.into_inner());
            for (&(trip, date), (at, run)) in external.iter() {
                if *at < now - EXTERNAL_MAX_AGE_S || runs.contains_key(&(trip, date)) {
                    continue;
                }
                let ahead: Vec<StopPrediction> = run
                    .predictions
                    .iter()
                    .filter(|p| p.arrival >= now as f64)
                    .copied()
                    .collect();
                if ahead.is_empty() {
                    continue;
                }
                let vehicle = Some(run.vehicle_id.as_str()).filter(|v| !v.is_empty());
                feed.entity.push(cityos_realtime::trip_update_entity(
                    network, trip, date, vehicle, &ahead, now,
                ));
                runs.insert(
                    (trip, date),
                    LiveRun {
                        vehicle_id: run.vehicle_id.clone(),
                        predictions: ahead,
                    },
                );
            }
        }
        let named: Vec<(RunInfo, &str)> = infos
            .iter()
            .map(|i| (*i, engine.vehicle_id(i.id).unwrap_or("")))
            .collect();
        let detections = incidents::detect(network, engine.index(), &named, engine.lost(), now);
        let snapshot = LiveSnapshot {
            at: now,
            network_id: served.id,
            runs,
            vehicles,
            trip_updates: Bytes::from(feed.encode_to_vec()),
            vehicle_positions: Bytes::from(
                cityos_realtime::decode::positions_to_feed(&positions, now).encode_to_vec(),
            ),
            alerts,
            roads: live
                .speeds
                .speeds(now as f64, hour_of(now as f64))
                .collect(),
            boards: Mutex::default(),
        };
        let rows = events
            .iter()
            .filter_map(|e| {
                let range = data.trips.stop_time_range(e.trip);
                let i = range.start + e.stop_index as usize;
                Some(StopEventRow {
                    service_date: e.date.to_string(),
                    trip_id: data.trips.ids.id(e.trip).to_owned(),
                    stop_sequence: i64::from(*data.stop_times.sequence.get(i)?),
                    stop_id: data.stops.ids.id(e.stop).to_owned(),
                    kind: match e.kind {
                        EventKind::Arrival => "arrival",
                        EventKind::Departure => "departure",
                    }
                    .to_owned(),
                    at: e.time.round() as i64,
                    observed: e.observed,
                })
            })
            .collect();
        drop(guard);
        self.snapshot.send_replace(Arc::new(snapshot));
        (rows, detections)
    }
}

/// The ServiceAlerts feed of the incidents that are active and in force at `now`.
async fn alerts_feed(state: &AppState, network: &Network, now: i64) -> Bytes {
    let rows = match state.store.incidents(now).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!("cannot read incidents: {e}");
            Vec::new()
        }
    };
    let entity = rows
        .into_iter()
        .filter(|row| row.status == "active")
        .filter_map(|row| {
            let incident: Incident = serde_json::from_str(&row.body).ok()?;
            incident.in_force(now).then(|| FeedEntity {
                id: format!("incident-{}", row.id),
                is_deleted: None,
                trip_update: None,
                vehicle: None,
                alert: Some(incident.alert(network)),
            })
        })
        .collect();
    let mut feed = cityos_realtime::decode::positions_to_feed(&[], now);
    feed.entity = entity;
    Bytes::from(feed.encode_to_vec())
}

/// What a polled GTFS-realtime URL carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolledFeed {
    /// Vehicle positions, for the engine.
    VehiclePositions,
    /// Another system's predictions, shown where no vehicle of ours reports.
    TripUpdates,
}

/// Polls the GTFS-realtime feed at `url` every `every` and takes it in, for
/// a city whose vehicles (or predictions) already live in another system.
/// Failures are logged (at the 1st, 2nd, 4th, … in a row) and counted in
/// `cityos_feed_poll_failures_total`; polling goes on.
pub async fn poll_feed(state: AppState, url: String, kind: PolledFeed, every: Duration) {
    let client = match reqwest::Client::builder()
        .timeout(every.max(Duration::from_secs(5)))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(%url, "cannot poll: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u64;
    loop {
        tick.tick().await;
        let result = async {
            let response = client
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| e.to_string())?;
            if response
                .content_length()
                .is_some_and(|n| n > crate::api::live::MAX_FEED as u64)
            {
                return Err("the feed is larger than 16 MiB".to_owned());
            }
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            let served = state
                .network
                .get()
                .ok_or("no transit network is imported yet")?;
            let live = state.live.clone();
            let metrics = state.metrics.clone();
            tokio::task::spawn_blocking(move || match kind {
                PolledFeed::VehiclePositions => live
                    .ingest(&served, &bytes, &metrics, None)
                    .map(|s| s.accepted as usize),
                PolledFeed::TripUpdates => live.ingest_trip_updates(&served, &bytes),
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(taken) => {
                if failures > 0 {
                    tracing::info!(%url, "polling works again");
                }
                failures = 0;
                tracing::debug!(%url, taken, "feed polled");
            }
            Err(e) => {
                failures += 1;
                state.metrics.feed_poll_failures.inc();
                if failures.is_power_of_two() {
                    tracing::warn!(%url, failures, "cannot poll the feed: {e}");
                }
            }
        }
    }
}

/// How often the snapshot is rebuilt.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// What the refresh remembers between rounds.
#[derive(Default)]
struct Proposals {
    /// Proposed incidents by detection key: (incident id, last seen).
    open: HashMap<String, (i64, i64)>,
    /// The alerts feed and when it was built.
    alerts: Option<(i64, Bytes)>,
    /// When the learned history was last written to the store.
    history_saved: i64,
}

/// Reads the history kept in the store into `state`'s live transit, so
/// the engine starts with what was learned before a restart.
pub async fn restore_history(state: &AppState) {
    match state.store.learned_history().await {
        Ok(Some(bytes)) => match postcard::from_bytes::<cityos_realtime::LearnedHistory>(&bytes) {
            Ok(history) => state.live.remember(history),
            Err(e) => tracing::warn!("the stored link-time history is unreadable: {e}"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot read the stored link-time history: {e}"),
    }
}

/// Writes what the engine has learned to the store.
pub async fn save_history(state: &AppState) {
    let live = state.live.clone();
    let Ok(Some(bytes)) = tokio::task::spawn_blocking(move || {
        live.learned_history()
            .and_then(|h| postcard::to_allocvec(&h).ok())
    })
    .await
    else {
        return;
    };
    if let Err(e) = state.store.save_learned_history(bytes).await {
        tracing::warn!("cannot keep the link-time history: {e}");
    }
}

/// Rebuilds the live snapshot every [`REFRESH_INTERVAL`] with [`refresh`].
/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    restore_history(&state).await;
    let mut tick = tokio::time::interval(REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        refresh(&state).await;
    }
}

/// One round: rebuilds and publishes the live snapshot, stores the stop
/// events detected, and records the incidents the engine proposes (once
/// per condition; a proposal whose condition has gone before anyone
/// confirmed it is dismissed).
pub async fn refresh(state: &AppState) {
    let Some(served) = state.network.get() else {
        return;
    };
    let mut memory = state.live.proposals.lock().await;
    let now = state.live.clock.now();
    let stale = memory.alerts.as_ref().is_none_or(|(at, _)| now - at >= 5);
    if stale || state.live.alerts_changed.swap(false, Ordering::Relaxed) {
        memory.alerts = Some((now, alerts_feed(state, &served.network, now).await));
    }
    let feed = memory
        .alerts
        .as_ref()
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    let live = state.live.clone();
    let Ok((events, detections)) =
        tokio::task::spawn_blocking(move || live.refresh(&served, feed)).await
    else {
        return;
    };
    if let Err(e) = state.store.append_stop_events(events).await {
        tracing::warn!("cannot store stop events: {e}");
    }
    for detection in detections {
        if let Some(entry) = memory.open.get_mut(&detection.key) {
            entry.1 = now;
            continue;
        }
        let body = serde_json::to_string(&detection.incident).unwrap_or_default();
        match state
            .store
            .create_incident("proposed", detection.source, Some(&detection.key), &body)
            .await
        {
            Ok(Some(row)) => {
                tracing::info!(key = %detection.key, "incident proposed");
                memory.open.insert(detection.key, (row.id, now));
            }
            // Already open (another replica, or before a restart).
            Ok(None) => {
                memory.open.insert(detection.key, (0, now));
            }
            Err(e) => tracing::warn!("cannot record an incident: {e}"),
        }
    }
    if now - memory.history_saved >= SAVE_HISTORY_EVERY_S {
        memory.history_saved = now;
        save_history(state).await;
    }
    // Conditions gone for two minutes: unconfirmed proposals are dismissed.
    let gone: Vec<(String, i64)> = memory
        .open
        .iter()
        .filter(|(_, (_, seen))| now - seen > 120)
        .map(|(key, (id, _))| (key.clone(), *id))
        .collect();
    for (key, id) in gone {
        memory.open.remove(&key);
        if let Ok(Some(row)) = state.store.incident(id).await
            && row.status == "proposed"
        {
            let _ = state
                .store
                .update_incident(id, "dismissed", &row.body)
                .await;
        }
    }
}
