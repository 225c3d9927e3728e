//! Rows of the account tables: users, sessions and API keys.
//!
//! Secrets never reach this module in clear: passwords arrive hashed
//! (argon2) and tokens and keys as SHA-256 digests, so a leaked database
//! does not leak a credential.

use crate::{Row, Store, StoreError, Value, now_unix};

/// A user as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// Database id.
    pub id: i64,
    /// Login email, unique, lower-case.
    pub email: String,
    /// Name shown to staff.
    pub display_name: String,
    /// Argon2 PHC string; `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    /// The role's name.
    pub role: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Disabled users cannot log in and their sessions stop working.
    pub disabled: bool,
}

/// An API key as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Database id.
    pub id: i64,
    /// A name saying which machine uses it.
    pub name: String,
    /// The role's name.
    pub role: String,
    /// The user who created it, if any.
    pub owner_id: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

fn user(row: Row) -> Result<UserRecord, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().ok_or(StoreError::Shape("user row"));
    Ok(UserRecord {
        id: next()?.as_i64().ok_or(StoreError::Shape("user id"))?,
        email: next()?
            .into_string()
            .ok_or(StoreError::Shape("user email"))?,
        display_name: next()?.into_string().unwrap_or_default(),
        password_hash: next()?.into_string(),
        role: next()?
            .into_string()
            .ok_or(StoreError::Shape("user role"))?,
        created_at: next()?.as_i64().unwrap_or(0),
        disabled: next()?.as_i64().unwrap_or(0) != 0,
    })
}

impl Store {
    /// Creates a user; [`StoreError::Conflict`] if the email is taken.
    pub async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: Option<&str>,
        role: &str,
    ) -> Result<UserRecord, StoreError> {
        const SQL: &str = "INSERT INTO users (email, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id, email, display_name, password_hash, role, created_at, disabled";
        let params = vec![
            email.into(),
            display_name.into(),
            password_hash.into(),
            role.into(),
            now_unix().into(),
        ];
        let row = self
            .query_row(SQL, params)
            .await?
            .ok_or(StoreError::Shape("insert returned nothing"))?;
        user(row)
    }

    /// The user with `email`.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        const SQL: &str = "SELECT id, email, display_name, password_hash, role, created_at, disabled FROM users WHERE email = ?";
        self.query_row(SQL, vec![email.into()])
            .await?
            .map(user)
            .transpose()
    }

    /// The user with `id`.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>, StoreError> {
        const SQL: &str = "SELECT id, email, display_name, password_hash, role, created_at, disabled FROM users WHERE id = ?";
        self.query_row(SQL, vec![id.into()])
            .await?
            .map(user)
            .transpose()
    }

    /// Users ordered by id, a page at a time.
    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>, StoreError> {
        const SQL: &str = "SELECT id, email, display_name, password_hash, role, created_at, disabled FROM users ORDER BY id LIMIT ? OFFSET ?";
        self.query(SQL, vec![limit.into(), offset.into()])
            .await?
            .into_iter()
            .map(user)
            .collect()
    }

    /// Changes a user's role and disabled flag; false if there is no such user.
    pub async fn update_user(
        &self,
        id: i64,
        role: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE users SET role = ?, disabled = ? WHERE id = ?";
        Ok(self
            .execute(
                SQL,
                vec![role.into(), i64::from(disabled).into(), id.into()],
            )
            .await?
            == 1)
    }

    /// Records a session by its token's digest.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)";
        self.execute(
            SQL,
            vec![
                token_hash.into(),
                user_id.into(),
                now_unix().into(),
                expires_at.into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// The live (unexpired, enabled) user behind a session digest.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError> {
        const SQL: &str = "SELECT u.id, u.email, u.display_name, u.password_hash, u.role, u.created_at, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0";
        self.query_row(SQL, vec![token_hash.into(), now_unix().into()])
            .await?
            .map(user)
            .transpose()
    }

    /// Ends a session; false if there was none.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "DELETE FROM sessions WHERE token_hash = ?",
                vec![token_hash.into()],
            )
            .await?
            == 1)
    }

    /// Records an API key by its digest.
    pub async fn create_api_key(
        &self,
        key_hash: &str,
        name: &str,
        role: &str,
        owner_id: Option<i64>,
    ) -> Result<ApiKeyRecord, StoreError> {
        const SQL: &str = "INSERT INTO api_keys (key_hash, name, role, owner_id, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id, name, role, owner_id, created_at";
        let params = vec![
            key_hash.into(),
            name.into(),
            role.into(),
            owner_id.into(),
            now_unix().into(),
        ];
        let row = self
            .query_row(SQL, params)
            .await?
            .ok_or(StoreError::Shape("insert returned nothing"))?;
        api_key(row)
    }

    /// The unrevoked key with this digest.
    pub async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        const SQL: &str = "SELECT id, name, role, owner_id, created_at FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL";
        self.query_row(SQL, vec![key_hash.into()])
            .await?
            .map(api_key)
            .transpose()
    }

    /// Revokes a key; false if there was no live key with that id.
    pub async fn revoke_api_key(&self, id: i64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
        Ok(self
            .execute(SQL, vec![now_unix().into(), id.into()])
            .await?
            == 1)
    }
}

fn api_key(row: Row) -> Result<ApiKeyRecord, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(ApiKeyRecord {
        id: next().as_i64().ok_or(StoreError::Shape("api key id"))?,
        name: next().into_string().unwrap_or_default(),
        role: next()
            .into_string()
            .ok_or(StoreError::Shape("api key role"))?,
        owner_id: next().as_i64(),
        created_at: next().as_i64().unwrap_or(0),
    })
}
