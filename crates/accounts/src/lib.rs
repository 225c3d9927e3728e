//! Accounts of cityos: who someone is ([`Principal`]) and what they may do
//! ([`Role`], [`Access`]).
//!
//! Citizens register with an email and a password (argon2id); operators
//! are users with a staff role; machines (validators, bus depots) use API
//! keys. Sessions and keys are random tokens that the store only ever sees
//! as SHA-256 digests.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use cityos_store::{Store, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 14 * 24 * 3600;
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Prefix of session tokens, so leaked ones are recognisable.
const SESSION_PREFIX: &str = "cos_s_";
/// Prefix of API keys.
const KEY_PREFIX: &str = "cos_k_";

/// What a user or key is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A resident: files complaints, proposes, votes.
    Citizen,
    /// Staff of a city department or district office: answers complaints.
    DepartmentStaff,
    /// Runs the complaint desk across departments: routes, merges and moderates complaints.
    ComplaintsOfficer,
    /// Runs the transit network: imports GTFS, manages incidents and vehicles.
    TransitOperator,
    /// Runs the installation: manages users, keys and everything else.
    Admin,
}

impl Role {
    /// Every role, for matrices and listings.
    pub const ALL: [Role; 5] = [
        Role::Citizen,
        Role::DepartmentStaff,
        Role::ComplaintsOfficer,
        Role::TransitOperator,
        Role::Admin,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::DepartmentStaff => "department_staff",
            Role::ComplaintsOfficer => "complaints_officer",
            Role::TransitOperator => "transit_operator",
            Role::Admin => "admin",
        }
    }

    /// Parses [`Role::as_str`].
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// Nobody signed in.
    Anonymous,
    /// A signed-in user.
    User {
        /// User id.
        id: i64,
        /// Email.
        email: String,
        /// Role.
        role: Role,
    },
    /// A machine with an API key.
    ApiKey {
        /// Key id.
        id: i64,
        /// The key's name.
        name: String,
        /// Role granted to the key.
        role: Role,
    },
}

impl Principal {
    /// The role, if signed in.
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::Anonymous => None,
            Principal::User { role, .. } | Principal::ApiKey { role, .. } => Some(*role),
        }
    }
}

/// Who may call an endpoint: every endpoint declares one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user or key.
    SignedIn,
    /// Only these roles (admins always may).
    Roles(&'static [Role]),
}

impl Access {
    /// Whether `principal` may pass.
    pub fn allows(self, principal: &Principal) -> bool {
        match (self, principal.role()) {
            (Access::Public, _) => true,
            (_, None) => false,
            (Access::SignedIn, Some(_)) => true,
            (Access::Roles(_), Some(Role::Admin)) => true,
            (Access::Roles(roles), Some(role)) => roles.contains(&role),
        }
    }

    /// A short description for the API documentation.
    pub fn describe(self) -> String {
        match self {
            Access::Public => "public".to_owned(),
            Access::SignedIn => "any signed-in user or API key".to_owned(),
            Access::Roles(roles) => {
                let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                if !names.contains(&"admin") {
                    names.push("admin");
                }
                format!("roles: {}", names.join(", "))
            }
        }
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The email is not plausible.
    #[error("'{0}' is not a valid email address")]
    InvalidEmail(String),
    /// The password is too short or too long.
    #[error("the password must be {MIN_PASSWORD_LEN} to 256 characters long")]
    WeakPassword,
    /// The display name is empty or too long.
    #[error("the name must be 1 to 100 characters long")]
    InvalidName,
    /// Someone already registered this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong email or password (deliberately not saying which).
    #[error("wrong email or password")]
    BadCredentials,
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> AccountError {
        match e {
            StoreError::Conflict(_) => AccountError::EmailTaken,
            other => AccountError::Store(other),
        }
    }
}

/// A user as the rest of cityos sees it (no password hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Whether the account is disabled.
    pub disabled: bool,
}

impl TryFrom<cityos_store::accounts::UserRecord> for User {
    type Error = AccountError;
    fn try_from(r: cityos_store::accounts::UserRecord) -> Result<User, AccountError> {
        Ok(User {
            id: r.id,
            role: Role::parse(&r.role)
                .ok_or(AccountError::Store(StoreError::Shape("unknown role")))?,
            email: r.email,
            display_name: r.display_name,
            disabled: r.disabled,
        })
    }
}

/// Account operations over a [`Store`].
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
}

impl Accounts {
    /// Accounts kept in `store`.
    pub fn new(store: Store) -> Accounts {
        Accounts { store }
    }

