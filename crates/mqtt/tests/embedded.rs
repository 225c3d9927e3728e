//! The embedded broker and the ingest subscriber, for real: a broker on a
//! free loopback port, real TCP clients, no mocks.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cityos_mqtt::{
    Broker, BrokerConfig, DeviceClient, DeviceRole, Ingest, IngestConfig, Message, MqttError,
    device_topic,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

/// Two vehicles and a validator, each with its own password.
fn check(user: &str, password: &str) -> Option<DeviceRole> {
    match (user, password) {
        ("bus-1", "pw-bus-1") | ("bus-2", "pw-bus-2") => Some(DeviceRole::Vehicle),
        ("gate-1", "pw-gate-1") => Some(DeviceRole::Validator),
        _ => None,
    }
}

async fn broker(max_queue: usize) -> Broker {
    let config = BrokerConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        max_queue,
    };
    Broker::start(config, check)
        .await
        .expect("start the broker")
}

/// An ingest subscriber that has subscribed, and its channel.
async fn ingest(config: IngestConfig) -> (Ingest, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel(1024);
    let ingest = Ingest::start(config, tx);
    tokio::time::timeout(WAIT, ingest.subscribed())
        .await
        .expect("subscribed in time")
        .expect("subscriber running");
    (ingest, rx)
}

/// How device messages reach the application.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// The ingest subscriber, over loopback, as from an external broker.
    Subscriber,
    /// Straight from the broker's publish check ([`Broker::deliver_to`]).
    InProcess,
}

/// The application's side of `broker`, delivered as `delivery` says.
async fn ingest_from(broker: &Broker, delivery: Delivery) -> (Ingest, mpsc::Receiver<Message>) {
    match delivery {
        Delivery::Subscriber => ingest(broker.ingest_config()).await,
        Delivery::InProcess => {
            let (tx, rx) = mpsc::channel(1024);
            let config = IngestConfig {
                subscribe: false,
                ..broker.ingest_config()
            };
            let ingest = Ingest::start(config, tx.clone());
            broker.deliver_to(tx, ingest.stats().clone());
            (ingest, rx)
        }
    }
}

/// Whether the broker closed the connection rather than acknowledge the publish just sent.
async fn closed_unacknowledged(eventloop: &mut rumqttc::EventLoop) -> bool {
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return false,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
    })
    .await
    .expect("an answer in time")
}

async fn device(broker: &Broker, id: &str, password: &str) -> Result<DeviceClient, MqttError> {
    let role = check(id, password).unwrap_or(DeviceRole::Vehicle);
    DeviceClient::connect("127.0.0.1", broker.local_addr().port(), role, id, password).await
}

async fn recv(rx: &mut mpsc::Receiver<Message>) -> Message {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("channel open")
}

/// A raw client with the given credentials, for what `DeviceClient` would
/// never do. Returns the client and its event loop after CONNACK.
async fn raw(
    broker: &Broker,
    client_id: &str,
    credentials: Option<(&str, &str)>,
    will: Option<&str>,
) -> Result<(AsyncClient, rumqttc::EventLoop), rumqttc::ConnectionError> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", broker.local_addr().port());
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    if let Some(topic) = will {
        options.set_last_will(LastWill::new(topic, "gone", QoS::AtLeastOnce, false));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    loop {
        if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
            return Ok((client, eventloop));
        }
    }
}

#[tokio::test]
async fn every_qos1_message_arrives_in_order() {
    for delivery in [Delivery::Subscriber, Delivery::InProcess] {
        every_qos1_message_arrives_in_order_by(delivery).await;
    }
}

