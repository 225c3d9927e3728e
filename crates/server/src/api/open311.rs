//! Open311 GeoReport v2: services, service definitions, filing requests
//! (form-urlencoded, with an `api_key`), tokens, listing and reading
//! requests, and service discovery, in XML or JSON by the path's extension.
//!
//! These routes answer errors in the standard's own shape, a list of
//! `{code, description}`, rather than the project's `{"error": …}`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cityos_accounts::Principal;
use cityos_civic::form::{self, FieldError};
use cityos_civic::open311::{self, Format, Node};
use cityos_civic::{CivicError, Desk};
use cityos_store::complaints::ListFilter;

use crate::AppState;
use crate::api::ClientAddr;

/// Most requests one listing returns.
pub const MAX_LISTED: i64 = 1000;
/// The window a listing covers when no dates are given, and the widest allowed.
pub const DEFAULT_DAYS: i64 = 90;

/// How long a rendered listing may be served again.
pub const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Rendered listings kept at most; past this the cache starts afresh.
const LISTINGS_KEPT: usize = 1024;

/// Rendered `requests` listings by query, each kept for at most [`LISTING_TTL`] and
/// only while the desk has committed nothing since it was rendered. Dashboards poll
/// the same few queries; this answers them without the database.
#[derive(Default)]
pub struct ListingCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Rendered>>,
}

/// A rendered listing: the desk's generation it was rendered at, when, and the body.
type Rendered = (u64, std::time::Instant, std::sync::Arc<String>);

impl ListingCache {
    fn get(&self, key: &str, generation: u64) -> Option<std::sync::Arc<String>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (g, at, body) = entries.get(key)?;
        (*g == generation && at.elapsed() < LISTING_TTL).then(|| body.clone())
    }

    fn put(&self, key: String, generation: u64, body: std::sync::Arc<String>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= LISTINGS_KEPT {
            entries.clear();
        }
        entries.insert(key, (generation, std::time::Instant::now(), body));
    }
}

/// An Open311 answer: a document or an error, in the request's format.
pub struct Answer {
    status: StatusCode,
    root: &'static str,
    body: Node,
    format: Format,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (
            self.status,
            [("content-type", self.format.content_type())],
            open311::render(self.root, &self.body, self.format),
        )
            .into_response()
    }
}

fn ok(root: &'static str, body: Node, format: Format) -> Answer {
    Answer {
        status: StatusCode::OK,
        root,
        body,
        format,
    }
}

fn error(status: StatusCode, description: &str, format: Format) -> Answer {
    Answer {
        status,
        root: "errors",
        body: open311::errors(status.as_u16(), description),
        format,
    }
}

fn civic_error(e: CivicError, format: Format) -> Answer {
    let status = match &e {
        CivicError::Invalid(_) => StatusCode::BAD_REQUEST,
        CivicError::NotFound(_) => StatusCode::NOT_FOUND,
        CivicError::Forbidden(_) => StatusCode::FORBIDDEN,
        CivicError::Conflict(_) => StatusCode::CONFLICT,
        CivicError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        CivicError::Store(_) | CivicError::Unavailable => {
            tracing::error!("open311: {e}");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is unavailable; try again",
                format,
            );
        }
    };
    error(status, &e.to_string(), format)
}

/// The format of `file` (`name.json` or `name.xml`), and its stem.
fn split(file: &str) -> Result<(&str, Format), Answer> {
    Format::split(file).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            &format!("{file}: resources end in .xml or .json"),
            Format::Xml,
        )
    })
}

fn desk(state: &AppState, format: Format) -> Result<&Desk, Answer> {
    state.civic.as_ref().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the complaint desk is not running",
            format,
        )
    })
}

/// `http://host` of this request, for links in answers.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"', '<']))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn check_jurisdiction(query: &form::RawForm, desk: &Desk, format: Format) -> Result<(), Answer> {
    match query.get("jurisdiction_id") {
        Some(j) if j != desk.catalog().jurisdiction => Err(error(
            StatusCode::NOT_FOUND,
            &format!(
                "jurisdiction_id: '{j}' is not served here; use {}",
                desk.catalog().jurisdiction
            ),
            format,
        )),
        _ => Ok(()),
    }
}

fn query_form(raw: Option<String>, format: Format) -> Result<form::RawForm, Answer> {
    form::decode(raw.unwrap_or_default().as_bytes())
        .map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string(), format))
}

/// What every GET needs: the file's stem and format, the desk, and the checked query.
fn prelude<'a>(
    state: &'a AppState,
    file: &'a str,
    raw: Option<String>,
) -> Result<(&'a str, Format, &'a Desk, form::RawForm), Answer> {
    let (stem, format) = split(file)?;
    let desk = desk(state, format)?;
    let query = query_form(raw, format)?;
    check_jurisdiction(&query, desk, format)?;
    Ok((stem, format, desk, query))
}

