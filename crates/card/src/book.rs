//! [`CardBook`]: every card, its taps and the ledger, as pure state.
//!
//! The book changes only through [`CardBook::execute`], a deterministic
//! function of the current state and one [`Operation`]. The desk persists
//! each executed operation before answering, and a restart replays the
//! operations in order to rebuild exactly the same book, ledger included.

use std::collections::BTreeMap;

use cityos_fare::{Category, Distances, FareRules, JourneyState, Mode, Tap, TapKind};
use cityos_ledger::{Applied, Ledger, Limits, Transfer, TransferKind, Won};
use jiff::civil::DateTime;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// A card number.
pub type CardId = i64;

/// Most a card may hold, in won.
pub const MAX_BALANCE: Won = 500_000;
/// How far below zero a card may go: the one boarding on a negative balance
/// and the surcharges of that journey.
pub const NEGATIVE_ALLOWANCE: Won = 10_000;
/// Taps this close before a new tap may be repriced by it (a journey cannot span more).
const REPRICE_WINDOW_HOURS: i64 = 12;

/// Ledger account of a card.
pub fn card_account(card: CardId) -> String {
    format!("card:{card}")
}
/// Money paid in at top-ups.
pub const TOP_UP_ACCOUNT: &str = "cash:top_up";
/// Money paid back at refunds.
pub const REFUND_ACCOUNT: &str = "cash:refund";
/// Fares charged but not yet split between operators.
pub const CLEARING_ACCOUNT: &str = "fare:clearing";
/// Ledger account of an operator's fare revenue.
pub fn revenue_account(operator: &str) -> String {
    format!("revenue:{operator}")
}

/// What the book needs to know about the network.
pub trait NetworkView: Distances {
    /// The operator (agency) running `route_id`, or serving `stop_id` when there is no route (subway gates).
    fn operator(&self, route_id: Option<&str>, stop_id: &str) -> String;
}

/// A request to the card desk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Issue a new card.
    Issue {
        /// Fare category.
        category: Category,
        /// The citizen account it is registered to; anonymous when absent.
        #[serde(default)]
        registered_to: Option<i64>,
    },
    /// Put money on a card.
    TopUp {
        /// The card.
        card_id: CardId,
        /// Won, positive.
        amount: Won,
    },
    /// A validator's tap.
    Tap {
        /// The card.
        card_id: CardId,
        /// The validator.
        validator_id: String,
        /// The validator's own transaction counter: a repeat is the same tap.
        counter: i64,
        /// In or out.
        direction: TapKind,
        /// Stop or station.
        stop_id: String,
        /// Bus route; none at subway gates.
        #[serde(default)]
        route_id: Option<String>,
        /// Mode of the route or gate.
        mode: Mode,
        /// The vehicle, for buses.
        #[serde(default)]
        vehicle_id: Option<String>,
        /// Local time of the city when the card touched the validator.
        at: DateTime,
    },
    /// Block a lost registered card and move its balance to a new card.
    Block {
        /// The lost card.
        card_id: CardId,
        /// The card that receives the balance.
        replacement: CardId,
    },
    /// Pay the balance back and close the card.
    Refund {
        /// The card.
        card_id: CardId,
    },
    /// Split the fares of journeys finished before `until` between the
    /// operators who carried them, by their share of the distance.
    Settle {
        /// Local time of the city; journeys with a tap at or after it wait.
        until: DateTime,
    },
}

impl Request {
    /// The request's kind as logged: `issue`, `top_up`, `tap`, `block`, `refund` or `settle`.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Issue { .. } => "issue",
            Request::TopUp { .. } => "top_up",
            Request::Tap { .. } => "tap",
            Request::Block { .. } => "block",
            Request::Refund { .. } => "refund",
            Request::Settle { .. } => "settle",
        }
    }
}

