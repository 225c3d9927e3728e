//! [`TripIndex`]: what real-time matching needs to know about each trip,
//! derived once from a [`Network`].
//!
//! Trips that visit the same stops along the same shape share a *pattern*:
//! the shape as a metric polyline, and each stop's distance along it. Stops
//! are placed on the shape by dynamic programming (the nearest places on the
//! shape, in stop order, never going backwards), so loops and out-and-back
//! shapes put each stop on the right branch; feeds' own
//! `shape_dist_traveled` is not needed, and is often absent or in unknown
//! units.
//!
//! Consecutive stops form a *link* `(from stop, to stop)`, numbered across
//! the whole network so that every route driving between the same two stops
//! shares what is learned about it.

use rustc_hash::FxHashMap;

use cityos_transit::{NONE, Network};

use crate::geometry::{Polyline, Projection};

/// A stop pattern: a polyline and the stops placed on it.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// Index into [`TripIndex::lines`].
    pub line: u32,
    /// Distance of each stop along the line, metres, non-decreasing.
    pub stop_dist: Box<[f32]>,
    /// Link of each consecutive stop pair (one fewer than stops).
    pub links: Box<[u32]>,
}

/// Real-time facts about every trip of a network, derived from it.
#[derive(Debug)]
pub struct TripIndex {
    pub(crate) lines: Vec<Polyline>,
    pub(crate) patterns: Vec<Pattern>,
    /// Trip → pattern, [`NONE`] when the trip cannot be located (fewer than
    /// two placeable stops and no shape).
    pub(crate) trip_pattern: Vec<u32>,
    /// Link → (from stop, to stop).
    pub(crate) link_stops: Vec<(u32, u32)>,
    /// Trip → the next trip of its block on the same service, or [`NONE`].
    pub(crate) next_in_block: Vec<u32>,
    /// Trip → whether frequencies.txt expands it into runs.
    pub(crate) frequency_based: Vec<bool>,
    /// The trips of each route, as CSR: route `r` owns
    /// `route_trips[route_trips_start[r]..route_trips_start[r + 1]]`.
    route_trips_start: Vec<u32>,
    route_trips: Vec<u32>,
    /// Number of trips and stop times the index was built for, to detect a
    /// mismatched network.
    fingerprint: (usize, usize),
}

/// How many candidate places on a shape each stop considers.
const STOP_CANDIDATES: usize = 8;

impl TripIndex {
    /// Derives the index from `network`. Costs a few hundred milliseconds
    /// on a Seoul-scale network; done once per network version.
    pub fn new(network: &Network) -> TripIndex {
        let data = network.data();
        let trips = &data.trips;
        let st = &data.stop_times;
        let stops = &data.stops;

        let mut lines: Vec<Polyline> = Vec::new();
        let mut shape_line = vec![NONE; data.shapes.len()];
        for shape in 0..data.shapes.len() as u32 {
            let range = data.shapes.points(shape);
            let points = range.map(|i| (data.shapes.lat[i], data.shapes.lon[i]));
            if let Some(line) = Polyline::new(points) {
                shape_line[shape as usize] = lines.len() as u32;
                lines.push(line);
            }
        }

        let mut patterns: Vec<Pattern> = Vec::new();
        let mut pattern_of: FxHashMap<(u32, &[u32]), u32> = FxHashMap::default();
        let mut link_of: FxHashMap<(u32, u32), u32> = FxHashMap::default();
        let mut link_stops = Vec::new();
        let mut trip_pattern = vec![NONE; trips.len()];
        for (trip, slot) in trip_pattern.iter_mut().enumerate() {
            let range = trips.stop_time_range(trip as u32);
            let trip_stops = &st.stop[range];
            if trip_stops.len() < 2 {
                continue;
            }
            let shape = trips.shape[trip];
            let shape_line = if shape == NONE {
                NONE
            } else {
                shape_line[shape as usize]
            };
            if let Some(&p) = pattern_of.get(&(shape_line, trip_stops)) {
                *slot = p;
                continue;
            }
            let stop_point = |s: u32| (stops.lat[s as usize], stops.lon[s as usize]);
            let line = if shape_line != NONE {
                shape_line
            } else {
                // No shape: the straight lines between the stops stand in for one.
                match Polyline::new(trip_stops.iter().map(|&s| stop_point(s))) {
                    Some(line) => {
                        lines.push(line);
                        lines.len() as u32 - 1
                    }
                    None => continue,
                }
            };
            let stop_dist = place_stops(
                &lines[line as usize],
                trip_stops.iter().map(|&s| stop_point(s)),
            );
            let links = trip_stops
                .windows(2)
                .map(|w| {
                    let next = link_stops.len() as u32;
                    *link_of.entry((w[0], w[1])).or_insert_with(|| {
                        link_stops.push((w[0], w[1]));
                        next
                    })
                })
                .collect();
            let p = patterns.len() as u32;
            patterns.push(Pattern {
                line,
                stop_dist,
                links,
            });
            pattern_of.insert((shape_line, trip_stops), p);
            *slot = p;
        }

        // Blocks: trips sharing a block id and a service run one after another.
        let mut next_in_block = vec![NONE; trips.len()];
        let mut by_block: Vec<(u32, u32, u32, u32)> = (0..trips.len() as u32)
            .filter(|&t| trips.block[t as usize] != NONE)
            .map(|t| {
                let first = trips.stop_time_range(t).start;
                let start = st.departure.get(first).copied().unwrap_or(0);
                (trips.block[t as usize], trips.service[t as usize], start, t)
            })
            .collect();
        by_block.sort_unstable();
        for w in by_block.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 == w[1].1 {
                next_in_block[w[0].3 as usize] = w[1].3;
            }
        }

