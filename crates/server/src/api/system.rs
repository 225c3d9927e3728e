//! Health, metrics and the web page's settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// How the server is doing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the store does not answer.
    status: String,
    /// `sqlite` or `postgres`.
    store: String,
    /// Schema version of the store.
    schema_version: Option<i64>,
    /// Store id of the served network, if any.
    network_id: Option<i64>,
    /// Version of this program.
    version: String,
}

/// Liveness and readiness: 200 when the store answers, 503 otherwise.
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let schema = state.store.schema_version().await.ok();
    let body = Health {
        status: if schema.is_some() { "ok" } else { "degraded" }.to_owned(),
        store: format!("{:?}", state.store.engine()).to_lowercase(),
        schema_version: schema,
        network_id: state.network.get().map(|s| s.id),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let status = if schema.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.observe_domains(&state).await;
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Settings of the web page.
#[derive(Debug, Serialize, ToSchema)]
pub struct UiConfigDto {
    /// XYZ tile URL template (`{z}/{x}/{y}`) for a basemap, or null for none.
    basemap_url: Option<String>,
    /// The city's name.
    city_name: String,
}

/// What the web page needs to draw: basemap and city name.
#[utoipa::path(get, path = "/api/v1/ui-config", tag = "system", responses((status = 200, body = UiConfigDto)))]
pub async fn ui_config(State(state): State<AppState>) -> Json<UiConfigDto> {
    Json(UiConfigDto {
        basemap_url: state.ui.basemap_url.clone(),
        city_name: state.ui.city_name.clone(),
    })
}
