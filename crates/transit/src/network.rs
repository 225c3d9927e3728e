//! [`Network`]: the loaded data plus the indexes that make queries fast.
//!
//! Indexes are derived, never stored: they are rebuilt from [`NetworkData`]
//! when a network is loaded from the store, so the persisted form has one
//! source of truth.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::model::*;
use crate::time::{ServiceSeconds, service_day_start};

/// Mean Earth radius in metres, as used by haversine distances.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Magic and version at the head of a serialised network.
const FORMAT: &[u8; 8] = b"CITYNET1";

type StopPoint = GeomWithData<[f64; 2], u32>;

/// Why a stored network could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not start with this version's header.
    #[error("not a cityos network of this version (header {0:?})")]
    Format(Vec<u8>),
    /// The body is damaged.
    #[error("damaged network data: {0}")]
    Body(#[from] postcard::Error),
    /// The data decodes but is not usable (e.g. an unknown time zone).
    #[error("invalid network: {0}")]
    Invalid(String),
}

/// Counts of what a network holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Summary {
    /// Agencies.
    pub agencies: usize,
    /// Routes.
    pub routes: usize,
    /// Stops, stations and other locations.
    pub stops: usize,
    /// Trips.
    pub trips: usize,
    /// Stop times.
    pub stop_times: usize,
    /// Shapes.
    pub shapes: usize,
    /// Services.
    pub services: usize,
    /// `[min_lon, min_lat, max_lon, max_lat]` of the stops, if any have positions.
    pub bbox: Option<[f64; 4]>,
    /// `feed_version` from feed_info.txt.
    pub feed_version: Option<String>,
    /// The agencies' time zone.
    pub timezone: String,
    /// First and last service dates, `YYYY-MM-DD`.
    pub service_dates: Option<(String, String)>,
}

/// A route's departure is its last (막차) only if none of its next service
/// day follows within this long: ninety minutes, longer than any night
/// bus's headway, shorter than the night's break in service.
pub const LAST_DEPARTURE_GAP_S: i64 = 90 * 60;

/// A scheduled departure of a trip from a stop on a given service day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Departure {
    /// The trip.
    pub trip: u32,
    /// The stop time of that trip at the stop.
    pub stop_time: u32,
    /// The service day it belongs to.
    pub service_date: Date,
    /// Departure in seconds after the service day's start (may exceed 24 h).
    pub time: ServiceSeconds,
    /// The same departure as an instant.
    pub at: Timestamp,
}

/// A transit network ready for queries.
#[derive(Debug)]
pub struct Network {
    data: NetworkData,
    timezone: TimeZone,
    stop_tree: RTree<StopPoint>,
    /// Metres per degree of longitude at the network's latitude, for the R-tree's plane.
    lon_scale: f64,
    lower_names: Vec<String>,
    /// Station → its child stops, as CSR (`children_start` has stops+1 entries).
    children_start: Vec<u32>,
    children: Vec<u32>,
    /// Stop → its stop times sorted by departure, as CSR.
    departures_start: Vec<u32>,
    departures: Vec<u32>,
    /// Stop time → trip (derived from `Trips::stop_times_start`).
    stop_time_trip: Vec<u32>,
    /// Route → distinct shapes of its trips.
    route_shapes: Vec<Vec<u32>>,
    /// Route → number of trips.
    route_trips: Vec<u32>,
    /// Trips with frequencies.txt entries, sorted by trip.
    frequency_trips: Vec<u32>,
    /// Metres per unit of `shape_dist_traveled` (feeds use metres, km, miles or feet).
    shape_dist_metres: f64,
}

