//! Rows of the complaint tables: complaints, their reporters, their history
//! of status changes, public updates and internal notes, their photos, and
//! the notifications sent about them.
//!
//! The store knows no complaint rules: statuses, deadlines and routing are
//! decided by `cityos-civic` and arrive here as plain values. A filing is
//! written with its first reporter and its first event in one transaction,
//! and a batch of filings shares that transaction, so one fsync serves many.

use crate::{Row, Store, StoreError, Value};

/// One complaint as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ComplaintRow {
    /// Service request id.
    pub id: i64,
    /// Open311 service code.
    pub service_code: String,
    /// `received`, `acknowledged`, `in_progress`, `resolved` or `closed`.
    pub status: String,
    /// Whether the status counts as open (for Open311 and the queues).
    pub open: bool,
    /// What the reporter wrote.
    pub description: String,
    /// The validated attribute values as a JSON object.
    pub attributes: String,
    /// Latitude in microdegrees.
    pub lat_e6: Option<i64>,
    /// Longitude in microdegrees.
    pub lon_e6: Option<i64>,
    /// H3 cell of the location, for hotspots.
    pub h3_cell: Option<i64>,
    /// Address as written.
    pub address: Option<String>,
    /// Address id in the city's register.
    pub address_id: Option<String>,
    /// Link to media given at filing.
    pub media_url: Option<String>,
    /// The reporting user, if signed in.
    pub reporter_id: Option<i64>,
    /// Reporter's email (never public).
    pub reporter_email: Option<String>,
    /// Reporter's name (never public).
    pub reporter_name: Option<String>,
    /// Reporter's phone (never public).
    pub reporter_phone: Option<String>,
    /// The reporter asked that staff not see who they are.
    pub anonymous: bool,
    /// Department code answering it.
    pub department: String,
    /// District code of the location.
    pub district: Option<String>,
    /// Team or person it is assigned to.
    pub assignee: Option<String>,
    /// When filed.
    pub requested_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Deadline.
    pub expected_at: i64,
    /// When it was resolved (or closed); cleared when reopened.
    pub resolved_at: Option<i64>,
    /// The latest public update.
    pub status_notes: Option<String>,
    /// The complaint this duplicate was merged into.
    pub merged_into: Option<i64>,
    /// Token answered to batch services.
    pub token: Option<String>,
    /// Shown in public listings (false while held for moderation or after rejection).
    pub visible: bool,
    /// `none`, `pending`, `approved` or `rejected`.
    pub moderation: String,
    /// A breach of the deadline has been alerted.
    pub breach_alerted: bool,
}

/// Expands to a constant `SELECT <every column> FROM complaints <rest>`, so
/// each query reads the columns in the order [`complaint`] expects.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, service_code, status, open, description, attributes, lat_e6, lon_e6, h3_cell, address, address_id, media_url, reporter_id, reporter_email, reporter_name, reporter_phone, anonymous, department, district, assignee, requested_at, updated_at, expected_at, resolved_at, status_notes, merged_into, token, visible, moderation, breach_alerted FROM complaints ",
            $rest
        )
    };
}

fn complaint(row: Row) -> Result<ComplaintRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(ComplaintRow {
        id: next().as_i64().ok_or(StoreError::Shape("complaint id"))?,
        service_code: next().into_string().unwrap_or_default(),
        status: next().into_string().unwrap_or_default(),
        open: next().as_i64() == Some(1),
        description: next().into_string().unwrap_or_default(),
        attributes: next().into_string().unwrap_or_default(),
        lat_e6: next().as_i64(),
        lon_e6: next().as_i64(),
        h3_cell: next().as_i64(),
        address: next().into_string(),
        address_id: next().into_string(),
        media_url: next().into_string(),
        reporter_id: next().as_i64(),
        reporter_email: next().into_string(),
        reporter_name: next().into_string(),
        reporter_phone: next().into_string(),
        anonymous: next().as_i64() == Some(1),
        department: next().into_string().unwrap_or_default(),
        district: next().into_string(),
        assignee: next().into_string(),
        requested_at: next().as_i64().unwrap_or(0),
        updated_at: next().as_i64().unwrap_or(0),
        expected_at: next().as_i64().unwrap_or(0),
        resolved_at: next().as_i64(),
        status_notes: next().into_string(),
        merged_into: next().as_i64(),
        token: next().into_string(),
        visible: next().as_i64() == Some(1),
        moderation: next().into_string().unwrap_or_default(),
        breach_alerted: next().as_i64() == Some(1),
    })
}

