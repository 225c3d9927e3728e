//! Rows of real-time transit: the stop arrivals and departures detected
//! from vehicles (history, append-only), and incidents.
//!
//! The store knows nothing of the real-time engine: events arrive as plain
//! rows, and an incident's content is JSON written by the server.

use crate::{Row, Store, StoreError, Value};

/// One detected arrival at, or departure from, a stop.
#[derive(Debug, Clone, PartialEq)]
pub struct StopEventRow {
    /// Service date of the run, `YYYY-MM-DD`.
    pub service_date: String,
    /// The trip.
    pub trip_id: String,
    /// The stop time's `stop_sequence`.
    pub stop_sequence: i64,
    /// The stop.
    pub stop_id: String,
    /// `arrival` or `departure`.
    pub kind: String,
    /// When, Unix seconds.
    pub at: i64,
    /// Whether the moment was seen rather than interpolated.
    pub observed: bool,
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Assigned by the store.
    pub id: i64,
    /// `proposed`, `active`, `resolved` or `dismissed`.
    pub status: String,
    /// `operator`, or what detected it (`stalled`, `bunched`).
    pub source: String,
    /// What an automatic incident is about; one open incident per key.
    pub detection_key: Option<String>,
    /// The incident as JSON.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

fn incident_row(row: Row) -> Result<IncidentRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(IncidentRow {
        id: next().as_i64().ok_or(StoreError::Shape("incident id"))?,
        status: next().into_string().unwrap_or_default(),
        source: next().into_string().unwrap_or_default(),
        detection_key: next().into_string(),
        body: next().into_string().unwrap_or_default(),
        created_at: next().as_i64().unwrap_or(0),
        updated_at: next().as_i64().unwrap_or(0),
    })
}

impl Store {
    /// Appends detected stop events in one transaction; an event already
    /// stored (same run, stop and kind) is kept as it was.
    pub async fn append_stop_events(&self, events: Vec<StopEventRow>) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO stop_events (service_date, trip_id, stop_sequence, stop_id, kind, at, observed) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
        if events.is_empty() {
            return Ok(());
        }
        let statements = events
            .into_iter()
            .map(|e| {
                (
                    SQL,
                    vec![
                        e.service_date.into(),
                        e.trip_id.into(),
                        e.stop_sequence.into(),
                        e.stop_id.into(),
                        e.kind.into(),
                        e.at.into(),
                        i64::from(e.observed).into(),
                    ],
                )
            })
            .collect();
        self.transaction(statements).await
    }

    /// The stop events of one run, in stop order.
    pub async fn stop_events_of(
        &self,
        trip_id: &str,
        service_date: &str,
    ) -> Result<Vec<StopEventRow>, StoreError> {
        const SQL: &str = "SELECT service_date, trip_id, stop_sequence, stop_id, kind, at, observed FROM stop_events WHERE trip_id = ? AND service_date = ? ORDER BY stop_sequence, at";
        self.query(SQL, vec![trip_id.into(), service_date.into()])
            .await?
            .into_iter()
            .map(|row| {
                let mut v = row.into_iter();
                let mut next = || v.next().unwrap_or(Value::Null);
                Ok(StopEventRow {
                    service_date: next().into_string().unwrap_or_default(),
                    trip_id: next().into_string().unwrap_or_default(),
                    stop_sequence: next().as_i64().ok_or(StoreError::Shape("stop_sequence"))?,
                    stop_id: next().into_string().unwrap_or_default(),
                    kind: next().into_string().unwrap_or_default(),
                    at: next().as_i64().unwrap_or(0),
                    observed: next().as_i64() == Some(1),
                })
            })
            .collect()
    }

    /// Records an incident. An automatic one whose `detection_key` already
    /// has an open (proposed or active) incident is not recorded again:
    /// `Ok(None)`.
    pub async fn create_incident(
        &self,
        status: &str,
        source: &str,
        detection_key: Option<&str>,
        body: &str,
    ) -> Result<Option<IncidentRow>, StoreError> {
        const SQL: &str = "INSERT INTO incidents (status, source, detection_key, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id, status, source, detection_key, body, created_at, updated_at";
        let now = crate::now_unix();
        let params = vec![
            status.into(),
            source.into(),
            detection_key.map(str::to_owned).into(),
            body.into(),
            now.into(),
            now.into(),
        ];
        match self.query_row(SQL, params).await {
            Ok(row) => row.map(incident_row).transpose(),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Changes an incident's status and body; `false` when there is no such incident.
    pub async fn update_incident(
        &self,
        id: i64,
        status: &str,
        body: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE incidents SET status = ?, body = ?, updated_at = ? WHERE id = ?";
        let changed = self
            .execute(
                SQL,
                vec![
                    status.into(),
                    body.into(),
                    crate::now_unix().into(),
                    id.into(),
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    /// One incident.
    pub async fn incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        const SQL: &str = "SELECT id, status, source, detection_key, body, created_at, updated_at FROM incidents WHERE id = ?";
        self.query_row(SQL, vec![id.into()])
            .await?
            .map(incident_row)
            .transpose()
    }

    /// Keeps what the real-time engine learned (opaque bytes), replacing
    /// what was kept before.
    pub async fn save_learned_history(&self, body: Vec<u8>) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO realtime_history (id, saved_at, body) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, body = excluded.body";
        self.execute(SQL, vec![crate::now_unix().into(), body.into()])
            .await?;
        Ok(())
    }

    /// What the real-time engine learned, as last kept.
    pub async fn learned_history(&self) -> Result<Option<Vec<u8>>, StoreError> {
        const SQL: &str = "SELECT body FROM realtime_history WHERE id = 1";
        Ok(self
            .query_row(SQL, vec![])
            .await?
            .and_then(|row| row.into_iter().next()?.into_bytes()))
    }

    /// Open incidents (proposed or active), and those closed since `closed_since`, newest first.
    pub async fn incidents(&self, closed_since: i64) -> Result<Vec<IncidentRow>, StoreError> {
        const SQL: &str = "SELECT id, status, source, detection_key, body, created_at, updated_at FROM incidents WHERE status IN ('proposed', 'active') OR updated_at >= ? ORDER BY id DESC LIMIT 1000";
        self.query(SQL, vec![closed_since.into()])
            .await?
            .into_iter()
            .map(incident_row)
            .collect()
    }
}
