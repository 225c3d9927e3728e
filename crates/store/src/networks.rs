//! Transit networks, stored whole as chunks of their serialised bytes.
//!
//! Saving writes the chunks under a new, inactive row and then flips
//! `active` in one statement, so a crash or a failed import at any point
//! leaves the previous network serving. Every replica reads the same active
//! row, which is how a new import reaches all of them.

use crate::{Store, StoreError, Value, now_unix};

/// Chunk size: well under both engines' limits for one value.
const CHUNK: usize = 8 << 20;
/// Inactive networks kept for rollback.
const KEEP_INACTIVE: i64 = 2;

/// A stored network's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRecord {
    /// Database id; newer networks have larger ids.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Where it was imported from (a file name, "generated", …).
    pub source: String,
    /// The network's summary as JSON, so listings need not load the bytes.
    pub summary: String,
    /// Size of the serialised network.
    pub byte_len: i64,
    /// Whether this is the network being served.
    pub active: bool,
}

fn record(row: Vec<Value>) -> Result<NetworkRecord, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(NetworkRecord {
        id: next().as_i64().ok_or(StoreError::Shape("network id"))?,
        created_at: next().as_i64().unwrap_or(0),
        source: next().into_string().unwrap_or_default(),
        summary: next().into_string().unwrap_or_default(),
        byte_len: next().as_i64().unwrap_or(0),
        active: next().as_i64() == Some(1),
    })
}

impl Store {
    /// Stores a serialised network and makes it the active one.
    pub async fn save_network(
        &self,
        source: &str,
        summary_json: &str,
        bytes: &[u8],
    ) -> Result<NetworkRecord, StoreError> {
        const INSERT: &str = "INSERT INTO networks (created_at, source, summary, byte_len, active) VALUES (?, ?, ?, ?, 0) RETURNING id";
        let params = vec![
            now_unix().into(),
            source.into(),
            summary_json.into(),
            (bytes.len() as i64).into(),
        ];
        let id = self
            .query(INSERT, params)
            .await?
            .first()
            .and_then(|r| r[0].as_i64())
            .ok_or(StoreError::Shape("network id"))?;
        for (seq, chunk) in bytes.chunks(CHUNK).enumerate() {
            const CHUNK_SQL: &str =
                "INSERT INTO network_chunks (network_id, seq, data) VALUES (?, ?, ?)";
            self.execute(
                CHUNK_SQL,
                vec![id.into(), (seq as i64).into(), chunk.to_vec().into()],
            )
            .await?;
        }
        self.activate_network(id).await?;
        // Old networks beyond a few for rollback only take space.
        const PRUNE: &str = "DELETE FROM networks WHERE active = 0 AND id < ? AND id NOT IN (SELECT id FROM networks WHERE active = 0 ORDER BY id DESC LIMIT ?)";
        self.execute(PRUNE, vec![id.into(), KEEP_INACTIVE.into()])
            .await?;
        self.network(id)
            .await?
            .ok_or(StoreError::Shape("saved network vanished"))
    }

    /// Makes network `id` the active one, atomically.
    pub async fn activate_network(&self, id: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE networks SET active = CASE WHEN id = ? THEN 1 ELSE 0 END";
        self.transaction(vec![(SQL, vec![id.into()])]).await
    }

    /// The network being served, if any.
    pub async fn active_network(&self) -> Result<Option<NetworkRecord>, StoreError> {
        const SQL: &str = "SELECT id, created_at, source, summary, byte_len, active FROM networks WHERE active = 1 ORDER BY id DESC LIMIT 1";
        self.query_row(SQL, vec![]).await?.map(record).transpose()
    }

    /// One network's metadata.
    pub async fn network(&self, id: i64) -> Result<Option<NetworkRecord>, StoreError> {
        const SQL: &str =
            "SELECT id, created_at, source, summary, byte_len, active FROM networks WHERE id = ?";
        self.query_row(SQL, vec![id.into()])
            .await?
            .map(record)
            .transpose()
    }

    /// All stored networks, newest first.
    pub async fn list_networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        const SQL: &str = "SELECT id, created_at, source, summary, byte_len, active FROM networks ORDER BY id DESC";
        self.query(SQL, vec![])
            .await?
            .into_iter()
            .map(record)
            .collect()
    }

    /// The serialised bytes of network `id`, reassembled from its chunks.
    pub async fn network_bytes(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        const SQL: &str = "SELECT data FROM network_chunks WHERE network_id = ? ORDER BY seq";
        let mut out = Vec::new();
        for row in self.query(SQL, vec![id.into()]).await? {
            out.extend(
                row.into_iter()
                    .next()
                    .and_then(Value::into_bytes)
                    .ok_or(StoreError::Shape("chunk"))?,
            );
        }
        Ok(out)
    }
}
