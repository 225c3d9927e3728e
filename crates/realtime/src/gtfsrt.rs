//! The subset of `gtfs-realtime.proto` that cityos reads and writes.
//!
//! Written by hand with `prost`'s derive macros, so the build needs no
//! `protoc`. Field numbers and types follow the official proto2 schema
//! (<https://gtfs.org/documentation/realtime/proto/>); fields we do not model
//! (alerts, shapes, trip modifications, carriage details, extensions) are
//! skipped by the decoder as unknown fields, which is exactly what protobuf
//! promises for forward compatibility.
//!
//! `required` fields are decoded like optional ones by prost: a message that
//! omits one decodes with the default value, and the checks that matter
//! (a position has coordinates, a timestamp is present) are made in
//! [`crate::decode`].

/// The version of the GTFS-realtime specification cityos writes.
pub const GTFS_REALTIME_VERSION: &str = "2.0";

/// A whole feed: a header and its entities.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FeedMessage {
    /// Metadata about the feed.
    #[prost(message, required, tag = "1")]
    pub header: FeedHeader,
    /// The feed's contents.
    #[prost(message, repeated, tag = "2")]
    pub entity: Vec<FeedEntity>,
}

/// Metadata about a feed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FeedHeader {
    /// Version of the specification, e.g. "2.0".
    #[prost(string, required, tag = "1")]
    pub gtfs_realtime_version: String,
    /// Whether this is a full dataset or a differential update.
    #[prost(enumeration = "Incrementality", optional, tag = "2")]
    pub incrementality: Option<i32>,
    /// When the content was created, POSIX seconds.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// A version string for the feed.
    #[prost(string, optional, tag = "4")]
    pub feed_version: Option<String>,
}

/// Whether a feed replaces everything before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Incrementality {
    /// The feed is the whole current state.
    FullDataset = 0,
    /// The feed changes only the entities it lists.
    Differential = 1,
}

/// One entity of a feed: a trip update, a vehicle position or an alert.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FeedEntity {
    /// Feed-unique id of the entity.
    #[prost(string, required, tag = "1")]
    pub id: String,
    /// Whether the entity is to be deleted (differential feeds only).
    #[prost(bool, optional, tag = "2")]
    pub is_deleted: Option<bool>,
    /// Predictions for one trip.
    #[prost(message, optional, tag = "3")]
    pub trip_update: Option<TripUpdate>,
    /// Where one vehicle is.
    #[prost(message, optional, tag = "4")]
    pub vehicle: Option<VehiclePosition>,
}

/// Real-time progress of one trip: predicted times at its stops.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TripUpdate {
    /// The trip this update is about.
    #[prost(message, required, tag = "1")]
    pub trip: TripDescriptor,
    /// Per-stop predictions, ordered by stop sequence.
    #[prost(message, repeated, tag = "2")]
    pub stop_time_update: Vec<StopTimeUpdate>,
    /// The vehicle serving the trip.
    #[prost(message, optional, tag = "3")]
    pub vehicle: Option<VehicleDescriptor>,
    /// When the prediction was made, POSIX seconds.
    #[prost(uint64, optional, tag = "4")]
    pub timestamp: Option<u64>,
    /// Current schedule deviation of the trip, seconds (late is positive).
    #[prost(int32, optional, tag = "5")]
    pub delay: Option<i32>,
}

/// A predicted arrival or departure.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StopTimeEvent {
    /// Deviation from the schedule in seconds (late is positive).
    #[prost(int32, optional, tag = "1")]
    pub delay: Option<i32>,
    /// The predicted instant, POSIX seconds.
    #[prost(int64, optional, tag = "2")]
    pub time: Option<i64>,
    /// Expected error of the prediction in seconds; 0 means certain.
    #[prost(int32, optional, tag = "3")]
    pub uncertainty: Option<i32>,
}

/// The prediction for one stop of a trip.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StopTimeUpdate {
    /// `stop_sequence` of the stop time in the static feed.
    #[prost(uint32, optional, tag = "1")]
    pub stop_sequence: Option<u32>,
    /// Predicted arrival.
    #[prost(message, optional, tag = "2")]
    pub arrival: Option<StopTimeEvent>,
    /// Predicted departure.
    #[prost(message, optional, tag = "3")]
    pub departure: Option<StopTimeEvent>,
    /// `stop_id` of the stop in the static feed.
    #[prost(string, optional, tag = "4")]
    pub stop_id: Option<String>,
    /// Whether the stop is served as scheduled, skipped, or without data.
    #[prost(enumeration = "StopScheduleRelationship", optional, tag = "5")]
    pub schedule_relationship: Option<i32>,
}

/// How a stop time relates to the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StopScheduleRelationship {
    /// The vehicle serves the stop; times are predictions.
    Scheduled = 0,
    /// The stop is skipped.
    Skipped = 1,
    /// No real-time data for this stop.
    NoData = 2,
    /// The trip has no schedule at this stop.
    Unscheduled = 3,
}

