//! The complaint desk's own API, for the citizen and staff pages: filing
//! with a session, tracking, the staff's queue and work, photos,
//! notifications, hotspots, charts and the ranking.

use axum::Extension;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cityos_accounts::{Principal, Role};
use cityos_civic::desk::{Actor, Update};
use cityos_civic::form::RawForm;
use cityos_civic::{CivicError, Desk, Status};
use cityos_store::complaints::{ComplaintRow, EventRow, ListFilter};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::ClientAddr;
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody};

/// Largest photo upload body (the photo itself may be 5 MiB).
pub const MAX_PHOTO_UPLOAD: usize = 6 << 20;

impl From<CivicError> for ApiError {
    fn from(e: CivicError) -> ApiError {
        match e {
            CivicError::Invalid(f) => ApiError::invalid(&f.field, f.to_string()),
            CivicError::NotFound(id) => ApiError::not_found(format!("no complaint {id}")),
            CivicError::Forbidden(m) => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: m,
                field: None,
            },
            CivicError::Conflict(m) => ApiError::conflict(m),
            e @ CivicError::RateLimited { .. } => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                message: e.to_string(),
                field: None,
            },
            CivicError::Store(s) => s.into(),
            CivicError::Unavailable => ApiError::unavailable(e.to_string()),
        }
    }
}

fn desk(state: &AppState) -> Result<&Desk, ApiError> {
    state
        .civic
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("the complaint desk is not running"))
}

fn is_staff(p: &Principal) -> bool {
    matches!(
        p.role(),
        Some(Role::DepartmentStaff | Role::ComplaintsOfficer | Role::Admin)
    )
}

fn actor(p: &Principal) -> Actor {
    match p {
        Principal::User { email, role, .. } if is_staff(p) || *role == Role::Admin => {
            Actor::Staff(email.clone())
        }
        Principal::User { id, .. } => Actor::Citizen(*id),
        Principal::ApiKey { name, .. } => Actor::Staff(format!("key:{name}")),
        Principal::Anonymous => Actor::System,
    }
}

/// Who is looking at a complaint, and so what they may see of it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Viewer {
    /// Staff: everything but an anonymous reporter's identity.
    Staff,
    /// One of its reporters: their own data and the public history.
    Reporter,
    /// Anyone else: no personal data, public history only.
    Public,
}

async fn viewer(desk: &Desk, p: &Principal, c: &ComplaintRow) -> Result<Viewer, ApiError> {
    if is_staff(p) {
        return Ok(Viewer::Staff);
    }
    if let Principal::User { id, .. } = p
        && desk.is_reporter(c.id, *id).await?
    {
        return Ok(Viewer::Reporter);
    }
    if !c.visible {
        return Err(ApiError::not_found(format!("no complaint {}", c.id)));
    }
    Ok(Viewer::Public)
}

/// A complaint as the viewer may see it.
fn view(desk: &Desk, c: &ComplaintRow, viewer: Viewer) -> Value {
    let catalog = desk.catalog();
    let tz = &catalog.timezone;
    let iso = |t: i64| cityos_civic::model::iso(t, tz);
    let mut v = json!({
        "id": c.id,
        "service_code": c.service_code,
        "service_name": catalog.service(&c.service_code).map(|s| s.name),
        "service_name_ko": catalog.service(&c.service_code).map(|s| s.name_ko),
        "status": c.status,
        "open": c.open,
        "description": c.description,
        "attributes": serde_json::from_str::<Value>(&c.attributes).unwrap_or(Value::Null),
        "lat": c.lat_e6.map(|x| x as f64 / 1e6),
        "long": c.lon_e6.map(|x| x as f64 / 1e6),
        "address": c.address,
        "department": c.department,
        "district": c.district,
        "requested_at": iso(c.requested_at),
        "updated_at": iso(c.updated_at),
        "expected_at": iso(c.expected_at),
        "resolved_at": c.resolved_at.map(iso),
        "overdue": c.open && c.expected_at < cityos_store::now_unix(),
        "status_notes": c.status_notes,
        "merged_into": c.merged_into,
        "media_url": c.media_url,
    });
    if viewer == Viewer::Staff {
        v["assignee"] = json!(c.assignee);
        v["moderation"] = json!(c.moderation);
        v["reporter"] = if c.anonymous {
            json!("anonymous")
        } else {
            json!({"name": c.reporter_name, "email": c.reporter_email, "phone": c.reporter_phone})
        };
    }
    if viewer == Viewer::Reporter {
        v["anonymous"] = json!(c.anonymous);
    }
    v
}

