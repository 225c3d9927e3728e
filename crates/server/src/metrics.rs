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
use prometheus_client::registry::{Metric, Registry};

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
    fn register(r: &mut Registry) -> DomainMetrics {
        DomainMetrics {
            card_batches: registered(
                r,
                "card_journal_batches",
                "Group commits written to the card journal",
            ),
            card_operations: registered(
                r,
                "card_operations",
                "Card operations made durable (repeats excluded)",
            ),
            card_taps: registered(
                r,
                "card_taps",
                "Taps made durable, by result (accepted or refused)",
            ),
            card_commit_failures: registered(
                r,
                "card_commit_failures",
                "Card commits that failed; nothing in them was acknowledged (alarm if above 0)",
            ),
            complaints_open: registered(
                r,
                "complaints_open",
                "Complaints filed in the last 90 days and still open, by department",
            ),
            complaints_overdue: registered(
                r,
                "complaints_overdue",
                "Open complaints past their deadline, by department",
            ),
        }
    }
}

/// A new metric, registered as `name` with `help`, handed back for updating.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
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
        let r = &mut registry;
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            durations.clone(),
        );
        Arc::new(Metrics {
            requests: registered(r, "http_requests", "HTTP requests answered"),
            durations,
            network_stop_times: registered(
                r,
                "network_stop_times",
                "Stop times in the served transit network",
            ),
            network_id: registered(r, "network_id", "Store id of the served transit network"),
            network_reload_failures: registered(
                r,
                "network_reload_failures",
                "Failed attempts to load the active network from the store",
            ),
            positions_accepted: registered(
                r,
                "positions_accepted",
                "Vehicle positions taken in by the real-time engine",
            ),
            positions_refused: registered(
                r,
                "positions_rejected",
                "Vehicle positions refused, by reason",
            ),
            feed_poll_failures: registered(
                r,
                "feed_poll_failures",
                "Failed polls of GTFS-realtime feeds of other systems",
            ),
            domain: DomainMetrics::register(r),
            mqtt_taps: registered(
                r,
                "mqtt_tap_messages",
                "Validator messages received over MQTT",
            ),
            mqtt_positions: registered(
                r,
                "mqtt_position_messages",
                "Vehicle position messages received over MQTT",
            ),
            mqtt_malformed: registered(r, "mqtt_malformed", "MQTT payloads that could not be read"),
            mqtt_dropped: registered(
                r,
                "mqtt_dropped",
                "MQTT messages dropped by the broker or the ingest (alarm if above 0)",
            ),
            mqtt_refused: registered(
                r,
                "mqtt_refused",
                "MQTT connections, publishes and subscriptions refused by the access rules",
            ),
            mqtt_received: registered(r, "mqtt_received", "MQTT messages received by the ingest"),
            registry,
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
