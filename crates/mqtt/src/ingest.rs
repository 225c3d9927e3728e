//! The ingest subscriber: the server's one MQTT client that receives every
//! device message, from the embedded broker or from an external one.
//!
//! It subscribes to [`INGEST_FILTERS`] at QoS 1 with a persistent session
//! (clean session off), so a broker keeps queueing for it while it
//! reconnects. It acknowledges a message only once the application's channel
//! has taken it: a full channel stops the loop, the broker's queue absorbs
//! the burst, and nothing is acknowledged that the application did not get.
//! QoS 1 means a message can arrive twice after a reconnect; the application
//! deduplicates (positions by timestamp, taps by the validator's counter).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::topic::{DeviceRole, INGEST_FILTERS, parse_device_topic};
use crate::{MqttError, log_now};

/// Where a broker is and how to log in to it, as in
/// `mqtt://[username[:password]@]host[:port]`.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port; 1883 when the URL has none.
    pub port: u16,
    /// Username to log in with, if any.
    pub username: Option<String>,
    /// Password to log in with, if any.
    pub password: Option<String>,
}

impl std::fmt::Debug for BrokerUrl {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Display for BrokerUrl {
    /// The URL without credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtt://{}:{}", self.host_port_host(), self.port)
    }
}

impl BrokerUrl {
    /// Parses `mqtt://[username[:password]@]host[:port][/]`. Percent-escapes
    /// in the username and password are decoded, so a password may contain
    /// `@` or `:` as `%40` and `%3A`.
    pub fn parse(url: &str) -> Result<BrokerUrl, MqttError> {
        let bad = |reason: &'static str| MqttError::InvalidUrl {
            url: redact(url),
            reason,
        };
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| bad("it must start with mqtt://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                let user =
                    percent_decode(user).ok_or_else(|| bad("bad %-escape in the username"))?;
                let pass = pass
                    .map(|p| percent_decode(p).ok_or_else(|| bad("bad %-escape in the password")))
                    .transpose()?;
                (Some(user), pass)
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the host"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("text after ]"))?),
                ),
            }
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err(bad("the host is missing or invalid"));
        }
        let port = match port {
            None => crate::DEFAULT_PORT,
            Some(p) => p
                .parse()
                .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
        };
        if port == 0 {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
        Ok(BrokerUrl {
            host: host.to_owned(),
            port,
            username,
            password,
        })
    }

    /// The host as it goes before `:port`: IPv6 addresses in brackets.
    fn host_port_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// rumqttc options for a TCP connection to this broker.
    pub(crate) fn options(&self, client_id: &str) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, self.host_port_host(), self.port);
        if let Some(username) = &self.username {
            options.set_credentials(username.clone(), self.password.clone().unwrap_or_default());
        }
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        options
    }
}

/// The largest MQTT packet the clients send or accept: rmqtt's default limit.
const MAX_PACKET: usize = 1024 * 1024;

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<credentials>{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How the ingest subscriber connects.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The broker and the credentials to log in with.
    pub broker: BrokerUrl,
    /// The MQTT client id, which names the broker's persistent session. Each
    /// server replica on a shared external broker needs its own. The default,
    /// `cityos:ingest`, is not a valid device id, so no device can take over
    /// the session on the embedded broker.
    pub client_id: String,
    /// Whether to subscribe to device messages. Off when the embedded broker
    /// hands them over in process ([`Broker::deliver_to`](crate::Broker::deliver_to)):
    /// the client then only publishes answers.
    pub subscribe: bool,
}

impl IngestConfig {
    /// A configuration for `broker` with the default client id.
    pub fn new(broker: BrokerUrl) -> IngestConfig {
        IngestConfig {
            broker,
            client_id: "cityos:ingest".to_owned(),
            subscribe: true,
        }
    }
}

/// One message from a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The role the topic belongs to, which says what the payload is.
    pub role: DeviceRole,
    /// The device id taken from the topic. On the embedded broker it is the
    /// id the device logged in with.
    pub device_id: String,
    /// The full topic.
    pub topic: String,
    /// The payload, not yet decoded.
    pub payload: Bytes,
}

/// Counters of the ingest subscriber, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Messages received from the broker, malformed ones included.
    pub received: AtomicU64,
    /// Messages refused before reaching the application: a topic outside the
    /// scheme or an empty payload. A decoder that refuses a payload later
    /// should count it here too.
    pub malformed: AtomicU64,
    /// Messages received that the application could not take because its
    /// channel was closed. They were not acknowledged, so a broker with the
    /// persistent session delivers them again to the next subscriber.
    pub dropped: AtomicU64,
    /// Times the connection to the broker was lost or could not be made.
    pub connection_failures: AtomicU64,
}

