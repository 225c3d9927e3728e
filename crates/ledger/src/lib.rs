//! A double-entry ledger that never loses a won.
//!
//! Modelled on TigerBeetle: every movement of money is a [`Transfer`] that
//! debits one account and credits another by the same positive amount, so
//! the balances of all accounts always sum to zero. Transfers are
//! idempotent by their id: applying the same transfer twice changes nothing
//! and answers as the first time; reusing an id for a different transfer is
//! refused. An account may carry a floor: a transfer that would take its
//! balance below it is refused whole, never applied in part.
//!
//! The ledger is pure state: the caller persists each applied transfer
//! (append-only) before acknowledging it, and rebuilds the ledger at start
//! by applying the stored transfers again in order. [`Ledger::audit`] checks
//! the invariants from scratch.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Money in whole won. Signed so that balances below zero can be expressed.
pub type Won = i64;

/// Why money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Cash or card payment into a card.
    TopUp,
    /// A fare charged at a tap.
    Fare,
    /// A later correction of fares already charged (late or offline taps); never an edit.
    FareAdjustment,
    /// Money paid back to the holder, closing or reducing a card.
    Refund,
    /// A lost card's balance moved to its replacement.
    BalanceMove,
    /// Fares split between the operators who carried the journey.
    Settlement,
}

impl TransferKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::TopUp => "top_up",
            TransferKind::Fare => "fare",
            TransferKind::FareAdjustment => "fare_adjustment",
            TransferKind::Refund => "refund",
            TransferKind::BalanceMove => "balance_move",
            TransferKind::Settlement => "settlement",
        }
    }

    /// Parses [`TransferKind::as_str`].
    pub fn parse(text: &str) -> Option<TransferKind> {
        [
            TransferKind::TopUp,
            TransferKind::Fare,
            TransferKind::FareAdjustment,
            TransferKind::Refund,
            TransferKind::BalanceMove,
            TransferKind::Settlement,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One movement of money between two accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Idempotency key, unique across the ledger.
    pub id: String,
    /// The account whose balance goes down.
    pub debit: String,
    /// The account whose balance goes up.
    pub credit: String,
    /// Positive amount moved.
    pub amount: Won,
    /// Why.
    pub kind: TransferKind,
    /// What caused it (a tap id, a top-up receipt…).
    pub reference: Option<String>,
    /// When, in Unix seconds.
    pub at: i64,
}

/// Why a transfer was refused; the ledger is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Amounts must be positive.
    #[error("the amount must be positive, not {0}")]
    NonPositiveAmount(Won),
    /// An account cannot pay itself.
    #[error("debit and credit are the same account '{0}'")]
    SameAccount(String),
    /// The id was used before for a different transfer.
    #[error("transfer id '{0}' was already used for a different transfer")]
    IdReused(String),
    /// The debit would take an account below its floor.
    #[error("account '{account}' would fall to {would_be} won, below its floor of {floor}")]
    BelowFloor {
        /// The account.
        account: String,
        /// Its balance had the transfer been applied.
        would_be: Won,
        /// Its floor.
        floor: Won,
    },
    /// The credit would take an account above its ceiling.
    #[error("account '{account}' would rise to {would_be} won, above its ceiling of {ceiling}")]
    AboveCeiling {
        /// The account.
        account: String,
        /// Its balance had the transfer been applied.
        would_be: Won,
        /// Its ceiling.
        ceiling: Won,
    },
}

/// The outcome of applying a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    New,
    /// Applied before with the same content: nothing changed.
    Repeated,
}

/// Limits on an account's balance (credits minus debits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Lowest allowed balance, if any.
    pub floor: Option<Won>,
    /// Highest allowed balance, if any.
    pub ceiling: Option<Won>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    debits: Won,
    credits: Won,
}

/// Balances of every account and the transfers applied.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    totals: FxHashMap<String, Totals>,
    limits: FxHashMap<String, Limits>,
    applied: FxHashMap<String, Transfer>,
    order: Vec<String>,
}

