//! Smart card API: issue cards, top up, tap, block, refund, fare quotes and the ledger audit.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cityos_accounts::{Principal, Role};
use cityos_card::{Answer, CardDesk, CardId, DeskError, Request};
use cityos_fare::{Category, Mode, Tap, TapKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody};

/// Largest batch of taps in one request.
pub const MAX_TAPS_PER_REQUEST: usize = 1000;

fn desk(state: &AppState) -> Result<&CardDesk, ApiError> {
    state
        .cards
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("the card desk is not running"))
}

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> ApiError {
        match e {
            DeskError::Unavailable => ApiError::unavailable(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

fn check_op_id(op_id: &str) -> Result<(), ApiError> {
    if op_id.is_empty() || op_id.len() > 100 || op_id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "op_id",
            "op_id must be 1 to 100 printable characters, unique per operation",
        ));
    }
    Ok(())
}

/// Whether `principal` may see or manage `card_id`: staff always, citizens their own registered cards.
fn may_manage(state: &AppState, principal: &Principal, card_id: CardId) -> Result<(), ApiError> {
    let desk = desk(state)?;
    let card = desk
        .card(card_id)
        .ok_or_else(|| ApiError::not_found(format!("no card {card_id}")))?;
    match principal {
        Principal::User {
            id,
            role: Role::Citizen,
            ..
        } if card.registered_to != Some(*id) => {
            Err(ApiError::not_found(format!("no card {card_id}")))
        }
        _ => Ok(()),
    }
}

fn answer_response(answer: Answer) -> Response {
    let status = match answer {
        Answer::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Answer::Issued { .. } => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    (status, Json(answer)).into_response()
}

/// A new card.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IssueRequest {
    /// Idempotency id chosen by the client.
    op_id: String,
    /// `adult`, `youth` (13–18) or `child` (6–12).
    #[schema(value_type = String)]
    category: Category,
    /// Register to this user (staff only); citizens' cards are registered to themselves.
    registered_to: Option<i64>,
    /// Staff: issue an anonymous card.
    #[serde(default)]
    anonymous: bool,
}

/// Issues a card: citizens get one registered to them; staff may issue anonymous cards.
#[utoipa::path(post, path = "/api/v1/cards", tag = "cards", security(("bearer" = [])), request_body = IssueRequest,
    responses((status = 201, description = "issued", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn issue(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(req): ApiJson<IssueRequest>,
) -> Result<Response, ApiError> {
    check_op_id(&req.op_id)?;
    let registered_to = match &principal {
        Principal::User {
            id,
            role: Role::Citizen,
            ..
        } => Some(*id),
        _ if req.anonymous => None,
        Principal::User { id, .. } => req.registered_to.or(Some(*id)),
        _ => req.registered_to,
    };
    let answer = desk(&state)?
        .submit(
            &req.op_id,
            Request::Issue {
                category: req.category,
                registered_to,
            },
        )
        .await?;
    Ok(answer_response(answer))
}

/// A card's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardDto {
    card_id: CardId,
    #[schema(value_type = String)]
    category: Category,
    registered_to: Option<i64>,
    /// `active`, `blocked` or `refunded`.
    status: String,
    /// Won; negative after a boarding on a low balance, repaid by the next top-up.
    balance: i64,
}

/// A card's balance and status.
#[utoipa::path(get, path = "/api/v1/cards/{card_id}", tag = "cards", security(("bearer" = [])), params(("card_id" = i64, Path)),
    responses((status = 200, body = CardDto), (status = 404, body = ErrorBody)))]
pub async fn card(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(card_id): Path<CardId>,
) -> Result<Json<CardDto>, ApiError> {
    may_manage(&state, &principal, card_id)?;
    let view = desk(&state)?
        .card(card_id)
        .ok_or_else(|| ApiError::not_found(format!("no card {card_id}")))?;
    Ok(Json(CardDto {
        card_id,
        category: view.category,
        registered_to: view.registered_to,
        status: serde_json::to_value(view.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        balance: view.balance,
    }))
}

/// One operation on a card.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    op_id: String,
    /// Unix seconds.
    at: i64,
    #[schema(value_type = Object)]
    request: serde_json::Value,
    #[schema(value_type = Object)]
    answer: serde_json::Value,
}

