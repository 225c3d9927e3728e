//! The relay benchmark: how many messages a second go from one publisher
//! process through a broker to the ingest subscriber, at QoS 0 with
//! 200-byte payloads, for the embedded broker and for Mosquitto alike.
//!
//! The publisher runs in a separate process, as real load would, so the
//! caller supplies the command that starts it (the `cityos` binary has a
//! hidden worker command; `examples/relay.rs` re-runs itself). That process
//! parses its arguments with [`PublisherArgs::from_args`] and calls
//! [`PublisherArgs::run`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Outgoing, QoS};
use tokio::sync::mpsc;

use crate::ingest::{BrokerUrl, Ingest, IngestConfig};
use crate::mosquitto::Mosquitto;
use crate::topic::{DeviceRole, device_topic};
use crate::{Broker, BrokerConfig, MqttError};

/// The broker a relay benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayBroker {
    /// The embedded rmqtt broker, in this process, with its default queue.
    Embedded,
    /// A private Mosquitto with the same queue size (see [`crate::mosquitto`]).
    Mosquitto,
}

/// The outcome of one relay run.
#[derive(Debug, Clone)]
pub struct RelayReport {
    /// Which broker was measured.
    pub broker: RelayBroker,
    /// Messages the publisher sent.
    pub sent: u64,
    /// Messages the ingest subscriber received.
    pub received: u64,
    /// Seconds from the first message received to the last.
    pub seconds: f64,
    /// Messages the embedded broker counted as dropped (always 0 for
    /// Mosquitto, which does not say).
    pub broker_dropped: u64,
}

impl RelayReport {
    /// Messages received per second.
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.received as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// What the publisher process does: connect, send `messages` payloads of
/// `payload_bytes` at QoS 0 to its device topic, disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherArgs {
    /// The broker and the publisher's credentials.
    pub broker: BrokerUrl,
    /// The device id to publish as (a vehicle).
    pub device_id: String,
    /// How many messages to send.
    pub messages: u64,
    /// The size of each payload.
    pub payload_bytes: usize,
}

impl PublisherArgs {
    /// The arguments as command-line words, for [`PublisherArgs::from_args`].
    /// They include the broker password, which is a throwaway one made for
    /// this run.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            self.broker.host.clone(),
            self.broker.port.to_string(),
            self.broker.username.clone().unwrap_or_default(),
            self.broker.password.clone().unwrap_or_default(),
            self.device_id.clone(),
            self.messages.to_string(),
            self.payload_bytes.to_string(),
        ]
    }

    /// Parses the words made by [`PublisherArgs::to_args`].
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<PublisherArgs, MqttError> {
        let bad = || {
            MqttError::Bench(
                "publisher arguments: host port user password device messages bytes".to_owned(),
            )
        };
        let [host, port, user, password, device, messages, bytes] = args else {
            return Err(bad());
        };
        let some = |s: &S| Some(s.as_ref().to_owned()).filter(|s| !s.is_empty());
        Ok(PublisherArgs {
            broker: BrokerUrl {
                host: host.as_ref().to_owned(),
                port: port.as_ref().parse().map_err(|_| bad())?,
                username: some(user),
                password: some(password),
            },
            device_id: device.as_ref().to_owned(),
            messages: messages.as_ref().parse().map_err(|_| bad())?,
            payload_bytes: bytes.as_ref().parse().map_err(|_| bad())?,
        })
    }

    /// Publishes as fast as the connection takes it, then disconnects once
    /// everything is written. Run it on its own runtime in its own process.
    pub async fn run(&self) -> Result<(), MqttError> {
        let topic = device_topic(DeviceRole::Vehicle, &self.device_id)
            .ok_or_else(|| MqttError::InvalidDeviceId(self.device_id.clone()))?;
        let (client, mut eventloop) = AsyncClient::new(self.broker.options(&self.device_id), 1024);
        let payload = Bytes::from(vec![b'x'; self.payload_bytes]);
        let messages = self.messages;
        let sender = tokio::spawn(async move {
            for _ in 0..messages {
                client
                    .publish_bytes(topic.clone(), QoS::AtMostOnce, false, payload.clone())
                    .await
                    .map_err(|_| MqttError::Stopped)?;
            }
            // Requests are handled in order, so DISCONNECT goes out after
            // the last message has been written.
            client.disconnect().await.map_err(|_| MqttError::Stopped)
        });
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => return Err(crate::device::connection_error(&self.broker, e)),
            }
        }
        sender.await.map_err(|e| MqttError::Bench(e.to_string()))?
    }
}

