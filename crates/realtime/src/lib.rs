//! Real-time transit for cityos: where every vehicle is, when it will reach
//! each stop, and how good those predictions are.
//!
//! The ingest path, called on every vehicle position:
//!
//! 1. [`decode`]: GTFS-realtime `VehiclePositions` protobuf ([`gtfsrt`],
//!    read without allocating by [`wire`]) or the flattened CSV layout, into
//!    [`PositionView`]s borrowed from the input or owned [`PositionRecord`]s;
//! 2. [`validate`]: each position is accepted or refused with one
//!    [`Rejection`] reason;
//! 3. matching ([`Engine::ingest`]): the vehicle is placed on its trip's
//!    shape as a distance along it, never going backwards, and
//!    [`detect`] finds stop arrivals and departures;
//! 4. prediction ([`Engine::predict`]): the arrival at every remaining stop
//!    of every live run, from travel times learned online ([`model`]).
//!
//! [`external`] reads another system's TripUpdates into the same
//! predictions. [`incidents`] proposes incidents from stalled and bunched vehicles and
//! turns incidents into GTFS-realtime alerts. [`speeds`] turns the detected stop events into road speeds (TOPIS).
//!
//! [`score`] replays recorded positions and judges the predictions against
//! the arrivals later seen in the same data, beside two baselines;
//! [`synth`] drives a network's trips to make positions where none were
//! recorded.
//!
//! The examples run it all: `wmata_score` prints the accuracy table on the
//! recorded WMATA afternoon (what `cityos bench predict` shows),
//! `sim_score` the same on a generated city, `ingest_bench` the ingest
//! throughput on a generated Seoul-scale city; `wmata_trace`, `wmata_dump`
//! and `wmata_events` are for looking into single trips, predictions and
//! detected stop events.
//!
//! Like `cityos-transit`, this crate knows nothing of HTTP, MQTT or storage.

pub mod decode;
pub mod detect;
pub mod engine;
pub mod external;
mod geometry;
pub mod gtfsrt;
pub mod incidents;
pub mod index;
pub mod model;
pub mod score;
pub mod speeds;
pub mod synth;
pub mod validate;
pub mod wire;

pub use decode::{DecodeError, PositionRecord, decode_vehicle_positions, read_positions_csv};
pub use engine::{
    Accepted, Engine, LearnedHistory, RunId, RunInfo, StopEvent, StopPrediction, trip_update_entity,
};
pub use index::TripIndex;
pub use score::{Judged, Method, ScoreConfig, ScoreReport, replay_judged, replay_score};
pub use speeds::{Congestion, RoadSpeed, RoadSpeeds};
pub use validate::{Config, Counters, Rejection};
pub use wire::{PositionView, for_each_position};
