//! The HTTP face of cityos: thin axum glue over the domain crates.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it
//! in process and `cityos serve` binds it to a socket with [`serve`]. Every
//! route is declared once in [`auth::ENDPOINTS`] with who may call it; every
//! error leaves as `{"error": {"code", "message", "field"?}}`.

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod mqtt;
pub mod network;
mod openapi;
pub mod realtime;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use cityos_accounts::Accounts;
use cityos_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use error::ApiError;
pub use metrics::Metrics;
pub use network::{NetworkHandle, Served, import_feed};
pub use openapi::openapi;

/// Largest request body outside the feed upload.
pub const MAX_BODY: usize = 1 << 20;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What the web page needs to know about this installation.
#[derive(Debug, Clone, Default)]
pub struct UiConfig {
    /// XYZ raster tile URL template drawn under the map, if any.
    pub basemap_url: Option<String>,
    /// Name of the city shown in the page header.
    pub city_name: String,
}

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Store,
    /// Accounts over the store.
    pub accounts: Accounts,
    /// The transit network being served.
    pub network: NetworkHandle,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Web page settings.
    pub ui: Arc<UiConfig>,
    /// The smart card desk, once started.
    pub cards: Option<cityos_card::CardDesk>,
    /// Live vehicles and predictions.
    pub live: Arc<realtime::LiveTransit>,
    /// The complaint desk, once started.
    pub civic: Option<cityos_civic::Desk>,
    /// Rendered Open311 listings, reused while nothing changed.
    pub listings: Arc<api::open311::ListingCache>,
}

impl AppState {
    /// State over `store`, serving no network until one is loaded.
    pub fn new(store: Store, ui: UiConfig) -> AppState {
        AppState {
            accounts: Accounts::new(store.clone()),
            store,
            network: NetworkHandle::default(),
            metrics: Metrics::new(),
            ui: Arc::new(ui),
            cards: None,
            live: Arc::default(),
            civic: None,
            listings: Arc::default(),
        }
    }

    /// Starts the complaint desk over this state's store with Seoul's catalog.
    pub async fn start_civic(
        &mut self,
        settings: cityos_civic::Settings,
    ) -> Result<(), cityos_civic::CivicError> {
        self.civic = Some(
            cityos_civic::Desk::open(self.store.clone(), cityos_civic::Catalog::seoul(), settings)
                .await?,
        );
        Ok(())
    }

