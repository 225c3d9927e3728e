//! What the city has learned about travel times between stops.
//!
//! Everything here is learned online from detected arrivals, so a replay
//! only ever uses what was seen before the moment it predicts from.
//!
//! * **Links.** A link is the drive from one stop to the next, arrival to
//!   arrival (the dwell at the first stop included), shared by every route
//!   that drives it. Each traversal updates the link's exponentially decayed
//!   mean. How much to trust the recent over the older past, and a link's
//!   history over its timetable time, is not set by hand: a small bank of
//!   candidate memories ([`HALF_LIVES_S`]) and prior strengths
//!   ([`PRIOR_WEIGHTS`]) is scored on every traversal *before* learning from
//!   it, and the best so far predicts. Traversals are learned Huber-clipped,
//!   so one bus held ten minutes at a stop cannot double a link's estimate.
//!   A link nobody has driven yet gets its timetable time scaled by how the
//!   whole network runs against its timetable (a ratio of sums, with the
//!   timetable itself counted as a few traversals so the first ones seen
//!   cannot swing it).
//! * **Pace.** Each pass of a vehicle along a trip may run a little slower
//!   or faster than the links say; an empirical-Bayes estimate of that
//!   effect, with both variance components measured online, scales the rest
//!   of the run (see `Pace`; on WMATA the effect is small, ~5%).
//! * **First-stop departures.** A bus still standing at its first stop
//!   leaves at the median lateness of recent departures that were at least
//!   as late as it already is.
//!
//! Time of day and day type enter through recency: with memories of hours,
//! a link's estimate is today's, at this time of day. Carrying history
//! across days (the same hour of the same kind of day) needs the store, and
//! is left for when the engine's state is persisted.

/// Candidate memories: how long until a traversal counts half as much.
pub const HALF_LIVES_S: [f64; 4] = [600.0, 1800.0, 3600.0, 4.0 * 3600.0];
/// Candidate prior strengths, in traversals: how many observed traversals
/// the timetable-based prior is worth.
pub const PRIOR_WEIGHTS: [f64; 4] = [0.05, 0.25, 1.0, 4.0];
const CANDIDATES: usize = HALF_LIVES_S.len() * PRIOR_WEIGHTS.len();

/// The timetable's weight in the network's ratio, in traversals run at
/// exactly its pace. One traversal's time varies by about a third around its
/// link's mean, and a timetable is rarely more than a tenth off the
/// network's pace, so the timetable is worth about (1/3 ÷ 1/10)² ≈ 10
/// traversals: the first few seen cannot swing every prediction, and any
/// fleet's quarter hour outweighs it.
const RATIO_PRIOR: f64 = 10.0;
/// Huber's tuning constant: 95% efficiency when errors are normal.
const HUBER_K: f64 = 1.345;

/// Exponentially decayed count, sum and sum of squares.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Decayed {
    w: f64,
    wx: f64,
    wx2: f64,
    /// The time the sums are expressed at.
    t: f64,
}

impl Decayed {
    /// Adds observation `x` made at `t`; `rate` is ln 2 / half-life.
    pub(crate) fn add(&mut self, t: f64, x: f64, rate: f64) {
        let f = decay(t - self.t, rate);
        if t >= self.t {
            self.w *= f;
            self.wx *= f;
            self.wx2 *= f;
            self.t = t;
            self.w += 1.0;
            self.wx += x;
            self.wx2 += x * x;
        } else {
            // An observation older than the sums: weigh it down instead.
            self.w += f;
            self.wx += f * x;
            self.wx2 += f * x * x;
        }
    }

    /// Adds a pair of sums (`x` to Σx, `y` to the second sum) at `t`; for
    /// decayed regressions, which need Σxy and Σx² rather than a variance.
    pub(crate) fn add_pair(&mut self, t: f64, x: f64, y: f64, rate: f64) {
        let f = decay(t - self.t, rate);
        if t >= self.t {
            self.w = self.w * f + 1.0;
            self.wx = self.wx * f + x;
            self.wx2 = self.wx2 * f + y;
            self.t = t;
        } else {
            self.w += f;
            self.wx += f * x;
            self.wx2 += f * y;
        }
    }

