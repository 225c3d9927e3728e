//! Vehicles reporting over MQTT, as real buses do: through the embedded
//! broker (each with its own API key) and through an external Mosquitto,
//! in JSON and in GTFS-realtime protobuf. Their positions reach the live
//! vehicles API; a vehicle cannot report for another.
//!
//! The Mosquitto half prints `skipped: …` without Debian's `mosquitto`
//! package, unless `CITYOS_REQUIRE_MOSQUITTO=1` (as CI sets).

use std::time::Duration;

use cityos_accounts::Role;
use cityos_mqtt::mosquitto::Mosquitto;
use cityos_mqtt::{DeviceClient, DeviceRole};
use cityos_realtime::PositionRecord;
use cityos_realtime::synth::{SynthOptions, drive};
use cityos_server::AppState;
use cityos_server::mqtt::{MqttSource, start};
use prost::Message as _;

mod common;

/// A served generated city, and positions of three of its buses over the
/// last four minutes (a minute inside the engine's five-minute staleness
/// limit). The three are still on that trip five minutes later, so none
/// has finished it and left the live list.
async fn city(dir: &std::path::Path) -> (AppState, Vec<Vec<PositionRecord>>) {
    let (state, network) = common::city(dir).await;
    // The server's clock is put at 08:00 today in the city, so the test
    // sees a busy hour whenever it runs.
    let date = jiff::Timestamp::now()
        .to_zoned(network.timezone().clone())
        .date();
    let now = network.instant(date, 8 * 3600).unwrap().as_second();
    state.live.clock.replay_at(now);
    let positions = drive(
        &network,
        &SynthOptions {
            date,
            window: now - 240..now + 300,
            every_s: 30,
            gps_error_m: 3.0,
            seed: 5,
        },
    );
    let mut by_vehicle: std::collections::BTreeMap<String, Vec<PositionRecord>> =
        Default::default();
    for p in positions {
        by_vehicle.entry(p.vehicle_id.clone()).or_default().push(p);
    }
    let three: Vec<Vec<PositionRecord>> = by_vehicle
        .into_values()
        .filter(|p| p.iter().all(|q| q.trip_id == p[0].trip_id))
        .filter(|p| p.last().and_then(|q| q.timestamp) > Some(now + 240))
        .map(|mut p| {
            p.retain(|q| q.timestamp < Some(now));
            p
        })
        .filter(|p| p.len() >= 5)
        .take(3)
        .collect();
    assert_eq!(three.len(), 3, "the generated city runs buses at this hour");
    (state, three)
}

/// Each vehicle publishes its positions (the first in JSON without its id,
/// the others as GTFS-realtime), one forges another's id; then the live
/// API must list exactly the three.
async fn publish_all(
    state: &AppState,
    port: u16,
    password: impl Fn(&str) -> String,
    three: &[Vec<PositionRecord>],
) {
    for (k, positions) in three.iter().enumerate() {
        let id = &positions[0].vehicle_id;
        let device =
            DeviceClient::connect("127.0.0.1", port, DeviceRole::Vehicle, id, &password(id))
                .await
                .unwrap();
        for p in positions {
            let payload = if k == 0 {
                serde_json::json!({
                    "trip_id": p.trip_id, "start_date": p.start_date.unwrap().to_string(),
                    "latitude": p.latitude, "longitude": p.longitude, "timestamp": p.timestamp,
                })
                .to_string()
                .into_bytes()
            } else {
                cityos_realtime::decode::positions_to_feed(
                    std::slice::from_ref(p),
                    p.timestamp.unwrap(),
                )
                .encode_to_vec()
            };
            device.publish(payload).await.unwrap();
        }
        if k == 0 {
            // Claiming to be another vehicle: refused, whatever the encoding.
            let forged = serde_json::json!({"vehicle_id": three[1][0].vehicle_id, "trip_id": "x", "latitude": 37.5, "longitude": 127.0});
            device
                .publish(forged.to_string().into_bytes())
                .await
                .unwrap();
        }
        device.close().await.unwrap();
    }
    // Every position is in (or refused) once the ingest has seen them all.
    let expected: u64 = three.iter().map(|p| p.len() as u64).sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while state.metrics.positions_accepted.get() < expected
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state.metrics.positions_accepted.get(), expected);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.metrics.mqtt_malformed.get() < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        state.metrics.mqtt_malformed.get(),
        1,
        "the forged position is refused"
    );
    cityos_server::realtime::refresh(state).await;
    let mut ids: Vec<String> = three.iter().map(|p| p[0].vehicle_id.clone()).collect();
    ids.sort();
    assert_eq!(common::vehicle_ids(state), ids);
}

