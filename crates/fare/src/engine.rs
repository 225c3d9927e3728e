//! From taps to charges, one tap at a time, the way a card validator works.
//!
//! [`JourneyState`] holds what a validator must remember about a card: the
//! open journey, what it has been charged so far, and the last tap's time.
//! Each [`JourneyState::tap`] returns the charges made at that tap and
//! nothing later changes them, so "the amount charged at this tap" is always
//! known at the tap. [`quote`](crate::quote) is a loop over this and adds no
//! rule of its own.
//!
//! Two consequences of charging as we go are deliberate:
//!
//! * **Nothing is refunded.** The base part of a journey is the highest base
//!   fare seen so far and the distance part is the most steps charged so
//!   far. If a later leg lowers what the distance would cost (a wide-area
//!   leg raises the free distance to 30 km), the steps already charged stay.
//! * **A missing tap-out is found at the next tap-in**, which is where its
//!   penalty is charged. Until then the leg is simply open: the rider may
//!   still be on board. [`JourneyState::finish`] charges it for a caller
//!   that knows no tap will come (a retired card, a written-off day).

use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

use crate::distance::Distances;
use crate::rules::{Category, FareRules, Mode, ModeRules};

/// Which way a card was tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TapKind {
    /// Boarding a bus or entering the subway gates.
    In,
    /// Alighting from a bus or leaving the subway gates.
    Out,
}

/// One tap of a card on a validator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tap {
    /// The validator's clock, in the city's local civil time. Windows such
    /// as 21:00–07:00 are read from it directly.
    pub at: DateTime,
    /// In or out.
    pub kind: TapKind,
    /// The stop or station where the validator is.
    pub stop_id: String,
    /// The route of the vehicle; `None` for gated modes, whose validators
    /// are at station gates.
    pub route_id: Option<String>,
    /// The mode, which decides the fare.
    pub mode: Mode,
}

impl Tap {
    /// A tap-in on `route_id` (`None` at a subway gate).
    pub fn tap_in(at: DateTime, mode: Mode, route_id: Option<&str>, stop_id: &str) -> Tap {
        Tap {
            at,
            kind: TapKind::In,
            stop_id: stop_id.to_owned(),
            route_id: route_id.map(str::to_owned),
            mode,
        }
    }

    /// A tap-out on `route_id` (`None` at a subway gate).
    pub fn tap_out(at: DateTime, mode: Mode, route_id: Option<&str>, stop_id: &str) -> Tap {
        Tap {
            at,
            kind: TapKind::Out,
            stop_id: stop_id.to_owned(),
            route_id: route_id.map(str::to_owned),
            mode,
        }
    }
}

/// The rule that explains a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// The base fare of the first leg of a journey, at its tap-in.
    BaseFare {
        /// The mode of the first leg.
        mode: Mode,
    },
    /// A transfer onto a mode with a higher base fare: the difference, at
    /// the tap-in, so the journey pays the highest base fare of its legs.
    TransferUpgrade {
        /// The mode whose base fare the journey had paid.
        from_mode: Mode,
        /// The dearer mode boarded.
        to_mode: Mode,
    },
    /// Distance steps the journey's total distance has newly started, at a
    /// tap-out.
    DistanceSurcharge {
        /// Steps added by this charge.
        km_steps: u32,
    },
    /// A leg of a distance-priced mode was never tapped out: the steps it
    /// would add at the mode's `missing_tap_out_m`, at the next tap-in (or
    /// when the record ends).
    MissingTapOut {
        /// The mode of the leg without a tap-out.
        mode: Mode,
        /// Steps added by this charge.
        km_steps: u32,
    },
    /// The early-bird discount on the first boarding of a journey (negative).
    EarlyBirdDiscount {
        /// The mode of the first leg.
        mode: Mode,
    },
}

impl Rule {
    /// The rule's name, as its serialised `rule` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::BaseFare { .. } => "base_fare",
            Rule::TransferUpgrade { .. } => "transfer_upgrade",
            Rule::DistanceSurcharge { .. } => "distance_surcharge",
            Rule::MissingTapOut { .. } => "missing_tap_out",
            Rule::EarlyBirdDiscount { .. } => "early_bird_discount",
        }
    }
}

