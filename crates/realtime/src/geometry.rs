//! Polylines on a local metric plane, and projecting points onto them.
//!
//! Each polyline carries its own equirectangular plane centred on itself,
//! so metres are accurate to a fraction of a percent anywhere on a city-size
//! shape, and converting a GPS fix costs two multiplications instead of
//! trigonometry. Coordinates are `f32` metres: a 50 km shape keeps
//! millimetre resolution, and the hot loop reads half the memory.

/// Mean Earth radius in metres (the same value `cityos_transit` uses).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// An equirectangular projection around one point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plane {
    lat0: f64,
    lon0: f64,
    kx: f64,
    ky: f64,
}

impl Plane {
    /// A plane centred on (`lat0`, `lon0`).
    pub(crate) fn new(lat0: f64, lon0: f64) -> Plane {
        let ky = EARTH_RADIUS_M.to_radians();
        Plane {
            lat0,
            lon0,
            kx: ky * lat0.to_radians().cos(),
            ky,
        }
    }

    /// The WGS-84 point at (`x`, `y`) metres east and north of the centre.
    pub(crate) fn unproject(&self, x: f64, y: f64) -> (f64, f64) {
        (self.lat0 + y / self.ky, self.lon0 + x / self.kx)
    }

    /// Metres east and north of the centre.
    #[inline]
    pub(crate) fn project(&self, lat: f64, lon: f64) -> (f32, f32) {
        (
            ((lon - self.lon0) * self.kx) as f32,
            ((lat - self.lat0) * self.ky) as f32,
        )
    }
}

/// Where a point falls on a polyline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Projection {
    /// The segment index (from point `seg` to `seg + 1`).
    pub seg: u32,
    /// Distance along the polyline, metres.
    pub along: f32,
    /// Distance from the polyline, metres.
    pub offset: f32,
}

/// A polyline with cumulative distances, on its own plane.
#[derive(Debug, Clone)]
pub(crate) struct Polyline {
    pub plane: Plane,
    x: Vec<f32>,
    y: Vec<f32>,
    /// Distance along the line at each point; `cum[0] == 0`.
    cum: Vec<f32>,
}

