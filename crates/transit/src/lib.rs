//! The transit network of cityos.
//!
//! A GTFS feed is read by [`gtfs::load`] into [`NetworkData`], a compact
//! columnar form (interned ids, flat stop-time arrays), and wrapped in a
//! [`Network`] that adds the indexes real-time use needs: an R-tree of
//! stops, departures per stop sorted by time, stations' children.
//!
//! This crate knows nothing of HTTP or storage: it turns bytes into a
//! network and answers questions about it.

pub mod gtfs;
pub mod model;
pub mod network;
pub mod time;

pub use gtfs::{Issue, LoadError, Progress, Report};
pub use model::{NONE, NetworkData, RouteKind};
pub use network::{DecodeError, Departure, Network, Summary, haversine_m};

/// Loads a GTFS feed and indexes it: [`gtfs::load`] then [`Network::new`].
pub fn load_network(
    path: &std::path::Path,
    progress: &dyn Fn(Progress<'_>),
) -> Result<(Network, Report), LoadError> {
    let (data, report) = gtfs::load(path, progress)?;
    let network = Network::new(data).map_err(|e| {
        let mut report = report.clone();
        report.errors.push(Issue {
            file: "agency.txt".to_owned(),
            line: None,
            field: Some("agency_timezone".to_owned()),
            message: e.to_string(),
        });
        LoadError::Invalid(Box::new(report))
    })?;
    Ok((network, report))
}