impl std::fmt::Display for Rule {
    /// A compact label, used in the worked examples: `base_fare(trunk)`,
    /// `transfer_upgrade(trunk→subway)`, `distance_surcharge(2 steps)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps = |n: u32| {
            if n == 1 {
                "1 step".to_owned()
            } else {
                format!("{n} steps")
            }
        };
        match self {
            Rule::BaseFare { mode } => write!(f, "base_fare({mode})"),
            Rule::TransferUpgrade { from_mode, to_mode } => {
                write!(f, "transfer_upgrade({from_mode}→{to_mode})")
            }
            Rule::DistanceSurcharge { km_steps } => {
                write!(f, "distance_surcharge({})", steps(*km_steps))
            }
            Rule::MissingTapOut { mode, km_steps } => {
                write!(f, "missing_tap_out({mode}, {})", steps(*km_steps))
            }
            Rule::EarlyBirdDiscount { mode } => write!(f, "early_bird_discount({mode})"),
        }
    }
}

/// One component of what a tap costs. A tap may carry several (a base fare
/// and an early-bird discount; a missing tap-out penalty and a new base
/// fare). Amounts are never zero: a rule that costs nothing leaves no charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The tap at which the amount is charged (its position in the taps).
    pub tap_index: usize,
    /// The journey the amount belongs to (its position in
    /// [`Quote::journeys`]). A missing tap-out penalty belongs to the
    /// journey it ends, though it is charged at the tap that starts the next.
    pub journey: usize,
    /// The amount in the currency's minor unit; negative for a discount.
    pub amount: i64,
    /// Why.
    pub rule: Rule,
    /// The same in words, with the figures used.
    pub explanation: String,
}

/// Why a boarding started a new journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyStart {
    /// There was no journey before it.
    FirstTap,
    /// The previous leg was never tapped out, which loses the transfer.
    NoTapOut,
    /// It came later than the transfer window after the previous tap-out.
    WindowExpired,
    /// It is on a route already ridden in the journey.
    SameRoute,
    /// The journey already had its maximum number of transfers.
    TransferLimit,
    /// It re-enters a gated mode after leaving it, and is not a same-station
    /// re-entry (another station, too late, or the re-entry already used).
    LeftGates,
}

/// How a leg joined its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Boarding {
    /// The leg starts a journey.
    Start {
        /// Why it could not continue the previous one.
        reason: JourneyStart,
    },
    /// A transfer within the window.
    Transfer,
    /// Back through the gates at the station just left, within the re-entry
    /// window. It is a transfer that costs nothing by itself, so it shows
    /// here rather than as a charge.
    SameStationReentry,
}

/// Where and when a leg was tapped out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alighting {
    /// The tap-out's position in the taps.
    pub tap_index: usize,
    /// The stop or station.
    pub stop_id: String,
    /// The time used for the tap (see [`NoteKind::ClockBehind`]).
    pub at: DateTime,
}

/// One ride: a tap-in and, if the rider tapped out, a tap-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// The mode.
    pub mode: Mode,
    /// The route; `None` for gated modes.
    pub route_id: Option<String>,
    /// How the leg joined its journey.
    pub boarding: Boarding,
    /// The tap-in's position in the taps.
    pub board_tap: usize,
    /// The stop or station of the tap-in.
    pub board_stop: String,
    /// The time used for the tap-in (see [`NoteKind::ClockBehind`]).
    pub board_at: DateTime,
    /// The tap-out, if there was one.
    pub alight: Option<Alighting>,
    /// The distance counted for the leg: `Some` for a distance-priced leg
    /// that was tapped out, `None` otherwise.
    pub distance_m: Option<u32>,
}

/// Legs joined by transfers, priced as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    /// The legs in order; the first has [`Boarding::Start`].
    pub legs: Vec<Leg>,
    /// The sum of the charges that belong to the journey.
    pub total: i64,
}

/// Something about a tap that was handled by a rule rather than charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The tap's position in the taps.
    pub tap_index: usize,
    /// What happened.
    pub kind: NoteKind,
}

/// What a [`Note`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoteKind {
    /// The tap's time is earlier than the previous tap's. Validator clocks
    /// drift, but a card records its taps in order, so the order is trusted
    /// and the tap is taken to happen at the previous tap's time.
    ClockBehind {
        /// How far behind, in seconds.
        seconds: i64,
    },
    /// A tap-out with no open leg to close, or one that does not match the
    /// open leg's mode and route. It is ignored; an open leg stays open.
    OutWithoutIn,
}

/// What one tap did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapResult {
    /// The charges made at this tap, possibly none.
    pub charges: Vec<Charge>,
    /// Anything handled by rule rather than charged.
    pub notes: Vec<Note>,
    /// The journey this tap ended, when it started a new one.
    pub closed: Option<Journey>,
}

impl TapResult {
    /// The net amount charged at this tap.
    pub fn amount(&self) -> i64 {
        self.charges.iter().map(|c| c.amount).sum()
    }
}

