//! Scoring arrival predictions by replaying recorded positions.
//!
//! [`replay_score`] feeds positions to an [`Engine`] in time order, and every
//! [`ScoreConfig::sample_every_s`] of replayed time records what each method
//! predicts for every stop of every live run. Afterwards, the actual arrival
//! at each stop is found in the same positions by the same
//! [`StopDetector`] the engine uses (the moment the bus reaches the stop's
//! place on the shape, or halts just before it), and each prediction is
//! judged by its horizon (predicted arrival minus the moment it was made):
//!
//! * mean absolute error;
//! * the TransitApp ETA-accuracy score: a prediction is right when the bus
//!   arrives within a window around it that widens with the horizon
//!   (0–3 min: 30 s early to 1.5 min late; 3–6: 1 to 2.5; 6–10: 1 to 3.5;
//!   10–15: 1.5 to 4.5), and the score is the mean of the four buckets'
//!   accuracies.
//!
//! Three methods run in the same replay, on the same runs and moments:
//! cityos's predictor, OneBusAway's (the current schedule deviation carried
//! unchanged to every later stop) and the timetable alone. No method sees a
//! position after the moment it predicts from: the engine learns online
//! while replaying. Nothing here knows which city it replays.
//!
//! Two rows that are not predictors follow, to read targets against: they
//! know, in hindsight, each link's median traversal over the whole replay
//! (see [`Method::HindsightLinks`]).

use std::fmt;

use rustc_hash::FxHashMap;

use cityos_transit::Network;

use crate::decode::PositionRecord;
use crate::detect::{EventKind, StopDetector};
use crate::engine::{Engine, StopPrediction};
use crate::validate::{Config, Counters, Rejection};

/// How a replay is scored.
#[derive(Debug, Clone)]
pub struct ScoreConfig {
    /// Replayed seconds between two samples of the predictions.
    pub sample_every_s: i64,
    /// Engine thresholds.
    pub engine: Config,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            sample_every_s: 30,
            engine: Config::default(),
        }
    }
}

/// A prediction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// cityos's predictor: its best estimate of the arrival.
    Cityos,
    /// cityos's estimate shown to riders shifted early by the centre of the
    /// TransitApp window of its horizon. The windows forgive a bus that
    /// comes late more than one that comes early (a rider who waits is
    /// better off than one who misses the bus), so for a symmetric forecast
    /// the shown time most likely to be judged right is the estimate minus
    /// the window's centre, whatever the forecast's spread. A display
    /// choice, not a model: it trades mean error for rider-judged accuracy.
    CityosWindowCentred,
    /// OneBusAway's: the current deviation from the timetable, carried
    /// unchanged to every later stop.
    OneBusAway,
    /// The timetable alone.
    Schedule,
    /// Not a predictor: cityos's arrival at the vehicle's next stop, then
    /// each later link's median traversal over the whole replay, known in
    /// hindsight. What a predictor that learned every link's time perfectly,
    /// from the future as well as the past, would score; per-pass variation
    /// around those medians is what it still gets wrong.
    HindsightLinks,
    /// Not a predictor: as [`Method::HindsightLinks`], from the actual
    /// arrival at the next stop rather than cityos's prediction of it.
    HindsightAll,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 6] = [
        Method::Cityos,
        Method::CityosWindowCentred,
        Method::OneBusAway,
        Method::Schedule,
        Method::HindsightLinks,
        Method::HindsightAll,
    ];

    /// Whether this is one of the hindsight rows, which are not predictors.
    pub fn is_hindsight(self) -> bool {
        matches!(self, Method::HindsightLinks | Method::HindsightAll)
    }

    /// The name printed in the table.
    pub fn name(self) -> &'static str {
        match self {
            Method::Cityos => "cityos",
            Method::CityosWindowCentred => "cityos, window-centred",
            Method::OneBusAway => "OneBusAway method",
            Method::Schedule => "schedule",
            Method::HindsightLinks => "hindsight: link medians",
            Method::HindsightAll => "hindsight: + next arrival",
        }
    }
}

/// Horizon buckets: (upper bound in seconds, earliest and latest accepted
/// error in seconds, with "later than predicted" positive).
pub const BUCKETS: [(f64, f64, f64); 4] = [
    (180.0, -30.0, 90.0),
    (360.0, -60.0, 150.0),
    (600.0, -60.0, 210.0),
    (900.0, -90.0, 270.0),
];