fn event_view(e: &EventRow, tz: &jiff::tz::TimeZone, viewer: Viewer) -> Value {
    json!({
        "at": cityos_civic::model::iso(e.at, tz),
        "kind": e.kind,
        "status": e.status,
        "text": e.text,
        "public": e.public,
        "author": if viewer == Viewer::Staff { e.author.clone() } else { None },
    })
}

/// A complaint filed from the web page.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileRequest {
    /// A service code from `/open311/v2/services.json`.
    service_code: Option<String>,
    /// Latitude (WGS84), inside the city.
    lat: Option<f64>,
    /// Longitude (WGS84), inside the city.
    long: Option<f64>,
    /// Address, when there is no map pin.
    address_string: Option<String>,
    /// What is wrong, up to 4,000 characters.
    description: Option<String>,
    /// Answers to the service's attributes: a string, a number, or a list for multivaluelists.
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: serde_json::Map<String, Value>,
    /// Hide who you are from staff too.
    #[serde(default)]
    anonymous: bool,
    /// Phone, for staff to call back.
    phone: Option<String>,
}

/// The same fields as the Open311 form, so one validation serves both.
fn as_form(r: &FileRequest) -> RawForm {
    let mut form = RawForm::default();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            form.fields.insert(k.to_owned(), v);
        }
    };
    put("service_code", r.service_code.clone());
    put("lat", r.lat.map(|x| x.to_string()));
    put("long", r.long.map(|x| x.to_string()));
    put("address_string", r.address_string.clone());
    put("description", r.description.clone());
    put("phone", r.phone.clone());
    put("anonymous", Some(r.anonymous.to_string()));
    for (code, value) in &r.attributes {
        let values = match value {
            Value::Array(items) => items.iter().map(scalar).collect(),
            other => vec![scalar(other)],
        };
        form.attributes.insert(code.clone(), values);
    }
    form
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Files a complaint as the signed-in user; the answer lists similar open complaints nearby.
#[utoipa::path(post, path = "/api/v1/complaints", tag = "complaints", security(("bearer" = [])), request_body = FileRequest,
    responses((status = 201, description = "filed", body = Object), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn file(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ClientAddr(address): ClientAddr,
    ApiJson(req): ApiJson<FileRequest>,
) -> Result<Response, ApiError> {
    let desk = desk(&state)?;
    let mut filing =
        cityos_civic::form::validate(&as_form(&req), desk.catalog()).map_err(CivicError::from)?;
    let account = match &principal {
        Principal::User { id, email, .. } => {
            filing.reporter.user_id = Some(*id);
            filing.reporter.email = Some(email.clone());
            if let Ok(Some(user)) = state.accounts.user(*id).await {
                filing.reporter.name = Some(user.display_name);
            }
            format!("user:{id}")
        }
        Principal::ApiKey { id, .. } => format!("key:{id}"),
        Principal::Anonymous => return Err(ApiError::unauthorized()),
    };
    let filed = desk
        .file(filing, Some(&account), address.as_deref())
        .await?;
    let viewer = Viewer::Reporter;
    let body = json!({
        "complaint": view(desk, &filed.complaint, viewer),
        "nearby": filed.nearby.iter().map(|c| view(desk, c, Viewer::Public)).collect::<Vec<_>>(),
        "held_for_moderation": filed.held,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Filters of the staff queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Only this service.
    service_code: Option<String>,
    /// Only this department.
    department: Option<String>,
    /// `open` (default), `closed` or `all`.
    state: Option<String>,
    /// Only complaints past their deadline.
    #[serde(default)]
    overdue: bool,
    /// Most complaints returned, 1–500 (default 100).
    limit: Option<i64>,
    /// Skip this many.
    offset: Option<i64>,
}

fn page(limit: Option<i64>, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1 to {max}"),
        ));
    }
    Ok(limit)
}