/// Runs one relay measurement: starts `broker`, subscribes with the ingest
/// client, starts the publisher with the command `publisher` returns for the
/// given arguments, and counts what arrives. It gives up once nothing has
/// arrived for 5 seconds after the publisher has exited.
pub async fn bench_relay(
    broker: RelayBroker,
    messages: u64,
    payload_bytes: usize,
    publisher: impl FnOnce(&PublisherArgs) -> tokio::process::Command,
) -> Result<RelayReport, MqttError> {
    let device_id = "bench-publisher".to_owned();
    let password = format!("bench-{}", std::process::id());
    let queue = BrokerConfig::default().max_queue;
    // Keep whichever broker runs alive until the end.
    let (_embedded, _mosquitto, ingest_config, publisher_broker, stats) = match broker {
        RelayBroker::Embedded => {
            let (id, pw) = (device_id.clone(), password.clone());
            let config = BrokerConfig {
                listen: ([127, 0, 0, 1], 0).into(),
                ..BrokerConfig::default()
            };
            let b = Broker::start(config, move |user, pass| {
                (user == id && pass == pw).then_some(DeviceRole::Vehicle)
            })
            .await?;
            let ingest = b.ingest_config();
            let publisher_broker = BrokerUrl {
                username: Some(device_id.clone()),
                password: Some(password.clone()),
                ..ingest.broker.clone()
            };
            let stats = b.stats().clone();
            (Some(b), None, ingest, publisher_broker, Some(stats))
        }
        RelayBroker::Mosquitto => {
            let m = tokio::task::spawn_blocking(move || Mosquitto::start(&[], queue))
                .await
                .map_err(|e| MqttError::Bench(e.to_string()))??;
            let url = BrokerUrl {
                host: "127.0.0.1".to_owned(),
                port: m.port(),
                username: None,
                password: None,
            };
            (None, Some(m), IngestConfig::new(url.clone()), url, None)
        }
    };

    let (tx, mut rx) = mpsc::channel(4096);
    let ingest = Ingest::start(ingest_config, tx);
    tokio::time::timeout(Duration::from_secs(10), ingest.subscribed())
        .await
        .map_err(|_| {
            MqttError::Bench("the ingest subscriber did not subscribe within 10 s".to_owned())
        })??;

    let args = PublisherArgs {
        broker: publisher_broker,
        device_id,
        messages,
        payload_bytes,
    };
    let mut child = publisher(&args)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| MqttError::Bench(format!("cannot start the publisher: {e}")))?;

    let mut received = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    let mut publisher_done = false;
    while received < messages {
        let wait = if publisher_done {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(200)
        };
        tokio::select! {
            message = rx.recv() => match message {
                Some(_) => {
                    received += 1;
                    last = Instant::now();
                    first.get_or_insert(last);
                }
                None => break,
            },
            status = child.wait(), if !publisher_done => {
                publisher_done = true;
                match status {
                    Ok(s) if s.success() => {}
                    Ok(s) => return Err(MqttError::Bench(format!("the publisher failed: {s}"))),
                    Err(e) => return Err(MqttError::Bench(format!("the publisher: {e}"))),
                }
            }
            _ = tokio::time::sleep(wait) => if publisher_done { break },
        }
    }
    let seconds = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    let broker_dropped = stats.as_ref().map_or(0, |s: &Arc<crate::BrokerStats>| {
        s.dropped.load(Ordering::Relaxed)
    });
    Ok(RelayReport {
        broker,
        sent: messages,
        received,
        seconds,
        broker_dropped,
    })
}

/// One device of a load run: its id, its password, and the payloads it
/// sends, in order.
#[derive(Debug, Clone)]
pub struct DeviceLoad {
    /// What the device is (a vehicle or a gateway).
    pub role: DeviceRole,
    /// The device id.
    pub device_id: String,
    /// Its password (an API key).
    pub password: String,
    /// Its messages, in the order it sends them.
    pub payloads: Vec<Vec<u8>>,
}

/// Connects every device to the broker at `host:port` and publishes their
/// messages at QoS 0 as fast as the connections take them, interleaved in
/// the order `order` gives (indices into `devices`; each device's own
/// messages go in their order). Returns once everything is written and
/// every device has disconnected. Run it in its own process, as real load.
pub async fn publish_as_devices(
    host: &str,
    port: u16,
    devices: Vec<DeviceLoad>,
    order: &[u32],
) -> Result<(), MqttError> {
    let mut clients = Vec::with_capacity(devices.len());
    let mut loops = Vec::with_capacity(devices.len());
    for device in &devices {
        let broker = BrokerUrl {
            host: host.to_owned(),
            port,
            username: Some(device.device_id.clone()),
            password: Some(device.password.clone()),
        };
        let topic = device_topic(device.role, &device.device_id)
            .ok_or_else(|| MqttError::InvalidDeviceId(device.device_id.clone()))?;
        let (client, mut eventloop) = AsyncClient::new(broker.options(&device.device_id), 256);
        // Connected before any load starts, so connection setup is not measured.
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(rumqttc::Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(crate::device::connection_error(&broker, e)),
            }
        }
        loops.push(tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }));
        clients.push((client, topic));
    }
    let mut next = vec![0usize; devices.len()];
    for &d in order {
        let d = d as usize;
        let (Some((client, topic)), Some(device)) = (clients.get(d), devices.get(d)) else {
            continue;
        };
        let Some(payload) = device.payloads.get(next[d]) else {
            continue;
        };
        next[d] += 1;
        client
            .publish_bytes(
                topic.clone(),
                QoS::AtMostOnce,
                false,
                Bytes::copy_from_slice(payload),
            )
            .await
            .map_err(|_| MqttError::Stopped)?;
    }
    for (client, _) in &clients {
        client.disconnect().await.map_err(|_| MqttError::Stopped)?;
    }
    for handle in loops {
        let _ = handle.await;
    }
    Ok(())
}
