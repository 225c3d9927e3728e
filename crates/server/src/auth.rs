//! Who may call what.
//!
//! Every route is declared in [`ENDPOINTS`] with its [`Access`]; the
//! [`authorize`] middleware finds the matched route there and refuses the
//! request before any handler runs. A route missing from the table is
//! refused for everyone, so forgetting to declare one fails closed, and the
//! role × endpoint test walks this same table.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use cityos_accounts::{Access, Principal, Role};

use crate::AppState;
use crate::error::ApiError;

/// Name of the session cookie set at login.
pub const SESSION_COOKIE: &str = "cityos_session";

const OPERATORS: Access = Access::Roles(&[Role::TransitOperator]);
const ADMINS: Access = Access::Roles(&[]);
const STAFF: Access = Access::Roles(&[Role::DepartmentStaff, Role::ComplaintsOfficer]);
const OFFICERS: Access = Access::Roles(&[Role::ComplaintsOfficer]);

/// Every route: method, path pattern (as routed), and who may call it.
pub const ENDPOINTS: &[(Method, &str, Access)] = &[
    (Method::GET, "/", Access::Public),
    (Method::GET, "/complaints", Access::Public),
    (Method::GET, "/staff", Access::Public),
    (Method::GET, "/civic.js", Access::Public),
    (Method::GET, "/app.js", Access::Public),
    (Method::GET, "/app.css", Access::Public),
    (Method::GET, "/board", Access::Public),
    (Method::GET, "/board.js", Access::Public),
    (Method::GET, "/health", Access::Public),
    (Method::GET, "/metrics", Access::Public),
    (Method::GET, "/api/v1/ui-config", Access::Public),
    (Method::GET, "/api/v1/network", Access::Public),
    (Method::GET, "/api/v1/agencies", Access::Public),
    (Method::GET, "/api/v1/routes", Access::Public),
    (Method::GET, "/api/v1/routes.geojson", Access::Public),
    (Method::GET, "/api/v1/routes/{route_id}", Access::Public),
    (Method::GET, "/api/v1/stops", Access::Public),
    (Method::GET, "/api/v1/stops.geojson", Access::Public),
    (Method::GET, "/api/v1/stops/nearby", Access::Public),
    (Method::GET, "/api/v1/stops/{stop_id}", Access::Public),
    (
        Method::GET,
        "/api/v1/stops/{stop_id}/departures",
        Access::Public,
    ),
    (Method::GET, "/api/v1/trips/{trip_id}", Access::Public),
    (Method::GET, "/api/v1/calendar", Access::Public),
    (Method::POST, "/api/v1/accounts/register", Access::Public),
    (Method::POST, "/api/v1/accounts/login", Access::Public),
    (Method::POST, "/api/v1/accounts/logout", Access::SignedIn),
    (Method::GET, "/api/v1/accounts/me", Access::SignedIn),
    (Method::GET, "/api/v1/admin/users", ADMINS),
    (Method::PATCH, "/api/v1/admin/users/{user_id}", ADMINS),
    (Method::POST, "/api/v1/admin/users", ADMINS),
    (Method::POST, "/api/v1/admin/api-keys", ADMINS),
    (Method::DELETE, "/api/v1/admin/api-keys/{key_id}", ADMINS),
    (Method::POST, "/api/v1/cards", Access::SignedIn),
    (Method::GET, "/api/v1/cards/{card_id}", Access::SignedIn),
    (
        Method::GET,
        "/api/v1/cards/{card_id}/history",
        Access::SignedIn,
    ),
    (Method::POST, "/api/v1/cards/{card_id}/top-ups", OPERATORS),
    (
        Method::POST,
        "/api/v1/cards/{card_id}/block",
        Access::SignedIn,
    ),
    (Method::POST, "/api/v1/cards/{card_id}/refund", OPERATORS),
    (Method::POST, "/api/v1/taps", OPERATORS),
    (Method::POST, "/api/v1/fares/quote", Access::Public),
    (Method::GET, "/api/v1/ridership", Access::Public),
    (Method::GET, "/api/v1/ridership/{file}", Access::Public),
    (Method::GET, "/api/v1/admin/fares/audit", OPERATORS),
    (Method::POST, "/api/v1/vehicles/positions", OPERATORS),
    (Method::GET, "/gtfs-rt/trip-updates", Access::Public),
    (Method::GET, "/gtfs-rt/vehicle-positions", Access::Public),
    (Method::GET, "/gtfs-rt/service-alerts", Access::Public),
    (Method::GET, "/api/v1/vehicles", Access::Public),
    (Method::GET, "/api/v1/vehicles/stream", Access::Public),
    (Method::GET, "/api/v1/vehicles/{vehicle_id}", Access::Public),
    (
        Method::GET,
        "/api/v1/stops/{stop_id}/departures/stream",
        Access::Public,
    ),
    (Method::GET, "/api/v1/roads/speeds.geojson", Access::Public),
    (Method::GET, "/api/v1/incidents", Access::Public),
    (Method::POST, "/api/v1/incidents", OPERATORS),
    (Method::PATCH, "/api/v1/incidents/{incident_id}", OPERATORS),
    (Method::GET, "/api/v1/admin/incidents", OPERATORS),
    (
        Method::GET,
        "/api/v1/trips/{trip_id}/history",
        Access::Public,
    ),
    // Open311 checks its own api_key (a form field), so the routes are public here.
    (Method::GET, "/open311/{file}", Access::Public),
    (Method::GET, "/open311/v2/{file}", Access::Public),
    (Method::POST, "/open311/v2/{file}", Access::Public),
    (Method::GET, "/open311/v2/services/{file}", Access::Public),
    (Method::GET, "/open311/v2/requests/{file}", Access::Public),
    (Method::GET, "/open311/v2/tokens/{file}", Access::Public),
    (Method::POST, "/api/v1/complaints", Access::SignedIn),
    (Method::GET, "/api/v1/complaints", STAFF),
    (Method::GET, "/api/v1/complaints/mine", Access::SignedIn),
    (Method::GET, "/api/v1/complaints/nearby", Access::Public),
    (
        Method::GET,
        "/api/v1/complaints/hotspots.geojson",
        Access::Public,
    ),
    (
        Method::GET,
        "/api/v1/complaints/map.geojson",
        Access::Public,
    ),
    (Method::GET, "/api/v1/complaints/charts", Access::Public),
    (Method::GET, "/api/v1/complaints/ranking", Access::Public),
    (Method::GET, "/api/v1/complaints/alerts", STAFF),
    (Method::GET, "/api/v1/complaints/catalog", Access::Public),
    (Method::GET, "/api/v1/complaints/moderation", OFFICERS),
    (
        Method::GET,
        "/api/v1/complaints/{complaint_id}",
        Access::SignedIn,
    ),
    (
        Method::POST,
        "/api/v1/complaints/{complaint_id}/updates",
        STAFF,
    ),
    (
        Method::POST,
        "/api/v1/complaints/{complaint_id}/assign",
        STAFF,
    ),
    (
        Method::POST,
        "/api/v1/complaints/{complaint_id}/merge",
        STAFF,
    ),
    (
        Method::POST,
        "/api/v1/complaints/{complaint_id}/reopen",
        Access::SignedIn,
    ),
    (
        Method::POST,
        "/api/v1/complaints/{complaint_id}/moderation",
        OFFICERS,
    ),
    (
        Method::POST,
        "/api/v1/complaints/{complaint_id}/photos",
        Access::SignedIn,
    ),
    (
        Method::GET,
        "/api/v1/complaints/{complaint_id}/photos/{photo_id}",
        Access::Public,
    ),
    (Method::GET, "/api/v1/notifications", Access::SignedIn),
    (Method::POST, "/api/v1/notifications/read", Access::SignedIn),
    (Method::GET, "/api/v1/admin/networks", OPERATORS),
    (Method::POST, "/api/v1/admin/networks", OPERATORS),
    (
        Method::POST,
        "/api/v1/admin/networks/{network_id}/activate",
        OPERATORS,
    ),
];