/// The centre of the TransitApp window for a prediction `horizon` seconds
/// ahead (that of the last bucket beyond 15 minutes).
pub fn window_centre(horizon: f64) -> f64 {
    let (_, early, late) = BUCKETS
        .iter()
        .copied()
        .find(|b| horizon < b.0)
        .unwrap_or(BUCKETS[BUCKETS.len() - 1]);
    (early + late) / 2.0
}

/// The longest horizon judged, seconds.
const MAX_HORIZON_S: f64 = 900.0;

/// Labels of [`BUCKETS`].
pub const BUCKET_LABELS: [&str; 4] = ["0-3 min", "3-6 min", "6-10 min", "10-15 min"];

/// The figures of one horizon bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BucketScore {
    /// Predictions judged.
    pub n: usize,
    /// Mean absolute error, seconds.
    pub mae_s: f64,
    /// Mean error, seconds (positive: buses came later than predicted).
    pub bias_s: f64,
    /// Share of predictions inside the bucket's window, 0–1.
    pub accuracy: f64,
    /// Share of actual arrivals between the predicted p10 and p90 (cityos rows only).
    pub interval_coverage: Option<f64>,
}

/// The figures of one method.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodScore {
    /// Which method.
    pub method: Method,
    /// Per horizon bucket, in [`BUCKETS`] order.
    pub buckets: [BucketScore; 4],
    /// Mean absolute error over all horizons 0–15 min, seconds.
    pub mae_s: f64,
    /// The TransitApp score: mean of the buckets' accuracies, 0–1.
    pub score: f64,
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct ScoreReport {
    /// Positions given.
    pub positions: usize,
    /// Positions without a timestamp, which cannot be replayed.
    pub untimed: usize,
    /// Engine counts: accepted, and refused by reason.
    pub counters: Counters,
    /// Replayed span, POSIX seconds.
    pub span: Option<(i64, i64)>,
    /// Runs (trip × service date) seen.
    pub runs: usize,
    /// Actual arrivals observed.
    pub arrivals: usize,
    /// Predictions (of any method, horizon under 15 min) for stops whose
    /// actual arrival was never observed, and so could not be judged.
    pub unjudged: usize,
    /// One row per method, in [`Method::ALL`] order, for predictions made
    /// once the trip was due to have started (scheduled departure from its
    /// first stop passed). This is how the outside tool scored.
    pub methods: Vec<MethodScore>,
    /// The same, also counting predictions made before the trip's
    /// scheduled start, while its vehicle lays over or finishes the trip
    /// before: when it will leave is mostly up to the driver.
    pub including_layovers: Vec<MethodScore>,
}

impl ScoreReport {
    /// The row of `method`.
    pub fn method(&self, method: Method) -> Option<&MethodScore> {
        self.methods.iter().find(|m| m.method == method)
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    method: u8,
    run: u32,
    stop_index: u32,
    next_stop: u32,
    made_at: i64,
    predicted: f64,
    p10: f64,
    p90: f64,
    under_way: bool,
}

/// One judged prediction, for analysis beyond the report's table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// The method that made it.
    pub method: Method,
    /// The trip (index into the network's trips).
    pub trip: u32,
    /// The stop's index within the trip.
    pub stop_index: u32,
    /// The first stop the run had not reached when the prediction was made.
    pub next_stop: u32,
    /// When the prediction was made, POSIX seconds.
    pub made_at: i64,
    /// Predicted arrival, POSIX seconds.
    pub predicted: f64,
    /// 10th and 90th percentiles of the prediction.
    pub p10: f64,
    /// See `p10`.
    pub p90: f64,
    /// Actual arrival, POSIX seconds.
    pub actual: f64,
    /// Whether the trip was due to have started (its scheduled departure
    /// from the first stop had passed) when the prediction was made.
    pub under_way: bool,
}

/// A judged prediction reduced to what the table needs: (horizon, error,
/// actual − p10, p90 − actual), seconds.
type Row = (f64, f64, f64, f64);

/// Replays `positions` through a fresh engine on `network` and scores the
/// three methods' predictions. See the [module documentation](self).
pub fn replay_score(
    network: &Network,
    positions: Vec<PositionRecord>,
    config: &ScoreConfig,
) -> ScoreReport {
    replay_judged(network, positions, config).0
}

