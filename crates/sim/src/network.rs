//! The city's geography and network: a jittered road grid with Seoul-style bus
//! routes on it, and subway lines with transfer stations where they cross.

use std::collections::{BTreeMap, BTreeSet};

use crate::CitySize;
use crate::geo::{P, Polyline, segment_crossing};
use crate::names::{DOWNTOWN_STATIONS, Gazetteer, Name, NameSet};
use crate::rng::Rng;

/// Agency of the buses.
pub(crate) const BUS_AGENCY: &str = "SEOULBUS";
/// Agency of the subway.
pub(crate) const METRO_AGENCY: &str = "SEOULMETRO";

/// The kind of a route, as Seoul classifies its buses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 간선 (blue): long routes through downtown.
    Trunk,
    /// 지선 (green): local feeder routes.
    Branch,
    /// 순환 (yellow): downtown loops.
    Circular,
    /// 심야 (N): night service.
    Night,
    /// 지하철: the subway.
    Subway,
}

impl Kind {
    /// `route_desc`, exactly one word so that consumers can recognise it.
    pub(crate) fn desc(self) -> &'static str {
        match self {
            Kind::Trunk => "trunk",
            Kind::Branch => "branch",
            Kind::Circular => "circular",
            Kind::Night => "night",
            Kind::Subway => "subway",
        }
    }

    /// GTFS `route_type`.
    pub(crate) fn route_type(self) -> u8 {
        if self == Kind::Subway { 1 } else { 3 }
    }
}

/// How big the generated city is.
#[derive(Debug, Clone)]
pub(crate) struct SizeParams {
    /// Half the side of the square city, in metres.
    pub half: f64,
    /// Distance between road-grid intersections (= bus stop spacing).
    pub spacing: f64,
    pub trunk: usize,
    pub branch: usize,
    pub circular: usize,
    pub night: usize,
    /// Subway line numbers to build.
    pub lines: &'static [u8],
    pub station_spacing: f64,
    /// Multiplies every headway: `Small` runs a thinner timetable so that the
    /// demo feed stays a few tens of thousands of rows.
    pub headway_scale: f64,
    /// Side of a neighbourhood (동), which names the stops in it.
    pub dong_cell: f64,
}

impl SizeParams {
    pub(crate) fn of(size: CitySize) -> Self {
        match size {
            CitySize::Small => Self {
                half: 2600.0,
                spacing: 400.0,
                trunk: 8,
                branch: 8,
                circular: 2,
                night: 2,
                lines: &[1, 2],
                station_spacing: 900.0,
                headway_scale: 2.5,
                dong_cell: 800.0,
            },
            CitySize::Medium => Self {
                half: 8000.0,
                spacing: 450.0,
                trunk: 40,
                branch: 56,
                circular: 3,
                night: 6,
                lines: &[1, 2, 3, 4, 5],
                station_spacing: 1100.0,
                headway_scale: 1.0,
                dong_cell: 1000.0,
            },
            CitySize::Large => Self {
                half: 15000.0,
                spacing: 500.0,
                trunk: 120,
                branch: 212,
                circular: 4,
                night: 14,
                lines: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
                station_spacing: 1200.0,
                headway_scale: 1.0,
                dong_cell: 1100.0,
            },
        }
    }
}

/// A row of stops.txt.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    pub id: String,
    pub code: String,
    pub name: String,
    pub desc: String,
    pub pos: P,
    /// 0 = stop or platform, 1 = station.
    pub location_type: u8,
    pub parent: Option<usize>,
}

/// A route's headways in minutes by period of the day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Headways {
    pub peak: f64,
    pub midday: f64,
    pub evening: f64,
    pub late: f64,
    pub weekend: f64,
}

/// A row of routes.txt, with what the timetable needs.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub id: String,
    pub agency: &'static str,
    pub short: String,
    pub long: String,
    pub kind: Kind,
    pub color: &'static str,
    pub text_color: &'static str,
    pub headways: Headways,
    /// Its patterns (one per direction; one for a bus loop).
    pub patterns: Vec<usize>,
}

/// One direction of a route: the stops it serves and its shape.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub route: usize,
    pub direction: u8,
    pub stops: Vec<usize>,
    /// Metres along the shape at each stop.
    pub dist: Vec<f64>,
    /// Shape points with their metres along the shape.
    pub shape: Vec<(P, f64)>,
    pub shape_id: String,
    pub headsign: String,
}

/// A row of transfers.txt (transfer_type 2).
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    pub from: usize,
    pub to: usize,
    pub secs: u32,
}

/// Everything static about the city; the timetable comes on top.
#[derive(Debug, Clone, Default)]
pub(crate) struct Network {
    pub stops: Vec<Stop>,
    pub routes: Vec<Route>,
    pub patterns: Vec<Pattern>,
    pub transfers: Vec<Transfer>,
}