/// An operation as executed and logged: the request, its id and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Client-supplied idempotency id.
    pub op_id: String,
    /// Unix seconds when the desk accepted it.
    pub at: i64,
    /// What was asked.
    pub request: Request,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No such card.
    UnknownCard,
    /// The card was reported lost or was refunded.
    BlockedCard,
    /// The balance does not allow a boarding.
    InsufficientBalance,
    /// The top-up would exceed the card limit.
    BalanceLimit,
    /// Only registered cards can be blocked and moved.
    NotRegistered,
    /// The request makes no sense (e.g. a zero top-up).
    Invalid,
    /// The same op_id was used for a different request.
    OpIdReused,
}

/// One fare component charged at a tap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeLine {
    /// Won.
    pub amount: Won,
    /// The rule, as the fare engine names it.
    pub rule: String,
    /// Why, for a person.
    pub explanation: String,
}

/// The desk's answer; repeats of an operation get the same answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Answer {
    /// A card was issued.
    Issued {
        /// Its number.
        card_id: CardId,
        /// Its category.
        category: Category,
    },
    /// Money was added.
    ToppedUp {
        /// Balance after.
        balance: Won,
    },
    /// The tap was accepted and charged.
    TapAccepted {
        /// Won charged at this tap (negative when a late tap lowered earlier charges).
        amount: Won,
        /// Balance after.
        balance: Won,
        /// What the amount is made of.
        charges: Vec<ChargeLine>,
        /// Whether it arrived after later taps and repriced them.
        late: bool,
    },
    /// The card was blocked and its balance moved.
    Blocked {
        /// Won moved to the replacement.
        moved: Won,
        /// The replacement card.
        replacement: CardId,
    },
    /// The balance was paid back.
    Refunded {
        /// Won paid.
        amount: Won,
    },
    /// Fares were split between operators.
    Settled {
        /// Journeys settled.
        journeys: u64,
        /// Won moved from clearing to operators.
        amount: Won,
    },
    /// Nothing happened, because…
    Refused {
        /// Why.
        reason: RefusalReason,
    },
}

/// A tap the book has priced.
#[derive(Debug, Clone)]
struct PricedTap {
    tap: Tap,
    /// Won charged for this tap so far, all adjustments included.
    charged: Won,
    operator: String,
    op_id: String,
    /// Whether its fare has gone to the operators.
    settled: bool,
}

/// Whether a card can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// In use.
    Active,
    /// Reported lost; its balance moved.
    Blocked,
    /// Paid back and closed.
    Refunded,
}

/// A card.
#[derive(Debug, Clone)]
struct Card {
    category: Category,
    registered_to: Option<i64>,
    status: CardStatus,
    /// Taps in time order.
    taps: Vec<PricedTap>,
    /// The fare engine's state after the last tap, so a tap in order is priced in one step.
    state: JourneyState,
    /// Its operations: positions in the book's journal.
    history: Vec<usize>,
}

/// What executing an operation produced.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The answer.
    pub answer: Answer,
    /// Ledger transfers to persist with it.
    pub transfers: Vec<Transfer>,
    /// The operation's position in the journal (the first one's, for a repeat).
    pub position: usize,
    /// The card concerned.
    pub card_id: CardId,
    /// False when the operation was a repeat: nothing to persist.
    pub new: bool,
}

/// A card as shown to its holder or staff.
#[derive(Debug, Clone, Serialize)]
pub struct CardView {
    /// Number.
    pub card_id: CardId,
    /// Category.
    pub category: Category,
    /// Registered to this user, if any.
    pub registered_to: Option<i64>,
    /// Status.
    pub status: CardStatus,
    /// Balance in won.
    pub balance: Won,
}

/// Every card and the ledger.
#[derive(Debug)]
pub struct CardBook {
    rules: FareRules,
    cards: BTreeMap<CardId, Card>,
    ledger: Ledger,
    /// Every operation executed, in order, with its answer.
    journal: Vec<Journaled>,
    /// op_id → position in the journal, to answer repeats.
    ops: FxHashMap<String, usize>,
    /// validator → counter → position of the tap it recorded.
    taps: FxHashMap<String, FxHashMap<i64, usize>>,
    next_card: CardId,
}

