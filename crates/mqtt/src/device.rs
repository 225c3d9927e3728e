//! A device's side of MQTT: what a bus or a validator runs, and what the
//! simulator runs for each simulated one, so simulated devices go through
//! exactly the path real ones do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Packet, QoS};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::ingest::BrokerUrl;
use crate::topic::{DeviceRole, answer_topic, device_topic};
use crate::{MqttError, log_now};

/// A connected device that publishes to its own topic at QoS 1.
///
/// It logs in with its id as username and client id, keeps a persistent
/// session, and reconnects by itself; messages not yet acknowledged when a
/// connection drops are sent again on the next one.
pub struct DeviceClient {
    client: AsyncClient,
    topic: String,
    published: AtomicU64,
    acked: Arc<Acked>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Acked {
    count: AtomicU64,
    changed: Notify,
}

impl DeviceClient {
    /// Connects to the broker at `host:port` as device `device_id` of `role`.
    /// Fails if the id is invalid, the broker cannot be reached, or it
    /// refuses the credentials.
    pub async fn connect(
        host: &str,
        port: u16,
        role: DeviceRole,
        device_id: &str,
        password: &str,
    ) -> Result<DeviceClient, MqttError> {
        Self::start(host, port, role, device_id, password, None).await
    }

    /// Connects as validator `device_id` and subscribes to its answer topic:
    /// the server's answer to each tap arrives on the returned receiver,
    /// once the tap is durable. Answers that find the receiver full are
    /// dropped (and logged); a validator that misses one resends its tap.
    pub async fn connect_validator(
        host: &str,
        port: u16,
        device_id: &str,
        password: &str,
    ) -> Result<(DeviceClient, mpsc::Receiver<Vec<u8>>), MqttError> {
        let (tx, rx) = mpsc::channel(4096);
        let client = Self::start(
            host,
            port,
            DeviceRole::Validator,
            device_id,
            password,
            Some(tx),
        )
        .await?;
        let answers = answer_topic(device_id)
            .ok_or_else(|| MqttError::InvalidDeviceId(device_id.to_owned()))?;
        client
            .client
            .subscribe(answers, QoS::AtLeastOnce)
            .await
            .map_err(|_| MqttError::Stopped)?;
        Ok((client, rx))
    }

    async fn start(
        host: &str,
        port: u16,
        role: DeviceRole,
        device_id: &str,
        password: &str,
        answers: Option<mpsc::Sender<Vec<u8>>>,
    ) -> Result<DeviceClient, MqttError> {
        let topic = device_topic(role, device_id)
            .ok_or_else(|| MqttError::InvalidDeviceId(device_id.to_owned()))?;
        let broker = BrokerUrl {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            username: Some(device_id.to_owned()),
            password: Some(password.to_owned()),
        };
        let mut options = broker.options(device_id);
        options.set_clean_session(false);
        // A device publishes only: no incoming publish to hold up the loop,
        // so the request channel can be short and give backpressure early.
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        // The first connection is awaited here so a refusal is an error the
        // caller sees, not a retry loop.
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(connection_error(&broker, e)),
            }
        }
        let acked = Arc::new(Acked::default());
        let task = tokio::spawn(drive(
            eventloop,
            acked.clone(),
            broker.to_string(),
            device_id.to_owned(),
            answers,
        ));
        Ok(DeviceClient {
            client,
            topic,
            published: AtomicU64::new(0),
            acked,
            task,
        })
    }

    /// The topic this device publishes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues `payload` for the device's topic at QoS 1. It waits while too
    /// many messages are unacknowledged, so a slow broker slows the device
    /// instead of filling its memory.
    pub async fn publish(&self, payload: impl Into<Bytes>) -> Result<(), MqttError> {
        self.client
            .publish_bytes(self.topic.clone(), QoS::AtLeastOnce, false, payload.into())
            .await
            .map_err(|_| MqttError::Stopped)?;
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until the broker has acknowledged everything published so far.
    /// It waits through reconnections; wrap it in a timeout to bound it.
    pub async fn flush(&self) {
        let target = self.published.load(Ordering::Relaxed);
        loop {
            let notified = self.acked.changed.notified();
            if self.acked.count.load(Ordering::Relaxed) >= target {
                return;
            }
            notified.await;
        }
    }

    /// Flushes, then disconnects cleanly.
    pub async fn close(self) -> Result<(), MqttError> {
        self.flush().await;
        self.client
            .disconnect()
            .await
            .map_err(|_| MqttError::Stopped)?;
        // Give the loop a moment to send DISCONNECT before it is aborted.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while !self.task.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        Ok(())
    }
}

impl Drop for DeviceClient {
    /// Stops the connection at once; messages not yet acknowledged are lost
    /// unless [`DeviceClient::close`] was awaited first.
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn connection_error(broker: &BrokerUrl, e: ConnectionError) -> MqttError {
    match e {
        ConnectionError::ConnectionRefused(code) => MqttError::Refused {
            broker: broker.to_string(),
            code: format!("{code:?}"),
        },
        e => MqttError::Connection {
            broker: broker.to_string(),
            source: Box::new(e),
        },
    }
}

/// Runs the device's event loop: counts acknowledgements, hands answers to
/// a validator, and reconnects with backoff when the connection drops.
async fn drive(
    mut eventloop: EventLoop,
    acked: Arc<Acked>,
    broker: String,
    device_id: String,
    answers: Option<mpsc::Sender<Vec<u8>>>,
) {
    let mut backoff = Duration::from_millis(100);
    let (mut failures, mut dropped) = (0u64, 0u64);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if let Some(answers) = &answers
                    && answers.try_send(publish.payload.to_vec()).is_err()
                {
                    dropped += 1;
                    if log_now(dropped) {
                        tracing::warn!(%device_id, dropped, "a validator's answer found no room and was dropped");
                    }
                }
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked.count.fetch_add(1, Ordering::Relaxed);
                acked.changed.notify_waiters();
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(100);
                tracing::info!(%broker, %device_id, "MQTT device reconnected");
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                if log_now(failures) {
                    tracing::warn!(%broker, %device_id, error = %e, failures, retry_in = ?backoff, "MQTT device connection lost");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
