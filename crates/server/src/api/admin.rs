//! Network administration: import a GTFS feed, list stored networks, roll back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cityos_transit::{Issue, LoadError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::network::{ImportError, Served, import_feed};

/// Largest GTFS zip accepted over HTTP; bigger feeds go through `cityos import gtfs`.
pub const MAX_UPLOAD: usize = 256 << 20;

/// A stored network.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkRecordDto {
    id: i64,
    /// Unix seconds.
    created_at: i64,
    source: String,
    active: bool,
    byte_len: i64,
    /// The network's counts, as `/api/v1/network` shows them.
    #[schema(value_type = Object)]
    summary: serde_json::Value,
}

impl From<cityos_store::networks::NetworkRecord> for NetworkRecordDto {
    fn from(r: cityos_store::networks::NetworkRecord) -> NetworkRecordDto {
        NetworkRecordDto {
            id: r.id,
            created_at: r.created_at,
            source: r.source,
            active: r.active,
            byte_len: r.byte_len,
            summary: serde_json::from_str(&r.summary).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The outcome of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    network: NetworkRecordDto,
    /// Problems the loader worked around.
    #[schema(value_type = Vec<Object>)]
    warnings: Vec<Issue>,
}

/// Why a feed was refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedRejected {
    /// `{code: "invalid_feed", message}`.
    #[schema(value_type = Object)]
    error: serde_json::Value,
    /// Every error found, with file, line and field.
    #[schema(value_type = Vec<Object>)]
    errors: Vec<Issue>,
    #[schema(value_type = Vec<Object>)]
    warnings: Vec<Issue>,
}

/// Imports a GTFS feed (the zip as the request body) and serves it once it loads without errors.
/// A refused feed leaves the served network untouched.
#[utoipa::path(post, path = "/api/v1/admin/networks", tag = "admin", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/zip", description = "a GTFS zip"),
    responses((status = 201, body = ImportResult), (status = 422, body = FeedRejected), (status = 403, body = ErrorBody)))]
pub async fn import(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "send the GTFS zip as the request body",
        ));
    }
    let dir = tempfile::tempdir().map_err(ApiError::internal)?;
    let path = dir.path().join("upload.zip");
    tokio::fs::write(&path, &body)
        .await
        .map_err(ApiError::internal)?;
    match import_feed(&state.store, path, "upload", |_| {}).await {
        Ok(imported) => {
            let dto = NetworkRecordDto::from(imported.record.clone());
            state.network.set(
                Served {
                    id: imported.record.id,
                    network: std::sync::Arc::new(imported.network),
                },
                &state.metrics,
            );
            let body = ImportResult {
                network: dto,
                warnings: imported.report.warnings,
            };
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(ImportError::Feed(e)) => {
            let (errors, warnings) = match &e {
                LoadError::Invalid(report) => (report.errors.clone(), report.warnings.clone()),
                other => (
                    vec![],
                    vec![Issue {
                        file: "upload.zip".into(),
                        line: None,
                        field: None,
                        message: other.to_string(),
                    }],
                ),
            };
            let body = FeedRejected {
                error: serde_json::json!({"code": "invalid_feed", "message": e.to_string()}),
                errors,
                warnings,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
        }
        Err(ImportError::Store(e)) => Err(e.into()),
        Err(e @ ImportError::Task(_)) => Err(ApiError::internal(e)),
    }
}

/// Stored networks, newest first.
#[utoipa::path(get, path = "/api/v1/admin/networks", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<NetworkRecordDto>), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<NetworkRecordDto>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_networks()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Serves a previously stored network again (rollback).
#[utoipa::path(post, path = "/api/v1/admin/networks/{network_id}/activate", tag = "admin", security(("bearer" = [])),
    params(("network_id" = i64, Path)),
    responses((status = 200, body = NetworkRecordDto), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    Path(network_id): Path<i64>,
) -> Result<Json<NetworkRecordDto>, ApiError> {
    if state.store.network(network_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no network {network_id}")));
    }
    state.store.activate_network(network_id).await?;
    state
        .network
        .refresh(&state.store, &state.metrics)
        .await
        .map_err(ApiError::internal)?;
    let record = state
        .store
        .network(network_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no network {network_id}")))?;
    Ok(Json(record.into()))
}