/// Keys of the random streams, so that each part draws its own numbers.
mod tag {
    pub const GRID: u64 = 1;
    pub const LINE: u64 = 2;
    pub const STATION_NAME: u64 = 3;
    pub const TRANSFER: u64 = 4;
    pub const TRUNK: u64 = 5;
    pub const BRANCH: u64 = 6;
    pub const CIRCULAR: u64 = 7;
    pub const NIGHT: u64 = 8;
    pub const STOP_NAME: u64 = 9;
    pub const HEADWAY: u64 = 10;
}

/// Builds the network; `route_mult` multiplies the number of trunk and branch
/// routes (for very large `stop_times_target`s).
pub(crate) fn build(seed: u64, params: &SizeParams, route_mult: usize) -> Network {
    let gaz = Gazetteer::new(seed, params.half, params.dong_cell);
    let mut names = NameSet::default();
    let mut net = Network::default();
    // Subway first: stations get the plain neighbourhood names.
    build_subway(seed, params, &gaz, &mut names, &mut net);
    build_buses(seed, params, route_mult, &gaz, &mut names, &mut net);
    net
}

fn subway_color(line: u8) -> &'static str {
    match line {
        1 => "0052A4",
        2 => "00A84D",
        3 => "EF7C1C",
        4 => "00A5DE",
        5 => "996CAC",
        6 => "CD7C2F",
        7 => "747F00",
        8 => "E6186C",
        _ => "BDB092",
    }
}

/// The rough course of each line: bearing of its axis (degrees from east),
/// offset of the axis from the centre and the reach of each end, as fractions
/// of the half-size. Loosely follows the real lines.
fn line_axis(line: u8) -> (f64, f64, f64, f64) {
    match line {
        1 => (97.0, 0.0, 0.92, 0.90),
        3 => (128.0, -0.06, 0.90, 0.88),
        4 => (62.0, 0.05, 0.90, 0.85),
        5 => (4.0, 0.10, 0.92, 0.92),
        6 => (35.0, -0.18, 0.70, 0.75),
        7 => (150.0, 0.22, 0.90, 0.90),
        8 => (78.0, 0.38, 0.45, 0.55),
        _ => (-10.0, -0.32, 0.92, 0.80),
    }
}

fn line_geometry(seed: u64, line: u8, half: f64) -> Polyline {
    let mut rng = Rng::derive(seed, &[tag::LINE, u64::from(line)]);
    let lim = 0.98 * half;
    let clamp = |p: P| P::new(p.x.clamp(-lim, lim), p.y.clamp(-lim, lim));
    if line == 2 {
        // Line 2 circles downtown and the south bank, like the real one.
        let (cx, cy) = (0.04 * half, -0.08 * half);
        let (rx, ry) = (0.46 * half, 0.30 * half);
        let (f1, f2) = (rng.range_f64(0.0, 6.3), rng.range_f64(0.0, 6.3));
        let n = 36;
        let pts = (0..n)
            .map(|i| {
                let a = std::f64::consts::TAU * f64::from(i) / f64::from(n);
                let k = 1.0 + 0.04 * (2.0 * a + f1).sin() + 0.03 * (3.0 * a + f2).sin();
                clamp(P::new(cx + rx * k * a.cos(), cy + ry * k * a.sin()))
            })
            .collect();
        return Polyline::new(pts, true);
    }
    let (deg, off, l0, l1) = line_axis(line);
    let ang = (deg + rng.range_f64(-6.0, 6.0)).to_radians();
    let (dir, perp) = (P::new(ang.cos(), ang.sin()), P::new(-ang.sin(), ang.cos()));
    let off = (off + rng.range_f64(-0.03, 0.03)) * half;
    let (u0, u1) = (
        -l0 * half * rng.range_f64(0.95, 1.0),
        l1 * half * rng.range_f64(0.95, 1.0),
    );
    let n = 7;
    let pts = (0..n)
        .map(|i| {
            let u = u0 + (u1 - u0) * f64::from(i) / f64::from(n - 1);
            let w = off + rng.range_f64(-0.05, 0.05) * half;
            clamp(P::new(dir.x * u + perp.x * w, dir.y * u + perp.y * w))
        })
        .collect();
    Polyline::new(pts, false)
}

/// Union-find over junction clusters.
struct Clusters {
    parent: Vec<usize>,
}

impl Clusters {
    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) -> bool {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        // The smaller index wins so that the result does not depend on order.
        let (lo, hi) = (a.min(b), a.max(b));
        self.parent[hi] = lo;
        true
    }
}

/// A crossing of two lines: where, and the arc length along each.
struct Junction {
    p: P,
    arcs: [(usize, f64); 2],
}

/// Mean of arc lengths; on a closed line of length `l` the arcs are first
/// brought within half a lap of the first one.
fn mean_arc(arcs: &[f64], closed: bool, l: f64) -> f64 {
    let r = arcs[0];
    let sum: f64 = arcs
        .iter()
        .map(|&a| {
            if closed {
                r + (a - r + l / 2.0).rem_euclid(l) - l / 2.0
            } else {
                a
            }
        })
        .sum();
    let m = sum / arcs.len() as f64;
    if closed { m.rem_euclid(l) } else { m }
}