    /// Adds `x` to Σx with weight `w` (counted `w` times) at `t`.
    pub(crate) fn add_weighted(&mut self, t: f64, x: f64, w: f64, rate: f64) {
        let f = decay(t - self.t, rate);
        if t >= self.t {
            self.w = self.w * f + w;
            self.wx = self.wx * f + x;
            self.wx2 *= f;
            self.t = t;
        } else {
            self.w += f * w;
            self.wx += f * x;
        }
    }

    /// (weight, mean, variance) as seen at `now`.
    pub(crate) fn at(&self, now: f64, rate: f64) -> (f64, f64, f64) {
        if self.w <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let mean = self.wx / self.w;
        let var = (self.wx2 / self.w - mean * mean).max(0.0);
        (self.w * decay(now - self.t, rate), mean, var)
    }
}

/// `exp(-dt * rate)` for `dt > 0`, 1 otherwise.
fn decay(dt: f64, rate: f64) -> f64 {
    if dt > 0.0 { (-dt * rate).exp() } else { 1.0 }
}

/// When a traversal happens, for history by time of day and day type:
/// (day type, service day, hour of the service day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The day type: which services run that day (see the engine).
    pub day_type: u32,
    /// The service date, `YYYYMMDD`.
    pub date: i32,
    /// Hours since the service day's start.
    pub hour: u8,
}

/// A link's traversals in one (day type, hour), split into earlier service
/// days and the current one, so a day never predicts itself from itself.
#[derive(Debug, Clone, Copy, Default)]
struct Hour {
    past_sum: f64,
    past_count: f64,
    date: i32,
    sum: f64,
    count: f64,
}

impl Hour {
    fn add(&mut self, date: i32, seconds: f64) {
        if date != self.date {
            if date < self.date {
                // A late report for an earlier day is simply past.
                self.past_sum += seconds;
                self.past_count += 1.0;
                return;
            }
            self.past_sum += self.sum;
            self.past_count += self.count;
            (self.date, self.sum, self.count) = (date, 0.0, 0.0);
        }
        self.sum += seconds;
        self.count += 1.0;
    }

    /// Mean over service days before `date`, if any.
    fn before(&self, date: i32) -> Option<f64> {
        let (sum, count) = if self.date < date {
            (self.past_sum + self.sum, self.past_count + self.count)
        } else {
            (self.past_sum, self.past_count)
        };
        (count > 0.0).then(|| sum / count)
    }
}

/// One link's statistics, one set per candidate memory.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    memories: [Decayed; HALF_LIVES_S.len()],
}

/// An expected link time and its spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Expected {
    /// Expected seconds.
    pub mean: f64,
    /// Variance of one traversal around it, seconds².
    pub var: f64,
}

/// Learned link travel times.
#[derive(Debug, Clone)]
pub(crate) struct TravelModel {
    links: Vec<Link>,
    /// History by (link, day type, hour): the prior of a link on a day of
    /// that type at that hour, from earlier service days.
    history: rustc_hash::FxHashMap<(u32, u32, u8), Hour>,
    /// The earliest service date in `history`: until a later day is asked
    /// about, history has nothing to say and is not looked up.
    first_date: i32,
    /// Observed link seconds (`wx`) and their scheduled seconds (`wx2` is
    /// unused) over the whole network, so the ratio is a ratio of sums:
    /// a mean of per-link ratios would be dominated by short links that
    /// caught a red light.
    observed: Decayed,
    scheduled: Decayed,
    /// Squared relative deviation of traversals from their prior, for the
    /// spread of links without history.
    prior_spread: Decayed,
    rates: [f64; HALF_LIVES_S.len()],
    /// Sum of absolute one-step errors per candidate.
    errors: [f64; CANDIDATES],
    best: usize,
}