/// [`replay_score`], also returning every judged prediction (horizons
/// 0–15 min) for analysis.
pub fn replay_judged(
    network: &Network,
    mut positions: Vec<PositionRecord>,
    config: &ScoreConfig,
) -> (ScoreReport, Vec<Judged>) {
    let total = positions.len();
    positions.retain(|p| p.timestamp.is_some());
    let untimed = total - positions.len();
    positions.sort_by_key(|p| p.timestamp);
    let span = positions
        .first()
        .zip(positions.last())
        .and_then(|(a, b)| Some((a.timestamp?, b.timestamp?)));

    let mut engine = Engine::new(network, config.engine.clone());
    // Every accepted ping per run, keyed (trip, date), for the actual arrivals.
    let mut run_keys: FxHashMap<(u32, jiff::civil::Date), u32> = FxHashMap::default();
    let mut logs: Vec<(u32, Vec<(i64, f32)>)> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let step = config.sample_every_s.max(1);
    let mut next_tick = span.map_or(0, |(first, _)| first.div_euclid(step) * step + step);
    let mut buffer = Vec::new();

    for p in &positions {
        let t = p.timestamp.unwrap_or_default();
        while t > next_tick {
            sample(&engine, next_tick, &run_keys, &mut samples, &mut buffer);
            // As a server does at each snapshot: runs gone quiet are retired.
            engine.expire(next_tick);
            next_tick += step;
        }
        if let Ok(a) = engine.ingest(p.view(), t) {
            let next = logs.len() as u32;
            let r = *run_keys.entry((a.trip, a.date)).or_insert_with(|| {
                logs.push((a.trip, Vec::new()));
                next
            });
            logs[r as usize].1.push((a.time, a.distance_m));
        }
        engine.drain_events().for_each(drop);
    }

    // Actual arrivals, by the engine's own detector run over each whole log.
    let mut actual: FxHashMap<(u32, u32), f64> = FxHashMap::default();
    for (r, (trip, pings)) in logs.iter().enumerate() {
        let Some(dist) = engine.index().stop_distances(*trip) else {
            continue;
        };
        let mut detector = StopDetector::default();
        for &(t, d) in pings {
            detector.push(t, d, dist, &config.engine.detect, &mut |e| {
                if e.kind == EventKind::Arrival && e.observed {
                    actual.insert((r as u32, e.stop_index), e.time);
                }
            });
        }
    }

    let known = hindsight(engine.index(), &logs, &actual, &samples);
    samples.extend(known);

    // [under way only, all live runs] × method.
    let mut judged: [[Vec<Row>; Method::ALL.len()]; 2] = Default::default();
    let mut rows = Vec::new();
    let mut unjudged = 0;
    for s in &samples {
        let Some(&arrived) = actual.get(&(s.run, s.stop_index)) else {
            unjudged += usize::from(!Method::ALL[s.method as usize].is_hindsight());
            continue;
        };
        // A stop the bus had already reached by then is not a prediction.
        if arrived <= s.made_at as f64 {
            continue;
        }
        rows.push(Judged {
            method: Method::ALL[s.method as usize],
            trip: logs[s.run as usize].0,
            stop_index: s.stop_index,
            next_stop: s.next_stop,
            made_at: s.made_at,
            predicted: s.predicted,
            p10: s.p10,
            p90: s.p90,
            actual: arrived,
            under_way: s.under_way,
        });
        let row = (
            s.predicted - s.made_at as f64,
            arrived - s.predicted,
            arrived - s.p10,
            s.p90 - arrived,
        );
        if s.under_way {
            judged[0][s.method as usize].push(row);
        }
        judged[1][s.method as usize].push(row);
    }
    let [under_way, with_layovers] = judged.map(|sets| {
        Method::ALL
            .iter()
            .zip(&sets)
            .map(|(&method, rows)| score_method(method, rows))
            .collect()
    });
    let report = ScoreReport {
        positions: total,
        untimed,
        counters: engine.counters().clone(),
        span,
        runs: logs.len(),
        arrivals: actual.len(),
        unjudged,
        methods: under_way,
        including_layovers: with_layovers,
    };
    (report, rows)
}