fn complaints(rows: Vec<Row>) -> Result<Vec<ComplaintRow>, StoreError> {
    rows.into_iter().map(complaint).collect()
}

/// One entry in a complaint's history.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Assigned by the store (0 when writing).
    pub id: i64,
    /// The complaint.
    pub complaint_id: i64,
    /// When.
    pub at: i64,
    /// `received`, `status`, `update`, `note`, `assigned`, `merged`, `breach`, `moderation`, `photo`.
    pub kind: String,
    /// The status after it, when it changed the status.
    pub status: Option<String>,
    /// What was said.
    pub text: String,
    /// Public updates are shown to everyone; internal notes to staff only.
    pub public: bool,
    /// Who wrote it (staff email or `system`).
    pub author: Option<String>,
}

fn event(row: Row) -> Result<EventRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(EventRow {
        id: next().as_i64().ok_or(StoreError::Shape("event id"))?,
        complaint_id: next().as_i64().unwrap_or(0),
        at: next().as_i64().unwrap_or(0),
        kind: next().into_string().unwrap_or_default(),
        status: next().into_string(),
        text: next().into_string().unwrap_or_default(),
        public: next().as_i64() == Some(1),
        author: next().into_string(),
    })
}

/// A reporter to keep and notify.
#[derive(Debug, Clone, PartialEq)]
pub struct ReporterRow {
    /// `user:{id}` or `email:{address}`, unique per complaint.
    pub key: String,
    /// The user, if signed in.
    pub user_id: Option<i64>,
    /// Where emails go.
    pub email: Option<String>,
}

/// A notification to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    /// Assigned by the store (0 when writing).
    pub id: i64,
    /// The user who sees it in the app.
    pub user_id: Option<i64>,
    /// Where its email goes.
    pub email: Option<String>,
    /// What it is about.
    pub complaint_id: i64,
    /// The message.
    pub text: String,
    /// When.
    pub at: i64,
    /// When the user read it.
    pub read_at: Option<i64>,
    /// `none` (no address), `pending`, `sent` or `failed`.
    pub email_state: String,
}

fn notification(row: Row) -> Result<NotificationRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(NotificationRow {
        id: next()
            .as_i64()
            .ok_or(StoreError::Shape("notification id"))?,
        user_id: next().as_i64(),
        email: next().into_string(),
        complaint_id: next().as_i64().unwrap_or(0),
        text: next().into_string().unwrap_or_default(),
        at: next().as_i64().unwrap_or(0),
        read_at: next().as_i64(),
        email_state: next().into_string().unwrap_or_default(),
    })
}

/// A stored photo.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRow {
    /// Assigned by the store (0 when writing).
    pub id: i64,
    /// The complaint.
    pub complaint_id: i64,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    /// Size of the original.
    pub byte_len: i64,
    /// The original on disk.
    pub path: String,
    /// Its thumbnail on disk.
    pub thumb_path: String,
    /// When.
    pub at: i64,
}

fn photo(row: Row) -> Result<PhotoRow, StoreError> {
    let mut v = row.into_iter();
    let mut next = || v.next().unwrap_or(Value::Null);
    Ok(PhotoRow {
        id: next().as_i64().ok_or(StoreError::Shape("photo id"))?,
        complaint_id: next().as_i64().unwrap_or(0),
        content_type: next().into_string().unwrap_or_default(),
        byte_len: next().as_i64().unwrap_or(0),
        path: next().into_string().unwrap_or_default(),
        thumb_path: next().into_string().unwrap_or_default(),
        at: next().as_i64().unwrap_or(0),
    })
}

/// A new complaint with its first reporter and first event.
#[derive(Debug, Clone)]
pub struct Filing {
    /// The complaint (its `id` chosen by the caller).
    pub complaint: ComplaintRow,
    /// Its reporter, if known.
    pub reporter: Option<ReporterRow>,
    /// The `received` event.
    pub event: EventRow,
}

