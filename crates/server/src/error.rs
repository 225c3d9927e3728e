//! The one error shape every endpoint answers with:
//! `{"error": {"code", "message", "field"?}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Details of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `unavailable`, …
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// 400 blaming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// 400 without a single field to blame.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            field: None,
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            field: None,
        }
    }

    /// 401: credentials missing or not valid.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "sign in or send an API key (Authorization: Bearer …)".to_owned(),
            field: None,
        }
    }

    /// 403: signed in, but the role may not do this.
    pub fn forbidden(needed: &str) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!("this needs {needed}"),
            field: None,
        }
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: None,
        }
    }

    /// 503: the server cannot answer yet (e.g. no network imported).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
            field: None,
        }
    }

    /// 500 for failures that are ours; the cause is logged, not shown.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {cause}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the server failed; the operators have the details in its log".to_owned(),
            field: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.to_owned(),
                    message: self.message,
                    field: self.field,
                },
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<cityos_store::StoreError> for ApiError {
    fn from(e: cityos_store::StoreError) -> ApiError {
        match e {
            cityos_store::StoreError::Conflict(m) => ApiError::conflict(m),
            other => ApiError::internal(other),
        }
    }
}

impl From<cityos_accounts::AccountError> for ApiError {
    fn from(e: cityos_accounts::AccountError) -> ApiError {
        use cityos_accounts::AccountError as E;
        match e {
            E::InvalidEmail(_) => ApiError::invalid("email", e.to_string()),
            E::WeakPassword => ApiError::invalid("password", e.to_string()),
            E::InvalidName => ApiError::invalid("name", e.to_string()),
            E::EmailTaken => ApiError::conflict(e.to_string()),
            E::BadCredentials => ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: e.to_string(),
                field: None,
            },
            E::Store(s) => s.into(),
            E::Hash(_) => ApiError::internal(e),
        }
    }
}

/// `Query<T>` whose rejections use [`ApiError`]'s shape.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(ApiQuery(q.0)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                let text = e.body_text();
                let detail = text
                    .trim_start_matches("Failed to deserialize query string: ")
                    .to_owned();
                // serde names the field either as "missing field `lat`" or as "lat: invalid float literal".
                let field = match detail.split('`').nth(1) {
                    Some(quoted) => Some(quoted.to_owned()),
                    None => detail
                        .split_once(": ")
                        .map(|(f, _)| f.to_owned())
                        .filter(|f| !f.contains(' ')),
                };
                Err(ApiError {
                    field,
                    ..ApiError::bad_request(detail)
                })
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// `Json<T>` whose rejections use [`ApiError`]'s shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(j) => Ok(ApiJson(j.0)),
            Err(e) => {
                let status = e.status();
                let code = match &e {
                    JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    _ => "bad_request",
                };
                // Client errors only: a body we cannot read is never our 500.
                let status = if status.is_client_error() {
                    status
                } else {
                    StatusCode::BAD_REQUEST
                };
                Err(ApiError {
                    status,
                    code,
                    message: e.body_text(),
                    field: None,
                })
            }
        }
    }
}