    /// Starts the card desk over this state's store, pricing with the fare rules `rules_toml`
    /// on whatever network is being served at each tap.
    pub async fn start_cards(&mut self, rules_toml: &str) -> Result<(), cityos_card::DeskError> {
        let handle = self.network.clone();
        let source: cityos_card::NetworkSource =
            Arc::new(move || -> Arc<dyn cityos_card::NetworkView + Send + Sync> {
                match handle.get() {
                    Some(served) => Arc::new(cityos_card::TransitView(served.network.clone())),
                    None => Arc::new(cityos_card::NoNetwork),
                }
            });
        self.cards =
            Some(cityos_card::CardDesk::open(self.store.clone(), rules_toml, source).await?);
        Ok(())
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    use api::{accounts, admin, cards, complaints, live, open311, system, transit};
    let routes = Router::new()
        .route("/", get(web::index))
        .route("/complaints", get(web::complaints_page))
        .route("/staff", get(web::staff_page))
        .route("/civic.js", get(web::civic_script))
        .route("/app.js", get(web::script))
        .route("/app.css", get(web::style))
        .route("/board", get(web::board))
        .route("/board.js", get(web::board_script))
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/ui-config", get(system::ui_config))
        .route("/api/v1/network", get(transit::network_summary))
        .route("/api/v1/agencies", get(transit::agencies))
        .route("/api/v1/routes", get(transit::routes))
        .route("/api/v1/routes.geojson", get(transit::routes_geojson))
        .route("/api/v1/routes/{route_id}", get(transit::route))
        .route("/api/v1/stops", get(transit::stops))
        .route("/api/v1/stops.geojson", get(transit::stops_geojson))
        .route("/api/v1/stops/nearby", get(transit::stops_nearby))
        .route("/api/v1/stops/{stop_id}", get(transit::stop))
        .route(
            "/api/v1/stops/{stop_id}/departures",
            get(transit::departures),
        )
        .route("/api/v1/trips/{trip_id}", get(transit::trip))
        .route("/api/v1/calendar", get(transit::calendar))
        .route("/api/v1/accounts/register", post(accounts::register))
        .route("/api/v1/accounts/login", post(accounts::login))
        .route("/api/v1/accounts/logout", post(accounts::logout))
        .route("/api/v1/accounts/me", get(accounts::me))
        .route(
            "/api/v1/admin/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route(
            "/api/v1/admin/users/{user_id}",
            patch(accounts::update_user),
        )
        .route("/api/v1/admin/api-keys", post(accounts::create_api_key))
        .route(
            "/api/v1/admin/api-keys/{key_id}",
            delete(accounts::revoke_api_key),
        )
        .route("/api/v1/cards", post(cards::issue))
        .route("/api/v1/cards/{card_id}", get(cards::card))
        .route("/api/v1/cards/{card_id}/history", get(cards::history))
        .route("/api/v1/cards/{card_id}/top-ups", post(cards::top_up))
        .route("/api/v1/cards/{card_id}/block", post(cards::block))
        .route("/api/v1/cards/{card_id}/refund", post(cards::refund))
        .route("/api/v1/taps", post(cards::taps))
        .route("/api/v1/fares/quote", post(cards::quote))
        .route("/api/v1/ridership", get(cards::ridership))
        .route("/api/v1/ridership/{file}", get(cards::ridership_file))
        .route("/api/v1/admin/fares/audit", get(cards::audit))
        .route(
            "/api/v1/vehicles/positions",
            post(live::post_positions).layer(DefaultBodyLimit::max(live::MAX_FEED)),
        )
        .route("/gtfs-rt/trip-updates", get(live::trip_updates))
        .route("/gtfs-rt/vehicle-positions", get(live::vehicle_positions))
        .route("/gtfs-rt/service-alerts", get(live::service_alerts))
        .route("/api/v1/vehicles", get(live::vehicles))
        .route("/api/v1/vehicles/stream", get(live::vehicles_stream))
        .route("/api/v1/vehicles/{vehicle_id}", get(live::vehicle))
        .route(
            "/api/v1/stops/{stop_id}/departures/stream",
            get(live::departures_stream),
        )
        .route("/api/v1/roads/speeds.geojson", get(live::road_speeds))
        .route(
            "/api/v1/incidents",
            get(live::incidents).post(live::create_incident),
        )
        .route(
            "/api/v1/incidents/{incident_id}",
            patch(live::update_incident),
        )
        .route("/api/v1/admin/incidents", get(live::all_incidents))
        .route("/api/v1/trips/{trip_id}/history", get(live::trip_history))
        .route("/open311/{file}", get(open311::discovery))
        .route(
            "/open311/v2/{file}",
            get(open311::list).post(open311::create),
        )
        .route(
            "/open311/v2/services/{file}",
            get(open311::service_definition),
        )
        .route("/open311/v2/requests/{file}", get(open311::request))
        .route("/open311/v2/tokens/{file}", get(open311::token))
        .route(
            "/api/v1/complaints",
            get(complaints::queue).post(complaints::file),
        )
        .route("/api/v1/complaints/mine", get(complaints::mine))
        .route("/api/v1/complaints/nearby", get(complaints::nearby))
        .route(
            "/api/v1/complaints/hotspots.geojson",
            get(complaints::hotspots),
        )
        .route("/api/v1/complaints/map.geojson", get(complaints::map))
        .route("/api/v1/complaints/charts", get(complaints::charts))
        .route("/api/v1/complaints/ranking", get(complaints::ranking))
        .route("/api/v1/complaints/alerts", get(complaints::alerts))
        .route("/api/v1/complaints/catalog", get(complaints::catalog))
        .route(
            "/api/v1/complaints/moderation",
            get(complaints::moderation_queue),
        )
        .route("/api/v1/complaints/{complaint_id}", get(complaints::detail))
        .route(
            "/api/v1/complaints/{complaint_id}/updates",
            post(complaints::update),
        )
        .route(
            "/api/v1/complaints/{complaint_id}/assign",
            post(complaints::assign),
        )
        .route(
            "/api/v1/complaints/{complaint_id}/merge",
            post(complaints::merge),
        )
        .route(
            "/api/v1/complaints/{complaint_id}/reopen",
            post(complaints::reopen),
        )
        .route(
            "/api/v1/complaints/{complaint_id}/moderation",
            post(complaints::moderate),
        )
        .route(
            "/api/v1/complaints/{complaint_id}/photos",
            post(complaints::add_photo).layer(DefaultBodyLimit::max(complaints::MAX_PHOTO_UPLOAD)),
        )
        .route(
            "/api/v1/complaints/{complaint_id}/photos/{photo_id}",
            get(complaints::photo),
        )
        .route("/api/v1/notifications", get(complaints::notifications))
        .route(
            "/api/v1/notifications/read",
            post(complaints::read_notifications),
        )
        .route(
            "/api/v1/admin/networks",
            get(admin::list)
                .post(admin::import)
                .layer(DefaultBodyLimit::max(admin::MAX_UPLOAD)),
        )
        .route(
            "/api/v1/admin/networks/{network_id}/activate",
            post(admin::activate),
        )
        // Applies to the routes above only: each is checked against its declared access.
        .route_layer(from_fn_with_state(state.clone(), auth::authorize))
        // The API's own description is public by nature.
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .fallback(not_found);
    routes
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(from_fn(normalize_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Gives errors produced outside our handlers (405 from the router, 413 from
/// body limits, 408 from the timeout) the same JSON shape as ours.
async fn normalize_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // Open311 errors are XML or JSON in the standard's own shape.
        .is_some_and(|v| v.contains("json") || v.contains("xml"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        message
    };
    let mut out = ApiError {
        status,
        code,
        message,
        field: None,
    }
    .into_response();
    // Keep headers such as Allow (405) and WWW-Authenticate.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// requests in flight (graceful shutdown).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let watcher = tokio::spawn(
        state
            .network
            .clone()
            .watch(state.store.clone(), state.metrics.clone()),
    );
    let live = tokio::spawn(realtime::run(state.clone()));
    let alerts = state
        .civic
        .clone()
        .map(|desk| tokio::spawn(breach_alerts(desk)));
    let keeper = state.clone();
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    watcher.abort();
    live.abort();
    // What was learned since the last periodic save outlives the process
    // (and a replay's last minutes reach the next replay into the same store).
    realtime::save_history(&keeper).await;
    if let Some(alerts) = alerts {
        alerts.abort();
    }
    result
}

/// Records deadline breaches every minute.
async fn breach_alerts(desk: cityos_civic::Desk) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = desk.alert_breaches(cityos_store::now_unix()).await {
            tracing::warn!("breach alerts failed: {e}");
        }
    }
}