/// A change to a complaint, written with its event and notifications in one transaction.
#[derive(Debug, Clone)]
pub struct Change {
    /// The complaint as it is after the change.
    pub complaint: ComplaintRow,
    /// What happened.
    pub event: EventRow,
    /// Who is told.
    pub notifications: Vec<NotificationRow>,
}

/// Which complaints a listing wants; times are Unix seconds, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ListFilter {
    /// One service, or all.
    pub service_code: Option<String>,
    /// One department, or all.
    pub department: Option<String>,
    /// Open only (`Some(true)`), closed only (`Some(false)`), or both.
    pub open: Option<bool>,
    /// Earliest filing time.
    pub from: i64,
    /// Filing time limit.
    pub to: i64,
    /// At most this many, newest first.
    pub limit: i64,
    /// Skip this many.
    pub offset: i64,
}

/// Counts of one department or district, for the ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlingCounts {
    /// Department or district code.
    pub key: String,
    /// Complaints filed in the window.
    pub total: i64,
    /// Resolved by their deadline.
    pub in_time: i64,
    /// Resolved after their deadline.
    pub late: i64,
    /// Open and past their deadline at `now`.
    pub overdue: i64,
}

/// Complaints filed and resolved on one local day, for one service and district.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCounts {
    /// Days since the Unix epoch in the city's zone.
    pub day: i64,
    /// Service code.
    pub service_code: String,
    /// District code (empty when outside every district).
    pub district: String,
    /// Filed that day.
    pub filed: i64,
    /// Of those, resolved by now.
    pub resolved: i64,
    /// Sum of their seconds from filing to resolution.
    pub resolve_seconds: i64,
}

fn open_params(open: Option<bool>) -> (i64, i64) {
    match open {
        Some(true) => (1, 1),
        Some(false) => (0, 0),
        None => (0, 1),
    }
}

impl Store {
    /// Leases `count` complaint ids to this process: no other process (or
    /// later lease) gets any of them. The first lease starts after the
    /// largest id already stored.
    pub async fn lease_complaint_ids(
        &self,
        count: i64,
    ) -> Result<std::ops::Range<i64>, StoreError> {
        const START: &str = "INSERT INTO id_leases (name, next) SELECT 'complaints', COALESCE(MAX(id), 0) + 1 FROM complaints WHERE true ON CONFLICT (name) DO NOTHING";
        const LEASE: &str =
            "UPDATE id_leases SET next = next + ? WHERE name = 'complaints' RETURNING next";
        // `WHERE true`: SQLite would read `ON` as the start of a join.
        self.execute(START, vec![]).await?;
        let end = self
            .query_row(LEASE, vec![count.into()])
            .await?
            .and_then(|r| r.first().and_then(Value::as_i64))
            .ok_or(StoreError::Shape("leased id"))?;
        Ok(end - count..end)
    }

    /// Writes filings in one transaction: all of them are durable, or none.
    pub async fn insert_complaints(&self, filings: Vec<Filing>) -> Result<(), StoreError> {
        const COMPLAINT: &str = "INSERT INTO complaints (id, service_code, status, open, description, attributes, lat_e6, lon_e6, h3_cell, address, address_id, media_url, reporter_id, reporter_email, reporter_name, reporter_phone, anonymous, department, district, assignee, requested_at, updated_at, expected_at, resolved_at, status_notes, merged_into, token, visible, moderation, breach_alerted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let mut statements = Vec::with_capacity(filings.len() * 3);
        for f in filings {
            let c = f.complaint;
            let id = c.id;
            statements.push((
                COMPLAINT,
                vec![
                    c.id.into(),
                    c.service_code.into(),
                    c.status.into(),
                    i64::from(c.open).into(),
                    c.description.into(),
                    c.attributes.into(),
                    c.lat_e6.into(),
                    c.lon_e6.into(),
                    c.h3_cell.into(),
                    c.address.into(),
                    c.address_id.into(),
                    c.media_url.into(),
                    c.reporter_id.into(),
                    c.reporter_email.into(),
                    c.reporter_name.into(),
                    c.reporter_phone.into(),
                    i64::from(c.anonymous).into(),
                    c.department.into(),
                    c.district.into(),
                    c.assignee.into(),
                    c.requested_at.into(),
                    c.updated_at.into(),
                    c.expected_at.into(),
                    c.resolved_at.into(),
                    c.status_notes.into(),
                    c.merged_into.into(),
                    c.token.into(),
                    i64::from(c.visible).into(),
                    c.moderation.into(),
                    i64::from(c.breach_alerted).into(),
                ],
            ));
            if let Some(r) = f.reporter {
                statements.push(reporter_statement(id, r, c.requested_at));
            }
            statements.push(event_statement(f.event));
        }
        self.transaction(statements).await
    }

