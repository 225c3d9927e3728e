//! The GTFS loader: a feed (zip or folder) in, a [`NetworkData`] and a
//! [`Report`] of errors and warnings out.
//!
//! Follows the GTFS Schedule reference: times past 24:00, optional files and
//! columns, unknown files and columns (warned, ignored), BOM, CRLF and quoted
//! fields. Any error fails the load; warnings never do.

mod source;
mod table;

use std::fmt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::model::*;
use crate::time::{NO_TIME, parse_date, parse_time};
use source::FeedSource;
use table::{Table, parse_color, parse_enum, parse_f64, parse_u32};

/// Most issues of one kind kept in a report; the rest are only counted.
const MAX_ISSUES: usize = 200;

/// One problem found in a feed, located as precisely as the feed allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// The file, e.g. `stop_times.txt`.
    pub file: String,
    /// The 1-based line in that file, when the problem is on one line.
    pub line: Option<u64>,
    /// The column, when the problem is in one field.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Issue {
    pub(crate) fn at(file: &str, line: u64, field: Option<&str>, message: String) -> Issue {
        Issue {
            file: file.to_owned(),
            line: Some(line),
            field: field.map(str::to_owned),
            message,
        }
    }

    fn file(file: &str, message: String) -> Issue {
        Issue {
            file: file.to_owned(),
            line: None,
            field: None,
            message,
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field} ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Errors and warnings from loading a feed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Problems that make the feed unusable; any one fails the load.
    pub errors: Vec<Issue>,
    /// Problems the loader worked around.
    pub warnings: Vec<Issue>,
    /// Errors not kept in `errors` because there were too many.
    pub more_errors: u64,
    /// Warnings not kept in `warnings`.
    pub more_warnings: u64,
}

impl Report {
    pub(crate) fn error(&mut self, issue: Issue) {
        if self.errors.len() < MAX_ISSUES {
            self.errors.push(issue);
        } else {
            self.more_errors += 1;
        }
    }

    pub(crate) fn warning(&mut self, issue: Issue) {
        if self.warnings.len() < MAX_ISSUES {
            self.warnings.push(issue);
        } else {
            self.more_warnings += 1;
        }
    }

    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Total number of errors, kept or not.
    pub fn error_count(&self) -> u64 {
        self.errors.len() as u64 + self.more_errors
    }

    /// Total number of warnings, kept or not.
    pub fn warning_count(&self) -> u64 {
        self.warnings.len() as u64 + self.more_warnings
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        if self.more_errors > 0 {
            writeln!(f, "error: … and {} more errors", self.more_errors)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if self.more_warnings > 0 {
            writeln!(f, "warning: … and {} more warnings", self.more_warnings)?;
        }
        Ok(())
    }
}

/// Why a feed could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The feed's path could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The zip archive is damaged or not a zip.
    #[error("{path} is not a readable zip archive: {message}")]
    Zip {
        /// The archive.
        path: PathBuf,
        /// What the zip reader said.
        message: String,
    },
    /// The feed has errors; the report lists them and the warnings.
    #[error("the feed has {} error(s), first: {}", .0.error_count(), .0.errors.first().map(|e| e.to_string()).unwrap_or_default())]
    Invalid(Box<Report>),
}

/// How far a load has come, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The file being read.
    pub file: &'a str,
    /// Bytes of all files read so far.
    pub bytes_done: u64,
    /// Bytes of all files to read.
    pub bytes_total: u64,
}

/// Files this loader reads, in the order it reads them.
const FILES: &[&str] = &[
    "agency.txt",
    "stops.txt",
    "routes.txt",
    "calendar.txt",
    "calendar_dates.txt",
    "shapes.txt",
    "trips.txt",
    "stop_times.txt",
    "frequencies.txt",
    "transfers.txt",
    "feed_info.txt",
];

/// Files of the GTFS reference that cityos does not use (yet); present ones are not warned about.
const OTHER_SPEC_FILES: &[&str] = &[
    "fare_attributes.txt",
    "fare_rules.txt",
    "fare_media.txt",
    "fare_products.txt",
    "fare_leg_rules.txt",
    "fare_leg_join_rules.txt",
    "fare_transfer_rules.txt",
    "rider_categories.txt",
    "timeframes.txt",
    "areas.txt",
    "stop_areas.txt",
    "networks.txt",
    "route_networks.txt",
    "location_groups.txt",
    "location_group_stops.txt",
    "locations.geojson",
    "booking_rules.txt",
    "pathways.txt",
    "levels.txt",
    "translations.txt",
    "attributions.txt",
];

/// Loads the feed at `path` (a `.zip` or a folder), calling `progress` as it reads.
///
/// On success returns the network data and the warnings; on any error
/// returns [`LoadError::Invalid`] with the whole report.
pub fn load(
    path: &Path,
    progress: &dyn Fn(Progress<'_>),
) -> Result<(NetworkData, Report), LoadError> {
    let source = FeedSource::open(path)?;
    let mut loader = Loader {
        source: &source,
        report: Report::default(),
        data: NetworkData::default(),
        strings: FxHashMap::default(),
        bytes_done: 0,
        bytes_total: 0,
        progress,
    };
    loader.run()?;
    let Loader { report, data, .. } = loader;
    if report.has_errors() {
        return Err(LoadError::Invalid(Box::new(report)));
    }
    Ok((data, report))
}

struct Loader<'a, 'p> {
    source: &'a FeedSource,
    report: Report,
    data: NetworkData,
    strings: FxHashMap<String, u32>,
    bytes_done: u64,
    bytes_total: u64,
    progress: &'p dyn Fn(Progress<'_>),
}