/// Per line, the fixed station positions `(arc, cluster root)` sorted by arc.
fn fixed_stations(
    junctions: &[Junction],
    clusters: &mut Clusters,
    lines: &[Polyline],
) -> Vec<Vec<(f64, usize)>> {
    let mut per_line: Vec<BTreeMap<usize, Vec<f64>>> = vec![BTreeMap::new(); lines.len()];
    for (j, junction) in junctions.iter().enumerate() {
        let root = clusters.find(j);
        for &(line, arc) in &junction.arcs {
            per_line[line].entry(root).or_default().push(arc);
        }
    }
    per_line
        .into_iter()
        .enumerate()
        .map(|(li, m)| {
            let pl = &lines[li];
            let mut v: Vec<(f64, usize)> = m
                .into_iter()
                .map(|(root, arcs)| (mean_arc(&arcs, pl.closed, pl.len()), root))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            v
        })
        .collect()
}

fn build_subway(
    seed: u64,
    params: &SizeParams,
    gaz: &Gazetteer,
    names: &mut NameSet,
    net: &mut Network,
) {
    let lines: Vec<Polyline> = params
        .lines
        .iter()
        .map(|&l| line_geometry(seed, l, params.half))
        .collect();
    let sp = params.station_spacing;

    // Where lines cross, they share a transfer station.
    let mut junctions = Vec::new();
    for a in 0..lines.len() {
        for b in a + 1..lines.len() {
            let (la, lb) = (&lines[a], &lines[b]);
            for i in 1..la.pts.len() {
                for k in 1..lb.pts.len() {
                    let (a0, a1, b0, b1) = (la.pts[i - 1], la.pts[i], lb.pts[k - 1], lb.pts[k]);
                    if let Some((t, u)) = segment_crossing(a0, a1, b0, b1) {
                        junctions.push(Junction {
                            p: P::new(a0.x + (a1.x - a0.x) * t, a0.y + (a1.y - a0.y) * t),
                            arcs: [
                                (a, la.cum[i - 1] + t * (la.cum[i] - la.cum[i - 1])),
                                (b, lb.cum[k - 1] + u * (lb.cum[k] - lb.cum[k - 1])),
                            ],
                        });
                    }
                }
            }
        }
    }
    let mut clusters = Clusters {
        parent: (0..junctions.len()).collect(),
    };
    // Crossings close together become one station (like 3-line interchanges)…
    for i in 0..junctions.len() {
        for k in i + 1..junctions.len() {
            if junctions[i].p.dist(junctions[k].p) < 0.3 * sp {
                clusters.union(i, k);
            }
        }
    }
    // …and so do neighbouring crossings too close along one line for two stations.
    let fixed = loop {
        let fixed = fixed_stations(&junctions, &mut clusters, &lines);
        let mut merged = false;
        for (li, f) in fixed.iter().enumerate() {
            let l = lines[li].len();
            for w in 0..f.len() {
                let next = if w + 1 < f.len() {
                    Some((f[w + 1].0 - f[w].0, f[w + 1].1))
                } else if lines[li].closed && f.len() > 1 {
                    Some((f[0].0 + l - f[w].0, f[0].1))
                } else {
                    None
                };
                if let Some((gap, other)) = next
                    && gap < 0.4 * sp
                {
                    merged |= clusters.union(f[w].1, other);
                }
            }
        }
        if !merged {
            break fixed;
        }
    };

    let mut cluster_pts: BTreeMap<usize, Vec<P>> = BTreeMap::new();
    for (j, junction) in junctions.iter().enumerate() {
        cluster_pts
            .entry(clusters.find(j))
            .or_default()
            .push(junction.p);
    }
    let centroid = |c: usize| {
        let pts = &cluster_pts[&c];
        let n = pts.len() as f64;
        P::new(
            pts.iter().map(|p| p.x).sum::<f64>() / n,
            pts.iter().map(|p| p.y).sum::<f64>() / n,
        )
    };
    // Each line's platform goes where the line passes closest to the
    // interchange's centre; fixed stations are at least 0.4 spacings
    // apart, so a search of a tenth of a spacing keeps their order.
    let mut fixed = fixed;
    for (li, f) in fixed.iter_mut().enumerate() {
        let pl = &lines[li];
        for (arc, c) in f.iter_mut() {
            let target = centroid(*c);
            let (lo, hi) = (*arc - 0.1 * sp, *arc + 0.1 * sp);
            let (lo, hi) = if pl.closed {
                (lo, hi)
            } else {
                (lo.max(0.0), hi.min(pl.len()))
            };
            let steps = ((hi - lo) / 10.0).ceil().max(1.0) as usize;
            let best = (0..=steps)
                .map(|k| lo + (hi - lo) * k as f64 / steps as f64)
                .min_by(|a, b| {
                    pl.point_at(*a)
                        .dist(target)
                        .total_cmp(&pl.point_at(*b).dist(target))
                })
                .unwrap_or(*arc);
            *arc = if pl.closed {
                best.rem_euclid(pl.len())
            } else {
                best
            };
        }
        f.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }

    // Fill each line with stations between its fixed ones.
    let mut line_stations: Vec<Vec<(f64, Option<usize>)>> = Vec::new();
    for (li, pl) in lines.iter().enumerate() {
        let l = pl.len();
        let mut knots: Vec<(f64, Option<usize>)> =
            fixed[li].iter().map(|&(a, c)| (a, Some(c))).collect();
        if pl.closed {
            if knots.is_empty() {
                knots.push((0.0, None));
            }
        } else {
            if knots.first().is_none_or(|k| k.0 > 0.5 * sp) {
                knots.insert(0, (0.0, None));
            }
            if knots.last().is_none_or(|k| k.0 < l - 0.5 * sp) {
                knots.push((l, None));
            }
        }
        let mut stations = Vec::new();
        let n = knots.len();
        let spans = if pl.closed { n } else { n - 1 };
        for w in 0..n {
            stations.push(knots[w]);
            if w >= spans {
                continue;
            }
            let (a, b) = if w + 1 < n {
                (knots[w].0, knots[w + 1].0)
            } else {
                (knots[w].0, knots[0].0 + l)
            };
            let between = ((b - a) / sp).round().max(1.0) as usize - 1;
            for s in 1..=between {
                stations.push((a + (b - a) * s as f64 / (between + 1) as f64, None));
            }
        }
        line_stations.push(stations);
    }

    // Parent stations: one per junction cluster, one per other station.
    let mut parent_of_cluster: BTreeMap<usize, usize> = BTreeMap::new();
    let mut parents: Vec<P> = Vec::new();
    let mut station_parent: Vec<Vec<usize>> = Vec::new();
    for (li, stations) in line_stations.iter().enumerate() {
        let mut v = Vec::new();
        for &(arc, cluster) in stations {
            let idx = match cluster {
                Some(c) => *parent_of_cluster.entry(c).or_insert_with(|| {
                    parents.push(centroid(c));
                    parents.len() - 1
                }),
                None => {
                    parents.push(lines[li].point_at(arc));
                    parents.len() - 1
                }
            };
            v.push(idx);
        }
        station_parent.push(v);
    }

    // Names: the most central stations get downtown's real names.
    let mut parent_names: Vec<Option<Name>> = vec![None; parents.len()];
    let mut by_centrality: Vec<usize> = (0..parents.len()).collect();
    by_centrality.sort_by(|&a, &b| {
        let o = P::new(0.0, 0.0);
        parents[a]
            .dist(o)
            .total_cmp(&parents[b].dist(o))
            .then(a.cmp(&b))
    });
    for (&pi, &(ko, en)) in by_centrality.iter().zip(DOWNTOWN_STATIONS) {
        if parents[pi].dist(P::new(0.0, 0.0)) < 0.3 * params.half {
            parent_names[pi] = names.claim(Name::new(ko, en));
        }
    }
    let mut rng = Rng::derive(seed, &[tag::STATION_NAME]);
    for (pi, name) in parent_names.iter_mut().enumerate() {
        if name.is_none() {
            *name = Some(names.station(gaz, parents[pi], &mut rng));
        }
    }
    let parent_names: Vec<Name> = parent_names.into_iter().flatten().collect();

    let base = net.stops.len();
    for (pi, &p) in parents.iter().enumerate() {
        net.stops.push(Stop {
            id: format!("ST{:03}", pi + 1),
            code: String::new(),
            name: parent_names[pi].full(),
            desc: String::new(),
            pos: p,
            location_type: 1,
            parent: None,
        });
    }
    let mut platforms_of: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    for (li, &line) in params.lines.iter().enumerate() {
        let pl = &lines[li];
        let mut stops = Vec::new();
        for (si, &(arc, _)) in line_stations[li].iter().enumerate() {
            let parent = station_parent[li][si];
            let code = format!("{line}{:02}", si + 1);
            net.stops.push(Stop {
                id: format!("P{code}"),
                code,
                name: parent_names[parent].full(),
                desc: format!("{line}호선 Line {line} platform"),
                pos: pl.point_at(arc),
                location_type: 0,
                parent: Some(base + parent),
            });
            platforms_of[parent].push(net.stops.len() - 1);
            stops.push(net.stops.len() - 1);
        }
        add_subway_route(seed, line, pl, &line_stations[li], stops, net);
    }

    let mut rng = Rng::derive(seed, &[tag::TRANSFER]);
    for platforms in &platforms_of {
        for &a in platforms {
            for &b in platforms {
                if a != b {
                    let walk = net.stops[a].pos.dist(net.stops[b].pos) / 1.2;
                    // Long corridors are walked briskly (and signposted).
                    let secs = (120 + walk.round() as u32 + rng.below(121) as u32).min(600);
                    net.transfers.push(Transfer {
                        from: a,
                        to: b,
                        secs,
                    });
                }
            }
        }
    }
}