impl Network {
    /// Builds the indexes over `data`.
    ///
    /// Fails only if the time zone is unknown to this build, which the
    /// loader has already checked for feeds it read.
    pub fn new(mut data: NetworkData) -> Result<Network, DecodeError> {
        data.rebuild_lookups();
        let tz_name = data.agencies.first().map_or("UTC", |a| a.timezone.as_str());
        let timezone = TimeZone::get(tz_name)
            .map_err(|e| DecodeError::Invalid(format!("time zone '{tz_name}': {e}")))?;

        let stops = &data.stops;
        let mean_lat = {
            let lats: Vec<f64> = stops
                .lat
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if lats.is_empty() {
                0.0
            } else {
                lats.iter().sum::<f64>() / lats.len() as f64
            }
        };
        let lon_scale = mean_lat.to_radians().cos() * EARTH_RADIUS_M.to_radians();
        let lat_scale = EARTH_RADIUS_M.to_radians();
        let points: Vec<StopPoint> = (0..stops.len())
            .filter(|&s| is_boardable_place(stops, s) && stops.lat[s].is_finite())
            .map(|s| {
                GeomWithData::new(
                    [stops.lon[s] * lon_scale, stops.lat[s] * lat_scale],
                    s as u32,
                )
            })
            .collect();
        let stop_tree = RTree::bulk_load(points);
        let lower_names = stops.names.iter().map(|n| n.to_lowercase()).collect();

        let (children_start, children) = csr(
            stops.len(),
            stops
                .parent
                .iter()
                .enumerate()
                .filter(|(_, p)| **p != NONE)
                .map(|(c, p)| (*p, c as u32)),
        );

        let st = &data.stop_times;
        let mut stop_time_trip = vec![0u32; st.len()];
        for trip in 0..data.trips.len() as u32 {
            for i in data.trips.stop_time_range(trip) {
                stop_time_trip[i] = trip;
            }
        }
        let (departures_start, mut departures) = csr(
            stops.len(),
            st.stop.iter().enumerate().map(|(i, s)| (*s, i as u32)),
        );
        for s in 0..stops.len() {
            let slice =
                &mut departures[departures_start[s] as usize..departures_start[s + 1] as usize];
            slice.sort_unstable_by_key(|&i| (st.departure[i as usize], i));
        }

        let mut route_shapes = vec![Vec::new(); data.routes.len()];
        let mut route_trips = vec![0u32; data.routes.len()];
        for trip in 0..data.trips.len() {
            let route = data.trips.route[trip] as usize;
            route_trips[route] += 1;
            let shape = data.trips.shape[trip];
            if shape != NONE && !route_shapes[route].contains(&shape) {
                route_shapes[route].push(shape);
            }
        }
        let mut frequency_trips: Vec<u32> = data.frequencies.iter().map(|f| f.trip).collect();
        frequency_trips.sort_unstable();
        frequency_trips.dedup();
        data.frequencies.sort_by_key(|f| (f.trip, f.start));

        let shape_dist_metres = shape_dist_unit(&data);
        Ok(Network {
            shape_dist_metres,
            data,
            timezone,
            stop_tree,
            lon_scale,
            lower_names,
            children_start,
            children,
            departures_start,
            departures,
            stop_time_trip,
            route_shapes,
            route_trips,
            frequency_trips,
        })
    }

    /// The network's data.
    pub fn data(&self) -> &NetworkData {
        &self.data
    }