impl TravelModel {
    pub(crate) fn new(links: usize) -> TravelModel {
        TravelModel {
            links: vec![Link::default(); links],
            history: rustc_hash::FxHashMap::default(),
            first_date: i32::MAX,
            observed: Decayed::default(),
            scheduled: Decayed::default(),
            prior_spread: Decayed::default(),
            rates: HALF_LIVES_S.map(|h| std::f64::consts::LN_2 / h),
            errors: [0.0; CANDIDATES],
            // Until evidence comes in: an hour's memory, prior worth one traversal.
            best: 2 * PRIOR_WEIGHTS.len() + 2,
        }
    }

    /// The memory used for the network-wide ratio: the longest, since it
    /// pools every link and only needs to follow slow change.
    fn ratio_rate(&self) -> f64 {
        self.rates[self.rates.len() - 1]
    }

    /// The prior of `link` at `slot`: what earlier days of the same type
    /// saw at that hour, else the timetable scaled by the network's ratio.
    fn prior_at(&self, link: u32, slot: Option<Slot>, now: f64, scheduled: f64) -> f64 {
        slot.and_then(|s| {
            self.history
                .get(&(link, s.day_type, s.hour))?
                .before(s.date)
        })
        .unwrap_or_else(|| self.prior(now, scheduled))
    }

    fn prior(&self, now: f64, scheduled: f64) -> f64 {
        let rate = self.ratio_rate();
        let (w, observed, _) = self.observed.at(now, rate);
        let (_, planned, _) = self.scheduled.at(now, rate);
        let ratio = if planned > 0.0 {
            (w * observed / planned + RATIO_PRIOR) / (w + RATIO_PRIOR)
        } else {
            1.0
        };
        scheduled.max(1.0) * ratio
    }

    fn candidate(&self, link: &Link, c: usize, now: f64, prior: f64) -> (f64, f64, f64) {
        let (m, k) = (c / PRIOR_WEIGHTS.len(), c % PRIOR_WEIGHTS.len());
        let (w, mean, var) = link.memories[m].at(now, self.rates[m]);
        let n0 = PRIOR_WEIGHTS[k];
        ((w * mean + n0 * prior) / (w + n0), w, var)
    }