fn add_subway_route(
    seed: u64,
    line: u8,
    pl: &Polyline,
    stations: &[(f64, Option<usize>)],
    stops: Vec<usize>,
    net: &mut Network,
) {
    let mut rng = Rng::derive(seed, &[tag::HEADWAY, 1000 + u64::from(line)]);
    // Line 2 is the busiest: it runs the tightest peak headway.
    let peak = if line == 2 {
        2.5
    } else {
        rng.range_f64(3.0, 4.0)
    };
    let headways = Headways {
        peak,
        midday: rng.range_f64(6.0, 8.0),
        evening: rng.range_f64(6.0, 8.0),
        late: rng.range_f64(8.0, 10.0),
        weekend: rng.range_f64(5.0, 7.0),
    };
    let route = net.routes.len();
    let id = format!("L{line}");
    let a0 = stations[0].0;
    let (fwd_stops, mut fwd_dist, shape, headsigns) = if pl.closed {
        let mut s = stops.clone();
        s.push(stops[0]);
        let mut d: Vec<f64> = stations.iter().map(|&(a, _)| a - a0).collect();
        d.push(pl.len());
        let shape = pl.slice(a0, a0 + pl.len());
        (
            s,
            d,
            shape,
            [
                "내선순환 (Inner Circle)".to_owned(),
                "외선순환 (Outer Circle)".to_owned(),
            ],
        )
    } else {
        let last = stations[stations.len() - 1].0;
        let d = stations.iter().map(|&(a, _)| a - a0).collect();
        let first_name = net.stops[stops[0]].name.clone();
        let last_name = net.stops[stops[stops.len() - 1]].name.clone();
        (stops, d, pl.slice(a0, last), [last_name, first_name])
    };
    let total = shape.last().map_or(0.0, |s| s.1);
    // Keep the last stop exactly at the shape's end despite rounding.
    if let Some(d) = fwd_dist.last_mut() {
        *d = total;
    }
    let [h0, h1] = headsigns;
    let back_stops: Vec<usize> = fwd_stops.iter().rev().copied().collect();
    let back_dist: Vec<f64> = fwd_dist.iter().rev().map(|d| total - d).collect();
    let back_shape: Vec<(P, f64)> = shape.iter().rev().map(|&(p, d)| (p, total - d)).collect();
    let p0 = push_pattern(net, route, 0, fwd_stops, fwd_dist, shape, h0, &id);
    let p1 = push_pattern(net, route, 1, back_stops, back_dist, back_shape, h1, &id);
    net.routes.push(Route {
        id,
        agency: METRO_AGENCY,
        short: line.to_string(),
        long: format!("{line}호선 Line {line}"),
        kind: Kind::Subway,
        color: subway_color(line),
        text_color: "FFFFFF",
        headways,
        patterns: vec![p0, p1],
    });
}

