//! The server engine: PostgreSQL through a small pool of connections.
//!
//! Queries are written once with `?` placeholders; they are rewritten to
//! PostgreSQL's `$n` here. All integer columns are BIGINT so an `i64` binds
//! to any of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls};

use crate::{Migration, Row, StoreError, Value};

const POOL: usize = 4;
/// Any constant works: it only has to be the same for every replica.
const MIGRATION_LOCK: i64 = 0x000C_1705;

/// A PostgreSQL-backed store.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    clients: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl PgStore {
    pub(crate) async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut clients = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            clients.push(Mutex::new(Some(connect(url).await?)));
        }
        Ok(PgStore {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                clients,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// A connection from the pool, reconnecting if the server dropped it.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StoreError> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.clients.len();
        let mut guard = self.inner.clients[i].lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(connect(&self.inner.url).await?);
        }
        Ok(guard)
    }

    pub(crate) async fn migrate(&self, migrations: &'static [Migration]) -> Result<(), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or(StoreError::Shape("no client"))?;
        // Replicas starting together must not migrate twice.
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let result = async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .await?;
            let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?;
            let current: i64 = row.get(0);
            let latest = migrations.last().map_or(0, |m| m.version);
            if current > latest {
                return Err(StoreError::Migration(format!(
                    "the database is at schema version {current}, newer than this program's {latest}"
                )));
            }
            for m in migrations.iter().filter(|m| m.version > current) {
                let tx = client.transaction().await?;
                tx.batch_execute(m.sql)
                    .await
                    .map_err(|e| StoreError::Migration(format!("version {}: {e}", m.version)))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[&m.version, &crate::now_unix()],
                )
                .await?;
                tx.commit().await?;
            }
            Ok(())
        }
        .await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        result
    }

    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<u64, StoreError> {
        let guard = self.client().await?;
        let client = guard.as_ref().ok_or(StoreError::Shape("no client"))?;
        let sql = numbered(sql);
        let binds = binds(&params);
        client.execute(sql.as_str(), &binds).await.map_err(conflict)
    }

    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        let guard = self.client().await?;
        let client = guard.as_ref().ok_or(StoreError::Shape("no client"))?;
        let sql = numbered(sql);
        let binds = binds(&params);
        let rows = client.query(sql.as_str(), &binds).await.map_err(conflict)?;
        rows.iter().map(read_row).collect()
    }

    pub(crate) async fn transaction(
        &self,
        statements: Vec<(&'static str, Vec<Value>)>,
    ) -> Result<(), StoreError> {
        let mut guard = self.client().await?;
        let client = guard.as_mut().ok_or(StoreError::Shape("no client"))?;
        let tx = client.transaction().await?;
        for (sql, params) in &statements {
            let sql = numbered(sql);
            tx.execute(sql.as_str(), &binds(params))
                .await
                .map_err(conflict)?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl PgStore {
    /// Takes the session-level advisory lock `key` on a connection of its
    /// own, waiting while another session holds it. Dropping the returned
    /// client closes that connection, which releases the lock.
    pub(crate) async fn advisory_lock(&self, key: i64) -> Result<Client, StoreError> {
        let client = connect(&self.inner.url).await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .map_err(conflict)?;
        Ok(client)
    }
}

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

/// Rewrites `?` placeholders to `$1, $2, …` (our SQL has no `?` in literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A NULL that binds to a parameter of any type.
#[derive(Debug)]
struct AnyNull;

impl ToSql for AnyNull {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

fn binds(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|v| -> &(dyn ToSql + Sync) {
            match v {
                Value::Null => &AnyNull,
                Value::Int(i) => i,
                Value::Text(s) => s,
                Value::Bytes(b) => b,
            }
        })
        .collect()
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_();
            Ok(match *ty {
                Type::INT8 => row
                    .try_get::<_, Option<i64>>(i)?
                    .map_or(Value::Null, Value::Int),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)?
                    .map_or(Value::Null, |v| Value::Int(v.into())),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)?
                    .map_or(Value::Null, |v| Value::Int(v.into())),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(i)?
                    .map_or(Value::Null, |v| Value::Int(v.into())),
                Type::BYTEA => row
                    .try_get::<_, Option<Vec<u8>>>(i)?
                    .map_or(Value::Null, Value::Bytes),
                Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
                    .try_get::<_, Option<String>>(i)?
                    .map_or(Value::Null, Value::Text),
                _ => {
                    return Err(StoreError::Shape(
                        "a column type outside BIGINT, TEXT and BYTEA",
                    ));
                }
            })
        })
        .collect()
}

fn conflict(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        let detail = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned());
        StoreError::Conflict(detail)
    } else {
        StoreError::Postgres(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            super::numbered("SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
    }
}
