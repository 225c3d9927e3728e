//! Rows of the smart card tables: the append-only operation log, the
//! validators' tap counters, and the double-entry ledger.
//!
//! The store knows nothing of fares: operations arrive as JSON written by
//! the card service, and a batch of them is committed in one transaction,
//! so an acknowledged operation is on disk with all its ledger entries or
//! not at all.

use crate::{Row, Store, StoreError, Value};

/// One accepted card operation.
#[derive(Debug, Clone, PartialEq)]
pub struct CardOpRow {
    /// Position in the log (assigned by the store; 0 when writing).
    pub seq: i64,
    /// Client-supplied idempotency id.
    pub op_id: String,
    /// `issue`, `top_up`, `tap`, `block`, `refund`, …
    pub kind: String,
    /// The card it concerns.
    pub card_id: i64,
    /// The request as JSON.
    pub request: String,
    /// The answer given, as JSON, so a repeat gets the same answer.
    pub answer: String,
    /// Unix seconds.
    pub at: i64,
}

/// One ledger transfer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRow {
    /// Idempotency key.
    pub id: String,
    /// Account debited.
    pub debit: String,
    /// Account credited.
    pub credit: String,
    /// Positive amount in won.
    pub amount: i64,
    /// Why.
    pub kind: String,
    /// What caused it.
    pub reference: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// A validator's tap, by its own transaction counter.
#[derive(Debug, Clone, PartialEq)]
pub struct TapKey {
    /// The validator.
    pub validator_id: String,
    /// Its counter.
    pub counter: i64,
    /// The operation that recorded it.
    pub op_id: String,
}

/// Everything one group commit writes.
#[derive(Debug, Clone, Default)]
pub struct CardBatch {
    /// Operations.
    pub ops: Vec<CardOpRow>,
    /// Their ledger transfers.
    pub transfers: Vec<TransferRow>,
    /// Their validator counters.
    pub taps: Vec<TapKey>,
}

fn op_row(row: Row) -> Result<CardOpRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(CardOpRow {
        seq: next().as_i64().ok_or(StoreError::Shape("op seq"))?,
        op_id: next().into_string().ok_or(StoreError::Shape("op id"))?,
        kind: next().into_string().unwrap_or_default(),
        card_id: next().as_i64().unwrap_or(0),
        request: next().into_string().unwrap_or_default(),
        answer: next().into_string().unwrap_or_default(),
        at: next().as_i64().unwrap_or(0),
    })
}

fn transfer_row(row: Row) -> Result<TransferRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(TransferRow {
        id: next()
            .into_string()
            .ok_or(StoreError::Shape("transfer id"))?,
        debit: next().into_string().unwrap_or_default(),
        credit: next().into_string().unwrap_or_default(),
        amount: next().as_i64().unwrap_or(0),
        kind: next().into_string().unwrap_or_default(),
        reference: next().into_string(),
        at: next().as_i64().unwrap_or(0),
    })
}

impl Store {
    /// Writes a batch in one transaction: all of it is durable, or none.
    pub async fn append_card_batch(&self, batch: CardBatch) -> Result<(), StoreError> {
        const OP: &str = "INSERT INTO card_ops (op_id, kind, card_id, request, answer, at) VALUES (?, ?, ?, ?, ?, ?)";
        const TAP: &str = "INSERT INTO card_taps (validator_id, counter, op_id) VALUES (?, ?, ?)";
        const TRANSFER: &str = "INSERT INTO ledger_transfers (id, debit, credit, amount, kind, reference, at) VALUES (?, ?, ?, ?, ?, ?, ?)";
        let mut statements =
            Vec::with_capacity(batch.ops.len() + batch.taps.len() + batch.transfers.len());
        for op in batch.ops {
            statements.push((
                OP,
                vec![
                    op.op_id.into(),
                    op.kind.into(),
                    op.card_id.into(),
                    op.request.into(),
                    op.answer.into(),
                    op.at.into(),
                ],
            ));
        }
        for tap in batch.taps {
            statements.push((
                TAP,
                vec![
                    tap.validator_id.into(),
                    tap.counter.into(),
                    tap.op_id.into(),
                ],
            ));
        }
        for t in batch.transfers {
            statements.push((
                TRANSFER,
                vec![
                    t.id.into(),
                    t.debit.into(),
                    t.credit.into(),
                    t.amount.into(),
                    t.kind.into(),
                    t.reference.into(),
                    t.at.into(),
                ],
            ));
        }
        self.transaction(statements).await
    }

