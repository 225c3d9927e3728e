//! Live vehicles: GTFS-realtime positions in, the TripUpdates feed out.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prost::Message as _;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::realtime::IngestSummary;

/// Largest feed accepted in one request.
pub const MAX_FEED: usize = 16 << 20;

/// Takes in vehicle positions: a GTFS-realtime `FeedMessage` (protobuf) of
/// VehiclePositions. Each position is validated; refused ones are counted by reason.
#[utoipa::path(post, path = "/api/v1/vehicles/positions", tag = "transit", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage"),
    responses((status = 200, body = IngestSummary), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn post_positions(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<IngestSummary>, ApiError> {
    let served = state
        .network
        .get()
        .ok_or_else(|| ApiError::unavailable("no transit network is imported yet"))?;
    let now = jiff::Timestamp::now().as_second();
    let live = state.live.clone();
    let metrics = state.metrics.clone();
    let summary = tokio::task::spawn_blocking(move || live.ingest(&served, &body, now, &metrics))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad_request(format!("not a GTFS-realtime FeedMessage: {e}")))?;
    Ok(Json(summary))
}

/// Predicted arrivals of every trip under way, as a GTFS-realtime TripUpdates feed (protobuf).
#[utoipa::path(get, path = "/gtfs-rt/trip-updates", tag = "transit",
    responses((status = 200, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage", body = Vec<u8>)))]
pub async fn trip_updates(State(state): State<AppState>) -> Response {
    let feed = state.live.trip_updates(jiff::Timestamp::now().as_second());
    (
        [("content-type", "application/x-protobuf")],
        feed.encode_to_vec(),
    )
        .into_response()
}
