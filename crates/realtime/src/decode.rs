//! Vehicle positions in: GTFS-realtime protobuf and the flattened CSV layout.
//!
//! Both decoders produce [`PositionRecord`]s, the one shape the rest of the
//! crate reads. Decoders check structure only (is this a feed, is a number a
//! number); whether a position makes sense for the network is
//! [`crate::validate`]'s job, so that every rejection is counted by reason in
//! one place.
//!
//! Nothing here panics on input: garbage bytes give a [`DecodeError`], and a
//! bad CSV row is counted and reported with its line while the good rows
//! are kept.

use std::io::Read;

use jiff::civil::Date;
use prost::Message;

use crate::gtfsrt::{
    FeedEntity, FeedHeader, FeedMessage, GTFS_REALTIME_VERSION, Incrementality, Position,
    TripDescriptor, VehicleDescriptor, VehiclePosition, VehicleStopStatus,
};
use crate::wire::PositionView;

/// One reported vehicle position, as decoded from any source.
///
/// Ids are the feed's strings; empty means absent. Times are POSIX seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PositionRecord {
    /// The vehicle's id (`vehicle.vehicle.id`), empty when absent.
    pub vehicle_id: String,
    /// The trip it serves (`vehicle.trip.trip_id`), empty when absent.
    pub trip_id: String,
    /// The route (`vehicle.trip.route_id`), empty when absent.
    pub route_id: String,
    /// `direction_id` of the trip.
    pub direction_id: Option<u8>,
    /// Service date of the trip run (`start_date`).
    pub start_date: Option<Date>,
    /// Scheduled start of the run in service seconds (`start_time`).
    pub start_time: Option<u32>,
    /// WGS-84 latitude in degrees.
    pub latitude: f64,
    /// WGS-84 longitude in degrees.
    pub longitude: f64,
    /// Heading in degrees clockwise from north.
    pub bearing: Option<f32>,
    /// Speed in metres per second.
    pub speed: Option<f32>,
    /// When the position was measured, POSIX seconds.
    pub timestamp: Option<i64>,
    /// `current_stop_sequence` as reported (not trusted for arrivals).
    pub current_stop_sequence: Option<u32>,
    /// `stop_id` of the current stop as reported, empty when absent.
    pub stop_id: String,
    /// `current_status` as reported (not trusted for arrivals).
    pub current_status: Option<VehicleStopStatus>,
}

impl PositionRecord {
    /// Borrows this record as the engine's input.
    pub fn view(&self) -> PositionView<'_> {
        PositionView {
            vehicle_id: &self.vehicle_id,
            trip_id: &self.trip_id,
            route_id: &self.route_id,
            direction_id: self.direction_id,
            start_date: self.start_date,
            start_time: self.start_time,
            latitude: self.latitude,
            longitude: self.longitude,
            bearing: self.bearing,
            speed: self.speed,
            timestamp: self.timestamp,
            current_stop_sequence: self.current_stop_sequence,
            stop_id: &self.stop_id,
            current_status: self.current_status,
        }
    }
}

impl PositionView<'_> {
    /// Copies the borrowed position into an owned record.
    pub fn to_record(&self) -> PositionRecord {
        PositionRecord {
            vehicle_id: self.vehicle_id.to_owned(),
            trip_id: self.trip_id.to_owned(),
            route_id: self.route_id.to_owned(),
            direction_id: self.direction_id,
            start_date: self.start_date,
            start_time: self.start_time,
            latitude: self.latitude,
            longitude: self.longitude,
            bearing: self.bearing,
            speed: self.speed,
            timestamp: self.timestamp,
            current_stop_sequence: self.current_stop_sequence,
            stop_id: self.stop_id.to_owned(),
            current_status: self.current_status,
        }
    }
}

/// Why positions could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a protobuf `FeedMessage` (from prost).
    #[error("not a GTFS-realtime FeedMessage: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The bytes are not a protobuf `FeedMessage` (from the zero-copy reader).
    #[error("not a GTFS-realtime FeedMessage: {0}")]
    Wire(&'static str),
    /// The CSV could not be read at all.
    #[error("cannot read the positions CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A column every position needs is missing from the header.
    #[error(
        "the positions CSV has no {0} column; expected the flattened GTFS-realtime layout \
         (e.g. `vehicle.position.latitude`, `vehicle.timestamp`)"
    )]
    MissingColumn(&'static str),
    /// One row has a value that is not what its column holds.
    #[error("line {line}: column {column}: {message}")]
    Row {
        /// 1-based line in the file.
        line: u64,
        /// The column's name as the file spells it.
        column: String,
        /// What is wrong.
        message: String,
    },
}