/// The staff's queue: complaints newest first, by department, service and state.
#[utoipa::path(get, path = "/api/v1/complaints", tag = "complaints", security(("bearer" = [])), params(QueueQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let limit = page(q.limit, 500)?;
    let offset = q.offset.unwrap_or(0).max(0);
    if let Some(s) = &q.service_code
        && desk.catalog().service(s).is_none()
    {
        return Err(ApiError::invalid(
            "service_code",
            format!("'{s}' is not a service"),
        ));
    }
    if let Some(d) = &q.department
        && desk.catalog().department(d).is_none()
    {
        return Err(ApiError::invalid(
            "department",
            format!("'{d}' is not a department"),
        ));
    }
    let open = match q.state.as_deref().unwrap_or("open") {
        "open" => Some(true),
        "closed" => Some(false),
        "all" => None,
        other => {
            return Err(ApiError::invalid(
                "state",
                format!("'{other}' is not open, closed or all"),
            ));
        }
    };
    let now = cityos_store::now_unix();
    let rows = if q.overdue {
        let mut rows = desk.store().overdue_complaints(now, limit + offset).await?;
        rows.retain(|c| {
            q.department.as_ref().is_none_or(|d| *d == c.department)
                && q.service_code.as_ref().is_none_or(|s| *s == c.service_code)
        });
        rows.into_iter().skip(offset as usize).collect()
    } else {
        desk.store()
            .list_complaints(&ListFilter {
                service_code: q.service_code.clone(),
                department: q.department.clone(),
                open,
                from: 0,
                to: i64::MAX,
                limit,
                offset,
            })
            .await?
    };
    Ok(Json(json!({
        "complaints": rows.iter().map(|c| view(desk, c, Viewer::Staff)).collect::<Vec<_>>(),
    })))
}

/// The signed-in user's complaints, newest first.
#[utoipa::path(get, path = "/api/v1/complaints/mine", tag = "complaints", security(("bearer" = [])),
    responses((status = 200, body = Object)))]
pub async fn mine(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let Principal::User { id, .. } = principal else {
        return Ok(Json(json!({"complaints": []})));
    };
    let rows = desk.store().complaints_reported_by(id, 200).await?;
    Ok(Json(json!({
        "complaints": rows.iter().map(|c| view(desk, c, Viewer::Reporter)).collect::<Vec<_>>(),
    })))
}

