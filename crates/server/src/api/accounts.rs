//! Accounts API: register, log in and out, who am I, and the admin's user and key management.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cityos_accounts::{Principal, Role, SESSION_SECONDS, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::SESSION_COOKIE;
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody};

/// A new citizen account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    email: String,
    /// At least 10 characters.
    password: String,
    /// Name shown to staff when the citizen files a complaint.
    name: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    id: i64,
    email: String,
    name: String,
    /// `citizen`, `department_staff`, `complaints_officer`, `transit_operator` or `admin`.
    role: String,
    disabled: bool,
}

impl From<User> for UserDto {
    fn from(u: User) -> UserDto {
        UserDto {
            id: u.id,
            email: u.email,
            name: u.display_name,
            role: u.role.as_str().to_owned(),
            disabled: u.disabled,
        }
    }
}

/// Registers a citizen. Staff accounts are created by an admin.
#[utoipa::path(post, path = "/api/v1/accounts/register", tag = "accounts", request_body = RegisterRequest,
    responses((status = 201, body = UserDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let user = state
        .accounts
        .create_user(&req.email, &req.password, &req.name, Role::Citizen)
        .await?;
    Ok((StatusCode::CREATED, Json(UserDto::from(user))).into_response())
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`; browsers also get it as an HttpOnly cookie.
    token: String,
    /// Seconds until the session expires.
    expires_in: i64,
    user: UserDto,
}

/// Logs in with email and password.
#[utoipa::path(post, path = "/api/v1/accounts/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (user, token) = state.accounts.login(&req.email, &req.password).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECONDS}"
    );
    let body = LoginResponse {
        token,
        expires_in: SESSION_SECONDS,
        user: user.into(),
    };
    Ok(([("set-cookie", cookie)], Json(body)).into_response())
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/accounts/logout", tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|c| {
                    c.split(';').find_map(|kv| {
                        kv.trim()
                            .strip_prefix(SESSION_COOKIE)?
                            .strip_prefix('=')
                            .map(str::to_owned)
                    })
                })
        });
    if let Some(token) = token {
        state.accounts.logout(&token).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [("set-cookie", clear)]).into_response())
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    kind: String,
    id: i64,
    /// Email of a user, name of a key.
    name: String,
    role: String,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/accounts/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(Extension(principal): Extension<Principal>) -> Result<Json<Me>, ApiError> {
    match principal {
        Principal::User { id, email, role } => Ok(Json(Me {
            kind: "user".into(),
            id,
            name: email,
            role: role.as_str().into(),
        })),
        Principal::ApiKey { id, name, role } => Ok(Json(Me {
            kind: "api_key".into(),
            id,
            name,
            role: role.as_str().into(),
        })),
        Principal::Anonymous => Err(ApiError::unauthorized()),
    }
}

/// Paging of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// 1–1000, default 100.
    limit: Option<i64>,
    /// Default 0.
    offset: Option<i64>,
}

/// Lists users (admin).
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), params(UserListQuery),
    responses((status = 200, body = Vec<UserDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> Result<Json<Vec<UserDto>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1 to 1000"));
    }
    let offset = q.offset.unwrap_or(0).max(0);
    let users = state.accounts.list_users(limit, offset).await?;
    Ok(Json(users.into_iter().map(UserDto::from).collect()))
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!("'{text}' is not a role (citizen, department_staff, complaints_officer, transit_operator, admin)"),
        )
    })
}

/// A staff or citizen account created by an admin.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    email: String,
    password: String,
    name: String,
    role: String,
}

/// Creates a user with any role (admin).
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = UserDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let role = parse_role(&req.role)?;
    let user = state
        .accounts
        .create_user(&req.email, &req.password, &req.name, role)
        .await?;
    Ok((StatusCode::CREATED, Json(UserDto::from(user))).into_response())
}

/// Changes to a user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    role: String,
    disabled: bool,
}

/// Changes a user's role or disables them (admin).
#[utoipa::path(patch, path = "/api/v1/admin/users/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("user_id" = i64, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<Json<UserDto>, ApiError> {
    let role = parse_role(&req.role)?;
    if !state
        .accounts
        .update_user(user_id, role, req.disabled)
        .await?
    {
        return Err(ApiError::not_found(format!("no user {user_id}")));
    }
    let user = state
        .accounts
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))?;
    Ok(Json(user.into()))
}

/// A new API key for a machine.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// Which machine uses it, e.g. "depot 3 validators".
    name: String,
    role: String,
}

/// A new key; the secret is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    id: i64,
    /// Send as `Authorization: Bearer <key>`.
    key: String,
}

/// Issues an API key (admin).
#[utoipa::path(post, path = "/api/v1/admin/api-keys", tag = "admin", security(("bearer" = [])), request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> Result<Response, ApiError> {
    let role = parse_role(&req.role)?;
    let owner = match principal {
        Principal::User { id, .. } => Some(id),
        _ => None,
    };
    let (id, key) = state
        .accounts
        .create_api_key(&req.name, role, owner)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { id, key })).into_response())
}

/// Revokes an API key (admin).
#[utoipa::path(delete, path = "/api/v1/admin/api-keys/{key_id}", tag = "admin", security(("bearer" = [])),
    params(("key_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Path(key_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if state.accounts.revoke_api_key(key_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no live API key {key_id}")))
    }
}