/// The two hindsight rows' samples (see [`Method::HindsightLinks`]), from
/// cityos's samples and the actual arrivals of every run.
fn hindsight(
    index: &crate::TripIndex,
    logs: &[(u32, Vec<(i64, f32)>)],
    actual: &FxHashMap<(u32, u32), f64>,
    samples: &[Sample],
) -> Vec<Sample> {
    let links_of = |r: u32| index.trip_links(logs[r as usize].0).unwrap_or_default();
    let mut traversals: FxHashMap<u32, Vec<f64>> = FxHashMap::default();
    for r in 0..logs.len() as u32 {
        for (i, &link) in links_of(r).iter().enumerate() {
            let arrival = |i: usize| actual.get(&(r, i as u32));
            if let (Some(a), Some(b)) = (arrival(i), arrival(i + 1)) {
                traversals.entry(link).or_default().push(b - a);
            }
        }
    }
    let medians: FxHashMap<u32, f64> = traversals
        .into_iter()
        .map(|(link, mut times)| {
            let mid = times.len() / 2;
            (link, *times.select_nth_unstable_by(mid, f64::total_cmp).1)
        })
        .collect();
    let mut out = Vec::new();
    // cityos's samples of one run at one moment come in stop order from its next stop.
    struct From {
        /// (run, moment) the sums belong to.
        key: (u32, i64),
        /// cityos's and the actual arrival at the next stop.
        predicted: f64,
        arrived: Option<f64>,
        /// The stop reached and the medians summed that far (NaN once a link has none).
        stop: u32,
        sum: f64,
    }
    let mut from: Option<From> = None;
    for s in samples.iter().filter(|s| s.method == Method::Cityos as u8) {
        if s.stop_index == s.next_stop {
            from = Some(From {
                key: (s.run, s.made_at),
                predicted: s.predicted,
                arrived: actual.get(&(s.run, s.stop_index)).copied(),
                stop: s.stop_index,
                sum: 0.0,
            });
        }
        let Some(f) = from.as_mut().filter(|f| f.key == (s.run, s.made_at)) else {
            continue;
        };
        let links = links_of(s.run);
        while f.stop < s.stop_index {
            let median = links.get(f.stop as usize).and_then(|l| medians.get(l));
            f.sum += median.copied().unwrap_or(f64::NAN);
            f.stop += 1;
        }
        if f.stop != s.stop_index || f.sum.is_nan() {
            continue;
        }
        let floor = s.made_at as f64;
        let mut push = |method: Method, at: f64| {
            let at = at.max(floor);
            out.push(Sample {
                method: method as u8,
                predicted: at,
                p10: at,
                p90: at,
                ..*s
            });
        };
        push(Method::HindsightLinks, f.predicted + f.sum);
        if let Some(arrived) = f.arrived {
            push(Method::HindsightAll, arrived + f.sum);
        }
    }
    out
}

/// Records every method's predictions for every live run at `now`.
fn sample<N: std::ops::Deref<Target = Network>>(
    engine: &Engine<N>,
    now: i64,
    run_keys: &FxHashMap<(u32, jiff::civil::Date), u32>,
    samples: &mut Vec<Sample>,
    buffer: &mut Vec<StopPrediction>,
) {
    let floor = now as f64;
    for info in engine.runs(now) {
        let under_way = floor >= info.scheduled_start;
        let Some(&run) = run_keys.get(&(info.trip, info.date)) else {
            continue;
        };
        engine.predict(info.id, now, buffer);
        for p in buffer.iter() {
            // Only horizons the score judges are kept.
            if p.arrival - floor >= MAX_HORIZON_S
                && p.scheduled - floor >= MAX_HORIZON_S
                && p.scheduled + info.delay_s - floor >= MAX_HORIZON_S
            {
                continue;
            }
            let mut push = |method: Method, predicted: f64, p10: f64, p90: f64| {
                samples.push(Sample {
                    method: method as u8,
                    run,
                    stop_index: p.stop_index,
                    next_stop: info.next_stop,
                    made_at: now,
                    predicted,
                    p10,
                    p90,
                    under_way,
                })
            };
            push(Method::Cityos, p.arrival, p.p10, p.p90);
            let shift = window_centre(p.arrival - floor);
            push(
                Method::CityosWindowCentred,
                (p.arrival - shift).max(floor),
                (p.p10 - shift).max(floor),
                (p.p90 - shift).max(floor),
            );
            let oba = (p.scheduled + info.delay_s).max(floor);
            push(Method::OneBusAway, oba, oba, oba);
            let schedule = p.scheduled.max(floor);
            push(Method::Schedule, schedule, schedule, schedule);
        }
    }
}

