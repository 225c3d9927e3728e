//! Simulated vehicles: every trip of a day driven along its shape, for the
//! demo (which publishes the positions over MQTT, as real buses would) and
//! for scoring predictions on a generated city.
//!
//! [`Fleet::plan`] decides, once for the day, when each vehicle reaches and
//! leaves every stop of each of its trips; [`Fleet::fixes_at`] then says
//! where every vehicle is at any moment. What the plan models, because each
//! is something a prediction or an operator must cope with:
//!
//! * **traffic by time of day and by road**: every road (a pair of
//!   consecutive stops) has its own free-flow factor and its own sensitivity
//!   to the morning and evening peaks, so some roads congest and others not;
//! * **drivers and lights**: a factor per trip and a random draw per link;
//! * **dwell times** that grow when a bus runs late (more people are waiting),
//!   which is how buses bunch;
//! * **blocks**: a vehicle drives its block's trips in turn, so a late
//!   arrival delays its next trip;
//! * **late starts and breakdowns**: now and then a trip leaves minutes late,
//!   or a vehicle halts between stops for a quarter of an hour.
//!
//! Deterministic: the same network, options and seed give the same fleet.

use std::collections::HashMap;
use std::ops::Range;

use cityos_transit::{NONE, Network, RouteKind, haversine_m};
use jiff::civil::Date;

use crate::rng::Rng;

/// How a day of vehicles is simulated.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The service date whose trips run.
    pub date: Date,
    /// Seed of every random draw.
    pub seed: u64,
    /// Chance that a trip breaks down somewhere between two stops.
    pub breakdown_chance: f64,
    /// Chance that a trip leaves its first stop 3–8 minutes late.
    pub late_start_chance: f64,
}

impl FleetOptions {
    /// The defaults for `date`: seed 1, one trip in 250 breaks down, one in
    /// 30 starts late.
    pub fn new(date: Date) -> FleetOptions {
        FleetOptions {
            date,
            seed: 1,
            breakdown_chance: 0.004,
            late_start_chance: 1.0 / 30.0,
        }
    }
}

/// Where one vehicle is at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// The vehicle (index for [`Fleet::vehicle_id`]).
    pub vehicle: u32,
    /// The trip it drives (index into the network's trips).
    pub trip: u32,
    /// POSIX seconds.
    pub time: i64,
    /// WGS-84 latitude.
    pub lat: f64,
    /// WGS-84 longitude.
    pub lon: f64,
    /// Heading, degrees clockwise from north.
    pub bearing: f32,
    /// Speed, metres per second (0 while dwelling or halted).
    pub speed: f32,
    /// Whether the vehicle is halted by a breakdown.
    pub broken_down: bool,
}

/// A day of simulated vehicles on a network.
#[derive(Debug, Clone)]
pub struct Fleet {
    vehicles: Vec<String>,
    lines: Vec<Line>,
    /// Runs in order of the moment they become visible.
    runs: Vec<TripRun>,
    /// The longest a run is visible, so [`Fleet::fixes_at`] knows how far back to look.
    longest_s: f64,
}

/// One trip as driven.
#[derive(Debug, Clone)]
struct TripRun {
    trip: u32,
    vehicle: u32,
    line: u32,
    /// Distance of each stop along the line, metres.
    stop_d: Vec<f64>,
    /// (arrival, departure) at each stop, POSIX seconds.
    times: Vec<(f64, f64)>,
    /// When the vehicle shows up at its first stop.
    visible_from: f64,
    breakdown: Option<Breakdown>,
}

/// A halt between stops `link` and `link + 1`.
#[derive(Debug, Clone, Copy)]
struct Breakdown {
    link: usize,
    /// Share of the link's driving time done before the halt.
    after: f64,
    seconds: f64,
}

/// A shape (or a trip's stops, when it has none) with cumulative distances.
#[derive(Debug, Clone)]
struct Line {
    points: Vec<(f64, f64)>,
    cum: Vec<f64>,
}

