//! The network's data, in a compact columnar form.
//!
//! Every entity is addressed by a dense `u32` index; the GTFS string ids are
//! interned once in an [`IdTable`]. Stop times are flat parallel arrays
//! grouped by trip (`Trips::stop_times_start`), so a trip's stop times are one
//! contiguous slice and a whole Seoul-scale feed costs about 20 bytes per
//! stop time. This is what gets serialised into the store; derived lookups
//! live in [`crate::network`].

use rustc_hash::FxHashMap as HashMap;

use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

use crate::time::ServiceSeconds;

/// An index meaning "none" in optional `u32` references.
pub const NONE: u32 = u32::MAX;

/// Interned GTFS ids: index ↔ string.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IdTable {
    ids: Vec<Box<str>>,
    #[serde(skip)]
    lookup: HashMap<Box<str>, u32>,
}

impl IdTable {
    /// Adds `id`, returning its index, or `Err(existing index)` if it is already present.
    pub fn insert(&mut self, id: &str) -> Result<u32, u32> {
        if let Some(&existing) = self.lookup.get(id) {
            return Err(existing);
        }
        let index = self.ids.len() as u32;
        self.ids.push(id.into());
        self.lookup.insert(id.into(), index);
        Ok(index)
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.lookup.get(id).copied()
    }

    /// The id at `index`.
    pub fn id(&self, index: u32) -> &str {
        &self.ids[index as usize]
    }

    /// How many ids there are.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Rebuilds the reverse lookup after deserialisation.
    pub(crate) fn rebuild_lookup(&mut self) {
        self.lookup = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
    }
}

/// An agency (agency.txt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agency {
    /// `agency_id`; empty when the feed has a single agency without an id.
    pub id: String,
    /// `agency_name`.
    pub name: String,
    /// `agency_url`.
    pub url: String,
    /// `agency_timezone`, an IANA name validated at import.
    pub timezone: String,
    /// `agency_lang`.
    pub lang: Option<String>,
    /// `agency_phone`.
    pub phone: Option<String>,
}

/// A route (routes.txt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    /// Index into [`Network::agencies`].
    pub agency: u32,
    /// `route_short_name`.
    pub short_name: String,
    /// `route_long_name`.
    pub long_name: String,
    /// `route_desc`.
    pub desc: Option<String>,
    /// `route_type` (basic or extended).
    pub route_type: u16,
    /// `route_color` as `RRGGBB`.
    pub color: Option<String>,
    /// `route_text_color` as `RRGGBB`.
    pub text_color: Option<String>,
    /// `route_sort_order`.
    pub sort_order: Option<u32>,
}

/// What kind of service a route is, as a rider would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// Seoul's blue trunk buses (간선).
    Trunk,
    /// Seoul's green branch buses (지선).
    Branch,
    /// Seoul's yellow circular buses (순환).
    Circular,
    /// Night buses (심야, N-numbered).
    Night,
    /// Metro and subway.
    Subway,
    /// Rail, monorail and funicular.
    Rail,
    /// Tram and light rail.
    Tram,
    /// Ferries.
    Ferry,
    /// Any other bus.
    Bus,
    /// Anything else (cable cars, gondolas, unknown extended types).
    Other,
}

impl RouteKind {
    /// The lower-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Trunk => "trunk",
            RouteKind::Branch => "branch",
            RouteKind::Circular => "circular",
            RouteKind::Night => "night",
            RouteKind::Subway => "subway",
            RouteKind::Rail => "rail",
            RouteKind::Tram => "tram",
            RouteKind::Ferry => "ferry",
            RouteKind::Bus => "bus",
            RouteKind::Other => "other",
        }
    }

    /// Parses [`RouteKind::as_str`] back.
    pub fn parse(text: &str) -> Option<RouteKind> {
        Some(match text {
            "trunk" => RouteKind::Trunk,
            "branch" => RouteKind::Branch,
            "circular" => RouteKind::Circular,
            "night" => RouteKind::Night,
            "subway" => RouteKind::Subway,
            "rail" => RouteKind::Rail,
            "tram" => RouteKind::Tram,
            "ferry" => RouteKind::Ferry,
            "bus" => RouteKind::Bus,
            "other" => RouteKind::Other,
            _ => return None,
        })
    }
}