/// Counts bytes as the CSV reader pulls them, to drive the progress bar.
struct Counting<'p, R> {
    inner: R,
    file: &'static str,
    done: u64,
    total: u64,
    since_report: u64,
    progress: &'p dyn Fn(Progress<'_>),
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.since_report += n as u64;
        if self.since_report >= 1 << 20 {
            self.since_report = 0;
            (self.progress)(Progress {
                file: self.file,
                bytes_done: self.done,
                bytes_total: self.total,
            });
        }
        Ok(n)
    }
}

impl<'a, 'p> Loader<'a, 'p> {
    fn run(&mut self) -> Result<(), LoadError> {
        let names = self.source.file_names();
        for name in &names {
            if (name.ends_with(".txt") || name.ends_with(".geojson"))
                && !FILES.contains(&name.as_str())
                && !OTHER_SPEC_FILES.contains(&name.as_str())
            {
                self.report
                    .warning(Issue::file(name, "is not a GTFS file, ignored".to_owned()));
            }
        }
        self.bytes_total = FILES
            .iter()
            .filter(|f| names.iter().any(|n| n == *f))
            .map(|f| self.size_of(f))
            .sum();

        self.agencies()?;
        self.stops()?;
        self.routes()?;
        self.calendar()?;
        self.calendar_dates()?;
        if self.data.services.is_empty() && !self.report.has_errors() {
            self.report.error(Issue::file(
                "calendar.txt",
                "neither calendar.txt nor calendar_dates.txt defines any service".to_owned(),
            ));
        }
        self.shapes()?;
        self.trips()?;
        self.stop_times()?;
        self.frequencies()?;
        self.transfers()?;
        self.feed_info()?;
        self.data.strings = {
            let mut strings = vec![String::new(); self.strings.len()];
            for (s, i) in self.strings.drain() {
                strings[i as usize] = s;
            }
            strings
        };
        Ok(())
    }

    fn size_of(&self, name: &str) -> u64 {
        match self.source {
            FeedSource::Zip { entries, .. } => {
                entries.iter().find(|e| e.0 == name).map_or(0, |e| e.2)
            }
            FeedSource::Dir { path } => std::fs::metadata(path.join(name)).map_or(0, |m| m.len()),
        }
    }