/// Buckets one method's judged predictions: rows of (horizon, error,
/// actual − p10, p90 − actual).
fn score_method(method: Method, rows: &[Row]) -> MethodScore {
    let mut buckets = [BucketScore::default(); 4];
    let (mut abs_total, mut n_total) = (0.0, 0usize);
    for (b, bucket) in buckets.iter_mut().enumerate() {
        let lower = if b == 0 { 0.0 } else { BUCKETS[b - 1].0 };
        let (upper, early, late) = BUCKETS[b];
        let (mut n, mut abs, mut sum, mut hits, mut covered) = (0usize, 0.0, 0.0, 0usize, 0usize);
        for &(horizon, error, above_p10, below_p90) in rows {
            if horizon < lower || horizon >= upper {
                continue;
            }
            n += 1;
            abs += error.abs();
            sum += error;
            if (early..=late).contains(&error) {
                hits += 1;
            }
            if above_p10 >= 0.0 && below_p90 >= 0.0 {
                covered += 1;
            }
        }
        let per = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
        *bucket = BucketScore {
            n,
            mae_s: per(abs),
            bias_s: per(sum),
            accuracy: per(hits as f64),
            interval_coverage: matches!(method, Method::Cityos | Method::CityosWindowCentred)
                .then(|| per(covered as f64)),
        };
        abs_total += abs;
        n_total += n;
    }
    MethodScore {
        method,
        buckets,
        mae_s: if n_total == 0 {
            0.0
        } else {
            abs_total / n_total as f64
        },
        score: buckets.iter().map(|b| b.accuracy).sum::<f64>() / buckets.len() as f64,
    }
}

fn table(f: &mut fmt::Formatter<'_>, methods: &[MethodScore]) -> fmt::Result {
    write!(f, "{:<25}", "method")?;
    for label in BUCKET_LABELS {
        write!(f, " | {:^23}", label)?;
    }
    writeln!(f, " | {:^8} | {:^9}", "0-15 MAE", "TransitApp")?;
    write!(f, "{:<25}", "")?;
    for _ in BUCKET_LABELS {
        write!(f, " | {:>6} {:>7} {:>7}", "n", "MAE", "acc")?;
    }
    writeln!(f, " | {:>8} | {:>9}", "min", "score")?;
    for m in methods {
        write!(f, "{:<25}", m.method.name())?;
        for b in &m.buckets {
            write!(
                f,
                " | {:>6} {:>5.2}m {:>6.1}%",
                b.n,
                b.mae_s / 60.0,
                b.accuracy * 100.0
            )?;
        }
        writeln!(f, " | {:>7.2}m | {:>8.1}%", m.mae_s / 60.0, m.score * 100.0)?;
    }
    Ok(())
}

impl fmt::Display for ScoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((a, b)) = self.span {
            let at = |t: i64| {
                jiff::Timestamp::from_second(t)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default()
            };
            writeln!(f, "replayed {} to {}", at(a), at(b))?;
        }
        let c = &self.counters;
        writeln!(
            f,
            "{} positions, {} accepted, {} runs, {} observed arrivals, {} predictions unjudged (arrival never seen)",
            self.positions, c.accepted, self.runs, self.arrivals, self.unjudged
        )?;
        let refused: Vec<String> = Rejection::ALL
            .iter()
            .filter(|r| c.rejected(**r) > 0)
            .map(|r| format!("{} {}", r.as_str(), c.rejected(*r)))
            .collect();
        if !refused.is_empty() {
            writeln!(f, "refused: {}", refused.join(", "))?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "predictions for trips under way (made after the trip's scheduled start):"
        )?;
        table(f, &self.methods)?;
        writeln!(
            f,
            "\nalso counting predictions made before the trip's scheduled start (layovers):"
        )?;
        table(f, &self.including_layovers)?;
        if let Some(cityos) = self.method(Method::Cityos)
            && let Some(oba) = self.method(Method::OneBusAway)
            && oba.mae_s > 0.0
        {
            writeln!(
                f,
                "\ncityos MAE vs OneBusAway method: {:+.1}%",
                (cityos.mae_s / oba.mae_s - 1.0) * 100.0
            )?;
            let bias: Vec<String> = cityos
                .buckets
                .iter()
                .zip(BUCKET_LABELS)
                .map(|(b, l)| format!("{l} {:+.0}s", b.bias_s))
                .collect();
            writeln!(f, "cityos bias (late +): {}", bias.join(", "))?;
            let coverage: Vec<String> = cityos
                .buckets
                .iter()
                .zip(BUCKET_LABELS)
                .filter_map(|(b, l)| Some(format!("{l} {:.0}%", b.interval_coverage? * 100.0)))
                .collect();
            writeln!(
                f,
                "cityos p10-p90 coverage (80% is calibrated): {}",
                coverage.join(", ")
            )?;
        }
        Ok(())
    }
}