/// The positions of one decoded `FeedMessage`.
#[derive(Debug, Clone, Default)]
pub struct DecodedFeed {
    /// The header's timestamp, POSIX seconds.
    pub header_timestamp: Option<i64>,
    /// One record per entity that carries a vehicle position.
    pub positions: Vec<PositionRecord>,
    /// Entities that are not vehicle positions, are deletions, or have no
    /// coordinates.
    pub skipped: usize,
}

/// Decodes a GTFS-realtime `FeedMessage` and keeps its vehicle positions.
///
/// A position without its own timestamp takes the header's, as the
/// specification says consumers should. To decode without allocating, use
/// [`crate::wire::for_each_position`], which this wraps.
pub fn decode_vehicle_positions(bytes: &[u8]) -> Result<DecodedFeed, DecodeError> {
    let mut positions = Vec::new();
    let summary = crate::wire::for_each_position(bytes, |view| positions.push(view.to_record()))?;
    Ok(DecodedFeed {
        header_timestamp: summary.header_timestamp,
        positions,
        skipped: summary.skipped,
    })
}

/// Decodes with prost's generated code into the full message; the same
/// result as [`decode_vehicle_positions`], for feeds already decoded.
pub fn decode_feed(bytes: &[u8]) -> Result<FeedMessage, DecodeError> {
    Ok(FeedMessage::decode(bytes)?)
}

/// Extracts the vehicle positions of an already decoded feed.
pub fn positions_from_feed(feed: FeedMessage) -> DecodedFeed {
    let header_timestamp = feed.header.timestamp.and_then(|t| i64::try_from(t).ok());
    let mut out = DecodedFeed {
        header_timestamp,
        positions: Vec::with_capacity(feed.entity.len()),
        skipped: 0,
    };
    for entity in feed.entity {
        match entity.vehicle {
            Some(vehicle) if entity.is_deleted != Some(true) => {
                match position_from_vehicle(vehicle, header_timestamp) {
                    Some(record) => out.positions.push(record),
                    None => out.skipped += 1,
                }
            }
            _ => out.skipped += 1,
        }
    }
    out
}

/// Turns one `VehiclePosition` into a record; `None` when it has no position.
fn position_from_vehicle(v: VehiclePosition, header_time: Option<i64>) -> Option<PositionRecord> {
    let position = v.position?;
    let trip = v.trip.unwrap_or_default();
    let vehicle = v.vehicle.unwrap_or_default();
    Some(PositionRecord {
        vehicle_id: vehicle.id.unwrap_or_default(),
        trip_id: trip.trip_id.unwrap_or_default(),
        route_id: trip.route_id.unwrap_or_default(),
        direction_id: trip.direction_id.and_then(|d| u8::try_from(d).ok()),
        start_date: trip
            .start_date
            .as_deref()
            .and_then(|d| cityos_transit::time::parse_date(d.as_bytes())),
        start_time: trip
            .start_time
            .as_deref()
            .and_then(|t| cityos_transit::time::parse_time(t.as_bytes())),
        latitude: f64::from(position.latitude),
        longitude: f64::from(position.longitude),
        bearing: position.bearing,
        speed: position.speed,
        timestamp: v
            .timestamp
            .and_then(|t| i64::try_from(t).ok())
            .or(header_time),
        current_stop_sequence: v.current_stop_sequence,
        stop_id: v.stop_id.unwrap_or_default(),
        current_status: v
            .current_status
            .and_then(|s| VehicleStopStatus::try_from(s).ok()),
    })
}

