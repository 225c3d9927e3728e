//! The transit network API: agencies, routes, stops, departures, trips, calendar.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use cityos_transit::model::{NONE, flags};
use cityos_transit::network::is_boardable_place;
use cityos_transit::time::{format_time, parse_time};
use cityos_transit::{Network, RouteKind};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::network::Served;

/// Most items one page may hold.
pub const MAX_LIMIT: usize = 1000;

fn served(state: &AppState) -> Result<Arc<Served>, ApiError> {
    state.network.get().ok_or_else(|| {
        ApiError::unavailable("no transit network is imported yet: run `cityos import gtfs <feed>`")
    })
}

/// Page parameters shared by listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1–1000, default 50).
    limit: Option<usize>,
    /// Items to skip (default 0).
    offset: Option<usize>,
}

impl PageQuery {
    fn resolve(&self) -> Result<(usize, usize), ApiError> {
        Ok((check_limit(self.limit, 50)?, self.offset.unwrap_or(0)))
    }
}

/// A `limit` parameter within 1..=[`MAX_LIMIT`], or its default.
fn check_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// Counts and extent of the served network.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkSummary {
    /// Store id of the network.
    id: i64,
    agencies: usize,
    routes: usize,
    stops: usize,
    trips: usize,
    stop_times: usize,
    shapes: usize,
    services: usize,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    bbox: Option<[f64; 4]>,
    feed_version: Option<String>,
    /// IANA time zone of the agencies.
    timezone: String,
    /// First service date, `YYYY-MM-DD`.
    first_service_date: Option<String>,
    /// Last service date, `YYYY-MM-DD`.
    last_service_date: Option<String>,
}

/// The served network's counts, extent, time zone and dates.
#[utoipa::path(get, path = "/api/v1/network", tag = "transit",
    responses((status = 200, body = NetworkSummary), (status = 503, body = ErrorBody, description = "no network imported")))]
pub async fn network_summary(
    State(state): State<AppState>,
) -> Result<Json<NetworkSummary>, ApiError> {
    let served = served(&state)?;
    let s = served.network.summary();
    let (first, last) = s
        .service_dates
        .map_or((None, None), |(a, b)| (Some(a), Some(b)));
    Ok(Json(NetworkSummary {
        id: served.id,
        agencies: s.agencies,
        routes: s.routes,
        stops: s.stops,
        trips: s.trips,
        stop_times: s.stop_times,
        shapes: s.shapes,
        services: s.services,
        bbox: s.bbox,
        feed_version: s.feed_version,
        timezone: s.timezone,
        first_service_date: first,
        last_service_date: last,
    }))
}

/// An agency.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyDto {
    agency_id: String,
    name: String,
    url: String,
    timezone: String,
    lang: Option<String>,
    phone: Option<String>,
}

/// All agencies of the network.
#[utoipa::path(get, path = "/api/v1/agencies", tag = "transit", responses((status = 200, body = Vec<AgencyDto>)))]
pub async fn agencies(State(state): State<AppState>) -> Result<Json<Vec<AgencyDto>>, ApiError> {
    let served = served(&state)?;
    Ok(Json(
        served
            .network
            .data()
            .agencies
            .iter()
            .map(|a| AgencyDto {
                agency_id: a.id.clone(),
                name: a.name.clone(),
                url: a.url.clone(),
                timezone: a.timezone.clone(),
                lang: a.lang.clone(),
                phone: a.phone.clone(),
            })
            .collect(),
    ))
}

/// A route.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteDto {
    route_id: String,
    agency_id: String,
    short_name: String,
    long_name: String,
    desc: Option<String>,
    /// GTFS `route_type`.
    route_type: u16,
    /// `trunk`, `branch`, `circular`, `night`, `subway`, `rail`, `tram`, `ferry`, `bus` or `other`.
    kind: String,
    /// `#RRGGBB`.
    color: Option<String>,
    /// `#RRGGBB`.
    text_color: Option<String>,
    /// Number of trips.
    trips: u32,
}