/// What [`JourneyState::finish`] settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// A missing tap-out penalty for a leg left open, if any.
    pub charges: Vec<Charge>,
    /// The journey that was open, if any.
    pub journey: Option<Journey>,
}

/// The fare of a sequence of taps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Every charge, in the order made.
    pub charges: Vec<Charge>,
    /// The journeys, in order.
    pub journeys: Vec<Journey>,
    /// Taps handled by rule rather than charged.
    pub notes: Vec<Note>,
    /// The sum of all charges.
    pub total: i64,
}

/// Input that no fare rule can make sense of. Each names the tap.
///
/// Inconsistent but possible sequences (a tap-out without a tap-in, two
/// tap-ins in a row, a clock running behind) are not errors: they are
/// handled by rule and reported as [`Note`]s or charges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The tap names no stop.
    #[error("tap {tap_index}: stop_id is empty; every validator is at a stop or station")]
    EmptyStop {
        /// The tap's position.
        tap_index: usize,
    },
    /// The rules do not price the tap's mode.
    #[error(
        "tap {tap_index}: the fare rules have no fare for mode `{mode}`; add [modes.{mode}] to them"
    )]
    UnknownMode {
        /// The tap's position.
        tap_index: usize,
        /// The mode.
        mode: Mode,
    },
    /// A tap on a mode that needs a route (every non-gated mode) has none.
    #[error("tap {tap_index}: a {mode} tap needs a route_id; the same-route rule depends on it")]
    MissingRoute {
        /// The tap's position.
        tap_index: usize,
        /// The mode.
        mode: Mode,
    },
    /// A tap at the gates of a gated mode names a route.
    #[error(
        "tap {tap_index}: {mode} taps are at station gates and name no route, but route_id is `{route_id}`"
    )]
    UnexpectedRoute {
        /// The tap's position.
        tap_index: usize,
        /// The mode.
        mode: Mode,
        /// The route given.
        route_id: String,
    },
    /// The distance source does not know the leg's stops.
    #[error(
        "tap {tap_index}: the network has no distance from stop `{from_stop}` to `{to_stop}` on {route}; \
         check that both stops are on it",
        route = route_id.as_deref().map_or("the gated network".to_owned(), |r| format!("route `{r}`"))
    )]
    UnknownDistance {
        /// The tap-out's position.
        tap_index: usize,
        /// The route, `None` for a gated mode.
        route_id: Option<String>,
        /// The boarding stop.
        from_stop: String,
        /// The alighting stop.
        to_stop: String,
    },
}

/// What a validator remembers about one card between taps.
///
/// It holds no reference to the rules or the network, so it can be stored
/// between taps (it is `Serialize`). Give it the same rules at every tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyState {
    category: Category,
    taps_seen: usize,
    journeys_started: usize,
    last_at: Option<DateTime>,
    open: Option<OpenJourney>,
}

/// The journey in progress and what it has been charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OpenJourney {
    index: usize,
    legs: Vec<Leg>,
    total: i64,
    /// The highest base fare charged, and its mode.
    base: i64,
    base_mode: Mode,
    /// Distance steps charged so far; never lowered.
    steps: u32,
    /// Distance of the distance-priced legs tapped out so far.
    distance_m: u64,
    reentries: u32,
}

enum Decision {
    Start(JourneyStart),
    Transfer,
    Reentry,
}

impl JourneyState {
    /// A card with no taps yet.
    pub fn new(category: Category) -> JourneyState {
        JourneyState {
            category,
            taps_seen: 0,
            journeys_started: 0,
            last_at: None,
            open: None,
        }
    }

    /// The card's rider category.
    pub fn category(&self) -> Category {
        self.category
    }

    /// How many taps have been accepted; the next tap gets this index.
    pub fn taps_seen(&self) -> usize {
        self.taps_seen
    }

    /// The journey in progress, as it stands: its last leg may still be
    /// open, and its total is what has been charged so far.
    pub fn current_journey(&self) -> Option<Journey> {
        self.open.as_ref().map(|o| Journey {
            legs: o.legs.clone(),
            total: o.total,
        })
    }

    /// Takes one tap and returns what it costs.
    ///
    /// On error the state is unchanged and the tap does not count, so a
    /// caller may fix the input and try again.
    pub fn tap(
        &mut self,
        rules: &FareRules,
        tap: &Tap,
        distances: &dyn Distances,
    ) -> Result<TapResult, QuoteError> {
        let tap_index = self.taps_seen;
        let mode_rules = check(rules, tap_index, tap)?;
        let mut notes = Vec::new();
        let at = match self.last_at {
            Some(last) if tap.at < last => {
                let seconds = last.duration_since(tap.at).as_secs();
                notes.push(Note {
                    tap_index,
                    kind: NoteKind::ClockBehind { seconds },
                });
                last
            }
            _ => tap.at,
        };
        let result = match tap.kind {
            TapKind::In => self.board(rules, mode_rules, tap_index, tap, at, notes),
            TapKind::Out => self.alight(rules, mode_rules, tap_index, tap, at, distances, notes)?,
        };
        self.taps_seen += 1;
        self.last_at = Some(at);
        Ok(result)
    }

