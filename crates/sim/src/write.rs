//! Writing the feed: hand-rolled CSV (RFC 4180 quoting) into large buffers,
//! because stop_times.txt can have tens of millions of rows.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::GenerateError;
use crate::date;
use crate::network::{BUS_AGENCY, Kind, METRO_AGENCY, Network};
use crate::schedule::{self, CalendarDate, DayType, Service, Trip};

/// Bytes buffered before a write to the file.
const FLUSH_AT: usize = 4 << 20;
/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 100_000;

/// One output file with its own buffer.
struct Sink {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl Sink {
    fn create(dir: &Path, name: &str, header: &str) -> Result<Self, GenerateError> {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?;
        let mut buf = Vec::with_capacity(FLUSH_AT + (64 << 10));
        buf.extend_from_slice(header.as_bytes());
        buf.push(b'\n');
        Ok(Self { path, file, buf })
    }

    fn io(&self, source: std::io::Error) -> GenerateError {
        GenerateError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes the buffer out once it is big enough.
    fn maybe_flush(&mut self) -> Result<(), GenerateError> {
        if self.buf.len() >= FLUSH_AT {
            self.file.write_all(&self.buf).map_err(|e| self.io(e))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), GenerateError> {
        self.file.write_all(&self.buf).map_err(|e| self.io(e))?;
        self.file.flush().map_err(|e| self.io(e))
    }
}

/// Appends a CSV field, quoted when it holds a comma, quote or line break.
fn field(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}

/// Appends the decimal digits of `n`.
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_2(buf: &mut Vec<u8>, n: u32) {
    buf.push(b'0' + (n / 10 % 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// Appends `HH:MM:SS`; hours go past 23 for trips after midnight.
fn push_time(buf: &mut Vec<u8>, secs: u32) {
    let h = secs / 3600;
    if h >= 100 {
        push_u64(buf, u64::from(h));
    } else {
        push_2(buf, h);
    }
    buf.push(b':');
    push_2(buf, secs / 60 % 60);
    buf.push(b':');
    push_2(buf, secs % 60);
}

/// Appends a coordinate with 6 decimals (about 0.1 m).
fn push_coord(buf: &mut Vec<u8>, v: f64) {
    let micro = (v.abs() * 1e6).round() as u64;
    if v < 0.0 && micro != 0 {
        buf.push(b'-');
    }
    push_u64(buf, micro / 1_000_000);
    buf.push(b'.');
    let frac = micro % 1_000_000;
    let mut d = 100_000;
    while d > 0 {
        buf.push(b'0' + (frac / d % 10) as u8);
        d /= 10;
    }
}

/// Appends a distance in whole metres.
fn push_metres(buf: &mut Vec<u8>, m: f64) {
    push_u64(buf, m.max(0.0).round() as u64);
}

/// Options that name the feed in feed_info.txt.
pub(crate) struct FeedMeta {
    pub version: String,
}

/// Writes every file of the feed; returns the number of stop_times rows.
pub(crate) fn write_feed(
    dir: &Path,
    net: &Network,
    services: &[Service],
    exceptions: &[CalendarDate],
    trips: &[Trip],
    meta: &FeedMeta,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, GenerateError> {
    std::fs::create_dir_all(dir).map_err(|source| GenerateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_agency(dir)?;
    write_stops(dir, net)?;
    write_routes(dir, net)?;
    write_calendar(dir, services, exceptions)?;
    write_shapes(dir, net)?;
    write_transfers(dir, net)?;
    write_feed_info(dir, services, meta)?;
    write_trips(dir, net, services, trips, progress)
}

fn write_agency(dir: &Path) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "agency.txt",
        "agency_id,agency_name,agency_url,agency_timezone,agency_lang",
    )?;
    for (id, name, url) in [
        (
            BUS_AGENCY,
            "서울시내버스 (Seoul City Bus)",
            "https://example.org/seoul-bus",
        ),
        (
            METRO_AGENCY,
            "서울교통공사 (Seoul Metro)",
            "https://example.org/seoul-metro",
        ),
    ] {
        for (i, v) in [id, name, url, crate::TIMEZONE, "ko"]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                s.buf.push(b',');
            }
            field(&mut s.buf, v);
        }
        s.buf.push(b'\n');
    }
    s.finish()
}

fn write_stops(dir: &Path, net: &Network) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "stops.txt",
        "stop_id,stop_code,stop_name,stop_desc,stop_lat,stop_lon,location_type,parent_station",
    )?;
    for stop in &net.stops {
        let b = &mut s.buf;
        field(b, &stop.id);
        b.push(b',');
        field(b, &stop.code);
        b.push(b',');
        field(b, &stop.name);
        b.push(b',');
        field(b, &stop.desc);
        b.push(b',');
        let (lat, lon) = stop.pos.lat_lon();
        push_coord(b, lat);
        b.push(b',');
        push_coord(b, lon);
        b.push(b',');
        push_u64(b, u64::from(stop.location_type));
        b.push(b',');
        if let Some(p) = stop.parent {
            field(b, &net.stops[p].id);
        }
        b.push(b'\n');
        s.maybe_flush()?;
    }
    s.finish()
}

fn write_routes(dir: &Path, net: &Network) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "routes.txt",
        "route_id,agency_id,route_short_name,route_long_name,route_desc,route_type,route_color,route_text_color",
    )?;
    for r in &net.routes {
        let b = &mut s.buf;
        for (i, v) in [&r.id, r.agency, &r.short, &r.long, r.kind.desc()]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                b.push(b',');
            }
            field(b, v);
        }
        b.push(b',');
        push_u64(b, u64::from(r.kind.route_type()));
        b.push(b',');
        field(b, r.color);
        b.push(b',');
        field(b, r.text_color);
        b.push(b'\n');
    }
    s.finish()
}