fn route_dto(network: &Network, r: u32) -> RouteDto {
    let d = network.data();
    let route = &d.routes[r as usize];
    RouteDto {
        route_id: d.route_ids.id(r).to_owned(),
        agency_id: d.agencies[route.agency as usize].id.clone(),
        short_name: route.short_name.clone(),
        long_name: route.long_name.clone(),
        desc: route.desc.clone(),
        route_type: route.route_type,
        kind: route.kind().as_str().to_owned(),
        color: route.color.as_ref().map(|c| format!("#{c}")),
        text_color: route.text_color.as_ref().map(|c| format!("#{c}")),
        trips: network.route_trip_count(r),
    }
}

/// Filters of the route listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RouteQuery {
    /// Only routes of this kind (`trunk`, `branch`, `circular`, `night`, `subway`, …).
    kind: Option<String>,
    /// Only routes of this agency.
    agency_id: Option<String>,
    /// Text contained in the short or long name (case-insensitive).
    q: Option<String>,
}

/// A page of routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutePage {
    items: Vec<RouteDto>,
    total: usize,
    limit: usize,
    offset: usize,
}

fn parse_kind(kind: Option<&str>) -> Result<Option<RouteKind>, ApiError> {
    kind.map(|k| {
        RouteKind::parse(k).ok_or_else(|| {
            ApiError::invalid("kind", format!("'{k}' is not a route kind (trunk, branch, circular, night, subway, rail, tram, ferry, bus, other)"))
        })
    })
    .transpose()
}

fn matching_routes(network: &Network, q: &RouteQuery) -> Result<Vec<u32>, ApiError> {
    let d = network.data();
    let kind = parse_kind(q.kind.as_deref())?;
    let agency = match q.agency_id.as_deref() {
        Some(a) => Some(
            d.agency_ids
                .get(a)
                .ok_or_else(|| ApiError::invalid("agency_id", format!("no agency '{a}'")))?,
        ),
        None => None,
    };
    let text = q.q.as_deref().map(str::to_lowercase);
    let mut routes: Vec<u32> = (0..d.routes.len() as u32)
        .filter(|&r| {
            let route = &d.routes[r as usize];
            kind.is_none_or(|k| route.kind() == k)
                && agency.is_none_or(|a| route.agency == a)
                && text.as_deref().is_none_or(|t| {
                    route.short_name.to_lowercase().contains(t)
                        || route.long_name.to_lowercase().contains(t)
                })
        })
        .collect();
    routes.sort_by(|&a, &b| {
        let (ra, rb) = (&d.routes[a as usize], &d.routes[b as usize]);
        (ra.sort_order, &ra.short_name, &ra.long_name).cmp(&(
            rb.sort_order,
            &rb.short_name,
            &rb.long_name,
        ))
    });
    Ok(routes)
}

/// Routes, filtered and paginated, in `route_sort_order` then name order.
#[utoipa::path(get, path = "/api/v1/routes", tag = "transit", params(RouteQuery, PageQuery),
    responses((status = 200, body = RoutePage), (status = 400, body = ErrorBody)))]
pub async fn routes(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RouteQuery>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<RoutePage>, ApiError> {
    let (limit, offset) = page.resolve()?;
    let served = served(&state)?;
    let routes = matching_routes(&served.network, &q)?;
    Ok(Json(RoutePage {
        total: routes.len(),
        items: routes
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&r| route_dto(&served.network, r))
            .collect(),
        limit,
        offset,
    }))
}

fn shape_coordinates(network: &Network, shape: u32) -> Vec<[f64; 2]> {
    let shapes = &network.data().shapes;
    shapes
        .points(shape)
        .map(|i| [round6(shapes.lon[i]), round6(shapes.lat[i])])
        .collect()
}

/// The route's geometry: its shapes, or its stops in order when the feed has no shapes.
fn route_geometry(network: &Network, r: u32) -> Vec<Vec<[f64; 2]>> {
    let shapes = network.route_shapes(r);
    if !shapes.is_empty() {
        return shapes
            .iter()
            .map(|&s| shape_coordinates(network, s))
            .collect();
    }
    let d = network.data();
    let mut lines: Vec<Vec<[f64; 2]>> = Vec::new();
    for trip in (0..d.trips.len() as u32).filter(|&t| d.trips.route[t as usize] == r) {
        let line: Vec<[f64; 2]> = d
            .trips
            .stop_time_range(trip)
            .map(|i| d.stop_times.stop[i] as usize)
            .map(|s| [round6(d.stops.lon[s]), round6(d.stops.lat[s])])
            .collect();
        if !lines.contains(&line) {
            lines.push(line);
        }
        if lines.len() >= 4 {
            break;
        }
    }
    lines
}