/// A card's trips, top-ups and other operations, oldest first.
#[utoipa::path(get, path = "/api/v1/cards/{card_id}/history", tag = "cards", security(("bearer" = [])), params(("card_id" = i64, Path)),
    responses((status = 200, body = Vec<HistoryItem>), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(card_id): Path<CardId>,
) -> Result<Json<Vec<HistoryItem>>, ApiError> {
    may_manage(&state, &principal, card_id)?;
    let items = desk(&state)?.history(card_id).await?;
    Ok(Json(
        items
            .into_iter()
            .map(|(op_id, request, answer, at)| HistoryItem {
                op_id,
                at,
                request: serde_json::to_value(request).unwrap_or_default(),
                answer: serde_json::to_value(answer).unwrap_or_default(),
            })
            .collect(),
    ))
}

/// Money onto a card.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TopUpRequest {
    op_id: String,
    /// Won, 1 to 500,000 (the card may hold at most 500,000).
    amount: i64,
}

/// Tops up a card (top-up machines and staff).
#[utoipa::path(post, path = "/api/v1/cards/{card_id}/top-ups", tag = "cards", security(("bearer" = [])), params(("card_id" = i64, Path)), request_body = TopUpRequest,
    responses((status = 200, body = Object), (status = 422, description = "refused, with the reason", body = Object), (status = 400, body = ErrorBody)))]
pub async fn top_up(
    State(state): State<AppState>,
    Path(card_id): Path<CardId>,
    ApiJson(req): ApiJson<TopUpRequest>,
) -> Result<Response, ApiError> {
    check_op_id(&req.op_id)?;
    if !(1..=cityos_card::book::MAX_BALANCE).contains(&req.amount) {
        return Err(ApiError::invalid(
            "amount",
            "amount must be 1 to 500,000 won",
        ));
    }
    let answer = desk(&state)?
        .submit(
            &req.op_id,
            Request::TopUp {
                card_id,
                amount: req.amount,
            },
        )
        .await?;
    Ok(answer_response(answer))
}

/// Reporting a card lost.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BlockRequest {
    op_id: String,
    /// The card that receives the balance.
    replacement: CardId,
}

/// Blocks a lost registered card and moves its balance to another card.
#[utoipa::path(post, path = "/api/v1/cards/{card_id}/block", tag = "cards", security(("bearer" = [])), params(("card_id" = i64, Path)), request_body = BlockRequest,
    responses((status = 200, body = Object), (status = 422, body = Object), (status = 404, body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(card_id): Path<CardId>,
    ApiJson(req): ApiJson<BlockRequest>,
) -> Result<Response, ApiError> {
    check_op_id(&req.op_id)?;
    may_manage(&state, &principal, card_id)?;
    may_manage(&state, &principal, req.replacement)?;
    let answer = desk(&state)?
        .submit(
            &req.op_id,
            Request::Block {
                card_id,
                replacement: req.replacement,
            },
        )
        .await?;
    Ok(answer_response(answer))
}

/// Closing a card.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundRequest {
    op_id: String,
}

/// Pays a card's balance back and closes it (staff).
#[utoipa::path(post, path = "/api/v1/cards/{card_id}/refund", tag = "cards", security(("bearer" = [])), params(("card_id" = i64, Path)), request_body = RefundRequest,
    responses((status = 200, body = Object), (status = 422, body = Object)))]
pub async fn refund(
    State(state): State<AppState>,
    Path(card_id): Path<CardId>,
    ApiJson(req): ApiJson<RefundRequest>,
) -> Result<Response, ApiError> {
    check_op_id(&req.op_id)?;
    let answer = desk(&state)?
        .submit(&req.op_id, Request::Refund { card_id })
        .await?;
    Ok(answer_response(answer))
}

/// A validator's tap.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TapRequest {
    card_id: CardId,
    validator_id: String,
    /// The validator's own transaction counter; a repeat is answered as before, never charged twice.
    counter: i64,
    /// `in` or `out`.
    #[schema(value_type = String)]
    direction: TapKind,
    stop_id: String,
    route_id: Option<String>,
    /// `subway`, `trunk`, `branch`, `circular`, `village`, `wide_area` or `night`.
    #[schema(value_type = String)]
    mode: Mode,
    vehicle_id: Option<String>,
    /// Local time of the city, e.g. `2026-03-02T08:15:00`.
    #[schema(value_type = String)]
    at: jiff::civil::DateTime,
}

