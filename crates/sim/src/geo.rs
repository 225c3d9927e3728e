//! Planar geometry in metres around Seoul City Hall, and its projection to WGS 84.

/// Latitude of the city centre (Seoul City Hall).
pub(crate) const CENTER_LAT: f64 = 37.5665;
/// Longitude of the city centre (Seoul City Hall).
pub(crate) const CENTER_LON: f64 = 126.9780;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_320.0;

/// A point in metres east (`x`) and north (`y`) of the centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct P {
    pub x: f64,
    pub y: f64,
}

impl P {
    pub(crate) fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// Euclidean distance in metres.
    pub(crate) fn dist(self, o: P) -> f64 {
        (self.x - o.x).hypot(self.y - o.y)
    }

    /// `(lat, lon)` by an equirectangular projection: within ~20 km of the
    /// centre it is off by far less than a stop's size, and it keeps planar
    /// distances (used for `shape_dist_traveled`) consistent with the map.
    pub(crate) fn lat_lon(self) -> (f64, f64) {
        let lat = CENTER_LAT + self.y / M_PER_DEG;
        let lon = CENTER_LON + self.x / (M_PER_DEG * CENTER_LAT.to_radians().cos());
        (lat, lon)
    }

    fn lerp(self, o: P, t: f64) -> P {
        P::new(self.x + (o.x - self.x) * t, self.y + (o.y - self.y) * t)
    }
}

/// A polyline with arc lengths; a closed one wraps around.
#[derive(Debug, Clone)]
pub(crate) struct Polyline {
    /// Vertices; for a closed line the first vertex is repeated at the end.
    pub pts: Vec<P>,
    /// Arc length at each vertex.
    pub cum: Vec<f64>,
    pub closed: bool,
}

impl Polyline {
    pub(crate) fn new(mut pts: Vec<P>, closed: bool) -> Self {
        if closed {
            pts.push(pts[0]);
        }
        let mut cum = Vec::with_capacity(pts.len());
        let mut acc = 0.0;
        for (i, p) in pts.iter().enumerate() {
            if i > 0 {
                acc += pts[i - 1].dist(*p);
            }
            cum.push(acc);
        }
        Self { pts, cum, closed }
    }

    /// Total length in metres.
    pub(crate) fn len(&self) -> f64 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    /// The point at arc length `s` (wrapped if closed, clamped if open).
    pub(crate) fn point_at(&self, s: f64) -> P {
        let l = self.len();
        let s = if self.closed {
            s.rem_euclid(l)
        } else {
            s.clamp(0.0, l)
        };
        let i = self
            .cum
            .partition_point(|&c| c <= s)
            .clamp(1, self.pts.len() - 1);
        let seg = self.cum[i] - self.cum[i - 1];
        let t = if seg > 0.0 {
            (s - self.cum[i - 1]) / seg
        } else {
            0.0
        };
        self.pts[i - 1].lerp(self.pts[i], t)
    }

    /// The part between arc lengths `s0 < s1` as points with their distance
    /// from `s0`. On a closed line `s1` may pass the end (up to `s0 + len`).
    pub(crate) fn slice(&self, s0: f64, s1: f64) -> Vec<(P, f64)> {
        let l = self.len();
        let mut out = vec![(self.point_at(s0), 0.0)];
        let laps: &[f64] = if self.closed {
            &[0.0, 1.0, 2.0]
        } else {
            &[0.0]
        };
        for &k in laps {
            for &c in &self.cum {
                let a = c + k * l;
                // Vertices right at a cut are dropped: the cut point stands for them.
                if a > s0 + 0.5 && a < s1 - 0.5 && out.last().is_some_and(|o| a - s0 > o.1) {
                    out.push((self.point_at(a), a - s0));
                }
            }
        }
        out.push((self.point_at(s1), s1 - s0));
        out
    }
}

/// Crossing of segments `a0-a1` and `b0-b1` as fractions along each.
pub(crate) fn segment_crossing(a0: P, a1: P, b0: P, b1: P) -> Option<(f64, f64)> {
    let r = P::new(a1.x - a0.x, a1.y - a0.y);
    let s = P::new(b1.x - b0.x, b1.y - b0.y);
    let den = r.x * s.y - r.y * s.x;
    if den.abs() < 1e-9 {
        return None;
    }
    let q = P::new(b0.x - a0.x, b0.y - a0.y);
    let t = (q.x * s.y - q.y * s.x) / den;
    let u = (q.x * r.y - q.y * r.x) / den;
    ((0.0..1.0).contains(&t) && (0.0..1.0).contains(&u)).then_some((t, u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyline_arcs_and_slices() {
        let sq = Polyline::new(
            vec![
                P::new(0.0, 0.0),
                P::new(100.0, 0.0),
                P::new(100.0, 100.0),
                P::new(0.0, 100.0),
            ],
            true,
        );
        assert_eq!(sq.len(), 400.0);
        assert_eq!(sq.point_at(450.0), P::new(50.0, 0.0));
        let s = sq.slice(350.0, 450.0);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1], (P::new(0.0, 0.0), 50.0));
        assert_eq!(s[2], (P::new(50.0, 0.0), 100.0));
        let x = segment_crossing(
            P::new(0.0, 0.0),
            P::new(10.0, 10.0),
            P::new(0.0, 10.0),
            P::new(10.0, 0.0),
        );
        assert_eq!(x, Some((0.5, 0.5)));
        let (lat, lon) = P::new(0.0, 0.0).lat_lon();
        assert_eq!((lat, lon), (CENTER_LAT, CENTER_LON));
    }
}
