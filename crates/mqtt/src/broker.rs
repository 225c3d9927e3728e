//! The embedded broker: `rmqtt` on the application's tokio runtime, with
//! cityos's own authentication, topic rules and loss accounting installed as
//! hooks.
//!
//! Who may do what is decided here and nowhere else:
//!
//! * a device logs in with its id as username and client id and a password
//!   the application checks; it may publish only to [`device_topic`] of its
//!   role and id, and a validator may subscribe only to its own
//!   [`answer_topic`](crate::topic::answer_topic);
//! * the ingest subscriber logs in as [`INGEST_USERNAME`] with a random
//!   password made when the broker starts (see [`Broker::ingest_config`]);
//!   it may subscribe to anything and publish only answers to validators;
//! * nobody connects anonymously.
//!
//! A publish outside these rules is refused and the connection closed (the
//! only refusal MQTT 3.1.1 has for QoS 1), so nothing a device was not
//! allowed to send ever reaches a subscriber.
//!
//! With [`Broker::deliver_to`], a device's message goes to the application
//! straight from the publish check, in process: no subscription, no queue,
//! no second encoding over loopback. The device's connection waits while the
//! application's channel is full, so nothing is dropped, and a QoS 1 publish
//! is acknowledged only once the application has it. Subscribers (the
//! ingest subscriber of a replica, a dashboard) still receive it as usual.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::acl::{Action, AuthInfo, Permission, Rule, Topic as AclTopic};
use rmqtt::codec::v5::{PublishAckReason, SubscribeAckReason};
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::session::Session;
use rmqtt::types::{
    AuthResult, ConnectInfo, LastWill, PublishAclResult, Reason, SubscribeAclResult,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ingest::{BrokerUrl, IngestConfig, IngestStats, Message, device_message};
use crate::topic::{
    DeviceRole, answer_topic, device_topic, is_valid_device_id, parse_answer_topic,
};
use crate::{MqttError, log_now};

/// The username of the ingest subscriber on the embedded broker. It is not a
/// valid device id (`$` is not allowed), so no device can take it.
pub const INGEST_USERNAME: &str = "$cityos-ingest";

/// The port devices connect to unless configured otherwise.
pub const DEFAULT_PORT: u16 = 1883;

/// How the embedded broker listens and how much it buffers.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to listen. The default, `127.0.0.1:1883`, only accepts
    /// connections from this machine; use `0.0.0.0:1883` for real devices.
    pub listen: SocketAddr,
    /// How many messages the broker holds for one subscriber that is slow
    /// or disconnected. When it is full the oldest QoS 1 message (or the
    /// newest QoS 0 one) is dropped and counted in [`BrokerStats::dropped`].
    /// rmqtt's own default, 1,000, drops within a second at Seoul's rate
    /// during a short ingest hiccup; the default here, 1,000,000, covers
    /// about 15 minutes of a Seoul-sized city (roughly 0.5 GB at worst).
    pub max_queue: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            max_queue: 1_000_000,
        }
    }
}

/// What the broker refused or lost, as plain counters for `/metrics`.
///
/// Every message the broker accepted from a publisher and did not deliver is
/// in `dropped` or `unrouted`, and is logged.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Connections refused: bad credentials, an invalid device id, a client
    /// id other than the device id, or a will on a forbidden topic.
    pub connections_refused: AtomicU64,
    /// Publishes refused because the topic is not the publisher's own.
    pub publishes_refused: AtomicU64,
    /// Subscriptions refused (a device may subscribe only to its own answers).
    pub subscriptions_refused: AtomicU64,
    /// Accepted messages dropped before delivery: a full subscriber queue, or
    /// expiry a publisher asked for.
    pub dropped: AtomicU64,
    /// Accepted messages that matched no subscription, typically because the
    /// ingest subscriber had not subscribed yet. Device messages delivered in
    /// process ([`Broker::deliver_to`]) need no subscription and are not counted.
    pub unrouted: AtomicU64,
}

/// Checks a device's credentials: `(device_id, password)` to the device's
/// role, or `None` to refuse. It runs on tokio's blocking pool, so it may
/// hash passwords or wait for the store.
type Authenticator = dyn Fn(&str, &str) -> Option<DeviceRole> + Send + Sync;