fn route_feature(network: &Network, r: u32) -> Value {
    let dto = route_dto(network, r);
    json!({
        "type": "Feature",
        "id": dto.route_id,
        "geometry": {"type": "MultiLineString", "coordinates": route_geometry(network, r)},
        "properties": {
            "route_id": dto.route_id, "short_name": dto.short_name, "long_name": dto.long_name,
            "kind": dto.kind, "color": dto.color, "text_color": dto.text_color, "route_type": dto.route_type,
        }
    })
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn geojson(features: Vec<Value>) -> Response {
    (
        [("content-type", "application/geo+json")],
        Json(json!({"type": "FeatureCollection", "features": features})),
    )
        .into_response()
}

/// Every route (or those matching the filters) as a GeoJSON FeatureCollection of MultiLineStrings.
#[utoipa::path(get, path = "/api/v1/routes.geojson", tag = "transit", params(RouteQuery),
    responses((status = 200, description = "GeoJSON FeatureCollection (RFC 7946)", content_type = "application/geo+json", body = Object)))]
pub async fn routes_geojson(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RouteQuery>,
) -> Result<Response, ApiError> {
    let served = served(&state)?;
    let features = matching_routes(&served.network, &q)?
        .into_iter()
        .map(|r| route_feature(&served.network, r))
        .collect();
    Ok(geojson(features))
}

/// A route with its shapes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteDetail {
    route: RouteDto,
    /// GeoJSON Feature with the route's shapes as a MultiLineString.
    #[schema(value_type = Object)]
    geometry: Value,
}

/// One route and its geometry.
#[utoipa::path(get, path = "/api/v1/routes/{route_id}", tag = "transit", params(("route_id" = String, Path)),
    responses((status = 200, body = RouteDetail), (status = 404, body = ErrorBody)))]
pub async fn route(
    State(state): State<AppState>,
    Path(route_id): Path<String>,
) -> Result<Json<RouteDetail>, ApiError> {
    let served = served(&state)?;
    let r = served
        .network
        .data()
        .route_ids
        .get(&route_id)
        .ok_or_else(|| ApiError::not_found(format!("no route '{route_id}'")))?;
    Ok(Json(RouteDetail {
        route: route_dto(&served.network, r),
        geometry: route_feature(&served.network, r),
    }))
}

/// A stop, station or other location.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopDto {
    stop_id: String,
    code: Option<String>,
    name: String,
    lat: Option<f64>,
    lon: Option<f64>,
    /// 0 stop or platform, 1 station, 2 entrance, 3 generic node, 4 boarding area.
    location_type: u8,
    parent_station: Option<String>,
    /// 0 unknown, 1 possible, 2 not possible.
    wheelchair_boarding: u8,
    platform_code: Option<String>,
}

fn stop_dto(network: &Network, s: u32) -> StopDto {
    let stops = &network.data().stops;
    let i = s as usize;
    let non_empty = |v: &String| Some(v.clone()).filter(|v| !v.is_empty());
    StopDto {
        stop_id: stops.ids.id(s).to_owned(),
        code: non_empty(&stops.codes[i]),
        name: stops.names[i].clone(),
        lat: Some(stops.lat[i]).filter(|v| v.is_finite()),
        lon: Some(stops.lon[i]).filter(|v| v.is_finite()),
        location_type: stops.location_type[i],
        parent_station: (stops.parent[i] != NONE).then(|| stops.ids.id(stops.parent[i]).to_owned()),
        wheelchair_boarding: stops.wheelchair[i],
        platform_code: non_empty(&stops.platform_codes[i]),
    }
}

/// Filters of the stop listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StopQuery {
    /// Text in the stop's name, or its exact code or id.
    q: Option<String>,
}

/// A page of stops.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopPage {
    items: Vec<StopDto>,
    total: usize,
    limit: usize,
    offset: usize,
}

/// Stops and stations riders look for (platforms fold into their station), searched by name.
#[utoipa::path(get, path = "/api/v1/stops", tag = "transit", params(StopQuery, PageQuery),
    responses((status = 200, body = StopPage), (status = 400, body = ErrorBody)))]
