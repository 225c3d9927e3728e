//! [`Engine`]: the ingest path (validate, match, detect, learn) and the
//! predictions it serves.
//!
//! State is kept per vehicle (its last accepted fix, for ordering and jump
//! checks) and per *run*, one trip on one service date: progress along the
//! shape, the stop detector, observed arrivals. Ingesting a position costs
//! O(1) plus the few shape segments between two fixes; predictions are
//! computed on read, in O(remaining stops) for a run.

use std::ops::Deref;

use jiff::civil::Date;
use rustc_hash::FxHashMap;

use cityos_transit::{NONE, Network};

use crate::detect::{Detected, EventKind, StopDetector};
use crate::geometry::Projection;
use crate::index::TripIndex;
use crate::model::{Departures, Pace, Slot, TravelModel};
use crate::validate::{Config, Counters, Rejection, valid_coordinates};
use crate::wire::PositionView;

/// A run: one trip on one service date, as a handle into the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u32);

/// What an accepted position told the engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accepted {
    /// The run the position belongs to.
    pub run: RunId,
    /// The trip (index into the network's trips).
    pub trip: u32,
    /// Service date of the run.
    pub date: Date,
    /// Position time, POSIX seconds.
    pub time: i64,
    /// Progress along the trip's shape, metres (never decreases within a run).
    pub distance_m: f32,
    /// Distance of the fix from the shape, metres.
    pub offset_m: f32,
}

/// An arrival at or departure from a stop, detected from positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopEvent {
    /// The trip.
    pub trip: u32,
    /// Service date of the run.
    pub date: Date,
    /// Index of the stop within the trip (0 = first stop).
    pub stop_index: u32,
    /// The stop (index into the network's stops).
    pub stop: u32,
    /// Arrival or departure.
    pub kind: EventKind,
    /// When, POSIX seconds.
    pub time: f64,
    /// Whether the moment was seen (see [`Detected::observed`]).
    pub observed: bool,
}

/// A predicted arrival at one stop of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopPrediction {
    /// Index of the stop within the trip.
    pub stop_index: u32,
    /// Predicted arrival, POSIX seconds.
    pub arrival: f64,
    /// 10th percentile of the arrival: 9 times in 10 the bus comes later.
    pub p10: f64,
    /// 90th percentile of the arrival: 9 times in 10 the bus comes earlier.
    pub p90: f64,
    /// Scheduled arrival, POSIX seconds.
    pub scheduled: f64,
}

/// Link times learned by time of day and day type, in a form that outlives
/// an engine: stops and services by their GTFS ids.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LearnedHistory {
    /// Day types, each as the `service_id`s running on such a day.
    pub day_types: Vec<Vec<String>>,
    /// Links as (from `stop_id`, to `stop_id`), each with its history.
    pub links: Vec<(String, String, Vec<HourTotals>)>,
}

/// One link's history at one hour of one day type: (index into
/// [`LearnedHistory::day_types`], hour of the service day, total seconds,
/// traversals).
pub type HourTotals = (u32, u8, f64, f64);

/// A live run as the outside sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunInfo {
    /// Handle for [`Engine::predict`].
    pub id: RunId,
    /// The trip.
    pub trip: u32,
    /// Service date.
    pub date: Date,
    /// Time of the last accepted position, POSIX seconds.
    pub last_seen: i64,
    /// Progress along the shape, metres.
    pub distance_m: f32,
    /// First stop (index in the trip) not yet reached.
    pub next_stop: u32,
    /// Current deviation from the timetable at the vehicle's position,
    /// seconds (late is positive).
    pub delay_s: f64,
    /// Scheduled departure from the trip's first stop, POSIX seconds.
    pub scheduled_start: f64,
    /// The trip's stop pattern: runs with the same pattern drive the same
    /// stops in the same order (for bunching).
    pub pattern: u32,
    /// The vehicle's last reported latitude and longitude.
    pub position: (f64, f64),
    /// Its last reported heading, degrees clockwise from north.
    pub bearing: Option<f32>,
    /// Its last reported speed, metres per second.
    pub speed: Option<f32>,
    /// Since when (POSIX seconds) the vehicle has not moved, if it is halted.
    pub halted_since: Option<i64>,
}

#[derive(Debug, Clone)]
struct Vehicle {
    /// The id it reports (its trip id when it reports none).
    id: Box<str>,
    /// When the engine first accepted a position from it.
    first_t: i64,
    last_t: i64,
    lat: f64,
    lon: f64,
    bearing: Option<f32>,
    speed: Option<f32>,
    run: u32,
    /// Consecutive jump rejections (see [`Engine::ingest`]).
    jumps: u8,
    /// Consecutive fixes on its run's shape but behind it (see [`STRAYS_BEFORE_RELOCATE`]).
    strays: u8,
}

#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub trip: u32,
    pub date: Date,
    date_key: i32,
    /// The day type of the service date (see [`Engine::day_type`]).
    day_type: u32,
    pub pattern: u32,
    /// POSIX seconds of service time 0 for this run (service day start, plus
    /// the run's offset for frequency-based trips).
    pub origin: i64,
    vehicle: u32,
    pub last_t: i64,
    pub d: f32,
    pub offset: f32,
    pub detector: StopDetector,
    /// Observed arrival time per stop, NaN when not (yet) observed.
    pub arrivals: Vec<f64>,
    /// Sum and count of this run's log residuals against the model: how
    /// much slower or faster than expected this pass has been driving.
    pace: (f64, u32),
    live: bool,
}

