//! The subset of `gtfs-realtime.proto` that cityos reads and writes.
//!
//! Written by hand with `prost`'s derive macros, so the build needs no
//! `protoc`. Field numbers and types follow the official proto2 schema
//! (<https://gtfs.org/documentation/realtime/proto/>); fields we do not model
//! (shapes, trip modifications, carriage details, extensions) are
//! skipped by the decoder as unknown fields, which is exactly what protobuf
//! promises for forward compatibility.
//!
//! `required` fields are decoded like optional ones by prost: a message that
//! omits one decodes with the default value, and the checks that matter
//! (a position has coordinates, a timestamp is present) are made in
//! [`crate::decode`].

/// The version of the GTFS-realtime specification cityos writes.
pub const GTFS_REALTIME_VERSION: &str = "2.0";

/// Writes an enumeration field by its name in the proto (`IN_TRANSIT_TO`),
/// as GTFS-realtime's JSON readers expect, or its number when unknown.
fn enum_name<E, S>(value: &Option<i32>, serializer: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + std::fmt::Debug,
    S: serde::Serializer,
{
    match value {
        None => serializer.serialize_none(),
        Some(v) => match E::try_from(*v) {
            Ok(e) => {
                let mut name = String::new();
                for (i, c) in format!("{e:?}").chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        name.push('_');
                    }
                    name.push(c.to_ascii_uppercase());
                }
                serializer.serialize_str(&name)
            }
            Err(_) => serializer.serialize_i32(*v),
        },
    }
}

/// A whole feed: a header and its entities.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct FeedMessage {
    /// Metadata about the feed.
    #[prost(message, required, tag = "1")]
    pub header: FeedHeader,
    /// The feed's contents.
    #[prost(message, repeated, tag = "2")]
    pub entity: Vec<FeedEntity>,
}

/// Metadata about a feed.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct FeedHeader {
    /// Version of the specification, e.g. "2.0".
    #[prost(string, required, tag = "1")]
    pub gtfs_realtime_version: String,
    /// Whether this is a full dataset or a differential update.
    #[serde(serialize_with = "enum_name::<Incrementality, _>")]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
    /// A service alert.
    #[prost(message, optional, tag = "5")]
    pub alert: Option<Alert>,
}

/// A disruption riders should know of: where, when, why, and what it does.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Alert {
    /// When the alert is in force; none means as long as it is in the feed.
    #[prost(message, repeated, tag = "1")]
    pub active_period: Vec<TimeRange>,
    /// What it concerns: routes, stops, trips.
    #[prost(message, repeated, tag = "5")]
    pub informed_entity: Vec<EntitySelector>,
    /// Why it happens.
    #[serde(serialize_with = "enum_name::<Cause, _>")]
    #[prost(enumeration = "Cause", optional, tag = "6")]
    pub cause: Option<i32>,
    /// What it does to service.
    #[serde(serialize_with = "enum_name::<Effect, _>")]
    #[prost(enumeration = "Effect", optional, tag = "7")]
    pub effect: Option<i32>,
    /// A page with more.
    #[prost(message, optional, tag = "8")]
    pub url: Option<TranslatedString>,
    /// The headline.
    #[prost(message, optional, tag = "10")]
    pub header_text: Option<TranslatedString>,
    /// The whole text.
    #[prost(message, optional, tag = "11")]
    pub description_text: Option<TranslatedString>,
    /// How severe it is.
    #[serde(serialize_with = "enum_name::<SeverityLevel, _>")]
    #[prost(enumeration = "SeverityLevel", optional, tag = "14")]
    pub severity_level: Option<i32>,
}

/// An interval of POSIX seconds; either end may be open.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TimeRange {
    /// Start, POSIX seconds.
    #[prost(uint64, optional, tag = "1")]
    pub start: Option<u64>,
    /// End, POSIX seconds.
    #[prost(uint64, optional, tag = "2")]
    pub end: Option<u64>,
}