pub async fn stops(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<StopQuery>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<StopPage>, ApiError> {
    let (limit, offset) = page.resolve()?;
    let served = served(&state)?;
    let network = &served.network;
    let hits: Vec<u32> = match q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => network.search_stops(text),
        None => {
            let stops = &network.data().stops;
            (0..stops.len())
                .filter(|&s| is_boardable_place(stops, s))
                .map(|s| s as u32)
                .collect()
        }
    };
    Ok(Json(StopPage {
        total: hits.len(),
        items: hits
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&s| stop_dto(network, s))
            .collect(),
        limit,
        offset,
    }))
}

/// Every stop and station riders look for, as GeoJSON Points. A station
/// lists its platforms (`platforms`), which are not features of their own,
/// so a vehicle's next stop at a platform can be found on the map.
#[utoipa::path(get, path = "/api/v1/stops.geojson", tag = "transit",
    responses((status = 200, description = "GeoJSON FeatureCollection (RFC 7946)", content_type = "application/geo+json", body = Object)))]
pub async fn stops_geojson(State(state): State<AppState>) -> Result<Response, ApiError> {
    let served = served(&state)?;
    let network = &served.network;
    let stops = &network.data().stops;
    let features = (0..stops.len())
        .filter(|&s| is_boardable_place(stops, s) && stops.lat[s].is_finite())
        .map(|s| {
            let id = stops.ids.id(s as u32);
            let platforms: Vec<&str> = network
                .children(s as u32)
                .iter()
                .map(|&c| stops.ids.id(c))
                .collect();
            json!({
                "type": "Feature",
                "id": id,
                "geometry": {"type": "Point", "coordinates": [round6(stops.lon[s]), round6(stops.lat[s])]},
                "properties": {
                    "stop_id": id, "name": stops.names[s], "location_type": stops.location_type[s],
                    "parent_station": Value::Null, "wheelchair_boarding": stops.wheelchair[s],
                    "platforms": platforms,
                }
            })
        })
        .collect();
    Ok(geojson(features))
}

/// Where to look for nearby stops.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyQuery {
    /// Latitude in degrees.
    lat: f64,
    /// Longitude in degrees.
    lon: f64,
    /// Radius in metres (1–5000, default 500).
    radius: Option<f64>,
    /// Most stops to return (1–1000, default 20).
    limit: Option<usize>,
}

/// A stop and how far it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct NearbyStop {
    stop: StopDto,
    /// Great-circle distance in metres.
    distance_m: f64,
}

/// Nearby stops, nearest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NearbyStops {
    items: Vec<NearbyStop>,
}

/// Stops and stations within a radius of a point, nearest first.
#[utoipa::path(get, path = "/api/v1/stops/nearby", tag = "transit", params(NearbyQuery),
    responses((status = 200, body = NearbyStops), (status = 400, body = ErrorBody)))]
pub async fn stops_nearby(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<NearbyQuery>,
) -> Result<Json<NearbyStops>, ApiError> {
    if !(-90.0..=90.0).contains(&q.lat) {
        return Err(ApiError::invalid("lat", "lat must be between -90 and 90"));
    }
    if !(-180.0..=180.0).contains(&q.lon) {
        return Err(ApiError::invalid("lon", "lon must be between -180 and 180"));
    }
    let radius = q.radius.unwrap_or(500.0);
    if !(1.0..=5000.0).contains(&radius) {
        return Err(ApiError::invalid(
            "radius",
            "radius must be 1 to 5000 metres",
        ));
    }
    let limit = check_limit(q.limit, 20)?;
    let served = served(&state)?;
    let mut hits = Vec::new();
    served
        .network
        .stops_nearby_into(q.lat, q.lon, radius, limit, &mut hits);
    Ok(Json(NearbyStops {
        items: hits
            .into_iter()
            .map(|(s, d)| NearbyStop {
                stop: stop_dto(&served.network, s),
                distance_m: (d * 10.0).round() / 10.0,
            })
            .collect(),
    }))
}

