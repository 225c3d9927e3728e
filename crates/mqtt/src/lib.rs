//! MQTT for cityos: how devices (vehicles publishing positions, card
//! validators publishing taps) reach the server.
//!
//! * [`Broker`] is the embedded broker, meant to run inside `cityos serve` on port 1883.
//!   Devices log in with their id and a password the application checks, and
//!   may publish only their own topic.
//! * [`Ingest`] is the server's subscriber. It receives every device message,
//!   from the embedded broker or from an external one (`mqtt://host:1883`),
//!   and hands it to the application through a channel.
//! * [`DeviceClient`] is a device: the simulator's buses and validators use
//!   it, so they publish exactly as real devices do.
//! * [`topic`] is the topic scheme, in one place.
//! * [`bench_relay`] measures the relay rate of the embedded broker and of
//!   Mosquitto side by side; [`mosquitto`] starts a private Mosquitto for
//!   that and for the tests.
//!
//! # Why rmqtt
//!
//! The embedded broker is [`rmqtt`] 0.24. It runs on the application's own
//! tokio runtime, serves MQTT 3.1, 3.1.1 and 5 on one port, and has hooks
//! for authentication, per-topic publish and subscribe checks, and for every
//! message it drops, which is how the rules and counters below are built.
//! In the relay benchmark ([`bench_relay`]: one publisher process, QoS 0,
//! 200-byte payloads, into the ingest subscriber, which shares the broker's
//! process and cores) it kept pace with Mosquitto on this 2-core machine,
//! about 150,000 messages a second each, and lost none. The alternative,
//! `rumqttd`, measured faster for issue 3, but it drops messages silently,
//! QoS 1 included, once a subscriber lags, has no topic ACLs, needs separate
//! ports for 3.1.1 and 5, and its broker is barely maintained: it cannot
//! meet the invariants below. The price of rmqtt is build time (about 130 crates the
//! workspace did not have, including a QUIC stack, `quinn` with `ring`, that
//! cannot be switched off) and a minimum of Rust 1.94.
//!
//! # Invariants
//!
//! * **A device publishes only its own topic.** The username is the device
//!   id and must also be the client id; the one topic it may publish is
//!   [`device_topic`] of its role and id. Anything else is refused and the
//!   connection closed; devices may not subscribe; nobody is anonymous.
//! * **No accepted message disappears silently.** Loss is prevented where it
//!   can be (queues of a million messages instead of rmqtt's 1,000, no
//!   broker-side expiry, a persistent session for the ingest subscriber, and
//!   acknowledgements only after the application has a message). What is
//!   still lost is counted in [`BrokerStats`] or [`IngestStats`] and logged.
//! * **Network input never panics.** Nothing read from the network goes
//!   through `unwrap`; a topic outside the scheme or an empty payload is
//!   counted as malformed and logged, and the loop goes on. Payloads are
//!   decoded by the application, which counts its refusals in the same
//!   counter.
//! * **The topic scheme lives in [`topic`].** Nothing else spells a topic.
//!
//! Logs go through `tracing`. rmqtt logs through the `log` crate; those
//! lines appear only if the binary forwards `log` records to its subscriber.

pub mod bench;
pub mod broker;
pub mod device;
pub mod ingest;
pub mod mosquitto;
pub mod topic;

pub use bench::{
    DeviceLoad, PublisherArgs, RelayBroker, RelayReport, bench_relay, publish_as_devices,
};
pub use broker::{Broker, BrokerConfig, BrokerStats, DEFAULT_PORT, INGEST_USERNAME};
pub use device::DeviceClient;
pub use ingest::{BrokerUrl, Ingest, IngestConfig, IngestStats, Message};
pub use topic::{DeviceRole, device_topic, parse_device_topic};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A device id that cannot name a topic level.
    #[error("invalid device id {0:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-'")]
    InvalidDeviceId(String),
    /// A broker URL that does not parse.
    #[error(
        "invalid MQTT broker URL {url:?}: {reason} (expected mqtt://[user[:password]@]host[:port])"
    )]
    InvalidUrl {
        /// The URL, with any credentials removed.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The embedded broker could not listen.
    #[error("cannot listen for MQTT on {addr}: {message} (is another broker using the port?)")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The system's reason.
        message: String,
    },
    /// The broker answered the CONNECT with a refusal.
    #[error(
        "the MQTT broker at {broker} refused the connection ({code}); check the username and password"
    )]
    Refused {
        /// The broker, without credentials.
        broker: String,
        /// The broker's return code.
        code: String,
    },
    /// The broker could not be reached or the connection failed.
    #[error("cannot talk to the MQTT broker at {broker}")]
    Connection {
        /// The broker, without credentials.
        broker: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The client's background task has stopped.
    #[error("the MQTT client has stopped")]
    Stopped,
    /// Mosquitto could not be started.
    #[error("cannot run mosquitto: {0}")]
    Mosquitto(String),
    /// The relay benchmark could not run.
    #[error("relay benchmark failed: {0}")]
    Bench(String),
}

/// Whether to log the `n`th occurrence of something that can repeat at
/// network speed: the 1st, 2nd, 4th, 8th, … so logs stay bounded while the
/// counters keep the exact number.
pub(crate) fn log_now(n: u64) -> bool {
    n.is_power_of_two()
}