/// One tap or a batch (validators that were offline upload late and out of order).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TapBody {
    /// One tap.
    One(TapRequest),
    /// Several taps.
    Many(Vec<TapRequest>),
}

/// Checks taps and turns them into desk requests, keyed by validator and
/// counter; also says whether the body was a single tap. Shared by HTTP and MQTT.
pub fn tap_requests(body: TapBody) -> Result<(Vec<(String, Request)>, bool), ApiError> {
    let (taps, single) = match body {
        TapBody::One(t) => (vec![t], true),
        TapBody::Many(ts) => (ts, false),
    };
    if taps.len() > MAX_TAPS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_TAPS_PER_REQUEST} taps per request"
        )));
    }
    for t in &taps {
        if t.validator_id.is_empty() || t.validator_id.len() > 64 {
            return Err(ApiError::invalid(
                "validator_id",
                "validator_id must be 1 to 64 characters",
            ));
        }
        if t.stop_id.is_empty() {
            return Err(ApiError::invalid("stop_id", "stop_id is required"));
        }
    }
    let requests = taps
        .into_iter()
        .map(|t| {
            let op_id = format!("tap:{}:{}", t.validator_id, t.counter);
            let request = Request::Tap {
                card_id: t.card_id,
                validator_id: t.validator_id,
                counter: t.counter,
                direction: t.direction,
                stop_id: t.stop_id,
                route_id: t.route_id,
                mode: t.mode,
                vehicle_id: t.vehicle_id,
                at: t.at,
            };
            (op_id, request)
        })
        .collect();
    Ok((requests, single))
}

/// Records taps and answers each at once: accepted with the amount and balance, or refused with why.
/// Every answer is durable before it is sent.
#[utoipa::path(post, path = "/api/v1/taps", tag = "cards", security(("bearer" = [])), request_body = TapBody,
    responses((status = 200, description = "one answer per tap, in order", body = Object), (status = 400, body = ErrorBody)))]
pub async fn taps(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TapBody>,
) -> Result<Response, ApiError> {
    let (requests, single) = tap_requests(body)?;
    // In the order sent: a validator's stored taps are one card's journey.
    let answers: Vec<Answer> = desk(&state)?
        .submit_many(requests)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    if single {
        return Ok(Json(answers.into_iter().next()).into_response());
    }
    Ok(Json(answers).into_response())
}

/// A fare question: a rider's category and taps.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuoteRequest {
    #[schema(value_type = String)]
    category: Category,
    #[schema(value_type = Vec<Object>)]
    taps: Vec<Tap>,
}

/// What any journey costs under the fare rules in force, with the rule behind each won.
#[utoipa::path(post, path = "/api/v1/fares/quote", tag = "cards", request_body = QuoteRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn quote(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<QuoteRequest>,
) -> Result<Response, ApiError> {
    if req.taps.len() > 100 {
        return Err(ApiError::invalid("taps", "at most 100 taps per quote"));
    }
    let rules = desk(&state)?.rules();
    let network = state
        .network
        .get()
        .ok_or_else(|| ApiError::unavailable("no transit network is imported yet"))?;
    let view = cityos_card::TransitView(network.network.clone());
    let quote = cityos_fare::quote(&rules, req.category, &req.taps, &view)
        .map_err(|e| ApiError::invalid("taps", e.to_string()))?;
    Ok(Json(quote).into_response())
}

/// Ridership totals for charts and the map layer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RidershipSummary {
    /// Boardings and alightings per hour of day, 0–23.
    #[schema(value_type = Vec<Object>)]
    by_hour: Vec<cityos_card::ridership::Counts>,
    /// Per stop, busiest first, with positions for the map.
    stops: Vec<StopVolume>,
    /// Busiest origin–destination pairs.
    #[schema(value_type = Vec<Object>)]
    origin_destination: Vec<(String, String, u64)>,
    /// Transfers between routes, most first.
    #[schema(value_type = Vec<Object>)]
    transfers: Vec<(String, String, u64)>,
}

/// Volume at a stop.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopVolume {
    stop_id: String,
    name: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    boardings: u64,
    alightings: u64,
}

/// Which day's ridership.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RidershipQuery {
    /// Service date `YYYY-MM-DD`, or `all` [default: today in the network's time zone for the summary, all for files].
    date: Option<String>,
}