    /// The agencies' time zone.
    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// Serialises the data (not the indexes) for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = FORMAT.to_vec();
        // Serialising plain vectors cannot fail.
        out.extend(postcard::to_stdvec(&self.data).unwrap_or_default());
        out
    }

    /// Reads back what [`Network::to_bytes`] wrote and rebuilds the indexes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Network, DecodeError> {
        let Some(body) = bytes.strip_prefix(FORMAT.as_slice()) else {
            return Err(DecodeError::Format(bytes.iter().take(8).copied().collect()));
        };
        let data: NetworkData = postcard::from_bytes(body)?;
        data.validate().map_err(DecodeError::Invalid)?;
        Network::new(data)
    }

    /// Counts, extent and dates of the network.
    pub fn summary(&self) -> Summary {
        let d = &self.data;
        let bbox = {
            let env = self.stop_tree.root().envelope();
            (self.stop_tree.size() > 0).then(|| {
                let lat_scale = EARTH_RADIUS_M.to_radians();
                [
                    env.lower()[0] / self.lon_scale,
                    env.lower()[1] / lat_scale,
                    env.upper()[0] / self.lon_scale,
                    env.upper()[1] / lat_scale,
                ]
            })
        };
        Summary {
            agencies: d.agencies.len(),
            routes: d.routes.len(),
            stops: d.stops.len(),
            trips: d.trips.len(),
            stop_times: d.stop_times.len(),
            shapes: d.shapes.len(),
            services: d.services.len(),
            bbox,
            feed_version: d.feed_info.as_ref().and_then(|f| f.version.clone()),
            timezone: self.timezone.iana_name().unwrap_or("UTC").to_owned(),
            service_dates: d
                .services
                .date_range()
                .map(|(a, b)| (a.to_string(), b.to_string())),
        }
    }

    /// Stops and stations within `radius_m` metres of a point, nearest
    /// first, at most `limit`, written into `out` as (stop, metres).
    pub fn stops_nearby_into(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        limit: usize,
        out: &mut Vec<(u32, f64)>,
    ) {
        out.clear();
        let lat_scale = EARTH_RADIUS_M.to_radians();
        let centre = [lon * self.lon_scale, lat * lat_scale];
        // The plane is exact at the network's mean latitude; pad the search so
        // the haversine check below decides at the edges.
        let padded = radius_m * 1.05 + 1.0;
        for point in self
            .stop_tree
            .locate_within_distance(centre, padded * padded)
        {
            let s = point.data as usize;
            let d = haversine_m(lat, lon, self.data.stops.lat[s], self.data.stops.lon[s]);
            if d <= radius_m {
                out.push((point.data, d));
            }
        }
        out.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out.truncate(limit);
    }

    /// Stops whose name contains `query` (case-insensitive) or whose code or id
    /// equals it; prefix matches first, then by name.
    pub fn search_stops(&self, query: &str) -> Vec<u32> {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return Vec::new();
        }
        let stops = &self.data.stops;
        let mut hits: Vec<(u8, u32)> = (0..stops.len())
            .filter(|&s| is_boardable_place(stops, s))
            .filter_map(|s| {
                let name = &self.lower_names[s];
                let rank = if stops.codes[s].eq_ignore_ascii_case(&q)
                    || stops.ids.id(s as u32) == query.trim()
                {
                    0
                } else if name.starts_with(&q) {
                    1
                } else if name.contains(&q) {
                    2
                } else {
                    return None;
                };
                Some((rank, s as u32))
            })
            .collect();
        hits.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| stops.names[a.1 as usize].cmp(&stops.names[b.1 as usize]))
        });
        hits.into_iter().map(|h| h.1).collect()
    }

    /// A station's child stops (platforms, entrances), empty for plain stops.
    pub fn children(&self, stop: u32) -> &[u32] {
        &self.children[self.children_start[stop as usize] as usize
            ..self.children_start[stop as usize + 1] as usize]
    }

    /// The trip that stop time `stop_time` belongs to.
    pub fn trip_of(&self, stop_time: u32) -> u32 {
        self.stop_time_trip[stop_time as usize]
    }

    /// Routes calling at `stop` or, for a station, at its platforms.
    pub fn routes_at(&self, stop: u32) -> Vec<u32> {
        let mut routes: Vec<u32> = std::iter::once(stop)
            .chain(self.children(stop).iter().copied())
            .flat_map(|s| self.stop_times_leaving(s))
            .map(|&i| self.data.trips.route[self.stop_time_trip[i as usize] as usize])
            .collect();
        routes.sort_unstable();
        routes.dedup();
        routes
    }

    /// Metres travelled on `route` from stop `from` to stop `to` (stations
    /// match their platforms), along the first trip that calls at both in
    /// that order: by `shape_dist_traveled` when the feed gives it in metres
    /// (as the city generator does), else stop to stop in straight lines.
    pub fn distance_on_route(&self, route: u32, from: u32, to: u32) -> Option<f64> {
        let d = &self.data;
        let at = |place: u32, stop: u32| stop == place || d.stops.parent[stop as usize] == place;
        let trips = (0..d.trips.len() as u32).filter(|&t| d.trips.route[t as usize] == route);
        for trip in trips {
            let range = d.trips.stop_time_range(trip);
            let Some(i) = range.clone().find(|&i| at(from, d.stop_times.stop[i])) else {
                continue;
            };
            let Some(j) = (i + 1..range.end).find(|&j| at(to, d.stop_times.stop[j])) else {
                continue;
            };
            let (di, dj) = (d.stop_times.shape_dist[i], d.stop_times.shape_dist[j]);
            if di.is_finite() && dj.is_finite() && dj >= di {
                return Some(f64::from(dj - di) * self.shape_dist_metres);
            }
            let position = |k: usize| {
                let s = d.stop_times.stop[k] as usize;
                (d.stops.lat[s], d.stops.lon[s])
            };
            return Some(
                (i..j)
                    .map(|k| {
                        let (a, b) = (position(k), position(k + 1));
                        haversine_m(a.0, a.1, b.0, b.1)
                    })
                    .sum(),
            );
        }
        None
    }

    /// Metres per unit of the feed's `shape_dist_traveled`.
    pub fn shape_dist_metres(&self) -> f64 {
        self.shape_dist_metres
    }

    /// Distinct shapes used by `route`'s trips.
    pub fn route_shapes(&self, route: u32) -> &[u32] {
        &self.route_shapes[route as usize]
    }

    /// Number of trips of `route`.
    pub fn route_trip_count(&self, route: u32) -> u32 {
        self.route_trips[route as usize]
    }

    /// Services running on `date`.
    pub fn active_services(&self, date: Date) -> Vec<u32> {
        (0..self.data.services.len() as u32)
            .filter(|&s| self.data.services.is_active(s, date))
            .collect()
    }

    /// Scheduled departures from `stop` (and, for a station, from its
    /// platforms) at instants in `[from, until]`, earliest first, at most `limit`.
    ///
    /// A trip's last stop is not a departure. Frequency-based trips are
    /// expanded into their individual runs.
    pub fn departures(
        &self,
        stop: u32,
        from: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Vec<Departure> {
        let mut stops = vec![stop];
        stops.extend_from_slice(self.children(stop));
        let from_day = from.to_zoned(self.timezone.clone()).date();
        let until_day = until.to_zoned(self.timezone.clone()).date();
        let mut out = Vec::new();
        // Service days whose times (up to ~48 h) can reach into the window.
        let mut day = from_day.checked_sub(2.days()).unwrap_or(from_day);
        while day <= until_day {
            if let Some(day_start) = service_day_start(day, &self.timezone) {
                let lo = from.duration_since(day_start).as_secs().max(0);
                let hi = until.duration_since(day_start).as_secs();
                if hi >= 0 {
                    for &s in &stops {
                        self.departures_on_day(
                            s,
                            day,
                            day_start,
                            lo as u32,
                            hi.min(u32::MAX as i64 - 1) as u32,
                            &mut out,
                        );
                    }
                }
            }
            day = match day.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        out.sort_by_key(|d| (d.at, d.trip));
        out.truncate(limit);
        out
    }

    fn departures_on_day(
        &self,
        stop: u32,
        day: Date,
        day_start: Timestamp,
        lo: u32,
        hi: u32,
        out: &mut Vec<Departure>,
    ) {
        let st = &self.data.stop_times;
        let list = self.stop_times_leaving(stop);
        let departure = |trip: u32, i: u32, time: ServiceSeconds| Departure {
            trip,
            stop_time: i,
            service_date: day,
            time,
            at: day_start
                .saturating_add(SignedDuration::from_secs(i64::from(time)))
                .unwrap_or(day_start),
        };
        let begin = list.partition_point(|&i| st.departure[i as usize] < lo);
        for &i in &list[begin..] {
            let time = st.departure[i as usize];
            if time > hi {
                break;
            }
            let trip = self.stop_time_trip[i as usize];
            if !self.is_frequency_based(trip) && self.leaves_on(trip, i, day) {
                out.push(departure(trip, i, time));
            }
        }
        // Frequency-based trips: their stop times are a template shifted to each run's start.
        for &i in list {
            let trip = self.stop_time_trip[i as usize];
            if self.is_frequency_based(trip) && self.leaves_on(trip, i, day) {
                out.extend(
                    self.frequency_runs(trip, i)
                        .filter(|time| (lo..=hi).contains(time))
                        .map(|time| departure(trip, i, time)),
                );
            }
        }
    }

    fn is_frequency_based(&self, trip: u32) -> bool {
        self.frequency_trips.binary_search(&trip).is_ok()
    }

    /// Whether riders board trip `trip` at its stop time `i` on service day `day`.
    fn leaves_on(&self, trip: u32, i: u32, day: Date) -> bool {
        self.is_departure(trip, i)
            && self
                .data
                .services
                .is_active(self.data.trips.service[trip as usize], day)
    }

    /// The stop times leaving `stop` itself, sorted by departure time.
    fn stop_times_leaving(&self, stop: u32) -> &[u32] {
        &self.departures[self.departures_start[stop as usize] as usize
            ..self.departures_start[stop as usize + 1] as usize]
    }

    /// When each run of frequency-based trip `trip` leaves its stop time
    /// `i`: the template's time there, shifted to each run's start.
    fn frequency_runs(&self, trip: u32, i: u32) -> impl Iterator<Item = ServiceSeconds> + '_ {
        let st = &self.data.stop_times;
        let first = self.data.trips.stop_time_range(trip).start;
        let offset = st.departure[i as usize].saturating_sub(st.departure[first]);
        let begin = self.data.frequencies.partition_point(|f| f.trip < trip);
        self.data.frequencies[begin..]
            .iter()
            .take_while(move |f| f.trip == trip)
            .flat_map(move |f| {
                std::iter::successors(Some(f.start), move |&t| Some(t.saturating_add(f.headway)))
                    .take_while(move |&t| t < f.end)
                    .map(move |t| t.saturating_add(offset))
            })
    }

    /// Whether `dep`, a departure from `stop` (or one of its platforms), is
    /// the last of its route in its direction there before a break in
    /// service (Seoul's 막차, which riders at night need to know): none
    /// follows on its service day, nor within [`LAST_DEPARTURE_GAP_S`] on
    /// the next (a route running round the clock has no last bus).
    pub fn is_last_departure(&self, stop: u32, dep: &Departure) -> bool {
        let trips = &self.data.trips;
        let line = |trip: u32| (trips.route[trip as usize], trips.direction[trip as usize]);
        let mine = line(dep.trip);
        let st = &self.data.stop_times;
        let stops = || std::iter::once(stop).chain(self.children(stop).iter().copied());
        let later_today = stops().any(|s| {
            let list = self.stop_times_leaving(s);
            let begin = list.partition_point(|&i| st.departure[i as usize] <= dep.time);
            let timetabled = list[begin..].iter().any(|&i| {
                let trip = self.stop_time_trip[i as usize];
                line(trip) == mine
                    && !self.is_frequency_based(trip)
                    && self.leaves_on(trip, i, dep.service_date)
            });
            timetabled
                || (!self.frequency_trips.is_empty()
                    && list.iter().any(|&i| {
                        let trip = self.stop_time_trip[i as usize];
                        line(trip) == mine
                            && self.is_frequency_based(trip)
                            && self.leaves_on(trip, i, dep.service_date)
                            && self.frequency_runs(trip, i).any(|t| t > dep.time)
                    }))
        });
        if later_today {
            return false;
        }
        let soon = dep
            .at
            .saturating_add(SignedDuration::from_secs(LAST_DEPARTURE_GAP_S))
            .unwrap_or(dep.at);
        !self
            .departures(stop, dep.at, soon, usize::MAX)
            .iter()
            .any(|d| d.service_date > dep.service_date && line(d.trip) == mine)
    }

    /// Whether riders can board trip `trip` at stop time `i`.
    fn is_departure(&self, trip: u32, i: u32) -> bool {
        let range = self.data.trips.stop_time_range(trip);
        i as usize + 1 != range.end
            && self.data.stop_times.flags[i as usize] & flags::PICKUP_MASK != 1
    }

    /// The instant a service-day time falls at, in the network's time zone.
    pub fn instant(&self, date: Date, time: ServiceSeconds) -> Option<Timestamp> {
        service_day_start(date, &self.timezone)?
            .checked_add(SignedDuration::from_secs(i64::from(time)))
            .ok()
    }
}