#[allow(clippy::too_many_arguments)]
fn push_pattern(
    net: &mut Network,
    route: usize,
    direction: u8,
    stops: Vec<usize>,
    dist: Vec<f64>,
    shape: Vec<(P, f64)>,
    headsign: String,
    route_id: &str,
) -> usize {
    net.patterns.push(Pattern {
        route,
        direction,
        stops,
        dist,
        shape,
        shape_id: format!("SH_{route_id}_{direction}"),
        headsign,
    });
    net.patterns.len() - 1
}

/// The jittered road grid.
struct Grid {
    n: i32,
    half: f64,
    spacing: f64,
    pos: Vec<P>,
}

type Node = (i32, i32);

impl Grid {
    fn new(seed: u64, params: &SizeParams) -> Self {
        let n = (2.0 * params.half / params.spacing).floor() as i32 + 1;
        let mut rng = Rng::derive(seed, &[tag::GRID]);
        let j = 0.18 * params.spacing;
        let mut pos = Vec::with_capacity((n * n) as usize);
        for y in 0..n {
            for x in 0..n {
                pos.push(P::new(
                    -params.half + f64::from(x) * params.spacing + rng.range_f64(-j, j),
                    -params.half + f64::from(y) * params.spacing + rng.range_f64(-j, j),
                ));
            }
        }
        Self {
            n,
            half: params.half,
            spacing: params.spacing,
            pos,
        }
    }

    fn index(&self, (x, y): Node) -> usize {
        (y * self.n + x) as usize
    }

    fn pos(&self, node: Node) -> P {
        self.pos[self.index(node)]
    }

    fn near(&self, p: P) -> Node {
        let f = |v: f64| (((v + self.half) / self.spacing).round() as i32).clamp(0, self.n - 1);
        (f(p.x), f(p.y))
    }

