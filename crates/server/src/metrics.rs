//! Prometheus metrics, served at `/metrics` in the text exposition format.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::AppState;

/// Labels of per-request metrics; `path` is the route pattern, never the raw URL, to bound cardinality.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    method: String,
    path: String,
    status: u16,
}

/// Label of refused positions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    reason: String,
}

/// Labels of duration histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    method: String,
    path: String,
}

/// Label of a tap's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    result: &'static str,
}

/// Label of a department or district office.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DepartmentLabels {
    department: String,
}

/// Metrics copied from the domain services at each scrape.
struct DomainMetrics {
    card_batches: Counter,
    card_operations: Counter,
    card_taps: Family<OutcomeLabels, Counter>,
    card_commit_failures: Counter,
    complaints_open: Family<DepartmentLabels, Gauge>,
    complaints_overdue: Family<DepartmentLabels, Gauge>,
}

impl DomainMetrics {
    fn register(registry: &mut Registry) -> DomainMetrics {
        let m = DomainMetrics {
            card_batches: Counter::default(),
            card_operations: Counter::default(),
            card_taps: Family::default(),
            card_commit_failures: Counter::default(),
            complaints_open: Family::default(),
            complaints_overdue: Family::default(),
        };
        registry.register(
            "card_journal_batches",
            "Group commits written to the card journal",
            m.card_batches.clone(),
        );
        registry.register(
            "card_operations",
            "Card operations made durable (repeats excluded)",
            m.card_operations.clone(),
        );
        registry.register(
            "card_taps",
            "Taps made durable, by result (accepted or refused)",
            m.card_taps.clone(),
        );
        registry.register(
            "card_commit_failures",
            "Card commits that failed; nothing in them was acknowledged (alarm if above 0)",
            m.card_commit_failures.clone(),
        );
        registry.register(
            "complaints_open",
            "Complaints filed in the last 90 days and still open, by department",
            m.complaints_open.clone(),
        );
        registry.register(
            "complaints_overdue",
            "Open complaints past their deadline, by department",
            m.complaints_overdue.clone(),
        );
        m
    }
}

/// How far back the complaint gauges look: the Open311 listing's default window.
const COMPLAINT_WINDOW_S: i64 = 90 * 86_400;

/// Sets a counter to a total kept elsewhere (the domain's own atomic).
fn mirror(counter: &Counter, total: &std::sync::atomic::AtomicU64) {
    use std::sync::atomic::Ordering::Relaxed;
    counter.inner().store(total.load(Relaxed), Relaxed);
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Stop times in the network being served.
    pub network_stop_times: Gauge,
    /// Id of the network being served (0 when none).
    pub network_id: Gauge,
    /// Network reloads that failed (bad stored bytes, store down).
    pub network_reload_failures: Counter,
    /// Vehicle positions taken in by the real-time engine.
    pub positions_accepted: Counter,
    positions_refused: Family<ReasonLabels, Counter>,
    /// Failed polls of GTFS-realtime feeds of other systems.
    pub feed_poll_failures: Counter,
    /// Validator messages received over MQTT.
    pub mqtt_taps: Counter,
    /// Vehicle position messages received over MQTT.
    pub mqtt_positions: Counter,
    /// MQTT payloads that could not be read.
    pub mqtt_malformed: Counter,
    /// MQTT messages the broker or the ingest dropped (should stay 0: alarm on it).
    pub mqtt_dropped: Gauge,
    /// MQTT connections, publishes and subscriptions refused by the access rules.
    pub mqtt_refused: Gauge,
    /// MQTT messages the ingest received.
    pub mqtt_received: Gauge,
    domain: DomainMetrics,
}