    /// Closes the record for good: ends the open journey and charges the
    /// missing tap-out penalty of a leg still open, as the next tap-in would
    /// have. Use it only when no tap can follow; [`quote`](crate::quote)
    /// does not, since its last leg may still be under way. The penalty is
    /// charged at that leg's tap-in, the only tap it can be attributed to.
    /// The state is then as if new (the tap count goes on).
    pub fn finish(&mut self, rules: &FareRules) -> Finished {
        let Some(mut open) = self.open.take() else {
            return Finished {
                charges: Vec::new(),
                journey: None,
            };
        };
        let mut charges = Vec::new();
        if let Some(leg) = open.legs.last()
            && leg.alight.is_none()
        {
            let board_tap = leg.board_tap;
            charges.extend(open.missing_tap_out(rules, self.category, board_tap));
        }
        Finished {
            charges,
            journey: Some(open.into_journey()),
        }
    }

    fn board(
        &mut self,
        rules: &FareRules,
        mode_rules: &ModeRules,
        tap_index: usize,
        tap: &Tap,
        at: DateTime,
        notes: Vec<Note>,
    ) -> TapResult {
        let category = self.category;
        let mut charges = Vec::new();
        let decision = match self.open.as_mut() {
            None => Decision::Start(JourneyStart::FirstTap),
            Some(open) => {
                let leg_open = open.legs.last().is_some_and(|l| l.alight.is_none());
                if leg_open {
                    charges.extend(open.missing_tap_out(rules, category, tap_index));
                    Decision::Start(JourneyStart::NoTapOut)
                } else {
                    open.decide(rules, mode_rules, tap, at)
                }
            }
        };
        let leg = |boarding| Leg {
            mode: tap.mode,
            route_id: tap.route_id.clone(),
            boarding,
            board_tap: tap_index,
            board_stop: tap.stop_id.clone(),
            board_at: at,
            alight: None,
            distance_m: None,
        };
        let mut closed = None;
        match decision {
            Decision::Start(reason) => {
                closed = self.open.take().map(OpenJourney::into_journey);
                let journey = self.journeys_started;
                self.journeys_started += 1;
                let base = mode_rules.fare.get(category);
                let mut total = 0;
                let mut charge = |amount: i64, rule: Rule, explanation: String| {
                    if amount != 0 {
                        total += amount;
                        charges.push(Charge {
                            tap_index,
                            journey,
                            amount,
                            rule,
                            explanation,
                        });
                    }
                };
                charge(
                    base,
                    Rule::BaseFare { mode: tap.mode },
                    format!(
                        "base fare of the {} for {category}: {}",
                        tap.mode.display_name(),
                        rules.format_money(base)
                    ),
                );
                if let Some(early) = rules.early_bird()
                    && early.hours.contains(at.time())
                    && !early.excluded_modes.contains(&tap.mode)
                {
                    let discount = early.discount(base);
                    charge(
                        -discount,
                        Rule::EarlyBirdDiscount { mode: tap.mode },
                        format!(
                            "early bird: first boarding at {} is before {}: {}% of {}, rounded down to {}",
                            hh_mm(at),
                            hh_mm_t(early.hours.until),
                            early.percent,
                            rules.format_money(base),
                            rules.format_money(early.round_down_to)
                        ),
                    );
                }
                self.open = Some(OpenJourney {
                    index: journey,
                    legs: vec![leg(Boarding::Start { reason })],
                    total,
                    base,
                    base_mode: tap.mode,
                    steps: 0,
                    distance_m: 0,
                    reentries: 0,
                });
            }
            Decision::Transfer | Decision::Reentry => {
                // `decide` only continues an open journey.
                if let Some(open) = self.open.as_mut() {
                    let boarding = if let Decision::Reentry = decision {
                        open.reentries += 1;
                        Boarding::SameStationReentry
                    } else {
                        Boarding::Transfer
                    };
                    let base = mode_rules.fare.get(category);
                    if base > open.base {
                        let amount = base - open.base;
                        charges.push(Charge {
                            tap_index,
                            journey: open.index,
                            amount,
                            rule: Rule::TransferUpgrade { from_mode: open.base_mode, to_mode: tap.mode },
                            explanation: format!(
                                "transfer to the {}: its base fare {} is higher than the {} paid for the {}",
                                tap.mode.display_name(),
                                rules.format_money(base),
                                rules.format_money(open.base),
                                open.base_mode.display_name()
                            ),
                        });
                        open.total += amount;
                        open.base = base;
                        open.base_mode = tap.mode;
                    }
                    open.legs.push(leg(boarding));
                }
            }
        }
        TapResult {
            charges,
            notes,
            closed,
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    fn alight(
        &mut self,
        rules: &FareRules,
        mode_rules: &ModeRules,
        tap_index: usize,
        tap: &Tap,
        at: DateTime,
        distances: &dyn Distances,
        mut notes: Vec<Note>,
    ) -> Result<TapResult, QuoteError> {
        let category = self.category;
        let matching = self.open.as_mut().and_then(|open| {
            let leg = open.legs.last()?;
            let matches =
                leg.alight.is_none() && leg.mode == tap.mode && leg.route_id == tap.route_id;
            matches.then_some(open)
        });
        let Some(open) = matching else {
            notes.push(Note {
                tap_index,
                kind: NoteKind::OutWithoutIn,
            });
            return Ok(TapResult {
                charges: Vec::new(),
                notes,
                closed: None,
            });
        };
        // Look the distance up before changing anything, so an unknown
        // distance leaves the state as it was.
        let distance = match (mode_rules.distance, open.legs.last()) {
            (Some(_), Some(leg)) if leg.board_stop == tap.stop_id => Some(0),
            (Some(_), Some(leg)) => Some(
                distances
                    .distance_m(tap.route_id.as_deref(), &leg.board_stop, &tap.stop_id)
                    .ok_or_else(|| QuoteError::UnknownDistance {
                        tap_index,
                        route_id: tap.route_id.clone(),
                        from_stop: leg.board_stop.clone(),
                        to_stop: tap.stop_id.clone(),
                    })?,
            ),
            _ => None,
        };
        if let Some(leg) = open.legs.last_mut() {
            leg.alight = Some(Alighting {
                tap_index,
                stop_id: tap.stop_id.clone(),
                at,
            });
            leg.distance_m = distance;
        }
        let mut charges = Vec::new();
        if let Some(d) = distance {
            open.distance_m += u64::from(d);
            charges.extend(open.charge_steps(rules, category, tap_index, None));
        }
        Ok(TapResult {
            charges,
            notes,
            closed: None,
        })
    }
}

impl OpenJourney {
    /// Whether a boarding continues this journey. Called only when the
    /// last leg was tapped out.
    fn decide(
        &self,
        rules: &FareRules,
        mode_rules: &ModeRules,
        tap: &Tap,
        at: DateTime,
    ) -> Decision {
        let Some(last) = self.legs.last() else {
            return Decision::Start(JourneyStart::FirstTap);
        };
        let Some(alight) = &last.alight else {
            return Decision::Start(JourneyStart::NoTapOut);
        };
        let transfer = rules.transfer();
        if self.legs.len() > transfer.max_transfers as usize {
            return Decision::Start(JourneyStart::TransferLimit);
        }
        let gap_s = at.duration_since(alight.at).as_secs();
        if mode_rules.gated && last.mode == tap.mode {
            // Inside the gates a ride is one leg, so coming back in is a new
            // journey, except for a same-station re-entry.
            return match transfer.reentry {
                Some(r)
                    if alight.stop_id == tap.stop_id
                        && gap_s <= r.window_s
                        && self.reentries < r.per_journey =>
                {
                    Decision::Reentry
                }
                _ => Decision::Start(JourneyStart::LeftGates),
            };
        }
        // The window is chosen by the time of the tap-out, which is when the
        // rider starts waiting.
        let window_s = match transfer.night {
            Some(night) if night.hours.contains(alight.at.time()) => night.window_s,
            _ => transfer.window_s,
        };
        if gap_s > window_s {
            return Decision::Start(JourneyStart::WindowExpired);
        }
        if let Some(route) = &tap.route_id
            && self.legs.iter().any(|l| l.route_id.as_ref() == Some(route))
        {
            return Decision::Start(JourneyStart::SameRoute);
        }
        Decision::Transfer
    }

    /// The free distance of the journey: that of its highest-fare
    /// distance-priced mode (on a tie, the longer free distance, which is
    /// the rider's benefit). `None` when no leg is distance-priced.
    fn free_m(&self, rules: &FareRules, category: Category) -> Option<u32> {
        self.legs
            .iter()
            .filter_map(|leg| {
                let mode = rules.mode(leg.mode)?;
                Some((mode.fare.get(category), mode.distance?.free_m))
            })
            .max()
            .map(|(_, free_m)| free_m)
    }

    /// Charges the steps that the journey's distance has started beyond
    /// those already charged. With `missing` set, the distance includes a
    /// leg assumed to have run its mode's `missing_tap_out_m`.
    fn charge_steps(
        &mut self,
        rules: &FareRules,
        category: Category,
        tap_index: usize,
        missing: Option<(Mode, u32)>,
    ) -> Option<Charge> {
        let table = rules.distance()?;
        let free_m = self.free_m(rules, category)?;
        let distance_m = self.distance_m + missing.map_or(0, |(_, m)| u64::from(m));
        let steps = table.steps(free_m, distance_m);
        if steps <= self.steps {
            return None;
        }
        let new_steps = steps - self.steps;
        let step_fare = table.step_fare.get(category);
        let amount = i64::from(new_steps).saturating_mul(step_fare);
        self.steps = steps;
        if amount == 0 {
            return None;
        }
        self.total += amount;
        let common = format!(
            "journey distance {} is {} past the free {}, {} more than already charged: {} × {}",
            km(distance_m),
            plural(steps, "step"),
            km(u64::from(free_m)),
            new_steps,
            new_steps,
            rules.format_money(step_fare)
        );
        let (rule, explanation) = match missing {
            None => (
                Rule::DistanceSurcharge {
                    km_steps: new_steps,
                },
                common,
            ),
            Some((mode, assumed_m)) => (
                Rule::MissingTapOut {
                    mode,
                    km_steps: new_steps,
                },
                format!(
                    "no tap-out on the {} leg, charged as if it ran {}: {common}",
                    mode.display_name(),
                    km(u64::from(assumed_m))
                ),
            ),
        };
        Some(Charge {
            tap_index,
            journey: self.index,
            amount,
            rule,
            explanation,
        })
    }

    /// The penalty for the open last leg, charged at `tap_index`. A leg of a
    /// flat mode has none: losing the transfer is its penalty.
    fn missing_tap_out(
        &mut self,
        rules: &FareRules,
        category: Category,
        tap_index: usize,
    ) -> Option<Charge> {
        let mode = self.legs.last()?.mode;
        let assumed_m = rules.mode(mode)?.distance?.missing_tap_out_m;
        self.charge_steps(rules, category, tap_index, Some((mode, assumed_m)))
    }

    fn into_journey(self) -> Journey {
        Journey {
            legs: self.legs,
            total: self.total,
        }
    }
}

/// Refuses input that no rule can price. Returns the mode's rules.
fn check<'r>(
    rules: &'r FareRules,
    tap_index: usize,
    tap: &Tap,
) -> Result<&'r ModeRules, QuoteError> {
    if tap.stop_id.is_empty() {
        return Err(QuoteError::EmptyStop { tap_index });
    }
    let mode_rules = rules.mode(tap.mode).ok_or(QuoteError::UnknownMode {
        tap_index,
        mode: tap.mode,
    })?;
    match (&tap.route_id, mode_rules.gated) {
        (Some(route_id), true) => Err(QuoteError::UnexpectedRoute {
            tap_index,
            mode: tap.mode,
            route_id: route_id.clone(),
        }),
        (None, false) => Err(QuoteError::MissingRoute {
            tap_index,
            mode: tap.mode,
        }),
        (Some(route_id), false) if route_id.is_empty() => Err(QuoteError::MissingRoute {
            tap_index,
            mode: tap.mode,
        }),
        _ => Ok(mode_rules),
    }
}

