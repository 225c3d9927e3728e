//! A zero-copy reader for GTFS-realtime vehicle positions.
//!
//! The ingest path decodes every position of every feed, so it cannot
//! afford to allocate: prost's generated code builds a `String` for every
//! id, which made decoding alone slower than everything else the engine
//! does. This reader walks the protobuf wire format directly and lends out
//! [`PositionView`]s whose strings point into the input buffer.
//!
//! It reads exactly the fields of [`crate::gtfsrt`] that a position needs,
//! with protobuf's rules: unknown fields are skipped, a repeated occurrence
//! of a field overwrites (or, for a message, merges into) the earlier one,
//! and strings must be UTF-8. Anything malformed is an error, never a panic:
//! every read is bounds-checked.

use jiff::civil::Date;

use crate::decode::DecodeError;
use crate::gtfsrt::VehicleStopStatus;

/// A vehicle position borrowed from a buffer or a [`crate::PositionRecord`].
///
/// Ids are the feed's strings; empty means absent. Times are POSIX seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PositionView<'a> {
    /// The vehicle's id, empty when absent.
    pub vehicle_id: &'a str,
    /// The trip it serves, empty when absent.
    pub trip_id: &'a str,
    /// The route, empty when absent.
    pub route_id: &'a str,
    /// `direction_id` of the trip.
    pub direction_id: Option<u8>,
    /// Service date of the trip run.
    pub start_date: Option<Date>,
    /// Scheduled start of the run in service seconds.
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
    /// `current_stop_sequence` as reported.
    pub current_stop_sequence: Option<u32>,
    /// `stop_id` of the current stop as reported, empty when absent.
    pub stop_id: &'a str,
    /// `current_status` as reported.
    pub current_status: Option<VehicleStopStatus>,
}

/// What a feed held besides its positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedSummary {
    /// The header's timestamp, POSIX seconds.
    pub header_timestamp: Option<i64>,
    /// Positions handed out.
    pub positions: usize,
    /// Entities that are not vehicle positions, are deletions, or have no
    /// coordinates.
    pub skipped: usize,
}

/// Calls `each` for every vehicle position in a `FeedMessage`, in order.
///
/// A position without its own timestamp takes the header's. Returns what
/// else the feed held, or the first malformation found (positions before it
/// have already been handed out).
pub fn for_each_position<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(PositionView<'a>),
) -> Result<FeedSummary, DecodeError> {
    // The header may follow the entities on the wire; find it first.
    let mut summary = FeedSummary::default();
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.field()? {
        if field == 1 {
            let mut header = Reader(value.bytes()?);
            while let Some((field, value)) = header.field()? {
                if field == 3 {
                    summary.header_timestamp = i64::try_from(value.varint()?).ok();
                }
            }
        }
    }
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.field()? {
        if field != 2 {
            continue;
        }
        let mut entity = Reader(value.bytes()?);
        let mut position: Option<PositionView<'a>> = None;
        let mut deleted = false;
        let mut located = false;
        while let Some((field, value)) = entity.field()? {
            match field {
                2 => deleted = value.varint()? != 0,
                4 => {
                    let view = position.get_or_insert_with(PositionView::default);
                    located |= read_vehicle(value.bytes()?, view)?;
                }
                _ => {}
            }
        }
        match position {
            Some(mut view) if located && !deleted => {
                if view.timestamp.is_none() {
                    view.timestamp = summary.header_timestamp;
                }
                summary.positions += 1;
                each(view);
            }
            _ => summary.skipped += 1,
        }
    }
    Ok(summary)
}

