//! Live vehicles through the API: GTFS-realtime positions in; the
//! TripUpdates, VehiclePositions and ServiceAlerts feeds, vehicles, stop
//! boards, road speeds, incidents and history out, decoded again as any
//! client would. The feeds are left for the Python client test.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cityos_accounts::Role;
use cityos_realtime::gtfsrt::FeedMessage;
use cityos_realtime::synth::{SynthOptions, drive};
use cityos_server::realtime::PolledFeed;
use cityos_server::{AppState, Served, UiConfig, app};
use prost::Message as _;
use tower::ServiceExt;

mod common;
use common::{city, vehicle_ids};

/// Today's buses of `network`, reporting over the last ten minutes.
fn recent_positions(
    network: &cityos_transit::Network,
    now: i64,
) -> Vec<cityos_realtime::PositionRecord> {
    let today = jiff::Timestamp::now()
        .to_zoned(network.timezone().clone())
        .date();
    let positions = drive(
        network,
        &SynthOptions {
            date: today,
            window: now - 600..now,
            every_s: 20,
            gps_error_m: 5.0,
            seed: 3,
        },
    );
    assert!(
        !positions.is_empty(),
        "the generated city runs buses at this hour"
    );
    positions
}

#[tokio::test]
async fn positions_in_predictions_out_as_gtfs_realtime() {
    let dir = tempfile::tempdir().unwrap();
    let (state, network) = city(dir.path()).await;
    let (_, key) = state
        .accounts
        .create_api_key("avl gateway", Role::TransitOperator, None)
        .await
        .unwrap();
    let router = app(state.clone());

    let now = jiff::Timestamp::now().as_second();
    let positions = recent_positions(&network, now);
    let body = cityos_realtime::decode::positions_to_feed(&positions, now).encode_to_vec();
    let post = |body: Vec<u8>| {
        Request::post("/api/v1/vehicles/positions")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/x-protobuf")
            .body(Body::from(body))
            .unwrap()
    };
    let reply = router.clone().oneshot(post(body)).await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    cityos_server::realtime::refresh(&state).await;
    let summary: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(reply.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(summary["accepted"].as_u64().unwrap() > 0, "{summary}");

    // The TripUpdates feed decodes and predicts arrivals at stops ahead.
    let reply = router
        .clone()
        .oneshot(
            Request::get("/gtfs-rt/trip-updates")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(reply.headers()["content-type"], "application/x-protobuf");
    let bytes = axum::body::to_bytes(reply.into_body(), usize::MAX)
        .await
        .unwrap();
    let feed = FeedMessage::decode(bytes.as_ref()).unwrap();
    let updates: Vec<_> = feed
        .entity
        .iter()
        .filter_map(|e| e.trip_update.as_ref())
        .collect();
    assert!(!updates.is_empty(), "trips under way have predictions");
    assert!(updates.iter().all(|u| !u.stop_time_update.is_empty()));
    // Left for the Python client test (tests/python), which decodes it with gtfs-realtime-bindings.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gtfs-rt");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("trip-updates.pb"), &bytes).unwrap();
    let trips: Vec<&str> = updates
        .iter()
        .filter_map(|u| u.trip.trip_id.as_deref())
        .collect();
    std::fs::write(
        out.join("trip-updates.expected.json"),
        serde_json::json!({"trip_updates": updates.len(), "trip_ids": trips}).to_string(),
    )
    .unwrap();

    // The same feed for people, as JSON with GTFS-realtime's field names.
    let reply = router
        .clone()
        .oneshot(
            Request::get("/gtfs-rt/trip-updates?format=json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(reply.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["header"]["gtfs_realtime_version"], "2.0");
    assert!(
        json["entity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["trip_update"]["stop_time_update"][0]["arrival"]["time"].is_i64()),
        "{json}"
    );
    let reply = router
        .clone()
        .oneshot(
            Request::get("/gtfs-rt/trip-updates?format=xml")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);

    let out_dir = out.clone();
    live_views(&router, &state, &key, &out_dir, now).await;

    // Garbage is a 400 in the one error shape, and nobody else may post positions.
    let reply = router
        .clone()
        .oneshot(post(b"not protobuf at all".to_vec()))
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    let anonymous = Request::post("/api/v1/vehicles/positions")
        .body(Body::from(vec![]))
        .unwrap();
    assert_eq!(
        router.oneshot(anonymous).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let metrics = state.metrics.encode();
    assert!(
        metrics.contains("cityos_positions_accepted_total"),
        "{metrics}"
    );
}

async fn send(router: &axum::Router, request: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let reply = router.clone().oneshot(request).await.unwrap();
    let status = reply.status();
    (
        status,
        axum::body::to_bytes(reply.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, axum::body::Bytes) {
    send(router, Request::get(path).body(Body::empty()).unwrap()).await
}

async fn get_json(router: &axum::Router, path: &str) -> serde_json::Value {
    let (status, body) = get(router, path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

fn json_request(method: &str, path: &str, key: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Everything read from the live snapshot, after one batch of positions.
async fn live_views(
    router: &axum::Router,
    state: &AppState,
    key: &str,
    out: &std::path::Path,
    now: i64,
) {
    // Vehicles, with where they go next.
    let list = get_json(router, "/api/v1/vehicles").await;
    let vehicles = list["vehicles"].as_array().unwrap();
    assert!(!vehicles.is_empty(), "{list}");
    for v in vehicles {
        assert!(
            v["lat"].is_f64() && v["lon"].is_f64() && v["route_short_name"].is_string(),
            "{v}"
        );
    }
    let first = &vehicles[0];
    let one = get_json(
        router,
        &format!("/api/v1/vehicles/{}", first["vehicle_id"].as_str().unwrap()),
    )
    .await;
    let next = one["next_stops"].as_array().unwrap();
    assert!(!next.is_empty(), "{one}");
    assert!(
        next.windows(2)
            .all(|w| w[0]["expected"].as_i64() <= w[1]["expected"].as_i64())
    );
    let (status, _) = get(router, "/api/v1/vehicles/no-such-bus").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The VehiclePositions feed has every vehicle the API lists.
    let (status, bytes) = get(router, "/gtfs-rt/vehicle-positions").await;
    assert_eq!(status, StatusCode::OK);
    let feed = FeedMessage::decode(bytes.as_ref()).unwrap();
    let ids: Vec<&str> = feed
        .entity
        .iter()
        .filter_map(|e| e.vehicle.as_ref()?.vehicle.as_ref()?.id.as_deref())
        .collect();
    assert_eq!(ids.len(), vehicles.len());
    std::fs::write(out.join("vehicle-positions.pb"), &bytes).unwrap();
    std::fs::write(
        out.join("vehicle-positions.expected.json"),
        serde_json::json!({"vehicle_ids": ids}).to_string(),
    )
    .unwrap();

    // The stop board of a stop a vehicle is heading to shows its prediction.
    let boards = vehicles
        .iter()
        .filter_map(|v| Some((v["next_stop_id"].as_str()?, v["vehicle_id"].as_str()?)));
    let (mut predicted, mut step_free) = (0, 0);
    for (stop, vehicle) in boards.take(10) {
        let board = get_json(router, &format!("/api/v1/stops/{stop}/departures?limit=50")).await;
        assert!(board["realtime_at"].as_i64().unwrap() > 0);
        let items = board["items"].as_array().unwrap();
        if let Some(item) = items.iter().find(|i| i["vehicle_id"] == vehicle) {
            assert_eq!(item["realtime"], true, "{item}");
            assert!(item["expected_range"].is_array());
            // The vehicle is heading to this stop: it is its next one.
            assert_eq!(item["stops_away"], 1, "{item}");
            predicted += 1;
        }
        // The generated city's timetable says which vehicles take a wheelchair.
        assert!(
            items
                .iter()
                .all(|i| i["wheelchair_accessible"].is_boolean()),
            "{items:?}"
        );
        step_free += items
            .iter()
            .filter(|i| i["wheelchair_accessible"] == true)
            .count();
        // In the order they are expected.
        let expected: Vec<&str> = items
            .iter()
            .map(|i| i["expected"].as_str().unwrap())
            .collect();
        assert!(expected.windows(2).all(|w| w[0] <= w[1]), "{expected:?}");
    }
    assert!(predicted > 0, "no board showed the vehicle heading to it");
    assert!(step_free > 0, "no step-free departure on ten boards");

    // Road speeds as GeoJSON with TOPIS's congestion levels.
    let roads = get_json(router, "/api/v1/roads/speeds.geojson").await;
    let features = roads["features"].as_array().unwrap();
    assert!(
        !features.is_empty(),
        "vehicles drove between stops for ten minutes"
    );
    for f in features {
        assert_eq!(f["geometry"]["type"], "LineString");
        assert!(
            ["smooth", "slow", "congested"]
                .contains(&f["properties"]["congestion"].as_str().unwrap())
        );
    }
    let (status, _) = get(router, "/api/v1/roads/speeds.geojson?hour=24").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // JSON positions: a malformed one is refused saying what is wrong.
    let (status, body) = send(
        router,
        json_request(
            "POST",
            "/api/v1/vehicles/positions",
            key,
            serde_json::json!([{"vehicle_id": "x", "longitude": 127.0}]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&body).contains("latitude"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, body) = send(router, json_request("POST", "/api/v1/vehicles/positions", key, serde_json::json!({"vehicle_id": "x", "trip_id": "nope", "latitude": 37.56, "longitude": 126.97, "timestamp": now}))).await;
    assert_eq!(status, StatusCode::OK);
    let summary: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(summary["rejected"]["unknown_trip"], 1, "{summary}");

    // Incidents: validated field by field, then in the ServiceAlerts feed.
    let route = first["route_id"].as_str().unwrap();
    let (status, body) = send(router, json_request("POST", "/api/v1/incidents", key, serde_json::json!({"header": "x", "cause": "accident", "effect": "detour", "routes": ["no-such-route"]}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["field"], "routes");
    let incident = serde_json::json!({"header": "시청 앞 교통사고로 우회", "header_en": "Detour: accident at City Hall", "cause": "accident", "effect": "detour", "routes": [route]});
    let (status, body) = send(
        router,
        json_request("POST", "/api/v1/incidents", key, incident),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let created: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(created["status"], "active");
    let (status, _) = send(
        router,
        Request::post("/api/v1/incidents")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let public = get_json(router, "/api/v1/incidents").await;
    assert_eq!(public.as_array().unwrap().len(), 1);
    cityos_server::realtime::refresh(state).await;
    let (status, bytes) = get(router, "/gtfs-rt/service-alerts").await;
    assert_eq!(status, StatusCode::OK);
    let alerts = FeedMessage::decode(bytes.as_ref()).unwrap();
    assert_eq!(alerts.entity.len(), 1);
    let alert = alerts.entity[0].alert.as_ref().unwrap();
    assert_eq!(alert.informed_entity[0].route_id.as_deref(), Some(route));
    std::fs::write(out.join("service-alerts.pb"), &bytes).unwrap();
    std::fs::write(
        out.join("service-alerts.expected.json"),
        serde_json::json!({"route_id": route, "header_ko": "시청 앞 교통사고로 우회", "header_en": "Detour: accident at City Hall"}).to_string(),
    )
    .unwrap();
    let json = get_json(router, "/gtfs-rt/service-alerts?format=json").await;
    assert_eq!(json["entity"][0]["alert"]["effect"], "DETOUR", "{json}");
    // Resolved, it leaves the feed.
    let id = created["id"].as_i64().unwrap();
    let (status, _) = send(
        router,
        json_request(
            "PATCH",
            &format!("/api/v1/incidents/{id}"),
            key,
            serde_json::json!({"status": "over"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        router,
        json_request(
            "PATCH",
            &format!("/api/v1/incidents/{id}"),
            key,
            serde_json::json!({"status": "resolved"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    cityos_server::realtime::refresh(state).await;
    let json = get_json(router, "/gtfs-rt/service-alerts?format=json").await;
    assert!(
        json.get("entity")
            .is_none_or(|e| e.as_array().unwrap().is_empty()),
        "{json}"
    );

    // Arrivals detected are history, by trip and service date.
    let mut with_history = 0;
    for v in vehicles {
        let path = format!(
            "/api/v1/trips/{}/history?date={}",
            v["trip_id"].as_str().unwrap(),
            v["service_date"].as_str().unwrap()
        );
        let history = get_json(router, &path).await;
        if !history["events"].as_array().unwrap().is_empty() {
            with_history += 1;
        }
    }
    assert!(with_history > 0);

    // The map's live stream starts with every vehicle.
    let reply = router
        .clone()
        .oneshot(
            Request::get("/api/v1/vehicles/stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(reply.headers()["content-type"], "text/event-stream");
    let mut stream = reply.into_body().into_data_stream();
    let chunk = futures_util::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.starts_with("event: vehicles"), "{text}");
    assert!(text.contains(first["vehicle_id"].as_str().unwrap()));
}

/// System A: a city with buses reporting, served over HTTP; its base URL.
async fn system_a(dir: &std::path::Path) -> (AppState, String) {
    let (a, network) = city(dir).await;
    let now = jiff::Timestamp::now().as_second();
    let body = cityos_realtime::decode::positions_to_feed(&recent_positions(&network, now), now)
        .encode_to_vec();
    a.live
        .ingest(&a.network.get().unwrap(), &body, &a.metrics, None)
        .unwrap();
    cityos_server::realtime::refresh(&a).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app(a.clone())).into_future());
    (a, base)
}

/// Polls `url` from `b` as `kind` until `done` holds (or 20 s pass).
async fn poll_until(b: &AppState, url: String, kind: PolledFeed, done: impl Fn() -> bool) {
    let poller = tokio::spawn(cityos_server::realtime::poll_feed(
        b.clone(),
        url,
        kind,
        std::time::Duration::from_millis(200),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        cityos_server::realtime::refresh(b).await;
    }
    poller.abort();
}

#[tokio::test]
async fn another_systems_predictions_show_on_the_stop_boards() {
    let dir = tempfile::tempdir().unwrap();
    let (a, base) = system_a(dir.path()).await;
    // B has no vehicles of its own, only A's TripUpdates.
    let (b, _) = city(dir.path()).await;
    let url = format!("{base}/gtfs-rt/trip-updates");
    poll_until(&b, url, PolledFeed::TripUpdates, || {
        !b.live.snapshot().runs.is_empty()
    })
    .await;
    let (sa, sb) = (a.live.snapshot(), b.live.snapshot());
    assert!(!sa.runs.is_empty());
    // Runs whose bus is about to finish may have left B's boards already.
    let later = sb.at as f64 + 60.0;
    for (key, run) in sa
        .runs
        .iter()
        .filter(|(_, r)| r.predictions.last().is_some_and(|p| p.arrival > later))
    {
        let theirs = sb.runs.get(key).expect("every run of A is on B's boards");
        assert_eq!(theirs.vehicle_id, run.vehicle_id);
        let next = &run.predictions[0];
        let same = theirs
            .predictions
            .iter()
            .find(|p| p.stop_index == next.stop_index);
        if let Some(same) = same {
            assert!((same.arrival - next.arrival).abs() <= 1.0);
        }
    }
    // B republishes them in its own TripUpdates feed.
    let feed = FeedMessage::decode(sb.trip_updates.as_ref()).unwrap();
    assert_eq!(feed.entity.len(), sb.runs.len());
}

#[tokio::test]
async fn positions_are_polled_from_another_systems_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, base) = system_a(dir.path()).await;
    let url = format!("{base}/gtfs-rt/vehicle-positions");

    // System B polls it and knows the same buses.
    let (b, _) = city(dir.path()).await;
    poll_until(&b, url, PolledFeed::VehiclePositions, || {
        b.metrics.positions_accepted.get() > 0
    })
    .await;
    assert!(!vehicle_ids(&a).is_empty());
    assert_eq!(vehicle_ids(&b), vehicle_ids(&a));

    // A feed that cannot be reached is counted and retried, never fatal.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/feed.pb", closed.local_addr().unwrap());
    drop(closed);
    let poller = tokio::spawn(cityos_server::realtime::poll_feed(
        b.clone(),
        dead,
        PolledFeed::VehiclePositions,
        std::time::Duration::from_millis(100),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.metrics.feed_poll_failures.get() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!poller.is_finished(), "polling goes on after failures");
    poller.abort();
    assert!(b.metrics.feed_poll_failures.get() >= 2);
}

#[tokio::test]
async fn what_the_engine_learned_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, network) = city(dir.path()).await;
    // Half an hour of buses, replayed on the clock, teaches link times
    // (what each vehicle drives in its first ten minutes is not learned from).
    let now = jiff::Timestamp::now().as_second();
    let today = jiff::Timestamp::now()
        .to_zoned(network.timezone().clone())
        .date();
    let positions = drive(
        &network,
        &SynthOptions {
            date: today,
            window: now - 1800..now,
            every_s: 20,
            gps_error_m: 5.0,
            seed: 3,
        },
    );
    let served = a.network.get().unwrap();
    for p in &positions {
        a.live.clock.replay_at(p.timestamp.unwrap());
        a.live
            .ingest_records(&served, std::slice::from_ref(p), &a.metrics);
    }
    let learned = a.live.learned_history().unwrap();
    assert!(!learned.links.is_empty());
    cityos_server::realtime::save_history(&a).await;

    // A new process on the same store starts from what the last one learned.
    let b = AppState::new(a.store.clone(), UiConfig::default());
    b.network.set(
        Served {
            id: served.id,
            network: served.network.clone(),
        },
        &b.metrics,
    );
    cityos_server::realtime::restore_history(&b).await;
    b.live
        .ingest_records(&b.network.get().unwrap(), &positions[..1], &b.metrics);
    assert_eq!(b.live.learned_history().unwrap(), learned);
}