    /// Opens `file` as a table; `None` if absent (an error when `required`).
    fn table(
        &mut self,
        file: &'static str,
        known: &[&str],
        required: bool,
    ) -> Result<Option<Table<'p>>, LoadError> {
        let Some((reader, size)) = self.source.open_file(file)? else {
            if required {
                self.report.error(Issue::file(
                    file,
                    "is required but missing from the feed".to_owned(),
                ));
            }
            return Ok(None);
        };
        let counting = Counting {
            inner: reader,
            file,
            done: self.bytes_done,
            total: self.bytes_total,
            since_report: 0,
            progress: self.progress,
        };
        self.bytes_done += size;
        Ok(Table::new(
            file,
            Box::new(counting),
            known,
            &mut self.report,
        ))
    }

    fn intern(&mut self, text: &str) -> u32 {
        if text.is_empty() {
            return NONE;
        }
        if let Some(&i) = self.strings.get(text) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.insert(text.to_owned(), i);
        i
    }

    fn agencies(&mut self) -> Result<(), LoadError> {
        let known = [
            "agency_id",
            "agency_name",
            "agency_url",
            "agency_timezone",
            "agency_lang",
            "agency_phone",
            "agency_fare_url",
            "agency_email",
            "cemv_support",
        ];
        let Some(mut t) = self.table("agency.txt", &known, true)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let (id, name, url, tz) = (
            t.column("agency_id"),
            t.required("agency_name", r),
            t.required("agency_url", r),
            t.required("agency_timezone", r),
        );
        let (lang, phone) = (t.column("agency_lang"), t.column("agency_phone"));
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let agency = Agency {
                id: t.string(id, r),
                name: t
                    .required_text(name, "agency_name", r)
                    .unwrap_or("")
                    .to_owned(),
                url: t.string(url, r),
                timezone: t
                    .required_text(tz, "agency_timezone", r)
                    .unwrap_or("")
                    .to_owned(),
                lang: Some(t.string(lang, r)).filter(|s| !s.is_empty()),
                phone: Some(t.string(phone, r)).filter(|s| !s.is_empty()),
            };
            if !agency.timezone.is_empty() && jiff::tz::TimeZone::get(&agency.timezone).is_err() {
                r.error(t.issue(
                    "agency_timezone",
                    format!("'{}' is not an IANA time zone", agency.timezone),
                ));
            }
            if let Some(first) = self.data.agencies.first()
                && first.timezone != agency.timezone
            {
                r.error(t.issue(
                    "agency_timezone",
                    "all agencies of a feed must share one time zone".to_owned(),
                ));
            }
            if self.data.agency_ids.insert(&agency.id).is_err() {
                r.error(t.issue("agency_id", format!("duplicate agency_id '{}'", agency.id)));
                continue;
            }
            self.data.agencies.push(agency);
        }
        if self.data.agencies.is_empty() {
            self.report
                .error(Issue::file("agency.txt", "has no agencies".to_owned()));
        }
        if self.data.agencies.len() > 1 && self.data.agencies.iter().any(|a| a.id.is_empty()) {
            self.report.error(Issue::file(
                "agency.txt",
                "agency_id is required when the feed has more than one agency".to_owned(),
            ));
        }
        Ok(())
    }

    fn stops(&mut self) -> Result<(), LoadError> {
        let known = [
            "stop_id",
            "stop_code",
            "stop_name",
            "tts_stop_name",
            "stop_desc",
            "stop_lat",
            "stop_lon",
            "zone_id",
            "stop_url",
            "location_type",
            "parent_station",
            "stop_timezone",
            "wheelchair_boarding",
            "level_id",
            "platform_code",
            "stop_access",
        ];
        let Some(mut t) = self.table("stops.txt", &known, true)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let id = t.required("stop_id", r);
        let (code, name, lat, lon) = (
            t.column("stop_code"),
            t.column("stop_name"),
            t.column("stop_lat"),
            t.column("stop_lon"),
        );
        let (loc, parent, wheelchair, platform) = (
            t.column("location_type"),
            t.column("parent_station"),
            t.column("wheelchair_boarding"),
            t.column("platform_code"),
        );
        let mut parents: Vec<(u32, String, u64)> = Vec::new();
        let stops = &mut self.data.stops;
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let Some(stop_id) = t.required_text(id, "stop_id", r) else {
                continue;
            };
            let index = match stops.ids.insert(stop_id) {
                Ok(i) => i,
                Err(_) => {
                    r.error(t.issue("stop_id", format!("duplicate stop_id '{stop_id}'")));
                    continue;
                }
            };
            let location_type = t
                .parse(loc, "location_type", "0–4", r, parse_enum(4))
                .unwrap_or(0);
            let stop_lat = t.parse(lat, "stop_lat", "a latitude", r, |b| {
                parse_f64(b).filter(|v| (-90.0..=90.0).contains(v))
            });
            let stop_lon = t.parse(lon, "stop_lon", "a longitude", r, |b| {
                parse_f64(b).filter(|v| (-180.0..=180.0).contains(v))
            });
            let stop_name = t.string(name, r);
            // Generic nodes and boarding areas may omit name and position; the rest may not.
            if location_type <= 2 {
                if stop_name.is_empty() {
                    r.error(t.issue("stop_name", "is required for this location_type".to_owned()));
                }
                if stop_lat.is_none() || stop_lon.is_none() {
                    r.error(t.issue(
                        "stop_lat",
                        "stop_lat and stop_lon are required for this location_type".to_owned(),
                    ));
                }
            }
            let parent_id = t.string(parent, r);
            if !parent_id.is_empty() {
                if location_type == 1 {
                    r.error(t.issue(
                        "parent_station",
                        "a station cannot have a parent".to_owned(),
                    ));
                } else {
                    parents.push((index, parent_id, t.line));
                }
            } else if location_type >= 2 {
                r.error(t.issue(
                    "parent_station",
                    "is required for this location_type".to_owned(),
                ));
            }
            stops.codes.push(t.string(code, r));
            stops.names.push(stop_name);
            stops.lat.push(stop_lat.unwrap_or(f64::NAN));
            stops.lon.push(stop_lon.unwrap_or(f64::NAN));
            stops.location_type.push(location_type);
            stops.parent.push(NONE);
            stops.wheelchair.push(
                t.parse(wheelchair, "wheelchair_boarding", "0–2", r, parse_enum(2))
                    .unwrap_or(0),
            );
            stops.platform_codes.push(t.string(platform, r));
        }
        for (child, parent_id, line) in parents {
            match stops.ids.get(&parent_id) {
                Some(p) => stops.parent[child as usize] = p,
                None => self.report.error(Issue::at(
                    "stops.txt",
                    line,
                    Some("parent_station"),
                    format!("'{parent_id}' is not a stop_id in stops.txt"),
                )),
            }
        }
        Ok(())
    }

    fn routes(&mut self) -> Result<(), LoadError> {
        let known = [
            "route_id",
            "agency_id",
            "route_short_name",
            "route_long_name",
            "route_desc",
            "route_type",
            "route_url",
            "route_color",
            "route_text_color",
            "route_sort_order",
            "continuous_pickup",
            "continuous_drop_off",
            "network_id",
            "cemv_support",
        ];
        let Some(mut t) = self.table("routes.txt", &known, true)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let id = t.required("route_id", r);
        let route_type = t.required("route_type", r);
        let (agency, short, long, desc) = (
            t.column("agency_id"),
            t.column("route_short_name"),
            t.column("route_long_name"),
            t.column("route_desc"),
        );
        let (color, text_color, sort) = (
            t.column("route_color"),
            t.column("route_text_color"),
            t.column("route_sort_order"),
        );
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let Some(route_id) = t.required_text(id, "route_id", r) else {
                continue;
            };
            let agency_id = t.text(agency, r).unwrap_or("");
            let agency = match (
                self.data.agency_ids.get(agency_id),
                self.data.agencies.len(),
            ) {
                (Some(a), _) => a,
                // One agency: agency_id may be omitted (or not match an omitted id).
                (None, 1) if agency_id.is_empty() || self.data.agencies[0].id.is_empty() => 0,
                _ => {
                    r.error(t.issue(
                        "agency_id",
                        format!("'{agency_id}' is not an agency_id in agency.txt"),
                    ));
                    continue;
                }
            };
            let short_name = t.string(short, r);
            let long_name = t.string(long, r);
            if short_name.is_empty() && long_name.is_empty() {
                r.error(t.issue(
                    "route_short_name",
                    "route_short_name or route_long_name is required".to_owned(),
                ));
            }
            let Some(kind) = t.parse(route_type, "route_type", "a GTFS route type", r, |b| {
                parse_u32(b).filter(|&v| v <= 1702).map(|v| v as u16)
            }) else {
                if t.bytes(route_type).is_empty() {
                    r.error(t.issue("route_type", "is required but empty".to_owned()));
                }
                continue;
            };
            let route_color = t.parse(color, "route_color", "a RRGGBB colour", r, parse_color);
            let route_text_color = t.parse(
                text_color,
                "route_text_color",
                "a RRGGBB colour",
                r,
                parse_color,
            );
            let sort_order = t.parse(
                sort,
                "route_sort_order",
                "a non-negative integer",
                r,
                parse_u32,
            );
            if self.data.route_ids.insert(route_id).is_err() {
                r.error(t.issue("route_id", format!("duplicate route_id '{route_id}'")));
                continue;
            }
            let route_desc = t.string(desc, r);
            self.data.routes.push(Route {
                agency,
                short_name,
                long_name,
                desc: Some(route_desc).filter(|s| !s.is_empty()),
                route_type: kind,
                color: route_color,
                text_color: route_text_color,
                sort_order,
            });
        }
        Ok(())
    }

    fn calendar(&mut self) -> Result<(), LoadError> {
        const DAYS: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let known = [DAYS.as_slice(), &["service_id", "start_date", "end_date"]].concat();
        let Some(mut t) = self.table("calendar.txt", &known, false)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let id = t.required("service_id", r);
        let days: Vec<Option<usize>> = DAYS.iter().map(|d| t.required(d, r)).collect();
        let (start, end) = (t.required("start_date", r), t.required("end_date", r));
        let services = &mut self.data.services;
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let Some(service_id) = t.required_text(id, "service_id", r) else {
                continue;
            };
            let mut weekdays = 0u8;
            for (bit, (col, name)) in days.iter().zip(DAYS).enumerate() {
                if t.parse(*col, name, "0 or 1", r, parse_enum(1)) == Some(1) {
                    weekdays |= 1 << bit;
                }
            }
            let start_date = t.parse(start, "start_date", "a YYYYMMDD date", r, parse_date);
            let end_date = t.parse(end, "end_date", "a YYYYMMDD date", r, parse_date);
            if let (Some(s), Some(e)) = (start_date, end_date)
                && e < s
            {
                r.error(t.issue("end_date", "is before start_date".to_owned()));
            }
            if services.ids.insert(service_id).is_err() {
                r.error(t.issue("service_id", format!("duplicate service_id '{service_id}'")));
                continue;
            }
            services.weekdays.push(weekdays);
            services.start.push(start_date);
            services.end.push(end_date);
        }
        Ok(())
    }

    fn calendar_dates(&mut self) -> Result<(), LoadError> {
        let known = ["service_id", "date", "exception_type"];
        let Some(mut t) = self.table("calendar_dates.txt", &known, false)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let (id, date, kind) = (
            t.required("service_id", r),
            t.required("date", r),
            t.required("exception_type", r),
        );
        let services = &mut self.data.services;
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let Some(service_id) = t.required_text(id, "service_id", r) else {
                continue;
            };
            let day = t.parse(date, "date", "a YYYYMMDD date", r, parse_date);
            let exception = t.parse(kind, "exception_type", "1 or 2", r, |b| {
                parse_u32(b).filter(|v| *v == 1 || *v == 2)
            });
            let (Some(day), Some(exception)) = (day, exception) else {
                continue;
            };
            // A service defined only by its dates has no weekly pattern.
            let service = services
                .ids
                .insert(service_id)
                .unwrap_or_else(|existing| existing);
            if service as usize == services.weekdays.len() {
                services.weekdays.push(0);
                services.start.push(None);
                services.end.push(None);
            }
            services.exceptions.push((service, day, exception == 1));
        }
        let exceptions = &mut services.exceptions;
        exceptions.sort_by_key(|&(s, d, _)| (s, d));
        let before = exceptions.len();
        exceptions.dedup_by_key(|e| (e.0, e.1));
        if exceptions.len() < before {
            self.report.error(Issue::file(
                "calendar_dates.txt",
                format!(
                    "{} duplicate (service_id, date) rows",
                    before - exceptions.len()
                ),
            ));
        }
        Ok(())
    }

    fn shapes(&mut self) -> Result<(), LoadError> {
        let known = [
            "shape_id",
            "shape_pt_lat",
            "shape_pt_lon",
            "shape_pt_sequence",
            "shape_dist_traveled",
        ];
        let Some(mut t) = self.table("shapes.txt", &known, false)? else {
            self.data.shapes.start.push(0);
            return Ok(());
        };
        let r = &mut self.report;
        let (id, lat, lon, seq, dist) = (
            t.required("shape_id", r),
            t.required("shape_pt_lat", r),
            t.required("shape_pt_lon", r),
            t.required("shape_pt_sequence", r),
            t.column("shape_dist_traveled"),
        );
        // (shape, sequence, lat, lon, dist): collected, then ordered by shape and sequence.
        let mut points: Vec<(u32, u32, f64, f64, f32)> = Vec::new();
        let shapes = &mut self.data.shapes;
        let mut last: Option<(Vec<u8>, u32)> = None;
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let raw = t.bytes(id);
            let shape = match &last {
                Some((bytes, index)) if bytes.as_slice() == raw => *index,
                _ => {
                    let Some(shape_id) = t.required_text(id, "shape_id", r) else {
                        continue;
                    };
                    let index = shapes.ids.insert(shape_id).unwrap_or_else(|e| e);
                    last = Some((raw.to_vec(), index));
                    index
                }
            };
            let pt_lat = t.parse(lat, "shape_pt_lat", "a latitude", r, |b| {
                parse_f64(b).filter(|v| (-90.0..=90.0).contains(v))
            });
            let pt_lon = t.parse(lon, "shape_pt_lon", "a longitude", r, |b| {
                parse_f64(b).filter(|v| (-180.0..=180.0).contains(v))
            });
            let sequence = t.parse(
                seq,
                "shape_pt_sequence",
                "a non-negative integer",
                r,
                parse_u32,
            );
            let distance = t
                .parse(
                    dist,
                    "shape_dist_traveled",
                    "a non-negative number",
                    r,
                    |b| parse_f64(b).filter(|v| *v >= 0.0),
                )
                .map_or(f32::NAN, |d| d as f32);
            match (pt_lat, pt_lon, sequence) {
                (Some(la), Some(lo), Some(s)) => points.push((shape, s, la, lo, distance)),
                _ => {
                    if t.bytes(lat).is_empty() || t.bytes(lon).is_empty() || t.bytes(seq).is_empty()
                    {
                        r.error(
                            t.issue(
                                "shape_id",
                                "shape_pt_lat, shape_pt_lon and shape_pt_sequence are required"
                                    .to_owned(),
                            ),
                        );
                    }
                }
            }
        }
        if !points.is_sorted_by_key(|p| (p.0, p.1)) {
            points.sort_by_key(|p| (p.0, p.1));
        }
        shapes.start = Vec::with_capacity(shapes.ids.len() + 1);
        shapes.lat.reserve_exact(points.len());
        shapes.lon.reserve_exact(points.len());
        shapes.dist.reserve_exact(points.len());
        let mut previous: Option<(u32, u32)> = None;
        for (shape, seq, la, lo, d) in points {
            while shapes.start.len() <= shape as usize {
                shapes.start.push(shapes.lat.len() as u32);
            }
            if previous == Some((shape, seq)) {
                self.report.error(Issue::file(
                    "shapes.txt",
                    format!(
                        "shape '{}' repeats shape_pt_sequence {seq}",
                        shapes.ids.id(shape)
                    ),
                ));
            }
            previous = Some((shape, seq));
            shapes.lat.push(la);
            shapes.lon.push(lo);
            shapes.dist.push(d);
        }
        while shapes.start.len() <= shapes.ids.len() {
            shapes.start.push(shapes.lat.len() as u32);
        }
        Ok(())
    }

    fn trips(&mut self) -> Result<(), LoadError> {
        let known = [
            "route_id",
            "service_id",
            "trip_id",
            "trip_headsign",
            "trip_short_name",
            "direction_id",
            "block_id",
            "shape_id",
            "wheelchair_accessible",
            "bikes_allowed",
            "cars_allowed",
            "safe_duration_factor",
            "safe_duration_offset",
        ];
        let Some(mut t) = self.table("trips.txt", &known, true)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let (route, service, id) = (
            t.required("route_id", r),
            t.required("service_id", r),
            t.required("trip_id", r),
        );
        let (headsign, short, direction, block, shape, wheelchair, bikes) = (
            t.column("trip_headsign"),
            t.column("trip_short_name"),
            t.column("direction_id"),
            t.column("block_id"),
            t.column("shape_id"),
            t.column("wheelchair_accessible"),
            t.column("bikes_allowed"),
        );
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let Some(trip_id) = t.required_text(id, "trip_id", r) else {
                continue;
            };
            let Some(route_id) = t.required_text(route, "route_id", r) else {
                continue;
            };
            let Some(route_index) = self.data.route_ids.get(route_id) else {
                r.error(t.issue(
                    "route_id",
                    format!("'{route_id}' is not a route_id in routes.txt"),
                ));
                continue;
            };
            let Some(service_id) = t.required_text(service, "service_id", r) else {
                continue;
            };
            let Some(service_index) = self.data.services.ids.get(service_id) else {
                r.error(t.issue(
                    "service_id",
                    format!(
                        "'{service_id}' is not a service_id in calendar.txt or calendar_dates.txt"
                    ),
                ));
                continue;
            };
            let shape_id = t.text(shape, r).unwrap_or("");
            let shape_index = if shape_id.is_empty() {
                NONE
            } else if let Some(s) = self.data.shapes.ids.get(shape_id) {
                s
            } else {
                r.error(t.issue(
                    "shape_id",
                    format!("'{shape_id}' is not a shape_id in shapes.txt"),
                ));
                continue;
            };
            let dir = t
                .parse(direction, "direction_id", "0 or 1", r, parse_enum(1))
                .unwrap_or(2);
            let wheel = t
                .parse(wheelchair, "wheelchair_accessible", "0–2", r, parse_enum(2))
                .unwrap_or(0);
            let bike = t
                .parse(bikes, "bikes_allowed", "0–2", r, parse_enum(2))
                .unwrap_or(0);
            if self.data.trips.ids.insert(trip_id).is_err() {
                r.error(t.issue("trip_id", format!("duplicate trip_id '{trip_id}'")));
                continue;
            }
            let headsign_text = t.string(headsign, r);
            let block_text = t.string(block, r);
            let short_text = t.string(short, r);
            let (h, b, s) = (
                self.intern(&headsign_text),
                self.intern(&block_text),
                self.intern(&short_text),
            );
            let trips = &mut self.data.trips;
            trips.route.push(route_index);
            trips.service.push(service_index);
            trips.shape.push(shape_index);
            trips.headsign.push(h);
            trips.direction.push(dir);
            trips.block.push(b);
            trips.short_name.push(s);
            trips.wheelchair.push(wheel);
            trips.bikes.push(bike);
        }
        Ok(())
    }

    fn stop_times(&mut self) -> Result<(), LoadError> {
        let known = [
            "trip_id",
            "arrival_time",
            "departure_time",
            "stop_id",
            "location_group_id",
            "location_id",
            "stop_sequence",
            "stop_headsign",
            "start_pickup_drop_off_window",
            "end_pickup_drop_off_window",
            "pickup_type",
            "drop_off_type",
            "continuous_pickup",
            "continuous_drop_off",
            "shape_dist_traveled",
            "timepoint",
            "pickup_booking_rule_id",
            "drop_off_booking_rule_id",
        ];
        let trip_count = self.data.trips.len();
        let Some(mut t) = self.table("stop_times.txt", &known, true)? else {
            self.data.trips.stop_times_start = vec![0; trip_count + 1];
            return Ok(());
        };
        let r = &mut self.report;
        let (trip, arrival, departure, stop, seq) = (
            t.required("trip_id", r),
            t.column("arrival_time"),
            t.column("departure_time"),
            t.required("stop_id", r),
            t.required("stop_sequence", r),
        );
        let (headsign, pickup, drop_off, dist, timepoint) = (
            t.column("stop_headsign"),
            t.column("pickup_type"),
            t.column("drop_off_type"),
            t.column("shape_dist_traveled"),
            t.column("timepoint"),
        );
        let hint = (self.size_of("stop_times.txt") / 48) as usize;
        let mut rows = StopTimes::default();
        let mut row_trip: Vec<u32> = Vec::with_capacity(hint);
        rows.stop.reserve(hint);
        rows.arrival.reserve(hint);
        rows.departure.reserve(hint);
        rows.sequence.reserve(hint);
        rows.shape_dist.reserve(hint);
        rows.flags.reserve(hint);
        let mut headsigns: Vec<(u32, String)> = Vec::new();
        let mut last_trip: (Vec<u8>, u32) = (Vec::new(), NONE);
        let mut last_stop: (Vec<u8>, u32) = (Vec::new(), NONE);
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            // Rows come grouped by trip and often repeat stops; cache the last lookups.
            let Some(trip_index) = lookup_repeated(
                &t,
                trip,
                ("trip_id", "trips.txt"),
                &self.data.trips.ids,
                &mut last_trip,
                r,
            ) else {
                continue;
            };
            let Some(stop_index) = lookup_repeated(
                &t,
                stop,
                ("stop_id", "stops.txt"),
                &self.data.stops.ids,
                &mut last_stop,
                r,
            ) else {
                continue;
            };
            if self.data.stops.location_type[stop_index as usize] != 0 {
                r.error(t.issue(
                    "stop_id",
                    format!(
                        "'{}' is a station or other location; stop times must use stops or platforms",
                        self.data.stops.ids.id(stop_index)
                    ),
                ));
            }
            let Some(sequence) =
                t.parse(seq, "stop_sequence", "a non-negative integer", r, parse_u32)
            else {
                if t.bytes(seq).is_empty() {
                    r.error(t.issue("stop_sequence", "is required but empty".to_owned()));
                }
                continue;
            };
            let mut arr = t.parse(arrival, "arrival_time", "HH:MM:SS", r, parse_time);
            let mut dep = t.parse(departure, "departure_time", "HH:MM:SS", r, parse_time);
            // One of the two given means both (the spec allows omitting one when they are equal).
            if arr.is_none() {
                arr = dep;
            }
            if dep.is_none() {
                dep = arr;
            }
            if let (Some(a), Some(d)) = (arr, dep)
                && d < a
            {
                r.error(t.issue("departure_time", "is before arrival_time".to_owned()));
            }
            let pick = t
                .parse(pickup, "pickup_type", "0–3", r, parse_enum(3))
                .unwrap_or(0);
            let drop = t
                .parse(drop_off, "drop_off_type", "0–3", r, parse_enum(3))
                .unwrap_or(0);
            let tp = t.parse(timepoint, "timepoint", "0 or 1", r, parse_enum(1));
            let distance = t
                .parse(
                    dist,
                    "shape_dist_traveled",
                    "a non-negative number",
                    r,
                    |b| parse_f64(b).filter(|v| *v >= 0.0),
                )
                .map_or(f32::NAN, |d| d as f32);
            let mut f = pick | (drop << flags::DROP_OFF_SHIFT);
            if tp.unwrap_or(u8::from(arr.is_some())) == 1 {
                f |= flags::TIMEPOINT;
            }
            if tp == Some(1) && arr.is_none() {
                r.error(t.issue("arrival_time", "is required at a timepoint".to_owned()));
            }
            if headsign.is_some() {
                let text = t.string(headsign, r);
                if !text.is_empty() {
                    headsigns.push((rows.stop.len() as u32, text));
                }
            }
            row_trip.push(trip_index);
            rows.stop.push(stop_index);
            rows.arrival.push(arr.unwrap_or(NO_TIME));
            rows.departure.push(dep.unwrap_or(NO_TIME));
            rows.sequence.push(sequence);
            rows.shape_dist.push(distance);
            rows.flags.push(f);
        }
        let headsigns: Vec<(u32, u32)> = headsigns
            .into_iter()
            .map(|(row, text)| (row, self.intern(&text)))
            .collect();
        rows.headsigns = headsigns;
        let (stop_times, start) = group_by_trip(rows, &row_trip, trip_count);
        self.data.stop_times = stop_times;
        self.data.trips.stop_times_start = start;
        self.check_trips();
        Ok(())
    }

    /// Checks each trip's stop times and fills in interpolated times.
    fn check_trips(&mut self) {
        let data = &mut self.data;
        let st = &mut data.stop_times;
        for trip in 0..data.trips.len() as u32 {
            let range = data.trips.stop_time_range(trip);
            let trip_id = data.trips.ids.id(trip);
            if range.is_empty() {
                self.report.warning(Issue::file(
                    "trips.txt",
                    format!("trip '{trip_id}' has no stop times"),
                ));
                continue;
            }
            let (first, last) = (range.start, range.end - 1);
            if range.len() < 2 {
                self.report.error(Issue::file(
                    "stop_times.txt",
                    format!("trip '{trip_id}' has fewer than two stop times"),
                ));
            }
            if st.arrival[first] == NO_TIME || st.arrival[last] == NO_TIME {
                self.report.error(Issue::file(
                    "stop_times.txt",
                    format!("trip '{trip_id}' must have times at its first and last stop"),
                ));
                continue;
            }
            let mut previous_time = 0;
            for i in range.clone() {
                if i > first && st.sequence[i] == st.sequence[i - 1] {
                    self.report.error(Issue::file(
                        "stop_times.txt",
                        format!("trip '{trip_id}' repeats stop_sequence {}", st.sequence[i]),
                    ));
                }
                if st.arrival[i] != NO_TIME {
                    if st.arrival[i] < previous_time {
                        self.report.error(Issue::file(
                            "stop_times.txt",
                            format!(
                                "trip '{trip_id}' goes back in time at stop_sequence {}",
                                st.sequence[i]
                            ),
                        ));
                    }
                    previous_time = st.departure[i];
                }
            }
            interpolate(st, range);
        }
    }

    fn frequencies(&mut self) -> Result<(), LoadError> {
        let known = [
            "trip_id",
            "start_time",
            "end_time",
            "headway_secs",
            "exact_times",
        ];
        let Some(mut t) = self.table("frequencies.txt", &known, false)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let (trip, start, end, headway, exact) = (
            t.required("trip_id", r),
            t.required("start_time", r),
            t.required("end_time", r),
            t.required("headway_secs", r),
            t.column("exact_times"),
        );
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let Some(trip_id) = t.required_text(trip, "trip_id", r) else {
                continue;
            };
            let Some(trip_index) = self.data.trips.ids.get(trip_id) else {
                r.error(t.issue(
                    "trip_id",
                    format!("'{trip_id}' is not a trip_id in trips.txt"),
                ));
                continue;
            };
            let s = t.parse(start, "start_time", "HH:MM:SS", r, parse_time);
            let e = t.parse(end, "end_time", "HH:MM:SS", r, parse_time);
            let h = t.parse(headway, "headway_secs", "a positive integer", r, |b| {
                parse_u32(b).filter(|v| *v > 0)
            });
            let x = t
                .parse(exact, "exact_times", "0 or 1", r, parse_enum(1))
                .unwrap_or(0);
            let (Some(s), Some(e), Some(h)) = (s, e, h) else {
                r.error(t.issue(
                    "start_time",
                    "start_time, end_time and headway_secs are required".to_owned(),
                ));
                continue;
            };
            if e <= s {
                r.error(t.issue("end_time", "must be after start_time".to_owned()));
                continue;
            }
            self.data.frequencies.push(Frequency {
                trip: trip_index,
                start: s,
                end: e,
                headway: h,
                exact_times: x == 1,
            });
        }
        Ok(())
    }

    fn transfers(&mut self) -> Result<(), LoadError> {
        let known = [
            "from_stop_id",
            "to_stop_id",
            "from_route_id",
            "to_route_id",
            "from_trip_id",
            "to_trip_id",
            "transfer_type",
            "min_transfer_time",
        ];
        let Some(mut t) = self.table("transfers.txt", &known, false)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let kind = t.required("transfer_type", r);
        let columns = [
            ("from_stop_id", t.column("from_stop_id")),
            ("to_stop_id", t.column("to_stop_id")),
            ("from_route_id", t.column("from_route_id")),
            ("to_route_id", t.column("to_route_id")),
            ("from_trip_id", t.column("from_trip_id")),
            ("to_trip_id", t.column("to_trip_id")),
        ];
        let min = t.column("min_transfer_time");
        while t.next_row(&mut self.report) {
            let r = &mut self.report;
            let mut refs = [NONE; 6];
            let mut ok = true;
            for (slot, (name, col)) in refs.iter_mut().zip(columns) {
                let text = t.text(col, r).unwrap_or("");
                if text.is_empty() {
                    continue;
                }
                let (table, file) = match &name[name.len() - 7..] {
                    "stop_id" => (&self.data.stops.ids, "stops.txt"),
                    "oute_id" => (&self.data.route_ids, "routes.txt"),
                    _ => (&self.data.trips.ids, "trips.txt"),
                };
                match table.get(text) {
                    Some(i) => *slot = i,
                    None => {
                        r.error(t.issue(name, format!("'{text}' is not in {file}")));
                        ok = false;
                    }
                }
            }
            let transfer_type = t
                .parse(kind, "transfer_type", "0–5", r, parse_enum(5))
                .unwrap_or(0);
            let min_time = t.parse(
                min,
                "min_transfer_time",
                "a non-negative integer",
                r,
                parse_u32,
            );
            if transfer_type <= 3 && (refs[0] == NONE || refs[1] == NONE) {
                r.error(t.issue(
                    "from_stop_id",
                    "from_stop_id and to_stop_id are required for this transfer_type".to_owned(),
                ));
                ok = false;
            }
            if ok {
                self.data.transfers.push(Transfer {
                    from_stop: refs[0],
                    to_stop: refs[1],
                    from_route: refs[2],
                    to_route: refs[3],
                    from_trip: refs[4],
                    to_trip: refs[5],
                    transfer_type,
                    min_transfer_time: min_time,
                });
            }
        }
        Ok(())
    }

    fn feed_info(&mut self) -> Result<(), LoadError> {
        let known = [
            "feed_publisher_name",
            "feed_publisher_url",
            "feed_lang",
            "default_lang",
            "feed_start_date",
            "feed_end_date",
            "feed_version",
            "feed_contact_email",
            "feed_contact_url",
        ];
        let Some(mut t) = self.table("feed_info.txt", &known, false)? else {
            return Ok(());
        };
        let r = &mut self.report;
        let (name, url, lang) = (
            t.required("feed_publisher_name", r),
            t.required("feed_publisher_url", r),
            t.required("feed_lang", r),
        );
        let (start, end, version) = (
            t.column("feed_start_date"),
            t.column("feed_end_date"),
            t.column("feed_version"),
        );
        if t.next_row(&mut self.report) {
            let r = &mut self.report;
            let info = FeedInfo {
                publisher_name: t.string(name, r),
                publisher_url: t.string(url, r),
                lang: t.string(lang, r),
                start_date: t.parse(start, "feed_start_date", "a YYYYMMDD date", r, parse_date),
                end_date: t.parse(end, "feed_end_date", "a YYYYMMDD date", r, parse_date),
                version: Some(t.string(version, r)).filter(|s| !s.is_empty()),
            };
            self.data.feed_info = Some(info);
        }
        Ok(())
    }
}

