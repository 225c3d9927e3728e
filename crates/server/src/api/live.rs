//! Live transit: positions in; vehicles, GTFS-realtime feeds, road speeds,
//! incidents and live pushes (Server-Sent Events) out.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cityos_realtime::Congestion;
use cityos_realtime::gtfsrt::FeedMessage;
use cityos_realtime::incidents::Incident;
use futures_util::Stream;
use prost::Message as _;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::transit::{DepartureBoard, DepartureQuery, board_window, departure_board};
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::realtime::{IngestError, IngestSummary, LiveVehicle};

/// Largest feed accepted in one request.
pub const MAX_FEED: usize = 16 << 20;

fn no_network() -> ApiError {
    ApiError::unavailable("no transit network is imported yet")
}

/// Takes in vehicle positions: a GTFS-realtime `FeedMessage` (protobuf) of
/// VehiclePositions, or JSON (one position or an array, with
/// GTFS-realtime's field names). Each position is validated; refused ones
/// are counted by reason.
#[utoipa::path(post, path = "/api/v1/vehicles/positions", tag = "live", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage, or JSON positions"),
    responses((status = 200, body = IngestSummary), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn post_positions(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<IngestSummary>, ApiError> {
    let served = state.network.get().ok_or_else(no_network)?;
    let live = state.live.clone();
    let metrics = state.metrics.clone();
    let summary = tokio::task::spawn_blocking(move || live.ingest(&served, &body, &metrics, None))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            IngestError::Feed(e) => ApiError::bad_request(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        })?;
    Ok(Json(summary))
}

/// The feed's format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `json` for people; protobuf otherwise.
    format: Option<String>,
}

/// A feed as protobuf, or as JSON with GTFS-realtime's field names.
fn feed_response(bytes: Bytes, format: Option<&str>) -> Result<Response, ApiError> {
    match format {
        None | Some("pb") | Some("protobuf") => {
            Ok(([("content-type", "application/x-protobuf")], bytes).into_response())
        }
        Some("json") => {
            let feed = FeedMessage::decode(bytes).map_err(ApiError::internal)?;
            let mut value = serde_json::to_value(&feed).map_err(ApiError::internal)?;
            drop_nulls(&mut value);
            Ok(Json(value).into_response())
        }
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("'{other}' is not a format (json, or none for protobuf)"),
        )),
    }
}

/// Removes absent optional fields, as protobuf's JSON mapping leaves them out.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Predicted arrivals of every trip under way, as a GTFS-realtime TripUpdates
/// feed: protobuf, or `?format=json` with the same field names.
#[utoipa::path(get, path = "/gtfs-rt/trip-updates", tag = "live", params(FeedQuery),
    responses((status = 200, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage", body = Vec<u8>), (status = 400, body = ErrorBody)))]
pub async fn trip_updates(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    feed_response(
        state.live.snapshot().trip_updates.clone(),
        q.format.as_deref(),
    )
}

/// Where every vehicle on a trip is, as a GTFS-realtime VehiclePositions feed.
#[utoipa::path(get, path = "/gtfs-rt/vehicle-positions", tag = "live", params(FeedQuery),
    responses((status = 200, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage", body = Vec<u8>), (status = 400, body = ErrorBody)))]
pub async fn vehicle_positions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    feed_response(
        state.live.snapshot().vehicle_positions.clone(),
        q.format.as_deref(),
    )
}

/// Active incidents in force, as a GTFS-realtime ServiceAlerts feed (Korean and English texts).
#[utoipa::path(get, path = "/gtfs-rt/service-alerts", tag = "live", params(FeedQuery),
    responses((status = 200, content_type = "application/x-protobuf", description = "GTFS-realtime FeedMessage", body = Vec<u8>), (status = 400, body = ErrorBody)))]
pub async fn service_alerts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    feed_response(state.live.snapshot().alerts.clone(), q.format.as_deref())
}

/// Every vehicle on a trip now.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct VehicleList {
    /// When the data was current, POSIX seconds.
    at: i64,
    vehicles: Vec<LiveVehicle>,
}