impl Line {
    fn new(points: Vec<(f64, f64)>) -> Option<Line> {
        let mut cum = Vec::with_capacity(points.len());
        let mut total = 0.0;
        for (i, &(lat, lon)) in points.iter().enumerate() {
            if i > 0 {
                let (plat, plon) = points[i - 1];
                total += haversine_m(plat, plon, lat, lon);
            }
            cum.push(total);
        }
        (points.len() >= 2 && total > 0.0).then_some(Line { points, cum })
    }

    /// The point at `d` metres along, and the heading there.
    fn at(&self, d: f64) -> (f64, f64, f32) {
        let k = self
            .cum
            .partition_point(|&c| c <= d)
            .clamp(1, self.points.len() - 1);
        let (a, b) = (self.points[k - 1], self.points[k]);
        let span = (self.cum[k] - self.cum[k - 1]).max(1e-6);
        let f = ((d - self.cum[k - 1]) / span).clamp(0.0, 1.0);
        let (lat, lon) = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
        let east = (b.1 - a.1) * a.0.to_radians().cos();
        let north = b.0 - a.0;
        let bearing = east.atan2(north).to_degrees().rem_euclid(360.0) as f32;
        (lat, lon, bearing)
    }

    /// Where the point nearest to (`lat`, `lon`) lies along the line, at or after `from`.
    fn locate(&self, lat: f64, lon: f64, from: f64) -> f64 {
        let kx = lat.to_radians().cos();
        let mut best = (f64::INFINITY, from);
        for k in 1..self.points.len() {
            if self.cum[k] < from {
                continue;
            }
            let (a, b) = (self.points[k - 1], self.points[k]);
            let (dx, dy) = ((b.1 - a.1) * kx, b.0 - a.0);
            let (px, py) = ((lon - a.1) * kx, lat - a.0);
            let len2 = dx * dx + dy * dy;
            let u = if len2 > 0.0 {
                ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let dist2 = (px - u * dx).powi(2) + (py - u * dy).powi(2);
            let along = (self.cum[k - 1] + u * (self.cum[k] - self.cum[k - 1])).max(from);
            if dist2 < best.0 {
                best = (dist2, along);
            }
        }
        best.1
    }
}

/// How much slower than free flow the peaks are at `hour` (service hours, may pass 24).
fn peak(hour: f64) -> f64 {
    let bump = |centre: f64, width: f64| (-(hour - centre).powi(2) / (2.0 * width * width)).exp();
    let h = hour.rem_euclid(24.0);
    let night = if !(5.5..23.0).contains(&h) {
        -0.12
    } else {
        0.0
    };
    0.45 * bump(8.25, 1.0) + 0.5 * bump(18.5, 1.3) + night
}

/// A road's own character: free-flow factor and sensitivity to the peaks.
/// It belongs to the city, so it is the same every day and for every seed.
fn road(from: u32, to: u32) -> (f64, f64) {
    let mut rng = Rng::derive(0, &[0x70ad, u64::from(from), u64::from(to)]);
    ((0.12 * rng.normal()).exp(), rng.range_f64(0.3, 1.7))
}

impl Fleet {
    /// Plans every trip of `network` that runs on `options.date`.
    pub fn plan(network: &Network, options: &FleetOptions) -> Fleet {
        let data = network.data();
        let Some(origin) = network
            .instant(options.date, 0)
            .map(|t| t.as_second() as f64)
        else {
            return Fleet {
                vehicles: Vec::new(),
                lines: Vec::new(),
                runs: Vec::new(),
                longest_s: 0.0,
            };
        };
        let unit = network.shape_dist_metres();
        let mut lines = Vec::new();
        let mut line_of_shape: HashMap<u32, Option<u32>> = HashMap::new();
        let mut vehicles: Vec<String> = Vec::new();
        let mut vehicle_of: HashMap<String, u32> = HashMap::new();
        // Trips of the day by vehicle, each vehicle's in order of departure.
        let mut by_vehicle: Vec<Vec<u32>> = Vec::new();
        for trip in 0..data.trips.len() as u32 {
            let t = trip as usize;
            let range = data.trips.stop_time_range(trip);
            if range.len() < 2 || !data.services.is_active(data.trips.service[t], options.date) {
                continue;
            }
            let name = match data.string(data.trips.block[t]) {
                Some(block) => device_id("bus", block),
                None => device_id("veh", data.trips.ids.id(trip)),
            };
            let v = *vehicle_of.entry(name.clone()).or_insert_with(|| {
                vehicles.push(name);
                by_vehicle.push(Vec::new());
                (vehicles.len() - 1) as u32
            });
            by_vehicle[v as usize].push(trip);
        }
        let mut runs = Vec::new();
        for (v, trips) in by_vehicle.iter_mut().enumerate() {
            trips.sort_by_key(|&t| data.stop_times.departure[data.trips.stop_time_range(t).start]);
            let mut free_at = f64::NEG_INFINITY;
            for &trip in trips.iter() {
                let range = data.trips.stop_time_range(trip);
                let shape = data.trips.shape[trip as usize];
                let line = if shape == NONE {
                    None
                } else {
                    *line_of_shape.entry(shape).or_insert_with(|| {
                        let points = data.shapes.points(shape);
                        let line = Line::new(
                            points
                                .map(|p| (data.shapes.lat[p], data.shapes.lon[p]))
                                .collect(),
                        )?;
                        lines.push(line);
                        Some((lines.len() - 1) as u32)
                    })
                };
                // A trip without a usable shape drives straight from stop to stop.
                let line = match line {
                    Some(l) => l,
                    None => {
                        let stops = range.clone().map(|i| {
                            let s = data.stop_times.stop[i] as usize;
                            (data.stops.lat[s], data.stops.lon[s])
                        });
                        let Some(line) = Line::new(stops.collect()) else {
                            continue;
                        };
                        lines.push(line);
                        (lines.len() - 1) as u32
                    }
                };
                let stop_d = stop_distances(network, &lines[line as usize], range.clone(), unit);
                let run = drive_trip(
                    network, options, origin, trip, v as u32, line, stop_d, free_at,
                );
                free_at = run.times.last().map_or(free_at, |&(arrival, _)| arrival);
                runs.push(run);
            }
        }
        runs.sort_by(|a, b| a.visible_from.total_cmp(&b.visible_from));
        let longest_s = runs
            .iter()
            .map(|r| r.times.last().map_or(0.0, |&(a, _)| a) - r.visible_from)
            .fold(0.0, f64::max);
        Fleet {
            vehicles,
            lines,
            runs,
            longest_s,
        }
    }