/// Builds a full-dataset `FeedMessage` of vehicle positions, the inverse of
/// [`decode_vehicle_positions`] (used to write recorded positions as `.pb`).
pub fn positions_to_feed(positions: &[PositionRecord], header_timestamp: i64) -> FeedMessage {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    FeedMessage {
        header: FeedHeader {
            gtfs_realtime_version: GTFS_REALTIME_VERSION.to_owned(),
            incrementality: Some(Incrementality::FullDataset as i32),
            timestamp: u64::try_from(header_timestamp).ok(),
            feed_version: None,
        },
        entity: positions
            .iter()
            .enumerate()
            .map(|(i, p)| FeedEntity {
                id: some(&p.vehicle_id).unwrap_or_else(|| i.to_string()),
                is_deleted: None,
                trip_update: None,
                vehicle: Some(VehiclePosition {
                    trip: Some(TripDescriptor {
                        trip_id: some(&p.trip_id),
                        route_id: some(&p.route_id),
                        direction_id: p.direction_id.map(u32::from),
                        start_date: p
                            .start_date
                            .map(|d| format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())),
                        start_time: p.start_time.map(cityos_transit::time::format_time),
                        schedule_relationship: None,
                    }),
                    position: Some(Position {
                        latitude: p.latitude as f32,
                        longitude: p.longitude as f32,
                        bearing: p.bearing,
                        odometer: None,
                        speed: p.speed,
                    }),
                    current_stop_sequence: p.current_stop_sequence,
                    current_status: p.current_status.map(|s| s as i32),
                    timestamp: p.timestamp.and_then(|t| u64::try_from(t).ok()),
                    stop_id: some(&p.stop_id),
                    vehicle: some(&p.vehicle_id).map(|id| VehicleDescriptor {
                        id: Some(id),
                        label: None,
                        license_plate: None,
                    }),
                    occupancy_status: None,
                }),
                alert: None,
            })
            .collect(),
    }
}

/// The rows of a positions CSV.
#[derive(Debug, Default)]
pub struct CsvPositions {
    /// Every row that decoded, in file order.
    pub positions: Vec<PositionRecord>,
    /// How many rows were refused.
    pub bad_rows: usize,
    /// The first few refusals, with their lines (at most [`MAX_ROW_ERRORS`]).
    pub errors: Vec<DecodeError>,
}

/// How many row errors [`CsvPositions::errors`] keeps; the rest are counted.
pub const MAX_ROW_ERRORS: usize = 20;

/// The columns we read, each with the names it goes by. The first name is
/// the flattened GTFS-realtime one (as `jsonlite`/pandas write it); the others
/// are the common shorter spellings.
const COLUMNS: [(&str, &[&str]); 13] = [
    ("vehicle.vehicle.id", &["vehicle_id"]),
    ("vehicle.trip.trip_id", &["trip.trip_id", "trip_id"]),
    ("vehicle.trip.route_id", &["trip.route_id", "route_id"]),
    (
        "vehicle.trip.direction_id",
        &["trip.direction_id", "direction_id"],
    ),
    (
        "vehicle.trip.start_date",
        &["trip.start_date", "start_date"],
    ),
    (
        "vehicle.trip.start_time",
        &["trip.start_time", "start_time"],
    ),
    (
        "vehicle.position.latitude",
        &["position.latitude", "latitude", "lat"],
    ),
    (
        "vehicle.position.longitude",
        &["position.longitude", "longitude", "lon"],
    ),
    ("vehicle.position.bearing", &["position.bearing", "bearing"]),
    ("vehicle.position.speed", &["position.speed", "speed"]),
    ("vehicle.timestamp", &["timestamp"]),
    ("vehicle.current_stop_sequence", &["current_stop_sequence"]),
    ("vehicle.stop_id", &["stop_id"]),
];
/// `vehicle.current_status` is read separately (it is an enum).
const STATUS_COLUMNS: [&str; 2] = ["vehicle.current_status", "current_status"];

/// Reads positions from a CSV in the flattened GTFS-realtime layout (the
/// WMATA recording's, with columns like `vehicle.trip.trip_id`,
/// `vehicle.position.latitude`, `vehicle.timestamp`).
///
/// Latitude, longitude and timestamp columns are required. Numbers may be
/// written as floats (`36.0`) as R and pandas do, and `NA`, `NaN` or an
/// empty cell mean absent. A row with a bad value is counted in
/// [`CsvPositions::bad_rows`] and skipped.
pub fn read_positions_csv<R: Read>(reader: R) -> Result<CsvPositions, DecodeError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = csv
        .byte_headers()?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_owned()
        })
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.iter().position(|h| h == n))
    };
    let mut index = [None; 13];
    for (slot, (name, aliases)) in index.iter_mut().zip(COLUMNS) {
        *slot = find(&[name]).or_else(|| find(aliases));
    }
    let status = find(&STATUS_COLUMNS);
    for required in [6, 7, 10] {
        if index[required].is_none() {
            return Err(DecodeError::MissingColumn(COLUMNS[required].0));
        }
    }

    let mut out = CsvPositions::default();
    let mut row = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // A broken record (bad quoting, invalid UTF-8 is fine here)
                // is counted like a bad row; the reader resynchronises.
                out.bad_rows += 1;
                if out.errors.len() < MAX_ROW_ERRORS {
                    out.errors.push(DecodeError::Csv(e));
                }
                continue;
            }
        }
        let line = row.position().map_or(0, |p| p.line());
        match parse_row(&row, &index, status, &headers, line) {
            Ok(record) => out.positions.push(record),
            Err(e) => {
                out.bad_rows += 1;
                if out.errors.len() < MAX_ROW_ERRORS {
                    out.errors.push(e);
                }
            }
        }
    }
    Ok(out)
}