/// The real-time state of a city's transit: ingests positions, serves predictions.
///
/// `N` is how the engine holds the network: `&Network`, `Arc<Network>`, or
/// any other pointer to one.
pub struct Engine<N> {
    network: N,
    index: TripIndex,
    config: Config,
    vehicle_ids: FxHashMap<Box<str>, u32>,
    vehicles: Vec<Vehicle>,
    runs: Vec<Run>,
    free_runs: Vec<u32>,
    run_of: FxHashMap<(u32, i32), u32>,
    day_starts: FxHashMap<i32, Option<i64>>,
    /// Service date → day type, and the day types by their services.
    day_types: FxHashMap<i32, u32>,
    day_type_ids: FxHashMap<Vec<u32>, u32>,
    model: TravelModel,
    pace: Pace,
    departures: Departures,
    events: Vec<StopEvent>,
    counters: Counters,
    /// Runs retired because their vehicle went quiet with stops still
    /// ahead, as last seen, with the vehicle's id (see [`Engine::lost`]).
    lost: Vec<(RunInfo, Box<str>)>,
}

/// How long a vehicle that went quiet mid-trip is remembered as lost.
pub const LOST_KEPT_S: i64 = 30 * 60;

/// How far behind the last known distance a new fix may project before it
/// is taken as GPS noise around a vehicle that has not moved.
const BACKTRACK_M: f32 = 50.0;
/// Consecutive "impossible jumps" after which the new place is believed and
/// the old fix taken as the outlier, so one bad fix cannot lock a vehicle out.
const JUMPS_BEFORE_RESET: u8 = 3;
/// Consecutive fixes on a run's own shape but well behind where the run
/// was placed, after which the run is placed again from scratch. A vehicle
/// that reports its next trip while waiting where that trip's shape passes
/// twice (WMATA's buses lay over beside an early street of their route) is
/// placed at the wrong pass; when it then drives the trip from its start,
/// every fix is "behind", and without this it would go unpredicted until
/// its run expired.
const STRAYS_BEFORE_RELOCATE: u8 = 3;
/// Link traversals that end within this long of their vehicle's first
/// accepted position are not learned from. They are a length-biased sample:
/// when the engine (or a vehicle) has been watched for only a minute, the
/// only traversals that can have been seen whole are short ones, and
/// learning from them makes the whole network look up to 3× faster than it
/// is (measured on WMATA's recording). Every traversal ending later than
/// this is sampled without bias, as long as stop-to-stop drives take less
/// than ten minutes, which is what a stop spacing of a few hundred metres
/// means.
const LENGTH_BIAS_WARMUP_S: i64 = 600;
/// Times beyond this (about the year 36 800) are not times: refused, or clamped.
const MAX_TIME: i64 = 1 << 40;
/// A bus standing this long (seconds) ahead of its timetable is taken to
/// be holding until the timetable catches up: at a layover spot before its
/// trip, or at a timepoint. Shorter halts are lights and queues.
const HOLDING_S: f64 = 120.0;
/// The standard normal's 90th percentile, for p10/p90 from a variance.
const Z90: f64 = 1.281_551_565_5;

impl<N: Deref<Target = Network>> Engine<N> {
    /// An engine for `network`, with no vehicles yet.
    pub fn new(network: N, config: Config) -> Engine<N> {
        let index = TripIndex::new(&network);
        let model = TravelModel::new(index.link_count());
        Engine {
            network,
            index,
            config,
            vehicle_ids: FxHashMap::default(),
            vehicles: Vec::new(),
            runs: Vec::new(),
            free_runs: Vec::new(),
            run_of: FxHashMap::default(),
            day_starts: FxHashMap::default(),
            day_types: FxHashMap::default(),
            day_type_ids: FxHashMap::default(),
            model,
            pace: Pace::default(),
            departures: Departures::default(),
            events: Vec::new(),
            counters: Counters::default(),
            lost: Vec::new(),
        }
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The derived trip index.
    pub fn index(&self) -> &TripIndex {
        &self.index
    }

    /// The thresholds in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Accepted and refused counts since the engine started.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Takes the stop events detected since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, StopEvent> {
        self.events.drain(..)
    }

    /// Validates, matches and learns from one position; `now` is the
    /// ingest clock (wall time live, replayed time in a replay), POSIX
    /// seconds.
    ///
    /// A refused position changes nothing but the counters. A vehicle
    /// refused three times in a row for impossible jumps is
    /// then believed: the earlier fix was the outlier.
    pub fn ingest(&mut self, position: PositionView<'_>, now: i64) -> Result<Accepted, Rejection> {
        let result = self.ingest_inner(&position, now);
        match result {
            Ok(_) => self.counters.accepted += 1,
            Err(reason) => self.counters.rejected[reason.index()] += 1,
        }
        result
    }