/// One complaint with its history: staff see internal notes and the reporter
/// (unless anonymous); others see public updates and no personal data.
#[utoipa::path(get, path = "/api/v1/complaints/{complaint_id}", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let c = desk.get(id).await?;
    let viewer = viewer(desk, &principal, &c).await?;
    let tz = &desk.catalog().timezone;
    let events: Vec<Value> = desk
        .store()
        .complaint_events(id)
        .await?
        .iter()
        .filter(|e| e.public || viewer == Viewer::Staff)
        .map(|e| event_view(e, tz, viewer))
        .collect();
    let photos: Vec<Value> = desk
        .store()
        .complaint_photos(id)
        .await?
        .iter()
        .map(|p| {
            json!({
                "url": format!("/api/v1/complaints/{id}/photos/{}", p.id),
                "thumbnail_url": format!("/api/v1/complaints/{id}/photos/{}?size=thumb", p.id),
            })
        })
        .collect();
    let mut body = view(desk, &c, viewer);
    body["events"] = json!(events);
    body["photos"] = json!(photos);
    if viewer == Viewer::Staff {
        body["reporters"] = json!(desk.store().complaint_reporters(id).await?.len());
        if let (Some(la), Some(lo)) = (c.lat_e6, c.lon_e6) {
            let nearby = desk
                .nearby(
                    &c.service_code,
                    (la as f64 / 1e6, lo as f64 / 1e6),
                    cityos_store::now_unix(),
                )
                .await?;
            body["possible_duplicates"] = json!(
                nearby
                    .iter()
                    .map(|d| d.id)
                    .filter(|d| *d != id)
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(Json(body))
}

/// A staff update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRequest {
    /// `acknowledged`, `in_progress`, `resolved` or `closed` (forward only).
    status: Option<String>,
    /// The update or note.
    #[serde(default)]
    text: String,
    /// True: a public update, and every reporter is notified. False: an internal note.
    public: bool,
}

/// Moves a complaint forward and/or adds a public update or an internal note.
#[utoipa::path(post, path = "/api/v1/complaints/{complaint_id}/updates", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), request_body = UpdateRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let status = req
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    format!("'{s}' is not received, acknowledged, in_progress, resolved or closed"),
                )
            })
        })
        .transpose()?;
    let c = desk
        .update(
            id,
            &actor(&principal),
            Update {
                status,
                text: req.text,
                public: req.public,
            },
        )
        .await?;
    Ok(Json(view(desk, &c, Viewer::Staff)))
}

/// An assignment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignRequest {
    /// A department code.
    department: Option<String>,
    /// A team or person.
    assignee: Option<String>,
}

/// Assigns a complaint to a department and/or a team or person.
#[utoipa::path(post, path = "/api/v1/complaints/{complaint_id}/assign", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), request_body = AssignRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    if req.department.is_none() && req.assignee.is_none() {
        return Err(ApiError::invalid(
            "department",
            "give a department, an assignee or both",
        ));
    }
    let c = desk
        .assign(
            id,
            &actor(&principal),
            req.department.as_deref(),
            req.assignee.as_deref(),
        )
        .await?;
    Ok(Json(view(desk, &c, Viewer::Staff)))
}

/// A merge.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MergeRequest {
    /// The complaint this one duplicates.
    into: Option<i64>,
}

/// Merges this complaint into the one it duplicates; its reporters follow that one.
#[utoipa::path(post, path = "/api/v1/complaints/{complaint_id}/merge", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), request_body = MergeRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn merge(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<MergeRequest>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let into = req
        .into
        .ok_or_else(|| ApiError::invalid("into", "into is required"))?;
    let c = desk.merge(id, into, &actor(&principal)).await?;
    Ok(Json(view(desk, &c, Viewer::Staff)))
}

/// A reopen.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReopenRequest {
    /// Why it is not fixed.
    #[serde(default)]
    reason: String,
}

/// Reopens a resolved or closed complaint: its reporters and staff may.
#[utoipa::path(post, path = "/api/v1/complaints/{complaint_id}/reopen", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), request_body = ReopenRequest,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reopen(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReopenRequest>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let c = desk.get(id).await?;
    let viewer = viewer(desk, &principal, &c).await?;
    if viewer == Viewer::Public {
        return Err(ApiError::not_found(format!("no complaint {id} of yours")));
    }
    if req.reason.chars().count() > 4000 {
        return Err(ApiError::invalid(
            "reason",
            "must be at most 4000 characters",
        ));
    }
    let c = desk.reopen(id, &actor(&principal), &req.reason).await?;
    Ok(Json(view(desk, &c, viewer)))
}

/// The moderation queue: complaints held for their text, oldest first.
#[utoipa::path(get, path = "/api/v1/complaints/moderation", tag = "complaints", security(("bearer" = [])),
    responses((status = 200, body = Object)))]
pub async fn moderation_queue(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let rows = desk.store().moderation_queue(200).await?;
    Ok(Json(json!({
        "complaints": rows.iter().map(|c| view(desk, c, Viewer::Staff)).collect::<Vec<_>>(),
    })))
}

/// A moderator's decision.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ModerationRequest {
    /// True: publish it. False: close it and keep it hidden.
    approve: bool,
}

