//! Synthetic vehicle positions: every trip of a network driven along its
//! shape on a given day, with random running times, dwells and GPS noise.
//!
//! For benchmarks and for scoring scenarios on generated cities, until a
//! real simulator publishes positions. Deterministic: the same arguments
//! give the same positions (a private SplitMix64, like `cityos-sim`'s, so a
//! dependency update cannot change them).
//!
//! Each trip's vehicle leaves its first stop a little late, then drives each
//! link in its timetable time scaled by a factor that is shared by the
//! whole network for the hour (traffic), by the trip (driver), and drawn
//! afresh per link (lights), then dwells at the stop. Delays therefore build
//! up along a trip the way they do on streets, and something can be learned
//! from other vehicles.

use std::ops::Range;

use jiff::civil::Date;

use cityos_transit::Network;

use crate::decode::PositionRecord;
use crate::index::TripIndex;

/// What to synthesise.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// The service date whose trips run.
    pub date: Date,
    /// Only positions in this window, POSIX seconds.
    pub window: Range<i64>,
    /// Seconds between two positions of one vehicle.
    pub every_s: i64,
    /// GPS error, metres (standard deviation per axis).
    pub gps_error_m: f64,
    /// Seed of the random draws.
    pub seed: u64,
}

/// Drives every trip of `network` running on `options.date` and returns
/// the positions inside the window, in time order. Trip `t`'s vehicle is
/// called `veh-<trip_id>`.
pub fn drive(network: &Network, index: &TripIndex, options: &SynthOptions) -> Vec<PositionRecord> {
    let data = network.data();
    let Some(origin) = network.instant(options.date, 0).map(|t| t.as_second()) else {
        return Vec::new();
    };
    let mut rng = SplitMix64(options.seed);
    // Network-wide traffic by hour of the service day: one draw per hour.
    let traffic: Vec<f64> = (0..48).map(|_| (0.15 * rng.normal()).exp()).collect();
    let every = options.every_s.max(1);
    let mut out = Vec::new();
    for trip in 0..data.trips.len() as u32 {
        if !data
            .services
            .is_active(data.trips.service[trip as usize], options.date)
        {
            continue;
        }
        let range = data.trips.stop_time_range(trip);
        let (Some(&first), Some(&last)) = (
            data.stop_times.departure.get(range.start),
            data.stop_times.arrival.get(range.end.saturating_sub(1)),
        ) else {
            continue;
        };
        let (start, end) = (origin + i64::from(first), origin + i64::from(last));
        // Trips outside the window (with an hour's slack for delays) are skipped
        // before any work or random draw; the draws below are per trip, seeded
        // by the trip, so the window does not change a trip's run.
        if end + 3600 < options.window.start || start > options.window.end {
            continue;
        }
        let Some((line, dist)) = index.geometry(trip) else {
            continue;
        };
        let mut rng =
            SplitMix64(options.seed ^ (u64::from(trip) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let driver = (0.08 * rng.normal()).exp();
        // Arrival and departure at each stop.
        let n = range.len();
        let mut times = Vec::with_capacity(n);
        let mut clock = start as f64 + 90.0 * rng.uniform();
        for i in 0..n {
            let arrival = clock;
            let dwell = if i == 0 || i + 1 == n {
                0.0
            } else {
                5.0 + 25.0 * rng.uniform()
            };
            times.push((arrival, arrival + dwell));
            if i + 1 < n {
                let scheduled = f64::from(
                    data.stop_times.arrival[range.start + i + 1]
                        .saturating_sub(data.stop_times.departure[range.start + i]),
                )
                .max(10.0);
                let hour = ((arrival - origin as f64) / 3600.0).clamp(0.0, 47.0) as usize;
                let lights = (0.25 * rng.normal()).exp();
                clock = arrival + dwell + scheduled * traffic[hour] * driver * lights;
            }
        }
        let vehicle = format!("veh-{}", data.trips.ids.id(trip));
        let trip_id = data.trips.ids.id(trip).to_owned();
        let phase = (rng.uniform() * every as f64) as i64;
        let (t0, t1) = (times[0].0 as i64 - 120, times[n - 1].0 as i64);
        let mut t = t0 + phase;
        while t <= t1 {
            if options.window.contains(&t) {
                let d = distance_at(&times, dist, t as f64);
                let (lat, lon) = line.point_at(d);
                let (ex, ey) = (
                    options.gps_error_m * rng.normal(),
                    options.gps_error_m * rng.normal(),
                );
                let (lat, lon) = offset(lat, lon, ex, ey);
                out.push(PositionRecord {
                    vehicle_id: vehicle.clone(),
                    trip_id: trip_id.clone(),
                    start_date: Some(options.date),
                    latitude: lat,
                    longitude: lon,
                    timestamp: Some(t),
                    ..PositionRecord::default()
                });
            }
            t += every;
        }
    }
    out.sort_by_key(|p| p.timestamp);
    out
}

/// Where a vehicle with these stop (arrival, departure) times is at `t`.
fn distance_at(times: &[(f64, f64)], dist: &[f32], t: f64) -> f32 {
    let k = times.partition_point(|&(arrival, _)| arrival <= t);
    if k == 0 {
        return dist[0];
    }
    let (arrival, departure) = times[k - 1];
    if k == times.len() || t <= departure {
        return dist[k - 1];
    }
    let next = times[k].0;
    let f = ((t - departure) / (next - departure).max(1e-3)).clamp(0.0, 1.0);
    let _ = arrival;
    dist[k - 1] + (dist[k] - dist[k - 1]) * f as f32
}

/// Moves a WGS-84 point by metres east and north.
fn offset(lat: f64, lon: f64, east: f64, north: f64) -> (f64, f64) {
    let per_degree = 6_371_008.8_f64.to_radians();
    (
        lat + north / per_degree,
        lon + east / (per_degree * lat.to_radians().cos()),
    )
}

/// SplitMix64: a tiny, well-mixed deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
