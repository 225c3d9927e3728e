//! The HTTP API driven in process (no socket), on both storage engines,
//! over a generated city.

use std::io::Write;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cityos_accounts::{Access, Principal, Role};
use cityos_server::auth::ENDPOINTS;
use cityos_server::{AppState, Served, UiConfig, app, import_feed};
use cityos_store::{Store, testing};
use serde_json::Value;
use tower::ServiceExt;

/// A generated small city as a zip, and its folder.
fn city(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let feed = dir.join("city");
    cityos_sim::generate_city(&cityos_sim::CityOptions::default(), &feed).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for entry in std::fs::read_dir(&feed).unwrap() {
        let entry = entry.unwrap();
        zip.start_file(
            entry.file_name().to_string_lossy(),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(entry.path()).unwrap())
            .unwrap();
    }
    (feed, zip.finish().unwrap().into_inner())
}

struct Harness {
    app: Router,
    state: AppState,
    _dir: tempfile::TempDir,
    zip: Vec<u8>,
}

async fn harness(store: Store, dir: tempfile::TempDir) -> Harness {
    let (feed, zip) = city(dir.path());
    let mut state = AppState::new(
        store.clone(),
        UiConfig {
            basemap_url: None,
            city_name: "Test City".into(),
        },
    );
    state
        .start_cards(cityos_fare::FareRules::seoul_toml())
        .await
        .unwrap();
    state
        .start_civic(cityos_civic::Settings::new(dir.path()))
        .await
        .unwrap();
    let imported = import_feed(&store, feed, "test", |_| {}).await.unwrap();
    state.network.set(
        Served {
            id: imported.record.id,
            network: std::sync::Arc::new(imported.network),
        },
        &state.metrics,
    );
    Harness {
        app: app(state.clone()),
        state,
        _dir: dir,
        zip,
    }
}

async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&testing::sqlite_path(dir.path()))
        .await
        .unwrap();
    harness(store, dir).await
}

async fn postgres() -> Option<Harness> {
    let url = testing::postgres_url().await?;
    Some(
        harness(
            Store::open(&url).await.unwrap(),
            tempfile::tempdir().unwrap(),
        )
        .await,
    )
}