fn duration_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ])
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("cityos");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let network_stop_times = Gauge::default();
        let network_id = Gauge::default();
        let network_reload_failures = Counter::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            durations.clone(),
        );
        registry.register(
            "network_stop_times",
            "Stop times in the served transit network",
            network_stop_times.clone(),
        );
        registry.register(
            "network_id",
            "Store id of the served transit network",
            network_id.clone(),
        );
        registry.register(
            "network_reload_failures",
            "Failed attempts to load the active network from the store",
            network_reload_failures.clone(),
        );
        let positions_accepted = Counter::default();
        let positions_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "positions_accepted",
            "Vehicle positions taken in by the real-time engine",
            positions_accepted.clone(),
        );
        registry.register(
            "positions_rejected",
            "Vehicle positions refused, by reason",
            positions_refused.clone(),
        );
        let feed_poll_failures = Counter::default();
        registry.register(
            "feed_poll_failures",
            "Failed polls of GTFS-realtime feeds of other systems",
            feed_poll_failures.clone(),
        );
        let domain = DomainMetrics::register(&mut registry);
        let mqtt_taps = Counter::default();
        let mqtt_positions = Counter::default();
        let mqtt_malformed = Counter::default();
        let mqtt_dropped = Gauge::default();
        let mqtt_refused = Gauge::default();
        let mqtt_received = Gauge::default();
        registry.register(
            "mqtt_tap_messages",
            "Validator messages received over MQTT",
            mqtt_taps.clone(),
        );
        registry.register(
            "mqtt_position_messages",
            "Vehicle position messages received over MQTT",
            mqtt_positions.clone(),
        );
        registry.register(
            "mqtt_malformed",
            "MQTT payloads that could not be read",
            mqtt_malformed.clone(),
        );
        registry.register(
            "mqtt_dropped",
            "MQTT messages dropped by the broker or the ingest (alarm if above 0)",
            mqtt_dropped.clone(),
        );
        registry.register(
            "mqtt_refused",
            "MQTT connections, publishes and subscriptions refused by the access rules",
            mqtt_refused.clone(),
        );
        registry.register(
            "mqtt_received",
            "MQTT messages received by the ingest",
            mqtt_received.clone(),
        );
        Arc::new(Metrics {
            domain,
            positions_accepted,
            positions_refused,
            feed_poll_failures,
            mqtt_taps,
            mqtt_positions,
            mqtt_malformed,
            mqtt_dropped,
            mqtt_refused,
            mqtt_received,
            registry,
            requests,
            durations,
            network_stop_times,
            network_id,
            network_reload_failures,
        })
    }

    /// Counts a refused position under its reason.
    pub fn positions_rejected(&self, reason: &str) {
        self.positions_refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Copies the card desk's and the complaint desk's figures in, for a scrape.
    pub async fn observe_domains(&self, state: &AppState) {
        let d = &self.domain;
        if let Some(desk) = &state.cards {
            let stats = desk.stats();
            mirror(&d.card_batches, &stats.batches);
            mirror(&d.card_operations, &stats.operations);
            mirror(&d.card_commit_failures, &stats.commit_failures);
            for (result, total) in [
                ("accepted", &stats.taps_accepted),
                ("refused", &stats.taps_refused),
            ] {
                mirror(&d.card_taps.get_or_create(&OutcomeLabels { result }), total);
            }
        }
        if let Some(civic) = &state.civic {
            let now = jiff::Timestamp::now().as_second();
            match civic
                .store()
                .handling_counts(false, now - COMPLAINT_WINDOW_S, now)
                .await
            {
                Ok(counts) => {
                    d.complaints_open.clear();
                    d.complaints_overdue.clear();
                    for c in counts {
                        let labels = DepartmentLabels { department: c.key };
                        d.complaints_open
                            .get_or_create(&labels)
                            .set(c.total - c.in_time - c.late);
                        d.complaints_overdue.get_or_create(&labels).set(c.overdue);
                    }
                }
                // The scrape still answers; the gauges keep their last values.
                Err(e) => tracing::warn!("complaint counts for /metrics: {e}"),
            }
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts and times every routed request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method: method.clone(),
        path: path.clone(),
        status: response.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .durations
        .get_or_create(&RouteLabels { method, path })
        .observe(start.elapsed().as_secs_f64());
    response
}
