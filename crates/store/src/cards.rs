//! Rows of the smart card tables: the card journal (one row per group
//! commit), and the fare rules' versions.
//!
//! The store knows nothing of fares: a batch arrives as the card service's
//! JSON and is written in one statement, so an acknowledged operation is on
//! disk with all its ledger entries or not at all.

use crate::{Row, Store, StoreError, Value};

/// One group commit of the card desk.
#[derive(Debug, Clone, PartialEq)]
pub struct CardLogBatch {
    /// Its number: 1, 2, 3… assigned by the desk; a number already stored is a conflict.
    pub batch: i64,
    /// Operations in it.
    pub ops: i64,
    /// The operations, as the card service wrote them (a JSON array).
    pub body: String,
}

/// An operation in the per-operation tables that preceded the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyCardOp {
    /// Client-supplied idempotency id.
    pub op_id: String,
    /// The card it concerns.
    pub card_id: i64,
    /// The request as the card service wrote it (JSON).
    pub request: String,
    /// The answer given (JSON).
    pub answer: String,
}

fn log_row(row: Row) -> Result<CardLogBatch, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(CardLogBatch {
        batch: next().as_i64().ok_or(StoreError::Shape("log batch"))?,
        ops: next().as_i64().unwrap_or(0),
        body: next().into_string().ok_or(StoreError::Shape("log body"))?,
    })
}

/// Held while this process writes the card journal: on PostgreSQL, a
/// session-level advisory lock on a connection of its own, so replicas take
/// turns; on SQLite (one machine), nothing. Dropping it lets another writer in.
pub struct CardWriterLock {
    session: Option<tokio_postgres::Client>,
}

impl CardWriterLock {
    /// Whether other processes may be waiting for it, so it should be let go
    /// now and then (PostgreSQL); on SQLite there is nobody to wait.
    pub fn is_shared(&self) -> bool {
        self.session.is_some()
    }
}

/// The advisory lock key of the card journal's writer ("cityos:card" in ASCII).
const CARD_WRITER_LOCK: i64 = 0x6369_7479_6f73_6361;

impl Store {
    /// Waits until this process may write the card journal, and holds that until dropped.
    pub async fn card_writer_lock(&self) -> Result<CardWriterLock, StoreError> {
        Ok(CardWriterLock {
            session: match self {
                Store::Sqlite(_) => None,
                Store::Postgres(pg) => Some(pg.advisory_lock(CARD_WRITER_LOCK).await?),
            },
        })
    }

    /// Appends one batch to the card journal; [`StoreError::Conflict`] when
    /// its number is taken (another writer got there first).
    pub async fn append_card_log(&self, batch: CardLogBatch) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO card_log (batch, ops, body) VALUES (?, ?, ?)";
        self.execute(
            SQL,
            vec![batch.batch.into(), batch.ops.into(), batch.body.into()],
        )
        .await?;
        Ok(())
    }

    /// Journal batches after `batch`, oldest first, at most `limit`.
    pub async fn card_log_after(
        &self,
        batch: i64,
        limit: i64,
    ) -> Result<Vec<CardLogBatch>, StoreError> {
        const SQL: &str =
            "SELECT batch, ops, body FROM card_log WHERE batch > ? ORDER BY batch LIMIT ?";
        self.query(SQL, vec![batch.into(), limit.into()])
            .await?
            .into_iter()
            .map(log_row)
            .collect()
    }

    /// The operations of the per-operation tables that preceded the journal, in order.
    pub async fn legacy_card_ops(&self) -> Result<Vec<LegacyCardOp>, StoreError> {
        const SQL: &str = "SELECT op_id, card_id, request, answer FROM card_ops ORDER BY seq";
        self.query(SQL, vec![])
            .await?
            .into_iter()
            .map(|row| {
                let mut v = row.into_iter();
                let mut next = || v.next().unwrap_or(Value::Null);
                Ok(LegacyCardOp {
                    op_id: next().into_string().ok_or(StoreError::Shape("op id"))?,
                    card_id: next().as_i64().unwrap_or(0),
                    request: next().into_string().unwrap_or_default(),
                    answer: next().into_string().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Moves the per-operation tables into the journal: writes `batches`
    /// and empties the old tables in one transaction.
    pub async fn replace_legacy_card_ops(
        &self,
        batches: Vec<CardLogBatch>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO card_log (batch, ops, body) VALUES (?, ?, ?)";
        let mut statements: Vec<(&'static str, Vec<Value>)> = batches
            .into_iter()
            .map(|b| (SQL, vec![b.batch.into(), b.ops.into(), b.body.into()]))
            .collect();
        for table in [
            "DELETE FROM card_ops",
            "DELETE FROM card_taps",
            "DELETE FROM ledger_transfers",
        ] {
            statements.push((table, vec![]));
        }
        self.transaction(statements).await
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
}