impl Route {
    /// Classifies the route: GTFS has only `route_type`, so Seoul's bus kinds
    /// come from `route_desc` (as the city generator writes it) or the
    /// `N`-prefix of night routes.
    pub fn kind(&self) -> RouteKind {
        let desc = self
            .desc
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match self.route_type {
            3 | 700..=799 | 11 => match desc.as_str() {
                "trunk" => RouteKind::Trunk,
                "branch" => RouteKind::Branch,
                "circular" => RouteKind::Circular,
                "night" => RouteKind::Night,
                _ if self.short_name.starts_with('N')
                    && self.short_name[1..].chars().all(|c| c.is_ascii_digit())
                    && self.short_name.len() > 1 =>
                {
                    RouteKind::Night
                }
                _ => RouteKind::Bus,
            },
            1 | 401..=405 | 500..=599 => RouteKind::Subway,
            2 | 7 | 12 | 100..=199 | 400 | 1400..=1499 => RouteKind::Rail,
            0 | 900..=999 => RouteKind::Tram,
            4 | 1000..=1299 => RouteKind::Ferry,
            _ => RouteKind::Other,
        }
    }
}

/// Stops, stations and other locations (stops.txt), column by column.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Stops {
    /// `stop_id` ↔ index.
    pub ids: IdTable,
    /// `stop_code`, empty when absent.
    pub codes: Vec<String>,
    /// `stop_name` (may be empty for generic nodes and boarding areas).
    pub names: Vec<String>,
    /// `stop_lat` in degrees (NaN when the location type allows none).
    pub lat: Vec<f64>,
    /// `stop_lon` in degrees (NaN when the location type allows none).
    pub lon: Vec<f64>,
    /// `location_type`: 0 stop/platform, 1 station, 2 entrance, 3 node, 4 boarding area.
    pub location_type: Vec<u8>,
    /// Index of `parent_station`, or [`NONE`].
    pub parent: Vec<u32>,
    /// `wheelchair_boarding` (0 unknown, 1 possible, 2 not possible).
    pub wheelchair: Vec<u8>,
    /// `platform_code`, empty when absent.
    pub platform_codes: Vec<String>,
}

impl Stops {
    /// Number of stops.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no stops.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Trips (trips.txt), column by column.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Trips {
    /// `trip_id` ↔ index.
    pub ids: IdTable,
    /// Index into [`Network::routes`].
    pub route: Vec<u32>,
    /// Index into [`Services`].
    pub service: Vec<u32>,
    /// Index into [`Shapes`], or [`NONE`].
    pub shape: Vec<u32>,
    /// Index into [`Network::strings`] of `trip_headsign`, or [`NONE`].
    pub headsign: Vec<u32>,
    /// `direction_id` (0, 1, or 2 when absent).
    pub direction: Vec<u8>,
    /// Index into [`Network::strings`] of `block_id`, or [`NONE`].
    pub block: Vec<u32>,
    /// `trip_short_name` index into [`Network::strings`], or [`NONE`].
    pub short_name: Vec<u32>,
    /// `wheelchair_accessible`.
    pub wheelchair: Vec<u8>,
    /// `bikes_allowed`.
    pub bikes: Vec<u8>,
    /// Where each trip's stop times start in [`StopTimes`]; one more entry
    /// than there are trips, so trip `t` owns `start[t]..start[t + 1]`.
    pub stop_times_start: Vec<u32>,
}

impl Trips {
    /// Number of trips.
    pub fn len(&self) -> usize {
        self.route.len()
    }

    /// Whether there are no trips.
    pub fn is_empty(&self) -> bool {
        self.route.is_empty()
    }

    /// The range of stop-time indices that belong to trip `trip`.
    pub fn stop_time_range(&self, trip: u32) -> std::ops::Range<usize> {
        self.stop_times_start[trip as usize] as usize
            ..self.stop_times_start[trip as usize + 1] as usize
    }
}