fn write_calendar(
    dir: &Path,
    services: &[Service],
    exceptions: &[CalendarDate],
) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "calendar.txt",
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
    )?;
    for svc in services {
        let days: &[u8] = match svc.day {
            DayType::Weekday => b"1,1,1,1,1,0,0",
            DayType::Saturday => b"0,0,0,0,0,1,0",
            DayType::Sunday => b"0,0,0,0,0,0,1",
        };
        field(&mut s.buf, &svc.id);
        s.buf.push(b',');
        s.buf.extend_from_slice(days);
        s.buf.push(b',');
        s.buf
            .extend_from_slice(date::gtfs_date(svc.start).as_bytes());
        s.buf.push(b',');
        s.buf.extend_from_slice(date::gtfs_date(svc.end).as_bytes());
        s.buf.push(b'\n');
    }
    s.finish()?;
    let mut s = Sink::create(dir, "calendar_dates.txt", "service_id,date,exception_type")?;
    for ex in exceptions {
        field(&mut s.buf, &services[ex.service].id);
        s.buf.push(b',');
        s.buf.extend_from_slice(date::gtfs_date(ex.date).as_bytes());
        s.buf.push(b',');
        push_u64(&mut s.buf, u64::from(ex.exception));
        s.buf.push(b'\n');
    }
    s.finish()
}

fn write_shapes(dir: &Path, net: &Network) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "shapes.txt",
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled",
    )?;
    for pat in &net.patterns {
        for (i, &(p, d)) in pat.shape.iter().enumerate() {
            let b = &mut s.buf;
            field(b, &pat.shape_id);
            b.push(b',');
            let (lat, lon) = p.lat_lon();
            push_coord(b, lat);
            b.push(b',');
            push_coord(b, lon);
            b.push(b',');
            push_u64(b, i as u64 + 1);
            b.push(b',');
            push_metres(b, d);
            b.push(b'\n');
        }
        s.maybe_flush()?;
    }
    s.finish()
}

fn write_transfers(dir: &Path, net: &Network) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "transfers.txt",
        "from_stop_id,to_stop_id,transfer_type,min_transfer_time",
    )?;
    for t in &net.transfers {
        field(&mut s.buf, &net.stops[t.from].id);
        s.buf.push(b',');
        field(&mut s.buf, &net.stops[t.to].id);
        s.buf.extend_from_slice(b",2,");
        push_u64(&mut s.buf, u64::from(t.secs));
        s.buf.push(b'\n');
    }
    s.finish()
}

fn write_feed_info(dir: &Path, services: &[Service], meta: &FeedMeta) -> Result<(), GenerateError> {
    let mut s = Sink::create(
        dir,
        "feed_info.txt",
        "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date,feed_version",
    )?;
    let start = services
        .first()
        .map(|s| date::gtfs_date(s.start))
        .unwrap_or_default();
    let end = services
        .last()
        .map(|s| date::gtfs_date(s.end))
        .unwrap_or_default();
    for (i, v) in [
        "cityos generator",
        "https://example.org/cityos",
        "ko",
        &start,
        &end,
        &meta.version,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            s.buf.push(b',');
        }
        field(&mut s.buf, v);
    }
    s.buf.push(b'\n');
    s.finish()
}