/// Reads a `VehiclePosition` into `view`; whether it had a `position`.
fn read_vehicle<'a>(bytes: &'a [u8], view: &mut PositionView<'a>) -> Result<bool, DecodeError> {
    let mut located = false;
    let mut reader = Reader(bytes);
    while let Some((field, value)) = reader.field()? {
        match field {
            1 => {
                let mut trip = Reader(value.bytes()?);
                while let Some((field, value)) = trip.field()? {
                    match field {
                        1 => view.trip_id = value.string()?,
                        2 => view.start_time = cityos_transit::time::parse_time(value.bytes()?),
                        3 => view.start_date = cityos_transit::time::parse_date(value.bytes()?),
                        5 => view.route_id = value.string()?,
                        6 => view.direction_id = u8::try_from(value.varint()?).ok(),
                        _ => {}
                    }
                }
            }
            2 => {
                located = true;
                let mut position = Reader(value.bytes()?);
                while let Some((field, value)) = position.field()? {
                    match field {
                        1 => view.latitude = f64::from(value.float()?),
                        2 => view.longitude = f64::from(value.float()?),
                        3 => view.bearing = Some(value.float()?),
                        5 => view.speed = Some(value.float()?),
                        _ => {}
                    }
                }
            }
            3 => view.current_stop_sequence = u32::try_from(value.varint()?).ok(),
            4 => {
                view.current_status = i32::try_from(value.varint()?)
                    .ok()
                    .and_then(|s| VehicleStopStatus::try_from(s).ok())
            }
            5 => view.timestamp = i64::try_from(value.varint()?).ok(),
            7 => view.stop_id = value.string()?,
            8 => {
                let mut vehicle = Reader(value.bytes()?);
                while let Some((field, value)) = vehicle.field()? {
                    if field == 1 {
                        view.vehicle_id = value.string()?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(located)
}

/// The rest of a message being read.
struct Reader<'a>(&'a [u8]);

/// One field's value, by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

fn malformed(what: &'static str) -> DecodeError {
    DecodeError::Wire(what)
}

impl<'a> Value<'a> {
    fn varint(&self) -> Result<u64, DecodeError> {
        match self {
            Value::Varint(v) => Ok(*v),
            _ => Err(malformed("a number field has the wrong wire type")),
        }
    }

    fn bytes(&self) -> Result<&'a [u8], DecodeError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(malformed("a message or text field has the wrong wire type")),
        }
    }

    fn string(&self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| malformed("a text field is not UTF-8"))
    }

    fn float(&self) -> Result<f32, DecodeError> {
        match self {
            Value::Fixed32(b) => Ok(f32::from_le_bytes(*b)),
            _ => Err(malformed("a float field has the wrong wire type")),
        }
    }
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(malformed("a varint is truncated or longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.0.len() {
            return Err(malformed("a field runs past the end of its message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next field number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, DecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("a length does not fit in memory"))?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32([b[0], b[1], b[2], b[3]])
            }
            _ => {
                return Err(malformed(
                    "unsupported wire type (groups are not used by GTFS-realtime)",
                ));
            }
        };
        let field = key >> 3;
        if field == 0 {
            return Err(malformed("field number 0"));
        }
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{PositionRecord, positions_from_feed, positions_to_feed};
    use crate::gtfsrt::FeedMessage;
    use proptest::prelude::*;
    use prost::Message;

    fn record() -> impl Strategy<Value = PositionRecord> {
        (
            "[a-z0-9]{0,6}",
            "[0-9]{0,9}",
            -90.0f64..90.0,
            -180.0f64..180.0,
            proptest::option::of(0i64..4_000_000_000),
            proptest::option::of(0u32..100),
            proptest::option::of(0.0f32..40.0),
        )
            .prop_map(|(vehicle, trip, lat, lon, timestamp, sequence, speed)| {
                PositionRecord {
                    vehicle_id: vehicle,
                    trip_id: trip,
                    route_id: "R1".to_owned(),
                    direction_id: Some(1),
                    start_date: Some(jiff::civil::date(2026, 2, 16)),
                    start_time: Some(36_000),
                    // Positions travel as f32 on the wire.
                    latitude: f64::from(lat as f32),
                    longitude: f64::from(lon as f32),
                    speed,
                    timestamp,
                    current_stop_sequence: sequence,
                    current_status: Some(VehicleStopStatus::StoppedAt),
                    ..PositionRecord::default()
                }
            })
    }

    proptest! {
        #[test]
        fn agrees_with_prost(records in proptest::collection::vec(record(), 0..8), header in 0i64..5_000_000_000) {
            let bytes = positions_to_feed(&records, header).encode_to_vec();
            let expected = positions_from_feed(FeedMessage::decode(bytes.as_slice()).unwrap());
            let mut seen = Vec::new();
            let summary = for_each_position(&bytes, |v| seen.push(v.to_record())).unwrap();
            prop_assert_eq!(summary.header_timestamp, expected.header_timestamp);
            prop_assert_eq!(seen, expected.positions);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = for_each_position(&bytes, |_| {});
        }
    }
}