    fn ingest_inner(&mut self, p: &PositionView<'_>, now: i64) -> Result<Accepted, Rejection> {
        let vehicle_key: &str = if p.vehicle_id.is_empty() {
            p.trip_id
        } else {
            p.vehicle_id
        };
        if vehicle_key.is_empty() {
            return Err(Rejection::UnknownVehicle);
        }
        if let Some(fleet) = &self.config.fleet
            && !fleet.contains(p.vehicle_id)
        {
            return Err(Rejection::UnknownVehicle);
        }
        // Bounding every time here keeps all later arithmetic far from overflow.
        let now = now.clamp(0, MAX_TIME);
        let t = p.timestamp.unwrap_or(now);
        if !valid_coordinates(p.latitude, p.longitude) || !(0..MAX_TIME).contains(&t) {
            return Err(Rejection::InvalidPosition);
        }
        if t < now.saturating_sub(self.config.max_age_s) {
            return Err(Rejection::Stale);
        }
        if t > now.saturating_add(self.config.max_future_s) {
            return Err(Rejection::Future);
        }
        let vehicle = self.vehicle_ids.get(vehicle_key).copied();
        if let Some(v) = vehicle {
            let last = self.vehicles[v as usize].last_t;
            if t < last {
                return Err(Rejection::OutOfOrder);
            }
            if t == last {
                return Err(Rejection::Duplicate);
            }
        }
        // The common case: the vehicle reports again on the run it is on.
        let current = vehicle
            .map(|v| self.vehicles[v as usize].run)
            .filter(|&r| r != NONE)
            .map(|r| (r, &self.runs[r as usize]))
            .filter(|(_, run)| {
                run.live
                    && !self.index.frequency_based[run.trip as usize]
                    && p.start_date.is_none_or(|d| d == run.date)
                    && if p.trip_id.is_empty() {
                        // A vehicle that names no trip keeps the one it was
                        // matched to while it is on that trip's way and has
                        // not reached its last stop.
                        (run.detector.next_stop() as usize) < run.arrivals.len()
                            && self
                                .locate_on_run(run, p.latitude, p.longitude, t)
                                .is_some()
                    } else {
                        self.network.data().trips.ids.id(run.trip) == p.trip_id
                    }
            })
            .map(|(r, run)| (r, run.trip, run.pattern, run.date, run.date_key, run.origin));
        let (existing, trip, pattern, date, date_key, origin) = match current {
            Some((r, trip, pattern, date, date_key, origin)) => {
                (Some(r), trip, pattern, date, date_key, origin)
            }
            None => {
                let trip = if p.trip_id.is_empty() {
                    self.infer_trip(p, t, vehicle)
                        .ok_or(Rejection::UnknownTrip)?
                } else {
                    self.network
                        .data()
                        .trips
                        .ids
                        .get(p.trip_id)
                        .ok_or(Rejection::UnknownTrip)?
                };
                let pattern = self.index.trip_pattern[trip as usize];
                if pattern == NONE {
                    return Err(Rejection::UnknownTrip);
                }
                let (date, date_key, origin) =
                    self.run_date(trip, p, t).ok_or(Rejection::UnknownTrip)?;
                let existing = self.run_of.get(&(trip, date_key)).copied();
                (existing, trip, pattern, date, date_key, origin)
            }
        };
        let pat = &self.index.patterns[pattern as usize];
        let line = &self.index.lines[pat.line as usize];
        let (x, y) = line.plane.project(p.latitude, p.longitude);

        // Jump check against the vehicle's last fix, if it is recent.
        let mut jumps = 0;
        if let Some(v) = vehicle {
            let last = &self.vehicles[v as usize];
            if last.last_t >= t - self.config.max_age_s {
                let (lx, ly) = line.plane.project(last.lat, last.lon);
                let metres = (x - lx).hypot(y - ly);
                if metres > self.config.max_speed_mps * (t - last.last_t) as f32 {
                    jumps = last.jumps + 1;
                    if jumps < JUMPS_BEFORE_RESET {
                        self.vehicles[v as usize].jumps = jumps;
                        return Err(Rejection::ImpossibleJump);
                    }
                    jumps = 0;
                }
            }
        }

        // Locate on the shape: near and ahead of the run's last place, or,
        // for a new run, the place that best fits the timetable.
        let off_route = self.config.off_route_m;
        let on_run = existing
            .and_then(|r| self.locate_on_run(&self.runs[r as usize], p.latitude, p.longitude, t));
        let (mut existing, mut relocated, mut strays) = (existing, None, 0);
        if let (Some(r), Some(v), None) = (existing, vehicle, on_run)
            && (self.runs[r as usize].detector.next_stop() as usize) < pat.stop_dist.len()
        {
            // (A run that has reached its last stop is done, not misplaced.)
            let d = self.runs[r as usize].d;
            let behind = line
                .candidates(x, y, 16)
                .iter()
                .any(|c| c.offset <= off_route && c.along < d - BACKTRACK_M);
            if behind {
                strays = self.vehicles[v as usize].strays + 1;
                if strays < STRAYS_BEFORE_RELOCATE {
                    self.vehicles[v as usize].strays = strays;
                    return Err(Rejection::OffRoute);
                }
                (relocated, existing, strays) = (Some(r), None, 0);
            }
        }
        let projection = match existing {
            Some(_) => on_run,
            None => {
                // Where the trip both starts and ends (a loop's terminal),
                // at its start: a bus running late begins the trip there
                // when its timetable says it should be finishing it.
                let radius = self.config.detect.stop_radius_m;
                let (start, end) = (
                    pat.stop_dist[0] + radius,
                    pat.stop_dist[pat.stop_dist.len() - 1] - radius,
                );
                let candidates: Vec<Projection> = line
                    .candidates(x, y, 16)
                    .into_iter()
                    .filter(|c| c.offset <= off_route)
                    .collect();
                let at_terminal = candidates.iter().any(|c| c.along <= start)
                    && candidates.iter().any(|c| c.along >= end);
                let expected = if at_terminal {
                    pat.stop_dist[0]
                } else {
                    self.scheduled_distance(trip, pattern, origin, t)
                };
                candidates.into_iter().min_by(|a, b| {
                    (a.along - expected)
                        .abs()
                        .total_cmp(&(b.along - expected).abs())
                })
            }
        };
        let Some(Projection { along, offset, .. }) = projection.filter(|p| p.offset <= off_route)
        else {
            return Err(Rejection::OffRoute);
        };

        // Accepted: from here on, state changes.
        let v = match vehicle {
            Some(v) => v,
            None => {
                let v = self.vehicles.len() as u32;
                self.vehicle_ids.insert(vehicle_key.into(), v);
                self.vehicles.push(Vehicle {
                    id: vehicle_key.into(),
                    first_t: t,
                    last_t: t,
                    lat: p.latitude,
                    lon: p.longitude,
                    bearing: p.bearing,
                    speed: p.speed,
                    run: NONE,
                    jumps: 0,
                    strays: 0,
                });
                v
            }
        };
        if let Some(r) = relocated {
            self.retire_run(r);
        }
        if !self.lost.is_empty() {
            // Back in contact.
            let id = &self.vehicles[v as usize].id;
            self.lost.retain(|(_, lost)| lost != id);
        }
        let r = match existing {
            Some(r) => r,
            None => self.start_run(trip, date, date_key, pattern, origin, v),
        };
        let previous_run = self.vehicles[v as usize].run;
        if previous_run != r && previous_run != NONE {
            self.retire_run(previous_run);
        }
        {
            let vehicle = &mut self.vehicles[v as usize];
            vehicle.last_t = t;
            vehicle.lat = p.latitude;
            vehicle.lon = p.longitude;
            vehicle.bearing = p.bearing;
            vehicle.speed = p.speed;
            vehicle.run = r;
            vehicle.jumps = jumps;
            vehicle.strays = strays;
        }
        let learn_from = self.vehicles[v as usize].first_t + LENGTH_BIAS_WARMUP_S;
        let distance = self.advance_run(r, v, t, along, offset, learn_from);
        Ok(Accepted {
            run: RunId(r),
            trip,
            date,
            time: t,
            distance_m: distance,
            offset_m: offset,
        })
    }