/// Publishes or rejects a held complaint.
#[utoipa::path(post, path = "/api/v1/complaints/{complaint_id}/moderation", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), request_body = ModerationRequest,
    responses((status = 200, body = Object), (status = 409, body = ErrorBody)))]
pub async fn moderate(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ModerationRequest>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let c = desk.moderate(id, &actor(&principal), req.approve).await?;
    Ok(Json(view(desk, &c, Viewer::Staff)))
}

/// Adds a photo: a multipart form with one file field `photo` (JPEG or PNG, at most 5 MiB).
#[utoipa::path(post, path = "/api/v1/complaints/{complaint_id}/photos", tag = "complaints", security(("bearer" = [])),
    params(("complaint_id" = i64, Path)), request_body(content = String, content_type = "multipart/form-data"),
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn add_photo(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let desk = desk(&state)?;
    let c = desk.get(id).await?;
    if viewer(desk, &principal, &c).await? == Viewer::Public {
        return Err(ApiError::not_found(format!("no complaint {id} of yours")));
    }
    let mut bytes = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| upload_error(e.status(), e.body_text()))?
    {
        if field.name() == Some("photo") {
            bytes = Some(
                field
                    .bytes()
                    .await
                    .map_err(|e| upload_error(e.status(), e.body_text()))?,
            );
        }
    }
    let bytes = bytes
        .ok_or_else(|| ApiError::invalid("photo", "the form has no file field named photo"))?;
    let photo_id = desk.add_photo(id, bytes.to_vec()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": photo_id, "url": format!("/api/v1/complaints/{id}/photos/{photo_id}")})),
    )
        .into_response())
}

fn upload_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError {
            status,
            code: "payload_too_large",
            message: format!(
                "photo: at most {} bytes are accepted",
                cityos_civic::photos::MAX_PHOTO_BYTES
            ),
            field: Some("photo".into()),
        }
    } else {
        ApiError::invalid("photo", text)
    }
}

/// Which size of a photo.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhotoQuery {
    /// `thumb` for the thumbnail; the original otherwise.
    size: Option<String>,
}

/// A complaint's photo (or its thumbnail), when the complaint is public.
#[utoipa::path(get, path = "/api/v1/complaints/{complaint_id}/photos/{photo_id}", tag = "complaints",
    params(("complaint_id" = i64, Path), ("photo_id" = i64, Path), PhotoQuery),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn photo(
    State(state): State<AppState>,
    Path((id, photo_id)): Path<(i64, i64)>,
    ApiQuery(q): ApiQuery<PhotoQuery>,
) -> Result<Response, ApiError> {
    let desk = desk(&state)?;
    let not_found = || ApiError::not_found(format!("no photo {photo_id} of complaint {id}"));
    let c = desk.get(id).await?;
    if !c.visible {
        return Err(not_found());
    }
    let p = desk
        .store()
        .complaint_photos(id)
        .await?
        .into_iter()
        .find(|p| p.id == photo_id)
        .ok_or_else(not_found)?;
    let (path, content_type) = match q.size.as_deref() {
        Some("thumb") => (p.thumb_path, "image/png".to_owned()),
        None | Some("original") => (p.path, p.content_type),
        Some(other) => {
            return Err(ApiError::invalid(
                "size",
                format!("'{other}' is not thumb or original"),
            ));
        }
    };
    let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
    Ok(([("content-type", content_type)], bytes).into_response())
}

/// A place to check for duplicates before filing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyQuery {
    /// Service code.
    service_code: String,
    /// Latitude.
    lat: f64,
    /// Longitude.
    long: f64,
}