impl Polyline {
    /// Builds a polyline from WGS-84 points; `None` with fewer than two
    /// distinct finite points. Repeated points are dropped so every segment
    /// has a length.
    pub(crate) fn new(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<Polyline> {
        let (mut n, mut lat_sum, mut lon_sum) = (0usize, 0.0, 0.0);
        for (lat, lon) in points.clone() {
            if lat.is_finite() && lon.is_finite() {
                n += 1;
                lat_sum += lat;
                lon_sum += lon;
            }
        }
        if n < 2 {
            return None;
        }
        let plane = Plane::new(lat_sum / n as f64, lon_sum / n as f64);
        let (mut x, mut y, mut cum): (Vec<f32>, Vec<f32>, Vec<f32>) =
            (Vec::new(), Vec::new(), Vec::new());
        for (lat, lon) in points {
            if !(lat.is_finite() && lon.is_finite()) {
                continue;
            }
            let (px, py) = plane.project(lat, lon);
            match (x.last(), y.last(), cum.last()) {
                (Some(&lx), Some(&ly), Some(&lc)) => {
                    let step = (px - lx).hypot(py - ly);
                    if step < 0.01 {
                        continue;
                    }
                    cum.push(lc + step);
                }
                _ => cum.push(0.0),
            }
            x.push(px);
            y.push(py);
        }
        (x.len() >= 2).then_some(Polyline { plane, x, y, cum })
    }

    /// Total length in metres.
    pub(crate) fn length(&self) -> f32 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    /// Number of segments.
    pub(crate) fn segments(&self) -> usize {
        self.x.len() - 1
    }

    /// The segment containing distance `along` (clamped to the line).
    pub(crate) fn segment_at(&self, along: f32) -> u32 {
        let i = self.cum.partition_point(|&c| c <= along);
        i.saturating_sub(1).min(self.segments() - 1) as u32
    }

    /// The WGS-84 point at distance `along` (clamped to the line).
    fn point_at(&self, along: f32) -> (f64, f64) {
        let seg = self.segment_at(along) as usize;
        let len = (self.cum[seg + 1] - self.cum[seg]).max(1e-3);
        let u = ((along - self.cum[seg]) / len).clamp(0.0, 1.0);
        let x = self.x[seg] + u * (self.x[seg + 1] - self.x[seg]);
        let y = self.y[seg] + u * (self.y[seg + 1] - self.y[seg]);
        self.plane.unproject(f64::from(x), f64::from(y))
    }

    /// The part of the line from `from` to `to` metres along, as WGS-84
    /// (latitude, longitude) points: both ends and every vertex between.
    pub(crate) fn slice(&self, from: f32, to: f32) -> Vec<(f64, f64)> {
        let mut out = vec![self.point_at(from)];
        let first = self.cum.partition_point(|&c| c <= from);
        let last = self.cum.partition_point(|&c| c < to);
        for i in first..last {
            out.push(
                self.plane
                    .unproject(f64::from(self.x[i]), f64::from(self.y[i])),
            );
        }
        out.push(self.point_at(to));
        out
    }

    /// Projects (`px`, `py`) onto segment `seg`.
    #[inline]
    pub(crate) fn project_on(&self, seg: usize, px: f32, py: f32) -> Projection {
        let (ax, ay) = (self.x[seg], self.y[seg]);
        let (dx, dy) = (self.x[seg + 1] - ax, self.y[seg + 1] - ay);
        let len2 = dx * dx + dy * dy;
        let u = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
        let (qx, qy) = (ax + u * dx, ay + u * dy);
        let seg_len = self.cum[seg + 1] - self.cum[seg];
        Projection {
            seg: seg as u32,
            along: self.cum[seg] + u * seg_len,
            offset: (px - qx).hypot(py - qy),
        }
    }

    /// The nearest match at or after distance `from`, scanning forward no
    /// further than `to`.
    ///
    /// Matching prefers the first acceptable place ahead of the last known
    /// one over a slightly nearer one further on, which is what keeps loops
    /// and out-and-back shapes from jumping to their other branch: once a
    /// match within `accept` metres is found, the scan stops `settle`
    /// metres of shape after it (the fix cannot be better explained further
    /// on unless the shape comes back, and coming back is the later branch).
    pub(crate) fn locate_forward(
        &self,
        px: f32,
        py: f32,
        from: f32,
        to: f32,
        accept: f32,
        settle: f32,
    ) -> Option<Projection> {
        let segments = self.segments();
        let mut seg = self.segment_at(from) as usize;
        let mut best: Option<Projection> = None;
        while seg < segments && self.cum[seg] <= to {
            let mut p = self.project_on(seg, px, py);
            if p.along < from {
                // The part of the first segment behind `from` is not a candidate.
                p = Projection {
                    along: from,
                    offset: self.offset_at(seg, from, px, py),
                    ..p
                };
            }
            if best.is_none_or(|b| p.offset < b.offset) {
                best = Some(p);
            }
            if let Some(b) = best
                && b.offset <= accept
                && self.cum[seg] > b.along + settle
            {
                break;
            }
            seg += 1;
        }
        best
    }

    /// Distance from (`px`, `py`) to the point at `along` on segment `seg`.
    fn offset_at(&self, seg: usize, along: f32, px: f32, py: f32) -> f32 {
        let seg_len = self.cum[seg + 1] - self.cum[seg];
        let u = ((along - self.cum[seg]) / seg_len).clamp(0.0, 1.0);
        let qx = self.x[seg] + u * (self.x[seg + 1] - self.x[seg]);
        let qy = self.y[seg] + u * (self.y[seg + 1] - self.y[seg]);
        (px - qx).hypot(py - qy)
    }

    /// Every place where the polyline passes locally nearest to the point
    /// (local minima of the distance along the line), nearest first, at
    /// most `limit`.
    pub(crate) fn candidates(&self, px: f32, py: f32, limit: usize) -> Vec<Projection> {
        let segments = self.segments();
        let mut out: Vec<Projection> = Vec::new();
        let mut previous: Option<Projection> = None;
        let mut descending = true;
        for seg in 0..segments {
            let p = self.project_on(seg, px, py);
            if let Some(prev) = previous {
                // A local minimum ends where the distance starts rising again.
                if p.offset > prev.offset + 1e-3 {
                    if descending {
                        out.push(prev);
                    }
                    descending = false;
                } else if p.offset < prev.offset - 1e-3 {
                    descending = true;
                }
            }
            previous = Some(p);
        }
        if let Some(last) = previous
            && descending
        {
            out.push(last);
        }
        out.sort_by(|a, b| a.offset.total_cmp(&b.offset));
        out.truncate(limit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straight line 1 km east, then back west 20 m further north: an out-and-back.
    fn out_and_back() -> Polyline {
        let lat0: f64 = 37.5665;
        let north = 20.0 / EARTH_RADIUS_M.to_radians();
        let east = 1000.0 / (EARTH_RADIUS_M.to_radians() * lat0.to_radians().cos());
        Polyline::new(
            [
                (lat0, 126.978),
                (lat0, 126.978 + east),
                (lat0 + north, 126.978 + east),
                (lat0 + north, 126.978),
            ]
            .into_iter(),
        )
        .unwrap()
    }

    #[test]
    fn length_is_in_metres() {
        let line = out_and_back();
        assert!((line.length() - 2020.0).abs() < 2.0, "{}", line.length());
    }

    #[test]
    fn forward_location_keeps_to_the_current_branch() {
        let line = out_and_back();
        // A point between the two branches, 300 m along: outbound when we
        // come from the start, inbound once past the turn.
        let (px, py) = (line.x[0] + 300.0, line.y[0] + 9.0);
        let out = line
            .locate_forward(px, py, 0.0, 2020.0, 50.0, 100.0)
            .unwrap();
        assert!((out.along - 300.0).abs() < 1.0, "{out:?}");
        let back = line
            .locate_forward(px, py, 1100.0, 2020.0, 50.0, 100.0)
            .unwrap();
        assert!((back.along - 1720.0).abs() < 1.0, "{back:?}");
    }

    #[test]
    fn candidates_find_both_branches() {
        let line = out_and_back();
        let (px, py) = (line.x[0] + 300.0, line.y[0] + 9.0);
        let c = line.candidates(px, py, 4);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!((c[0].along - 300.0).abs() < 1.0, "nearest first: {c:?}");
        assert!((c[1].along - 1720.0).abs() < 1.0);
    }
}