fn ridership_date(
    state: &AppState,
    text: Option<&str>,
    default_today: bool,
) -> Result<Option<jiff::civil::Date>, ApiError> {
    match text {
        Some("all") => Ok(None),
        Some(d) => d.parse().map(Some).map_err(|_| {
            ApiError::invalid(
                "date",
                format!("'{d}' is not a date like 2026-03-02 or 'all'"),
            )
        }),
        None if default_today => {
            let tz = state
                .network
                .get()
                .map_or(jiff::tz::TimeZone::UTC, |s| s.network.timezone().clone());
            Ok(Some(jiff::Timestamp::now().to_zoned(tz).date()))
        }
        None => Ok(None),
    }
}

/// Boardings and alightings by hour and stop, origin–destination pairs and transfer flows, for one day.
#[utoipa::path(get, path = "/api/v1/ridership", tag = "cards", params(RidershipQuery),
    responses((status = 200, body = RidershipSummary), (status = 400, body = ErrorBody)))]
pub async fn ridership(
    State(state): State<AppState>,
    crate::error::ApiQuery(q): crate::error::ApiQuery<RidershipQuery>,
) -> Result<Json<RidershipSummary>, ApiError> {
    let date = ridership_date(&state, q.date.as_deref(), true)?;
    let r = desk(&state)?.ridership(date);
    let network = state.network.get();
    let place = |id: &str| {
        network.as_ref().and_then(|n| {
            let s = n.network.data().stops.ids.get(id)? as usize;
            let stops = &n.network.data().stops;
            Some((stops.names[s].clone(), stops.lat[s], stops.lon[s]))
        })
    };
    let mut stops: Vec<StopVolume> = r
        .by_stop()
        .into_iter()
        .map(|(id, c)| {
            let p = place(id);
            StopVolume {
                stop_id: id.to_owned(),
                name: p.as_ref().map(|p| p.0.clone()),
                lat: p.as_ref().map(|p| p.1).filter(|v| v.is_finite()),
                lon: p.as_ref().map(|p| p.2).filter(|v| v.is_finite()),
                boardings: c.boardings,
                alightings: c.alightings,
            }
        })
        .collect();
    stops.sort_by(|a, b| {
        (b.boardings + b.alightings)
            .cmp(&(a.boardings + a.alightings))
            .then(a.stop_id.cmp(&b.stop_id))
    });
    let top = |m: &std::collections::BTreeMap<(String, String), u64>| {
        let mut v: Vec<(String, String, u64)> = m
            .iter()
            .map(|((a, b), n)| (a.clone(), b.clone(), *n))
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        v.truncate(100);
        v
    };
    Ok(Json(RidershipSummary {
        by_hour: r.by_hour().to_vec(),
        stops,
        origin_destination: top(&r.origin_destination),
        transfers: top(&r.transfers),
    }))
}

/// Ridership as files: `stop_route_hour.csv`, `origin_destination.csv`,
/// `transfers.csv`, and GTFS-ride's `ridership.txt` and `ride_feed_info.txt`.
#[utoipa::path(get, path = "/api/v1/ridership/{file}", tag = "cards", params(("file" = String, Path), RidershipQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
pub async fn ridership_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    crate::error::ApiQuery(q): crate::error::ApiQuery<RidershipQuery>,
) -> Result<Response, ApiError> {
    let date = ridership_date(&state, q.date.as_deref(), false)?;
    let r = desk(&state)?.ridership(date);
    let body = match file.as_str() {
        "stop_route_hour.csv" => r.to_csv(),
        "origin_destination.csv" => r.origin_destination_csv(),
        "transfers.csv" => r.transfers_csv(),
        "ridership.txt" => r.gtfs_ride_ridership(),
        "ride_feed_info.txt" => r.gtfs_ride_feed_info(),
        other => {
            return Err(ApiError::not_found(format!(
                "no ridership file '{other}' (stop_route_hour.csv, origin_destination.csv, transfers.csv, ridership.txt, ride_feed_info.txt)"
            )));
        }
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    Ok((
        [
            ("content-type", "text/csv; charset=utf-8".to_owned()),
            ("content-disposition", disposition),
        ],
        body,
    )
        .into_response())
}

/// Checks the ledger: sums to zero, every account equals the log, no card below its limit.
#[utoipa::path(get, path = "/api/v1/admin/fares/audit", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = desk(&state)?.audit().await?;
    let status = if report.holds() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok((status, Json(report)).into_response())
}
