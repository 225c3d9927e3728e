//! Simulation of a Seoul-like city: a deterministic, seeded generator of
//! its GTFS feed, and [`riders`] who tap cards on its buses and subway.
//!
//! [`generate_city`] lays out a jittered road grid around Seoul City Hall,
//! runs Seoul-style bus routes on it — 간선 trunk (blue, `101`–`752`),
//! 지선 branch (green, `1711`), 순환 circular loops (yellow, `01`) and
//! 심야 night buses (`N13`, running past midnight as `25:10:00`) — and adds
//! subway lines in Seoul Metro's colours (Line 2 is a loop) that share
//! transfer stations where they cross. Timetables follow the time of day
//! (peak, midday, evening), the day type (weekday, Saturday, Sunday and
//! public holidays) and road speeds that drop in the rush hours.
//!
//! The same [`CityOptions`] always give byte-identical files; the generator
//! uses its own random streams so that this holds across dependency updates.
//! `route_desc` is exactly one of `trunk`, `branch`, `circular`, `night` or
//! `subway`, so consumers can tell the kinds apart.
//!
//! ```no_run
//! use cityos_sim::{CityOptions, CitySize, generate_city};
//!
//! let opts = CityOptions { size: CitySize::Medium, ..CityOptions::default() };
//! let summary = generate_city(&opts, std::path::Path::new("/tmp/seoul-gtfs"))?;
//! println!("{} stops, {} stop_times", summary.stops, summary.stop_times);
//! # Ok::<(), cityos_sim::GenerateError>(())
//! ```

mod date;
mod geo;
mod names;
mod network;
pub mod riders;
mod rng;
mod schedule;
pub mod vehicles;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use network::SizeParams;

/// How big a city to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CitySize {
    /// A ~5 km demo town: 20 bus routes, 2 subway lines, a thinner timetable
    /// (headways × 2.5) and about 45 000 stop_times, written in tens of
    /// milliseconds. Meant for demos and tests.
    #[default]
    Small,
    /// A ~16 km city: ~100 bus routes and 5 subway lines.
    Medium,
    /// Seoul-like: ~30 km across, ~350 bus routes and 9 subway lines.
    Large,
}

impl CitySize {
    /// Every size, smallest first.
    pub const ALL: [CitySize; 3] = [CitySize::Small, CitySize::Medium, CitySize::Large];

    /// The lowercase name that [`FromStr`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            CitySize::Small => "small",
            CitySize::Medium => "medium",
            CitySize::Large => "large",
        }
    }
}

impl fmt::Display for CitySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`CitySize`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown city size `{0}`: expected one of small, medium, large")]
pub struct ParseCitySizeError(pub String);

impl FromStr for CitySize {
    type Err = ParseCitySizeError;

    /// Parses `small`, `medium` or `large` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CitySize::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseCitySizeError(s.to_owned()))
    }
}

/// Options for [`generate_city`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityOptions {
    /// Same seed and options give byte-identical output.
    pub seed: u64,
    /// How big the city is.
    pub size: CitySize,
    /// If set, the number of trips is scaled so that stop_times.txt has about
    /// this many rows (within a few percent): the year is split into up to 52
    /// timetable periods with distinct trips, headways are tuned, and beyond
    /// that more bus routes are added. A target below one trip per direction
    /// and service is not reachable; the feed then has that minimum.
    pub stop_times_target: Option<u64>,
    /// First service date `(year, month, day)`; the calendar covers one year.
    pub start_date: (i32, u8, u8),
}

impl Default for CityOptions {
    /// Seed 42, [`CitySize::Small`], no target, starting 2026-01-01.
    fn default() -> Self {
        Self {
            seed: 42,
            size: CitySize::Small,
            stop_times_target: None,
            start_date: (2026, 1, 1),
        }
    }
}

/// The generated cities' time zone: Seoul's.
pub const TIMEZONE: &str = "Asia/Seoul";

impl CityOptions {
    /// The default city with its calendar starting yesterday in its time
    /// zone, for a city run live on the clock (the demo): its year of
    /// service covers today, and last night's buses still run after midnight.
    pub fn starting_yesterday() -> CityOptions {
        let today = jiff::Timestamp::now()
            .in_tz(TIMEZONE)
            .map_or_else(|_| jiff::Zoned::now().date(), |now| now.date());
        let day = today.yesterday().unwrap_or(today);
        CityOptions {
            start_date: (i32::from(day.year()), day.month() as u8, day.day() as u8),
            ..CityOptions::default()
        }
    }
}

/// The service days whose trips run on calendar day `date`, earliest
/// first: the day before (its night trips, timed past 24:00, run after
/// midnight) and the day itself.
pub fn service_days_running_on(date: jiff::civil::Date) -> impl Iterator<Item = jiff::civil::Date> {
    date.yesterday()
        .ok()
        .into_iter()
        .chain(std::iter::once(date))
}