    /// Number of vehicles.
    pub fn vehicle_count(&self) -> usize {
        self.vehicles.len()
    }

    /// Number of trips driven.
    pub fn trip_count(&self) -> usize {
        self.runs.len()
    }

    /// The device id of vehicle `v` (`bus-<block>`, or `veh-<trip>` for a
    /// trip without a block): letters, digits, `.`, `_` and `-` only, at
    /// most 64 bytes, so it can name an MQTT topic level.
    pub fn vehicle_id(&self, v: u32) -> &str {
        self.vehicles.get(v as usize).map_or("", String::as_str)
    }

    /// When `trip` reaches each of its stops and leaves it, POSIX seconds;
    /// `None` when the trip is not driven today.
    pub fn stop_times(&self, trip: u32) -> Option<&[(f64, f64)]> {
        self.runs.iter().find(|r| r.trip == trip).map(|r| &*r.times)
    }

    /// Every vehicle on a trip at `time` (POSIX seconds), written into `out`
    /// (cleared first), in no particular order.
    pub fn fixes_at(&self, time: i64, out: &mut Vec<Fix>) {
        out.clear();
        let t = time as f64;
        let first = self
            .runs
            .partition_point(|r| r.visible_from < t - self.longest_s);
        let last = self.runs.partition_point(|r| r.visible_from <= t);
        out.extend(
            self.runs[first..last]
                .iter()
                .filter_map(|run| self.fix(run, time)),
        );
    }