async fn every_qos1_message_arrives_in_order_by(delivery: Delivery) {
    let broker = broker(BrokerConfig::default().max_queue).await;
    // 10,000 messages through a channel of 1,024: the publisher must wait, never lose.
    let (ingest, mut rx) = ingest_from(&broker, delivery).await;
    let bus = device(&broker, "bus-1", "pw-bus-1").await.unwrap();
    let gate = device(&broker, "gate-1", "pw-gate-1").await.unwrap();
    const N: usize = 10_000;
    let publisher = tokio::spawn(async move {
        for i in 0..N {
            bus.publish(format!("position {i}")).await.unwrap();
        }
        tokio::time::timeout(WAIT, bus.flush())
            .await
            .expect("all acknowledged");
        bus.close().await.unwrap();
        // Order holds per publisher; the tap is sent after the broker has
        // taken every position, so it arrives last.
        gate.publish("tap").await.unwrap();
        gate.close().await.unwrap();
    });
    for i in 0..N {
        let m = recv(&mut rx).await;
        assert_eq!(m.role, DeviceRole::Vehicle);
        assert_eq!(m.device_id, "bus-1");
        assert_eq!(m.topic, "cityos/v1/vehicles/bus-1/position");
        assert_eq!(
            &m.payload[..],
            format!("position {i}").as_bytes(),
            "message {i} out of order or lost ({delivery:?})"
        );
    }
    let tap = recv(&mut rx).await;
    assert_eq!(
        (tap.role, tap.device_id.as_str()),
        (DeviceRole::Validator, "gate-1")
    );
    assert_eq!(&tap.payload[..], b"tap");
    publisher.await.unwrap();

    let stats = ingest.stats();
    assert_eq!(stats.received.load(Ordering::Relaxed), N as u64 + 1);
    assert_eq!(stats.malformed.load(Ordering::Relaxed), 0);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(broker.stats().dropped.load(Ordering::Relaxed), 0);
    assert_eq!(broker.stats().unrouted.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn bad_credentials_are_refused() {
    let broker = broker(1000).await;
    for (id, password) in [("bus-1", "wrong"), ("bus-9", "pw-bus-1"), ("gate-1", "")] {
        match device(&broker, id, password).await {
            Err(MqttError::Refused { .. }) => {}
            Err(e) => panic!("{id}: expected a refusal, got {e}"),
            Ok(_) => panic!("{id} with password {password:?} was let in"),
        }
    }
    // No credentials at all.
    assert!(raw(&broker, "anonymous", None, None).await.is_err());
    // Right password, but the client id is another device's: it could
    // otherwise take over that device's session.
    assert!(
        raw(&broker, "bus-2", Some(("bus-1", "pw-bus-1")), None)
            .await
            .is_err()
    );
    // The ingest account with a guessed password.
    assert!(
        raw(
            &broker,
            "x",
            Some((cityos_mqtt::INGEST_USERNAME, "guess")),
            None
        )
        .await
        .is_err()
    );
    assert_eq!(
        broker.stats().connections_refused.load(Ordering::Relaxed),
        6
    );
    // The right password still works.
    device(&broker, "bus-1", "pw-bus-1").await.unwrap();
}

#[tokio::test]
async fn a_device_cannot_publish_another_devices_topic() {
    for delivery in [Delivery::Subscriber, Delivery::InProcess] {
        a_device_cannot_publish_another_devices_topic_by(delivery).await;
    }
}

async fn a_device_cannot_publish_another_devices_topic_by(delivery: Delivery) {
    let broker = broker(1000).await;
    let (_ingest, mut rx) = ingest_from(&broker, delivery).await;

    // bus-1 tries bus-2's position and a validator's taps; each attempt
    // closes its connection.
    for topic in [
        device_topic(DeviceRole::Vehicle, "bus-2").unwrap(),
        device_topic(DeviceRole::Validator, "bus-1").unwrap(),
        "cityos/v1/vehicles/+/position".replace('+', "bus-1/extra"),
    ] {
        let (client, mut eventloop) = raw(&broker, "bus-1", Some(("bus-1", "pw-bus-1")), None)
            .await
            .unwrap();
        client
            .publish(topic.clone(), QoS::AtLeastOnce, false, "forged")
            .await
            .unwrap();
        assert!(
            closed_unacknowledged(&mut eventloop).await,
            "publishing to {topic} was acknowledged"
        );
    }
    assert_eq!(broker.stats().publishes_refused.load(Ordering::Relaxed), 3);

    // A device may not subscribe either, or it could read others' data.
    let (client, mut eventloop) = raw(&broker, "bus-1", Some(("bus-1", "pw-bus-1")), None)
        .await
        .unwrap();
    client
        .subscribe("cityos/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(ack))) = eventloop.poll().await {
                return ack.return_codes == [rumqttc::SubscribeReasonCode::Failure];
            }
        }
    })
    .await
    .expect("a SUBACK in time");
    assert!(refused);
    assert_eq!(
        broker.stats().subscriptions_refused.load(Ordering::Relaxed),
        1
    );

    // A will on someone else's topic would be published without a check,
    // so the connection is refused.
    let bus2 = device_topic(DeviceRole::Vehicle, "bus-2").unwrap();
    assert!(
        raw(&broker, "bus-1", Some(("bus-1", "pw-bus-1")), Some(&bus2))
            .await
            .is_err()
    );

    // The first message the subscriber sees is bus-2's own, sent last.
    let bus2 = device(&broker, "bus-2", "pw-bus-2").await.unwrap();
    bus2.publish("genuine").await.unwrap();
    let m = recv(&mut rx).await;
    assert_eq!(
        (m.device_id.as_str(), &m.payload[..]),
        ("bus-2", &b"genuine"[..])
    );
}