/// Bits of [`StopTimes::flags`].
pub mod flags {
    /// `pickup_type` occupies bits 0–1.
    pub const PICKUP_MASK: u8 = 0b0000_0011;
    /// `drop_off_type` occupies bits 2–3.
    pub const DROP_OFF_SHIFT: u8 = 2;
    /// Set when the stop is a timepoint (`timepoint` = 1 or times given).
    pub const TIMEPOINT: u8 = 0b0001_0000;
    /// Set when the feed left the times empty and we interpolated them.
    pub const INTERPOLATED: u8 = 0b0010_0000;
}

/// Stop times (stop_times.txt) as flat arrays, grouped by trip and ordered
/// by `stop_sequence` within a trip.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StopTimes {
    /// Index into [`Stops`].
    pub stop: Vec<u32>,
    /// Arrival, seconds after the service day's start.
    pub arrival: Vec<ServiceSeconds>,
    /// Departure, seconds after the service day's start.
    pub departure: Vec<ServiceSeconds>,
    /// `stop_sequence`.
    pub sequence: Vec<u32>,
    /// `shape_dist_traveled` in the feed's unit, NaN when absent.
    pub shape_dist: Vec<f32>,
    /// Pickup/drop-off types and timepoint bits, see [`flags`].
    pub flags: Vec<u8>,
    /// `stop_headsign`, sparse: (stop-time index, index into [`Network::strings`]).
    pub headsigns: Vec<(u32, u32)>,
}

impl StopTimes {
    /// Number of stop times.
    pub fn len(&self) -> usize {
        self.stop.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.stop.is_empty()
    }
}

/// Service calendars (calendar.txt and calendar_dates.txt).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Services {
    /// `service_id` ↔ index.
    pub ids: IdTable,
    /// Weekly pattern, Monday = bit 0 … Sunday = bit 6 (0 when only calendar_dates defines it).
    pub weekdays: Vec<u8>,
    /// First day of the weekly pattern.
    pub start: Vec<Option<Date>>,
    /// Last day of the weekly pattern (inclusive).
    pub end: Vec<Option<Date>>,
    /// Exceptions sorted by (service, date): `true` adds service, `false` removes it.
    pub exceptions: Vec<(u32, Date, bool)>,
}

impl Services {
    /// Number of services.
    pub fn len(&self) -> usize {
        self.weekdays.len()
    }

    /// Whether there are no services.
    pub fn is_empty(&self) -> bool {
        self.weekdays.is_empty()
    }

    /// Whether `service` runs on `date`: an exception wins over the weekly pattern.
    pub fn is_active(&self, service: u32, date: Date) -> bool {
        let key = (service, date);
        if let Ok(i) = self
            .exceptions
            .binary_search_by(|&(s, d, _)| (s, d).cmp(&key))
        {
            return self.exceptions[i].2;
        }
        let s = service as usize;
        match (self.start[s], self.end[s]) {
            (Some(start), Some(end)) if start <= date && date <= end => {
                self.weekdays[s] & weekday_bit(date.weekday()) != 0
            }
            _ => false,
        }
    }

    /// The first and last dates on which any service may run.
    pub fn date_range(&self) -> Option<(Date, Date)> {
        let starts = self.start.iter().flatten().copied();
        let ends = self.end.iter().flatten().copied();
        let exceptions = self.exceptions.iter().filter(|e| e.2).map(|e| e.1);
        let first = starts.chain(exceptions.clone()).min()?;
        let last = ends.chain(exceptions).max()?;
        Some((first, last))
    }
}

/// The bit of `weekday` in [`Services::weekdays`].
pub fn weekday_bit(weekday: Weekday) -> u8 {
    1 << (weekday.to_monday_zero_offset() as u8)
}

/// Shapes (shapes.txt): point sequences, flat, grouped by shape.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Shapes {
    /// `shape_id` ↔ index.
    pub ids: IdTable,
    /// Where each shape's points start; one more entry than there are shapes.
    pub start: Vec<u32>,
    /// Latitudes in degrees.
    pub lat: Vec<f64>,
    /// Longitudes in degrees.
    pub lon: Vec<f64>,
    /// `shape_dist_traveled`, NaN when absent.
    pub dist: Vec<f32>,
}

