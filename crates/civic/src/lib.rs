//! Citizen complaints: the city's complaint desk, spoken to in Open311 GeoReport v2.
//!
//! A complaint is filed against a service of the [`catalog::Catalog`]
//! (with its Open311 attributes), validated field by field ([`form`]),
//! routed to a department or district office, given a deadline
//! ([`model::deadline_of`]), checked for duplicates within 50 m and for
//! abuse ([`limits`]), and written by the [`desk::Desk`] in group commits.
//! Staff move it through `received → acknowledged → in_progress →
//! resolved → closed` with public updates and internal notes kept apart;
//! every reporter, merged duplicates included, is notified in the app and by
//! email ([`mail`]). [`open311`] renders the standard's XML and JSON,
//! [`geo`] the H3 hotspots, and [`stats`] the ranking and charts.
//!
//! This crate knows nothing of HTTP; `cityos-server` is its face.

pub mod catalog;
pub mod desk;
pub mod form;
pub mod geo;
pub mod limits;
pub mod mail;
pub mod model;
pub mod open311;
pub mod photos;
pub mod stats;

pub use catalog::Catalog;
pub use desk::{Actor, CivicError, Desk, Filed, Settings, Update};
pub use form::FieldError;
pub use model::{Filing, Status};
