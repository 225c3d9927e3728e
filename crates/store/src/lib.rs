//! Storage for cityos: one interface over two engines.
//!
//! [`Store`] is an embedded SQLite file (WAL, created on first use) by
//! default, or PostgreSQL when given a `postgres://` URL so that several
//! replicas of the server can share one database. Each query is written once
//! with `?` placeholders and runs on both engines; schema changes are
//! versioned migrations per engine under `migrations/`, applied on open.
//!
//! The typed operations live in [`accounts`], [`networks`], [`cards`] and
//! [`complaints`]; nothing
//! outside this crate writes SQL.

pub mod accounts;
pub mod cards;
pub mod complaints;
pub mod live;
pub mod networks;
mod postgres;
mod sqlite;
pub mod testing;

use std::path::PathBuf;

/// A value bound to or read from a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (all integer columns are BIGINT).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (BLOB / BYTEA).
    Bytes(Vec<u8>),
}

impl Value {
    /// The integer, or `None` for other kinds.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The text, or `None` for other kinds.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(v) => Some(v),
            _ => None,
        }
    }

    /// Takes the text out, or `None` for other kinds.
    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Text(v) => Some(v),
            _ => None,
        }
    }

    /// Takes the bytes out, or `None` for other kinds.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Bytes(v) => Some(v),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row.
pub type Row = Vec<Value>;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL or path is not usable.
    #[error("invalid database location '{0}': expected a file path, sqlite:PATH or postgres://…")]
    BadLocation(String),
    /// The SQLite engine failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL engine failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A unique constraint refused the write (e.g. an email already registered).
    #[error("already exists: {0}")]
    Conflict(String),
    /// Creating the data directory failed.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A migration failed or the database is newer than this program.
    #[error("migration: {0}")]
    Migration(String),
    /// A row did not have the shape the code expects (a bug or a foreign schema).
    #[error("unexpected row shape: {0}")]
    Shape(&'static str),
    /// A blocking storage task was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
}

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The storage of one cityos deployment.
#[derive(Clone)]
pub enum Store {
    /// An embedded SQLite file.
    Sqlite(sqlite::SqliteStore),
    /// A PostgreSQL database.
    Postgres(postgres::PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.engine())
    }
}

/// A migration: its version and SQL.
struct Migration {
    version: i64,
    sql: &'static str,
}

const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/0002_cards.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/0003_fare_rules.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/sqlite/0004_live.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/sqlite/0005_complaints.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/sqlite/0006_card_log.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/sqlite/0007_id_leases.sql"),
    },
];

const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/postgres/0002_cards.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/postgres/0003_fare_rules.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/postgres/0004_live.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/postgres/0005_complaints.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/postgres/0006_card_log.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/postgres/0007_id_leases.sql"),
    },
];

impl Store {
    /// Opens the store at `location` and brings its schema up to date.
    ///
    /// `location` is `postgres://…` (or `postgresql://…`), `sqlite:PATH`, or a
    /// plain file path; a SQLite file and its directory are created if missing.
    pub async fn open(location: &str) -> Result<Store, StoreError> {
        let store = if location.starts_with("postgres://") || location.starts_with("postgresql://")
        {
            Store::Postgres(postgres::PgStore::connect(location).await?)
        } else {
            let path = location.strip_prefix("sqlite:").unwrap_or(location);
            if path.is_empty() {
                return Err(StoreError::BadLocation(location.to_owned()));
            }
            Store::Sqlite(sqlite::SqliteStore::open(PathBuf::from(path)).await?)
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        match self {
            Store::Sqlite(_) => Engine::Sqlite,
            Store::Postgres(_) => Engine::Postgres,
        }
    }

    /// The schema version the store is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let rows = self
            .query("SELECT MAX(version) FROM schema_migrations", vec![])
            .await?;
        Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or(0))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.migrate(SQLITE_MIGRATIONS).await,
            Store::Postgres(p) => p.migrate(POSTGRES_MIGRATIONS).await,
        }
    }

    /// Runs a statement, returning the number of rows changed.
    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.execute(sql, params).await,
            Store::Postgres(p) => p.execute(sql, params).await,
        }
    }

    /// Runs a query, returning all rows.
    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, StoreError> {
        match self {
            Store::Sqlite(s) => s.query(sql, params).await,
            Store::Postgres(p) => p.query(sql, params).await,
        }
    }

    /// Runs a query, returning its first row, if any.
    pub(crate) async fn query_row(
        &self,
        sql: &'static str,
        params: Vec<Value>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs statements in one transaction: all apply or none.
    pub(crate) async fn transaction(
        &self,
        statements: Vec<(&'static str, Vec<Value>)>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.transaction(statements).await,
            Store::Postgres(p) => p.transaction(statements).await,
        }
    }
}

/// Current time as Unix seconds, the unit of every timestamp column.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
