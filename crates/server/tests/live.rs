//! Live vehicles through the API: GTFS-realtime positions in, the
//! TripUpdates feed out, decoded again as any GTFS-realtime client would.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cityos_accounts::Role;
use cityos_realtime::synth::{SynthOptions, drive};
use cityos_realtime::{TripIndex, gtfsrt::FeedMessage};
use cityos_server::{AppState, Served, UiConfig, app, import_feed};
use cityos_store::{Store, testing};
use prost::Message as _;
use tower::ServiceExt;

#[tokio::test]
async fn positions_in_predictions_out_as_gtfs_realtime() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("city");
    cityos_sim::generate_city(&cityos_sim::CityOptions::default(), &feed).unwrap();
    let store = Store::open(&testing::sqlite_path(dir.path()))
        .await
        .unwrap();
    let state = AppState::new(store.clone(), UiConfig::default());
    let imported = import_feed(&store, feed, "test", |_| {}).await.unwrap();
    let network = std::sync::Arc::new(imported.network);
    state.network.set(
        Served {
            id: imported.record.id,
            network: network.clone(),
        },
        &state.metrics,
    );
    let (_, key) = state
        .accounts
        .create_api_key("avl gateway", Role::TransitOperator, None)
        .await
        .unwrap();
    let router = app(state.clone());

    // Buses on today's timetable, reporting over the last ten minutes.
    let now = jiff::Timestamp::now().as_second();
    let today = jiff::Timestamp::now()
        .to_zoned(network.timezone().clone())
        .date();
    let positions = drive(
        &network,
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