/// What an alert concerns: the fields set together narrow it.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct EntitySelector {
    /// An agency.
    #[prost(string, optional, tag = "1")]
    pub agency_id: Option<String>,
    /// A route.
    #[prost(string, optional, tag = "2")]
    pub route_id: Option<String>,
    /// A GTFS `route_type`.
    #[prost(int32, optional, tag = "3")]
    pub route_type: Option<i32>,
    /// A trip.
    #[prost(message, optional, tag = "4")]
    pub trip: Option<TripDescriptor>,
    /// A stop.
    #[prost(string, optional, tag = "5")]
    pub stop_id: Option<String>,
    /// A direction of the route.
    #[prost(uint32, optional, tag = "6")]
    pub direction_id: Option<u32>,
}

/// Text in one or more languages.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct TranslatedString {
    /// The text in each language.
    #[prost(message, repeated, tag = "1")]
    pub translation: Vec<Translation>,
}

/// Text in one language.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Translation {
    /// The text.
    #[prost(string, required, tag = "1")]
    pub text: String,
    /// BCP-47 language code, e.g. `ko` or `en`.
    #[prost(string, optional, tag = "2")]
    pub language: Option<String>,
}

/// Why an alert happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Cause {
    /// Not known.
    UnknownCause = 1,
    /// Another cause.
    OtherCause = 2,
    /// A technical problem, such as a breakdown.
    TechnicalProblem = 3,
    /// A strike.
    Strike = 4,
    /// A demonstration.
    Demonstration = 5,
    /// An accident.
    Accident = 6,
    /// A holiday.
    Holiday = 7,
    /// The weather.
    Weather = 8,
    /// Maintenance.
    Maintenance = 9,
    /// Construction.
    Construction = 10,
    /// Police activity.
    PoliceActivity = 11,
    /// A medical emergency.
    MedicalEmergency = 12,
}

/// What an alert does to service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Effect {
    /// No service.
    NoService = 1,
    /// Less service.
    ReducedService = 2,
    /// Significant delays.
    SignificantDelays = 3,
    /// A detour.
    Detour = 4,
    /// More service.
    AdditionalService = 5,
    /// Service changed otherwise.
    ModifiedService = 6,
    /// Another effect.
    OtherEffect = 7,
    /// Not known.
    UnknownEffect = 8,
    /// A stop moved.
    StopMoved = 9,
    /// No effect on service.
    NoEffect = 10,
    /// Accessibility is affected.
    AccessibilityIssue = 11,
}

/// How severe an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SeverityLevel {
    /// Not known.
    UnknownSeverity = 1,
    /// For information.
    Info = 2,
    /// A warning.
    Warning = 3,
    /// Severe.
    Severe = 4,
}

/// Real-time progress of one trip: predicted times at its stops.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
    #[serde(serialize_with = "enum_name::<StopScheduleRelationship, _>")]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
    #[serde(serialize_with = "enum_name::<VehicleStopStatus, _>")]
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
    #[serde(serialize_with = "enum_name::<OccupancyStatus, _>")]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
    #[serde(serialize_with = "enum_name::<TripScheduleRelationship, _>")]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
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
                    current_status: Some(VehicleStopStatus::InTransitTo as i32),
                    ..Default::default()
                }),
                alert: None,
            }],
        };
        let bytes = feed.encode_to_vec();
        assert_eq!(FeedMessage::decode(bytes.as_slice()).unwrap(), feed);
        // JSON for people uses the proto's names, enumerations included.
        let json = serde_json::to_value(&feed).unwrap();
        assert_eq!(
            json["entity"][0]["vehicle"]["current_status"],
            "IN_TRANSIT_TO"
        );
        assert_eq!(json["header"]["incrementality"], "FULL_DATASET");
        assert_eq!(json["entity"][0]["vehicle"]["trip"]["trip_id"], "30095100");
    }
}