#[tokio::test]
async fn messages_wait_for_a_reconnecting_ingest() {
    let broker = broker(BrokerConfig::default().max_queue).await;
    let config = broker.ingest_config();
    let (first, rx) = ingest(config.clone()).await;
    drop((first, rx));

    let bus = device(&broker, "bus-1", "pw-bus-1").await.unwrap();
    for i in 0..1000 {
        bus.publish(format!("{i}")).await.unwrap();
    }
    tokio::time::timeout(WAIT, bus.flush())
        .await
        .expect("acknowledged");

    let (_second, mut rx) = ingest(config).await;
    for i in 0..1000 {
        assert_eq!(recv(&mut rx).await.payload, format!("{i}").as_bytes());
    }
    assert_eq!(broker.stats().dropped.load(Ordering::Relaxed), 0);
    assert_eq!(broker.stats().unrouted.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_full_queue_is_counted_not_silent() {
    let broker = broker(10).await;
    let config = broker.ingest_config();
    let (first, rx) = ingest(config.clone()).await;
    drop((first, rx));

    let bus = device(&broker, "bus-1", "pw-bus-1").await.unwrap();
    for i in 0..50 {
        bus.publish(format!("{i}")).await.unwrap();
    }
    tokio::time::timeout(WAIT, bus.flush())
        .await
        .expect("acknowledged");

    // The offline session keeps the newest 10 QoS 1 messages; the broker
    // counts the 40 it dropped.
    let (_second, mut rx) = ingest(config).await;
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    let dropped = broker.stats().dropped.load(Ordering::Relaxed);
    let newest: Vec<String> = (40..50).map(|i| i.to_string()).collect();
    assert_eq!((got, dropped), (newest, 40));
}

#[tokio::test]
async fn an_empty_payload_is_counted_as_malformed() {
    for delivery in [Delivery::Subscriber, Delivery::InProcess] {
        let broker = broker(1000).await;
        let (ingest, mut rx) = ingest_from(&broker, delivery).await;
        let bus = device(&broker, "bus-1", "pw-bus-1").await.unwrap();
        bus.publish("").await.unwrap();
        bus.publish("after").await.unwrap();
        assert_eq!(&recv(&mut rx).await.payload[..], b"after");
        assert_eq!(ingest.stats().malformed.load(Ordering::Relaxed), 1);
        assert_eq!(ingest.stats().received.load(Ordering::Relaxed), 2);
        assert_eq!(broker.stats().unrouted.load(Ordering::Relaxed), 0);
    }
}

/// In process, a device's QoS 1 publish is acknowledged only once the
/// application has taken it; a stopped application refuses it instead of
/// losing it.
#[tokio::test]
async fn in_process_delivery_refuses_what_a_stopped_application_cannot_take() {
    let broker = broker(1000).await;
    let (ingest, rx) = ingest_from(&broker, Delivery::InProcess).await;
    drop(rx);
    let (client, mut eventloop) = raw(&broker, "bus-1", Some(("bus-1", "pw-bus-1")), None)
        .await
        .unwrap();
    let topic = device_topic(DeviceRole::Vehicle, "bus-1").unwrap();
    client
        .publish(topic, QoS::AtLeastOnce, false, "position")
        .await
        .unwrap();
    assert!(
        closed_unacknowledged(&mut eventloop).await,
        "a publish nobody took was acknowledged"
    );
    assert_eq!(ingest.stats().dropped.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let first = broker(1000).await;
    let config = BrokerConfig {
        listen: first.local_addr(),
        max_queue: 1000,
    };
    // The port stays taken while `first` is alive.
    let err = Broker::start(config, check)
        .await
        .err()
        .expect("a bind error");
    assert!(matches!(err, MqttError::Bind { .. }), "{err}");
}