fn find_stop(network: &Network, stop_id: &str) -> Result<u32, ApiError> {
    network
        .data()
        .stops
        .ids
        .get(stop_id)
        .ok_or_else(|| ApiError::not_found(format!("no stop '{stop_id}'")))
}

/// A stop with its platforms and the routes serving it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopDetail {
    stop: StopDto,
    /// Platforms, entrances and other children of a station.
    children: Vec<StopDto>,
    /// Routes calling at the stop or its platforms.
    routes: Vec<RouteDto>,
}

/// One stop, its children and the routes that serve it.
#[utoipa::path(get, path = "/api/v1/stops/{stop_id}", tag = "transit", params(("stop_id" = String, Path)),
    responses((status = 200, body = StopDetail), (status = 404, body = ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Path(stop_id): Path<String>,
) -> Result<Json<StopDetail>, ApiError> {
    let served = served(&state)?;
    let network = &served.network;
    let s = find_stop(network, &stop_id)?;
    Ok(Json(StopDetail {
        stop: stop_dto(network, s),
        children: network
            .children(s)
            .iter()
            .map(|&c| stop_dto(network, c))
            .collect(),
        routes: network
            .routes_at(s)
            .into_iter()
            .map(|r| route_dto(network, r))
            .collect(),
    }))
}

/// When to list departures.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DepartureQuery {
    /// Service date `YYYY-MM-DD` in the network's time zone (default: today there).
    date: Option<String>,
    /// Time of day `HH:MM:SS` on that date (default: now, or 00:00:00 when a date is given).
    time: Option<String>,
    /// Length of the window in minutes (1–1440, default 120).
    window_minutes: Option<u32>,
    /// Most departures to return (1–1000, default 20).
    limit: Option<usize>,
}

/// A departure on a stop board: scheduled, and predicted when a vehicle
/// on the trip reports its position.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartureDto {
    trip_id: String,
    route_id: String,
    route_short_name: String,
    /// Route kind, as in [`RouteDto`].
    route_kind: String,
    /// `#RRGGBB`.
    route_color: Option<String>,
    headsign: Option<String>,
    /// The stop or platform it departs from.
    stop_id: String,
    platform_code: Option<String>,
    /// GTFS time on its service day; may exceed 24:00:00.
    departure_time: String,
    /// The scheduled instant, RFC 3339 with the network's offset.
    departure: String,
    /// Service day, `YYYY-MM-DD`.
    service_date: String,
    /// Whole minutes from the requested time to when it is expected.
    minutes_away: i64,
    /// Whether `expected` is a real-time prediction (a vehicle on this trip
    /// is reporting) rather than the timetable.
    realtime: bool,
    /// When it is expected, RFC 3339: the prediction, or the schedule.
    expected: String,
    /// Predicted minus scheduled, seconds (late is positive); 0 without a prediction.
    delay_s: i64,
    /// Earliest and latest likely arrival (10th and 90th percentiles), RFC 3339.
    expected_range: Option<[String; 2]>,
    /// How many stops the vehicle still has to reach up to this one, this
    /// one included (Seoul's "n번째 전"): 1 when this is its next stop.
    /// Without a prediction, absent.
    stops_away: Option<u32>,
    /// Whether the trip's vehicle takes a wheelchair (a low-floor bus), as
    /// the timetable says (GTFS `wheelchair_accessible`); absent when it does not say.
    wheelchair_accessible: Option<bool>,
    /// The vehicle serving the trip, when it reports.
    vehicle_id: Option<String>,
    /// Whether no later trip of its route, in its direction, leaves this
    /// stop on its service day (Seoul's 막차, the last bus).
    last_of_day: bool,
}

/// The departure board of a stop.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartureBoard {
    stop_id: String,
    stop_name: String,
    /// `YYYY-MM-DD` of the window's start.
    date: String,
    /// `HH:MM:SS` of the window's start.
    time: String,
    timezone: String,
    /// When the real-time data behind it was current, POSIX seconds (0: none).
    realtime_at: i64,
    items: Vec<DepartureDto>,
}

fn parse_date_param(text: &str) -> Result<Date, ApiError> {
    text.parse::<Date>()
        .map_err(|_| ApiError::invalid("date", format!("'{text}' is not a date like 2026-03-02")))
}

/// How far back the board looks for late vehicles still to come.
const LATE_LOOKBACK_MINUTES: i64 = 45;

