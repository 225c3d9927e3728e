//! Validators tapping through the embedded MQTT broker: each gets its answer
//! on its own answer topic once the tap is durable, a repeated counter gets
//! the same answer, and bad payloads and bad credentials are refused.

use std::time::Duration;

use cityos_accounts::Role;
use cityos_card::{Answer, Request};
use cityos_server::{AppState, UiConfig};
use cityos_store::{Store, testing};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

mod common;

async fn connect(port: u16, device: &str, password: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(device, "127.0.0.1", port);
    options.set_credentials(device, password);
    options.set_keep_alive(Duration::from_secs(5));
    AsyncClient::new(options, 64)
}

/// The next message on the answer topic, driving the event loop.
async fn next_answer(events: &mut rumqttc::EventLoop) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.poll())
            .await
            .expect("an answer in time")
            .expect("connected")
        {
            Event::Incoming(Packet::Publish(p)) => {
                return serde_json::from_slice(&p.payload).unwrap();
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn validators_tap_over_mqtt_and_get_durable_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&testing::sqlite_path(dir.path()))
        .await
        .unwrap();
    let mut state = AppState::new(store, UiConfig::default());
    state
        .start_cards(cityos_fare::FareRules::seoul_toml())
        .await
        .unwrap();
    let desk = state.cards.clone().unwrap();
    let Answer::Issued { card_id, .. } = desk
        .submit(
            "issue",
            Request::Issue {
                category: cityos_fare::Category::Adult,
                registered_to: None,
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    desk.submit(
        "top",
        Request::TopUp {
            card_id,
            amount: 10_000,
        },
    )
    .await
    .unwrap();
    let key = common::api_key(&state, "validator:bus-7", Role::TransitOperator).await;
    let citizen_key = common::api_key(&state, "validator:bus-8", Role::Citizen).await;
    let (_mqtt, port) = common::embedded_mqtt(&state).await;

    let (client, mut events) = connect(port, "bus-7", &key).await;
    client
        .subscribe("cityos/v1/validators/bus-7/answers", QoS::AtLeastOnce)
        .await
        .unwrap();
    let tap = serde_json::json!({"card_id": card_id, "counter": 1, "direction": "in", "stop_id": "A", "route_id": "741", "mode": "trunk", "at": "2026-03-04T08:00:00"});
    client
        .publish(
            "cityos/v1/validators/bus-7/taps",
            QoS::AtLeastOnce,
            false,
            tap.to_string(),
        )
        .await
        .unwrap();
    let answer = next_answer(&mut events).await;
    assert_eq!(answer["result"], "tap_accepted", "{answer}");
    assert_eq!(answer["amount"], 1500);
    assert_eq!(desk.balance(card_id), 8_500, "durable before the answer");
    // The same counter again: the same answer, not a second charge.
    client
        .publish(
            "cityos/v1/validators/bus-7/taps",
            QoS::AtLeastOnce,
            false,
            tap.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(next_answer(&mut events).await, answer);
    assert_eq!(desk.balance(card_id), 8_500);
    // A payload that is not a tap is answered with what is wrong.
    client
        .publish(
            "cityos/v1/validators/bus-7/taps",
            QoS::AtLeastOnce,
            false,
            "{\"card_id\": \"x\"}",
        )
        .await
        .unwrap();
    let error = next_answer(&mut events).await;
    assert_eq!(error["error"]["code"], "bad_request", "{error}");
    // A tap claiming another validator's id is refused.
    let forged = serde_json::json!({"validator_id": "bus-9", "card_id": card_id, "counter": 2, "direction": "in", "stop_id": "A", "route_id": "741", "mode": "trunk", "at": "2026-03-04T09:00:00"});
    client
        .publish(
            "cityos/v1/validators/bus-7/taps",
            QoS::AtLeastOnce,
            false,
            forged.to_string(),
        )
        .await
        .unwrap();
    assert!(
        next_answer(&mut events).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bus-9")
    );

    // A key whose role is not staff, or a wrong key, cannot connect as a device.
    for (device, password) in [("bus-8", citizen_key.as_str()), ("bus-7", "cos_k_wrong")] {
        let (_c, mut ev) = connect(port, device, password).await;
        let refused = loop {
            match tokio::time::timeout(Duration::from_secs(20), ev.poll())
                .await
                .unwrap()
            {
                Err(_) => break true,
                Ok(Event::Incoming(Packet::ConnAck(_))) => break false,
                Ok(_) => continue,
            }
        };
        assert!(refused, "{device} must be refused");
    }
    let metrics = state.metrics.encode();
    assert!(
        metrics.contains("cityos_mqtt_tap_messages_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cityos_mqtt_malformed_total 2"),
        "{metrics}"
    );
}