#[tokio::test]
async fn vehicles_report_through_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let (state, three) = city(dir.path()).await;
    let mut keys = std::collections::HashMap::new();
    for positions in &three {
        let id = positions[0].vehicle_id.clone();
        let key = common::api_key(&state, &format!("vehicle:{id}"), Role::TransitOperator).await;
        keys.insert(id, key);
    }
    let (_mqtt, port) = common::embedded_mqtt(&state).await;
    // A wrong key is refused at connection.
    let refused = DeviceClient::connect(
        "127.0.0.1",
        port,
        DeviceRole::Vehicle,
        &three[0][0].vehicle_id,
        "cos_k_wrong",
    )
    .await;
    assert!(refused.is_err());
    publish_all(&state, port, |id| keys[id].clone(), &three).await;
}

#[tokio::test]
async fn vehicles_report_through_mosquitto() {
    if !Mosquitto::installed() {
        if std::env::var("CITYOS_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1") {
            panic!(
                "Mosquitto is required (CITYOS_REQUIRE_MOSQUITTO=1) but /usr/sbin/mosquitto is absent"
            );
        }
        eprintln!("skipped: the Mosquitto test needs Debian's mosquitto package");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (state, three) = city(dir.path()).await;
    let mut users: Vec<(&str, &str)> = vec![("cityos", "ingest-secret")];
    users.extend(
        three
            .iter()
            .map(|p| (p[0].vehicle_id.as_str(), "device-secret")),
    );
    let broker = Mosquitto::start(&users, 100_000).unwrap();
    let url = format!("mqtt://cityos:ingest-secret@127.0.0.1:{}", broker.port());
    let _mqtt = start(&state, MqttSource::External(url)).await.unwrap();
    publish_all(
        &state,
        broker.port(),
        |_| "device-secret".to_owned(),
        &three,
    )
    .await;
}

/// An operator's AVL system reports its whole fleet over one gateway
/// connection: each message names its vehicles. A vehicle's key cannot
/// publish as the gateway.
#[tokio::test]
async fn a_gateway_reports_a_whole_fleet_over_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (state, three) = city(dir.path()).await;
    let gateway_key = common::api_key(&state, "gateway:avl-1", Role::TransitOperator).await;
    let (_mqtt, port) = common::embedded_mqtt(&state).await;
    // The gateway's key is not a vehicle's: it cannot log in as a bus.
    assert!(
        DeviceClient::connect(
            "127.0.0.1",
            port,
            DeviceRole::Vehicle,
            &three[0][0].vehicle_id,
            &gateway_key
        )
        .await
        .is_err()
    );
    let gateway = DeviceClient::connect(
        "127.0.0.1",
        port,
        DeviceRole::Gateway,
        "avl-1",
        &gateway_key,
    )
    .await
    .unwrap();
    // One message per round of reports, every vehicle in it, as AVL systems batch.
    let rounds = three.iter().map(Vec::len).min().unwrap();
    for r in 0..rounds {
        let batch: Vec<PositionRecord> = three.iter().map(|v| v[r].clone()).collect();
        let at = batch.iter().filter_map(|p| p.timestamp).max().unwrap();
        gateway
            .publish(cityos_realtime::decode::positions_to_feed(&batch, at).encode_to_vec())
            .await
            .unwrap();
    }
    gateway.close().await.unwrap();
    let expected = (rounds * three.len()) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while state.metrics.positions_accepted.get() < expected
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state.metrics.positions_accepted.get(), expected);
    assert_eq!(state.metrics.mqtt_positions.get(), rounds as u64);
    cityos_server::realtime::refresh(&state).await;
    let mut ids: Vec<String> = three.iter().map(|p| p[0].vehicle_id.clone()).collect();
    ids.sort();
    assert_eq!(common::vehicle_ids(&state), ids);
}