impl Shapes {
    /// Number of shapes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no shapes.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The point index range of shape `shape`.
    pub fn points(&self, shape: u32) -> std::ops::Range<usize> {
        self.start[shape as usize] as usize..self.start[shape as usize + 1] as usize
    }
}

/// A headway-based service period (frequencies.txt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frequency {
    /// Index into [`Trips`].
    pub trip: u32,
    /// `start_time`.
    pub start: ServiceSeconds,
    /// `end_time` (exclusive).
    pub end: ServiceSeconds,
    /// `headway_secs`.
    pub headway: u32,
    /// `exact_times` = 1: departures are exactly on the headway.
    pub exact_times: bool,
}

/// A transfer rule (transfers.txt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    /// Index of `from_stop_id`, or [`NONE`].
    pub from_stop: u32,
    /// Index of `to_stop_id`, or [`NONE`].
    pub to_stop: u32,
    /// Index of `from_route_id`, or [`NONE`].
    pub from_route: u32,
    /// Index of `to_route_id`, or [`NONE`].
    pub to_route: u32,
    /// Index of `from_trip_id`, or [`NONE`].
    pub from_trip: u32,
    /// Index of `to_trip_id`, or [`NONE`].
    pub to_trip: u32,
    /// `transfer_type` 0–5.
    pub transfer_type: u8,
    /// `min_transfer_time` in seconds.
    pub min_transfer_time: Option<u32>,
}

/// Dataset metadata (feed_info.txt).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedInfo {
    /// `feed_publisher_name`.
    pub publisher_name: String,
    /// `feed_publisher_url`.
    pub publisher_url: String,
    /// `feed_lang`.
    pub lang: String,
    /// `feed_start_date`.
    pub start_date: Option<Date>,
    /// `feed_end_date`.
    pub end_date: Option<Date>,
    /// `feed_version`.
    pub version: Option<String>,
}

/// A whole transit network: what one GTFS feed describes.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct NetworkData {
    /// Agencies, in file order.
    pub agencies: Vec<Agency>,
    /// `agency_id` ↔ index.
    pub agency_ids: IdTable,
    /// `route_id` ↔ index.
    pub route_ids: IdTable,
    /// Routes, by index.
    pub routes: Vec<Route>,
    /// Stops.
    pub stops: Stops,
    /// Trips.
    pub trips: Trips,
    /// Stop times.
    pub stop_times: StopTimes,
    /// Service calendars.
    pub services: Services,
    /// Shapes.
    pub shapes: Shapes,
    /// Frequency-based service.
    pub frequencies: Vec<Frequency>,
    /// Transfer rules.
    pub transfers: Vec<Transfer>,
    /// Feed metadata.
    pub feed_info: Option<FeedInfo>,
    /// Interned repeated text: headsigns, block ids, trip short names.
    pub strings: Vec<String>,
}

impl NetworkData {
    /// The interned string at `index`, or `None` for [`NONE`].
    pub fn string(&self, index: u32) -> Option<&str> {
        (index != NONE).then(|| self.strings[index as usize].as_str())
    }