/// Service discovery: where the GeoReport v2 endpoint is and which formats it speaks.
#[utoipa::path(get, path = "/open311/{file}", tag = "open311",
    params(("file" = String, Path, description = "`discovery.json` or `discovery.xml`")),
    responses((status = 200, description = "the discovery document"), (status = 404, description = "Open311 errors")))]
pub async fn discovery(headers: HeaderMap, Path(file): Path<String>) -> Answer {
    let (stem, format) = match split(&file) {
        Ok(x) => x,
        Err(e) => return e,
    };
    if stem != "discovery" {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no resource {file}"),
            format,
        );
    }
    ok(
        "discovery",
        open311::discovery(&base_url(&headers), "2026-11-25T00:00:00+09:00"),
        format,
    )
}

/// `services.{fmt}` (the service list) or `requests.{fmt}` (requests filed in a window,
/// newest first, at most 1,000; `service_request_id` as a comma list overrides every other filter).
#[utoipa::path(get, path = "/open311/v2/{file}", tag = "open311",
    params(("file" = String, Path, description = "`services.json`, `services.xml`, `requests.json` or `requests.xml`"),
        ("jurisdiction_id" = Option<String>, Query), ("service_request_id" = Option<String>, Query, description = "comma list; overrides the rest"),
        ("service_code" = Option<String>, Query, description = "comma list"), ("start_date" = Option<String>, Query, description = "ISO-8601 with zone"),
        ("end_date" = Option<String>, Query, description = "ISO-8601 with zone"), ("status" = Option<String>, Query, description = "open, closed or open,closed")),
    responses((status = 200, description = "services or service_requests"), (status = 400, description = "Open311 errors"), (status = 404, description = "Open311 errors")))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Answer> {
    let key = format!(
        "{file} {} {}",
        base_url(&headers),
        raw.as_deref().unwrap_or("")
    );
    let (stem, format, desk, query) = prelude(&state, &file, raw)?;
    match stem {
        "services" => Ok(ok("services", open311::services(desk.catalog()), format).into_response()),
        "requests" => {
            // Read before listing: a commit during the query makes the entry stale at once.
            let generation = desk.generation();
            let body = match state.listings.get(&key, generation) {
                Some(body) => body,
                None => {
                    let rows = list_requests(desk, &query)
                        .await
                        .map_err(|e| civic_error(e, format))?;
                    let document = open311::requests(&rows, desk.catalog(), &base_url(&headers));
                    let body =
                        std::sync::Arc::new(open311::render("service_requests", &document, format));
                    state.listings.put(key, generation, body.clone());
                    body
                }
            };
            Ok((
                [("content-type", format.content_type())],
                body.as_str().to_owned(),
            )
                .into_response())
        }
        _ => Err(error(
            StatusCode::NOT_FOUND,
            &format!("no resource {file}"),
            format,
        )),
    }
}

async fn list_requests(
    desk: &Desk,
    q: &form::RawForm,
) -> Result<Vec<cityos_store::complaints::ComplaintRow>, CivicError> {
    if let Some(ids) = q.get("service_request_id") {
        let mut rows = Vec::new();
        for id in ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .take(MAX_LISTED as usize)
        {
            let id: i64 = id.parse().map_err(|_| {
                FieldError::new("service_request_id", format!("'{id}' is not a request id"))
            })?;
            if let Some(c) = desk.store().complaint(id).await?
                && c.visible
            {
                rows.push(c);
            }
        }
        return Ok(rows);
    }
    let time = |name: &str| -> Result<Option<i64>, CivicError> {
        q.get(name)
            .map(|t| {
                cityos_civic::model::parse_iso(t).ok_or_else(|| {
                    FieldError::new(
                        name,
                        format!("'{t}' is not an ISO-8601 date and time with a zone, e.g. 2010-01-01T00:00:00Z"),
                    )
                    .into()
                })
            })
            .transpose()
    };
    let now = cityos_store::now_unix();
    let (from, to) = match (time("start_date")?, time("end_date")?) {
        (Some(s), Some(e)) => (s, e + 1),
        (Some(s), None) => (s, s + DEFAULT_DAYS * 86_400),
        (None, Some(e)) => (e - DEFAULT_DAYS * 86_400, e + 1),
        (None, None) => (now - DEFAULT_DAYS * 86_400, now + 1),
    };
    if to <= from {
        return Err(FieldError::new("end_date", "must not be before start_date").into());
    }
    let open = match q.get("status") {
        None => None,
        Some(s) => {
            let (mut o, mut c) = (false, false);
            for part in s.split(',').map(str::trim) {
                match part {
                    "open" => o = true,
                    "closed" => c = true,
                    other => {
                        return Err(FieldError::new(
                            "status",
                            format!("'{other}' is not open or closed"),
                        )
                        .into());
                    }
                }
            }
            (o != c).then_some(o)
        }
    };
    let codes: Vec<&str> = q
        .get("service_code")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for code in &codes {
        if desk.catalog().service(code).is_none() {
            return Err(
                FieldError::new("service_code", format!("'{code}' is not a service")).into(),
            );
        }
    }
    let filter = |service_code: Option<&str>| ListFilter {
        service_code: service_code.map(str::to_owned),
        department: None,
        open,
        from,
        to,
        limit: MAX_LISTED,
        offset: 0,
    };
    let mut rows = if codes.is_empty() {
        desk.store().list_complaints(&filter(None)).await?
    } else {
        let mut all = Vec::new();
        for code in codes {
            all.extend(desk.store().list_complaints(&filter(Some(code))).await?);
        }
        all.sort_by_key(|c| std::cmp::Reverse((c.requested_at, c.id)));
        all.truncate(MAX_LISTED as usize);
        all
    };
    rows.retain(|c| c.visible);
    Ok(rows)
}