    /// The run's service date and the POSIX second of its service time 0.
    fn run_date(&mut self, trip: u32, p: &PositionView<'_>, t: i64) -> Option<(Date, i32, i64)> {
        let network = &*self.network;
        let st = &network.data().stop_times;
        let range = network.data().trips.stop_time_range(trip);
        let first = i64::from(*st.departure.get(range.start)?);
        let last = i64::from(*st.arrival.get(range.end - 1)?);
        // Frequency-based runs are the template shifted to their start time.
        let shift = match p.start_time {
            Some(start) if self.index.frequency_based[trip as usize] => i64::from(start) - first,
            _ => 0,
        };
        let date = match p.start_date {
            Some(date) => date,
            None => {
                // The service day whose run is nearest to `t` in time.
                let tz = network.timezone();
                let today = jiff::Timestamp::from_second(t)
                    .ok()?
                    .to_zoned(tz.clone())
                    .date();
                let yesterday = today.yesterday().ok()?;
                let mut best: Option<(i64, Date)> = None;
                for day in [today, yesterday] {
                    let start = self.day_start(day)? + shift;
                    let gap = if t < start + first {
                        start + first - t
                    } else if t > start + last {
                        t - start - last
                    } else {
                        0
                    };
                    if best.is_none_or(|(g, _)| gap < g) {
                        best = Some((gap, day));
                    }
                }
                best?.1
            }
        };
        let start = self.day_start(date)?;
        Some((date, date_key(date), start + shift))
    }

    fn day_start(&mut self, date: Date) -> Option<i64> {
        let tz = self.network.timezone();
        *self.day_starts.entry(date_key(date)).or_insert_with(|| {
            cityos_transit::time::service_day_start(date, tz).map(|t| t.as_second())
        })
    }

    /// Where a fix falls on `run`'s shape: near and ahead of the run's last
    /// place, within [`Config::off_route_m`] of the line.
    fn locate_on_run(&self, run: &Run, lat: f64, lon: f64, t: i64) -> Option<Projection> {
        let pattern = &self.index.patterns[run.pattern as usize];
        let line = &self.index.lines[pattern.line as usize];
        let (x, y) = line.plane.project(lat, lon);
        let off_route = self.config.off_route_m;
        let reach = self.config.max_speed_mps * (t - run.last_t).max(1) as f32 + off_route;
        line.locate_forward(
            x,
            y,
            (run.d - BACKTRACK_M).max(0.0),
            run.d + reach,
            off_route,
            2.0 * off_route,
        )
        .filter(|p| p.offset <= off_route)
    }