/// A running ingest subscriber. Dropping it stops the subscriber.
pub struct Ingest {
    stats: Arc<IngestStats>,
    subscribed: watch::Receiver<bool>,
    task: JoinHandle<()>,
    client: AsyncClient,
}

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Ingest {
    /// Starts the subscriber on the current tokio runtime. Every valid
    /// message goes to `sink`, in the order the broker delivers it. The
    /// subscriber retries forever when the broker is unreachable, and stops
    /// once `sink` is closed.
    pub fn start(config: IngestConfig, sink: mpsc::Sender<Message>) -> Ingest {
        let stats = Arc::new(IngestStats::default());
        let (subscribed_tx, subscribed) = watch::channel(false);
        let mut options = config.broker.options(&config.client_id);
        // A persistent session: the broker queues for us while we reconnect.
        options.set_clean_session(false);
        // Acknowledge only after the application has the message.
        options.set_manual_acks(true);
        // Pending acks and answers wait in the request channel until the next
        // poll. The broker sends no more unacknowledged messages than its
        // in-flight window (256 on the embedded broker, 20 on Mosquitto by
        // default), so acknowledgements never fill it.
        let (client, eventloop) = AsyncClient::new(options, 4096);
        let task = tokio::spawn(run(
            config,
            client.clone(),
            eventloop,
            sink,
            stats.clone(),
            subscribed_tx,
        ));
        Ingest {
            stats,
            subscribed,
            task,
            client,
        }
    }

    /// Publishes the server's answer to a validator's taps on its
    /// [`answer_topic`](crate::topic::answer_topic), at QoS 1.
    pub async fn answer(&self, device_id: &str, payload: Vec<u8>) -> Result<(), MqttError> {
        let topic = crate::topic::answer_topic(device_id).ok_or(MqttError::Stopped)?;
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|_| MqttError::Stopped)
    }

    /// The subscriber's counters.
    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Waits until the broker has granted every subscription at least once
    /// (or, without subscriptions, until connected), so messages published
    /// from then on reach the application. Fails with
    /// [`MqttError::Stopped`] if the subscriber stopped first.
    pub async fn subscribed(&self) -> Result<(), MqttError> {
        let mut rx = self.subscribed.clone();
        rx.wait_for(|s| *s)
            .await
            .map(|_| ())
            .map_err(|_| MqttError::Stopped)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    config: IngestConfig,
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    sink: mpsc::Sender<Message>,
    stats: Arc<IngestStats>,
    subscribed: watch::Sender<bool>,
) {
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let broker = config.broker.to_string();
    let mut backoff = Duration::from_millis(100);
    loop {
        let event = match eventloop.poll().await {
            Ok(event) => event,
            Err(e) => {
                let n = stats.connection_failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(%broker, error = %e, failures = n, retry_in = ?backoff, "MQTT ingest connection failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                backoff = Duration::from_millis(100);
                tracing::info!(%broker, session_present = ack.session_present, "MQTT ingest connected");
                if !config.subscribe {
                    subscribed.send_replace(true);
                    continue;
                }
                // Subscribing again to an existing session is harmless, and
                // a broker that lost the session needs it.
                let filters = INGEST_FILTERS
                    .map(|f| rumqttc::SubscribeFilter::new(f.to_owned(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::error!(error = %e, "cannot queue the MQTT ingest subscription");
                }
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                if ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
                {
                    subscribed.send_replace(true);
                } else {
                    tracing::error!(%broker, codes = ?ack.return_codes, "the broker refused an MQTT ingest subscription; check its ACL");
                }
            }
            Event::Incoming(Packet::Publish(publish)) => {
                if let Some(message) =
                    device_message(&publish.topic, publish.payload.clone(), &stats)
                    && sink.send(message).await.is_err()
                {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("MQTT ingest stopped: the application closed its channel");
                    return;
                }
                // Malformed messages are acknowledged too: sending them again
                // would not make them valid.
                if publish.qos != QoS::AtMostOnce
                    && let Err(e) = client.try_ack(&publish)
                {
                    // Not a loss: the broker sends the message again.
                    tracing::warn!(error = %e, "cannot queue an MQTT acknowledgement");
                }
            }
            _ => {}
        }
    }
}

/// Counts a device message and checks its topic and payload: the message for
/// the application, or `None` (counted and logged) when it is malformed.
pub(crate) fn device_message(topic: &str, payload: Bytes, stats: &IngestStats) -> Option<Message> {
    stats.received.fetch_add(1, Ordering::Relaxed);
    match parse_device_topic(topic) {
        Some(_) if payload.is_empty() => {
            malformed(stats, topic, "empty payload");
            None
        }
        Some((role, device_id)) => Some(Message {
            role,
            device_id: device_id.to_owned(),
            topic: topic.to_owned(),
            payload,
        }),
        None => {
            malformed(stats, topic, "topic outside the cityos scheme");
            None
        }
    }
}

fn malformed(stats: &IngestStats, topic: &str, why: &str) {
    let n = stats.malformed.fetch_add(1, Ordering::Relaxed) + 1;
    if log_now(n) {
        tracing::warn!(topic, malformed_so_far = n, "malformed MQTT message: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = BrokerUrl::parse("mqtt://broker.example:1884").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.username, u.password),
            ("broker.example", 1884, None, None)
        );
        let u = BrokerUrl::parse("mqtt://ingest:p%40ss:w@10.0.0.1/").unwrap();
        assert_eq!(u.host, "10.0.0.1");
        assert_eq!(u.port, 1883);
        assert_eq!(u.username.as_deref(), Some("ingest"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        let u = BrokerUrl::parse("mqtt://[::1]:1999").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
        assert_eq!(u.to_string(), "mqtt://[::1]:1999");
    }

    #[test]
    fn bad_urls_are_refused_without_leaking_the_password() {
        for url in [
            "http://host",
            "mqtt://",
            "mqtt://host:0",
            "mqtt://host:99999",
            "mqtt://host:x",
            "mqtt://[::1",
            "mqtt://u:%zz@host",
            "mqtt://host/path",
        ] {
            assert!(BrokerUrl::parse(url).is_err(), "{url}");
        }
        let e = BrokerUrl::parse("mqtt://u:secret@host:x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        let u = BrokerUrl::parse("mqtt://u:secret@host").unwrap();
        assert!(!format!("{u:?} {u}").contains("secret"));
    }
}