/// What [`Ledger::audit`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Audit {
    /// Transfers checked.
    pub transfers: usize,
    /// Accounts with any movement.
    pub accounts: usize,
    /// Sum of all balances; must be zero.
    pub sum_of_balances: Won,
    /// Accounts whose stored totals differ from their transfers.
    pub mismatched_accounts: Vec<String>,
    /// Accounts outside their limits.
    pub accounts_outside_limits: Vec<String>,
}

impl Audit {
    /// Whether every invariant holds.
    pub fn holds(&self) -> bool {
        self.sum_of_balances == 0
            && self.mismatched_accounts.is_empty()
            && self.accounts_outside_limits.is_empty()
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Sets the limits of `account`; they apply to later transfers.
    pub fn set_limits(&mut self, account: &str, limits: Limits) {
        self.limits.insert(account.to_owned(), limits);
    }

    /// The limits of `account`.
    pub fn limits(&self, account: &str) -> Limits {
        self.limits.get(account).copied().unwrap_or_default()
    }

    /// Credits minus debits of `account`.
    pub fn balance(&self, account: &str) -> Won {
        self.totals.get(account).map_or(0, |t| t.credits - t.debits)
    }

    /// The transfer applied under `id`, if any.
    pub fn transfer(&self, id: &str) -> Option<&Transfer> {
        self.applied.get(id)
    }

    /// Number of transfers applied.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no transfer was applied.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Checks a transfer against the current state without applying it.
    pub fn check(&self, t: &Transfer) -> Result<Applied, Refusal> {
        if let Some(previous) = self.applied.get(&t.id) {
            return if previous == t {
                Ok(Applied::Repeated)
            } else {
                Err(Refusal::IdReused(t.id.clone()))
            };
        }
        if t.amount <= 0 {
            return Err(Refusal::NonPositiveAmount(t.amount));
        }
        if t.debit == t.credit {
            return Err(Refusal::SameAccount(t.debit.clone()));
        }
        let debit_after = self.balance(&t.debit) - t.amount;
        if let Some(floor) = self.limits(&t.debit).floor
            && debit_after < floor
        {
            return Err(Refusal::BelowFloor {
                account: t.debit.clone(),
                would_be: debit_after,
                floor,
            });
        }
        let credit_after = self.balance(&t.credit) + t.amount;
        if let Some(ceiling) = self.limits(&t.credit).ceiling
            && credit_after > ceiling
        {
            return Err(Refusal::AboveCeiling {
                account: t.credit.clone(),
                would_be: credit_after,
                ceiling,
            });
        }
        Ok(Applied::New)
    }

    /// Applies a transfer whole, or refuses it and changes nothing.
    pub fn apply(&mut self, t: Transfer) -> Result<Applied, Refusal> {
        let outcome = self.check(&t)?;
        if outcome == Applied::New {
            self.totals.entry(t.debit.clone()).or_default().debits += t.amount;
            self.totals.entry(t.credit.clone()).or_default().credits += t.amount;
            self.order.push(t.id.clone());
            self.applied.insert(t.id.clone(), t);
        }
        Ok(outcome)
    }

    /// Recomputes every balance from the transfers and checks: balances
    /// sum to zero, running totals match, and every account is within limits.
    pub fn audit(&self) -> Audit {
        let mut recomputed: FxHashMap<&str, Totals> = FxHashMap::default();
        for id in &self.order {
            let t = &self.applied[id];
            recomputed.entry(&t.debit).or_default().debits += t.amount;
            recomputed.entry(&t.credit).or_default().credits += t.amount;
        }
        let mut mismatched: Vec<String> = self
            .totals
            .iter()
            .filter(|(account, totals)| {
                let r = recomputed
                    .get(account.as_str())
                    .copied()
                    .unwrap_or_default();
                r.debits != totals.debits || r.credits != totals.credits
            })
            .map(|(a, _)| a.clone())
            .collect();
        mismatched.sort();
        let mut outside: Vec<String> = self
            .totals
            .keys()
            .filter(|a| {
                let (b, l) = (self.balance(a), self.limits(a));
                l.floor.is_some_and(|f| b < f) || l.ceiling.is_some_and(|c| b > c)
            })
            .cloned()
            .collect();
        outside.sort();
        Audit {
            transfers: self.order.len(),
            accounts: self.totals.len(),
            sum_of_balances: recomputed.values().map(|t| t.credits - t.debits).sum(),
            mismatched_accounts: mismatched,
            accounts_outside_limits: outside,
        }
    }

    /// Every account with any movement.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.totals.keys().map(String::as_str)
    }