    /// Seoul's bus zone of a point: 0 downtown, then 1–7 clockwise from the north.
    fn zone(&self, p: P) -> u8 {
        if p.x.hypot(p.y) < 0.2 * self.half {
            return 0;
        }
        let bearing = p.x.atan2(p.y).to_degrees().rem_euclid(360.0);
        let sector = 360.0 / 7.0;
        1 + (((bearing + sector / 2.0).rem_euclid(360.0) / sector) as u8).min(6)
    }

    /// A random node in zone `zone` (1–7) between `r0` and `r1` half-sizes out.
    fn in_zone(&self, zone: u8, r0: f64, r1: f64, rng: &mut Rng) -> Node {
        let sector = 360.0 / 7.0;
        let b = (f64::from(zone - 1) * sector + rng.range_f64(-0.4, 0.4) * sector).to_radians();
        let r = rng.range_f64(r0, r1) * self.half;
        self.near(P::new(r * b.sin(), r * b.cos()))
    }

    /// A random node within `r` half-sizes of `c`.
    fn around(&self, c: P, r: f64, rng: &mut Rng) -> Node {
        let a = rng.range_f64(0.0, std::f64::consts::TAU);
        let d = rng.f64().sqrt() * r * self.half;
        self.near(P::new(c.x + d * a.cos(), c.y + d * a.sin()))
    }
}

/// A monotone walk along the grid from `a` to `b` in runs of a few blocks,
/// the way a bus zigzags along main roads.
fn staircase(a: Node, b: Node, rng: &mut Rng) -> Vec<Node> {
    let mut cur = a;
    let mut path = vec![a];
    let mut along_x = rng.chance(0.5);
    while cur != b {
        let (dx, dy) = (b.0 - cur.0, b.1 - cur.1);
        if dx == 0 {
            along_x = false;
        } else if dy == 0 {
            along_x = true;
        }
        for _ in 0..rng.range_i32(1, 5) {
            if along_x && cur.0 != b.0 {
                cur.0 += (b.0 - cur.0).signum();
            } else if !along_x && cur.1 != b.1 {
                cur.1 += (b.1 - cur.1).signum();
            } else {
                break;
            }
            path.push(cur);
        }
        along_x = !along_x;
    }
    path
}

/// Staircases through `waypoints`, with any loop cut out so that no stop
/// repeats.
fn chain(waypoints: &[Node], rng: &mut Rng) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    let mut seen: BTreeMap<Node, usize> = BTreeMap::new();
    for w in waypoints.windows(2) {
        for node in staircase(w[0], w[1], rng) {
            if let Some(&at) = seen.get(&node) {
                for dropped in out.drain(at + 1..) {
                    seen.remove(&dropped);
                }
            } else {
                seen.insert(node, out.len());
                out.push(node);
            }
        }
    }
    out
}

/// The perimeter of a block rectangle, closed (first node repeated last).
fn rectangle(c: Node, w: i32, h: i32, n: i32) -> Vec<Node> {
    let (x0, x1) = ((c.0 - w).max(0), (c.0 + w).min(n - 1));
    let (y0, y1) = ((c.1 - h).max(0), (c.1 + h).min(n - 1));
    let mut v = Vec::new();
    v.extend((x0..x1).map(|x| (x, y0)));
    v.extend((y0..y1).map(|y| (x1, y)));
    v.extend((x0 + 1..=x1).rev().map(|x| (x, y1)));
    v.extend((y0 + 1..=y1).rev().map(|y| (x0, y)));
    v.push((x0, y0));
    v
}

/// A bus route before it has stops and a number.
struct BusPlan {
    kind: Kind,
    path: Vec<Node>,
    from_zone: u8,
    to_zone: u8,
}

/// Picks the first free number among `candidates`, else numbers the first
/// candidate with a suffix.
fn allocate(used: &mut BTreeSet<String>, candidates: Vec<String>) -> String {
    for c in &candidates {
        if used.insert(c.clone()) {
            return c.clone();
        }
    }
    for k in 1.. {
        let c = format!("{}-{k}", candidates[0]);
        if used.insert(c.clone()) {
            return c;
        }
    }
    unreachable!("numbers run out only after u64::MAX tries")
}

/// Seoul's numbering: 간선 `<from><to><n>`, 지선 `<from><to><nn>`, 순환 `0n`,
/// 심야 `N<from><to>`.
fn route_number(plan: &BusPlan, serial: usize, used: &mut BTreeSet<String>) -> String {
    let (a, b) = (plan.from_zone, plan.to_zone);
    let candidates: Vec<String> = match plan.kind {
        Kind::Trunk => (1..10)
            .chain(0..1)
            .map(|s| format!("{a}{b}{s}"))
            .chain((0..8).flat_map(|b2| (0..10).map(move |s| format!("{a}{b2}{s}"))))
            .collect(),
        Kind::Branch => (11..100)
            .map(|s| format!("{a}{b}{s:02}"))
            .chain((0..8).flat_map(|b2| (11..100).map(move |s| format!("{a}{b2}{s:02}"))))
            .collect(),
        Kind::Night => std::iter::once(format!("N{a}{b}"))
            .chain((0..10).map(|s| format!("N{a}{b}{s}")))
            .collect(),
        _ => vec![format!("{:02}", serial + 1)],
    };
    allocate(used, candidates)
}