    /// Applies changes to complaints with their events and notifications, in one transaction.
    pub async fn apply_complaint_changes(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        const UPDATE: &str = "UPDATE complaints SET status = ?, open = ?, department = ?, assignee = ?, updated_at = ?, resolved_at = ?, status_notes = ?, media_url = ?, merged_into = ?, visible = ?, moderation = ?, breach_alerted = ? WHERE id = ?";
        const NOTIFY: &str = "INSERT INTO notifications (user_id, email, complaint_id, text, at, email_state) VALUES (?, ?, ?, ?, ?, ?)";
        let mut statements = Vec::new();
        for change in changes {
            let c = change.complaint;
            statements.push((
                UPDATE,
                vec![
                    c.status.into(),
                    i64::from(c.open).into(),
                    c.department.into(),
                    c.assignee.into(),
                    c.updated_at.into(),
                    c.resolved_at.into(),
                    c.status_notes.into(),
                    c.media_url.into(),
                    c.merged_into.into(),
                    i64::from(c.visible).into(),
                    c.moderation.into(),
                    i64::from(c.breach_alerted).into(),
                    c.id.into(),
                ],
            ));
            statements.push(event_statement(change.event));
            for n in change.notifications {
                statements.push((
                    NOTIFY,
                    vec![
                        n.user_id.into(),
                        n.email.into(),
                        n.complaint_id.into(),
                        n.text.into(),
                        n.at.into(),
                        n.email_state.into(),
                    ],
                ));
            }
        }
        self.transaction(statements).await
    }

    /// Adds reporters to a complaint (those of a merged duplicate); ones already there are kept once.
    pub async fn add_complaint_reporters(
        &self,
        complaint_id: i64,
        reporters: Vec<ReporterRow>,
        at: i64,
    ) -> Result<(), StoreError> {
        let known: Vec<String> = self
            .complaint_reporters(complaint_id)
            .await?
            .into_iter()
            .map(|r| r.key)
            .collect();
        let statements = reporters
            .into_iter()
            .filter(|r| !known.contains(&r.key))
            .map(|r| reporter_statement(complaint_id, r, at))
            .collect();
        self.transaction(statements).await
    }

    /// A complaint by id.
    pub async fn complaint(&self, id: i64) -> Result<Option<ComplaintRow>, StoreError> {
        const SQL: &str = select!("WHERE id = ?");
        self.query_row(SQL, vec![id.into()])
            .await?
            .map(complaint)
            .transpose()
    }

    /// The complaint a batch service's token stands for.
    pub async fn complaint_by_token(
        &self,
        token: &str,
    ) -> Result<Option<ComplaintRow>, StoreError> {
        const SQL: &str = select!("WHERE token = ?");
        self.query_row(SQL, vec![token.into()])
            .await?
            .map(complaint)
            .transpose()
    }