/// Infers the unit of `shape_dist_traveled` by comparing it with straight
/// lines between stops on a sample of trips: GTFS leaves the unit to the feed.
fn shape_dist_unit(data: &NetworkData) -> f64 {
    let (mut dist, mut metres) = (0.0f64, 0.0f64);
    // Shapes' own points measure the same path their distances do.
    let shapes = &data.shapes;
    for shape in 0..shapes.len() as u32 {
        let points = shapes.points(shape);
        for k in points.start..points.end.saturating_sub(1) {
            let (a, b) = (shapes.dist[k], shapes.dist[k + 1]);
            if a.is_finite() && b.is_finite() && b >= a {
                dist += f64::from(b - a);
                metres += haversine_m(
                    shapes.lat[k],
                    shapes.lon[k],
                    shapes.lat[k + 1],
                    shapes.lon[k + 1],
                );
            }
        }
    }
    if dist <= 0.0 {
        // No distances on shapes: compare stop times' distances with straight lines between stops.
        let st = &data.stop_times;
        let step = (data.trips.len() / 200).max(1);
        for trip in (0..data.trips.len() as u32).step_by(step) {
            let range = data.trips.stop_time_range(trip);
            for k in range.start..range.end.saturating_sub(1) {
                let (a, b) = (st.shape_dist[k], st.shape_dist[k + 1]);
                let (s, t) = (st.stop[k] as usize, st.stop[k + 1] as usize);
                let m = haversine_m(
                    data.stops.lat[s],
                    data.stops.lon[s],
                    data.stops.lat[t],
                    data.stops.lon[t],
                );
                if a.is_finite() && b.is_finite() && b > a && m.is_finite() {
                    dist += f64::from(b - a);
                    metres += m;
                }
            }
        }
    }
    if dist <= 0.0 {
        return 1.0;
    }
    // Units differ by large factors, so the nearest on a log scale is unambiguous.
    let ratio = metres / dist;
    [1.0, 1000.0, 1609.344, 0.3048]
        .into_iter()
        .min_by(|a, b| (ratio / a).ln().abs().total_cmp(&(ratio / b).ln().abs()))
        .unwrap_or(1.0)
}

/// Whether a stop is somewhere riders look for: a station, or a stop that is not a platform of one.
pub fn is_boardable_place(stops: &Stops, s: usize) -> bool {
    match stops.location_type[s] {
        1 => true,
        0 => stops.parent[s] == NONE,
        _ => false,
    }
}

/// Great-circle distance in metres.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// Builds a compressed-sparse-row index of `n` buckets from (bucket, value) pairs.
fn csr(n: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n + 1];
    for (b, _) in pairs.clone() {
        start[b as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut values = vec![0u32; start[n] as usize];
    for (b, v) in pairs {
        values[next[b as usize] as usize] = v;
        next[b as usize] += 1;
    }
    (start, values)
}