/// Open complaints of the same service within 50 m: a reporter sees them before filing.
#[utoipa::path(get, path = "/api/v1/complaints/nearby", tag = "complaints", params(NearbyQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn nearby(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<NearbyQuery>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    if desk.catalog().service(&q.service_code).is_none() {
        return Err(ApiError::invalid(
            "service_code",
            format!("'{}' is not a service", q.service_code),
        ));
    }
    if !desk.catalog().covers((q.lat, q.long)) {
        return Err(ApiError::invalid("lat", "the point is outside the city"));
    }
    let rows = desk
        .nearby(&q.service_code, (q.lat, q.long), cityos_store::now_unix())
        .await?;
    Ok(Json(json!({
        "complaints": rows.iter().map(|c| view(desk, c, Viewer::Public)).collect::<Vec<_>>(),
    })))
}

/// A time window in days.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// Days back from now, 1–365 (default 30).
    days: Option<i64>,
    /// Hexagon resolution for hotspots, 5–10 (default 8).
    resolution: Option<u8>,
    /// Open complaints only (hotspots; default true).
    open: Option<bool>,
    /// `department` (default) or `district` (ranking).
    by: Option<String>,
}

fn since(days: Option<i64>) -> Result<i64, ApiError> {
    let days = days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(ApiError::invalid("days", "days must be 1 to 365"));
    }
    Ok(cityos_store::now_unix() - days * 86_400)
}

/// Hotspots: complaints counted on an H3 hexagon grid, as GeoJSON.
#[utoipa::path(get, path = "/api/v1/complaints/hotspots.geojson", tag = "complaints", params(WindowQuery),
    responses((status = 200, content_type = "application/geo+json", body = Object), (status = 400, body = ErrorBody)))]
pub async fn hotspots(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    let desk = desk(&state)?;
    let resolution = q.resolution.unwrap_or(8);
    if !(5..=10).contains(&resolution) {
        return Err(ApiError::invalid(
            "resolution",
            "resolution must be 5 to 10",
        ));
    }
    let cells = desk
        .store()
        .complaint_cells(since(q.days)?, q.open.unwrap_or(true))
        .await?;
    let body = cityos_civic::geo::hotspots(&cells, resolution);
    Ok(([("content-type", "application/geo+json")], body.to_string()).into_response())
}

/// Recent public complaints as GeoJSON points (service, status, open), for the map layers.
#[utoipa::path(get, path = "/api/v1/complaints/map.geojson", tag = "complaints", params(WindowQuery),
    responses((status = 200, content_type = "application/geo+json", body = Object)))]
pub async fn map(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    let desk = desk(&state)?;
    let rows = desk
        .store()
        .list_complaints(&ListFilter {
            service_code: None,
            department: None,
            open: None,
            from: since(q.days)?,
            to: i64::MAX,
            limit: 5000,
            offset: 0,
        })
        .await?;
    let catalog = desk.catalog();
    // Held for moderation means not public yet, not even as a point.
    let features: Vec<Value> = rows
        .iter()
        .filter(|c| c.merged_into.is_none() && c.visible)
        .filter_map(|c| {
            Some(json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [c.lon_e6? as f64 / 1e6, c.lat_e6? as f64 / 1e6]},
                "properties": {
                    "id": c.id, "service_code": c.service_code, "status": c.status, "open": c.open,
                    "service_name": catalog.service(&c.service_code).map(|s| s.name),
                    "service_name_ko": catalog.service(&c.service_code).map(|s| s.name_ko),
                },
            }))
        })
        .collect();
    let body = json!({"type": "FeatureCollection", "features": features});
    Ok(([("content-type", "application/geo+json")], body.to_string()).into_response())
}

/// Charts: filings per day by service, still open by day filed, and hours to resolve
/// by service and by district.
#[utoipa::path(get, path = "/api/v1/complaints/charts", tag = "complaints", params(WindowQuery),
    responses((status = 200, body = Object)))]
