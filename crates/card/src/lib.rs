//! The smart transportation card of cityos, as an account-based back office.
//!
//! Validators send taps; the [`CardDesk`] prices each with the fare engine
//! (`cityos-fare`), posts every won to a double-entry ledger
//! (`cityos-ledger`), makes it durable in the store, and only then answers.
//! [`CardBook`] is the pure state behind it; the desk rebuilds it at start
//! by replaying the operation log.

pub mod book;
pub mod desk;
pub mod network;
pub mod ridership;

pub use book::{
    Answer, CardBook, CardId, CardStatus, CardView, NetworkView, Operation, RefusalReason, Request,
};
pub use desk::{AuditReport, CardDesk, DeskError, DeskStats, NetworkSource, Queued};
pub use network::{NoNetwork, TransitView};