fn parse_row(
    row: &csv::ByteRecord,
    index: &[Option<usize>; 13],
    status: Option<usize>,
    headers: &[String],
    line: u64,
) -> Result<PositionRecord, DecodeError> {
    let cell = |column: Option<usize>| -> &[u8] {
        column
            .and_then(|c| row.get(c))
            .map_or(&[][..], <[u8]>::trim_ascii)
    };
    let error = |column: Option<usize>, message: &str| DecodeError::Row {
        line,
        column: column
            .and_then(|c| headers.get(c))
            .cloned()
            .unwrap_or_default(),
        message: message.to_owned(),
    };
    let text = |column: Option<usize>| -> Result<String, DecodeError> {
        let value = cell(column);
        if is_absent(value) {
            return Ok(String::new());
        }
        std::str::from_utf8(value)
            .map(str::to_owned)
            .map_err(|_| error(column, "not UTF-8"))
    };
    let number = |column: Option<usize>| -> Result<Option<f64>, DecodeError> {
        let value = cell(column);
        if is_absent(value) {
            return Ok(None);
        }
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| error(column, "not a number"))
    };
    let integer = |column: Option<usize>, max: f64| -> Result<Option<i64>, DecodeError> {
        match number(column)? {
            None => Ok(None),
            Some(v) if v.fract() == 0.0 && (0.0..=max).contains(&v) => Ok(Some(v as i64)),
            Some(_) => Err(error(column, "not a whole number in range")),
        }
    };
    let latitude = number(index[6])?.ok_or_else(|| error(index[6], "latitude is empty"))?;
    let longitude = number(index[7])?.ok_or_else(|| error(index[7], "longitude is empty"))?;
    let timestamp = integer(index[10], 1e15)?;
    let start_date = {
        // Dates may have been turned into numbers (`20260216.0`) by the tool that flattened the feed.
        let raw = cell(index[4]);
        let raw = raw.strip_suffix(b".0").unwrap_or(raw);
        if is_absent(raw) {
            None
        } else {
            Some(
                cityos_transit::time::parse_date(raw)
                    .ok_or_else(|| error(index[4], "not a YYYYMMDD date"))?,
            )
        }
    };
    let start_time = {
        let raw = cell(index[5]);
        if is_absent(raw) {
            None
        } else {
            Some(
                cityos_transit::time::parse_time(raw)
                    .ok_or_else(|| error(index[5], "not an HH:MM:SS time"))?,
            )
        }
    };
    Ok(PositionRecord {
        vehicle_id: id_text(text(index[0])?),
        trip_id: id_text(text(index[1])?),
        route_id: text(index[2])?,
        direction_id: integer(index[3], 1.0)?.map(|d| d as u8),
        start_date,
        start_time,
        latitude,
        longitude,
        bearing: number(index[8])?.map(|b| b as f32),
        speed: number(index[9])?.map(|s| s as f32),
        timestamp,
        current_stop_sequence: integer(index[11], f64::from(u32::MAX))?.map(|s| s as u32),
        stop_id: id_text(text(index[12])?),
        current_status: integer(status, 2.0)?
            .and_then(|s| VehicleStopStatus::try_from(s as i32).ok()),
    })
}

/// Whether a cell means "no value".
fn is_absent(value: &[u8]) -> bool {
    matches!(
        value,
        b"" | b"NA" | b"NaN" | b"nan" | b"null" | b"NULL" | b"None"
    )
}

