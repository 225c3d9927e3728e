//! The embedded engine: a SQLite file in WAL mode.
//!
//! One connection writes (SQLite allows one writer at a time anyway) and a
//! few read in parallel; all of them run on tokio's blocking pool so the
//! async server never waits on disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, params_from_iter};

use crate::{Migration, Row, StoreError, Value};

const READERS: usize = 4;

/// A SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl SqliteStore {
    pub(crate) async fn open(path: PathBuf) -> Result<SqliteStore, StoreError> {
        blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            let writer = connect(&path)?;
            // WAL lets readers run beside the writer; FULL sync makes every
            // commit durable before it is acknowledged.
            writer.pragma_update(None, "journal_mode", "WAL")?;
            let readers = (0..READERS)
                .map(|_| connect(&path).map(Mutex::new))
                .collect::<Result<_, _>>()?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    writer: Mutex::new(writer),
                    readers,
                    next_reader: AtomicUsize::new(0),
                }),
            })
        })
        .await
    }

    pub(crate) async fn migrate(&self, migrations: &'static [Migration]) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut conn = lock(&inner.writer);
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
            )?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
            let latest = migrations.last().map_or(0, |m| m.version);
            if current > latest {
                return Err(StoreError::Migration(format!(
                    "the database is at schema version {current}, newer than this program's {latest}"
                )));
            }
            for m in migrations.iter().filter(|m| m.version > current) {
                tx.execute_batch(m.sql)
                    .map_err(|e| StoreError::Migration(format!("version {}: {e}", m.version)))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    (m.version, crate::now_unix()),
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<u64, StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let conn = lock(&inner.writer);
            let n = conn
                .prepare_cached(sql)?
                .execute(params_from_iter(params.iter()))
                .map_err(conflict)?;
            Ok(n as u64)
        })
        .await
    }

    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        let inner = self.inner.clone();
        // Statements that write (INSERT … RETURNING) must go to the writer.
        let writes = !sql.trim_start().starts_with("SELECT");
        blocking(move || {
            let conn = if writes {
                lock(&inner.writer)
            } else {
                let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
                lock(&inner.readers[i])
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let columns = stmt.column_count();
            let mut rows = stmt
                .query(params_from_iter(params.iter()))
                .map_err(conflict)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(conflict)? {
                out.push(
                    (0..columns)
                        .map(|c| row.get_ref(c).map(from_sql))
                        .collect::<Result<Row, _>>()?,
                );
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn transaction(
        &self,
        statements: Vec<(&'static str, Vec<Value>)>,
    ) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut conn = lock(&inner.writer);
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for (sql, params) in &statements {
                tx.prepare_cached(sql)?
                    .execute(params_from_iter(params.iter()))
                    .map_err(conflict)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn connect(path: &std::path::Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache per connection keeps the hot indexes in memory.
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

/// Locks a connection; a panic while holding it leaves SQLite consistent, so poison is ignored.
fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// Binds values by reference: no copy of texts and blobs per statement.
impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => V::Null,
            Value::Int(i) => V::Integer(*i),
            Value::Text(s) => V::Text(s.as_bytes()),
            Value::Bytes(b) => V::Blob(b),
        }))
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

fn conflict(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, message) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::Conflict(message.clone().unwrap_or_else(|| e.to_string()))
        }
        _ => StoreError::Sqlite(e),
    }
}