pub async fn charts(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<cityos_civic::stats::Charts>, ApiError> {
    let desk = desk(&state)?;
    let offset = jiff::Timestamp::now()
        .to_zoned(desk.catalog().timezone.clone())
        .offset()
        .seconds();
    let daily = desk
        .store()
        .daily_counts(since(q.days)?, i64::from(offset))
        .await?;
    Ok(Json(cityos_civic::stats::charts(&daily)))
}

/// Departments (or districts) ranked by the share of complaints handled by their deadline.
#[utoipa::path(get, path = "/api/v1/complaints/ranking", tag = "complaints", params(WindowQuery),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn ranking(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let by_district = match q.by.as_deref().unwrap_or("department") {
        "department" => false,
        "district" => true,
        other => {
            return Err(ApiError::invalid(
                "by",
                format!("'{other}' is not department or district"),
            ));
        }
    };
    let counts = desk
        .store()
        .handling_counts(by_district, since(q.days)?, cityos_store::now_unix())
        .await?;
    let catalog = desk.catalog();
    let ranked = cityos_civic::stats::rank(counts, |code| {
        let names = if by_district {
            catalog
                .districts
                .iter()
                .find(|d| d.code == code)
                .map(|d| (d.name, d.name_ko))
        } else {
            catalog.department(code).map(|d| (d.name, d.name_ko))
        };
        names.map_or_else(
            || ("outside every district".to_owned(), "구역 밖".to_owned()),
            |(n, k)| (n.to_owned(), k.to_owned()),
        )
    });
    Ok(Json(
        json!({"by": if by_district { "district" } else { "department" }, "ranking": ranked}),
    ))
}

/// Open complaints past their deadline (breach alerts), oldest deadline first.
#[utoipa::path(get, path = "/api/v1/complaints/alerts", tag = "complaints", security(("bearer" = [])),
    responses((status = 200, body = Object)))]
pub async fn alerts(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let rows = desk
        .store()
        .overdue_complaints(cityos_store::now_unix(), 200)
        .await?;
    Ok(Json(json!({
        "complaints": rows.iter().map(|c| view(desk, c, Viewer::Staff)).collect::<Vec<_>>(),
    })))
}

/// The services (with Korean names and attributes), departments and districts (as GeoJSON).
#[utoipa::path(get, path = "/api/v1/complaints/catalog", tag = "complaints",
    responses((status = 200, body = Object)))]
pub async fn catalog(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let c = desk(&state)?.catalog();
    let districts: Vec<Value> = c
        .districts
        .iter()
        .map(|d| {
            let mut ring: Vec<[f64; 2]> = d.polygon.iter().map(|p| [p.1, p.0]).collect();
            ring.extend(ring.first().copied());
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"code": d.code, "name": d.name, "name_ko": d.name_ko, "office": d.office},
            })
        })
        .collect();
    Ok(Json(json!({
        "jurisdiction": c.jurisdiction,
        "services": c.services,
        "departments": c.departments,
        "districts": {"type": "FeatureCollection", "features": districts},
        "bounds": c.bounds,
    })))
}

/// A notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    id: i64,
    complaint_id: i64,
    text: String,
    /// ISO-8601.
    at: String,
    read: bool,
}

/// The signed-in user's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "complaints", security(("bearer" = [])),
    responses((status = 200, body = Vec<NotificationDto>)))]
pub async fn notifications(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Vec<NotificationDto>>, ApiError> {
    let desk = desk(&state)?;
    let Principal::User { id, .. } = principal else {
        return Ok(Json(Vec::new()));
    };
    let tz = &desk.catalog().timezone;
    Ok(Json(
        desk.store()
            .notifications_of(id, 100)
            .await?
            .into_iter()
            .map(|n| NotificationDto {
                id: n.id,
                complaint_id: n.complaint_id,
                text: n.text,
                at: cityos_civic::model::iso(n.at, tz),
                read: n.read_at.is_some(),
            })
            .collect(),
    ))
}

/// Marks every notification of the signed-in user read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "complaints", security(("bearer" = [])),
    responses((status = 200, body = Object)))]
pub async fn read_notifications(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let desk = desk(&state)?;
    let marked = match principal {
        Principal::User { id, .. } => {
            desk.store()
                .mark_notifications_read(id, cityos_store::now_unix())
                .await?
        }
        _ => 0,
    };
    Ok(Json(json!({"marked_read": marked})))
}