    /// The trip a vehicle that names none is most likely driving at `t`:
    /// among the trips of the routes serving stops near it (of its route
    /// and direction, when it says them) that are under way around `t`,
    /// not already driven by another vehicle, and whose shape passes within
    /// [`Config::off_route_m`], the one whose timetable puts a bus nearest
    /// to where it is. The next trip of its block is preferred.
    fn infer_trip(&mut self, p: &PositionView<'_>, t: i64, vehicle: Option<u32>) -> Option<u32> {
        /// Stops within this distance name the candidate routes.
        const NEAR_M: f64 = 400.0;
        /// How early before its start, or late after its end, a run may be.
        const EARLY_S: i64 = 15 * 60;
        const LATE_S: i64 = 30 * 60;
        /// Metres along the shape worth one second of schedule deviation.
        const METRES_PER_S: f32 = 6.0;
        let previous = vehicle
            .map(|v| self.vehicles[v as usize].run)
            .filter(|&r| r != NONE)
            .and_then(|r| self.runs.get(r as usize))
            .map(|run| run.trip);
        let block_next = previous.and_then(|trip| self.index.next_in_block(trip));
        let candidates: Vec<u32> = {
            let network = &*self.network;
            let data = network.data();
            let route_filter = if p.route_id.is_empty() {
                None
            } else {
                Some(data.route_ids.get(p.route_id)?)
            };
            let mut near = Vec::new();
            network.stops_nearby_into(p.latitude, p.longitude, NEAR_M, 64, &mut near);
            let mut routes: Vec<u32> = near
                .iter()
                .flat_map(|&(s, _)| network.routes_at(s))
                .filter(|&r| route_filter.is_none_or(|f| f == r))
                .collect();
            routes.sort_unstable();
            routes.dedup();
            routes
                .iter()
                .flat_map(|&route| self.index.route_trips(route).iter().copied())
                .filter(|&trip| {
                    let i = trip as usize;
                    p.direction_id.is_none_or(|d| data.trips.direction[i] == d)
                        && self.index.trip_pattern[i] != NONE
                        && !self.index.frequency_based[i]
                })
                .collect()
        };
        let mut best: Option<(f32, u32)> = None;
        for trip in candidates {
            let Some((date, date_key, origin)) = self.run_date(trip, p, t) else {
                continue;
            };
            let data = self.network.data();
            if !data
                .services
                .is_active(data.trips.service[trip as usize], date)
            {
                continue;
            }
            let range = data.trips.stop_time_range(trip);
            let start = origin + i64::from(data.stop_times.departure[range.start]);
            let end = origin + i64::from(data.stop_times.arrival[range.end - 1]);
            if t < start - EARLY_S || t > end + LATE_S {
                continue;
            }
            // Another vehicle already drives it.
            if let Some(&r) = self.run_of.get(&(trip, date_key))
                && let Some(run) = self.runs.get(r as usize)
                && run.live
                && Some(run.vehicle) != vehicle
            {
                continue;
            }
            let pattern = self.index.trip_pattern[trip as usize];
            let pat = &self.index.patterns[pattern as usize];
            let line = &self.index.lines[pat.line as usize];
            let (x, y) = line.plane.project(p.latitude, p.longitude);
            let expected = self.scheduled_distance(trip, pattern, origin, t);
            let Some(place) = line
                .candidates(x, y, 8)
                .into_iter()
                .filter(|c| c.offset <= self.config.off_route_m)
                .min_by(|a, b| {
                    (a.along - expected)
                        .abs()
                        .total_cmp(&(b.along - expected).abs())
                })
            else {
                continue;
            };
            // Ahead of the timetable is three times as unlikely as behind
            // it: buses run late far more often, and by more, than early.
            let behind = (expected - place.along).max(0.0);
            let ahead = (place.along - expected).max(0.0);
            let mut cost = place.offset + (behind + 3.0 * ahead) / METRES_PER_S;
            if Some(trip) == block_next {
                cost -= 300.0;
            }
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, trip));
            }
        }
        best.map(|(_, trip)| trip)
    }

    /// Where the timetable says the run is at `t`, metres along its shape.
    fn scheduled_distance(&self, trip: u32, pattern: u32, origin: i64, t: i64) -> f32 {
        let st = &self.network.data().stop_times;
        let range = self.network.data().trips.stop_time_range(trip);
        let dist = &self.index.patterns[pattern as usize].stop_dist;
        let at = (t - origin) as f64;
        let times = &st.arrival[range.clone()];
        let k = times.partition_point(|&s| f64::from(s) <= at);
        if k == 0 {
            return dist[0];
        }
        if k >= times.len() {
            return dist[dist.len() - 1];
        }
        let (t0, t1) = (
            f64::from(st.departure[range.start + k - 1]),
            f64::from(times[k]),
        );
        let f = if t1 > t0 {
            ((at - t0) / (t1 - t0)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        dist[k - 1] + (dist[k] - dist[k - 1]) * f as f32
    }

    /// The day type of `date`: days on which exactly the same services run
    /// are alike (the agency says so by its calendars), so a public holiday
    /// run on the Sunday timetable is a Sunday, whatever its weekday.
    fn day_type(&mut self, date: Date) -> u32 {
        let key = date_key(date);
        if let Some(&t) = self.day_types.get(&key) {
            return t;
        }
        let services = self.network.active_services(date);
        let next = self.day_type_ids.len() as u32;
        let t = *self.day_type_ids.entry(services).or_insert(next);
        self.day_types.insert(key, t);
        t
    }

    fn start_run(
        &mut self,
        trip: u32,
        date: Date,
        date_key: i32,
        pattern: u32,
        origin: i64,
        vehicle: u32,
    ) -> u32 {
        let stops = self.index.patterns[pattern as usize].stop_dist.len();
        let day_type = self.day_type(date);
        let run = Run {
            trip,
            date,
            date_key,
            day_type,
            pattern,
            origin,
            vehicle,
            last_t: i64::MIN,
            d: 0.0,
            offset: 0.0,
            detector: StopDetector::default(),
            arrivals: vec![f64::NAN; stops],
            pace: (0.0, 0),
            live: true,
        };
        let r = match self.free_runs.pop() {
            Some(r) => {
                self.runs[r as usize] = run;
                r
            }
            None => {
                self.runs.push(run);
                self.runs.len() as u32 - 1
            }
        };
        self.run_of.insert((trip, date_key), r);
        r
    }

    fn retire_run(&mut self, r: u32) {
        let run = &mut self.runs[r as usize];
        if run.live {
            run.live = false;
            self.run_of.remove(&(run.trip, run.date_key));
            self.free_runs.push(r);
            // The slot will be reused: its vehicle must not point at it, or
            // its next run would retire whichever run took the slot.
            let vehicle = &mut self.vehicles[run.vehicle as usize];
            if vehicle.run == r {
                vehicle.run = NONE;
            }
        }
    }

    /// Moves run `r` to distance `along` at `t` and handles what it passed.
    fn advance_run(
        &mut self,
        r: u32,
        v: u32,
        t: i64,
        along: f32,
        offset: f32,
        learn_from: i64,
    ) -> f32 {
        let network = &*self.network;
        let run = &mut self.runs[r as usize];
        let first = run.last_t == i64::MIN;
        run.vehicle = v;
        run.d = if first { along } else { run.d.max(along) };
        run.last_t = t;
        run.offset = offset;
        let pattern = &self.index.patterns[run.pattern as usize];
        let range = network.data().trips.stop_time_range(run.trip);
        let st = &network.data().stop_times;
        let (trip, date, origin) = (run.trip, run.date, run.origin);
        let slot = |at: f64| slot(run.day_type, run.date_key, origin, at);
        let events = &mut self.events;
        let model = &mut self.model;
        let arrivals = &mut run.arrivals;
        let pace = &mut self.pace;
        let run_pace = &mut run.pace;
        let departures = &mut self.departures;
        run.detector.push(
            t,
            run.d,
            &pattern.stop_dist,
            &self.config.detect,
            &mut |e: Detected| {
                let i = e.stop_index as usize;
                if e.kind == EventKind::Departure && e.observed && i == 0 {
                    let scheduled = (origin + i64::from(st.departure[range.start])) as f64;
                    departures.observe(e.time - scheduled);
                }
                if e.kind == EventKind::Arrival && e.observed {
                    arrivals[i] = e.time;
                    if i > 0 && arrivals[i - 1].is_finite() && e.time >= learn_from as f64 {
                        let scheduled = f64::from(st.arrival[range.start + i])
                            - f64::from(st.arrival[range.start + i - 1]);
                        let seconds = e.time - arrivals[i - 1];
                        let when = slot(arrivals[i - 1]);
                        let expected = model.expected(
                            pattern.links[i - 1],
                            arrivals[i - 1],
                            scheduled,
                            Some(when),
                        );
                        pace.observe(run_pace, e.time, seconds, expected.mean);
                        let (tau, sigma) = pace.spread(e.time);
                        model.observe(
                            pattern.links[i - 1],
                            e.time,
                            e.time - arrivals[i - 1],
                            scheduled,
                            tau.hypot(sigma),
                            Some(when),
                        );
                    }
                }
                events.push(StopEvent {
                    trip,
                    date,
                    stop_index: e.stop_index,
                    stop: st.stop[range.start + i],
                    kind: e.kind,
                    time: e.time,
                    observed: e.observed,
                });
            },
        );
        run.d
    }

    /// Retires runs whose vehicle has not reported for [`Config::max_age_s`]
    /// before `now`. Call it now and then (e.g. every few seconds).
    pub fn expire(&mut self, now: i64) {
        let cutoff = now.saturating_sub(self.config.max_age_s);
        let stale: Vec<u32> = self
            .runs
            .iter()
            .enumerate()
            .filter(|(_, run)| run.live && run.last_t < cutoff)
            .map(|(r, _)| r as u32)
            .collect();
        for r in stale {
            let run = &self.runs[r as usize];
            if (run.detector.next_stop() as usize) < run.arrivals.len() {
                let vehicle = self.vehicles[run.vehicle as usize].id.clone();
                self.lost.push((self.info(r), vehicle));
            }
            self.retire_run(r);
        }
        self.lost
            .retain(|(info, _)| info.last_seen >= now.saturating_sub(LOST_KEPT_S));
    }

    /// Vehicles that went quiet with stops of their trip still ahead, in the
    /// last [`LOST_KEPT_S`], as they were last seen: their runs have
    /// expired, but a control room wants to know a bus lost contact.
    /// One that reports again leaves the list.
    pub fn lost(&self) -> impl Iterator<Item = (&RunInfo, &str)> + '_ {
        self.lost.iter().map(|(info, vehicle)| (info, &**vehicle))
    }

    /// Live runs: a vehicle has reported on them within
    /// [`Config::max_age_s`] of `now`, and they have stops left.
    pub fn runs(&self, now: i64) -> impl Iterator<Item = RunInfo> + '_ {
        let cutoff = now.saturating_sub(self.config.max_age_s);
        self.runs
            .iter()
            .enumerate()
            .filter(move |(_, run)| {
                run.live
                    && run.last_t >= cutoff
                    && (run.detector.next_stop() as usize) < run.arrivals.len()
            })
            .map(|(r, _)| self.info(r as u32))
    }

    /// Run `r` as the outside sees it.
    fn info(&self, r: u32) -> RunInfo {
        let run = &self.runs[r as usize];
        let vehicle = &self.vehicles[run.vehicle as usize];
        RunInfo {
            id: RunId(r),
            trip: run.trip,
            date: run.date,
            last_seen: run.last_t,
            distance_m: run.d,
            next_stop: run.detector.next_stop(),
            delay_s: run.last_t as f64 - self.scheduled_time_at(run, run.d),
            scheduled_start: self.scheduled_departure(run, 0),
            pattern: run.pattern,
            position: (vehicle.lat, vehicle.lon),
            bearing: vehicle.bearing,
            speed: vehicle.speed,
            halted_since: run.detector.halted_since(),
        }
    }

    /// The id of the vehicle serving run `id` (its trip id if it reports none).
    pub fn vehicle_id(&self, id: RunId) -> Option<&str> {
        let run = self.run(id)?;
        self.vehicles.get(run.vehicle as usize).map(|v| &*v.id)
    }

    /// The observed arrival time (POSIX seconds) at each stop of run `id`,
    /// NaN where none was observed (not reached yet, or passed unseen): the
    /// run's history, for storage and stop boards.
    pub fn arrivals(&self, id: RunId) -> Option<&[f64]> {
        self.run(id).map(|r| &*r.arrivals)
    }

    pub(crate) fn run(&self, id: RunId) -> Option<&Run> {
        self.runs.get(id.0 as usize).filter(|r| r.live)
    }

    /// Scheduled arrival at stop `i` of `run`, POSIX seconds.
    pub(crate) fn scheduled_arrival(&self, run: &Run, i: usize) -> f64 {
        let range = self.network.data().trips.stop_time_range(run.trip);
        (run.origin + i64::from(self.network.data().stop_times.arrival[range.start + i])) as f64
    }

    /// Scheduled departure from stop `i` of `run`, POSIX seconds.
    pub(crate) fn scheduled_departure(&self, run: &Run, i: usize) -> f64 {
        let range = self.network.data().trips.stop_time_range(run.trip);
        (run.origin + i64::from(self.network.data().stop_times.departure[range.start + i])) as f64
    }

    /// The stop distances of `run`'s pattern.
    pub(crate) fn stop_dist(&self, run: &Run) -> &[f32] {
        &self.index.patterns[run.pattern as usize].stop_dist
    }

    /// When the timetable has the run at distance `d`, POSIX seconds:
    /// departure from the stop before plus the scheduled running time in
    /// proportion to distance (OneBusAway's schedule deviation).
    pub(crate) fn scheduled_time_at(&self, run: &Run, d: f32) -> f64 {
        let dist = self.stop_dist(run);
        let k = dist.partition_point(|&s| s <= d);
        if k == 0 {
            return self.scheduled_departure(run, 0);
        }
        if k >= dist.len() {
            return self.scheduled_arrival(run, dist.len() - 1);
        }
        let (d0, d1) = (dist[k - 1], dist[k]);
        let dep = self.scheduled_departure(run, k - 1);
        let arr = self.scheduled_arrival(run, k);
        let f = if d1 > d0 {
            f64::from(((d - d0) / (d1 - d0)).clamp(0.0, 1.0))
        } else {
            1.0
        };
        dep + (arr - dep).max(0.0) * f
    }

    /// Predicted arrivals at every stop `run` has not reached, as of `now`,
    /// written into `out` (cleared first). Nothing when the run is not live.
    pub fn predict(&self, id: RunId, now: i64, out: &mut Vec<StopPrediction>) {
        out.clear();
        let Some(run) = self.run(id) else { return };
        let dist = self.stop_dist(run);
        let n = dist.len();
        let next = run.detector.next_stop() as usize;
        if next >= n {
            return;
        }
        let links = &self.index.patterns[run.pattern as usize].links;
        let at = run.last_t as f64;
        let sched = |i: usize| self.scheduled_arrival(run, i);
        let expected = |i: usize| {
            let when = slot(run.day_type, run.date_key, run.origin, sched(i));
            self.model
                .expected(links[i], at, sched(i + 1) - sched(i), Some(when))
        };
        // When a bus at its first stop leaves: not before its time, and, if
        // it has overstayed, as late as recent departures that overstayed as long.
        let leaves = || {
            let scheduled = self.scheduled_departure(run, 0);
            let waited = now as f64 - scheduled;
            at.max(scheduled + self.departures.expected_lateness(waited).max(0.0))
        };
        // Time to reach the next stop from where the vehicle is.
        let (mut clock, mut var) = if next == 0 {
            (leaves(), 0.0)
        } else {
            let link = expected(next - 1);
            let span = (dist[next] - dist[next - 1]).max(1.0);
            let remaining = f64::from(((dist[next] - run.d) / span).clamp(0.0, 1.0));
            let start = if next == 1 && run.d <= dist[0] + self.config.detect.stop_radius_m {
                leaves()
            } else if run
                .detector
                .halted_since()
                .is_some_and(|since| at - since as f64 >= HOLDING_S)
            {
                // Standing a while ahead of its timetable: holding for it.
                at.max(self.scheduled_time_at(run, run.d))
            } else {
                at
            };
            (start + link.mean * remaining, link.var * remaining)
        };
        let floor = now as f64;
        // This pass's own pace scales the time still to drive.
        let factor = self.pace.factor(run.pace, at);
        for i in next..n {
            let mean = at + (clock - at) * factor;
            let arrival = mean.max(floor);
            let spread = Z90 * var.sqrt();
            out.push(StopPrediction {
                stop_index: i as u32,
                arrival,
                p10: (mean - spread).max(floor),
                p90: (mean + spread).max(floor),
                scheduled: sched(i),
            });
            if i + 1 < n {
                let link = expected(i);
                clock += link.mean;
                var += link.var;
            }
        }
    }

    /// Predicted arrivals at every stop of the trip that follows `id`'s in
    /// its block, which the same vehicle will drive next; `None` when there
    /// is none or it is already live on its own.
    ///
    /// The delay is carried across: the next trip leaves at its scheduled
    /// time, or when the vehicle reaches the end of this trip if that is
    /// later, and then runs at the learned link times. `current` must be
    /// `id`'s own prediction, as [`Engine::predict`] wrote it.
    pub fn predict_following(
        &self,
        id: RunId,
        current: &[StopPrediction],
        out: &mut Vec<StopPrediction>,
    ) -> Option<u32> {
        out.clear();
        let run = self.run(id)?;
        let next = self.index.next_in_block(run.trip)?;
        let date_key = date_key(run.date);
        if self.run_of.contains_key(&(next, date_key)) {
            return None;
        }
        let pattern = self.index.trip_pattern[next as usize];
        let links = &self.index.patterns.get(pattern as usize)?.links;
        let data = self.network.data();
        let range = data.trips.stop_time_range(next);
        let st = &data.stop_times;
        let sched = |i: usize| (run.origin + i64::from(st.arrival[range.start + i])) as f64;
        let start = (run.origin + i64::from(st.departure[range.start])) as f64;
        let end = current.last()?;
        let mut clock = start.max(end.arrival);
        // Uncertainty carried over is that of the end of this trip, if it matters.
        let mut var = if end.arrival > start {
            ((end.p90 - end.arrival) / Z90).powi(2)
        } else {
            0.0
        };
        for i in 0..range.len() {
            let spread = Z90 * var.sqrt();
            out.push(StopPrediction {
                stop_index: i as u32,
                arrival: clock,
                p10: (clock - spread).max(end.arrival),
                p90: clock + spread,
                scheduled: sched(i),
            });
            if i + 1 < range.len() {
                let when = slot(run.day_type, run.date_key, run.origin, sched(i));
                let link =
                    self.model
                        .expected(links[i], end.arrival, sched(i + 1) - sched(i), Some(when));
                clock += link.mean;
                var += link.var;
            }
        }
        Some(next)
    }

    /// The GTFS-realtime TripUpdates feed as of `now`: one entity per live
    /// run (with the vehicle's next trip in its block, when that is not live
    /// yet), a `StopTimeUpdate` per remaining stop with the predicted
    /// arrival, and `uncertainty` set to half the p10–p90 width.
    pub fn trip_updates(&self, now: i64) -> crate::gtfsrt::FeedMessage {
        use crate::gtfsrt::{FeedHeader, FeedMessage, Incrementality};
        let network: &Network = &self.network;
        let mut entity = Vec::new();
        let (mut current, mut following) = (Vec::new(), Vec::new());
        for info in self.runs(now) {
            self.predict(info.id, now, &mut current);
            let Some(run) = self.run(info.id) else {
                continue;
            };
            let vehicle = self.vehicle_id(info.id);
            entity.push(trip_update_entity(
                network, run.trip, run.date, vehicle, &current, now,
            ));
            if let Some(next) = self.predict_following(info.id, &current, &mut following) {
                entity.push(trip_update_entity(
                    network, next, run.date, vehicle, &following, now,
                ));
            }
        }
        FeedMessage {
            header: FeedHeader {
                gtfs_realtime_version: crate::gtfsrt::GTFS_REALTIME_VERSION.to_owned(),
                incrementality: Some(Incrementality::FullDataset as i32),
                timestamp: u64::try_from(now).ok(),
                feed_version: None,
            },
            entity,
        }
    }

    /// What the engine has learned about link times by time of day and day
    /// type, keyed by stop and service ids so it outlives this engine and
    /// fits a later version of the network.
    pub fn learned_history(&self) -> LearnedHistory {
        let data = self.network.data();
        let mut day_types = vec![Vec::new(); self.day_type_ids.len()];
        for (services, &t) in &self.day_type_ids {
            if let Some(slot) = day_types.get_mut(t as usize) {
                *slot = services
                    .iter()
                    .map(|&s| data.services.ids.id(s).to_owned())
                    .collect();
            }
        }
        let mut links: FxHashMap<u32, Vec<HourTotals>> = FxHashMap::default();
        for ((link, day_type, hour), seconds, count) in self.model.history() {
            links
                .entry(link)
                .or_default()
                .push((day_type, hour, seconds, count));
        }
        let mut links: Vec<(String, String, Vec<HourTotals>)> = links
            .into_iter()
            .filter_map(|(link, mut hours)| {
                let (from, to) = self.index.link_stops(link)?;
                hours.sort_by_key(|h| (h.0, h.1));
                Some((
                    data.stops.ids.id(from).to_owned(),
                    data.stops.ids.id(to).to_owned(),
                    hours,
                ))
            })
            .collect();
        links.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        LearnedHistory { day_types, links }
    }

    /// Adds history learned by another engine (or before a restart): links
    /// and services this network does not have are skipped. Returns the
    /// (link, day type, hour) entries taken.
    pub fn learn_history(&mut self, history: &LearnedHistory) -> usize {
        let data = self.network.data();
        let day_types: Vec<Option<u32>> = history
            .day_types
            .iter()
            .map(|services| {
                let mut ids: Vec<u32> = services
                    .iter()
                    .map(|s| data.services.ids.get(s))
                    .collect::<Option<_>>()?;
                ids.sort_unstable();
                let next = self.day_type_ids.len() as u32;
                Some(*self.day_type_ids.entry(ids).or_insert(next))
            })
            .collect();
        let link_of: FxHashMap<(u32, u32), u32> = (0..self.index.link_count() as u32)
            .filter_map(|l| Some((self.index.link_stops(l)?, l)))
            .collect();
        let mut taken = 0;
        for (from, to, hours) in &history.links {
            let (Some(from), Some(to)) = (data.stops.ids.get(from), data.stops.ids.get(to)) else {
                continue;
            };
            let Some(&link) = link_of.get(&(from, to)) else {
                continue;
            };
            for &(day_type, hour, seconds, count) in hours {
                if let Some(Some(t)) = day_types.get(day_type as usize) {
                    self.model.add_history((link, *t, hour), seconds, count);
                    taken += 1;
                }
            }
        }
        taken
    }

    /// The link-time memory (half-life, seconds) and prior strength (in
    /// traversals) the model currently predicts with; see [`crate::model`].
    pub fn model_choice(&self) -> (f64, f64) {
        self.model.chosen()
    }

    /// The spread of passes' paces and of single traversals around their
    /// pass's pace, as standard deviations of log travel time; see
    /// [`crate::model`].
    pub fn pace_spread(&self) -> (f64, f64) {
        self.pace
            .spread(self.runs.iter().map(|r| r.last_t).max().unwrap_or(0) as f64)
    }
}