/// The departures from `stop` (and its platforms) expected in `[from, until]`,
/// at most `limit`, each predicted when its vehicle reports, in the order
/// they are expected. A trip whose vehicle has passed the stop is gone from
/// the board; one running late appears however late it is.
pub fn departure_board(
    served: &Served,
    live: &crate::realtime::LiveSnapshot,
    stop: u32,
    from: Timestamp,
    until: Timestamp,
    limit: usize,
) -> DepartureBoard {
    let network = &served.network;
    let d = network.data();
    let tz = network.timezone().clone();
    let rfc3339 = |t: Timestamp| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let at = |secs: f64| Timestamp::from_second(secs.round() as i64).unwrap_or(from);
    let realtime = live.network_id == served.id && !live.runs.is_empty();
    let lookback = if realtime {
        jiff::SignedDuration::from_mins(LATE_LOOKBACK_MINUTES)
    } else {
        jiff::SignedDuration::ZERO
    };
    let earliest = from.checked_sub(lookback).unwrap_or(from);
    let mut items: Vec<(Timestamp, DepartureDto, cityos_transit::Departure)> = network
        .departures(stop, earliest, until, usize::MAX)
        .into_iter()
        .filter_map(|dep| {
            let trip = dep.trip as usize;
            let index = dep.stop_time - d.trips.stop_time_range(dep.trip).start as u32;
            let run = realtime
                .then(|| live.runs.get(&(dep.trip, dep.service_date)))
                .flatten();
            let prediction = run.and_then(|r| r.at_stop(index));
            if run.is_some_and(|r| r.passed(index)) {
                return None;
            }
            let expected = prediction.map_or(dep.at, |p| at(p.arrival));
            // Without a prediction only the timetable counts, and it says the window.
            if expected < from || (prediction.is_none() && dep.at < from) {
                return None;
            }
            let route_index = d.trips.route[trip];
            let route = &d.routes[route_index as usize];
            let platform = d.stop_times.stop[dep.stop_time as usize];
            let stop_headsign = d
                .stop_times
                .headsigns
                .binary_search_by_key(&dep.stop_time, |h| h.0)
                .ok()
                .map(|i| d.stop_times.headsigns[i].1);
            Some((
                expected,
                DepartureDto {
                    trip_id: d.trips.ids.id(dep.trip).to_owned(),
                    route_id: d.route_ids.id(route_index).to_owned(),
                    route_short_name: if route.short_name.is_empty() {
                        route.long_name.clone()
                    } else {
                        route.short_name.clone()
                    },
                    route_kind: route.kind().as_str().to_owned(),
                    route_color: route.color.as_ref().map(|c| format!("#{c}")),
                    headsign: d
                        .string(stop_headsign.unwrap_or(d.trips.headsign[trip]))
                        .map(str::to_owned),
                    stop_id: d.stops.ids.id(platform).to_owned(),
                    platform_code: Some(d.stops.platform_codes[platform as usize].clone())
                        .filter(|p| !p.is_empty()),
                    departure_time: format_time(dep.time),
                    departure: rfc3339(dep.at),
                    service_date: dep.service_date.to_string(),
                    minutes_away: expected.duration_since(from).as_secs().div_euclid(60),
                    realtime: prediction.is_some(),
                    expected: rfc3339(expected),
                    delay_s: prediction.map_or(0, |p| (p.arrival - p.scheduled).round() as i64),
                    expected_range: prediction.map(|p| [rfc3339(at(p.p10)), rfc3339(at(p.p90))]),
                    stops_away: prediction
                        .zip(run.and_then(|r| r.predictions.first()))
                        .map(|(p, next)| p.stop_index - next.stop_index + 1),
                    wheelchair_accessible: match d.trips.wheelchair[trip] {
                        1 => Some(true),
                        2 => Some(false),
                        _ => None,
                    },
                    vehicle_id: run.map(|r| r.vehicle_id.clone()),
                    // Set below, for the departures the board keeps.
                    last_of_day: false,
                },
                dep,
            ))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.trip_id.cmp(&b.1.trip_id)));
    items.truncate(limit);
    for (_, item, dep) in &mut items {
        item.last_of_day = network.is_last_departure(stop, dep);
    }
    let start = from.to_zoned(tz.clone());
    DepartureBoard {
        stop_id: d.stops.ids.id(stop).to_owned(),
        stop_name: d.stops.names[stop as usize].clone(),
        date: start.date().to_string(),
        time: start.strftime("%H:%M:%S").to_string(),
        timezone: tz.iana_name().unwrap_or("UTC").to_owned(),
        realtime_at: if realtime { live.at } else { 0 },
        items: items.into_iter().map(|(_, item, _)| item).collect(),
    }
}

