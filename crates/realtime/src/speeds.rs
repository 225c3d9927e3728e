//! Road speeds from the vehicles themselves, as TOPIS shows them: every
//! road segment between two consecutive stops, how fast vehicles drive it
//! now and how fast they usually do at this hour.
//!
//! A segment's speed is its length along the shape over the time from the
//! departure at its first stop to the arrival at the next, as the engine
//! detected them ([`crate::StopEvent`]), so dwell time never counts as slow
//! traffic. Only observed moments count: a stop passed between two pings
//! has an interpolated time that would smear one segment's delay over its
//! neighbours.

use jiff::civil::Date;
use rustc_hash::FxHashMap;

use crate::detect::EventKind;
use crate::engine::StopEvent;
use crate::index::TripIndex;

/// How long a live observation counts at full weight; its weight halves
/// every this many seconds after that.
const LIVE_HALF_LIFE_S: f64 = 600.0;
/// Observations older than this are not live any more.
const LIVE_WINDOW_S: f64 = 1800.0;
/// Speeds outside this range (km/h) are detection errors, not traffic.
const PLAUSIBLE_KMH: std::ops::Range<f64> = 1.0..130.0;

/// How congested a road is, by Seoul TOPIS's thresholds for ordinary
/// roads: smooth at 25 km/h or more, slow from 15, congested below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Congestion {
    /// 25 km/h or faster (원활).
    Smooth,
    /// 15 to 25 km/h (서행).
    Slow,
    /// Below 15 km/h (정체).
    Congested,
}

impl Congestion {
    /// The level of a speed in km/h.
    pub fn of(kmh: f64) -> Congestion {
        if kmh >= 25.0 {
            Congestion::Smooth
        } else if kmh >= 15.0 {
            Congestion::Slow
        } else {
            Congestion::Congested
        }
    }
}

/// One road segment's speeds.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadSpeed {
    /// The stop the segment starts at (index into the network's stops).
    pub from_stop: u32,
    /// The stop it ends at.
    pub to_stop: u32,
    /// A trip that drives it, and the index of `from_stop` in that trip, to
    /// draw it ([`TripIndex::path_between`]).
    pub trip: u32,
    /// Index of `from_stop` in `trip`.
    pub stop_index: u32,
    /// Length along the shape, metres.
    pub metres: f64,
    /// Speed of the last half hour, weighted towards the latest, km/h.
    pub live_kmh: Option<f64>,
    /// Mean speed at this hour of the day over everything seen, km/h.
    pub typical_kmh: Option<f64>,
    /// Traversals seen in total.
    pub samples: u32,
    /// When it was last driven, POSIX seconds.
    pub updated: f64,
}

#[derive(Debug, Clone)]
struct Segment {
    trip: u32,
    stop_index: u32,
    metres: f64,
    /// (time, km/h) of recent traversals, oldest first.
    recent: Vec<(f64, f64)>,
    /// Sum of speeds and count, per local hour of the day.
    by_hour: [(f64, u32); 24],
    samples: u32,
    updated: f64,
}

/// Road speeds, learned from detected stop events.
#[derive(Debug, Default)]
pub struct RoadSpeeds {
    segments: FxHashMap<(u32, u32), Segment>,
    /// Each run's last observed departure: (trip, date) → (stop index, time).
    departed: FxHashMap<(u32, Date), (u32, f64)>,
}

impl RoadSpeeds {
    /// An empty map.
    pub fn new() -> RoadSpeeds {
        RoadSpeeds::default()
    }

    /// Takes one stop event; `hour` is the local hour of the day it happened.
    pub fn observe(&mut self, index: &TripIndex, event: &StopEvent, hour: u8) {
        if !event.observed {
            return;
        }
        let key = (event.trip, event.date);
        match event.kind {
            EventKind::Departure => {
                self.departed.insert(key, (event.stop_index, event.time));
            }
            EventKind::Arrival => {
                let Some((from, left)) = self.departed.remove(&key) else {
                    return;
                };
                if from + 1 != event.stop_index {
                    return;
                }
                let Some(dist) = index.stop_distances(event.trip) else {
                    return;
                };
                let (Some(&d0), Some(&d1)) =
                    (dist.get(from as usize), dist.get(event.stop_index as usize))
                else {
                    return;
                };
                let (metres, seconds) = (f64::from(d1 - d0), event.time - left);
                if metres < 20.0 || seconds <= 0.0 {
                    return;
                }
                let kmh = metres / seconds * 3.6;
                if !PLAUSIBLE_KMH.contains(&kmh) {
                    return;
                }
                let Some((from_stop, _)) = index.link_stops_of(event.trip, from) else {
                    return;
                };
                let segment = self
                    .segments
                    .entry((from_stop, event.stop))
                    .or_insert_with(|| Segment {
                        trip: event.trip,
                        stop_index: from,
                        metres,
                        recent: Vec::new(),
                        by_hour: [(0.0, 0); 24],
                        samples: 0,
                        updated: event.time,
                    });
                segment
                    .recent
                    .retain(|&(t, _)| t >= event.time - LIVE_WINDOW_S);
                segment.recent.push((event.time, kmh));
                let slot = &mut segment.by_hour[usize::from(hour % 24)];
                slot.0 += kmh;
                slot.1 += 1;
                segment.samples += 1;
                segment.updated = segment.updated.max(event.time);
            }
        }
    }

    /// Forgets runs that left a stop long ago and never arrived at the next
    /// (they ended, or their vehicle went silent).
    pub fn expire(&mut self, now: f64) {
        self.departed
            .retain(|_, &mut (_, t)| t >= now - LIVE_WINDOW_S);
    }

    /// Every segment seen so far, with its live speed as of `now` and its
    /// typical speed at local hour `hour`.
    pub fn speeds(&self, now: f64, hour: u8) -> impl Iterator<Item = RoadSpeed> + '_ {
        self.segments.iter().map(move |(&(from_stop, to_stop), s)| {
            let (mut sum, mut weight) = (0.0, 0.0);
            for &(t, kmh) in &s.recent {
                let age = now - t;
                if (0.0..LIVE_WINDOW_S).contains(&age) {
                    let w = 0.5f64.powf(age / LIVE_HALF_LIFE_S);
                    sum += w * kmh;
                    weight += w;
                }
            }
            let (hour_sum, hour_n) = s.by_hour[usize::from(hour % 24)];
            RoadSpeed {
                from_stop,
                to_stop,
                trip: s.trip,
                stop_index: s.stop_index,
                metres: s.metres,
                live_kmh: (weight > 0.0).then(|| sum / weight),
                typical_kmh: (hour_n > 0).then(|| hour_sum / f64::from(hour_n)),
                samples: s.samples,
                updated: s.updated,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn congestion_follows_topis_thresholds() {
        assert_eq!(Congestion::of(40.0), Congestion::Smooth);
        assert_eq!(Congestion::of(25.0), Congestion::Smooth);
        assert_eq!(Congestion::of(20.0), Congestion::Slow);
        assert_eq!(Congestion::of(14.9), Congestion::Congested);
    }
}