/// A running embedded broker. Dropping it stops accepting connections;
/// connections already open end when their clients leave.
pub struct Broker {
    local_addr: SocketAddr,
    ingest_password: String,
    stats: Arc<BrokerStats>,
    hooks: Arc<Hooks>,
    server: JoinHandle<()>,
}

impl Broker {
    /// Binds `config.listen` and starts serving MQTT 3.1, 3.1.1 and 5 on the
    /// current tokio runtime. `authenticate` decides which devices may
    /// connect and what they are.
    pub async fn start(
        config: BrokerConfig,
        authenticate: impl Fn(&str, &str) -> Option<DeviceRole> + Send + Sync + 'static,
    ) -> Result<Broker, MqttError> {
        let bind_error = |e: rmqtt::Error| MqttError::Bind {
            addr: config.listen,
            message: e.to_string(),
        };
        // The busy check refuses handshakes while the machine's load average
        // is high; a device must never be refused because a build is running.
        let scx = ServerContext::new().busy_check_enable(false).build().await;
        let ingest_password = random_password();
        let stats = Arc::new(BrokerStats::default());
        let hooks = Arc::new(Hooks {
            authenticate: Arc::new(authenticate),
            ingest_password: ingest_password.clone(),
            stats: stats.clone(),
            sink: std::sync::OnceLock::new(),
        });
        let register = scx.extends.hook_mgr().register();
        for typ in [
            Type::ClientAuthenticate,
            Type::ClientSubscribeCheckAcl,
            Type::MessagePublishCheckAcl,
            Type::MessageDropped,
            Type::MessageNonsubscribed,
        ] {
            register
                .add(typ, Box::new(HookHandler(hooks.clone())))
                .await;
        }
        register.start().await;

        let listener = Builder::new()
            .name("cityos")
            .laddr(config.listen)
            // Nagle's algorithm left on, as in Mosquitto's default: under
            // load it packs many small messages into one segment, and when
            // idle it sends at once anyway.
            .nodelay(false)
            .reuseaddr(Some(true))
            .allow_anonymous(false)
            .max_mqueue_len(config.max_queue)
            // Unacknowledged messages per client. The default of 16 caps a
            // QoS 1 subscriber at 16 messages per round trip.
            .max_inflight(NonZeroU16::new(256).unwrap_or(NonZeroU16::MIN))
            // rmqtt expires queued messages after 5 minutes by default; a
            // card tap must not vanish because ingest was down for 6. Zero
            // keeps them until delivered (a publisher may still set expiry).
            .message_expiry_interval(Duration::ZERO)
            .bind()
            .map_err(bind_error)?
            .tcp()
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let server = MqttServer::new(scx).listener(listener).build();
        let server = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!(error = %e, "the embedded MQTT broker stopped");
            }
        });
        tracing::info!(%local_addr, "embedded MQTT broker listening");
        Ok(Broker {
            local_addr,
            ingest_password,
            stats,
            hooks,
            server,
        })
    }

    /// The address the broker listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters of refused and lost messages.
    pub fn stats(&self) -> &Arc<BrokerStats> {
        &self.stats
    }

    /// Hands every device message the broker accepts from now on to `sink`,
    /// in process, counting it in `stats` as the ingest subscriber would.
    /// Pair it with an ingest client that does not subscribe
    /// ([`IngestConfig::subscribe`] off), which then only publishes answers.
    /// Only the first call takes effect.
    pub fn deliver_to(&self, sink: mpsc::Sender<Message>, stats: Arc<IngestStats>) {
        let _ = self.hooks.sink.set((sink, stats));
    }

    /// How the server's ingest subscriber connects to this broker: loopback,
    /// as [`INGEST_USERNAME`] with this broker's random password.
    ///
    /// Start the subscriber right after the broker and await
    /// [`Ingest::subscribed`](crate::Ingest::subscribed): a device message
    /// that arrives before the subscription exists has nowhere to go and is
    /// counted in [`BrokerStats::unrouted`].
    pub fn ingest_config(&self) -> IngestConfig {
        let host = if self.local_addr.ip().is_unspecified() {
            // Listening on all addresses includes loopback.
            match self.local_addr {
                SocketAddr::V4(_) => "127.0.0.1".to_owned(),
                SocketAddr::V6(_) => "::1".to_owned(),
            }
        } else {
            self.local_addr.ip().to_string()
        };
        IngestConfig::new(BrokerUrl {
            host,
            port: self.local_addr.port(),
            username: Some(INGEST_USERNAME.to_owned()),
            password: Some(self.ingest_password.clone()),
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// 32 random bytes in hex: the ingest subscriber's password, new at every start.
fn random_password() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Hooks {
    authenticate: Arc<Authenticator>,
    ingest_password: String,
    stats: Arc<BrokerStats>,
    /// Where device messages go in process, once [`Broker::deliver_to`] was called.
    sink: std::sync::OnceLock<(mpsc::Sender<Message>, Arc<IngestStats>)>,
}

/// Who a connection turned out to be.
enum Identity {
    Ingest,
    Device(DeviceRole),
}

impl Hooks {
    /// Decides a CONNECT. A device's grant (its one topic) is stored in the
    /// session's `AuthInfo` as an rmqtt rule, so the publish check needs no
    /// lookup; the ingest subscriber is recognised by its username.
    async fn authenticate(&self, connect: &ConnectInfo) -> AuthResult {
        let client_id = connect.client_id().to_string();
        let refuse = |why: &str| {
            let n = self
                .stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            if log_now(n) {
                tracing::warn!(%client_id, refused_so_far = n, "MQTT connection refused: {why}");
            }
            AuthResult::BadUsernameOrPassword
        };
        let (Some(username), Some(password)) = (connect.username(), connect.password()) else {
            return refuse("no username or password");
        };
        let username = username.to_string();
        let Ok(password) = std::str::from_utf8(password) else {
            return refuse("password is not UTF-8");
        };
        let identity = if username == INGEST_USERNAME {
            if !constant_time_eq(password.as_bytes(), self.ingest_password.as_bytes()) {
                return refuse("bad ingest password");
            }
            Identity::Ingest
        } else {
            if !is_valid_device_id(&username) {
                return refuse("username is not a valid device id");
            }
            // The client id must be the device id: MQTT lets a new connection
            // take over the session of the same client id, so a free choice
            // would let one device disconnect another.
            if client_id != username {
                return refuse("client id differs from the device id");
            }
            let check = self.authenticate.clone();
            let (user, pass) = (username.clone(), password.to_owned());
            match tokio::task::spawn_blocking(move || check(&user, &pass)).await {
                Ok(Some(role)) => Identity::Device(role),
                Ok(None) => return refuse("bad device credentials"),
                Err(e) => {
                    tracing::error!(error = %e, "the MQTT authentication callback panicked");
                    return refuse("authentication failed");
                }
            }
        };
        let rules = match identity {
            Identity::Ingest => Vec::new(),
            Identity::Device(role) => {
                let Some(topic) = device_topic(role, &username) else {
                    return refuse("username is not a valid device id");
                };
                let mut rules = vec![Rule {
                    permission: Permission::Allow,
                    action: Action::Publish,
                    qos: None,
                    retain: None,
                    topic: AclTopic {
                        eq_topic_filter: Some(topic),
                        topic_filter: None,
                    },
                }];
                if role == DeviceRole::Validator
                    && let Some(answers) = answer_topic(&username)
                {
                    rules.push(Rule {
                        permission: Permission::Allow,
                        action: Action::Subscribe,
                        qos: None,
                        retain: None,
                        topic: AclTopic {
                            eq_topic_filter: Some(answers),
                            topic_filter: None,
                        },
                    });
                }
                rules
            }
        };
        let auth = AuthInfo {
            superuser: false,
            expire_at: None,
            rules,
        };
        // rmqtt publishes a will without the publish check, so it is
        // checked here, against the same grant.
        if let Some(will) = connect.last_will() {
            let topic = match will {
                LastWill::V3(w) => &w.topic,
                LastWill::V5(w) => &w.topic,
            };
            if !may_publish(&auth, topic) {
                return refuse("will on a topic the client may not publish");
            }
        }
        AuthResult::Allow(false, Some(auth))
    }

    fn check_publish(&self, session: &Session, topic: &str) -> PublishAclResult {
        let ingest_answer = session.id.username.as_deref() == Some(INGEST_USERNAME)
            && parse_answer_topic(topic).is_some();
        if ingest_answer
            || session
                .auth_info
                .as_ref()
                .is_some_and(|a| may_publish(a, topic))
        {
            return PublishAclResult::allow();
        }
        let n = self.stats.publishes_refused.fetch_add(1, Ordering::Relaxed) + 1;
        if log_now(n) {
            tracing::warn!(
                client_id = %session.id.client_id,
                topic,
                refused_so_far = n,
                "MQTT publish refused: not the client's own topic; disconnecting it"
            );
        }
        PublishAclResult::rejected(true, Some("not this device's topic".into()))
    }

    fn check_subscribe(&self, session: &Session, filter: &str) -> bool {
        if session.id.username.as_deref() == Some(INGEST_USERNAME) {
            return true;
        }
        // A validator may follow its own answers, and nothing else.
        let own_answers = session.auth_info.as_ref().is_some_and(|a| {
            a.rules.iter().any(|r| {
                matches!(r.permission, Permission::Allow)
                    && matches!(r.action, Action::Subscribe)
                    && r.topic.eq_topic_filter.as_deref() == Some(filter)
            })
        });
        if own_answers {
            return true;
        }
        let n = self
            .stats
            .subscriptions_refused
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if log_now(n) {
            tracing::warn!(
                client_id = %session.id.client_id,
                filter,
                refused_so_far = n,
                "MQTT subscription refused: a device may subscribe only to its own answers"
            );
        }
        false
    }

    fn dropped(&self, reason: &Reason, topic: &str) {
        // A refused publish reaches this hook too; it is already counted.
        if let Reason::PublishResult(r) = reason
            && matches!(r.reason_code, PublishAckReason::NotAuthorized)
        {
            return;
        }
        let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if log_now(n) {
            tracing::warn!(
                topic,
                ?reason,
                dropped_so_far = n,
                "MQTT message dropped by the broker; raise the queue size if the subscriber lags"
            );
        }
    }

    /// Hands an allowed device message to the application, waiting while its
    /// channel is full. `false` when the application has stopped taking them.
    async fn deliver(&self, topic: &str, payload: bytes::Bytes) -> bool {
        let Some((sink, stats)) = self.sink.get() else {
            return true;
        };
        let Some(message) = device_message(topic, payload, stats) else {
            return true;
        };
        if sink.send(message).await.is_err() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn unrouted(&self, publisher: Option<&str>) {
        // In-process delivery took every device message already.
        if self.sink.get().is_some() && publisher != Some(INGEST_USERNAME) {
            return;
        }
        let n = self.stats.unrouted.fetch_add(1, Ordering::Relaxed) + 1;
        if log_now(n) {
            tracing::warn!(
                unrouted_so_far = n,
                "MQTT message matched no subscription (is the ingest subscriber connected?)"
            );
        }
    }
}

/// Whether the grant in `auth` covers publishing to `topic`.
fn may_publish(auth: &AuthInfo, topic: &str) -> bool {
    auth.rules.iter().any(|r| {
        matches!(r.permission, Permission::Allow)
            && matches!(r.action, Action::Publish)
            && r.topic.eq_topic_filter.as_deref() == Some(topic)
    })
}

struct HookHandler(Arc<Hooks>);

#[async_trait]
impl Handler for HookHandler {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let hooks = &self.0;
        match param {
            Parameter::ClientAuthenticate(connect) => {
                let result = hooks.authenticate(connect).await;
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let mut result = hooks.check_publish(session, &publish.topic);
                let from_device = session.id.username.as_deref() != Some(INGEST_USERNAME);
                if result.is_allow()
                    && from_device
                    && !hooks.deliver(&publish.topic, publish.payload.clone()).await
                {
                    // Refused, not lost: the device sends it again once the server is back.
                    result =
                        PublishAclResult::rejected(true, Some("the server is stopping".into()));
                }
                (false, Some(HookResult::PublishAclResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let result = if hooks.check_subscribe(session, &subscribe.topic_filter) {
                    SubscribeAclResult::new_success(subscribe.opts.qos(), None)
                } else {
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            Parameter::MessageDropped(_, _, publish, reason) => {
                hooks.dropped(reason, &publish.topic);
                (true, acc)
            }
            Parameter::MessageNonsubscribed(from) => {
                hooks.unrouted(from.id.username.as_deref());
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}