    /// Card operations after `seq`, oldest first, at most `limit`.
    pub async fn card_ops_after(&self, seq: i64, limit: i64) -> Result<Vec<CardOpRow>, StoreError> {
        const SQL: &str = "SELECT seq, op_id, kind, card_id, request, answer, at FROM card_ops WHERE seq > ? ORDER BY seq LIMIT ?";
        self.query(SQL, vec![seq.into(), limit.into()])
            .await?
            .into_iter()
            .map(op_row)
            .collect()
    }

    /// One card's operations, oldest first.
    pub async fn card_ops_of(&self, card_id: i64) -> Result<Vec<CardOpRow>, StoreError> {
        const SQL: &str = "SELECT seq, op_id, kind, card_id, request, answer, at FROM card_ops WHERE card_id = ? ORDER BY seq";
        self.query(SQL, vec![card_id.into()])
            .await?
            .into_iter()
            .map(op_row)
            .collect()
    }

    /// Number of ledger transfers.
    pub async fn transfer_count(&self) -> Result<i64, StoreError> {
        let rows = self
            .query("SELECT COUNT(*) FROM ledger_transfers", vec![])
            .await?;
        Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0))
    }

    /// The ledger transfers touching `account`, by id.
    pub async fn transfers_of(&self, account: &str) -> Result<Vec<TransferRow>, StoreError> {
        const SQL: &str = "SELECT id, debit, credit, amount, kind, reference, at FROM ledger_transfers WHERE debit = ? OR credit = ? ORDER BY at, id";
        self.query(SQL, vec![account.into(), account.into()])
            .await?
            .into_iter()
            .map(transfer_row)
            .collect()
    }

    /// Every stored version of the fare rules, oldest first: (version, TOML).
    pub async fn fare_rules_versions(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .query(
                "SELECT version, toml FROM fare_rules ORDER BY version",
                vec![],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut v = row.into_iter();
                let version = v
                    .next()
                    .and_then(|x| x.as_i64())
                    .ok_or(StoreError::Shape("rules version"))?;
                let toml = v
                    .next()
                    .and_then(Value::into_string)
                    .ok_or(StoreError::Shape("rules text"))?;
                Ok((version, toml))
            })
            .collect()
    }

    /// Stores a new version of the fare rules; [`StoreError::Conflict`] if the version exists.
    pub async fn add_fare_rules(&self, version: i64, toml: &str) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO fare_rules (version, toml, created_at) VALUES (?, ?, ?)";
        self.execute(
            SQL,
            vec![version.into(), toml.into(), crate::now_unix().into()],
        )
        .await?;
        Ok(())
    }

    /// Per-account balance (credits minus debits) computed by the database
    /// itself, independently of any program state: the audit's ground truth.
    pub async fn ledger_balances(&self) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT account, CAST(SUM(amount) AS BIGINT) FROM (SELECT credit AS account, amount FROM ledger_transfers UNION ALL SELECT debit AS account, -amount AS amount FROM ledger_transfers) AS moves GROUP BY account ORDER BY account";
        self.query(SQL, vec![])
            .await?
            .into_iter()
            .map(|row| {
                let mut v = row.into_iter();
                let account = v
                    .next()
                    .and_then(Value::into_string)
                    .ok_or(StoreError::Shape("account"))?;
                let sum = v.next().and_then(|s| s.as_i64()).unwrap_or(0);
                Ok((account, sum))
            })
            .collect()
    }
}