    /// Checks that every internal reference is in range and every column
    /// has its table's length, so indexing never panics. The loader builds
    /// data that passes by construction; bytes read back from storage are
    /// checked before use.
    pub fn validate(&self) -> Result<(), String> {
        fn check(ok: bool, what: &str) -> Result<(), String> {
            if ok { Ok(()) } else { Err(what.to_owned()) }
        }
        fn refs(values: &[u32], len: usize, optional: bool, what: &str) -> Result<(), String> {
            check(
                values
                    .iter()
                    .all(|&v| (v as usize) < len || (optional && v == NONE)),
                what,
            )
        }
        fn starts(start: &[u32], groups: usize, items: usize, what: &str) -> Result<(), String> {
            check(
                start.len() == groups + 1
                    && start.is_sorted()
                    && start.last().is_some_and(|&l| l as usize == items),
                what,
            )
        }
        let s = &self.stops;
        let n = s.ids.len();
        check(
            [
                s.codes.len(),
                s.names.len(),
                s.lat.len(),
                s.lon.len(),
                s.location_type.len(),
                s.parent.len(),
                s.wheelchair.len(),
                s.platform_codes.len(),
            ]
            .iter()
            .all(|&l| l == n),
            "stop columns differ in length",
        )?;
        refs(&s.parent, n, true, "a stop's parent is out of range")?;
        check(self.agency_ids.len() == self.agencies.len(), "agency ids")?;
        check(self.route_ids.len() == self.routes.len(), "route ids")?;
        check(
            self.routes
                .iter()
                .all(|r| (r.agency as usize) < self.agencies.len()),
            "a route's agency is out of range",
        )?;
        let t = &self.trips;
        let trips = t.ids.len();
        check(
            [
                t.route.len(),
                t.service.len(),
                t.shape.len(),
                t.headsign.len(),
                t.direction.len(),
                t.block.len(),
                t.short_name.len(),
                t.wheelchair.len(),
                t.bikes.len(),
            ]
            .iter()
            .all(|&l| l == trips),
            "trip columns differ in length",
        )?;
        refs(
            &t.route,
            self.routes.len(),
            false,
            "a trip's route is out of range",
        )?;
        refs(
            &t.service,
            self.services.ids.len(),
            false,
            "a trip's service is out of range",
        )?;
        refs(
            &t.shape,
            self.shapes.ids.len(),
            true,
            "a trip's shape is out of range",
        )?;
        for column in [&t.headsign, &t.block, &t.short_name] {
            refs(
                column,
                self.strings.len(),
                true,
                "a trip's text is out of range",
            )?;
        }
        let st = &self.stop_times;
        let rows = st.stop.len();
        check(
            [
                st.arrival.len(),
                st.departure.len(),
                st.sequence.len(),
                st.shape_dist.len(),
                st.flags.len(),
            ]
            .iter()
            .all(|&l| l == rows),
            "stop time columns differ in length",
        )?;
        starts(
            &t.stop_times_start,
            trips,
            rows,
            "trip stop time ranges are inconsistent",
        )?;
        refs(&st.stop, n, false, "a stop time's stop is out of range")?;
        check(
            st.headsigns
                .iter()
                .all(|&(row, text)| (row as usize) < rows && (text as usize) < self.strings.len())
                && st.headsigns.is_sorted(),
            "stop headsigns are out of range",
        )?;
        let sv = &self.services;
        let services = sv.ids.len();
        check(
            sv.weekdays.len() == services && sv.start.len() == services && sv.end.len() == services,
            "service columns differ in length",
        )?;
        check(
            sv.exceptions.iter().all(|e| (e.0 as usize) < services)
                && sv.exceptions.is_sorted_by_key(|e| (e.0, e.1)),
            "service exceptions are out of range or unsorted",
        )?;
        let sh = &self.shapes;
        check(
            sh.lat.len() == sh.lon.len() && sh.lat.len() == sh.dist.len(),
            "shape columns differ in length",
        )?;
        starts(
            &sh.start,
            sh.ids.len(),
            sh.lat.len(),
            "shape point ranges are inconsistent",
        )?;
        check(
            self.frequencies
                .iter()
                .all(|f| (f.trip as usize) < trips && f.headway > 0),
            "a frequency is out of range",
        )?;
        check(
            self.transfers.iter().all(|x| {
                [x.from_stop, x.to_stop]
                    .iter()
                    .all(|&v| v == NONE || (v as usize) < n)
                    && [x.from_route, x.to_route]
                        .iter()
                        .all(|&v| v == NONE || (v as usize) < self.routes.len())
                    && [x.from_trip, x.to_trip]
                        .iter()
                        .all(|&v| v == NONE || (v as usize) < trips)
            }),
            "a transfer refers out of range",
        )
    }

    pub(crate) fn rebuild_lookups(&mut self) {
        self.agency_ids.rebuild_lookup();
        self.route_ids.rebuild_lookup();
        self.stops.ids.rebuild_lookup();
        self.trips.ids.rebuild_lookup();
        self.services.ids.rebuild_lookup();
        self.shapes.ids.rebuild_lookup();
    }
}