/// Where one vehicle is and what it is doing.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VehiclePosition {
    /// The trip the vehicle serves.
    #[prost(message, optional, tag = "1")]
    pub trip: Option<TripDescriptor>,
    /// The vehicle's location.
    #[prost(message, optional, tag = "2")]
    pub position: Option<Position>,
    /// `stop_sequence` of the current stop (see `current_status`).
    #[prost(uint32, optional, tag = "3")]
    pub current_stop_sequence: Option<u32>,
    /// Where the vehicle is relative to the current stop.
    #[prost(enumeration = "VehicleStopStatus", optional, tag = "4")]
    pub current_status: Option<i32>,
    /// When the position was measured, POSIX seconds.
    #[prost(uint64, optional, tag = "5")]
    pub timestamp: Option<u64>,
    /// The current stop's `stop_id`.
    #[prost(string, optional, tag = "7")]
    pub stop_id: Option<String>,
    /// Which vehicle this is.
    #[prost(message, optional, tag = "8")]
    pub vehicle: Option<VehicleDescriptor>,
    /// How full the vehicle is.
    #[prost(enumeration = "OccupancyStatus", optional, tag = "9")]
    pub occupancy_status: Option<i32>,
}

/// A vehicle's status relative to its current stop.
///
/// Feeds set these loosely: WMATA reports `StoppedAt` about 45 m before a
/// stop while the bus still moves, so cityos never derives arrivals from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum VehicleStopStatus {
    /// About to arrive at the stop.
    IncomingAt = 0,
    /// Standing at the stop.
    StoppedAt = 1,
    /// Departed the previous stop, on the way to this one.
    InTransitTo = 2,
}

/// How full a vehicle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum OccupancyStatus {
    /// Empty.
    Empty = 0,
    /// Many seats available.
    ManySeatsAvailable = 1,
    /// Few seats available.
    FewSeatsAvailable = 2,
    /// Standing room only.
    StandingRoomOnly = 3,
    /// Crushed standing room only.
    CrushedStandingRoomOnly = 4,
    /// Full.
    Full = 5,
    /// Not accepting passengers.
    NotAcceptingPassengers = 6,
    /// No data.
    NoDataAvailable = 7,
    /// Not boardable.
    NotBoardable = 8,
}

/// Identifies one run of a trip.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TripDescriptor {
    /// `trip_id` in the static feed.
    #[prost(string, optional, tag = "1")]
    pub trip_id: Option<String>,
    /// Scheduled start time of this run, `HH:MM:SS` (frequency-based trips).
    #[prost(string, optional, tag = "2")]
    pub start_time: Option<String>,
    /// Service date of this run, `YYYYMMDD`.
    #[prost(string, optional, tag = "3")]
    pub start_date: Option<String>,
    /// How the trip relates to the schedule.
    #[prost(enumeration = "TripScheduleRelationship", optional, tag = "4")]
    pub schedule_relationship: Option<i32>,
    /// `route_id` in the static feed.
    #[prost(string, optional, tag = "5")]
    pub route_id: Option<String>,
    /// `direction_id` in the static feed.
    #[prost(uint32, optional, tag = "6")]
    pub direction_id: Option<u32>,
}

/// How a trip relates to the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum TripScheduleRelationship {
    /// A trip of the static schedule.
    Scheduled = 0,
    /// An extra trip.
    Added = 1,
    /// A trip with no schedule.
    Unscheduled = 2,
    /// A scheduled trip that was cancelled.
    Canceled = 3,
    /// A copy of a scheduled trip at another time.
    Duplicated = 6,
    /// A scheduled trip removed from service.
    Deleted = 7,
}

/// Identifies a vehicle.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VehicleDescriptor {
    /// Internal, stable id of the vehicle.
    #[prost(string, optional, tag = "1")]
    pub id: Option<String>,
    /// What riders see (fleet number, destination sign).
    #[prost(string, optional, tag = "2")]
    pub label: Option<String>,
    /// The licence plate.
    #[prost(string, optional, tag = "3")]
    pub license_plate: Option<String>,
}

/// A geographic position.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Position {
    /// WGS-84 latitude in degrees.
    #[prost(float, required, tag = "1")]
    pub latitude: f32,
    /// WGS-84 longitude in degrees.
    #[prost(float, required, tag = "2")]
    pub longitude: f32,
    /// Heading in degrees clockwise from true north.
    #[prost(float, optional, tag = "3")]
    pub bearing: Option<f32>,
    /// Odometer in metres.
    #[prost(double, optional, tag = "4")]
    pub odometer: Option<f64>,
    /// Speed in metres per second.
    #[prost(float, optional, tag = "5")]
    pub speed: Option<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn round_trips_a_vehicle_position() {
        let feed = FeedMessage {
            header: FeedHeader {
                gtfs_realtime_version: GTFS_REALTIME_VERSION.to_owned(),
                incrementality: Some(Incrementality::FullDataset as i32),
                timestamp: Some(1_771_257_515),
                feed_version: None,
            },
            entity: vec![FeedEntity {
                id: "4582".to_owned(),
                is_deleted: None,
                trip_update: None,
                vehicle: Some(VehiclePosition {
                    trip: Some(TripDescriptor {
                        trip_id: Some("30095100".to_owned()),
                        ..Default::default()
                    }),
                    position: Some(Position {
                        latitude: 38.9,
                        longitude: -77.0,
                        ..Default::default()
                    }),
                    timestamp: Some(1_771_257_515),
                    ..Default::default()
                }),
            }],
        };
        let bytes = feed.encode_to_vec();
        assert_eq!(FeedMessage::decode(bytes.as_slice()).unwrap(), feed);
    }
}
