//! Points, distances, district polygons and the H3 hexagons of hotspots.

use h3o::{CellIndex, LatLng, Resolution};
use serde_json::{Value, json};

/// `(lat, lon)` in WGS84 degrees.
pub type Point = (f64, f64);

/// Resolution at which each complaint's cell is stored (about 66 m across);
/// coarser hotspot grids are its parents.
pub const STORED_RESOLUTION: u8 = 10;

/// Great-circle distance in metres.
pub fn distance_m(a: Point, b: Point) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Whether `p` is inside the ring `polygon` (even–odd rule).
pub fn contains(polygon: &[Point], p: Point) -> bool {
    let mut inside = false;
    let mut j = polygon.len().wrapping_sub(1);
    for (i, &(yi, xi)) in polygon.iter().enumerate() {
        let (yj, xj) = polygon[j];
        if (yi > p.0) != (yj > p.0) && p.1 < (xj - xi) * (p.0 - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Degrees of latitude and longitude spanned by `metres` around `at`, for
/// a bounding-box pre-filter before exact distances.
pub fn degrees_around(at: Point, metres: f64) -> (f64, f64) {
    let dlat = metres / 111_320.0;
    let dlon = metres / (111_320.0 * at.0.to_radians().cos().max(0.01));
    (dlat, dlon)
}

/// The stored H3 cell of a point, as the integer kept in the store.
pub fn cell_of(at: Point) -> Option<i64> {
    let resolution = Resolution::try_from(STORED_RESOLUTION).ok()?;
    let cell = LatLng::new(at.0, at.1).ok()?.to_cell(resolution);
    i64::try_from(u64::from(cell)).ok()
}

/// Counts per stored cell, regrouped at `resolution` (0–10), as a GeoJSON
/// FeatureCollection of hexagons with `count`, busiest first.
pub fn hotspots(cells: &[(i64, i64)], resolution: u8) -> Value {
    let Ok(res) = Resolution::try_from(resolution.min(STORED_RESOLUTION)) else {
        return json!({"type": "FeatureCollection", "features": []});
    };
    let mut counts: std::collections::HashMap<CellIndex, i64> = std::collections::HashMap::new();
    for &(cell, n) in cells {
        let Some(parent) = u64::try_from(cell)
            .ok()
            .and_then(|c| CellIndex::try_from(c).ok())
            .and_then(|c| c.parent(res))
        else {
            continue;
        };
        *counts.entry(parent).or_default() += n;
    }
    let mut counts: Vec<(CellIndex, i64)> = counts.into_iter().collect();
    counts.sort_by_key(|&(c, n)| (-n, u64::from(c)));
    let features: Vec<Value> = counts
        .into_iter()
        .map(|(cell, n)| {
            let mut ring: Vec<[f64; 2]> =
                cell.boundary().iter().map(|p| [p.lng(), p.lat()]).collect();
            if let Some(&first) = ring.first() {
                ring.push(first);
            }
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"h3": cell.to_string(), "resolution": resolution, "count": n},
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_values() {
        // One thousandth of a degree of latitude is about 111 m anywhere.
        let d = distance_m((37.5665, 126.978), (37.5675, 126.978));
        assert!((d - 111.2).abs() < 0.5, "{d}");
        assert_eq!(distance_m((37.5, 127.0), (37.5, 127.0)), 0.0);
    }

    #[test]
    fn polygons_contain_their_inside_only() {
        let square = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)];
        assert!(contains(&square, (0.5, 0.5)));
        assert!(!contains(&square, (1.5, 0.5)));
        assert!(!contains(&[], (0.0, 0.0)));
    }

    #[test]
    fn hotspots_merge_nearby_cells_into_their_parent_hexagon() {
        let a = cell_of((37.5665, 126.978)).unwrap();
        let b = cell_of((37.5667, 126.9782)).unwrap();
        let far = cell_of((37.60, 127.05)).unwrap();
        let geo = hotspots(&[(a, 2), (b, 1), (far, 1)], 7);
        let features = geo["features"].as_array().unwrap();
        assert_eq!(features.len(), 2, "{geo}");
        assert_eq!(features[0]["properties"]["count"], 3);
        let ring = features[0]["geometry"]["coordinates"][0]
            .as_array()
            .unwrap();
        assert_eq!(ring.first(), ring.last(), "rings are closed");
    }
}
