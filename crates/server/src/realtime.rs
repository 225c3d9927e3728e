//! Live vehicles: positions in (HTTP or MQTT, GTFS-realtime protobuf), the
//! real-time engine of `cityos-realtime`, and the TripUpdates feed out.
//!
//! The engine is bound to one network; when another network is served, the
//! next position starts a fresh engine on it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cityos_realtime::gtfsrt::FeedMessage;
use cityos_realtime::{Config, DecodeError, Engine, for_each_position};
use cityos_transit::Network;

use crate::metrics::Metrics;
use crate::network::Served;

/// What one batch of positions did.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct IngestSummary {
    /// Positions taken in.
    pub accepted: u64,
    /// Positions refused, by reason (`unknown_trip`, `stale`, `off_route`, …).
    pub rejected: BTreeMap<String, u64>,
}

/// The engine of the served network, if any position has arrived yet.
#[derive(Default)]
pub struct LiveTransit {
    engine: Mutex<Option<(i64, Engine<Arc<Network>>)>>,
}

impl LiveTransit {
    /// Takes in a GTFS-realtime feed of vehicle positions, judged against `now` (POSIX seconds).
    pub fn ingest(
        &self,
        served: &Served,
        bytes: &[u8],
        now: i64,
        metrics: &Metrics,
    ) -> Result<IngestSummary, DecodeError> {
        let mut guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|(id, _)| *id != served.id) {
            *guard = Some((
                served.id,
                Engine::new(served.network.clone(), Config::default()),
            ));
        }
        let Some((_, engine)) = guard.as_mut() else {
            return Ok(IngestSummary::default());
        };
        let mut summary = IngestSummary::default();
        for_each_position(bytes, |view| match engine.ingest(view, now) {
            Ok(_) => summary.accepted += 1,
            Err(rejection) => {
                metrics.positions_rejected(rejection.as_str());
                *summary
                    .rejected
                    .entry(rejection.as_str().to_owned())
                    .or_default() += 1;
            }
        })?;
        metrics.positions_accepted.inc_by(summary.accepted);
        // Arrivals detected are the engine's own history; nothing else consumes them yet.
        engine.drain_events().for_each(drop);
        engine.expire(now);
        Ok(summary)
    }

    /// The TripUpdates feed as of `now`, or an empty feed before any position arrived.
    pub fn trip_updates(&self, now: i64) -> FeedMessage {
        let guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some((_, engine)) => engine.trip_updates(now),
            None => cityos_realtime::decode::positions_to_feed(&[], now),
        }
    }
}