/// Whether the vehicle of a trip takes a wheelchair: every subway train
/// (Seoul's stations are step-free), and two in three buses of a route, as
/// Seoul's city buses are about two-thirds low-floor.
fn step_free(kind: Kind, vehicle: u32) -> bool {
    kind == Kind::Subway || vehicle % 3 != 2
}

/// trips.txt and stop_times.txt in one pass over the trips.
fn write_trips(
    dir: &Path,
    net: &Network,
    services: &[Service],
    trips: &[Trip],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, GenerateError> {
    let total: u64 = trips
        .iter()
        .map(|t| net.patterns[t.pattern as usize].stops.len() as u64)
        .sum();
    // The tail of each stop_times row (`,stop_id,seq,dist\n`) depends only
    // on the pattern and position, so it is formatted once.
    let mut tails: Vec<u8> = Vec::new();
    let mut tail_at: Vec<Vec<(usize, usize)>> = Vec::with_capacity(net.patterns.len());
    for pat in &net.patterns {
        let mut v = Vec::with_capacity(pat.stops.len());
        for (i, (&stop, &d)) in pat.stops.iter().zip(&pat.dist).enumerate() {
            let from = tails.len();
            tails.push(b',');
            field(&mut tails, &net.stops[stop].id);
            tails.push(b',');
            push_u64(&mut tails, i as u64 + 1);
            tails.push(b',');
            push_metres(&mut tails, d);
            tails.push(b'\n');
            v.push((from, tails.len()));
        }
        tail_at.push(v);
    }

    let mut tr = Sink::create(
        dir,
        "trips.txt",
        "route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id,wheelchair_accessible",
    )?;
    let mut st = Sink::create(
        dir,
        "stop_times.txt",
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled",
    )?;
    let mut trip_id: Vec<u8> = Vec::with_capacity(64);
    let mut times = Vec::new();
    let mut written = 0u64;
    let mut next_report = 0u64;
    progress(0, total);
    for trip in trips {
        let pat = &net.patterns[trip.pattern as usize];
        let route = &net.routes[pat.route];
        let service = &services[trip.service as usize];

        // Ids are made of letters, digits, `_` and `-` only: no quoting.
        trip_id.clear();
        trip_id.extend_from_slice(route.id.as_bytes());
        trip_id.push(b'_');
        trip_id.extend_from_slice(service.id.as_bytes());
        trip_id.push(b'_');
        push_u64(&mut trip_id, u64::from(pat.direction));
        trip_id.push(b'_');
        push_u64(&mut trip_id, u64::from(trip.num));

        let b = &mut tr.buf;
        field(b, &route.id);
        b.push(b',');
        field(b, &service.id);
        b.push(b',');
        b.extend_from_slice(&trip_id);
        b.push(b',');
        field(b, &pat.headsign);
        b.push(b',');
        push_u64(b, u64::from(pat.direction));
        b.extend_from_slice(b",BL_");
        field(b, &route.id);
        b.push(b'_');
        field(b, &service.id);
        b.push(b'_');
        push_u64(b, u64::from(trip.vehicle) + 1);
        b.push(b',');
        field(b, &pat.shape_id);
        b.extend_from_slice(if step_free(route.kind, trip.vehicle) {
            b",1\n"
        } else {
            b",2\n"
        });
        tr.maybe_flush()?;

        schedule::trip_times(route.kind, pat, service.day, trip.dep, &mut times);
        let b = &mut st.buf;
        for (&(arr, dep), &(from, to)) in times.iter().zip(&tail_at[trip.pattern as usize]) {
            b.extend_from_slice(&trip_id);
            b.push(b',');
            push_time(b, arr);
            b.push(b',');
            push_time(b, dep);
            b.extend_from_slice(&tails[from..to]);
        }
        written += times.len() as u64;
        st.maybe_flush()?;
        if written >= next_report {
            progress(written, total);
            next_report = written + PROGRESS_EVERY;
        }
    }
    tr.finish()?;
    st.finish()?;
    progress(written, total);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fields_by_hand() {
        let mut b = Vec::new();
        field(&mut b, "a,b \"c\"");
        b.push(b' ');
        push_time(&mut b, 25 * 3600 + 10 * 60 + 5);
        b.push(b' ');
        push_coord(&mut b, 37.5665);
        b.push(b' ');
        push_coord(&mut b, -0.0000004);
        b.push(b' ');
        push_u64(&mut b, 0);
        b.push(b' ');
        push_u64(&mut b, 18_446_744_073_709_551_615);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "\"a,b \"\"c\"\"\" 25:10:05 37.566500 0.000000 0 18446744073709551615"
        );
    }
}