    /// Every transfer touching `account`, oldest first.
    pub fn history(&self, account: &str) -> Vec<&Transfer> {
        self.order
            .iter()
            .map(|id| &self.applied[id])
            .filter(|t| t.debit == account || t.credit == account)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn transfer(id: &str, debit: &str, credit: &str, amount: Won) -> Transfer {
        Transfer {
            id: id.into(),
            debit: debit.into(),
            credit: credit.into(),
            amount,
            kind: TransferKind::Fare,
            reference: None,
            at: 0,
        }
    }

    #[test]
    fn transfers_are_idempotent_and_ids_cannot_be_reused() {
        let mut l = Ledger::new();
        assert_eq!(
            l.apply(transfer("t1", "cash", "card:1", 10_000)),
            Ok(Applied::New)
        );
        assert_eq!(
            l.apply(transfer("t1", "cash", "card:1", 10_000)),
            Ok(Applied::Repeated)
        );
        assert_eq!(l.balance("card:1"), 10_000);
        assert_eq!(
            l.apply(transfer("t1", "cash", "card:1", 5)),
            Err(Refusal::IdReused("t1".into()))
        );
        assert_eq!(l.balance("card:1"), 10_000);
    }

    #[test]
    fn floors_and_ceilings_refuse_the_whole_transfer() {
        let mut l = Ledger::new();
        l.set_limits(
            "card:1",
            Limits {
                floor: Some(0),
                ceiling: Some(500_000),
            },
        );
        l.apply(transfer("t1", "cash", "card:1", 1_000)).unwrap();
        let refused = l.apply(transfer("t2", "card:1", "revenue", 1_500));
        assert!(matches!(
            refused,
            Err(Refusal::BelowFloor {
                would_be: -500,
                floor: 0,
                ..
            })
        ));
        assert!(matches!(
            l.apply(transfer("t3", "cash", "card:1", 499_001)),
            Err(Refusal::AboveCeiling { .. })
        ));
        assert_eq!(l.balance("card:1"), 1_000);
        assert_eq!(l.balance("revenue"), 0);
        assert!(l.audit().holds());
    }

    #[test]
    fn bad_transfers_are_refused() {
        let mut l = Ledger::new();
        assert_eq!(
            l.apply(transfer("a", "x", "y", 0)),
            Err(Refusal::NonPositiveAmount(0))
        );
        assert_eq!(
            l.apply(transfer("b", "x", "x", 5)),
            Err(Refusal::SameAccount("x".into()))
        );
        assert!(l.is_empty());
    }

    proptest! {
        /// Whatever is attempted, the balances sum to zero, floors hold, and
        /// replaying the accepted transfers rebuilds exactly the same balances.
        #[test]
        fn invariants_hold_under_any_sequence(ops in proptest::collection::vec((0u8..6, 0u8..6, -100i64..5_000, 0u16..40), 0..200)) {
            let accounts = ["cash", "card:1", "card:2", "card:3", "revenue:bus", "revenue:metro"];
            let mut l = Ledger::new();
            for card in ["card:1", "card:2", "card:3"] {
                l.set_limits(card, Limits { floor: Some(-2_500), ceiling: Some(500_000) });
            }
            let mut accepted = Vec::new();
            for (d, c, amount, id) in ops {
                let t = transfer(&format!("t{id}"), accounts[d as usize], accounts[c as usize], amount);
                if l.apply(t.clone()) == Ok(Applied::New) {
                    accepted.push(t);
                }
            }
            let audit = l.audit();
            prop_assert!(audit.holds(), "{:?}", audit);
            let mut replay = Ledger::new();
            for card in ["card:1", "card:2", "card:3"] {
                replay.set_limits(card, Limits { floor: Some(-2_500), ceiling: Some(500_000) });
            }
            for t in accepted {
                prop_assert_eq!(replay.apply(t), Ok(Applied::New));
            }
            for a in accounts {
                prop_assert_eq!(replay.balance(a), l.balance(a));
            }
        }
    }
}