fn plan_buses(seed: u64, params: &SizeParams, route_mult: usize, grid: &Grid) -> Vec<BusPlan> {
    let h = params.half;
    let mut plans = Vec::new();
    let min_len = 4;
    for k in 0..params.trunk * route_mult {
        let mut rng = Rng::derive(seed, &[tag::TRUNK, k as u64]);
        let za = 1 + (k % 7) as u8;
        for attempt in 0..20 {
            let origin = grid.in_zone(za, 0.6, 0.95, &mut rng);
            let waypoints = if rng.chance(0.2) {
                // Terminates downtown, like the 1x0 routes.
                vec![origin, grid.around(P::new(0.0, 0.0), 0.1, &mut rng)]
            } else {
                let zb = 1 + ((za - 1) + rng.range_i32(2, 5) as u8) % 7;
                vec![
                    origin,
                    grid.around(P::new(0.0, 0.0), 0.2, &mut rng),
                    grid.in_zone(zb, 0.5, 0.95, &mut rng),
                ]
            };
            let path = chain(&waypoints, &mut rng);
            if path.len() >= min_len || attempt == 19 {
                plans.push(bus_plan(Kind::Trunk, path, za, grid));
                break;
            }
        }
    }
    for k in 0..params.branch * route_mult {
        let mut rng = Rng::derive(seed, &[tag::BRANCH, k as u64]);
        let za = 1 + (k % 7) as u8;
        let (lo, hi) = (
            (0.2 * h).max(4.0 * params.spacing),
            (0.45 * h).max(8.0 * params.spacing),
        );
        for attempt in 0..20 {
            let origin = grid.in_zone(za, 0.25, 0.95, &mut rng);
            let o = grid.pos(origin);
            let (len, ang) = (
                rng.range_f64(lo, hi),
                rng.range_f64(0.0, std::f64::consts::TAU),
            );
            let dest = P::new(o.x + len * ang.cos(), o.y + len * ang.sin());
            // A kink halfway makes the route meander through its neighbourhood.
            let kink = rng.range_f64(-0.3, 0.3) * len;
            let mid = P::new(
                (o.x + dest.x) / 2.0 - kink * ang.sin(),
                (o.y + dest.y) / 2.0 + kink * ang.cos(),
            );
            let path = chain(&[origin, grid.near(mid), grid.near(dest)], &mut rng);
            if path.len() >= min_len || attempt == 19 {
                plans.push(bus_plan(Kind::Branch, path, za, grid));
                break;
            }
        }
    }
    for k in 0..params.circular {
        let mut rng = Rng::derive(seed, &[tag::CIRCULAR, k as u64]);
        let c = if k == 0 {
            grid.near(P::new(0.0, 0.0))
        } else {
            let b = (k as f64 * 137.5).to_radians();
            grid.near(P::new(0.45 * h * b.sin(), 0.45 * h * b.cos()))
        };
        let size = |rng: &mut Rng| {
            ((rng.range_f64(0.08, 0.15) * h / params.spacing).round() as i32).max(2)
        };
        let (w, hh) = (size(&mut rng), size(&mut rng));
        let path = rectangle(c, w, hh, grid.n);
        plans.push(bus_plan(Kind::Circular, path, 0, grid));
    }
    const NIGHT_ORIGINS: [u8; 7] = [1, 2, 6, 3, 7, 5, 4];
    for k in 0..params.night {
        let mut rng = Rng::derive(seed, &[tag::NIGHT, k as u64]);
        let za = NIGHT_ORIGINS[k % 7];
        let zb = 1 + ((za - 1) + 3 + (k / 7 % 2) as u8) % 7;
        let path = chain(
            &[
                grid.in_zone(za, 0.6, 0.95, &mut rng),
                grid.around(P::new(0.0, 0.0), 0.15, &mut rng),
                grid.in_zone(zb, 0.6, 0.95, &mut rng),
            ],
            &mut rng,
        );
        plans.push(bus_plan(Kind::Night, path, za, grid));
    }
    plans
}

fn bus_plan(kind: Kind, path: Vec<Node>, fallback_zone: u8, grid: &Grid) -> BusPlan {
    let first = grid.zone(grid.pos(path[0]));
    let to_zone = grid.zone(grid.pos(path[path.len() - 1]));
    // Numbers of trunk, branch and night routes start with a non-zero zone.
    let from_zone = if first == 0 { fallback_zone } else { first };
    BusPlan {
        kind,
        path,
        from_zone,
        to_zone,
    }
}