/// Undoes a float rendering of a numeric id (`4582.0` → `4582`), which tools
/// that flatten feeds through data frames produce.
fn id_text(mut text: String) -> String {
    if let Some(stripped) = text.strip_suffix(".0")
        && !stripped.is_empty()
        && stripped.bytes().all(|b| b.is_ascii_digit())
    {
        text.truncate(stripped.len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = ",id,vehicle.trip.trip_id,vehicle.trip.start_time,vehicle.trip.start_date,vehicle.trip.schedule_relationship,vehicle.trip.route_id,vehicle.trip.direction_id,vehicle.position.latitude,vehicle.position.longitude,vehicle.position.bearing,vehicle.position.speed,vehicle.current_stop_sequence,vehicle.current_status,vehicle.timestamp,vehicle.stop_id,vehicle.vehicle.id,vehicle.vehicle.label,vehicle.occupancy_status
0,4582,30095100,10:30:00,20260216,0.0,D96,1.0,38.93341827392578,-77.07974243164062,133.0,8.839200019836426,36.0,1.0,1771257515,7752,4582,4582,7
1,5461,18632100,09:36:00,20260216,0.0,C53,0.0,38.92353057861328,-77.0519790649414,,0.0,63.0,2.0,1771257489,7219,5461,5461,7
2,x,1,,,,,,not-a-number,-77.0,,,,,1771257489,,9,9,
";

    #[test]
    fn reads_the_wmata_layout() {
        let read = read_positions_csv(SAMPLE.as_bytes()).unwrap();
        assert_eq!(read.positions.len(), 2);
        assert_eq!(read.bad_rows, 1);
        assert!(
            read.errors[0].to_string().contains("line 4"),
            "{}",
            read.errors[0]
        );
        let p = &read.positions[0];
        assert_eq!(p.vehicle_id, "4582");
        assert_eq!(p.trip_id, "30095100");
        assert_eq!(p.route_id, "D96");
        assert_eq!(p.direction_id, Some(1));
        assert_eq!(p.start_date, Some(jiff::civil::date(2026, 2, 16)));
        assert_eq!(p.start_time, Some(10 * 3600 + 30 * 60));
        assert_eq!(p.timestamp, Some(1_771_257_515));
        assert_eq!(p.current_stop_sequence, Some(36));
        assert_eq!(p.current_status, Some(VehicleStopStatus::StoppedAt));
        assert_eq!(read.positions[1].bearing, None);
    }

    #[test]
    fn refuses_a_csv_without_coordinates() {
        let err = read_positions_csv("a,b\n1,2\n".as_bytes()).unwrap_err();
        assert!(matches!(err, DecodeError::MissingColumn(_)), "{err}");
    }

    #[test]
    fn protobuf_round_trip_keeps_every_field() {
        let read = read_positions_csv(SAMPLE.as_bytes()).unwrap();
        let bytes = positions_to_feed(&read.positions, 1_771_257_520).encode_to_vec();
        let back = decode_vehicle_positions(&bytes).unwrap();
        assert_eq!(back.header_timestamp, Some(1_771_257_520));
        assert_eq!(back.positions.len(), 2);
        for (a, b) in back.positions.iter().zip(&read.positions) {
            assert_eq!(a.vehicle_id, b.vehicle_id);
            assert_eq!(a.trip_id, b.trip_id);
            assert_eq!(a.start_date, b.start_date);
            assert_eq!(a.start_time, b.start_time);
            assert_eq!(a.timestamp, b.timestamp);
            assert!((a.latitude - b.latitude).abs() < 1e-5);
            assert_eq!(a.current_status, b.current_status);
        }
    }

    #[test]
    fn garbage_bytes_are_an_error() {
        assert!(decode_vehicle_positions(&[0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    proptest! {
        #[test]
        fn protobuf_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_vehicle_positions(&bytes);
        }

        #[test]
        fn protobuf_decoder_survives_damaged_feeds(
            cut in 0usize..400,
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
        ) {
            let read = read_positions_csv(SAMPLE.as_bytes()).unwrap();
            let mut bytes = positions_to_feed(&read.positions, 1).encode_to_vec();
            for (at, value) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= value;
                }
            }
            bytes.truncate(cut);
            let _ = decode_vehicle_positions(&bytes);
        }

        #[test]
        fn csv_reader_never_panics(text in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut input = SAMPLE.lines().next().unwrap_or_default().as_bytes().to_vec();
            input.push(b'\n');
            input.extend(text);
            let _ = read_positions_csv(input.as_slice());
            let _ = read_positions_csv(&input[SAMPLE.len().min(input.len())..]);
        }
    }
}