/// An executed operation as the book remembers it.
#[derive(Debug)]
struct Journaled {
    op: Operation,
    /// A fingerprint of the request: a retry under the same op_id must carry the same one.
    fingerprint: u64,
    answer: Answer,
    card_id: CardId,
}

/// First card number handed out.
const FIRST_CARD: CardId = 1_000_000_000_000_001;

impl CardBook {
    /// An empty book pricing with `rules`.
    pub fn new(rules: FareRules) -> CardBook {
        CardBook {
            rules,
            cards: BTreeMap::new(),
            ledger: Ledger::new(),
            journal: Vec::new(),
            ops: FxHashMap::default(),
            taps: FxHashMap::default(),
            next_card: FIRST_CARD,
        }
    }

    /// Prices what follows with `rules` (a fare change); what was charged stays.
    pub fn set_rules(&mut self, rules: FareRules) {
        self.rules = rules;
    }

    /// The fare rules in force.
    pub fn rules(&self) -> &FareRules {
        &self.rules
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// A card's public view.
    pub fn card(&self, card_id: CardId) -> Option<CardView> {
        self.cards.get(&card_id).map(|c| CardView {
            card_id,
            category: c.category,
            registered_to: c.registered_to,
            status: c.status,
            balance: self.ledger.balance(&card_account(card_id)),
        })
    }

    /// Ridership of the accepted taps, of one service date or of all.
    pub fn ridership(&self, date: Option<jiff::civil::Date>) -> crate::ridership::Ridership {
        let taps: Vec<(CardId, Vec<Tap>)> = self
            .cards
            .iter()
            .map(|(id, c)| {
                (
                    *id,
                    c.taps
                        .iter()
                        .filter(|p| date.is_none_or(|d| p.tap.at.date() == d))
                        .map(|p| p.tap.clone())
                        .collect(),
                )
            })
            .collect();
        crate::ridership::Ridership::from_taps(taps.iter().map(|(id, t)| (*id, t.as_slice())))
    }

    /// Number of cards.
    pub fn card_count(&self) -> usize {
        self.cards.len()
    }

    /// Number of operations executed.
    pub fn journal_len(&self) -> usize {
        self.journal.len()
    }

    /// The answer already given to `op_id`, if any.
    pub fn answered(&self, op_id: &str) -> Option<&Answer> {
        self.ops.get(op_id).map(|&i| &self.journal[i].answer)
    }

    /// The operation at `position` in the journal and its answer.
    pub fn journaled(&self, position: usize) -> Option<(&Operation, &Answer)> {
        self.journal.get(position).map(|j| (&j.op, &j.answer))
    }

    /// A card's operations and their answers, oldest first.
    pub fn history(&self, card_id: CardId) -> Vec<(&Operation, &Answer)> {
        self.cards.get(&card_id).map_or_else(Vec::new, |card| {
            card.history
                .iter()
                .filter_map(|&i| self.journaled(i))
                .collect()
        })
    }

    /// The operation id that recorded a validator's tap, if seen.
    pub fn tap_op(&self, validator_id: &str, counter: i64) -> Option<&str> {
        self.taps
            .get(validator_id)
            .and_then(|c| c.get(&counter))
            .map(|&i| self.journal[i].op.op_id.as_str())
    }

    /// Executes one operation. Repeats (same op_id and request, or the same
    /// validator counter) answer as the first time and change nothing.
    pub fn execute(&mut self, op: Operation, network: &dyn NetworkView) -> Executed {
        // A validator's counter identifies its tap whatever else the retry carries.
        if let Request::Tap {
            validator_id,
            counter,
            ..
        } = &op.request
            && let Some(&first) = self
                .taps
                .get(validator_id.as_str())
                .and_then(|c| c.get(counter))
        {
            return self.repeat(first, None);
        }
        let fingerprint = fingerprint(&op.request);
        if let Some(&first) = self.ops.get(&op.op_id) {
            let reused =
                (self.journal[first].fingerprint != fingerprint).then_some(Answer::Refused {
                    reason: RefusalReason::OpIdReused,
                });
            return self.repeat(first, reused);
        }
        let (answer, transfers, card_id) = self.apply(&op, network);
        let position = self.journal.len();
        if let Request::Tap {
            validator_id,
            counter,
            ..
        } = &op.request
        {
            self.taps
                .entry(validator_id.clone())
                .or_default()
                .insert(*counter, position);
        }
        if let Some(card) = self.cards.get_mut(&card_id) {
            card.history.push(position);
        }
        self.ops.insert(op.op_id.clone(), position);
        self.journal.push(Journaled {
            op,
            fingerprint,
            answer: answer.clone(),
            card_id,
        });
        Executed {
            answer,
            transfers,
            position,
            card_id,
            new: true,
        }
    }

    /// The answer to a repeat of the operation at `first`: as then, unless `instead`.
    fn repeat(&self, first: usize, instead: Option<Answer>) -> Executed {
        let first_time = &self.journal[first];
        Executed {
            answer: instead.unwrap_or_else(|| first_time.answer.clone()),
            transfers: vec![],
            position: first,
            card_id: first_time.card_id,
            new: false,
        }
    }

    fn refused(reason: RefusalReason, card_id: CardId) -> (Answer, Vec<Transfer>, CardId) {
        (Answer::Refused { reason }, vec![], card_id)
    }

    fn apply(
        &mut self,
        op: &Operation,
        network: &dyn NetworkView,
    ) -> (Answer, Vec<Transfer>, CardId) {
        match &op.request {
            Request::Issue {
                category,
                registered_to,
            } => {
                let card_id = self.next_card;
                self.next_card += 1;
                self.cards.insert(
                    card_id,
                    Card {
                        category: *category,
                        registered_to: *registered_to,
                        status: CardStatus::Active,
                        taps: vec![],
                        history: vec![],
                        state: JourneyState::new(*category),
                    },
                );
                self.ledger.set_limits(
                    &card_account(card_id),
                    Limits {
                        floor: Some(-NEGATIVE_ALLOWANCE),
                        ceiling: Some(MAX_BALANCE),
                    },
                );
                (
                    Answer::Issued {
                        card_id,
                        category: *category,
                    },
                    vec![],
                    card_id,
                )
            }
            Request::TopUp { card_id, amount } => {
                let card_id = *card_id;
                match self.cards.get(&card_id).map(|c| c.status) {
                    None => return Self::refused(RefusalReason::UnknownCard, card_id),
                    Some(CardStatus::Active) => {}
                    Some(_) => return Self::refused(RefusalReason::BlockedCard, card_id),
                }
                if *amount <= 0 {
                    return Self::refused(RefusalReason::Invalid, card_id);
                }
                let t = transfer(
                    &op.op_id,
                    "top-up",
                    TOP_UP_ACCOUNT,
                    &card_account(card_id),
                    *amount,
                    TransferKind::TopUp,
                    op,
                );
                match self.ledger.apply(t.clone()) {
                    Ok(Applied::New) => (
                        Answer::ToppedUp {
                            balance: self.ledger.balance(&card_account(card_id)),
                        },
                        vec![t],
                        card_id,
                    ),
                    _ => Self::refused(RefusalReason::BalanceLimit, card_id),
                }
            }
            Request::Block {
                card_id,
                replacement,
            } => {
                let (card_id, replacement) = (*card_id, *replacement);
                let Some(card) = self.cards.get(&card_id) else {
                    return Self::refused(RefusalReason::UnknownCard, card_id);
                };
                if card.registered_to.is_none() {
                    return Self::refused(RefusalReason::NotRegistered, card_id);
                }
                if card.status != CardStatus::Active {
                    return Self::refused(RefusalReason::BlockedCard, card_id);
                }
                match self.cards.get(&replacement) {
                    Some(r) if r.status == CardStatus::Active && replacement != card_id => {}
                    Some(_) => return Self::refused(RefusalReason::BlockedCard, card_id),
                    None => return Self::refused(RefusalReason::UnknownCard, card_id),
                }
                let balance = self.ledger.balance(&card_account(card_id));
                let mut transfers = vec![];
                if balance > 0 {
                    let t = transfer(
                        &op.op_id,
                        "move",
                        &card_account(card_id),
                        &card_account(replacement),
                        balance,
                        TransferKind::BalanceMove,
                        op,
                    );
                    if self.ledger.apply(t.clone()).is_err() {
                        return Self::refused(RefusalReason::BalanceLimit, card_id);
                    }
                    transfers.push(t);
                }
                if let Some(card) = self.cards.get_mut(&card_id) {
                    card.status = CardStatus::Blocked;
                }
                (
                    Answer::Blocked {
                        moved: balance.max(0),
                        replacement,
                    },
                    transfers,
                    card_id,
                )
            }
            Request::Refund { card_id } => {
                let card_id = *card_id;
                match self.cards.get(&card_id).map(|c| c.status) {
                    None => return Self::refused(RefusalReason::UnknownCard, card_id),
                    Some(CardStatus::Active) => {}
                    Some(_) => return Self::refused(RefusalReason::BlockedCard, card_id),
                }
                let balance = self.ledger.balance(&card_account(card_id));
                if balance < 0 {
                    return Self::refused(RefusalReason::InsufficientBalance, card_id);
                }
                let mut transfers = vec![];
                if balance > 0 {
                    let t = transfer(
                        &op.op_id,
                        "refund",
                        &card_account(card_id),
                        REFUND_ACCOUNT,
                        balance,
                        TransferKind::Refund,
                        op,
                    );
                    if self.ledger.apply(t.clone()).is_err() {
                        return Self::refused(RefusalReason::Invalid, card_id);
                    }
                    transfers.push(t);
                }
                if let Some(card) = self.cards.get_mut(&card_id) {
                    card.status = CardStatus::Refunded;
                }
                (Answer::Refunded { amount: balance }, transfers, card_id)
            }
            Request::Settle { until } => self.settle(op, *until, network),
            Request::Tap {
                card_id,
                direction,
                stop_id,
                route_id,
                mode,
                at,
                ..
            } => {
                let card_id = *card_id;
                let tap = Tap {
                    at: *at,
                    kind: *direction,
                    stop_id: stop_id.clone(),
                    route_id: route_id.clone(),
                    mode: *mode,
                };
                self.tap(op, card_id, tap, network)
            }
        }
    }

    fn settle(
        &mut self,
        op: &Operation,
        until: DateTime,
        network: &dyn NetworkView,
    ) -> (Answer, Vec<Transfer>, CardId) {
        let mut owed: BTreeMap<String, Won> = BTreeMap::new();
        let mut journeys = 0u64;
        for card in self.cards.values_mut() {
            let open: Vec<usize> = (0..card.taps.len())
                .filter(|&i| !card.taps[i].settled)
                .collect();
            if open.is_empty() {
                continue;
            }
            let taps: Vec<Tap> = open.iter().map(|&i| card.taps[i].tap.clone()).collect();
            let Ok(quote) = cityos_fare::quote(&self.rules, card.category, &taps, network) else {
                continue;
            };
            for journey in &quote.journeys {
                let indices: Vec<usize> = journey
                    .legs
                    .iter()
                    .flat_map(|l| {
                        std::iter::once(l.board_tap).chain(l.alight.as_ref().map(|a| a.tap_index))
                    })
                    .collect();
                if indices.iter().any(|&k| taps[k].at >= until) {
                    continue;
                }
                journeys += 1;
                let revenue: Won = indices.iter().map(|&k| card.taps[open[k]].charged).sum();
                // Distance shares; legs without a measured distance count as equal shares.
                let weights: Vec<(String, u64)> = journey
                    .legs
                    .iter()
                    .map(|l| {
                        (
                            card.taps[open[l.board_tap]].operator.clone(),
                            u64::from(l.distance_m.unwrap_or(0)),
                        )
                    })
                    .collect();
                for (operator, amount) in split(revenue, &weights) {
                    *owed.entry(operator).or_default() += amount;
                }
                for &k in &indices {
                    card.taps[open[k]].settled = true;
                }
            }
        }
        let mut transfers = vec![];
        let mut total = 0;
        for (operator, amount) in owed.into_iter().filter(|o| o.1 != 0) {
            total += amount;
            let (debit, credit) = if amount > 0 {
                (CLEARING_ACCOUNT.to_owned(), revenue_account(&operator))
            } else {
                (revenue_account(&operator), CLEARING_ACCOUNT.to_owned())
            };
            let t = Transfer {
                id: format!("{}:{operator}", op.op_id),
                debit,
                credit,
                amount: amount.abs(),
                kind: TransferKind::Settlement,
                reference: Some(op.op_id.clone()),
                at: op.at,
            };
            if self.ledger.apply(t.clone()).is_ok() {
                transfers.push(t);
            }
        }
        (
            Answer::Settled {
                journeys,
                amount: total,
            },
            transfers,
            0,
        )
    }

    fn tap(
        &mut self,
        op: &Operation,
        card_id: CardId,
        tap: Tap,
        network: &dyn NetworkView,
    ) -> (Answer, Vec<Transfer>, CardId) {
        let account = card_account(card_id);
        let Some(card) = self.cards.get(&card_id) else {
            return Self::refused(RefusalReason::UnknownCard, card_id);
        };
        if card.status != CardStatus::Active {
            return Self::refused(RefusalReason::BlockedCard, card_id);
        }
        // One boarding is allowed on whatever positive balance is left; none once it is gone.
        // Tapping out is never refused: the rider is already inside.
        if tap.kind == TapKind::In && self.ledger.balance(&account) <= 0 {
            return Self::refused(RefusalReason::InsufficientBalance, card_id);
        }
        let category = card.category;
        let operator = network.operator(tap.route_id.as_deref(), &tap.stop_id);
        // Insert in time order; equal times keep arrival order.
        let position = card.taps.partition_point(|p| p.tap.at <= tap.at);
        let late = position < card.taps.len();
        // A tap in order is priced from the state after the last one; a late
        // tap reprices every tap that could share a journey with it.
        let (window_start, mut journey) = if late {
            let earliest = tap
                .at
                .checked_sub(jiff::SignedDuration::from_hours(REPRICE_WINDOW_HOURS))
                .unwrap_or(tap.at);
            (
                card.taps[..position].partition_point(|p| p.tap.at < earliest),
                JourneyState::new(category),
            )
        } else {
            (position, card.state.clone())
        };
        let mut window: Vec<Tap> = card.taps[window_start..]
            .iter()
            .map(|p| p.tap.clone())
            .collect();
        window.insert(position - window_start, tap.clone());
        // Price the window tap by tap, as validators would have: the last leg
        // may still be open, so the journey is not finished (no penalty yet).
        let mut due = vec![0 as Won; window.len()];
        let mut lines = vec![];
        for (k, t) in window.iter().enumerate() {
            let Ok(result) = journey.tap(&self.rules, t, network) else {
                return Self::refused(RefusalReason::Invalid, card_id);
            };
            due[k] = result.amount();
            if k == position - window_start {
                lines = result
                    .charges
                    .iter()
                    .map(|c| ChargeLine {
                        amount: c.amount,
                        rule: c.rule.name().to_owned(),
                        explanation: c.explanation.clone(),
                    })
                    .collect();
            }
        }
        // Differences with what was charged before are adjustments, never edits.
        let existing: Vec<Won> = card.taps[window_start..]
            .iter()
            .map(|p| p.charged)
            .collect();
        let this = position - window_start;
        let mut transfers = vec![];
        let mut amount_now: Won = 0;
        for (k, owed) in due.iter().enumerate() {
            // Index k in the window; taps after the new one sit one further in `existing`.
            let before = match k.cmp(&this) {
                std::cmp::Ordering::Less => existing[k],
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => existing[k - 1],
            };
            let delta = owed - before;
            if delta == 0 {
                continue;
            }
            amount_now += delta;
            let kind = if k == this {
                TransferKind::Fare
            } else {
                TransferKind::FareAdjustment
            };
            let (debit, credit) = if delta > 0 {
                (account.clone(), CLEARING_ACCOUNT.to_owned())
            } else {
                (CLEARING_ACCOUNT.to_owned(), account.clone())
            };
            let reference = if k == this {
                op.op_id.clone()
            } else {
                card.taps[window_start + k - usize::from(k > this)]
                    .op_id
                    .clone()
            };
            transfers.push(Transfer {
                id: format!("{}:fare:{k}", op.op_id),
                debit,
                credit,
                amount: delta.abs(),
                kind,
                reference: Some(reference),
                at: op.at,
            });
        }
        // Credits first, so the card never dips lower than where it ends.
        transfers.sort_by_key(|t| t.debit == account);
        if self.ledger.balance(&account) - amount_now < -NEGATIVE_ALLOWANCE {
            return Self::refused(RefusalReason::InsufficientBalance, card_id);
        }
        for t in &transfers {
            let applied = self.ledger.apply(t.clone());
            debug_assert!(
                applied.is_ok(),
                "checked against the floor above: {applied:?}"
            );
        }
        let card = self.cards.get_mut(&card_id).expect("checked above");
        card.taps.insert(
            position,
            PricedTap {
                tap,
                charged: 0,
                operator,
                op_id: op.op_id.clone(),
                settled: false,
            },
        );
        for (k, owed) in due.iter().enumerate() {
            card.taps[window_start + k].charged = *owed;
        }
        card.state = journey;
        let balance = self.ledger.balance(&account);
        (
            Answer::TapAccepted {
                amount: amount_now,
                balance,
                charges: lines,
                late,
            },
            transfers,
            card_id,
        )
    }
}

/// A stable 64-bit fingerprint of a request: a retry under the same op_id
/// must carry the same request, and this tells without keeping a copy.
fn fingerprint(request: &Request) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    request.hash(&mut h);
    h.finish()
}