    /// Records a traversal of `link` that ended at `t` and took `seconds`,
    /// against `scheduled` seconds in the timetable.
    ///
    /// `spread` is the standard deviation of one traversal's log time around
    /// its link's mean (0 when not yet known). What is learned is the
    /// traversal clipped to the current expectation × e^(±1.345·spread):
    /// Huber's M-estimator with its usual 95%-efficiency constant, so one
    /// bus held at a stop for ten minutes moves a link's estimate by a
    /// bounded amount instead of doubling it. The spread around that mean,
    /// which sets the predictions' p10 and p90, is taken from the traversals
    /// as they were: buses that are held are what the range must cover
    /// (clipped, it covered 72–75% of WMATA's arrivals instead of 80%).
    ///
    /// `slot` is when the traversal started, for history by time of day
    /// and day type.
    pub(crate) fn observe(
        &mut self,
        link: u32,
        t: f64,
        seconds: f64,
        scheduled: f64,
        spread: f64,
        slot: Option<Slot>,
    ) {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return;
        }
        let start = t - seconds;
        let network_prior = self.prior(start, scheduled);
        let prior = self.prior_at(link, slot, start, scheduled);
        let best = self.best;
        if let Some(state) = self.links.get_mut(link as usize) {
            // Score every candidate on what it would have said at the start
            // (each memory's decay computed once, shared by the prior strengths).
            let mut expected = prior;
            for (m, memory) in state.memories.iter().enumerate() {
                let (w, mean, _) = memory.at(start, self.rates[m]);
                for (k, n0) in PRIOR_WEIGHTS.iter().enumerate() {
                    let predicted = (w * mean + n0 * prior) / (w + n0);
                    let c = m * PRIOR_WEIGHTS.len() + k;
                    self.errors[c] += (seconds - predicted).abs();
                    if c == best {
                        expected = predicted;
                    }
                }
            }
            let learned = if spread > 0.0 {
                let bound = (HUBER_K * spread).exp();
                seconds.max(expected / bound).min(expected * bound)
            } else {
                seconds
            };
            // Mean of the clipped traversals; second moment of the real ones.
            for (memory, rate) in state.memories.iter_mut().zip(self.rates) {
                memory.add_pair(t, learned, seconds * seconds, rate);
            }
            if let Some(slot) = slot {
                self.first_date = self.first_date.min(slot.date);
                self.history
                    .entry((link, slot.day_type, slot.hour))
                    .or_default()
                    .add(slot.date, learned);
            }
            let errors = &self.errors;
            self.best = (0..CANDIDATES)
                .min_by(|&a, &b| errors[a].total_cmp(&errors[b]))
                .unwrap_or(self.best);
        }
        let rate = self.ratio_rate();
        let prior = network_prior;
        let relative = (seconds - prior) / prior;
        self.prior_spread.add(t, relative * relative, rate);
        if scheduled > 0.0 {
            self.observed.add(t, seconds, rate);
            self.scheduled.add(t, scheduled, rate);
        }
    }

    /// Expected time to drive `link` at `now`, for a trip whose timetable
    /// gives it `scheduled` seconds.
    ///
    /// `slot` is when the link will be driven, for history by time of day
    /// and day type.
    pub(crate) fn expected(
        &self,
        link: u32,
        now: f64,
        scheduled: f64,
        slot: Option<Slot>,
    ) -> Expected {
        let prior = self.prior_at(link, slot, now, scheduled);
        let (w0, spread, _) = self.prior_spread.at(now, self.ratio_rate());
        // Without any evidence yet, a traversal is taken to vary by half its time.
        let prior_var = prior * prior * if w0 > 0.0 { spread } else { 0.25 };
        match self.links.get(link as usize) {
            Some(state) => {
                let (mean, w, var) = self.candidate(state, self.best, now, prior);
                let n0 = PRIOR_WEIGHTS[self.best % PRIOR_WEIGHTS.len()];
                Expected {
                    mean,
                    var: (w * var + n0 * prior_var) / (w + n0),
                }
            }
            None => Expected {
                mean: prior,
                var: prior_var,
            },
        }
    }

    /// Every (link, day type, hour) of history with its total seconds and
    /// traversals, over all the days seen.
    pub(crate) fn history(&self) -> impl Iterator<Item = ((u32, u32, u8), f64, f64)> + '_ {
        self.history
            .iter()
            .map(|(&key, h)| (key, h.past_sum + h.sum, h.past_count + h.count))
    }

    /// Adds history learned elsewhere (another engine, an earlier run): it
    /// counts as earlier days for every day asked about.
    pub(crate) fn add_history(&mut self, key: (u32, u32, u8), seconds: f64, traversals: f64) {
        if seconds.is_finite() && traversals.is_finite() && traversals > 0.0 && seconds >= 0.0 {
            let hour = self.history.entry(key).or_default();
            hour.past_sum += seconds;
            hour.past_count += traversals;
        }
    }

    /// The candidate memory (seconds) and prior strength now in use.
    pub(crate) fn chosen(&self) -> (f64, f64) {
        (
            HALF_LIVES_S[self.best / PRIOR_WEIGHTS.len()],
            PRIOR_WEIGHTS[self.best % PRIOR_WEIGHTS.len()],
        )
    }
}

/// A pass's own pace: how much slower or faster than the model a vehicle
/// has driven so far on this run, carried to the rest of the run.
///
/// Each traversal's log residual `r = ln(observed / expected)` is made of
/// the pass's effect (driver, load, the traffic it is in) and the noise of
/// that one traversal (a red light, a wheelchair ramp). Both variances are
/// estimated online, by the method of moments: residual pairs within one
/// run share only the pass effect, so their mean product estimates its
/// variance τ², and the mean square less τ² estimates the noise σ². After
/// `k` traversals averaging `r̄`, the pass effect's posterior mean is
/// `r̄ · k / (k + σ²/τ²)`: a few traversals say little, a long run says more,
/// and if passes do not differ (τ² = 0) nothing is carried.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pace {
    /// Σ r (in `wx`), Σ r² (in `wx2`) and the count (in `w`). Residuals are
    /// centred on their mean: travel times are right-skewed, so the mean log
    /// ratio is below zero (about −σ²/2) for every pass alike, and is not
    /// a pass effect.
    squares: Decayed,
    /// Σ over within-run pairs of r·r' (in `wx`) and the pair count (in `w`).
    pairs: Decayed,
}

