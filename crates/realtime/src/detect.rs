//! Stop arrivals and departures from a run's progress along its shape.
//!
//! A bus *arrives* at a stop at the moment it reaches the stop's position on
//! the shape (interpolated between the two pings around it), or at the
//! moment it halts within [`DetectConfig::stop_radius_m`] before it,
//! whichever comes first. It *departs* when it is last seen within that
//! radius, or at its arrival if it drove through. Feeds' own
//! `current_status` is not used: WMATA's, for one, says `STOPPED_AT` about
//! 45 m before the stop while the bus is still moving.
//!
//! The same [`StopDetector`] runs online in the engine and offline in the
//! scorer, so "actual arrival" means exactly one thing everywhere.

/// Thresholds of arrival detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectConfig {
    /// A bus halted this close before a stop (metres along the shape) has
    /// arrived at it: buses pull in short of the pole, and queue behind
    /// another bus at the stop.
    pub stop_radius_m: f32,
    /// Progress below this between two pings (metres along the shape) is a
    /// halt rather than movement: the size of GPS noise.
    pub halt_move_m: f32,
    /// Interpolating between two pings further apart than this (seconds)
    /// would invent the moment: stops passed in such a gap count as passed
    /// at unknown times. A few missed reports at the usual 10–30 s rate.
    pub max_gap_s: i64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            stop_radius_m: 30.0,
            halt_move_m: 10.0,
            max_gap_s: 120,
        }
    }
}

/// What the detector found for a stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    /// Index of the stop in its trip.
    pub stop_index: u32,
    /// Arrival or departure.
    pub kind: EventKind,
    /// When, POSIX seconds (fractional: interpolated between pings).
    pub time: f64,
    /// Whether the moment was seen: `false` for stops already passed (or
    /// already reached) at the run's first ping, whose times are unknown.
    pub observed: bool,
}

/// Arrival or departure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The bus reached the stop.
    Arrival,
    /// The bus left the stop.
    Departure,
}

/// Incremental arrival/departure detection for one run.
#[derive(Debug, Clone, Default)]
pub struct StopDetector {
    /// First stop not yet arrived at.
    next: u32,
    /// The previous ping (time, distance) of this run.
    prev: Option<(i64, f32)>,
    /// Whether the previous ping followed its own predecessor closely
    /// enough (see [`DetectConfig::max_gap_s`]) to time a halt that began at it.
    prev_timed: bool,
    /// Where the current halt began: (time, distance, observed), if the last
    /// two pings were stationary or this may be the first of a halt.
    streak: Option<(i64, f32, bool)>,
    /// The last stop arrived at that has not departed: (index, arrival, last
    /// time seen within the radius). A departure is observed when the ping
    /// that shows the bus gone follows that last time closely, whether or
    /// not the arrival was seen (at a first stop it never is).
    dwelling: Option<(u32, f64, i64)>,
}

impl StopDetector {
    /// The first stop not yet arrived at.
    pub fn next_stop(&self) -> u32 {
        self.next
    }

    /// When the bus has been halted since (time), if it is halted now.
    pub fn halted_since(&self) -> Option<i64> {
        match (self.streak, self.prev) {
            (Some((since, _, _)), Some((t, _))) if since < t => Some(since),
            _ => None,
        }
    }

    /// Feeds one ping: time `t` and monotone distance `d` along the shape.
    /// Calls `emit` for every arrival and departure it completes, in order.
    pub fn push(
        &mut self,
        t: i64,
        d: f32,
        stop_dist: &[f32],
        config: &DetectConfig,
        emit: &mut impl FnMut(Detected),
    ) {
        let n = stop_dist.len() as u32;
        let Some((tp, dp)) = self.prev else {
            // First ping: stops behind are passed at unknown times.
            while self.next < n && stop_dist[self.next as usize] <= d {
                let i = self.next;
                self.arrive(i, t as f64, false, t, config, emit);
                self.next += 1;
            }
            self.prev = Some((t, d));
            self.streak = Some((t, d, false));
            if let Some(dw) = self.dwelling.as_mut()
                && d > stop_dist[dw.0 as usize] + config.stop_radius_m
            {
                // Already gone from the last stop passed: when is unknown.
                dw.2 = i64::MIN;
            }
            self.depart_if_left(d, stop_dist, config, emit);
            return;
        };
        let moved = d - dp;
        let stationary = moved < config.halt_move_m;
        let timed = t - tp <= config.max_gap_s;
        if stationary {
            if self.streak.is_none() {
                // The halt began at the previous ping: its moment is known
                // only if that ping closely followed one before it.
                self.streak = Some((tp, dp, self.prev_timed));
            }
        } else {
            self.streak = None;
        }
        // Stops reached: passed on the shape, or halted at.
        while self.next < n {
            let i = self.next;
            let at = stop_dist[i as usize];
            if d >= at {
                let time = if dp >= at || moved <= 0.0 {
                    tp as f64
                } else {
                    tp as f64 + f64::from(at - dp) / f64::from(moved) * (t - tp) as f64
                };
                self.arrive(i, time, timed, t, config, emit);
            } else if let Some((since, at_d, observed)) = self.streak
                && stationary
                && at - at_d <= config.stop_radius_m
            {
                self.arrive(i, since as f64, observed, t, config, emit);
            } else {
                break;
            }
            self.next += 1;
        }
        if let Some(dw) = self.dwelling.as_mut()
            && d <= stop_dist[dw.0 as usize] + config.stop_radius_m
        {
            dw.2 = t;
        }
        self.prev = Some((t, d));
        self.prev_timed = timed;
        self.depart_if_left(d, stop_dist, config, emit);
    }