        let mut frequency_based = vec![false; trips.len()];
        for f in &data.frequencies {
            if let Some(slot) = frequency_based.get_mut(f.trip as usize) {
                *slot = true;
            }
        }

        // Trips by route, for finding the trip of a vehicle that names none.
        let mut route_trips_start = vec![0u32; data.routes.len() + 1];
        for &r in &trips.route {
            if let Some(count) = route_trips_start.get_mut(r as usize + 1) {
                *count += 1;
            }
        }
        for r in 0..data.routes.len() {
            route_trips_start[r + 1] += route_trips_start[r];
        }
        let mut fill = route_trips_start.clone();
        let mut route_trips = vec![0u32; trips.len()];
        for (trip, &r) in trips.route.iter().enumerate() {
            if let Some(slot) = fill.get_mut(r as usize) {
                route_trips[*slot as usize] = trip as u32;
                *slot += 1;
            }
        }

        TripIndex {
            lines,
            patterns,
            trip_pattern,
            link_stops,
            next_in_block,
            frequency_based,
            route_trips_start,
            route_trips,
            fingerprint: (trips.len(), st.len()),
        }
    }

    /// Whether this index was built for `network` (same trip and stop-time counts).
    pub fn fits(&self, network: &Network) -> bool {
        self.fingerprint == (network.data().trips.len(), network.data().stop_times.len())
    }

    /// Number of distinct stop patterns.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Number of distinct links (ordered stop pairs driven between).
    pub fn link_count(&self) -> usize {
        self.link_stops.len()
    }

    /// The (from, to) stops of `link`.
    pub fn link_stops(&self, link: u32) -> Option<(u32, u32)> {
        self.link_stops.get(link as usize).copied()
    }

    /// Distance of each stop of `trip` along its shape, metres; `None` when
    /// the trip cannot be located.
    pub fn stop_distances(&self, trip: u32) -> Option<&[f32]> {
        let p = *self.trip_pattern.get(trip as usize)?;
        self.patterns.get(p as usize).map(|p| &*p.stop_dist)
    }

    /// The links of `trip`, one per consecutive pair of its stops; `None`
    /// when the trip cannot be located.
    pub(crate) fn trip_links(&self, trip: u32) -> Option<&[u32]> {
        let p = *self.trip_pattern.get(trip as usize)?;
        self.patterns.get(p as usize).map(|p| &*p.links)
    }

    /// The (from, to) stops of the link from stop `i` of `trip` to the next.
    pub fn link_stops_of(&self, trip: u32, i: u32) -> Option<(u32, u32)> {
        let p = *self.trip_pattern.get(trip as usize)?;
        let link = *self.patterns.get(p as usize)?.links.get(i as usize)?;
        self.link_stops(link)
    }

    /// The road between stop `i` and stop `i + 1` of `trip`, as WGS-84
    /// (latitude, longitude) points along its shape.
    pub fn path_between(&self, trip: u32, i: usize) -> Option<Vec<(f64, f64)>> {
        let p = *self.trip_pattern.get(trip as usize)?;
        let pattern = self.patterns.get(p as usize)?;
        let (&from, &to) = (pattern.stop_dist.get(i)?, pattern.stop_dist.get(i + 1)?);
        Some(self.lines[pattern.line as usize].slice(from, to))
    }

    /// The trips of route `route`.
    pub fn route_trips(&self, route: u32) -> &[u32] {
        let r = route as usize;
        match (
            self.route_trips_start.get(r),
            self.route_trips_start.get(r + 1),
        ) {
            (Some(&a), Some(&b)) => &self.route_trips[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The trip that follows `trip` in its block, if any.
    pub fn next_in_block(&self, trip: u32) -> Option<u32> {
        self.next_in_block
            .get(trip as usize)
            .copied()
            .filter(|&t| t != NONE)
    }
}

/// Places stops on a line: the sequence of candidate places, one per stop,
/// never decreasing along the line, with the least total distance from the
/// stops. A stop without a feasible place (no coordinates, or every place
/// behind its predecessor) is put between its neighbours.
fn place_stops(line: &Polyline, stops: impl Iterator<Item = (f64, f64)>) -> Box<[f32]> {
    let candidates: Vec<Vec<Projection>> = stops
        .map(|(lat, lon)| {
            if lat.is_finite() && lon.is_finite() {
                let (x, y) = line.plane.project(lat, lon);
                line.candidates(x, y, STOP_CANDIDATES)
            } else {
                Vec::new()
            }
        })
        .collect();
    let n = candidates.len();
    // cost[i][c]: least total offset of stops ..=i with stop i at candidate c;
    // from[i][c]: the chosen candidate of the last placed stop before i.
    let mut cost: Vec<Vec<f32>> = Vec::with_capacity(n);
    let mut from: Vec<Vec<(usize, usize)>> = Vec::with_capacity(n);
    let mut last_placed: Option<usize> = None;
    for (i, cands) in candidates.iter().enumerate() {
        let mut row_cost = vec![f32::INFINITY; cands.len()];
        let mut row_from = vec![(usize::MAX, usize::MAX); cands.len()];
        for (c, cand) in cands.iter().enumerate() {
            match last_placed {
                None => row_cost[c] = cand.offset,
                Some(p) => {
                    for (pc, prev) in candidates[p].iter().enumerate() {
                        let total = cost[p][pc] + cand.offset;
                        if prev.along <= cand.along && total < row_cost[c] {
                            row_cost[c] = total;
                            row_from[c] = (p, pc);
                        }
                    }
                }
            }
        }
        let placed = row_cost.iter().any(|c| c.is_finite());
        cost.push(row_cost);
        from.push(row_from);
        if placed {
            last_placed = Some(i);
        }
    }
    let mut dist = vec![f32::NAN; n];
    if let Some(mut i) = last_placed {
        let mut c = best(&cost[i]);
        loop {
            dist[i] = candidates[i][c].along;
            let (p, pc) = from[i][c];
            if p == usize::MAX {
                break;
            }
            (i, c) = (p, pc);
        }
    }
    fill_gaps(&mut dist, line.length());
    dist.into_boxed_slice()
}

fn best(costs: &[f32]) -> usize {
    costs
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Gives unplaced stops (NaN) a distance between their placed neighbours,
/// or the line's ends when none is placed on one side.
fn fill_gaps(dist: &mut [f32], length: f32) {
    let n = dist.len();
    let mut i = 0;
    while i < n {
        if !dist[i].is_nan() {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && dist[i].is_nan() {
            i += 1;
        }
        let lo = if start == 0 { 0.0 } else { dist[start - 1] };
        let hi = if i == n { length.max(lo) } else { dist[i] };
        let gap = (i - start + 1) as f32;
        for (k, slot) in dist[start..i].iter_mut().enumerate() {
            *slot = lo + (hi - lo) * (k as f32 + 1.0) / gap;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_filled_between_neighbours() {
        let mut d = [f32::NAN, 100.0, f32::NAN, f32::NAN, 400.0, f32::NAN];
        fill_gaps(&mut d, 500.0);
        assert_eq!(d, [50.0, 100.0, 200.0, 300.0, 400.0, 450.0]);
    }
}