    /// Each vehicle's reports in `window`, one every `every_s` seconds (at
    /// a phase of its own), moved by GPS noise of `gps_error_m` metres per
    /// axis, in time order.
    pub fn reports(
        &self,
        window: Range<i64>,
        every_s: i64,
        gps_error_m: f64,
        seed: u64,
    ) -> Vec<Fix> {
        let every = every_s.max(1);
        let mut out = Vec::new();
        for run in &self.runs {
            let end = run.times.last().map_or(run.visible_from, |&(a, _)| a);
            if end < window.start as f64 || run.visible_from > window.end as f64 {
                continue;
            }
            let mut rng = Rng::derive(seed, &[0x9e55, u64::from(run.trip)]);
            let mut t = run.visible_from.ceil() as i64 + rng.below(every as u64) as i64;
            while t as f64 <= end {
                if window.contains(&t)
                    && let Some(mut fix) = self.fix(run, t)
                {
                    let (north, east) = (gps_error_m * rng.normal(), gps_error_m * rng.normal());
                    let per_degree = 6_371_008.8_f64.to_radians();
                    fix.lat += north / per_degree;
                    fix.lon += east / (per_degree * fix.lat.to_radians().cos());
                    out.push(fix);
                }
                t += every;
            }
        }
        out.sort_by_key(|f| f.time);
        out
    }

