//! Handlers, one module per area. Each handler validates its input, calls
//! a domain crate, and shapes the answer; none holds logic of its own.

pub mod accounts;
pub mod admin;
pub mod cards;
pub mod live;
pub mod system;
pub mod transit;