/// What [`generate_city`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CitySummary {
    /// Rows of stops.txt (stations, platforms and bus stops).
    pub stops: usize,
    /// Rows of routes.txt.
    pub routes: usize,
    /// Rows of trips.txt.
    pub trips: usize,
    /// Rows of stop_times.txt.
    pub stop_times: u64,
    /// Distinct shapes in shapes.txt.
    pub shapes: usize,
}

/// Why [`generate_city`] failed.
#[derive(thiserror::Error, Debug)]
pub enum GenerateError {
    /// A file or the output directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `start_date` is not a real date with a four-digit year.
    #[error("invalid start date {year:04}-{month:02}-{day:02}")]
    InvalidStartDate {
        /// Year as given.
        year: i32,
        /// Month as given.
        month: u8,
        /// Day as given.
        day: u8,
    },
    /// `stop_times_target` was `Some(0)`.
    #[error("stop_times_target must be at least 1")]
    ZeroTarget,
}

/// At most this many timetable periods per year: one a week.
const MAX_PERIODS: u32 = 52;

/// Writes the GTFS feed as .txt files into `out_dir` (created if missing).
///
/// Files: agency, stops, routes, trips, stop_times, calendar,
/// calendar_dates, shapes, transfers and feed_info.
pub fn generate_city(opts: &CityOptions, out_dir: &Path) -> Result<CitySummary, GenerateError> {
    generate_city_with_progress(opts, out_dir, &mut |_, _| {})
}

/// [`generate_city`], reporting `(stop_times written, expected total)` to
/// `progress` as stop_times.txt is written (every 100 000 rows and at the end).
pub fn generate_city_with_progress(
    opts: &CityOptions,
    out_dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CitySummary, GenerateError> {
    let (y, m, d) = opts.start_date;
    if !date::is_valid(y, m, d) {
        return Err(GenerateError::InvalidStartDate {
            year: y,
            month: m,
            day: d,
        });
    }
    if opts.stop_times_target == Some(0) {
        return Err(GenerateError::ZeroTarget);
    }
    let start = date::days_from_civil(y, m, d);
    // One year later, less a day; 29 February rolls over to 1 March first.
    let end = date::days_from_civil(y + 1, m, d) - 1;
    let params = SizeParams::of(opts.size);
    let seed = opts.seed;

    let mut net = network::build(seed, &params, 1);
    let (periods, mult) = match opts.stop_times_target {
        None => (1, params.headway_scale),
        Some(target) => {
            let target = target as f64;
            let one_year = schedule::services(start, end, 1);
            let mut base =
                schedule::count_stop_times(seed, &net, &one_year, params.headway_scale) as f64;
            if target / base > f64::from(MAX_PERIODS) {
                // Weekly timetables are not enough: more routes. The margin
                // leaves room for the routes that are not multiplied.
                let route_mult = (target / base / (0.8 * f64::from(MAX_PERIODS))).ceil() as usize;
                net = network::build(seed, &params, route_mult);
                base =
                    schedule::count_stop_times(seed, &net, &one_year, params.headway_scale) as f64;
            }
            let periods = (target / base).round().clamp(1.0, f64::from(MAX_PERIODS)) as u32;
            let services = schedule::services(start, end, periods);
            // Rows are about inversely proportional to the headway multiplier,
            // so a few Newton-like steps land within half a percent.
            let mut mult = params.headway_scale;
            let mut best = (f64::INFINITY, mult);
            for _ in 0..12 {
                let rows = schedule::count_stop_times(seed, &net, &services, mult) as f64;
                let err = (rows - target) / target;
                if err.abs() < best.0 {
                    best = (err.abs(), mult);
                }
                if err.abs() < 0.005 {
                    break;
                }
                mult = (mult * rows / target).clamp(0.25, 256.0);
            }
            (periods, best.1)
        }
    };

    let services = schedule::services(start, end, periods);
    let exceptions = schedule::holiday_exceptions(&services);
    let trips = schedule::plan_trips(seed, &net, &services, mult);
    let mut version = format!("cityos-sim seed={seed} size={}", opts.size);
    if let Some(t) = opts.stop_times_target {
        version.push_str(&format!(" stop_times={t}"));
    }
    let meta = write::FeedMeta { version };
    let stop_times = write::write_feed(
        out_dir,
        &net,
        &services,
        &exceptions,
        &trips,
        &meta,
        progress,
    )?;
    Ok(CitySummary {
        stops: net.stops.len(),
        routes: net.routes.len(),
        trips: trips.len(),
        stop_times,
        shapes: net.patterns.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_display() {
        for s in CitySize::ALL {
            assert_eq!(s.to_string().parse::<CitySize>(), Ok(s));
        }
        assert_eq!(" Large ".parse::<CitySize>(), Ok(CitySize::Large));
        let err = "huge".parse::<CitySize>().unwrap_err().to_string();
        assert!(err.contains("small, medium, large"), "{err}");
    }
}