/// Runs the scenario `$scenario(Harness)` as one test per engine.
macro_rules! on_both_engines {
    ($scenario:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $scenario(sqlite().await).await;
        }

        #[tokio::test]
        async fn $postgres() {
            if let Some(h) = postgres().await {
                $scenario(h).await;
            }
        }
    };
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        // A live stream never ends: its first event is what a client sees.
        let body = if headers
            .get("content-type")
            .is_some_and(|v| v == "text/event-stream")
        {
            let mut stream = response.into_body().into_data_stream();
            let first = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                futures_util::StreamExt::next(&mut stream),
            )
            .await
            .expect("a first event");
            first
                .map(|chunk| chunk.unwrap().to_vec())
                .unwrap_or_default()
        } else {
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        json: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match json {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    async fn token(&self, role: Role) -> String {
        let email = format!("{}-{}@example.org", role.as_str(), rand_suffix());
        self.state
            .accounts
            .create_user(&email, "a long enough password", "Tester", role)
            .await
            .unwrap();
        self.state
            .accounts
            .login(&email, "a long enough password")
            .await
            .unwrap()
            .1
    }

    fn network(&self) -> std::sync::Arc<Served> {
        self.state.network.get().unwrap()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// The reply's JSON, once its status is checked (showing the body when it differs).
fn json_of(reply: &Reply, status: StatusCode) -> Value {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn assert_error_shape(reply: &Reply, status: StatusCode, code: &str) {
    let v = json_of(reply, status);
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

/// Walks every declared endpoint with every kind of caller: nobody reaches what they must not,
/// and everybody allowed gets past the check.
async fn role_matrix(h: Harness) {
    let served = h.network();
    let d = served.network.data();
    let stop_id = d.stops.ids.id(d.stop_times.stop[0]).to_owned();
    let route_id = d.route_ids.id(0).to_owned();
    let trip_id = d.trips.ids.id(0).to_owned();
    let mut callers: Vec<(String, Principal, Option<String>)> =
        vec![("anonymous".into(), Principal::Anonymous, None)];
    for role in Role::ALL {
        let token = h.token(role).await;
        let principal = h.state.accounts.authenticate(&token).await.unwrap();
        callers.push((role.as_str().into(), principal, Some(token)));
    }
    let (_, key) = h
        .state
        .accounts
        .create_api_key("depot", Role::TransitOperator, None)
        .await
        .unwrap();
    callers.push((
        "api key (transit_operator)".into(),
        h.state.accounts.authenticate(&key).await.unwrap(),
        Some(key),
    ));

    for (method, pattern, access) in ENDPOINTS {
        let uri = pattern
            .replace("{stop_id}", &stop_id)
            .replace("{route_id}", &route_id)
            .replace("{trip_id}", &trip_id)
            .replace("{user_id}", "1")
            .replace("{key_id}", "999999")
            .replace("{network_id}", "999999")
            .replace("{card_id}", "1000000000000001")
            .replace("{file}", "ridership.txt")
            .replace("{complaint_id}", "999999")
            .replace("{photo_id}", "1");
        let uri = if *pattern == "/api/v1/stops/nearby" {
            format!("{uri}?lat=37.56&lon=126.97")
        } else {
            uri
        };
        for (name, principal, token) in &callers {
            // Logging out would end the session the next endpoints use: use a throwaway one.
            let throwaway;
            let token = if *pattern == "/api/v1/accounts/logout" && token.is_some() {
                throwaway = h.token(principal.role().unwrap_or(Role::Citizen)).await;
                Some(throwaway.as_str())
            } else {
                token.as_deref()
            };
            let body = (*method != Method::GET && *method != Method::DELETE)
                .then(|| serde_json::json!({}));
            let reply = h.call(method.clone(), &uri, token, body).await;
            let allowed = access.allows(principal);
            if allowed {
                assert!(
                    reply.status != StatusCode::UNAUTHORIZED
                        && reply.status != StatusCode::FORBIDDEN,
                    "{name} must reach {method} {pattern} but got {}",
                    reply.status
                );
            } else {
                let expected = if matches!(principal, Principal::Anonymous) {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(
                    reply.status, expected,
                    "{name} must not reach {method} {pattern}"
                );
            }
            let unrouted = reply.status == StatusCode::NOT_FOUND
                && String::from_utf8_lossy(&reply.body).contains("no such endpoint");
            assert!(!unrouted, "{method} {uri} is declared but not routed");
        }
    }
}

on_both_engines!(role_matrix, role_matrix_on_sqlite, role_matrix_on_postgres);

#[tokio::test]
async fn every_api_endpoint_is_in_the_openapi_document_and_vice_versa() {
    let h = sqlite().await;
    let doc = h.get("/openapi.json").await.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (method, pattern, _) in ENDPOINTS {
        if [
            "/",
            "/app.js",
            "/app.css",
            "/board",
            "/board.js",
            "/complaints",
            "/staff",
            "/civic.js",
        ]
        .contains(pattern)
        {
            continue;
        }
        let operation = paths
            .get(*pattern)
            .and_then(|p| p.get(method.as_str().to_lowercase()));
        assert!(
            operation.is_some(),
            "{method} {pattern} is missing from the OpenAPI document"
        );
    }
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            assert!(
                ENDPOINTS.iter().any(|(em, ep, _)| *em == m && ep == path),
                "{method} {path} is documented but not declared"
            );
        }
    }
    let docs = h.get("/docs/").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&docs.body).contains("swagger"),
        "the browsable API page is served"
    );
}

#[tokio::test]
async fn errors_have_one_shape_and_say_what_is_wrong() {
    let h = sqlite().await;
    assert_error_shape(
        &h.get("/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error_shape(
        &h.call(Method::DELETE, "/api/v1/stops", None, None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let bad_lat = h.get("/api/v1/stops/nearby?lat=abc&lon=126.9").await;
    assert_error_shape(&bad_lat, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(
        bad_lat.json()["error"]["field"],
        "lat",
        "{}",
        bad_lat.json()
    );
    let far = h.get("/api/v1/stops/nearby?lat=95&lon=126.9").await;
    assert_eq!(far.json()["error"]["field"], "lat");
    let limit = h.get("/api/v1/stops?limit=0").await;
    assert_eq!(limit.json()["error"]["field"], "limit");
    let kind = h.get("/api/v1/routes?kind=zeppelin").await;
    assert_eq!(kind.json()["error"]["field"], "kind");
    assert_error_shape(
        &h.get("/api/v1/stops/NOPE/departures").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let date = h
        .get(&format!(
            "/api/v1/stops/{}/departures?date=2026-02-30",
            h.network().network.data().stops.ids.id(0)
        ))
        .await;
    assert_eq!(date.json()["error"]["field"], "date");
    let time = h
        .get(&format!(
            "/api/v1/stops/{}/departures?time=25:6x:00",
            h.network().network.data().stops.ids.id(0)
        ))
        .await;
    assert_eq!(time.json()["error"]["field"], "time");
    // Bodies: malformed JSON, no content type, too large.
    let malformed = h
        .send(
            Request::post("/api/v1/accounts/login")
                .header("content-type", "application/json")
                .body(Body::from("{nope"))
                .unwrap(),
        )
        .await;
    assert_error_shape(&malformed, StatusCode::BAD_REQUEST, "bad_request");
    let untyped = h
        .send(
            Request::post("/api/v1/accounts/login")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_error_shape(
        &untyped,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = "x".repeat(2 << 20);
    let too_large = h
        .send(
            Request::post("/api/v1/accounts/register")
                .header("content-type", "application/json")
                .body(Body::from(huge))
                .unwrap(),
        )
        .await;
    assert_error_shape(
        &too_large,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let weak = h
        .call(
            Method::POST,
            "/api/v1/accounts/register",
            None,
            Some(serde_json::json!({"email": "a@b.org", "password": "short", "name": "A"})),
        )
        .await;
    assert_eq!(weak.json()["error"]["field"], "password");
}

#[tokio::test]
async fn departures_are_the_stops_trips_in_time_order_within_the_window() {
    let h = sqlite().await;
    let served = h.network();
    let d = served.network.data();
    // A subway station: departures come from the platforms of each line.
    let station = (0..d.stops.len())
        .find(|&s| d.stops.location_type[s] == 1 && served.network.children(s as u32).len() >= 2)
        .unwrap();
    let station_id = d.stops.ids.id(station as u32);
    let board = h.get(&format!("/api/v1/stops/{station_id}/departures?date=2026-03-04&time=08:00:00&window_minutes=30&limit=100")).await.json();
    assert_eq!(board["timezone"], "Asia/Seoul");
    assert_eq!(board["time"], "08:00:00");
    let items = board["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let platforms: std::collections::HashSet<&str> = items
        .iter()
        .map(|i| i["stop_id"].as_str().unwrap())
        .collect();
    assert!(
        platforms.len() >= 2,
        "departures from several platforms: {platforms:?}"
    );
    let mut previous = String::new();
    for item in items {
        let at = item["departure"].as_str().unwrap().to_owned();
        assert!(at >= previous, "sorted by time");
        assert!(
            at.as_str() >= "2026-03-04T08:00:00+09:00"
                && at.as_str() <= "2026-03-04T08:30:00+09:00",
            "{at}"
        );
        assert!((0..=30).contains(&item["minutes_away"].as_i64().unwrap()));
        previous = at;
        // The trip really calls there, at that time.
        let trip = h
            .get(&format!(
                "/api/v1/trips/{}",
                item["trip_id"].as_str().unwrap()
            ))
            .await
            .json();
        let calls = trip["stop_times"].as_array().unwrap();
        assert!(
            calls.iter().any(|c| c["stop_id"] == item["stop_id"]
                && c["departure_time"] == item["departure_time"])
        );
    }
    // Weekday and Sunday service differ; the calendar says which services run.
    let weekday = h.get("/api/v1/calendar?date=2026-03-04").await.json();
    let sunday = h.get("/api/v1/calendar?date=2026-03-08").await.json();
    assert_ne!(weekday["service_ids"], sunday["service_ids"]);
    assert!(weekday["trips"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_last_bus_of_each_line_is_marked_on_the_board() {
    let h = sqlite().await;
    let served = h.network();
    let d = served.network.data();
    // The stop most routes call at, over the whole service day.
    let stop = (0..d.stops.len() as u32)
        .max_by_key(|&s| served.network.routes_at(s).len())
        .unwrap();
    let stop_id = d.stops.ids.id(stop);
    // A day from 05:00 holds all of Wednesday's departures but its first
    // (never a last one) and all of its night's, and the next day's first
    // buses, which are left out here.
    let board = h
        .get(&format!("/api/v1/stops/{stop_id}/departures?date=2026-03-04&time=05:00:00&window_minutes=1440&limit=1000"))
        .await
        .json();
    let items: Vec<&serde_json::Value> = board["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["service_date"] == "2026-03-04")
        .collect();
    let line = |item: &serde_json::Value| {
        let trip = d.trips.ids.get(item["trip_id"].as_str().unwrap()).unwrap();
        (
            d.trips.route[trip as usize],
            d.trips.direction[trip as usize],
        )
    };
    let mut last_seen = std::collections::HashMap::new();
    for (k, item) in items.iter().enumerate() {
        last_seen.insert(line(item), k);
    }
    assert!(last_seen.len() >= 2, "several lines call at the stop");
    for (k, item) in items.iter().enumerate() {
        assert_eq!(
            item["last_of_day"],
            last_seen[&line(item)] == k,
            "item {k}: {item}"
        );
    }
}

#[tokio::test]
async fn listings_search_nearby_and_geojson_agree_with_the_network() {
    let h = sqlite().await;
    let served = h.network();
    let summary = h.get("/api/v1/network").await.json();
    assert_eq!(
        summary["routes"].as_u64().unwrap() as usize,
        served.network.data().routes.len()
    );
    let routes = h.get("/api/v1/routes.geojson").await;
    assert_eq!(routes.headers["content-type"], "application/geo+json");
    let routes = routes.json();
    assert_eq!(routes["type"], "FeatureCollection");
    let features = routes["features"].as_array().unwrap();
    assert_eq!(features.len(), served.network.data().routes.len());
    assert!(features.iter().all(|f| {
        f["geometry"]["type"] == "MultiLineString"
            && !f["geometry"]["coordinates"][0]
                .as_array()
                .unwrap()
                .is_empty()
    }));
    let kinds: std::collections::HashSet<&str> = features
        .iter()
        .map(|f| f["properties"]["kind"].as_str().unwrap())
        .collect();
    for kind in ["trunk", "branch", "circular", "night", "subway"] {
        assert!(
            kinds.contains(kind),
            "the generated city has {kind} routes: {kinds:?}"
        );
    }
    let trunk = h.get("/api/v1/routes?kind=trunk&limit=1000").await.json();
    assert!(
        trunk["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] == "trunk")
    );
    let stops = h.get("/api/v1/stops.geojson").await.json();
    let listed = h.get("/api/v1/stops?limit=1").await.json();
    assert_eq!(
        stops["features"].as_array().unwrap().len() as u64,
        listed["total"].as_u64().unwrap()
    );
    // Stations list their platforms, which are not features of their own.
    let features = stops["features"].as_array().unwrap();
    let platforms: Vec<&str> = features
        .iter()
        .flat_map(|f| f["properties"]["platforms"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        !platforms.is_empty(),
        "the generated city has subway platforms"
    );
    assert!(
        platforms
            .iter()
            .all(|p| features.iter().all(|f| f["properties"]["stop_id"] != *p))
    );
    // Search finds a stop by part of its name, and nearby finds it at its own position.
    let first = &stops["features"][0];
    let name = first["properties"]["name"].as_str().unwrap();
    let part: String = name.chars().take(3).collect();
    let found = h
        .get(&format!("/api/v1/stops?q={}", urlencode(&part)))
        .await
        .json();
    assert!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name),
        "{found}"
    );
    let [lon, lat] = [
        first["geometry"]["coordinates"][0].as_f64().unwrap(),
        first["geometry"]["coordinates"][1].as_f64().unwrap(),
    ];
    let near = h
        .get(&format!(
            "/api/v1/stops/nearby?lat={lat}&lon={lon}&radius=50"
        ))
        .await
        .json();
    assert_eq!(
        near["items"][0]["stop"]["stop_id"],
        first["properties"]["stop_id"]
    );
    assert!(near["items"][0]["distance_m"].as_f64().unwrap() < 1.0);
    let detail = h
        .get(&format!(
            "/api/v1/stops/{}",
            urlencode(first["properties"]["stop_id"].as_str().unwrap())
        ))
        .await
        .json();
    assert!(!detail["routes"].as_array().unwrap().is_empty());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn failed_import_keeps_serving(h: Harness) {
    let admin = h.token(Role::TransitOperator).await;
    let before = h.get("/api/v1/network").await.json()["id"].clone();
    // A feed with a bad time on a known line.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let files = [
        (
            "agency.txt",
            "agency_name,agency_url,agency_timezone\nBus,https://x.org,Asia/Seoul\n",
        ),
        (
            "stops.txt",
            "stop_id,stop_name,stop_lat,stop_lon\nA,A,37.5,127.0\nB,B,37.6,127.0\n",
        ),
        (
            "routes.txt",
            "route_id,route_short_name,route_type\nR,1,3\n",
        ),
        (
            "calendar.txt",
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nS,1,1,1,1,1,1,1,20260101,20261231\n",
        ),
        ("trips.txt", "route_id,service_id,trip_id\nR,S,T\n"),
        (
            "stop_times.txt",
            "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT,08:00:00,08:00:00,A,1\nT,25:6x:00,25:6x:00,B,2\n",
        ),
    ];
    for (name, text) in files {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    let bad = zip.finish().unwrap().into_inner();
    let upload = |body: Vec<u8>| {
        Request::post("/api/v1/admin/networks")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/zip")
            .body(Body::from(body))
            .unwrap()
    };
    let refused = h.send(upload(bad)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.json();
    assert_eq!(refused["error"]["code"], "invalid_feed");
    assert!(
        refused["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["file"] == "stop_times.txt"
                && e["line"] == 3
                && e["field"] == "arrival_time"),
        "{refused}"
    );
    assert_eq!(
        h.get("/api/v1/network").await.json()["id"],
        before,
        "the old network is still served"
    );
    let garbage = h.send(upload(b"not a zip".to_vec())).await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);

    let accepted = h.send(upload(h.zip.clone())).await;
    assert_eq!(
        accepted.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    let new_id = accepted.json()["network"]["id"].clone();
    assert_ne!(new_id, before);
    assert_eq!(h.get("/api/v1/network").await.json()["id"], new_id);
    // Roll back.
    let back = h
        .call(
            Method::POST,
            &format!("/api/v1/admin/networks/{before}/activate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(h.get("/api/v1/network").await.json()["id"], before);
}

on_both_engines!(
    failed_import_keeps_serving,
    failed_import_keeps_serving_on_sqlite,
    failed_import_keeps_serving_on_postgres
);

#[tokio::test]
async fn citizens_register_log_in_with_a_cookie_and_log_out() {
    let h = sqlite().await;
    let reg = h
        .call(Method::POST, "/api/v1/accounts/register", None, Some(serde_json::json!({"email": "Seoyeon@Example.org", "password": "a good long password", "name": "Seoyeon"})))
        .await;
    assert_eq!(reg.status, StatusCode::CREATED);
    assert_eq!(reg.json()["role"], "citizen");
    let again = h
        .call(Method::POST, "/api/v1/accounts/register", None, Some(serde_json::json!({"email": "seoyeon@example.org", "password": "a good long password", "name": "S"})))
        .await;
    assert_error_shape(&again, StatusCode::CONFLICT, "conflict");
    let wrong = h
        .call(
            Method::POST,
            "/api/v1/accounts/login",
            None,
            Some(
                serde_json::json!({"email": "seoyeon@example.org", "password": "wrong password!!"}),
            ),
        )
        .await;
    assert_error_shape(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    let login = h.call(Method::POST, "/api/v1/accounts/login", None, Some(serde_json::json!({"email": "seoyeon@example.org", "password": "a good long password"}))).await;
    assert_eq!(login.status, StatusCode::OK);
    let cookie = login.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("cityos_session="));
    assert!(
        login.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    let me = h
        .send(
            Request::get("/api/v1/accounts/me")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.json()["name"], "seoyeon@example.org");
    let out = h
        .send(
            Request::post("/api/v1/accounts/logout")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = h
        .send(
            Request::get("/api/v1/accounts/me")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_error_shape(&after, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn health_and_metrics_report_the_served_network_and_requests() {
    let h = sqlite().await;
    let health = h.get("/health").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "sqlite");
    h.get("/api/v1/routes").await;
    let metrics = String::from_utf8(h.get("/metrics").await.body).unwrap();
    assert!(
        metrics.contains(
            "cityos_http_requests_total{method=\"GET\",path=\"/api/v1/routes\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    let stop_times = h.network().network.data().stop_times.len();
    assert!(
        metrics.contains(&format!("cityos_network_stop_times {stop_times}")),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_page_and_its_assets_are_served() {
    let h = sqlite().await;
    let page = h.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page.body).contains("<canvas"));
    assert_eq!(
        h.get("/app.js").await.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        h.get("/api/v1/ui-config").await.json()["city_name"],
        "Test City"
    );
}

#[test]
fn every_declared_access_rule_is_well_formed() {
    for (_, pattern, access) in ENDPOINTS {
        if pattern.starts_with("/api/v1/admin") {
            assert!(
                matches!(access, Access::Roles(_)),
                "{pattern} must need a staff role"
            );
        }
    }
}

#[tokio::test]
async fn large_answers_are_compressed_for_clients_that_accept_it() {
    let h = sqlite().await;
    let plain = h.get("/api/v1/stops.geojson").await;
    let gzipped = h
        .send(
            Request::get("/api/v1/stops.geojson")
                .header("accept-encoding", "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(gzipped.headers["content-encoding"], "gzip");
    assert!(
        gzipped.body.len() * 3 < plain.body.len(),
        "{} vs {} bytes",
        gzipped.body.len(),
        plain.body.len()
    );
}

/// A rider's day through the HTTP API: a citizen gets a card, a top-up machine
/// funds it, validators send taps (one late, one repeated), and the city sees
/// fares, ridership and an audit that holds.
async fn card_day(h: Harness) {
    let served = h.network();
    let d = served.network.data();
    // A bus route with at least three stops on one trip.
    let trip = (0..d.trips.len() as u32)
        .find(|&t| {
            d.routes[d.trips.route[t as usize] as usize].kind() == cityos_transit::RouteKind::Trunk
                && d.trips.stop_time_range(t).len() > 8
        })
        .unwrap();
    let range = d.trips.stop_time_range(trip);
    let route_id = d.route_ids.id(d.trips.route[trip as usize]).to_owned();
    let stop = |k: usize| {
        d.stops
            .ids
            .id(d.stop_times.stop[range.start + k])
            .to_owned()
    };

    let citizen = h.token(Role::Citizen).await;
    let operator = h.token(Role::TransitOperator).await;
    let issued = h
        .call(
            Method::POST,
            "/api/v1/cards",
            Some(&citizen),
            Some(serde_json::json!({"op_id": "c1", "category": "adult"})),
        )
        .await;
    assert_eq!(
        issued.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    let card_id = issued.json()["card_id"].as_i64().unwrap();
    let bad = h
        .call(
            Method::POST,
            &format!("/api/v1/cards/{card_id}/top-ups"),
            Some(&operator),
            Some(serde_json::json!({"op_id": "t0", "amount": 600000})),
        )
        .await;
    assert_eq!(bad.json()["error"]["field"], "amount");
    let top = h
        .call(
            Method::POST,
            &format!("/api/v1/cards/{card_id}/top-ups"),
            Some(&operator),
            Some(serde_json::json!({"op_id": "t1", "amount": 10000})),
        )
        .await;
    assert_eq!(top.json()["balance"], 10000);

    let tap = |counter: i64, direction: &str, k: usize, time: &str| {
        serde_json::json!({"card_id": card_id, "validator_id": "bus-1", "counter": counter, "direction": direction,
            "stop_id": stop(k), "route_id": route_id, "mode": "trunk", "at": format!("2026-03-04T{time}")})
    };
    let first = h
        .call(
            Method::POST,
            "/api/v1/taps",
            Some(&operator),
            Some(tap(1, "in", 0, "08:00:00")),
        )
        .await;
    assert_eq!(first.json()["result"], "tap_accepted", "{}", first.json());
    assert_eq!(first.json()["amount"], 1500);
    // A batch from a validator that was offline: the second tap repeats counter 1.
    let batch = h
        .call(
            Method::POST,
            "/api/v1/taps",
            Some(&operator),
            Some(serde_json::json!([
                tap(2, "out", 6, "08:20:00"),
                tap(1, "in", 0, "08:00:00")
            ])),
        )
        .await;
    let answers = batch.json();
    assert_eq!(
        answers[1],
        first.json(),
        "a repeated counter is answered as before"
    );
    let card = h
        .call(
            Method::GET,
            &format!("/api/v1/cards/{card_id}"),
            Some(&citizen),
            None,
        )
        .await
        .json();
    assert_eq!(
        card["balance"].as_i64().unwrap(),
        10000 - 1500 - answers[0]["amount"].as_i64().unwrap()
    );
    // Another citizen cannot see the card.
    let other = h.token(Role::Citizen).await;
    assert_eq!(
        h.call(
            Method::GET,
            &format!("/api/v1/cards/{card_id}"),
            Some(&other),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let history = h
        .call(
            Method::GET,
            &format!("/api/v1/cards/{card_id}/history"),
            Some(&citizen),
            None,
        )
        .await
        .json();
    assert_eq!(
        history.as_array().unwrap().len(),
        4,
        "issue, top-up and two taps: {history}"
    );

    let quote = h
        .call(Method::POST, "/api/v1/fares/quote", None, Some(serde_json::json!({"category": "youth", "taps": [
            {"at": "2026-03-04T08:00:00", "kind": "in", "stop_id": stop(0), "route_id": route_id, "mode": "trunk"},
            {"at": "2026-03-04T08:20:00", "kind": "out", "stop_id": stop(6), "route_id": route_id, "mode": "trunk"}]})))
        .await;
    assert_eq!(
        quote.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&quote.body)
    );
    assert!(
        quote.json()["total"].as_i64().unwrap() >= 900,
        "youth trunk fare: {}",
        quote.json()
    );
    let bad_quote = h
        .call(
            Method::POST,
            "/api/v1/fares/quote",
            None,
            Some(serde_json::json!({"category": "pensioner", "taps": []})),
        )
        .await;
    assert_eq!(bad_quote.status.as_u16() / 100, 4);

    let ridership = h.get("/api/v1/ridership?date=2026-03-04").await.json();
    assert_eq!(
        h.get("/api/v1/ridership?date=2026-03-05").await.json()["by_hour"][8]["boardings"],
        0
    );
    assert_eq!(
        h.get("/api/v1/ridership?date=someday").await.json()["error"]["field"],
        "date"
    );
    assert_eq!(ridership["by_hour"][8]["boardings"], 1);
    assert!(ridership["stops"][0]["lat"].as_f64().is_some());
    let ride = String::from_utf8(h.get("/api/v1/ridership/ridership.txt").await.body).unwrap();
    assert!(
        ride.starts_with("total_boardings,total_alightings,"),
        "{ride}"
    );
    let audit = h
        .call(
            Method::GET,
            "/api/v1/admin/fares/audit",
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(
        audit.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&audit.body)
    );
    assert_eq!(audit.json()["database_sum"], 0);
    // Operators see the durable taps in /metrics.
    let metrics = String::from_utf8(h.get("/metrics").await.body).unwrap();
    for line in [
        "cityos_card_taps_total{result=\"accepted\"} 2",
        "cityos_card_commit_failures_total 0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

on_both_engines!(card_day, card_day_on_sqlite, card_day_on_postgres);

/// An Open311 form POST, as FixMyStreet's client sends one.
async fn post_form(h: &Harness, uri: &str, body: &str) -> Reply {
    h.send(
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

fn open311_error(reply: &Reply, status: StatusCode, mentions: &str) {
    let v = json_of(reply, status);
    assert_eq!(v[0]["code"], status.as_u16(), "{v}");
    let description = v[0]["description"].as_str().unwrap();
    assert!(
        description.contains(mentions),
        "{description} should mention {mentions}"
    );
}

/// The GeoReport v2 conversation of a client: services, a definition, filing with
/// an API key, listing with filters, one request, a batch token, and the standard errors.
async fn open311(h: Harness) {
    let (_, key) = h
        .state
        .accounts
        .create_api_key("fixmystreet", Role::Citizen, None)
        .await
        .unwrap();
    let services = h.get("/open311/v2/services.json").await.json();
    assert!(
        services
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service_code"] == "pothole" && s["metadata"] == true)
    );
    let xml = h.get("/open311/v2/services.xml").await;
    assert!(
        xml.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    assert!(
        String::from_utf8_lossy(&xml.body)
            .contains("<services><service><service_code>pothole</service_code>")
    );
    let definition = h
        .get("/open311/v2/services/streetlight.json?jurisdiction_id=seoul.go.kr")
        .await
        .json();
    assert_eq!(definition["attributes"][1]["datatype"], "multivaluelist");
    open311_error(
        &h.get("/open311/v2/services/zeppelin.json").await,
        StatusCode::NOT_FOUND,
        "zeppelin",
    );
    open311_error(
        &h.get("/open311/v2/services.json?jurisdiction_id=nyc.gov")
            .await,
        StatusCode::NOT_FOUND,
        "jurisdiction_id",
    );

    let form = "service_code=pothole&lat=37.5660&long=126.9780&attribute%5Blane%5D=car_lane&description=Deep+hole&email=minji%40example.org&first_name=Minji";
    open311_error(
        &post_form(&h, "/open311/v2/requests.json", form).await,
        StatusCode::FORBIDDEN,
        "api_key",
    );
    open311_error(
        &post_form(
            &h,
            "/open311/v2/requests.json",
            &format!("{form}&api_key=cos_k_nope"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "api_key",
    );
    let bad = post_form(
        &h,
        "/open311/v2/requests.json",
        &format!("api_key={key}&service_code=pothole&lat=37.5&long=126.9&attribute[lane]=sky"),
    )
    .await;
    open311_error(&bad, StatusCode::BAD_REQUEST, "attribute[lane]");
    let outside = post_form(
        &h,
        "/open311/v2/requests.xml",
        &format!("api_key={key}&service_code=pothole&lat=35.1&long=129.0"),
    )
    .await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&outside.body)
            .contains("<errors><error><code>400</code><description>lat:")
    );

    let created = post_form(
        &h,
        "/open311/v2/requests.json",
        &format!("api_key={key}&{form}"),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let id = created.json()[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = post_form(
        &h,
        "/open311/v2/requests.json",
        &format!("api_key={key}&{form}"),
    )
    .await
    .json();
    assert!(
        again[0]["service_notice"].as_str().unwrap().contains(&id),
        "a duplicate is pointed out: {again}"
    );

    let one = h
        .get(&format!("/open311/v2/requests/{id}.json"))
        .await
        .json();
    assert_eq!(one[0]["status"], "open");
    assert_eq!(one[0]["agency_responsible"], "Road Management Division");
    assert!(
        one[0]["requested_datetime"]
            .as_str()
            .unwrap()
            .ends_with("+09:00")
    );
    assert!(
        !one.to_string().contains("minji"),
        "no personal data: {one}"
    );
    let xml =
        String::from_utf8(h.get(&format!("/open311/v2/requests/{id}.xml")).await.body).unwrap();
    assert!(xml.contains(&format!(
        "<service_requests><request><service_request_id>{id}</service_request_id>"
    )));
    open311_error(
        &h.get("/open311/v2/requests/987654.json").await,
        StatusCode::NOT_FOUND,
        "987654",
    );

    let batch = post_form(
        &h,
        "/open311/v2/requests.json",
        &format!("api_key={key}&service_code=noise&address_string=Sejong-daero+110"),
    )
    .await
    .json();
    let token = batch[0]["token"].as_str().unwrap();
    let found = h
        .get(&format!("/open311/v2/tokens/{token}.json"))
        .await
        .json();
    assert!(found[0]["service_request_id"].as_str().is_some());

    let all = h.get("/open311/v2/requests.json").await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let potholes = h
        .get("/open311/v2/requests.json?service_code=pothole&status=open")
        .await
        .json();
    assert_eq!(potholes.as_array().unwrap().len(), 2);
    let closed = h
        .get("/open311/v2/requests.json?status=closed")
        .await
        .json();
    assert_eq!(closed.as_array().unwrap().len(), 0);
    let old = h.get("/open311/v2/requests.json?start_date=2010-01-01T00:00:00Z&end_date=2010-02-01T00:00:00Z").await.json();
    assert_eq!(old.as_array().unwrap().len(), 0);
    let by_id = h
        .get(&format!(
            "/open311/v2/requests.json?service_request_id={id}&service_code=noise&status=closed"
        ))
        .await
        .json();
    assert_eq!(
        by_id.as_array().unwrap().len(),
        1,
        "service_request_id overrides the other filters"
    );
    open311_error(
        &h.get("/open311/v2/requests.json?status=pending").await,
        StatusCode::BAD_REQUEST,
        "status",
    );
    open311_error(
        &h.get("/open311/v2/requests.json?start_date=yesterday")
            .await,
        StatusCode::BAD_REQUEST,
        "start_date",
    );
    let discovery = h.get("/open311/discovery.json").await.json();
    assert_eq!(
        discovery["endpoints"][0]["url"],
        "http://localhost/open311/v2"
    );
    open311_error(
        &h.get("/open311/v2/nothing.json").await,
        StatusCode::NOT_FOUND,
        "nothing",
    );
}

on_both_engines!(open311, open311_on_sqlite, open311_on_postgres);

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(w, h, image::Rgb([10, 120, 200]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn multipart(bytes: &[u8], content_type: &str) -> (String, Vec<u8>) {
    let boundary = "cityosboundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p\"\r\nContent-Type: {content_type}\r\n\r\n").into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A citizen files through the page's API with a photo, staff work the complaint,
/// the citizen is notified of public updates only, and nobody else sees who filed.
async fn complaint_desk(h: Harness) {
    let citizen = h.token(Role::Citizen).await;
    let other = h.token(Role::Citizen).await;
    let staff = h.token(Role::DepartmentStaff).await;
    let bad = h
        .call(Method::POST, "/api/v1/complaints", Some(&citizen), Some(serde_json::json!({"service_code": "streetlight", "lat": 37.566, "long": 126.978, "attributes": {"problems": ["out", "on fire"]}})))
        .await;
    assert_error_shape(&bad, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(bad.json()["error"]["field"], "attribute[problems]");
    let filed = h
        .call(Method::POST, "/api/v1/complaints", Some(&citizen), Some(serde_json::json!({"service_code": "streetlight", "lat": 37.566, "long": 126.978, "description": "Dark", "attributes": {"problems": ["out"], "side": "left"}})))
        .await;
    assert_eq!(
        filed.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&filed.body)
    );
    let id = filed.json()["complaint"]["id"].as_i64().unwrap();
    // Operators see the open complaint in /metrics, under its department.
    let department = filed.json()["complaint"]["department"].clone();
    let metrics = String::from_utf8(h.get("/metrics").await.body).unwrap();
    assert!(
        metrics.contains(&format!(
            "cityos_complaints_open{{department={department}}} 1"
        )),
        "{metrics}"
    );

    let (ct, body) = multipart(&png(800, 600), "image/png");
    let upload = |ct: String, body: Vec<u8>, token: String| {
        let h = &h;
        async move {
            h.send(
                Request::post(format!("/api/v1/complaints/{id}/photos"))
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", ct)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    let photo = upload(ct, body, citizen.clone()).await;
    assert_eq!(
        photo.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&photo.body)
    );
    let url = photo.json()["url"].as_str().unwrap().to_owned();
    let thumb = h.get(&format!("{url}?size=thumb")).await;
    assert_eq!(thumb.headers["content-type"], "image/png");
    let thumb = image::load_from_memory(&thumb.body).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 240));
    let (ct, body) = multipart(b"%PDF-1.4 not a photo", "image/png");
    let refused = upload(ct, body, citizen.clone()).await;
    assert_error_shape(&refused, StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(refused.json()["error"]["field"], "photo");
    let (ct, body) = multipart(&vec![0xFF; 7 << 20], "image/jpeg");
    assert_eq!(
        upload(ct, body, citizen.clone()).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (ct, body) = multipart(&png(10, 10), "image/png");
    assert_eq!(
        upload(ct, body, other.clone()).await.status,
        StatusCode::NOT_FOUND,
        "only its reporter or staff add photos"
    );

    let queue = h
        .call(
            Method::GET,
            "/api/v1/complaints?department=lighting",
            Some(&staff),
            None,
        )
        .await
        .json();
    assert_eq!(queue["complaints"][0]["id"], id);
    assert!(
        queue["complaints"][0]["reporter"]["email"]
            .as_str()
            .unwrap()
            .contains("citizen-")
    );
    let note = serde_json::json!({"text": "call the contractor", "public": false});
    let update = serde_json::json!({"status": "in_progress", "text": "A crew is on its way", "public": true});
    for body in [note, update] {
        let r = h
            .call(
                Method::POST,
                &format!("/api/v1/complaints/{id}/updates"),
                Some(&staff),
                Some(body),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let back = h
        .call(
            Method::POST,
            &format!("/api/v1/complaints/{id}/updates"),
            Some(&staff),
            Some(serde_json::json!({"status": "received", "public": true})),
        )
        .await;
    assert_error_shape(&back, StatusCode::CONFLICT, "conflict");
    let mine = h
        .call(
            Method::GET,
            &format!("/api/v1/complaints/{id}"),
            Some(&citizen),
            None,
        )
        .await
        .json();
    assert_eq!(mine["status"], "in_progress");
    assert!(mine.to_string().contains("A crew is on its way"));
    assert!(
        !mine.to_string().contains("contractor"),
        "internal notes stay internal: {mine}"
    );
    let stranger = h
        .call(
            Method::GET,
            &format!("/api/v1/complaints/{id}"),
            Some(&other),
            None,
        )
        .await
        .json();
    assert!(
        !stranger.to_string().contains("citizen-"),
        "no personal data: {stranger}"
    );
    let staff_view = h
        .call(
            Method::GET,
            &format!("/api/v1/complaints/{id}"),
            Some(&staff),
            None,
        )
        .await
        .json();
    assert!(staff_view.to_string().contains("contractor"));
    let notes = h
        .call(Method::GET, "/api/v1/notifications", Some(&citizen), None)
        .await
        .json();
    assert!(
        notes.to_string().contains("A crew is on its way"),
        "{notes}"
    );
    let mine = h
        .call(Method::GET, "/api/v1/complaints/mine", Some(&citizen), None)
        .await
        .json();
    assert_eq!(mine["complaints"][0]["id"], id);

    let hot = h
        .get("/api/v1/complaints/hotspots.geojson?resolution=7")
        .await
        .json();
    assert_eq!(hot["features"][0]["properties"]["count"], 1);
    let map = h.get("/api/v1/complaints/map.geojson").await.json();
    assert_eq!(map["features"][0]["properties"]["id"], id);
    assert_eq!(
        map["features"][0]["properties"]["service_name"],
        "Broken streetlight"
    );
    let charts = h.get("/api/v1/complaints/charts").await.json();
    assert_eq!(
        charts["volume"]["streetlight"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>(),
        1
    );
    let ranking = h.get("/api/v1/complaints/ranking?by=district").await.json();
    assert_eq!(ranking["ranking"][0]["code"], "jung");
    assert_eq!(
        h.get("/api/v1/complaints/ranking?by=colour").await.json()["error"]["field"],
        "by"
    );
    let catalog = h.get("/api/v1/complaints/catalog").await.json();
    assert_eq!(
        catalog["districts"]["features"].as_array().unwrap().len(),
        4
    );
    for page in ["/complaints", "/staff"] {
        let html = String::from_utf8(h.get(page).await.body).unwrap();
        assert!(html.contains("civic.js"), "{page}");
    }
}

on_both_engines!(
    complaint_desk,
    complaint_desk_on_sqlite,
    complaint_desk_on_postgres
);