/// Residuals are taken on at least this many seconds, so a link driven in
/// two seconds (stops a few metres apart) does not produce a huge log ratio.
const PACE_FLOOR_S: f64 = 10.0;

impl Pace {
    /// The memory of the variance estimates: the longest candidate memory.
    fn rate() -> f64 {
        std::f64::consts::LN_2 / HALF_LIVES_S[HALF_LIVES_S.len() - 1]
    }

    /// Records a traversal of `seconds` where the model expected `expected`,
    /// on a run whose residual sum and count are `run`.
    pub(crate) fn observe(&mut self, run: &mut (f64, u32), t: f64, seconds: f64, expected: f64) {
        let r = (seconds.max(PACE_FLOOR_S) / expected.max(PACE_FLOOR_S)).ln();
        if !r.is_finite() {
            return;
        }
        let rate = Self::rate();
        self.squares.add_pair(t, r, r * r, rate);
        if run.1 > 0 {
            // `run.1` new pairs, whose products sum to r · Σ earlier residuals.
            self.pairs
                .add_weighted(t, r * run.0, f64::from(run.1), rate);
        }
        run.0 += r;
        run.1 += 1;
    }

    /// (τ², σ², mean residual): variances of the pass effect and of one
    /// traversal's noise, and the mean they are centred on.
    fn variances(&self, now: f64) -> (f64, f64, f64) {
        let rate = Self::rate();
        let (n, mean, _) = self.squares.at(now, rate);
        let (m, _, _) = self.pairs.at(now, rate);
        if n <= 0.0 || m <= 0.0 {
            return (0.0, 0.0, mean);
        }
        let total =
            (self.squares.wx2 * decay(now - self.squares.t, rate) / n - mean * mean).max(0.0);
        let cross = self.pairs.wx * decay(now - self.pairs.t, rate) / m - mean * mean;
        let tau2 = cross.clamp(0.0, total);
        (tau2, total - tau2, mean)
    }

    /// The multiplier of the time still to drive for a run with residual
    /// sum and count `run`.
    pub(crate) fn factor(&self, run: (f64, u32), now: f64) -> f64 {
        let (tau2, sigma2, centre) = self.variances(now);
        if run.1 == 0 || tau2 <= 0.0 {
            return 1.0;
        }
        let k = f64::from(run.1);
        let mean = run.0 / k - centre;
        (mean * k / (k + sigma2 / tau2)).exp()
    }

    /// (τ, σ) now, as standard deviations of log travel time.
    pub(crate) fn spread(&self, now: f64) -> (f64, f64) {
        let (tau2, sigma2, _) = self.variances(now);
        (tau2.sqrt(), sigma2.sqrt())
    }
}

/// How late buses leave their first stop, from the most recent departures.
///
/// A bus still standing at its first stop leaves when its driver is ready,
/// which the timetable bounds from below but not from above. Given that it
/// has not left `w` seconds after its scheduled time, the prediction is the
/// median lateness among recent departures later than `w`: a conditional
/// median, so a bus already ten minutes late is not predicted to leave
/// "now" again and again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Departures {
    /// Recent lateness values, seconds, as a ring.
    recent: Vec<f64>,
    next: usize,
}

/// How many recent first-stop departures [`Departures`] remembers.
const DEPARTURES_KEPT: usize = 256;

impl Departures {
    /// Records a departure `lateness` seconds after the scheduled time.
    pub(crate) fn observe(&mut self, lateness: f64) {
        if !lateness.is_finite() {
            return;
        }
        if self.recent.len() < DEPARTURES_KEPT {
            self.recent.push(lateness);
        } else {
            self.recent[self.next] = lateness;
        }
        self.next = (self.next + 1) % DEPARTURES_KEPT;
    }