fn hh_mm(at: DateTime) -> String {
    hh_mm_t(at.time())
}

fn hh_mm_t(t: jiff::civil::Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Metres as kilometres, exact and without floating point: `10 km`,
/// `10.1 km`, `10.05 km`.
fn km(m: u64) -> String {
    let (whole, frac) = (m / 1000, m % 1000);
    if frac == 0 {
        format!("{whole} km")
    } else {
        let frac = format!("{frac:03}");
        format!("{whole}.{} km", frac.trim_end_matches('0'))
    }
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::distance::DistanceTable;

    fn at(h: i8, m: i8) -> DateTime {
        date(2025, 3, 3).at(h, m, 0, 0)
    }

    fn table() -> DistanceTable {
        let mut t = DistanceTable::new();
        t.insert_both_ways(Some("101"), "A", "B", 4_000);
        t.insert_both_ways(None, "S1", "S2", 12_000);
        t
    }

    #[test]
    fn malformed_taps_are_errors_that_name_the_tap() {
        let rules = FareRules::seoul();
        let mut state = JourneyState::new(Category::Adult);
        let cases = [
            (
                Tap::tap_in(at(8, 0), Mode::Trunk, Some("101"), ""),
                "tap 0: stop_id is empty; every validator is at a stop or station",
            ),
            (
                Tap::tap_in(at(8, 0), Mode::Trunk, None, "A"),
                "tap 0: a trunk tap needs a route_id; the same-route rule depends on it",
            ),
            (
                Tap::tap_in(at(8, 0), Mode::Subway, Some("2"), "S1"),
                "tap 0: subway taps are at station gates and name no route, but route_id is `2`",
            ),
        ];
        for (tap, message) in cases {
            let err = state.tap(&rules, &tap, &table()).expect_err("malformed");
            assert_eq!(err.to_string(), message);
        }
        assert_eq!(
            state,
            JourneyState::new(Category::Adult),
            "errors leave the state as it was"
        );
    }

    #[test]
    fn an_unknown_distance_is_an_error_and_leaves_the_state_unchanged() {
        let rules = FareRules::seoul();
        let mut state = JourneyState::new(Category::Adult);
        state
            .tap(
                &rules,
                &Tap::tap_in(at(8, 0), Mode::Trunk, Some("101"), "A"),
                &table(),
            )
            .expect("in");
        let before = state.clone();
        let err = state
            .tap(
                &rules,
                &Tap::tap_out(at(8, 10), Mode::Trunk, Some("101"), "Z"),
                &table(),
            )
            .expect_err("unknown stop pair");
        assert_eq!(
            err.to_string(),
            "tap 1: the network has no distance from stop `A` to `Z` on route `101`; check that both stops are on it"
        );
        assert_eq!(state, before);
        let fixed = state.tap(
            &rules,
            &Tap::tap_out(at(8, 10), Mode::Trunk, Some("101"), "B"),
            &table(),
        );
        assert_eq!(
            fixed.map(|r| r.amount()),
            Ok(0),
            "the corrected tap is tap 1 again"
        );
        assert_eq!(state.taps_seen(), 2);
    }

    #[test]
    fn a_mode_the_city_does_not_price_is_an_error() {
        let rules = FareRules::from_toml(
            "currency = \"KRW\"\ncurrency_decimals = 0\n[transfer]\nmax_transfers = 0\n\
             [modes.trunk]\nfare = { adult = 1500, youth = 900, child = 550 }\n",
        )
        .expect("rules");
        let err = JourneyState::new(Category::Adult)
            .tap(
                &rules,
                &Tap::tap_in(at(8, 0), Mode::Night, Some("N13"), "A"),
                &table(),
            )
            .expect_err("night is not priced");
        assert_eq!(
            err.to_string(),
            "tap 0: the fare rules have no fare for mode `night`; add [modes.night] to them"
        );
    }

    #[test]
    fn stray_taps_and_clocks_running_behind_are_noted_not_charged() {
        let rules = FareRules::seoul();
        let mut state = JourneyState::new(Category::Adult);
        let stray = state
            .tap(
                &rules,
                &Tap::tap_out(at(8, 0), Mode::Trunk, Some("101"), "A"),
                &table(),
            )
            .expect("ok");
        assert_eq!(
            stray.notes,
            [Note {
                tap_index: 0,
                kind: NoteKind::OutWithoutIn
            }]
        );
        assert!(stray.charges.is_empty());
        state
            .tap(
                &rules,
                &Tap::tap_in(at(8, 5), Mode::Trunk, Some("101"), "A"),
                &table(),
            )
            .expect("ok");
        // Out on another route does not close the leg.
        let other = state
            .tap(
                &rules,
                &Tap::tap_out(at(8, 6), Mode::Trunk, Some("102"), "B"),
                &table(),
            )
            .expect("ok");
        assert_eq!(
            other.notes,
            [Note {
                tap_index: 2,
                kind: NoteKind::OutWithoutIn
            }]
        );
        // A tap-out stamped two minutes before the previous tap.
        let behind = state
            .tap(
                &rules,
                &Tap::tap_out(at(8, 4), Mode::Trunk, Some("101"), "B"),
                &table(),
            )
            .expect("ok");
        assert_eq!(
            behind.notes,
            [Note {
                tap_index: 3,
                kind: NoteKind::ClockBehind { seconds: 120 }
            }]
        );
        let journey = state.current_journey().expect("open journey");
        let alight = journey.legs[0].alight.as_ref().expect("tapped out");
        assert_eq!(alight.at, at(8, 6), "taken at the previous tap's time");
        assert_eq!(journey.legs[0].distance_m, Some(4_000));
    }

    #[test]
    fn finish_charges_the_penalty_of_a_leg_left_open_at_its_tap_in() {
        let rules = FareRules::seoul();
        let mut state = JourneyState::new(Category::Adult);
        state
            .tap(
                &rules,
                &Tap::tap_in(at(8, 0), Mode::Subway, None, "S1"),
                &table(),
            )
            .expect("in");
        let journey = state.current_journey().expect("open");
        assert_eq!(journey.total, 1550);
        assert!(journey.legs[0].alight.is_none());
        let finished = state.finish(&rules);
        let rules_charged: Vec<_> = finished
            .charges
            .iter()
            .map(|c| (c.tap_index, c.amount, c.rule))
            .collect();
        assert_eq!(
            rules_charged,
            [(
                0,
                800,
                Rule::MissingTapOut {
                    mode: Mode::Subway,
                    km_steps: 8
                }
            )]
        );
        assert_eq!(finished.journey.map(|j| j.total), Some(2350));
        assert!(state.current_journey().is_none());
        assert_eq!(
            state.finish(&rules),
            Finished {
                charges: vec![],
                journey: None
            }
        );
    }

    #[test]
    fn a_new_journey_hands_back_the_one_it_closed() {
        let rules = FareRules::seoul();
        let mut state = JourneyState::new(Category::Child);
        let t = table();
        state
            .tap(
                &rules,
                &Tap::tap_in(at(8, 0), Mode::Trunk, Some("101"), "A"),
                &t,
            )
            .expect("in");
        state
            .tap(
                &rules,
                &Tap::tap_out(at(8, 10), Mode::Trunk, Some("101"), "B"),
                &t,
            )
            .expect("out");
        let next = state
            .tap(&rules, &Tap::tap_in(at(9, 0), Mode::Subway, None, "S1"), &t)
            .expect("in");
        let closed = next.closed.expect("the first journey closes");
        assert_eq!(closed.total, 550);
        assert_eq!(
            closed.legs[0].boarding,
            Boarding::Start {
                reason: JourneyStart::FirstTap
            }
        );
        let open = state.current_journey().expect("second journey");
        assert_eq!(
            open.legs[0].boarding,
            Boarding::Start {
                reason: JourneyStart::WindowExpired
            }
        );
        assert_eq!(next.charges[0].journey, 1);
    }

    #[test]
    fn charges_serialise_with_their_rule_named() {
        // Other crates read `rule` and these names; changing them is a
        // breaking change.
        let charge = Charge {
            tap_index: 2,
            journey: 0,
            amount: 50,
            rule: Rule::TransferUpgrade {
                from_mode: Mode::Trunk,
                to_mode: Mode::Subway,
            },
            explanation: "…".to_owned(),
        };
        let json = serde_json::to_string(&charge).expect("serialises");
        assert_eq!(
            json,
            r#"{"tap_index":2,"journey":0,"amount":50,"rule":{"rule":"transfer_upgrade","from_mode":"trunk","to_mode":"subway"},"explanation":"…"}"#
        );
        let tap: Tap = serde_json::from_str(
            r#"{"at":"2025-03-03T08:00:00","kind":"in","stop_id":"S1","route_id":null,"mode":"wide_area"}"#,
        )
        .expect("a tap deserialises");
        assert_eq!(tap.mode, Mode::WideArea);
    }

    #[test]
    fn explanations_give_the_figures() {
        let rules = FareRules::seoul();
        let taps = [
            Tap::tap_in(at(6, 29), Mode::Trunk, Some("101"), "A"),
            Tap::tap_out(at(6, 40), Mode::Trunk, Some("101"), "B"),
            Tap::tap_in(at(6, 50), Mode::Subway, None, "S1"),
            Tap::tap_out(at(7, 10), Mode::Subway, None, "S2"),
        ];
        let q = crate::quote(&rules, Category::Adult, &taps, &table()).expect("quote");
        let words: Vec<&str> = q.charges.iter().map(|c| c.explanation.as_str()).collect();
        assert_eq!(
            words,
            [
                "base fare of the trunk bus for adult: 1,500 KRW",
                "early bird: first boarding at 06:29 is before 06:30: 20% of 1,500 KRW, rounded down to 10 KRW",
                "transfer to the subway: its base fare 1,550 KRW is higher than the 1,500 KRW paid for the trunk bus",
                "journey distance 16 km is 2 steps past the free 10 km, 2 more than already charged: 2 × 100 KRW",
            ]
        );
        assert_eq!(q.total, 1500 - 300 + 50 + 200);
    }
}
