//! MQTT glue: devices publish to the broker, which hands their messages
//! here (in process from the embedded broker; through the ingest subscriber
//! from an external one), and validators get their answers back on their
//! own answer topic.
//!
//! Devices log in with their id as username and an API key as password; the
//! key's name says what the device is (`validator:{id}`, `vehicle:{id}` or `gateway:{id}`)
//! and its role must be `transit_operator` (or `admin`). A validator's
//! payload is the same JSON as `POST /api/v1/taps` (one tap or an array),
//! without `validator_id`, which is the device's. Each answer is published
//! only after the taps are durable, so a validator that resends a tap until
//! it has an answer loses nothing, and its counter keeps it from being
//! charged twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cityos_accounts::{Principal, Role};
use cityos_mqtt::{
    Broker, BrokerConfig, BrokerUrl, DeviceRole, Ingest, IngestConfig, Message, MqttError,
};

use tokio::sync::mpsc;

use crate::AppState;
use crate::api::cards::{TapBody, tap_requests};

/// Where MQTT comes from.
#[derive(Debug, Clone)]
pub enum MqttSource {
    /// Start the embedded broker on this address and subscribe to it.
    Embedded(SocketAddr),
    /// Subscribe to an external broker (`mqtt://user:pass@host:1883`).
    External(String),
}

/// The running MQTT side; dropping it stops the subscriber and the broker.
pub struct MqttRunning {
    /// The embedded broker, when there is one.
    pub broker: Option<Broker>,
    /// The ingest subscriber.
    pub ingest: Arc<Ingest>,
}

impl MqttRunning {
    /// Where the embedded broker listens, if it runs.
    pub fn broker_addr(&self) -> Option<SocketAddr> {
        self.broker.as_ref().map(Broker::local_addr)
    }
}

/// What a device's credentials make it, if anything.
async fn device_role(state: &AppState, username: &str, password: &str) -> Option<DeviceRole> {
    let Ok(Principal::ApiKey { name, role, .. }) = state.accounts.authenticate(password).await
    else {
        return None;
    };
    if !matches!(role, Role::TransitOperator | Role::Admin) {
        return None;
    }
    let (role, id) = name.split_once(':')?;
    (id == username).then(|| DeviceRole::parse(role)).flatten()
}

/// Starts the broker (when embedded) and the ingest, and handles messages until stopped.
pub async fn start(state: &AppState, source: MqttSource) -> Result<MqttRunning, MqttError> {
    let (tx, rx) = mpsc::channel(4096);
    let (broker, config) = match source {
        MqttSource::Embedded(listen) => {
            let handle = tokio::runtime::Handle::current();
            let auth_state = state.clone();
            // The broker asks on its blocking pool, so waiting for the store here is fine.
            let authenticate =
                move |user: &str, pass: &str| handle.block_on(device_role(&auth_state, user, pass));
            let broker = Broker::start(
                BrokerConfig {
                    listen,
                    ..BrokerConfig::default()
                },
                authenticate,
            )
            .await?;
            // Device messages come in process; the client only publishes answers.
            let config = IngestConfig {
                subscribe: false,
                ..broker.ingest_config()
            };
            (Some(broker), config)
        }
        MqttSource::External(url) => (None, IngestConfig::new(BrokerUrl::parse(&url)?)),
    };
    let ingest = Arc::new(Ingest::start(config, tx.clone()));
    if let Some(b) = &broker {
        b.deliver_to(tx, ingest.stats().clone());
    }
    // From an external broker, device messages sent before the subscription would be unrouted: wait for it.
    tokio::time::timeout(Duration::from_secs(30), ingest.subscribed())
        .await
        .map_err(|_| MqttError::Stopped)??;
    tokio::spawn(dispatch(state.clone(), ingest.clone(), rx));
    if let Some(b) = &broker {
        tokio::spawn(export_stats(
            state.clone(),
            b.stats().clone(),
            ingest.clone(),
        ));
    }
    Ok(MqttRunning { broker, ingest })
}