    /// Expected lateness of a departure known to be later than `waited`
    /// seconds past the scheduled time; `waited` itself (leave now) when no
    /// recent departure was that late.
    pub(crate) fn expected_lateness(&self, waited: f64) -> f64 {
        let mut later: Vec<f64> = self
            .recent
            .iter()
            .copied()
            .filter(|&l| l > waited)
            .collect();
        if later.is_empty() {
            return waited;
        }
        let mid = later.len() / 2;
        let (_, median, _) = later.select_nth_unstable_by(mid, f64::total_cmp);
        *median
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departures_are_predicted_by_conditional_median() {
        let mut d = Departures::default();
        for l in [-30.0, 0.0, 10.0, 20.0, 60.0, 600.0] {
            d.observe(l);
        }
        assert_eq!(d.expected_lateness(-100.0), 20.0);
        assert_eq!(d.expected_lateness(30.0), 600.0);
        assert_eq!(d.expected_lateness(1000.0), 1000.0);
    }

    #[test]
    fn history_serves_later_days_of_the_same_type_only() {
        let mut m = TravelModel::new(1);
        let monday = Slot {
            day_type: 0,
            date: 20260302,
            hour: 8,
        };
        // 120 s against 60 s scheduled: one traversal at 2× its timetable
        // moves the network's ratio an eleventh of the way, against the
        // timetable's ten traversals' worth.
        m.observe(0, 1000.0, 120.0, 60.0, 0.0, Some(monday));
        // Asked with 30 s scheduled, the network prior says 30 × 12/11 s and history 120 s.
        let network = m.prior(1000.0, 30.0);
        assert!((network - 30.0 * 12.0 / 11.0).abs() < 1e-9, "{network}");
        // The same day does not predict itself from its own history…
        assert_eq!(m.prior_at(0, Some(monday), 1000.0, 30.0), network);
        // …a later day of that type at that hour does,
        let tuesday = Slot {
            date: 20260303,
            ..monday
        };
        assert_eq!(m.prior_at(0, Some(tuesday), 1000.0, 30.0), 120.0);
        // and another type or hour does not.
        let sunday = Slot {
            day_type: 1,
            ..tuesday
        };
        assert_eq!(m.prior_at(0, Some(sunday), 1000.0, 30.0), network);
        let later = Slot { hour: 9, ..tuesday };
        assert_eq!(m.prior_at(0, Some(later), 1000.0, 30.0), network);
    }

    #[test]
    fn decayed_mean_and_weight() {
        let mut d = Decayed::default();
        let rate = std::f64::consts::LN_2 / 100.0;
        d.add(0.0, 10.0, rate);
        d.add(100.0, 20.0, rate);
        let (w, mean, _) = d.at(100.0, rate);
        assert!((w - 1.5).abs() < 1e-9);
        assert!((mean - (5.0 + 20.0) / 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_link_held_now_and_then_keeps_its_time_but_widens_its_range() {
        let mut m = TravelModel::new(1);
        // 60 s traversals, one in five held to ten minutes.
        for i in 0..50 {
            let seconds = if i % 5 == 4 { 600.0 } else { 60.0 };
            m.observe(0, 1000.0 + 60.0 * f64::from(i), seconds, 60.0, 0.3, None);
        }
        let e = m.expected(0, 4000.0, 60.0, None);
        // The holds move the expected time a little (their mean is 168 s)…
        assert!(e.mean < 100.0, "{e:?}");
        // …and the range as much as they vary (216 s around their mean).
        assert!(e.var.sqrt() > 150.0, "{e:?}");
    }

    #[test]
    fn a_link_learns_its_time() {
        let mut m = TravelModel::new(2);
        for i in 0..20 {
            m.observe(0, 1000.0 + 60.0 * f64::from(i), 90.0, 60.0, 0.0, None);
        }
        let e = m.expected(0, 2300.0, 60.0, None);
        assert!((e.mean - 90.0).abs() < 5.0, "{e:?}");
        // The other link has no history: its timetable time, scaled by how
        // the network runs (1.5× here, held back a third of the way by the
        // timetable's ten traversals against these twenty).
        let other = m.expected(1, 2300.0, 40.0, None);
        assert!((other.mean - 53.3).abs() < 1.0, "{other:?}");
    }
}