    /// Creates a user with a password, validating every field.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        role: Role,
    ) -> Result<User, AccountError> {
        let email = normalise_email(email)?;
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AccountError::InvalidName);
        }
        let hash = hash_password(password).await?;
        self.store
            .create_user(&email, name, Some(&hash), role.as_str())
            .await?
            .try_into()
    }

    /// Checks a password and opens a session, returning the user and the session token.
    pub async fn login(&self, email: &str, password: &str) -> Result<(User, String), AccountError> {
        let email = email.trim().to_lowercase();
        let record = self.store.user_by_email(&email).await?;
        // Verify against a fixed hash for unknown users so timing does not reveal which emails exist.
        let hash = match record.as_ref().and_then(|r| r.password_hash.clone()) {
            Some(h) => h,
            None => dummy_hash().await,
        };
        let ok = verify_password(password, &hash).await;
        let record = match record {
            Some(r) if ok && !r.disabled => r,
            _ => return Err(AccountError::BadCredentials),
        };
        let token = new_token(SESSION_PREFIX);
        self.store
            .create_session(
                &digest(&token),
                record.id,
                cityos_store::now_unix() + SESSION_SECONDS,
            )
            .await?;
        Ok((record.try_into()?, token))
    }

    /// Ends the session of `token`.
    pub async fn logout(&self, token: &str) -> Result<bool, AccountError> {
        Ok(self.store.delete_session(&digest(token)).await?)
    }

    /// Resolves a bearer credential (session token or API key) to a principal.
    pub async fn authenticate(&self, credential: &str) -> Result<Principal, AccountError> {
        if credential.starts_with(KEY_PREFIX) {
            return Ok(match self.store.api_key(&digest(credential)).await? {
                Some(key) => match Role::parse(&key.role) {
                    Some(role) => Principal::ApiKey {
                        id: key.id,
                        name: key.name,
                        role,
                    },
                    None => Principal::Anonymous,
                },
                None => Principal::Anonymous,
            });
        }
        Ok(match self.store.session_user(&digest(credential)).await? {
            Some(user) => match Role::parse(&user.role) {
                Some(role) => Principal::User {
                    id: user.id,
                    email: user.email,
                    role,
                },
                None => Principal::Anonymous,
            },
            None => Principal::Anonymous,
        })
    }

    /// Issues an API key; the returned secret is shown once and never stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        owner: Option<i64>,
    ) -> Result<(i64, String), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AccountError::InvalidName);
        }
        let key = new_token(KEY_PREFIX);
        let record = self
            .store
            .create_api_key(&digest(&key), name, role.as_str(), owner)
            .await?;
        Ok((record.id, key))
    }

    /// Revokes an API key.
    pub async fn revoke_api_key(&self, id: i64) -> Result<bool, AccountError> {
        Ok(self.store.revoke_api_key(id).await?)
    }

    /// A page of users.
    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>, AccountError> {
        self.store
            .list_users(limit, offset)
            .await?
            .into_iter()
            .map(User::try_from)
            .collect()
    }

    /// One user.
    pub async fn user(&self, id: i64) -> Result<Option<User>, AccountError> {
        self.store
            .user_by_id(id)
            .await?
            .map(User::try_from)
            .transpose()
    }

    /// Changes a user's role or disables them.
    pub async fn update_user(
        &self,
        id: i64,
        role: Role,
        disabled: bool,
    ) -> Result<bool, AccountError> {
        Ok(self.store.update_user(id, role.as_str(), disabled).await?)
    }

    /// Creates the admin account unless a user with that email exists; true if created.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<bool, AccountError> {
        if self
            .store
            .user_by_email(&email.trim().to_lowercase())
            .await?
            .is_some()
        {
            return Ok(false);
        }
        self.create_user(email, password, "Administrator", Role::Admin)
            .await?;
        Ok(true)
    }
}

/// A hash of a password nobody has, so failures for unknown emails cost as much as wrong passwords.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn dummy_hash() -> String {
    if let Some(h) = DUMMY_HASH.get() {
        return h.clone();
    }
    let h = hash_password(&new_token("")).await.unwrap_or_default();
    DUMMY_HASH.get_or_init(|| h).clone()
}

fn normalise_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.matches('@').count() == 1;
    if valid {
        Ok(email)
    } else {
        Err(AccountError::InvalidEmail(email))
    }
}

async fn hash_password(password: &str) -> Result<String, AccountError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_LEN..=256).contains(&n) {
        return Err(AccountError::WeakPassword);
    }
    let password = password.to_owned();
    // Argon2 is deliberately slow: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
}

async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut token = String::with_capacity(prefix.len() + 64);
    token.push_str(prefix);
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    token
}

/// The SHA-256 hex digest under which a token is stored.
fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_pass_every_role_check_and_anonymous_only_public() {
        let anon = Principal::Anonymous;
        let citizen = Principal::User {
            id: 1,
            email: "c@x.org".into(),
            role: Role::Citizen,
        };
        let admin = Principal::ApiKey {
            id: 2,
            name: "ops".into(),
            role: Role::Admin,
        };
        let staff_only = Access::Roles(&[Role::DepartmentStaff]);
        assert!(Access::Public.allows(&anon));
        assert!(!Access::SignedIn.allows(&anon));
        assert!(Access::SignedIn.allows(&citizen));
        assert!(!staff_only.allows(&citizen));
        assert!(staff_only.allows(&admin));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email(" Minji@Example.ORG ").unwrap(),
            "minji@example.org"
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@@b.org",
            "a b@c.org",
            "@c.org",
            "a@.org",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }
}