/// The access rule of a routed request, if declared.
pub fn access_of(method: &Method, path: &str) -> Option<Access> {
    // HEAD is answered by GET handlers.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ENDPOINTS
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .map(|e| e.2)
}

fn method_not_allowed(path: &str) -> ApiError {
    let allowed: Vec<&str> = ENDPOINTS
        .iter()
        .filter(|e| e.1 == path)
        .map(|e| e.0.as_str())
        .collect();
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!(
            "{path} accepts {}",
            if allowed.is_empty() {
                "no methods".to_owned()
            } else {
                allowed.join(", ")
            }
        ),
        field: None,
    }
}

/// The bearer credential of a request: the Authorization header, else the session cookie.
fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(SESSION_COOKIE)?
                .strip_prefix('=')
                .map(str::to_owned)
        })
}

/// Resolves the caller and checks the route's [`Access`]; the principal is
/// left in the request's extensions for handlers.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(access) = access_of(request.method(), &path) else {
        // Undeclared methods are refused whether or not a handler exists, so a forgotten declaration fails closed.
        return Err(method_not_allowed(&path));
    };
    // Public routes need no identity: skip the store lookup on the hot paths.
    let principal = match credential(request.headers()) {
        Some(token) if access != Access::Public => state.accounts.authenticate(&token).await?,
        _ => Principal::Anonymous,
    };
    if !access.allows(&principal) {
        return Err(match principal {
            Principal::Anonymous => ApiError::unauthorized(),
            _ => ApiError::forbidden(&access.describe()),
        });
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