/// Splits `amount` by weight, giving rounding remainders to the largest weights
/// so the parts always add up to the whole.
fn split(amount: Won, weights: &[(String, u64)]) -> Vec<(String, Won)> {
    let total: u64 = weights.iter().map(|w| w.1).sum();
    let weights: Vec<(String, u64)> = if total == 0 {
        weights.iter().map(|w| (w.0.clone(), 1)).collect()
    } else {
        weights.to_vec()
    };
    let total: u64 = weights.iter().map(|w| w.1).sum();
    if total == 0 {
        return vec![];
    }
    let mut parts: Vec<(String, Won)> = weights
        .iter()
        .map(|(o, w)| {
            (
                o.clone(),
                (i128::from(amount) * i128::from(*w) / i128::from(total)) as Won,
            )
        })
        .collect();
    let mut rest = amount - parts.iter().map(|p| p.1).sum::<Won>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].1.cmp(&weights[a].1).then(a.cmp(&b)));
    for &i in order.iter().cycle().take(order.len() * 2) {
        if rest == 0 {
            break;
        }
        parts[i].1 += rest.signum();
        rest -= rest.signum();
    }
    parts
}

fn transfer(
    op_id: &str,
    suffix: &str,
    debit: &str,
    credit: &str,
    amount: Won,
    kind: TransferKind,
    op: &Operation,
) -> Transfer {
    Transfer {
        id: format!("{op_id}:{suffix}"),
        debit: debit.to_owned(),
        credit: credit.to_owned(),
        amount,
        kind,
        reference: Some(op_id.to_owned()),
        at: op.at,
    }
}