/// Every vehicle on a trip: where it is, how late, where it goes next.
#[utoipa::path(get, path = "/api/v1/vehicles", tag = "live",
    responses((status = 200, body = VehicleList)))]
pub async fn vehicles(State(state): State<AppState>) -> Json<VehicleList> {
    let snapshot = state.live.snapshot();
    Json(VehicleList {
        at: snapshot.at,
        vehicles: snapshot.vehicles.clone(),
    })
}

/// One vehicle and its predicted arrivals at the stops ahead.
#[utoipa::path(get, path = "/api/v1/vehicles/{vehicle_id}", tag = "live",
    params(("vehicle_id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn vehicle(
    State(state): State<AppState>,
    Path(vehicle_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let served = state.network.get().ok_or_else(no_network)?;
    let snapshot = state.live.snapshot();
    let not_found = || ApiError::not_found(format!("no vehicle '{vehicle_id}' is on a trip now"));
    let vehicle = snapshot
        .vehicles
        .iter()
        .find(|v| v.vehicle_id == vehicle_id)
        .ok_or_else(not_found)?;
    let d = served.network.data();
    let trip = d.trips.ids.get(&vehicle.trip_id).ok_or_else(not_found)?;
    let date: jiff::civil::Date = vehicle.service_date.parse().map_err(ApiError::internal)?;
    let range = d.trips.stop_time_range(trip);
    let stops: Vec<Value> = snapshot
        .runs
        .get(&(trip, date))
        .map(|run| {
            run.predictions
                .iter()
                .map(|p| {
                    let stop = d.stop_times.stop[range.start + p.stop_index as usize];
                    json!({
                        "stop_id": d.stops.ids.id(stop),
                        "stop_name": d.stops.names[stop as usize],
                        "expected": p.arrival.round() as i64,
                        "earliest": p.p10.round() as i64,
                        "latest": p.p90.round() as i64,
                        "scheduled": p.scheduled.round() as i64,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({"vehicle": vehicle, "next_stops": stops})))
}

/// Which hour's typical speeds to compare with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoadQuery {
    /// Local hour 0–23 for `typical_kmh` (default: the current hour).
    hour: Option<u8>,
}

/// Road speeds (TOPIS): every road segment between consecutive stops that
/// vehicles have driven, as GeoJSON LineStrings with the live speed of the
/// last half hour, the typical speed at the hour, and a congestion level
/// (Seoul TOPIS: smooth ≥ 25 km/h, slow ≥ 15, congested below).
#[utoipa::path(get, path = "/api/v1/roads/speeds.geojson", tag = "live", params(RoadQuery),
    responses((status = 200, content_type = "application/geo+json", body = Object), (status = 400, body = ErrorBody)))]
pub async fn road_speeds(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RoadQuery>,
) -> Result<Response, ApiError> {
    let served = state.network.get().ok_or_else(no_network)?;
    if q.hour.is_some_and(|h| h > 23) {
        return Err(ApiError::invalid("hour", "hour must be 0 to 23"));
    }
    let snapshot = state.live.snapshot();
    let mut roads = snapshot.roads.clone();
    let hour = q.hour;
    let live = state.live.clone();
    let body = tokio::task::spawn_blocking(move || {
        if let Some(hour) = hour {
            // Typical speeds of another hour: ask the live map for that hour.
            roads = live.road_speeds_at_hour(hour);
        }
        let paths = live.road_paths(&roads);
        let d = served.network.data();
        let features: Vec<Value> = roads
            .iter()
            .zip(paths)
            .filter_map(|(road, path)| {
                let path = path?;
                let shown = road.live_kmh.or(road.typical_kmh)?;
                Some(json!({
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": path.iter().map(|(lat, lon)| [round6(*lon), round6(*lat)]).collect::<Vec<_>>(),
                    },
                    "properties": {
                        "from_stop_id": d.stops.ids.id(road.from_stop),
                        "to_stop_id": d.stops.ids.id(road.to_stop),
                        "length_m": road.metres.round(),
                        "live_kmh": road.live_kmh.map(round1),
                        "typical_kmh": road.typical_kmh.map(round1),
                        "congestion": Congestion::of(shown),
                        "samples": road.samples,
                    },
                }))
            })
            .collect();
        json!({"type": "FeatureCollection", "features": features}).to_string()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(([("content-type", "application/geo+json")], body).into_response())
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The stop board as a live stream (Server-Sent Events): an `update` event
/// with the whole board each time the real-time data changes, for stop
/// displays and phones that keep it open.
#[utoipa::path(get, path = "/api/v1/stops/{stop_id}/departures/stream", tag = "live",
    params(("stop_id" = String, Path, description = "GTFS stop_id"), DepartureQuery),
    responses((status = 200, content_type = "text/event-stream", body = DepartureBoard), (status = 404, body = ErrorBody)))]
pub async fn departures_stream(
    State(state): State<AppState>,
    Path(stop_id): Path<String>,
    ApiQuery(q): ApiQuery<DepartureQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let served = state.network.get().ok_or_else(no_network)?;
    // Checked once, so a bad request fails before the stream starts.
    board_window(&served, state.live.clock.now(), &stop_id, &q)?;
    let updates = state.live.subscribe();
    let stream = futures_util::stream::unfold((updates, true), move |(mut updates, first)| {
        let state = state.clone();
        let stop_id = stop_id.clone();
        let q = q.clone();
        async move {
            if !first && updates.changed().await.is_err() {
                return None;
            }
            let snapshot = updates.borrow_and_update().clone();
            let served = state.network.get()?;
            let now = snapshot.now(&state.live.clock);
            let (s, from, until, limit) = board_window(&served, now, &stop_id, &q).ok()?;
            let board = departure_board(&served, &snapshot, s, from, until, limit);
            let event = Event::default()
                .event("update")
                .json_data(&board)
                .unwrap_or_default();
            Some((Ok(event), (updates, false)))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Vehicles as a live stream (Server-Sent Events) for the map: a
/// `vehicles` event with every vehicle each time the data changes.
#[utoipa::path(get, path = "/api/v1/vehicles/stream", tag = "live",
    responses((status = 200, content_type = "text/event-stream", body = VehicleList)))]
pub async fn vehicles_stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = state.live.subscribe();
    let stream = futures_util::stream::unfold((updates, true), |(mut updates, first)| async move {
        if !first && updates.changed().await.is_err() {
            return None;
        }
        let snapshot = updates.borrow_and_update().clone();
        let event = Event::default()
            .event("vehicles")
            .json_data(json!({"at": snapshot.at, "vehicles": snapshot.vehicles}))
            .unwrap_or_default();
        Some((Ok(event), (updates, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// An incident as the API shows it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct IncidentDto {
    id: i64,
    /// `proposed` (detected, awaiting an operator), `active`, `resolved` or `dismissed`.
    status: String,
    /// `operator`, `stalled`, `silent` (a vehicle lost contact mid-trip) or `bunched`.
    source: String,
    #[schema(value_type = Object)]
    incident: Incident,
    created_at: i64,
    updated_at: i64,
}

fn incident_dto(row: cityos_store::live::IncidentRow) -> Option<IncidentDto> {
    Some(IncidentDto {
        incident: serde_json::from_str(&row.body).ok()?,
        id: row.id,
        status: row.status,
        source: row.source,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Incidents riders should know of: active ones, and those closed in the last day.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "live",
    responses((status = 200, body = Vec<IncidentDto>)))]
pub async fn incidents(State(state): State<AppState>) -> Result<Json<Vec<IncidentDto>>, ApiError> {
    let since = state.live.clock.now() - 86_400;
    let rows = state
        .store
        .incidents(since)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .filter(|r| r.status != "proposed" && r.status != "dismissed")
            .filter_map(incident_dto)
            .collect(),
    ))
}

/// Every incident for the control room, proposals awaiting confirmation included.
#[utoipa::path(get, path = "/api/v1/admin/incidents", tag = "live", security(("bearer" = [])),
    responses((status = 200, body = Vec<IncidentDto>), (status = 401, body = ErrorBody)))]
pub async fn all_incidents(
    State(state): State<AppState>,
) -> Result<Json<Vec<IncidentDto>>, ApiError> {
    let since = state.live.clock.now() - 86_400;
    let rows = state
        .store
        .incidents(since)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(rows.into_iter().filter_map(incident_dto).collect()))
}

fn check_incident(state: &AppState, incident: &Incident) -> Result<(), ApiError> {
    let served = state.network.get().ok_or_else(no_network)?;
    incident
        .validate(&served.network)
        .map_err(|e| ApiError::invalid(e.field, e.message))
}

/// Declares an incident (operators). It is active at once and appears in
/// the ServiceAlerts feed while in force.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "live", security(("bearer" = [])),
    request_body(content = Object, description = "an incident: header, cause, effect, routes/stops/area, starts_at/ends_at"),
    responses((status = 201, body = IncidentDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_incident(
    State(state): State<AppState>,
    ApiJson(incident): ApiJson<Incident>,
) -> Result<(StatusCode, Json<IncidentDto>), ApiError> {
    check_incident(&state, &incident)?;
    let body = serde_json::to_string(&incident).map_err(ApiError::internal)?;
    let row = state
        .store
        .create_incident("active", "operator", None, &body)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal("the incident was not recorded"))?;
    state.live.incidents_changed();
    let dto = incident_dto(row).ok_or_else(|| ApiError::internal("unreadable incident"))?;
    Ok((StatusCode::CREATED, Json(dto)))
}

/// A change to an incident.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentChange {
    /// `active` (confirm a proposal), `resolved` or `dismissed`.
    status: String,
    /// The incident rewritten (e.g. a better header), if it changes.
    #[serde(default)]
    #[schema(value_type = Object)]
    incident: Option<Incident>,
}

/// Confirms, edits, resolves or dismisses an incident (operators).
#[utoipa::path(patch, path = "/api/v1/incidents/{incident_id}", tag = "live", security(("bearer" = [])),
    params(("incident_id" = i64, Path)), request_body = IncidentChange,
    responses((status = 200, body = IncidentDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_incident(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(change): ApiJson<IncidentChange>,
) -> Result<Json<IncidentDto>, ApiError> {
    if !["active", "resolved", "dismissed"].contains(&change.status.as_str()) {
        return Err(ApiError::invalid(
            "status",
            format!(
                "'{}' is not a status (active, resolved, dismissed)",
                change.status
            ),
        ));
    }
    let row = state
        .store
        .incident(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    let body = match &change.incident {
        Some(incident) => {
            check_incident(&state, incident)?;
            serde_json::to_string(incident).map_err(ApiError::internal)?
        }
        None => row.body,
    };
    state
        .store
        .update_incident(id, &change.status, &body)
        .await
        .map_err(ApiError::internal)?;
    state.live.incidents_changed();
    let row = state
        .store
        .incident(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(Json(incident_dto(row).ok_or_else(|| {
        ApiError::internal("unreadable incident")
    })?))
}

/// Which run's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Service date `YYYY-MM-DD`.
    date: String,
}

/// The arrivals and departures detected for one run of a trip: what the
/// vehicle really did, stop by stop.
#[utoipa::path(get, path = "/api/v1/trips/{trip_id}/history", tag = "live",
    params(("trip_id" = String, Path), HistoryQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn trip_history(
    State(state): State<AppState>,
    Path(trip_id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let date: jiff::civil::Date = q.date.parse().map_err(|_| {
        ApiError::invalid(
            "date",
            format!("'{}' is not a date like 2026-03-02", q.date),
        )
    })?;
    let rows = state
        .store
        .stop_events_of(&trip_id, &date.to_string())
        .await
        .map_err(ApiError::internal)?;
    let events: Vec<Value> = rows
        .into_iter()
        .map(|e| {
            json!({"stop_sequence": e.stop_sequence, "stop_id": e.stop_id, "kind": e.kind, "at": e.at, "observed": e.observed})
        })
        .collect();
    Ok(Json(
        json!({"trip_id": trip_id, "service_date": date.to_string(), "events": events}),
    ))
}