/// The stop board: departures from a stop (and, for a station, its
/// platforms) in a time window, predicted in real time where vehicles
/// report (`realtime: true`), scheduled otherwise, in the order they are expected.
#[utoipa::path(get, path = "/api/v1/stops/{stop_id}/departures", tag = "transit",
    params(("stop_id" = String, Path, description = "GTFS stop_id"), DepartureQuery),
    responses((status = 200, body = DepartureBoard), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn departures(
    State(state): State<AppState>,
    Path(stop_id): Path<String>,
    RawQuery(raw): RawQuery,
    ApiQuery(q): ApiQuery<DepartureQuery>,
) -> Result<Response, ApiError> {
    let served = served(&state)?;
    let snapshot = state.live.snapshot();
    let now = snapshot.now(&state.live.clock);
    let (s, from, until, limit) = board_window(&served, now, &stop_id, &q)?;
    let body = snapshot.board(s, raw.as_deref().unwrap_or(""), || {
        let board = departure_board(&served, &snapshot, s, from, until, limit);
        serde_json::to_vec(&board).unwrap_or_default().into()
    });
    Ok(([("content-type", "application/json")], body).into_response())
}

/// The stop, window and limit a departures request asks for.
pub fn board_window(
    served: &Served,
    now: i64,
    stop_id: &str,
    q: &DepartureQuery,
) -> Result<(u32, Timestamp, Timestamp, usize), ApiError> {
    let window = q.window_minutes.unwrap_or(120);
    if !(1..=1440).contains(&window) {
        return Err(ApiError::invalid(
            "window_minutes",
            "window_minutes must be 1 to 1440",
        ));
    }
    let limit = check_limit(q.limit, 20)?;
    let network = &served.network;
    let s = find_stop(network, stop_id)?;
    let tz = network.timezone().clone();
    let now = Timestamp::from_second(now).unwrap_or_else(|_| Timestamp::now());
    let from: Timestamp = match (q.date.as_deref(), q.time.as_deref()) {
        (None, None) => now,
        (date, time) => {
            let date = match date {
                Some(d) => parse_date_param(d)?,
                None => now.to_zoned(tz.clone()).date(),
            };
            let secs = match time {
                Some(t) => parse_time(t.as_bytes())
                    .filter(|&v| v < 48 * 3600)
                    .ok_or_else(|| {
                        ApiError::invalid("time", format!("'{t}' is not a time like 08:30:00"))
                    })?,
                None => 0,
            };
            let midnight = date
                .to_zoned(tz.clone())
                .map_err(|e| ApiError::invalid("date", e.to_string()))?
                .timestamp();
            midnight
                .checked_add(jiff::SignedDuration::from_secs(i64::from(secs)))
                .map_err(|_| ApiError::invalid("date", "the date is out of range"))?
        }
    };
    let until = from
        .checked_add(jiff::SignedDuration::from_mins(i64::from(window)))
        .map_err(|_| ApiError::invalid("date", "the date is out of range"))?;
    Ok((s, from, until, limit))
}

/// A stop time of a trip.
#[derive(Debug, Serialize, ToSchema)]
pub struct TripStopTime {
    stop_sequence: u32,
    stop_id: String,
    stop_name: String,
    arrival_time: String,
    departure_time: String,
    shape_dist_traveled: Option<f64>,
    pickup_type: u8,
    drop_off_type: u8,
    timepoint: bool,
    /// The feed left this time empty; it was interpolated.
    interpolated: bool,
}

/// A headway period of a frequency-based trip.
#[derive(Debug, Serialize, ToSchema)]
pub struct TripFrequency {
    start_time: String,
    end_time: String,
    headway_secs: u32,
    exact_times: bool,
}

/// A trip with its stop times.
#[derive(Debug, Serialize, ToSchema)]
pub struct TripDto {
    trip_id: String,
    route_id: String,
    service_id: String,
    headsign: Option<String>,
    short_name: Option<String>,
    direction_id: Option<u8>,
    block_id: Option<String>,
    shape_id: Option<String>,
    stop_times: Vec<TripStopTime>,
    frequencies: Vec<TripFrequency>,
}

/// One trip with its stop times and frequencies.
#[utoipa::path(get, path = "/api/v1/trips/{trip_id}", tag = "transit", params(("trip_id" = String, Path)),
    responses((status = 200, body = TripDto), (status = 404, body = ErrorBody)))]
