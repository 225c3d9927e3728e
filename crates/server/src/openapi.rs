//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{accounts, admin, cards, complaints, live, open311, system, transit};
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "cityos", description = "An open smart-city platform: the transit network, live buses and predictions (BIS), traffic and incidents (TOPIS), the smart transportation card, and citizens' complaints (with Open311 GeoReport v2). Every error is `{\"error\": {\"code\", \"message\", \"field\"?}}`."),
    paths(
        system::health, system::metrics, system::ui_config,
        transit::network_summary, transit::agencies, transit::routes, transit::routes_geojson, transit::route,
        transit::stops, transit::stops_geojson, transit::stops_nearby, transit::stop, transit::departures,
        transit::trip, transit::calendar,
        accounts::register, accounts::login, accounts::logout, accounts::me,
        accounts::list_users, accounts::create_user, accounts::update_user,
        accounts::create_api_key, accounts::revoke_api_key,
        admin::import, admin::list, admin::activate,
        cards::issue, cards::card, cards::history, cards::top_up, cards::block, cards::refund, cards::taps,
        cards::quote, cards::ridership, cards::ridership_file, cards::audit,
        live::post_positions, live::trip_updates, live::vehicle_positions, live::service_alerts,
        live::vehicles, live::vehicles_stream, live::vehicle, live::departures_stream, live::road_speeds,
        live::incidents, live::all_incidents, live::create_incident, live::update_incident,
        live::trip_history,
        open311::discovery, open311::list, open311::create, open311::service_definition, open311::request, open311::token,
        complaints::file, complaints::queue, complaints::mine, complaints::detail, complaints::update, complaints::assign,
        complaints::merge, complaints::reopen, complaints::moderation_queue, complaints::moderate, complaints::add_photo,
        complaints::photo, complaints::nearby, complaints::hotspots, complaints::map, complaints::charts, complaints::ranking,
        complaints::alerts, complaints::catalog, complaints::notifications, complaints::read_notifications,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "transit", description = "The transit network from GTFS"),
        (name = "accounts", description = "Citizens and staff signing in"),
        (name = "admin", description = "Users, API keys and network imports"),
        (name = "live", description = "Live vehicles, predictions, GTFS-realtime feeds, road speeds and incidents"),
        (name = "cards", description = "The smart transportation card: cards, taps, fares, ridership"),
        (name = "open311", description = "Open311 GeoReport v2: services and service requests in XML or JSON; errors are the standard's `[{code, description}]`"),
        (name = "complaints", description = "The complaint desk: filing, tracking, the staff's queue, photos, notifications, hotspots, charts and the ranking"),
        (name = "system", description = "Health, metrics, settings"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from /api/v1/accounts/login, or an API key",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