/// Files a service request: a form-urlencoded body with `api_key`, `service_code`,
/// a location (`lat` and `long`, `address_string` or `address_id`), `attribute[code]`
/// values and the reporter's details. Batch services answer with a token.
#[utoipa::path(post, path = "/open311/v2/{file}", tag = "open311",
    params(("file" = String, Path, description = "`requests.json` or `requests.xml`")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "service_requests with the id or a token"), (status = 400, description = "Open311 errors"), (status = 403, description = "Open311 errors: api_key missing or not valid")))]
pub async fn create(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(file): Path<String>,
    body: Bytes,
) -> Result<Answer, Answer> {
    let (stem, format) = split(&file)?;
    if stem != "requests" {
        return Err(error(
            StatusCode::NOT_FOUND,
            &format!("no resource {file} to post to"),
            format,
        ));
    }
    let desk = desk(&state, format)?;
    let raw =
        form::decode(&body).map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string(), format))?;
    let key = raw
        .get("api_key")
        .ok_or_else(|| error(StatusCode::FORBIDDEN, "api_key is required", format))?;
    let principal = state
        .accounts
        .authenticate(key)
        .await
        .map_err(|_| error(StatusCode::FORBIDDEN, "api_key is not valid", format))?;
    let Principal::ApiKey { id, .. } = principal else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "api_key is not an API key",
            format,
        ));
    };
    let filing = form::validate(&raw, desk.catalog()).map_err(|e| civic_error(e.into(), format))?;
    let filed = desk
        .file(filing, Some(&format!("key:{id}")), address.as_deref())
        .await
        .map_err(|e| civic_error(e, format))?;
    let notice = filed
        .held
        .as_ref()
        .map(|_| "held for moderation before it is public".to_owned())
        .or_else(|| {
            (!filed.nearby.is_empty()).then(|| {
                let ids: Vec<String> = filed.nearby.iter().map(|c| c.id.to_string()).collect();
                format!("similar open requests nearby: {}", ids.join(", "))
            })
        });
    Ok(ok(
        "service_requests",
        open311::created(&filed.complaint, notice),
        format,
    ))
}

/// A service definition: the attributes a service asks for.
#[utoipa::path(get, path = "/open311/v2/services/{file}", tag = "open311",
    params(("file" = String, Path, description = "`{service_code}.json` or `.xml`"), ("jurisdiction_id" = Option<String>, Query)),
    responses((status = 200, description = "service_definition"), (status = 404, description = "Open311 errors")))]
pub async fn service_definition(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Answer, Answer> {
    let (code, format, desk, _) = prelude(&state, &file, raw)?;
    let service = desk.catalog().service(code).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            &format!("service_code: '{code}' is not a service"),
            format,
        )
    })?;
    Ok(ok(
        "service_definition",
        open311::service_definition(service),
        format,
    ))
}

/// One request by id.
#[utoipa::path(get, path = "/open311/v2/requests/{file}", tag = "open311",
    params(("file" = String, Path, description = "`{service_request_id}.json` or `.xml`"), ("jurisdiction_id" = Option<String>, Query)),
    responses((status = 200, description = "service_requests with one request"), (status = 404, description = "Open311 errors")))]
pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Answer, Answer> {
    let (id, format, desk, _) = prelude(&state, &file, raw)?;
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            &format!("no service request {id}"),
            format,
        )
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let c = desk
        .store()
        .complaint(id)
        .await
        .map_err(|e| civic_error(e.into(), format))?
        .filter(|c| c.visible)
        .ok_or_else(not_found)?;
    Ok(ok(
        "service_requests",
        open311::requests(&[c], desk.catalog(), &base_url(&headers)),
        format,
    ))
}

/// The request id a batch service's token stands for.
#[utoipa::path(get, path = "/open311/v2/tokens/{file}", tag = "open311",
    params(("file" = String, Path, description = "`{token}.json` or `.xml`"), ("jurisdiction_id" = Option<String>, Query)),
    responses((status = 200, description = "service_requests with the id and token"), (status = 404, description = "Open311 errors")))]
pub async fn token(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Answer, Answer> {
    let (token, format, desk, _) = prelude(&state, &file, raw)?;
    let c = desk
        .store()
        .complaint_by_token(token)
        .await
        .map_err(|e| civic_error(e.into(), format))?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, &format!("no token {token}"), format))?;
    Ok(ok("service_requests", open311::token(&c), format))
}