/// One trip run's predictions as a GTFS-realtime TripUpdate entity, made
/// at `now`: a `StopTimeUpdate` per predicted stop with the arrival time,
/// its delay, and `uncertainty` set to half the p10–p90 width.
pub fn trip_update_entity(
    network: &Network,
    trip: u32,
    date: Date,
    vehicle: Option<&str>,
    stops: &[StopPrediction],
    now: i64,
) -> crate::gtfsrt::FeedEntity {
    use crate::gtfsrt::{
        FeedEntity, StopTimeEvent, StopTimeUpdate, TripDescriptor, TripUpdate, VehicleDescriptor,
    };
    let data = network.data();
    let range = data.trips.stop_time_range(trip);
    let update = TripUpdate {
        trip: TripDescriptor {
            trip_id: Some(data.trips.ids.id(trip).to_owned()),
            route_id: Some(
                data.route_ids
                    .id(data.trips.route[trip as usize])
                    .to_owned(),
            ),
            start_date: Some(format!(
                "{:04}{:02}{:02}",
                date.year(),
                date.month(),
                date.day()
            )),
            ..TripDescriptor::default()
        },
        stop_time_update: stops
            .iter()
            .map(|p| {
                let i = range.start + p.stop_index as usize;
                StopTimeUpdate {
                    stop_sequence: Some(data.stop_times.sequence[i]),
                    stop_id: Some(data.stops.ids.id(data.stop_times.stop[i]).to_owned()),
                    arrival: Some(StopTimeEvent {
                        delay: Some((p.arrival - p.scheduled).round() as i32),
                        time: Some(p.arrival.round() as i64),
                        uncertainty: Some(((p.p90 - p.p10) / 2.0).round() as i32),
                    }),
                    ..StopTimeUpdate::default()
                }
            })
            .collect(),
        vehicle: vehicle.map(|id| VehicleDescriptor {
            id: Some(id.to_owned()),
            ..VehicleDescriptor::default()
        }),
        timestamp: u64::try_from(now).ok(),
        delay: None,
    };
    FeedEntity {
        id: format!("{}:{}", data.trips.ids.id(trip), date_key(date)),
        is_deleted: None,
        trip_update: Some(update),
        vehicle: None,
        alert: None,
    }
}

/// The history slot of a moment `at` (POSIX seconds) of a run.
fn slot(day_type: u32, date: i32, origin: i64, at: f64) -> Slot {
    let hour = ((at - origin as f64) / 3600.0).clamp(0.0, 47.0) as u8;
    Slot {
        day_type,
        date,
        hour,
    }
}

/// A date as a compact integer key, `YYYYMMDD`.
fn date_key(date: Date) -> i32 {
    i32::from(date.year()) * 10_000 + i32::from(date.month()) * 100 + i32::from(date.day())
}
