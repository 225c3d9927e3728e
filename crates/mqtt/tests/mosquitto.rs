//! The ingest subscriber against an external broker: Debian's Mosquitto,
//! started privately on a free port by each test.
//!
//! Without the `mosquitto` package each test prints `skipped: …` and passes,
//! unless `CITYOS_REQUIRE_MOSQUITTO=1` (as CI sets), which makes the absence
//! a failure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cityos_mqtt::mosquitto::Mosquitto;
use cityos_mqtt::{BrokerUrl, DeviceClient, DeviceRole, Ingest, IngestConfig, Message};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);
const USERS: &[(&str, &str)] = &[("ingest", "ingest pw:@"), ("bus-1", "pw-bus-1")];

fn mosquitto() -> Option<Mosquitto> {
    if !Mosquitto::installed() {
        if std::env::var("CITYOS_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1") {
            panic!(
                "Mosquitto is required (CITYOS_REQUIRE_MOSQUITTO=1) but /usr/sbin/mosquitto is absent"
            );
        }
        eprintln!("skipped: the Mosquitto tests need Debian's mosquitto package");
        return None;
    }
    Some(Mosquitto::start(USERS, 100_000).expect("start mosquitto"))
}

/// The ingest subscriber configured from a URL, as `--mqtt` would give it.
async fn ingest(port: u16) -> (Ingest, mpsc::Receiver<Message>) {
    // The password has a space, ':' and '@', escaped as a URL needs them.
    let url = format!("mqtt://ingest:ingest%20pw%3A%40@127.0.0.1:{port}");
    let config = IngestConfig::new(BrokerUrl::parse(&url).unwrap());
    let (tx, rx) = mpsc::channel(1024);
    let ingest = Ingest::start(config, tx);
    tokio::time::timeout(WAIT, ingest.subscribed())
        .await
        .expect("subscribed in time")
        .unwrap();
    (ingest, rx)
}

async fn recv(rx: &mut mpsc::Receiver<Message>) -> Message {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("channel open")
}

#[tokio::test]
async fn ingest_receives_through_mosquitto() {
    let Some(mosquitto) = mosquitto() else { return };
    let (ingest, mut rx) = ingest(mosquitto.port()).await;
    let bus = DeviceClient::connect(
        "127.0.0.1",
        mosquitto.port(),
        DeviceRole::Vehicle,
        "bus-1",
        "pw-bus-1",
    )
    .await
    .unwrap();
    for i in 0..2000 {
        bus.publish(format!("{i}")).await.unwrap();
    }
    for i in 0..2000 {
        let m = recv(&mut rx).await;
        assert_eq!(
            (m.role, m.device_id.as_str()),
            (DeviceRole::Vehicle, "bus-1")
        );
        assert_eq!(m.payload, format!("{i}").as_bytes());
    }

    // Mosquitto has no cityos topic rules, so a bad device id in a topic
    // reaches the subscriber, which counts it and goes on.
    let mut raw = rumqttc::MqttOptions::new("raw", "127.0.0.1", mosquitto.port());
    raw.set_credentials("bus-1", "pw-bus-1");
    let (client, mut eventloop) = rumqttc::AsyncClient::new(raw, 16);
    client
        .publish(
            "cityos/v1/vehicles/bad id/position",
            rumqttc::QoS::AtLeastOnce,
            false,
            "x",
        )
        .await
        .unwrap();
    // Sent from another connection, so wait for Mosquitto to take it before
    // sending the next message, or the two could arrive in either order.
    tokio::time::timeout(WAIT, async {
        while !matches!(
            eventloop.poll().await,
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))
        ) {}
    })
    .await
    .expect("the raw publish acknowledged");
    bus.publish("after").await.unwrap();
    assert_eq!(recv(&mut rx).await.payload, &b"after"[..]);
    assert_eq!(ingest.stats().malformed.load(Ordering::Relaxed), 1);
    assert_eq!(ingest.stats().received.load(Ordering::Relaxed), 2002);
}

#[tokio::test]
async fn a_wrong_ingest_password_never_subscribes() {
    let Some(mosquitto) = mosquitto() else { return };
    let url = format!("mqtt://ingest:wrong@127.0.0.1:{}", mosquitto.port());
    let (tx, _rx) = mpsc::channel(16);
    let ingest = Ingest::start(IngestConfig::new(BrokerUrl::parse(&url).unwrap()), tx);
    let subscribed = tokio::time::timeout(Duration::from_secs(2), ingest.subscribed()).await;
    assert!(subscribed.is_err(), "subscribed with a wrong password");
    assert!(ingest.stats().connection_failures.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn ingest_reconnects_after_mosquitto_restarts() {
    let Some(mut mosquitto) = mosquitto() else {
        return;
    };
    let (ingest, mut rx) = ingest(mosquitto.port()).await;
    let bus = DeviceClient::connect(
        "127.0.0.1",
        mosquitto.port(),
        DeviceRole::Vehicle,
        "bus-1",
        "pw-bus-1",
    )
    .await
    .unwrap();
    bus.publish("before").await.unwrap();
    assert_eq!(recv(&mut rx).await.payload, &b"before"[..]);

    mosquitto.restart().unwrap();
    // This Mosquitto keeps no sessions across a restart, so messages sent
    // before the subscriber is back are lost (by Mosquitto, not by us): send
    // until one arrives.
    let got = tokio::time::timeout(WAIT, async {
        let mut i = 0;
        loop {
            bus.publish(format!("after {i}")).await.unwrap();
            i += 1;
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                return m;
            }
        }
    })
    .await
    .expect("the subscriber came back");
    assert!(got.payload.starts_with(b"after "));
    assert!(ingest.stats().connection_failures.load(Ordering::Relaxed) >= 1);
}