    /// Complaints filed in `[from, to)`, newest first, with the filter's conditions.
    pub async fn list_complaints(&self, f: &ListFilter) -> Result<Vec<ComplaintRow>, StoreError> {
        // One constant statement per combination, so each can use its own index.
        const ALL: &str = select!(
            "WHERE requested_at >= ? AND requested_at < ? AND open BETWEEN ? AND ? AND visible = 1 ORDER BY requested_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        const SERVICE: &str = select!(
            "WHERE service_code = ? AND requested_at >= ? AND requested_at < ? AND open BETWEEN ? AND ? AND visible = 1 ORDER BY requested_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        const DEPARTMENT: &str = select!(
            "WHERE department = ? AND open BETWEEN ? AND ? AND requested_at >= ? AND requested_at < ? AND visible = 1 ORDER BY requested_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        const BOTH: &str = select!(
            "WHERE department = ? AND service_code = ? AND open BETWEEN ? AND ? AND requested_at >= ? AND requested_at < ? AND visible = 1 ORDER BY requested_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        let (lo, hi) = open_params(f.open);
        let page = [f.limit.into(), f.offset.into()];
        let (sql, mut params): (&'static str, Vec<Value>) = match (&f.department, &f.service_code) {
            (None, None) => (ALL, vec![f.from.into(), f.to.into(), lo.into(), hi.into()]),
            (None, Some(s)) => (
                SERVICE,
                vec![
                    s.as_str().into(),
                    f.from.into(),
                    f.to.into(),
                    lo.into(),
                    hi.into(),
                ],
            ),
            (Some(d), None) => (
                DEPARTMENT,
                vec![
                    d.as_str().into(),
                    lo.into(),
                    hi.into(),
                    f.from.into(),
                    f.to.into(),
                ],
            ),
            (Some(d), Some(s)) => (
                BOTH,
                vec![
                    d.as_str().into(),
                    s.as_str().into(),
                    lo.into(),
                    hi.into(),
                    f.from.into(),
                    f.to.into(),
                ],
            ),
        };
        params.extend(page);
        complaints(self.query(sql, params).await?)
    }

    /// Open, visible complaints of `service_code` within a box of microdegrees filed since `since`.
    pub async fn open_complaints_in_box(
        &self,
        service_code: &str,
        (lat_lo, lat_hi): (i64, i64),
        (lon_lo, lon_hi): (i64, i64),
        since: i64,
    ) -> Result<Vec<ComplaintRow>, StoreError> {
        const SQL: &str = select!(
            "WHERE open = 1 AND service_code = ? AND lat_e6 BETWEEN ? AND ? AND lon_e6 BETWEEN ? AND ? AND requested_at >= ? AND visible = 1 AND merged_into IS NULL ORDER BY id LIMIT 50"
        );
        complaints(
            self.query(
                SQL,
                vec![
                    service_code.into(),
                    lat_lo.into(),
                    lat_hi.into(),
                    lon_lo.into(),
                    lon_hi.into(),
                    since.into(),
                ],
            )
            .await?,
        )
    }

    /// Complaints a user reported (including those merged into others), newest first.
    pub async fn complaints_reported_by(
        &self,
        user_id: i64,
        limit: i64,
    ) -> Result<Vec<ComplaintRow>, StoreError> {
        const SQL: &str = select!(
            "WHERE id IN (SELECT complaint_id FROM complaint_reporters WHERE user_id = ?) ORDER BY id DESC LIMIT ?"
        );
        complaints(self.query(SQL, vec![user_id.into(), limit.into()]).await?)
    }

    /// Open complaints past their deadline whose breach has not been alerted yet.
    pub async fn unalerted_breaches(&self, now: i64) -> Result<Vec<ComplaintRow>, StoreError> {
        const SQL: &str = select!(
            "WHERE open = 1 AND breach_alerted = 0 AND expected_at < ? ORDER BY expected_at LIMIT 1000"
        );
        complaints(self.query(SQL, vec![now.into()]).await?)
    }

    /// Open complaints past their deadline, oldest deadline first.
    pub async fn overdue_complaints(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<ComplaintRow>, StoreError> {
        const SQL: &str =
            select!("WHERE open = 1 AND expected_at < ? ORDER BY expected_at LIMIT ?");
        complaints(self.query(SQL, vec![now.into(), limit.into()]).await?)
    }

    /// Complaints held for moderation, oldest first.
    pub async fn moderation_queue(&self, limit: i64) -> Result<Vec<ComplaintRow>, StoreError> {
        const SQL: &str = select!("WHERE moderation = 'pending' ORDER BY id LIMIT ?");
        complaints(self.query(SQL, vec![limit.into()]).await?)
    }

    /// A complaint's history, oldest first.
    pub async fn complaint_events(&self, complaint_id: i64) -> Result<Vec<EventRow>, StoreError> {
        const SQL: &str = "SELECT id, complaint_id, at, kind, status, text, public, author FROM complaint_events WHERE complaint_id = ? ORDER BY id";
        self.query(SQL, vec![complaint_id.into()])
            .await?
            .into_iter()
            .map(event)
            .collect()
    }

    /// Everyone who reported a complaint.
    pub async fn complaint_reporters(
        &self,
        complaint_id: i64,
    ) -> Result<Vec<ReporterRow>, StoreError> {
        const SQL: &str = "SELECT reporter_key, user_id, email FROM complaint_reporters WHERE complaint_id = ? ORDER BY at, reporter_key";
        Ok(self
            .query(SQL, vec![complaint_id.into()])
            .await?
            .into_iter()
            .map(|r| {
                let mut v = r.into_iter();
                ReporterRow {
                    key: v.next().and_then(Value::into_string).unwrap_or_default(),
                    user_id: v.next().and_then(|x| x.as_i64()),
                    email: v.next().and_then(Value::into_string),
                }
            })
            .collect())
    }

    /// Records a photo; returns its id.
    pub async fn add_complaint_photo(&self, p: PhotoRow) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO complaint_photos (complaint_id, content_type, byte_len, path, thumb_path, at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id";
        self.query_row(
            SQL,
            vec![
                p.complaint_id.into(),
                p.content_type.into(),
                p.byte_len.into(),
                p.path.into(),
                p.thumb_path.into(),
                p.at.into(),
            ],
        )
        .await?
        .and_then(|r| r.first().and_then(Value::as_i64))
        .ok_or(StoreError::Shape("insert returned nothing"))
    }

    /// A complaint's photos, in upload order.
    pub async fn complaint_photos(&self, complaint_id: i64) -> Result<Vec<PhotoRow>, StoreError> {
        const SQL: &str = "SELECT id, complaint_id, content_type, byte_len, path, thumb_path, at FROM complaint_photos WHERE complaint_id = ? ORDER BY id";
        self.query(SQL, vec![complaint_id.into()])
            .await?
            .into_iter()
            .map(photo)
            .collect()
    }

    /// A user's notifications, newest first.
    pub async fn notifications_of(
        &self,
        user_id: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        const SQL: &str = "SELECT id, user_id, email, complaint_id, text, at, read_at, email_state FROM notifications WHERE user_id = ? ORDER BY id DESC LIMIT ?";
        self.query(SQL, vec![user_id.into(), limit.into()])
            .await?
            .into_iter()
            .map(notification)
            .collect()
    }

    /// Notifications whose email has not been sent yet, oldest first.
    pub async fn pending_emails(&self, limit: i64) -> Result<Vec<NotificationRow>, StoreError> {
        const SQL: &str = "SELECT id, user_id, email, complaint_id, text, at, read_at, email_state FROM notifications WHERE email_state = 'pending' ORDER BY id LIMIT ?";
        self.query(SQL, vec![limit.into()])
            .await?
            .into_iter()
            .map(notification)
            .collect()
    }

    /// Records what became of a notification's email.
    pub async fn set_email_state(&self, id: i64, state: &str) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE notifications SET email_state = ? WHERE id = ?";
        self.execute(SQL, vec![state.into(), id.into()]).await?;
        Ok(())
    }

    /// Marks all of a user's notifications read; returns how many were unread.
    pub async fn mark_notifications_read(&self, user_id: i64, at: i64) -> Result<u64, StoreError> {
        const SQL: &str =
            "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL";
        self.execute(SQL, vec![at.into(), user_id.into()]).await
    }

    /// Per department (or per district, when `by_district`), the complaints filed since `since`
    /// and how many were handled by their deadline.
    pub async fn handling_counts(
        &self,
        by_district: bool,
        since: i64,
        now: i64,
    ) -> Result<Vec<HandlingCounts>, StoreError> {
        const BY_DEPARTMENT: &str = "SELECT department, COUNT(*), CAST(SUM(CASE WHEN resolved_at IS NOT NULL AND resolved_at <= expected_at THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN resolved_at IS NOT NULL AND resolved_at > expected_at THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN resolved_at IS NULL AND expected_at < ? THEN 1 ELSE 0 END) AS BIGINT) FROM complaints WHERE requested_at >= ? AND merged_into IS NULL GROUP BY department ORDER BY department";
        const BY_DISTRICT: &str = "SELECT COALESCE(district, ''), COUNT(*), CAST(SUM(CASE WHEN resolved_at IS NOT NULL AND resolved_at <= expected_at THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN resolved_at IS NOT NULL AND resolved_at > expected_at THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN resolved_at IS NULL AND expected_at < ? THEN 1 ELSE 0 END) AS BIGINT) FROM complaints WHERE requested_at >= ? AND merged_into IS NULL GROUP BY COALESCE(district, '') ORDER BY 1";
        let sql = if by_district {
            BY_DISTRICT
        } else {
            BY_DEPARTMENT
        };
        Ok(self
            .query(sql, vec![now.into(), since.into()])
            .await?
            .into_iter()
            .map(|r| {
                let mut v = r.into_iter();
                let mut next = || v.next().unwrap_or(Value::Null);
                HandlingCounts {
                    key: next().into_string().unwrap_or_default(),
                    total: next().as_i64().unwrap_or(0),
                    in_time: next().as_i64().unwrap_or(0),
                    late: next().as_i64().unwrap_or(0),
                    overdue: next().as_i64().unwrap_or(0),
                }
            })
            .collect())
    }

    /// Filings per local day (the zone's offset in seconds is `utc_offset`), service and district since `since`.
    pub async fn daily_counts(
        &self,
        since: i64,
        utc_offset: i64,
    ) -> Result<Vec<DailyCounts>, StoreError> {
        const SQL: &str = "SELECT (requested_at + ?) / 86400, service_code, COALESCE(district, ''), COUNT(*), CAST(SUM(CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END) AS BIGINT), CAST(COALESCE(SUM(resolved_at - requested_at), 0) AS BIGINT) FROM complaints WHERE requested_at >= ? AND merged_into IS NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
        Ok(self
            .query(SQL, vec![utc_offset.into(), since.into()])
            .await?
            .into_iter()
            .map(|r| {
                let mut v = r.into_iter();
                let mut next = || v.next().unwrap_or(Value::Null);
                DailyCounts {
                    day: next().as_i64().unwrap_or(0),
                    service_code: next().into_string().unwrap_or_default(),
                    district: next().into_string().unwrap_or_default(),
                    filed: next().as_i64().unwrap_or(0),
                    resolved: next().as_i64().unwrap_or(0),
                    resolve_seconds: next().as_i64().unwrap_or(0),
                }
            })
            .collect())
    }

    /// Visible complaints per stored H3 cell since `since` (open ones only when `open_only`).
    pub async fn complaint_cells(
        &self,
        since: i64,
        open_only: bool,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        const SQL: &str = "SELECT h3_cell, COUNT(*) FROM complaints WHERE requested_at >= ? AND h3_cell IS NOT NULL AND visible = 1 AND merged_into IS NULL AND open >= ? GROUP BY h3_cell";
        Ok(self
            .query(SQL, vec![since.into(), i64::from(open_only).into()])
            .await?
            .into_iter()
            .filter_map(|r| Some((r.first()?.as_i64()?, r.get(1)?.as_i64()?)))
            .collect())
    }

    /// How many complaints are stored.
    pub async fn complaint_count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM complaints";
        Ok(self
            .query_row(SQL, vec![])
            .await?
            .and_then(|r| r.first().and_then(Value::as_i64))
            .unwrap_or(0))
    }
}

fn reporter_statement(complaint_id: i64, r: ReporterRow, at: i64) -> (&'static str, Vec<Value>) {
    const SQL: &str = "INSERT INTO complaint_reporters (complaint_id, reporter_key, user_id, email, at) VALUES (?, ?, ?, ?, ?)";
    (
        SQL,
        vec![
            complaint_id.into(),
            r.key.into(),
            r.user_id.into(),
            r.email.into(),
            at.into(),
        ],
    )
}

fn event_statement(e: EventRow) -> (&'static str, Vec<Value>) {
    const SQL: &str = "INSERT INTO complaint_events (complaint_id, at, kind, status, text, public, author) VALUES (?, ?, ?, ?, ?, ?, ?)";
    (
        SQL,
        vec![
            e.complaint_id.into(),
            e.at.into(),
            e.kind.into(),
            e.status.into(),
            e.text.into(),
            i64::from(e.public).into(),
            e.author.into(),
        ],
    )
}
