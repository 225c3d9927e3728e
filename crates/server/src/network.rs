//! The network being served, swapped whole when a new one becomes active.
//!
//! Requests take an `Arc` to the current network and keep using it even if
//! a swap happens meanwhile; the old network is freed when the last request
//! holding it ends. Every replica polls the store for the active network's
//! id, so an import through any replica (or the CLI) reaches all of them.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use cityos_store::Store;
use cityos_transit::Network;

use crate::metrics::Metrics;

/// How often replicas look for a newly activated network.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A network with the store id it was loaded from.
#[derive(Debug)]
pub struct Served {
    /// Store id (0 for a network that was never stored).
    pub id: i64,
    /// The network, shared with whoever prices or predicts on it.
    pub network: Arc<Network>,
}

/// Shared handle to the served network.
#[derive(Clone, Default)]
pub struct NetworkHandle {
    current: Arc<RwLock<Option<Arc<Served>>>>,
}

impl NetworkHandle {
    /// The network being served, if any.
    pub fn get(&self) -> Option<Arc<Served>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the served network.
    pub fn set(&self, served: Served, metrics: &Metrics) {
        metrics
            .network_stop_times
            .set(served.network.data().stop_times.len() as i64);
        metrics.network_id.set(served.id);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(served));
    }

    /// Loads the store's active network if it differs from the served one.
    /// Returns whether a new network is now served.
    pub async fn refresh(&self, store: &Store, metrics: &Metrics) -> Result<bool, String> {
        let Some(record) = store.active_network().await.map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        if self.get().is_some_and(|s| s.id == record.id) {
            return Ok(false);
        }
        let bytes = store
            .network_bytes(record.id)
            .await
            .map_err(|e| e.to_string())?;
        let network = tokio::task::spawn_blocking(move || Network::from_bytes(&bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("network {}: {e}", record.id))?;
        tracing::info!(id = record.id, source = %record.source, "serving network");
        self.set(
            Served {
                id: record.id,
                network: Arc::new(network),
            },
            metrics,
        );
        Ok(true)
    }

    /// Polls the store forever, swapping in newly activated networks.
    pub async fn watch(self, store: Store, metrics: Arc<Metrics>) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh(&store, &metrics).await {
                metrics.network_reload_failures.inc();
                tracing::warn!("could not reload the active network: {e}");
            }
        }
    }
}

/// Why an import did not replace the served network.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The feed is unreadable or has errors; the report says which.
    #[error(transparent)]
    Feed(#[from] cityos_transit::LoadError),
    /// The store refused the network.
    #[error("storing the network failed: {0}")]
    Store(#[from] cityos_store::StoreError),
    /// The loader thread died.
    #[error("import task failed: {0}")]
    Task(String),
}

/// A network imported, stored and made active.
#[derive(Debug)]
pub struct Imported {
    /// What the store now holds.
    pub record: cityos_store::networks::NetworkRecord,
    /// Warnings from the feed.
    pub report: cityos_transit::Report,
    /// The network itself.
    pub network: Network,
}

/// Loads the GTFS feed at `path`, stores it and makes it the active network.
///
/// Nothing changes unless every step succeeds: a feed with errors never
/// reaches the store, and the store flips to the new network in one statement.
pub async fn import_feed(
    store: &Store,
    path: std::path::PathBuf,
    source: &str,
    progress: impl Fn(cityos_transit::Progress<'_>) + Send + 'static,
) -> Result<Imported, ImportError> {
    let (network, report, bytes) = tokio::task::spawn_blocking(move || {
        let (network, report) = cityos_transit::load_network(&path, &progress)?;
        let bytes = network.to_bytes();
        Ok::<_, cityos_transit::LoadError>((network, report, bytes))
    })
    .await
    .map_err(|e| ImportError::Task(e.to_string()))??;
    let summary = serde_json::to_string(&network.summary()).unwrap_or_default();
    let record = store.save_network(source, &summary, &bytes).await?;
    Ok(Imported {
        record,
        report,
        network,
    })
}