fn bus_headways(kind: Kind, rng: &mut Rng) -> Headways {
    let (peak, midday, evening) = match kind {
        Kind::Trunk => (
            rng.range_f64(5.0, 7.0),
            rng.range_f64(10.0, 12.0),
            rng.range_f64(14.0, 16.0),
        ),
        Kind::Night => {
            // Seoul's busiest N routes: a bus every quarter hour or so.
            let h = rng.range_f64(12.0, 18.0);
            (h, h, h)
        }
        _ => (
            rng.range_f64(6.0, 8.0),
            rng.range_f64(10.0, 12.0),
            rng.range_f64(14.0, 16.0),
        ),
    };
    Headways {
        peak,
        midday,
        evening,
        late: evening * rng.range_f64(1.2, 1.4),
        weekend: midday * rng.range_f64(1.05, 1.2),
    }
}

fn build_buses(
    seed: u64,
    params: &SizeParams,
    route_mult: usize,
    gaz: &Gazetteer,
    names: &mut NameSet,
    net: &mut Network,
) {
    let grid = Grid::new(seed, params);
    let plans = plan_buses(seed, params, route_mult, &grid);

    // A stop at every intersection some route passes.
    let used: BTreeSet<usize> = plans
        .iter()
        .flat_map(|p| p.path.iter().map(|&n| grid.index(n)))
        .collect();
    let central = used.iter().copied().min_by(|&a, &b| {
        let o = P::new(0.0, 0.0);
        grid.pos[a]
            .dist(o)
            .total_cmp(&grid.pos[b].dist(o))
            .then(a.cmp(&b))
    });
    let central_name = names.claim(Name::new("서울시청", "Seoul City Hall"));
    let mut stop_of_node: BTreeMap<usize, usize> = BTreeMap::new();
    let mut serial = [0u32; 8];
    for (k, &node) in used.iter().enumerate() {
        let p = grid.pos[node];
        let zone = grid.zone(p);
        serial[usize::from(zone)] += 1;
        let id = format!("{zone}{:04}", serial[usize::from(zone)]);
        let name = match (&central_name, Some(node) == central) {
            (Some(n), true) => n.clone(),
            // One stop in sixteen names two landmarks, which also makes
            // sure that every feed exercises CSV quoting.
            _ => names.bus_stop(
                gaz,
                p,
                k % 16 == 5,
                &mut Rng::derive(seed, &[tag::STOP_NAME, node as u64]),
            ),
        };
        net.stops.push(Stop {
            code: id.clone(),
            id,
            name: name.full(),
            desc: String::new(),
            pos: p,
            location_type: 0,
            parent: None,
        });
        stop_of_node.insert(node, net.stops.len() - 1);
    }

    let mut numbers = BTreeSet::new();
    let mut circular_serial = 0;
    for (k, plan) in plans.iter().enumerate() {
        let short = route_number(plan, circular_serial, &mut numbers);
        if plan.kind == Kind::Circular {
            circular_serial += 1;
        }
        let id = format!("B{short}");
        let route = net.routes.len();
        let stops: Vec<usize> = plan
            .path
            .iter()
            .map(|&n| stop_of_node[&grid.index(n)])
            .collect();
        let pts: Vec<P> = plan.path.iter().map(|&n| grid.pos(n)).collect();
        let first = stops[0];
        let last = stops[stops.len() - 1];
        let ko = |s: usize| {
            net.stops[s]
                .name
                .split(" (")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let (long, headsigns) = if plan.kind == Kind::Circular {
            let h = format!("{} 순환 (Circular)", ko(first));
            (format!("{} 순환", ko(first)), vec![h])
        } else {
            (
                format!("{} ↔ {}", ko(first), ko(last)),
                vec![net.stops[last].name.clone(), net.stops[first].name.clone()],
            )
        };
        let mut patterns = Vec::new();
        for (dir, headsign) in headsigns.into_iter().enumerate() {
            let (s, p): (Vec<usize>, Vec<P>) = if dir == 0 {
                (stops.clone(), pts.clone())
            } else {
                (
                    stops.iter().rev().copied().collect(),
                    pts.iter().rev().copied().collect(),
                )
            };
            let mut acc = 0.0;
            let mut dist = Vec::with_capacity(p.len());
            for (i, q) in p.iter().enumerate() {
                if i > 0 {
                    acc += p[i - 1].dist(*q);
                }
                dist.push(acc);
            }
            let shape = p.iter().copied().zip(dist.iter().copied()).collect();
            patterns.push(push_pattern(
                net, route, dir as u8, s, dist, shape, headsign, &id,
            ));
        }
        let (color, text_color) = match plan.kind {
            Kind::Trunk => ("3C5AA6", "FFFFFF"),
            Kind::Branch => ("5BB025", "FFFFFF"),
            Kind::Circular => ("F2B70A", "000000"),
            _ => ("1B2C5A", "FFFFFF"),
        };
        let mut rng = Rng::derive(seed, &[tag::HEADWAY, k as u64]);
        net.routes.push(Route {
            id,
            agency: BUS_AGENCY,
            short,
            long,
            kind: plan.kind,
            color,
            text_color,
            headways: bus_headways(plan.kind, &mut rng),
            patterns,
        });
    }
}