async fn dispatch(state: AppState, ingest: Arc<Ingest>, mut rx: mpsc::Receiver<Message>) {
    while let Some(message) = rx.recv().await {
        match message.role {
            DeviceRole::Validator => {
                state.metrics.mqtt_taps.inc();
                let Some(desk) = state.cards.clone() else {
                    continue;
                };
                let parsed = parse_taps(&message.device_id, &message.payload);
                let ingest = ingest.clone();
                let device = message.device_id.clone();
                match parsed {
                    Ok((requests, single)) => {
                        // Queued here, in arrival order; answered once durable.
                        let queued = desk.queue_many(requests);
                        tokio::spawn(async move {
                            let answers: Vec<serde_json::Value> = queued
                                .answers()
                                .await
                                .into_iter()
                                .map(|a| match a {
                                    Ok(answer) => serde_json::to_value(answer).unwrap_or_default(),
                                    Err(e) => serde_json::json!({"error": {"code": "unavailable", "message": e.to_string()}}),
                                })
                                .collect();
                            let body = if single {
                                answers.into_iter().next().unwrap_or_default()
                            } else {
                                serde_json::Value::Array(answers)
                            };
                            if let Err(e) =
                                ingest.answer(&device, body.to_string().into_bytes()).await
                            {
                                tracing::warn!(%device, "cannot publish a validator's answer: {e}");
                            }
                        });
                    }
                    Err(message) => {
                        state.metrics.mqtt_malformed.inc();
                        let body = serde_json::json!({"error": {"code": "bad_request", "message": message}});
                        let _ = ingest.answer(&device, body.to_string().into_bytes()).await;
                    }
                }
            }
            // Positions reach the real-time engine once a network is served; until then they are counted.
            // A vehicle's positions are its own whatever the payload says; a gateway's name their vehicles.
            DeviceRole::Vehicle | DeviceRole::Gateway => {
                state.metrics.mqtt_positions.inc();
                let vehicle =
                    (message.role == DeviceRole::Vehicle).then_some(message.device_id.as_str());
                if let Some(served) = state.network.get()
                    && let Err(e) =
                        state
                            .live
                            .ingest(&served, &message.payload, &state.metrics, vehicle)
                {
                    state.metrics.mqtt_malformed.inc();
                    tracing::debug!(device = %message.device_id, "position refused: {e}");
                }
            }
        }
    }
}

/// A validator's payload as desk requests, and whether it was a single tap.
fn parse_taps(
    device: &str,
    payload: &[u8],
) -> Result<(Vec<(String, cityos_card::Request)>, bool), String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let stamp = |tap: &mut serde_json::Value| -> Result<(), String> {
        let object = tap
            .as_object_mut()
            .ok_or("each tap must be a JSON object")?;
        match object.get("validator_id").and_then(|v| v.as_str()) {
            Some(id) if id != device => {
                return Err(format!(
                    "validator_id '{id}' is not this device ('{device}')"
                ));
            }
            _ => {}
        }
        object.insert("validator_id".to_owned(), device.into());
        Ok(())
    };
    match &mut value {
        serde_json::Value::Array(taps) => taps.iter_mut().try_for_each(stamp)?,
        tap => stamp(tap)?,
    }
    let body: TapBody = serde_json::from_value(value).map_err(|e| format!("not a tap: {e}"))?;
    tap_requests(body).map_err(|e| e.message)
}

/// Copies the broker's and the ingest's counters into /metrics.
async fn export_stats(state: AppState, broker: Arc<cityos_mqtt::BrokerStats>, ingest: Arc<Ingest>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let m = &state.metrics;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as i64;
        m.mqtt_dropped
            .set(get(&broker.dropped) + get(&ingest.stats().dropped));
        m.mqtt_refused.set(
            get(&broker.connections_refused)
                + get(&broker.publishes_refused)
                + get(&broker.subscriptions_refused),
        );
        m.mqtt_received.set(get(&ingest.stats().received));
    }
}
