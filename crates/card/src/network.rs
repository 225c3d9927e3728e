//! The transit network as the card book sees it: distances between stops
//! for distance fares, and which operator earns each leg.

use std::sync::Arc;

use cityos_fare::Distances;
use cityos_transit::{Network, haversine_m};

use crate::book::NetworkView;

/// Detour factor for subway trips between lines, where no single line's
/// shape gives the distance: straight lines understate track length.
const CROSS_LINE_DETOUR: f64 = 1.25;

/// A transit network answering the card book's questions.
pub struct TransitView(pub Arc<Network>);

impl TransitView {
    fn stop(&self, id: &str) -> Option<u32> {
        self.0.data().stops.ids.get(id)
    }

    /// The station a stop belongs to (itself when it has no parent).
    fn place(&self, stop: u32) -> u32 {
        let parent = self.0.data().stops.parent[stop as usize];
        if parent == cityos_transit::NONE {
            stop
        } else {
            parent
        }
    }
}

impl Distances for TransitView {
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32> {
        let network = &self.0;
        let (from, to) = (
            self.place(self.stop(from_stop)?),
            self.place(self.stop(to_stop)?),
        );
        if from == to {
            return Some(0);
        }
        let metres = match route_id {
            Some(route) => {
                network.distance_on_route(network.data().route_ids.get(route)?, from, to)?
            }
            None => {
                // A subway gate does not say which line was ridden: the shortest line serving both.
                let to_routes = network.routes_at(to);
                let along = network
                    .routes_at(from)
                    .into_iter()
                    .filter(|r| to_routes.contains(r))
                    .filter_map(|r| network.distance_on_route(r, from, to))
                    .min_by(f64::total_cmp);
                match along {
                    Some(m) => m,
                    None => {
                        let s = &network.data().stops;
                        let (a, b) = (from as usize, to as usize);
                        haversine_m(s.lat[a], s.lon[a], s.lat[b], s.lon[b]) * CROSS_LINE_DETOUR
                    }
                }
            }
        };
        metres.is_finite().then(|| metres.round() as u32)
    }
}

impl NetworkView for TransitView {
    fn operator(&self, route_id: Option<&str>, stop_id: &str) -> String {
        let d = self.0.data();
        let route = match route_id {
            Some(r) => d.route_ids.get(r),
            None => self
                .stop(stop_id)
                .and_then(|s| self.0.routes_at(self.place(s)).first().copied()),
        };
        route.map_or_else(
            || "unknown".to_owned(),
            |r| {
                let agency = &d.agencies[d.routes[r as usize].agency as usize];
                if agency.id.is_empty() {
                    agency.name.clone()
                } else {
                    agency.id.clone()
                }
            },
        )
    }
}

/// The view before any network is imported: no distances, no operators.
pub struct NoNetwork;

impl Distances for NoNetwork {
    fn distance_m(&self, _: Option<&str>, _: &str, _: &str) -> Option<u32> {
        None
    }
}

impl NetworkView for NoNetwork {
    fn operator(&self, _: Option<&str>, _: &str) -> String {
        "unknown".to_owned()
    }
}