/// Resolves the id in `column` through `ids`, reporting a missing or unknown
/// one. Rows come grouped by trip and often repeat stops, so the previous
/// row's answer is reused when the bytes repeat.
fn lookup_repeated(
    t: &Table<'_>,
    column: Option<usize>,
    (field, file): (&str, &str),
    ids: &IdTable,
    last: &mut (Vec<u8>, u32),
    r: &mut Report,
) -> Option<u32> {
    let bytes = t.bytes(column);
    if last.1 != NONE && last.0 == bytes {
        return Some(last.1);
    }
    let id = t.required_text(column, field, r)?;
    let Some(index) = ids.get(id) else {
        r.error(t.issue(field, format!("'{id}' is not a {field} in {file}")));
        return None;
    };
    // Reuse the buffer: this runs once per row of the biggest file.
    last.0.clear();
    last.0.extend_from_slice(bytes);
    last.1 = index;
    Some(index)
}

/// Reorders stop-time rows so each trip's rows are contiguous (in trip
/// order) and sorted by `stop_sequence`; returns the rows and the per-trip starts.
fn group_by_trip(rows: StopTimes, row_trip: &[u32], trip_count: usize) -> (StopTimes, Vec<u32>) {
    let mut start = vec![0u32; trip_count + 1];
    for &t in row_trip {
        start[t as usize + 1] += 1;
    }
    for i in 0..trip_count {
        start[i + 1] += start[i];
    }
    let grouped = row_trip.is_sorted();
    let mut order: Vec<u32> = if grouped {
        (0..row_trip.len() as u32).collect()
    } else {
        let mut next = start.clone();
        let mut order = vec![0u32; row_trip.len()];
        for (row, &t) in row_trip.iter().enumerate() {
            order[next[t as usize] as usize] = row as u32;
            next[t as usize] += 1;
        }
        order
    };
    let mut sorted = true;
    for trip in 0..trip_count {
        let slice = &mut order[start[trip] as usize..start[trip + 1] as usize];
        if !slice.is_sorted_by_key(|&r| rows.sequence[r as usize]) {
            slice.sort_by_key(|&r| rows.sequence[r as usize]);
            sorted = false;
        }
    }
    if grouped && sorted {
        return (rows, start);
    }
    // Headsigns follow their rows to their new positions.
    let mut headsigns = rows.headsigns;
    if !headsigns.is_empty() {
        let mut position = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            position[old as usize] = new as u32;
        }
        for h in &mut headsigns {
            h.0 = position[h.0 as usize];
        }
        headsigns.sort_unstable();
    }
    // One column at a time, each old column freed as its new one is made,
    // so the peak is one column more than the rows themselves.
    let out = StopTimes {
        stop: permute(rows.stop, &order),
        arrival: permute(rows.arrival, &order),
        departure: permute(rows.departure, &order),
        sequence: permute(rows.sequence, &order),
        shape_dist: permute(rows.shape_dist, &order),
        flags: permute(rows.flags, &order),
        headsigns,
    };
    (out, start)
}