pub async fn trip(
    State(state): State<AppState>,
    Path(trip_id): Path<String>,
) -> Result<Json<TripDto>, ApiError> {
    let served = served(&state)?;
    let d = served.network.data();
    let t = d
        .trips
        .ids
        .get(&trip_id)
        .ok_or_else(|| ApiError::not_found(format!("no trip '{trip_id}'")))?;
    let i = t as usize;
    let st = &d.stop_times;
    Ok(Json(TripDto {
        trip_id: trip_id.clone(),
        route_id: d.route_ids.id(d.trips.route[i]).to_owned(),
        service_id: d.services.ids.id(d.trips.service[i]).to_owned(),
        headsign: d.string(d.trips.headsign[i]).map(str::to_owned),
        short_name: d.string(d.trips.short_name[i]).map(str::to_owned),
        direction_id: (d.trips.direction[i] < 2).then_some(d.trips.direction[i]),
        block_id: d.string(d.trips.block[i]).map(str::to_owned),
        shape_id: (d.trips.shape[i] != NONE).then(|| d.shapes.ids.id(d.trips.shape[i]).to_owned()),
        stop_times: d
            .trips
            .stop_time_range(t)
            .map(|k| TripStopTime {
                stop_sequence: st.sequence[k],
                stop_id: d.stops.ids.id(st.stop[k]).to_owned(),
                stop_name: d.stops.names[st.stop[k] as usize].clone(),
                arrival_time: format_time(st.arrival[k]),
                departure_time: format_time(st.departure[k]),
                shape_dist_traveled: Some(f64::from(st.shape_dist[k])).filter(|v| v.is_finite()),
                pickup_type: st.flags[k] & flags::PICKUP_MASK,
                drop_off_type: (st.flags[k] >> flags::DROP_OFF_SHIFT) & 0b11,
                timepoint: st.flags[k] & flags::TIMEPOINT != 0,
                interpolated: st.flags[k] & flags::INTERPOLATED != 0,
            })
            .collect(),
        frequencies: d
            .frequencies
            .iter()
            .filter(|f| f.trip == t)
            .map(|f| TripFrequency {
                start_time: format_time(f.start),
                end_time: format_time(f.end),
                headway_secs: f.headway,
                exact_times: f.exact_times,
            })
            .collect(),
    }))
}

/// Which day to describe.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// `YYYY-MM-DD` (default: today in the network's time zone).
    date: Option<String>,
}

/// The service running on a date.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarDay {
    date: String,
    /// Services active that day.
    service_ids: Vec<String>,
    /// Trips that run that day.
    trips: usize,
}

/// Services and trip count on a date.
#[utoipa::path(get, path = "/api/v1/calendar", tag = "transit", params(CalendarQuery),
    responses((status = 200, body = CalendarDay), (status = 400, body = ErrorBody)))]
pub async fn calendar(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CalendarQuery>,
) -> Result<Json<CalendarDay>, ApiError> {
    let served = served(&state)?;
    let network = &served.network;
    let date = match q.date.as_deref() {
        Some(d) => parse_date_param(d)?,
        None => Timestamp::now().to_zoned(network.timezone().clone()).date(),
    };
    let active = network.active_services(date);
    let d = network.data();
    let trips = d
        .trips
        .service
        .iter()
        .filter(|s| active.binary_search(s).is_ok())
        .count();
    Ok(Json(CalendarDay {
        date: date.to_string(),
        service_ids: active
            .iter()
            .map(|&s| d.services.ids.id(s).to_owned())
            .collect(),
        trips,
    }))
}
