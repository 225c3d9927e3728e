//! Live vehicles: GTFS-realtime positions in, the TripUpdates feed out.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cityos_realtime::gtfsrt::FeedMessage;
use prost::Message as _;

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody};
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

/// The feed's format.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `json` for people; protobuf otherwise.
    format: Option<String>,
}

/// Predicted arrivals of every trip under way, as a GTFS-realtime TripUpdates
/// feed: protobuf, or `?format=json` with the same field names.
#[utoipa::path(get, path = "/gtfs-rt/trip-updates", tag = "transit", params(FeedQuery),
    responses((status = 200, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage", body = Vec<u8>), (status = 400, body = ErrorBody)))]
pub async fn trip_updates(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    let feed = state.live.trip_updates(jiff::Timestamp::now().as_second());
    match q.format.as_deref() {
        None | Some("pb") | Some("protobuf") => Ok((
            [("content-type", "application/x-protobuf")],
            feed.encode_to_vec(),
        )
            .into_response()),
        Some("json") => Ok(Json(feed_json(&feed)).into_response()),
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("'{other}' is not a format (json, or none for protobuf)"),
        )),
    }
}

/// The feed as JSON with the GTFS-realtime field names.
fn feed_json(feed: &FeedMessage) -> serde_json::Value {
    let event = |e: &Option<cityos_realtime::gtfsrt::StopTimeEvent>| {
        e.as_ref().map(
            |e| serde_json::json!({"time": e.time, "delay": e.delay, "uncertainty": e.uncertainty}),
        )
    };
    let entities: Vec<serde_json::Value> = feed
        .entity
        .iter()
        .map(|entity| {
            let update = entity.trip_update.as_ref().map(|u| {
                serde_json::json!({
                    "trip": {"trip_id": u.trip.trip_id, "start_date": u.trip.start_date},
                    "timestamp": u.timestamp,
                    "delay": u.delay,
                    "stop_time_update": u.stop_time_update.iter().map(|s| serde_json::json!({
                        "stop_sequence": s.stop_sequence, "stop_id": s.stop_id,
                        "arrival": event(&s.arrival), "departure": event(&s.departure),
                    })).collect::<Vec<_>>(),
                })
            });
            serde_json::json!({"id": entity.id, "trip_update": update})
        })
        .collect();
    serde_json::json!({
        "header": {"gtfs_realtime_version": feed.header.gtfs_realtime_version, "timestamp": feed.header.timestamp},
        "entity": entities,
    })
}
