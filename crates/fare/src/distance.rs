//! Where leg distances come from.
//!
//! The fare engine does not know the network; the caller does. A distance is
//! the shape distance along the route between the boarding and alighting
//! stops, or for a gated mode the distance the network charges between two
//! stations.

use std::collections::HashMap;

/// Answers "how far is it from this stop to that one on this route?".
///
/// The engine asks only for legs of distance-priced modes that were tapped
/// out at a different stop than they were boarded at. `None` means the
/// network does not know the pair, which the engine reports as
/// [`QuoteError::UnknownDistance`](crate::QuoteError::UnknownDistance)
/// rather than guess a fare.
pub trait Distances {
    /// Metres from `from_stop` to `to_stop`, travelling on `route_id`
    /// (`None` for gated modes, whose distance is between stations).
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32>;
}

/// Any function of the right shape is a distance source, which keeps tests
/// and one-off tools short.
impl<F> Distances for F
where
    F: Fn(Option<&str>, &str, &str) -> Option<u32>,
{
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32> {
        self(route_id, from_stop, to_stop)
    }
}

/// A plain table of distances, for tests, examples and the command line.
///
/// Entries are directional: a bus loop is not the same length both ways.
/// Use [`DistanceTable::insert_both_ways`] where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistanceTable {
    by_route: HashMap<Option<String>, HashMap<(String, String), u32>>,
}

impl DistanceTable {
    /// An empty table.
    pub fn new() -> DistanceTable {
        DistanceTable::default()
    }

    /// Records the distance from `from_stop` to `to_stop` on `route_id`.
    pub fn insert(&mut self, route_id: Option<&str>, from_stop: &str, to_stop: &str, metres: u32) {
        self.by_route
            .entry(route_id.map(str::to_owned))
            .or_default()
            .insert((from_stop.to_owned(), to_stop.to_owned()), metres);
    }

    /// Records the same distance in both directions.
    pub fn insert_both_ways(&mut self, route_id: Option<&str>, a: &str, b: &str, metres: u32) {
        self.insert(route_id, a, b, metres);
        self.insert(route_id, b, a, metres);
    }
}

impl Distances for DistanceTable {
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32> {
        // The outer map is keyed by an owned Option<String>; a borrowed
        // lookup would need a custom key type, and this table is for tests
        // and the command line, so one small allocation is fine.
        let pairs = self.by_route.get(&route_id.map(str::to_owned))?;
        pairs
            .get(&(from_stop.to_owned(), to_stop.to_owned()))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_directional_unless_asked() {
        let mut t = DistanceTable::new();
        t.insert(Some("101"), "a", "b", 4_000);
        t.insert_both_ways(None, "s1", "s2", 8_000);
        assert_eq!(t.distance_m(Some("101"), "a", "b"), Some(4_000));
        assert_eq!(t.distance_m(Some("101"), "b", "a"), None);
        assert_eq!(t.distance_m(Some("102"), "a", "b"), None);
        assert_eq!(t.distance_m(None, "s2", "s1"), Some(8_000));
    }

    #[test]
    fn closures_are_distance_sources() {
        let flat = |_: Option<&str>, _: &str, _: &str| Some(1_000);
        assert_eq!(Distances::distance_m(&flat, None, "a", "b"), Some(1_000));
    }
}