    fn fix(&self, run: &TripRun, time: i64) -> Option<Fix> {
        let t = time as f64;
        let (last_arrival, _) = *run.times.last()?;
        if t < run.visible_from || t > last_arrival {
            return None;
        }
        let (d, speed, broken_down) = run.distance_at(t);
        let (lat, lon, bearing) = self.lines[run.line as usize].at(d);
        Some(Fix {
            vehicle: run.vehicle,
            trip: run.trip,
            time,
            lat,
            lon,
            bearing,
            speed: speed as f32,
            broken_down,
        })
    }
}

impl TripRun {
    /// Distance along the line at `t`, speed there, and whether halted by a breakdown.
    fn distance_at(&self, t: f64) -> (f64, f64, bool) {
        let k = self.times.partition_point(|&(arrival, _)| arrival <= t);
        if k == 0 {
            return (self.stop_d[0], 0.0, false);
        }
        let (_, departure) = self.times[k - 1];
        if k == self.times.len() || t <= departure {
            return (self.stop_d[k - 1], 0.0, false);
        }
        let (d0, d1) = (self.stop_d[k - 1], self.stop_d[k]);
        let (start, end) = (departure, self.times[k].0);
        let mut driving = (end - start).max(1e-3);
        let mut elapsed = t - start;
        if let Some(b) = self.breakdown.filter(|b| b.link == k - 1) {
            driving = (driving - b.seconds).max(1e-3);
            let halt_at = b.after * driving;
            if elapsed >= halt_at && elapsed < halt_at + b.seconds {
                return (d0 + (d1 - d0) * b.after, 0.0, true);
            }
            if elapsed >= halt_at + b.seconds {
                elapsed -= b.seconds;
            }
        }
        let f = (elapsed / driving).clamp(0.0, 1.0);
        (d0 + (d1 - d0) * f, (d1 - d0) / driving, false)
    }
}

/// Where each stop of a trip lies along its line, metres, never decreasing:
/// from `shape_dist_traveled` when the feed gives it for every stop and
/// point, else by projecting each stop onto the line after the previous one.
fn stop_distances(network: &Network, line: &Line, range: Range<usize>, unit: f64) -> Vec<f64> {
    let data = network.data();
    let given: Option<Vec<f64>> = range
        .clone()
        .map(|i| {
            let d = data.stop_times.shape_dist[i];
            d.is_finite().then(|| f64::from(d) * unit)
        })
        .collect();
    let mut out = match given {
        Some(d)
            if d.last()
                .is_some_and(|&l| l <= line.cum.last().copied().unwrap_or(0.0) * 1.05) =>
        {
            d
        }
        _ => {
            let mut from = 0.0;
            range
                .map(|i| {
                    let s = data.stop_times.stop[i] as usize;
                    from = line.locate(data.stops.lat[s], data.stops.lon[s], from);
                    from
                })
                .collect()
        }
    };
    for i in 1..out.len() {
        out[i] = out[i].max(out[i - 1]);
    }
    out
}

/// Drives one trip: when the vehicle reaches and leaves each stop.
#[allow(clippy::too_many_arguments)]
fn drive_trip(
    network: &Network,
    options: &FleetOptions,
    origin: f64,
    trip: u32,
    vehicle: u32,
    line: u32,
    stop_d: Vec<f64>,
    free_at: f64,
) -> TripRun {
    let data = network.data();
    let range = data.trips.stop_time_range(trip);
    let st = &data.stop_times;
    let rail = matches!(
        data.routes[data.trips.route[trip as usize] as usize].kind(),
        RouteKind::Subway | RouteKind::Rail | RouteKind::Tram
    );
    // Drivers, lights and mishaps differ from day to day.
    let day = i64::from(options.date.year()) * 10_000
        + i64::from(options.date.month()) * 100
        + i64::from(options.date.day());
    let mut rng = Rng::derive(options.seed, &[0x7219, u64::from(trip), day as u64]);
    let driver = (if rail { 0.02 } else { 0.06 } * rng.normal()).exp();
    let scheduled = |i: usize| {
        (
            origin + f64::from(st.arrival[range.start + i]),
            origin + f64::from(st.departure[range.start + i]),
        )
    };
    let mut late = rng.range_f64(0.0, 60.0);
    if rng.chance(options.late_start_chance) {
        late += rng.range_f64(180.0, 480.0);
    }
    // A vehicle leaves no earlier than a minute after its previous trip ended.
    let leave = (scheduled(0).1 + late).max(free_at + 60.0);
    let n = range.len();
    let breakdown = rng.chance(options.breakdown_chance).then(|| Breakdown {
        link: rng.index(n - 1),
        after: rng.range_f64(0.1, 0.9),
        seconds: rng.range_f64(480.0, 1500.0),
    });
    let mut times = Vec::with_capacity(n);
    times.push((leave.min(scheduled(0).0.max(free_at + 30.0)), leave));
    for i in 0..n - 1 {
        let departure = times[i].1;
        let planned = (scheduled(i + 1).0 - scheduled(i).1).max(10.0);
        let hour = (departure - origin) / 3600.0;
        let traffic = if rail {
            1.0
        } else {
            let (free_flow, sensitivity) =
                road(st.stop[range.start + i], st.stop[range.start + i + 1]);
            free_flow * (1.0 + sensitivity * peak(hour))
        };
        let lights = (if rail { 0.03 } else { 0.2 } * rng.normal()).exp();
        let mut drive = planned * traffic * driver * lights;
        if let Some(b) = breakdown.filter(|b| b.link == i) {
            drive += b.seconds;
        }
        let arrival = departure + drive;
        let dwell = if i + 2 == n {
            0.0
        } else if rail {
            rng.range_f64(20.0, 40.0)
        } else {
            // A late bus finds more people waiting: the start of bunching.
            let lateness = (arrival - scheduled(i + 1).0).max(0.0);
            rng.range_f64(4.0, 20.0) + (0.1 * lateness).min(120.0)
        };
        times.push((arrival, arrival + dwell));
    }
    TripRun {
        trip,
        vehicle,
        line,
        stop_d,
        visible_from: times[0].0.min(leave - 120.0).max(free_at),
        times,
        breakdown,
    }
}

/// `prefix-name` with every character an MQTT device id cannot hold
/// replaced by `-`, cut to 64 bytes: how simulated devices are named.
pub fn device_id(prefix: &str, name: &str) -> String {
    let mut id: String = format!("{prefix}-{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    id.truncate(64);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CityOptions, generate_city};

    fn city() -> Network {
        let dir = tempfile::tempdir().unwrap();
        generate_city(&CityOptions::default(), dir.path()).unwrap();
        cityos_transit::load_network(dir.path(), &|_| {}).unwrap().0
    }

    /// A Tuesday the generated calendar runs.
    fn date(_: &Network) -> Date {
        jiff::civil::date(2026, 3, 3)
    }

    #[test]
    fn vehicles_follow_their_trips_stop_to_stop() {
        let network = city();
        let fleet = Fleet::plan(&network, &FleetOptions::new(date(&network)));
        assert!(fleet.trip_count() > 100 && fleet.vehicle_count() > 10);
        let data = network.data();
        let mut checked = 0;
        for run in fleet.runs.iter().take(200) {
            // Times never go backwards, and a vehicle is at each stop while it dwells there.
            assert!(run.times.windows(2).all(|w| w[0].1 <= w[1].0));
            assert!(run.times.iter().all(|(a, d)| a <= d));
            let range = data.trips.stop_time_range(run.trip);
            for (i, &(arrival, _)) in run.times.iter().enumerate() {
                let Some(fix) = fleet.fix(run, arrival.ceil() as i64) else {
                    continue;
                };
                let stop = data.stop_times.stop[range.start + i] as usize;
                let off = haversine_m(fix.lat, fix.lon, data.stops.lat[stop], data.stops.lon[stop]);
                assert!(off < 60.0, "trip {} stop {i} is {off:.0} m away", run.trip);
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn a_vehicle_drives_its_block_in_turn_and_carries_its_delay() {
        let network = city();
        let fleet = Fleet::plan(&network, &FleetOptions::new(date(&network)));
        let mut by_vehicle: HashMap<u32, Vec<&TripRun>> = HashMap::new();
        for run in &fleet.runs {
            by_vehicle.entry(run.vehicle).or_default().push(run);
        }
        let chained = by_vehicle.values().filter(|runs| runs.len() > 1).count();
        assert!(chained > 0, "the generated city has blocks");
        for runs in by_vehicle.values() {
            for w in runs.windows(2) {
                let end = w[0].times.last().unwrap().0;
                assert!(
                    w[1].times[0].1 >= end + 60.0,
                    "next trip leaves after the last one ends"
                );
                assert!(w[1].visible_from >= end);
            }
        }
        // One vehicle is never in two places at once.
        let mut fixes = Vec::new();
        let noon = network
            .instant(date(&network), 12 * 3600)
            .unwrap()
            .as_second();
        fleet.fixes_at(noon, &mut fixes);
        assert!(fixes.len() > 10);
        let mut seen = std::collections::HashSet::new();
        assert!(fixes.iter().all(|f| seen.insert(f.vehicle)));
        assert!(fleet.vehicle_id(fixes[0].vehicle).starts_with("bus-"));
    }

    #[test]
    fn peaks_slow_the_roads_and_breakdowns_halt_vehicles() {
        let network = city();
        let mut options = FleetOptions::new(date(&network));
        options.breakdown_chance = 1.0;
        let fleet = Fleet::plan(&network, &options);
        let run = fleet.runs.iter().find(|r| r.times.len() > 3).unwrap();
        let b = run.breakdown.unwrap();
        let (dep, arr) = (run.times[b.link].1, run.times[b.link + 1].0);
        let halted = (0..((arr - dep) / 10.0) as usize)
            .filter(|&k| run.distance_at(dep + k as f64 * 10.0).2)
            .count();
        assert!(halted as f64 * 10.0 >= b.seconds - 20.0);
        assert!(peak(8.25) > 0.4 && peak(13.0) < 0.05 && peak(2.0) < 0.0);
        // Reports come in time order, each vehicle at its own phase.
        let from = network
            .instant(date(&network), 8 * 3600)
            .unwrap()
            .as_second();
        let reports = fleet.reports(from..from + 600, 20, 5.0, 7);
        assert!(reports.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(reports.len() > 100);
        assert_eq!(reports, fleet.reports(from..from + 600, 20, 5.0, 7));
    }

    #[test]
    fn device_ids_fit_a_topic_level() {
        assert_eq!(device_id("bus", "block 7/a+#"), "bus-block-7-a--");
        assert_eq!(device_id("veh", &"x".repeat(100)).len(), 64);
    }
}