    fn arrive(
        &mut self,
        i: u32,
        time: f64,
        observed: bool,
        t: i64,
        config: &DetectConfig,
        emit: &mut impl FnMut(Detected),
    ) {
        // Reaching a stop means the previous one has been left.
        if let Some((j, arrival, last_in)) = self.dwelling.take() {
            emit(Detected {
                stop_index: j,
                kind: EventKind::Departure,
                // Never `clamp`: it panics on a reversed range.
                time: (last_in as f64).min(time).max(arrival),
                observed: t.saturating_sub(last_in) <= config.max_gap_s,
            });
        }
        emit(Detected {
            stop_index: i,
            kind: EventKind::Arrival,
            time,
            observed,
        });
        self.dwelling = Some((i, time, t));
    }

    fn depart_if_left(
        &mut self,
        d: f32,
        stop_dist: &[f32],
        config: &DetectConfig,
        emit: &mut impl FnMut(Detected),
    ) {
        if let Some((j, arrival, last_in)) = self.dwelling
            && d > stop_dist[j as usize] + config.stop_radius_m
        {
            self.dwelling = None;
            let t = self.prev.map_or(last_in, |p| p.0);
            emit(Detected {
                stop_index: j,
                kind: EventKind::Departure,
                time: (last_in as f64).max(arrival),
                observed: t.saturating_sub(last_in) <= config.max_gap_s,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pings: &[(i64, f32)], stops: &[f32]) -> Vec<Detected> {
        let mut detector = StopDetector::default();
        let mut out = Vec::new();
        for &(t, d) in pings {
            detector.push(t, d, stops, &DetectConfig::default(), &mut |e| out.push(e));
        }
        out
    }

    fn arrivals(events: &[Detected]) -> Vec<(u32, f64, bool)> {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Arrival)
            .map(|e| (e.stop_index, e.time, e.observed))
            .collect()
    }

    #[test]
    fn passing_a_stop_interpolates_between_pings() {
        let events = run(&[(0, 0.0), (30, 300.0)], &[0.0, 100.0, 400.0]);
        assert_eq!(arrivals(&events), [(0, 0.0, false), (1, 10.0, true)]);
    }

    #[test]
    fn halting_short_of_a_stop_is_arriving_there() {
        // Halts 20 m before the stop at t=30, waits, then drives on.
        let events = run(
            &[
                (0, 0.0),
                (30, 180.0),
                (60, 182.0),
                (90, 183.0),
                (120, 400.0),
            ],
            &[0.0, 200.0, 500.0],
        );
        assert_eq!(arrivals(&events)[1], (1, 30.0, true));
        let departure = events
            .iter()
            .find(|e| e.kind == EventKind::Departure && e.stop_index == 1)
            .unwrap();
        assert_eq!(departure.time, 90.0);
    }

    #[test]
    fn stops_passed_in_a_long_gap_have_unknown_times() {
        let events = run(&[(0, 0.0), (30, 50.0), (600, 3000.0)], &[0.0, 100.0]);
        assert!(!arrivals(&events)[1].2);
    }

    #[test]
    fn leaving_the_first_stop_is_observed_though_reaching_it_is_not() {
        let events = run(
            &[(0, 2.0), (30, 3.0), (60, 4.0), (90, 200.0)],
            &[0.0, 500.0],
        );
        let departure = events
            .iter()
            .find(|e| e.kind == EventKind::Departure)
            .unwrap();
        assert_eq!((departure.time, departure.observed), (60.0, true));
        let passed = run(&[(0, 300.0), (30, 400.0)], &[0.0, 500.0]);
        assert!(passed.iter().all(|e| !e.observed), "{passed:?}");
    }

    #[test]
    fn a_halt_far_from_a_stop_is_not_an_arrival() {
        let events = run(&[(0, 0.0), (30, 100.0), (60, 101.0)], &[0.0, 200.0]);
        assert_eq!(arrivals(&events).len(), 1);
    }

    #[test]
    fn the_first_ping_at_a_stop_is_not_an_observed_arrival() {
        let events = run(&[(0, 195.0), (30, 196.0), (60, 400.0)], &[0.0, 200.0]);
        assert_eq!(arrivals(&events), [(0, 0.0, false), (1, 0.0, false)]);
    }
}