/// The column reordered so that row `k` is the old row `order[k]`.
fn permute<T: Copy>(column: Vec<T>, order: &[u32]) -> Vec<T> {
    order.iter().map(|&r| column[r as usize]).collect()
}

/// Fills stop times the feed left empty, linearly between the surrounding
/// timed stops by `shape_dist_traveled` when known, else by stop count.
fn interpolate(st: &mut StopTimes, range: std::ops::Range<usize>) {
    let mut i = range.start;
    while i < range.end {
        if st.arrival[i] != NO_TIME {
            i += 1;
            continue;
        }
        let before = i - 1;
        let mut after = i;
        while st.arrival[after] == NO_TIME {
            after += 1;
        }
        let (t0, t1) = (
            f64::from(st.departure[before]),
            f64::from(st.arrival[after]),
        );
        let (d0, d1) = (st.shape_dist[before], st.shape_dist[after]);
        let by_distance = (before..=after).all(|k| st.shape_dist[k].is_finite()) && d1 > d0;
        for k in i..after {
            let fraction = if by_distance {
                f64::from((st.shape_dist[k] - d0) / (d1 - d0))
            } else {
                (k - before) as f64 / (after - before) as f64
            };
            let time = (t0 + (t1 - t0) * fraction).round() as u32;
            st.arrival[k] = time;
            st.departure[k] = time;
            st.flags[k] |= flags::INTERPOLATED;
            st.flags[k] &= !flags::TIMEPOINT;
        }
        i = after;
    }
}
