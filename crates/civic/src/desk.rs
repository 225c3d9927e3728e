//! The complaint desk: filing (validated, routed, given a deadline, checked
//! for duplicates and abuse, then written in group commits), and the staff's
//! work on complaints (status, public updates, internal notes, assignment,
//! merging, moderation), each change written with its notifications.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cityos_store::complaints::{
    Change, ComplaintRow, EventRow, Filing as FilingRow, NotificationRow, ReporterRow,
};
use cityos_store::{Store, StoreError};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::catalog::Catalog;
use crate::form::FieldError;
use crate::geo::{cell_of, degrees_around, distance_m};
use crate::limits::{RateLimit, flag};
use crate::mail::SmtpSettings;
use crate::model::{Filing, Status, deadline_of};

/// Most filings written in one transaction.
pub const MAX_BATCH: usize = 1024;
/// Filings waiting for the writer at most; beyond, filing waits.
const QUEUE: usize = 8192;
/// Duplicates are open complaints of the same service this close…
pub const DUPLICATE_RADIUS_M: f64 = 50.0;
/// …filed this recently.
pub const DUPLICATE_WINDOW_SECS: i64 = 30 * 86_400;

/// What can go wrong at the desk.
#[derive(Debug, thiserror::Error)]
pub enum CivicError {
    /// A field is missing or wrong.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No such complaint (or not one the caller may see).
    #[error("no complaint {0}")]
    NotFound(i64),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The move is not allowed from the complaint's state.
    #[error("{0}")]
    Conflict(String),
    /// Too many filings from one account or address.
    #[error("too many complaints from {who}; try again in {retry_after} s")]
    RateLimited {
        /// `this account` or `this address`.
        who: &'static str,
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// The store failed; nothing was acknowledged.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The writer is gone (shutting down).
    #[error("the complaint desk is not running")]
    Unavailable,
}

/// Limits and places the desk is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where photos are stored.
    pub photo_dir: PathBuf,
    /// Where emails go; none: notifications stay in the app.
    pub smtp: Option<SmtpSettings>,
    /// Filings per account per hour.
    pub per_account_per_hour: u32,
    /// Filings per client address per hour.
    pub per_address_per_hour: u32,
}

impl Settings {
    /// Defaults under `data_dir`: 20 filings an hour per account and 60 per address.
    pub fn new(data_dir: &std::path::Path) -> Settings {
        Settings {
            photo_dir: data_dir.join("photos"),
            smtp: None,
            per_account_per_hour: 20,
            per_address_per_hour: 60,
        }
    }
}

/// Who acts on a complaint.
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    /// A member of staff, by email.
    Staff(String),
    /// A citizen, by user id.
    Citizen(i64),
    /// The desk itself (alerts).
    System,
}

impl Actor {
    fn name(&self) -> String {
        match self {
            Actor::Staff(email) => email.clone(),
            Actor::Citizen(id) => format!("user:{id}"),
            Actor::System => "system".to_owned(),
        }
    }
}

/// What a filing answers.
#[derive(Debug, Clone)]
pub struct Filed {
    /// The complaint as stored.
    pub complaint: ComplaintRow,
    /// Open complaints of the same service within 50 m, for the reporter to see.
    pub nearby: Vec<ComplaintRow>,
    /// Why it is held for moderation, if it is.
    pub held: Option<String>,
}

/// A staff update.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// New status, if it changes.
    pub status: Option<Status>,
    /// What is said.
    pub text: String,
    /// Public update (reporters are notified) or internal note.
    pub public: bool,
}

struct Job {
    row: ComplaintRow,
    reporter: Option<ReporterRow>,
    answer: oneshot::Sender<Result<ComplaintRow, CivicError>>,
}

/// The complaint desk; cheap to clone.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    catalog: Catalog,
    settings: Settings,
    queue: mpsc::Sender<Job>,
    /// Changes to existing complaints are read-modify-write: one at a time.
    changes: Mutex<()>,
    per_account: RateLimit,
    per_address: RateLimit,
    mail_wake: Arc<Notify>,
    emails_sent: AtomicU64,
    photos: AtomicU64,
    /// Counts committed writes, so readers can tell whether what they computed is still current.
    generation: Arc<AtomicU64>,
}

impl Desk {
    /// Opens the desk over `store` and starts its writer (and its mailer, when SMTP is set).
    pub async fn open(
        store: Store,
        catalog: Catalog,
        settings: Settings,
    ) -> Result<Desk, CivicError> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let desk = Desk {
            inner: Arc::new(Inner {
                per_account: RateLimit::new(settings.per_account_per_hour, 3600),
                per_address: RateLimit::new(settings.per_address_per_hour, 3600),
                store: store.clone(),
                catalog,
                settings,
                queue,
                changes: Mutex::new(()),
                mail_wake: Arc::new(Notify::new()),
                emails_sent: AtomicU64::new(0),
                photos: AtomicU64::new(0),
                generation: Arc::new(AtomicU64::new(0)),
            }),
        };
        tokio::spawn(writer(store, jobs, desk.inner.generation.clone()));
        if let Some(smtp) = desk.inner.settings.smtp.clone() {
            tokio::spawn(mailer(desk.clone(), smtp));
        }
        Ok(desk)
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Changes whenever this desk commits a filing or a change: anything derived from
    /// the complaints (a rendered listing) is current while it stays the same.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Emails delivered since start.
    pub fn emails_sent(&self) -> u64 {
        self.inner.emails_sent.load(Ordering::Relaxed)
    }

    /// Files a validated complaint. `account` and `address` are the rate-limit keys
    /// (a user or API key, and the client's IP address). The answer comes once it is durable.
    pub async fn file(
        &self,
        filing: Filing,
        account: Option<&str>,
        address: Option<&str>,
    ) -> Result<Filed, CivicError> {
        let now = cityos_store::now_unix();
        let limits = [
            (account, &self.inner.per_account, "this account"),
            (address, &self.inner.per_address, "this address"),
        ];
        for (key, limit, who) in limits {
            if let Some(key) = key {
                limit
                    .hit(key, now)
                    .map_err(|retry_after| CivicError::RateLimited { who, retry_after })?;
            }
        }
        let catalog = &self.inner.catalog;
        let service = catalog.service(&filing.service_code).ok_or_else(|| {
            FieldError::new(
                "service_code",
                format!("'{}' is not a service", filing.service_code),
            )
        })?;
        let route = catalog.route(service, filing.at);
        let held = flag(&filing.description).or_else(|| {
            filing.attributes.values().find_map(|v| match v {
                crate::model::AttributeValue::One(s) => flag(s),
                crate::model::AttributeValue::Many(_) => None,
            })
        });
        let nearby = match filing.at {
            Some(at) => self.nearby(&filing.service_code, at, now).await?,
            None => Vec::new(),
        };
        let e6 = |x: f64| (x * 1e6).round() as i64;
        let token = (service.kind == crate::catalog::ServiceType::Batch)
            .then(|| format!("{:032x}", rand::random::<u128>()));
        let reporter = &filing.reporter;
        let row = ComplaintRow {
            id: 0,
            service_code: filing.service_code.clone(),
            status: Status::Received.as_str().to_owned(),
            open: true,
            description: filing.description.clone(),
            attributes: serde_json::to_string(&filing.attributes).unwrap_or_else(|_| "{}".into()),
            lat_e6: filing.at.map(|p| e6(p.0)),
            lon_e6: filing.at.map(|p| e6(p.1)),
            h3_cell: filing.at.and_then(cell_of),
            address: filing.address.clone(),
            address_id: filing.address_id.clone(),
            media_url: filing.media_url.clone(),
            reporter_id: reporter.user_id,
            reporter_email: reporter.email.clone(),
            reporter_name: reporter.name.clone(),
            reporter_phone: reporter.phone.clone(),
            anonymous: reporter.anonymous,
            department: route.department.to_owned(),
            district: route.district.map(str::to_owned),
            assignee: None,
            requested_at: now,
            updated_at: now,
            expected_at: deadline_of(service.deadline, now, &catalog.timezone),
            resolved_at: None,
            status_notes: None,
            merged_into: None,
            token,
            visible: held.is_none(),
            moderation: if held.is_some() { "pending" } else { "none" }.to_owned(),
            breach_alerted: false,
        };
        let reporter_row =
            reporter_key(reporter.user_id, reporter.email.as_deref()).map(|key| ReporterRow {
                key,
                user_id: reporter.user_id,
                email: reporter.email.clone(),
            });
        let (answer, answered) = oneshot::channel();
        self.inner
            .queue
            .send(Job {
                row,
                reporter: reporter_row,
                answer,
            })
            .await
            .map_err(|_| CivicError::Unavailable)?;
        let complaint = answered.await.map_err(|_| CivicError::Unavailable)??;
        Ok(Filed {
            complaint,
            nearby,
            held,
        })
    }

    /// Open complaints of `service_code` within [`DUPLICATE_RADIUS_M`] of `at`, closest first.
    pub async fn nearby(
        &self,
        service_code: &str,
        at: (f64, f64),
        now: i64,
    ) -> Result<Vec<ComplaintRow>, CivicError> {
        let (dlat, dlon) = degrees_around(at, DUPLICATE_RADIUS_M);
        let e6 = |x: f64| (x * 1e6).round() as i64;
        let mut rows = self
            .inner
            .store
            .open_complaints_in_box(
                service_code,
                (e6(at.0 - dlat), e6(at.0 + dlat)),
                (e6(at.1 - dlon), e6(at.1 + dlon)),
                now - DUPLICATE_WINDOW_SECS,
            )
            .await?;
        let distance = |c: &ComplaintRow| match (c.lat_e6, c.lon_e6) {
            (Some(la), Some(lo)) => distance_m(at, (la as f64 / 1e6, lo as f64 / 1e6)),
            _ => f64::INFINITY,
        };
        rows.retain(|c| distance(c) <= DUPLICATE_RADIUS_M);
        rows.sort_by(|a, b| distance(a).total_cmp(&distance(b)));
        Ok(rows)
    }

    /// A complaint by id.
    pub async fn get(&self, id: i64) -> Result<ComplaintRow, CivicError> {
        self.inner
            .store
            .complaint(id)
            .await?
            .ok_or(CivicError::NotFound(id))
    }

    /// Whether `user_id` is among the complaint's reporters.
    pub async fn is_reporter(&self, id: i64, user_id: i64) -> Result<bool, CivicError> {
        Ok(self
            .inner
            .store
            .complaint_reporters(id)
            .await?
            .iter()
            .any(|r| r.user_id == Some(user_id)))
    }

    /// A staff update: a status move and/or a public update or internal note.
    pub async fn update(
        &self,
        id: i64,
        actor: &Actor,
        update: Update,
    ) -> Result<ComplaintRow, CivicError> {
        if update.text.trim().is_empty() && update.status.is_none() {
            return Err(FieldError::new("text", "an update needs a text or a status").into());
        }
        if update.text.chars().count() > crate::form::MAX_DESCRIPTION {
            return Err(FieldError::new("text", "must be at most 4000 characters").into());
        }
        let _one = self.inner.changes.lock().await;
        let mut c = self.get(id).await?;
        let now = cityos_store::now_unix();
        let from = Status::parse(&c.status).unwrap_or(Status::Received);
        if let Some(to) = update.status {
            if !from.may_become(to) {
                return Err(CivicError::Conflict(format!(
                    "a complaint that is {} cannot become {} (statuses only move forward; reopen a resolved one)",
                    from.as_str(),
                    to.as_str()
                )));
            }
            set_status(&mut c, to, now);
        }
        c.updated_at = now;
        if update.public && !update.text.trim().is_empty() {
            c.status_notes = Some(update.text.clone());
        }
        let kind = match (update.public, update.text.trim().is_empty()) {
            (_, true) => "status",
            (true, false) => "update",
            (false, false) => "note",
        };
        let event = event(
            id,
            now,
            kind,
            update.status.map(|s| s.as_str().to_owned()),
            update.text.clone(),
            update.public,
            Some(actor.name()),
        );
        let notifications = if update.public {
            let message = match update.status {
                Some(s) if update.text.trim().is_empty() => {
                    format!("Complaint #{id} is now {}.", s.as_str().replace('_', " "))
                }
                Some(s) => format!(
                    "Complaint #{id} is now {}: {}",
                    s.as_str().replace('_', " "),
                    update.text
                ),
                None => format!("Update on complaint #{id}: {}", update.text),
            };
            self.notifications_for(id, &message, now).await?
        } else {
            Vec::new()
        };
        self.commit(c.clone(), event, notifications).await?;
        Ok(c)
    }

    /// Reopens a resolved or closed complaint (its reporter or staff).
    pub async fn reopen(
        &self,
        id: i64,
        actor: &Actor,
        reason: &str,
    ) -> Result<ComplaintRow, CivicError> {
        let _one = self.inner.changes.lock().await;
        let mut c = self.get(id).await?;
        if c.merged_into.is_some() {
            return Err(CivicError::Conflict(format!(
                "complaint {id} was merged into {}; reopen that one",
                c.merged_into.unwrap_or_default()
            )));
        }
        let from = Status::parse(&c.status).unwrap_or(Status::Received);
        let to = from.reopened().ok_or_else(|| {
            CivicError::Conflict(format!("complaint {id} is still open ({})", from.as_str()))
        })?;
        let now = cityos_store::now_unix();
        set_status(&mut c, to, now);
        c.updated_at = now;
        let event = event(
            id,
            now,
            "reopened",
            Some(to.as_str().into()),
            reason.to_owned(),
            true,
            Some(actor.name()),
        );
        let notifications = self
            .notifications_for(id, &format!("Complaint #{id} was reopened."), now)
            .await?;
        self.commit(c.clone(), event, notifications).await?;
        Ok(c)
    }

    /// Assigns a complaint to a department and/or a team or person.
    pub async fn assign(
        &self,
        id: i64,
        actor: &Actor,
        department: Option<&str>,
        assignee: Option<&str>,
    ) -> Result<ComplaintRow, CivicError> {
        if let Some(d) = department
            && self.inner.catalog.department(d).is_none()
        {
            return Err(FieldError::new("department", format!("'{d}' is not a department")).into());
        }
        if let Some(a) = assignee
            && (a.trim().is_empty() || a.chars().count() > 100)
        {
            return Err(FieldError::new("assignee", "must be 1 to 100 characters").into());
        }
        let _one = self.inner.changes.lock().await;
        let mut c = self.get(id).await?;
        let now = cityos_store::now_unix();
        if let Some(d) = department {
            c.department = d.to_owned();
        }
        if let Some(a) = assignee {
            c.assignee = Some(a.trim().to_owned());
        }
        c.updated_at = now;
        let event = event(
            id,
            now,
            "assigned",
            None,
            format!(
                "assigned to {}{}",
                c.department,
                c.assignee
                    .as_deref()
                    .map(|a| format!(" / {a}"))
                    .unwrap_or_default()
            ),
            false,
            Some(actor.name()),
        );
        self.commit(c.clone(), event, Vec::new()).await?;
        Ok(c)
    }

    /// Merges duplicate `id` into `into`: every reporter of `id` becomes a reporter
    /// of `into` and all of them are told; `id` is closed.
    pub async fn merge(
        &self,
        id: i64,
        into: i64,
        actor: &Actor,
    ) -> Result<ComplaintRow, CivicError> {
        if id == into {
            return Err(FieldError::new("into", "a complaint cannot be merged into itself").into());
        }
        let _one = self.inner.changes.lock().await;
        let mut dup = self.get(id).await?;
        let target = self.get(into).await?;
        if dup.merged_into.is_some() {
            return Err(CivicError::Conflict(format!(
                "complaint {id} is already merged"
            )));
        }
        if target.merged_into.is_some() {
            return Err(CivicError::Conflict(format!(
                "complaint {into} is itself merged; merge into {}",
                target.merged_into.unwrap_or_default()
            )));
        }
        if dup.service_code != target.service_code {
            return Err(FieldError::new("into", "duplicates must be of the same service").into());
        }
        let now = cityos_store::now_unix();
        let store = &self.inner.store;
        store
            .add_complaint_reporters(into, store.complaint_reporters(id).await?, now)
            .await?;
        dup.merged_into = Some(into);
        set_status(&mut dup, Status::Closed, now);
        dup.updated_at = now;
        dup.status_notes = Some(format!("Merged into complaint #{into}."));
        let note = |complaint_id: i64, text: String| EventRow {
            id: 0,
            complaint_id,
            at: now,
            kind: "merged".into(),
            status: None,
            text,
            public: true,
            author: Some(actor.name()),
        };
        let mut closed = note(id, format!("Merged into complaint #{into}."));
        closed.status = Some(Status::Closed.as_str().into());
        let notifications = self
            .notifications_for(
                into,
                &format!("Complaint #{id} was merged into #{into}; you will hear about #{into} from now on."),
                now,
            )
            .await?;
        let mut target = target;
        target.updated_at = now;
        store
            .apply_complaint_changes(vec![
                Change {
                    complaint: dup.clone(),
                    event: closed,
                    notifications: Vec::new(),
                },
                Change {
                    complaint: target,
                    event: note(into, format!("Complaint #{id} was merged into this one.")),
                    notifications,
                },
            ])
            .await?;
        self.inner.generation.fetch_add(1, Ordering::Release);
        self.inner.mail_wake.notify_one();
        Ok(dup)
    }

    /// A moderator's decision on a held complaint: approved ones become public,
    /// rejected ones are closed and stay hidden.
    pub async fn moderate(
        &self,
        id: i64,
        actor: &Actor,
        approve: bool,
    ) -> Result<ComplaintRow, CivicError> {
        let _one = self.inner.changes.lock().await;
        let mut c = self.get(id).await?;
        if c.moderation != "pending" {
            return Err(CivicError::Conflict(format!(
                "complaint {id} is not waiting for moderation"
            )));
        }
        let now = cityos_store::now_unix();
        c.moderation = if approve { "approved" } else { "rejected" }.into();
        c.visible = approve;
        if !approve {
            set_status(&mut c, Status::Closed, now);
        }
        c.updated_at = now;
        let event = event(
            id,
            now,
            "moderation",
            (!approve).then(|| Status::Closed.as_str().into()),
            c.moderation.clone(),
            false,
            Some(actor.name()),
        );
        self.commit(c.clone(), event, Vec::new()).await?;
        Ok(c)
    }

    /// Records a breach for every open complaint past its deadline at `now` not
    /// alerted yet; returns them. The serve loop calls this every minute.
    pub async fn alert_breaches(&self, now: i64) -> Result<Vec<ComplaintRow>, CivicError> {
        let _one = self.inner.changes.lock().await;
        let due = self.inner.store.unalerted_breaches(now).await?;
        let changes: Vec<Change> = due
            .iter()
            .cloned()
            .map(|mut c| {
                c.breach_alerted = true;
                let event = event(
                    c.id,
                    now,
                    "breach",
                    None,
                    format!(
                        "deadline passed {} min ago; {} must answer",
                        (now - c.expected_at) / 60,
                        c.department
                    ),
                    false,
                    Some(Actor::System.name()),
                );
                Change {
                    complaint: c,
                    event,
                    notifications: Vec::new(),
                }
            })
            .collect();
        if !changes.is_empty() {
            tracing::warn!(complaints = changes.len(), "complaint deadlines breached");
            self.inner.store.apply_complaint_changes(changes).await?;
            self.inner.generation.fetch_add(1, Ordering::Release);
        }
        Ok(due)
    }

    /// Stores a photo of complaint `id` and links it as the complaint's media if it has none.
    pub async fn add_photo(&self, id: i64, bytes: Vec<u8>) -> Result<i64, CivicError> {
        let c = self.get(id).await?;
        let dir = self.inner.settings.photo_dir.clone();
        let name = format!(
            "{}-{}",
            cityos_store::now_unix(),
            self.inner.photos.fetch_add(1, Ordering::Relaxed)
        );
        let len = bytes.len();
        let stored =
            tokio::task::spawn_blocking(move || crate::photos::store(&dir, id, &name, &bytes))
                .await
                .map_err(|_| CivicError::Unavailable)?
                .map_err(|e| match e {
                    crate::photos::PhotoError::Io(io) => CivicError::Store(StoreError::Io {
                        path: PathBuf::new(),
                        source: io,
                    }),
                    other => FieldError::new("photo", other.to_string()).into(),
                })?;
        let now = cityos_store::now_unix();
        let photo_id = self
            .inner
            .store
            .add_complaint_photo(cityos_store::complaints::PhotoRow {
                id: 0,
                complaint_id: id,
                content_type: stored.content_type.to_owned(),
                byte_len: len as i64,
                path: stored.path.display().to_string(),
                thumb_path: stored.thumb_path.display().to_string(),
                at: now,
            })
            .await?;
        if c.media_url.is_none() {
            let _one = self.inner.changes.lock().await;
            let mut c = self.get(id).await?;
            c.media_url = Some(format!("/api/v1/complaints/{id}/photos/{photo_id}"));
            let event = event(id, now, "photo", None, "photo added", true, None);
            self.commit(c, event, Vec::new()).await?;
        }
        Ok(photo_id)
    }

    async fn notifications_for(
        &self,
        id: i64,
        text: &str,
        now: i64,
    ) -> Result<Vec<NotificationRow>, CivicError> {
        let mailing = self.inner.settings.smtp.is_some();
        Ok(self
            .inner
            .store
            .complaint_reporters(id)
            .await?
            .into_iter()
            .map(|r| NotificationRow {
                id: 0,
                user_id: r.user_id,
                email_state: if mailing && r.email.is_some() {
                    "pending"
                } else {
                    "none"
                }
                .into(),
                email: r.email,
                complaint_id: id,
                text: text.to_owned(),
                at: now,
                read_at: None,
            })
            .collect())
    }

    async fn commit(
        &self,
        complaint: ComplaintRow,
        event: EventRow,
        notifications: Vec<NotificationRow>,
    ) -> Result<(), CivicError> {
        let mails = notifications.iter().any(|n| n.email_state == "pending");
        self.inner
            .store
            .apply_complaint_changes(vec![Change {
                complaint,
                event,
                notifications,
            }])
            .await?;
        self.inner.generation.fetch_add(1, Ordering::Release);
        if mails {
            self.inner.mail_wake.notify_one();
        }
        Ok(())
    }
}

/// One entry of a complaint's history.
fn event(
    complaint_id: i64,
    at: i64,
    kind: &str,
    status: Option<String>,
    text: impl Into<String>,
    public: bool,
    author: Option<String>,
) -> EventRow {
    EventRow {
        id: 0,
        complaint_id,
        at,
        kind: kind.to_owned(),
        status,
        text: text.into(),
        public,
        author,
    }
}

fn set_status(c: &mut ComplaintRow, to: Status, now: i64) {
    c.status = to.as_str().to_owned();
    c.open = to.is_open();
    if to.is_open() {
        c.resolved_at = None;
    } else if c.resolved_at.is_none() {
        c.resolved_at = Some(now);
    }
}

fn reporter_key(user_id: Option<i64>, email: Option<&str>) -> Option<String> {
    match (user_id, email) {
        (Some(id), _) => Some(format!("user:{id}")),
        (None, Some(email)) => Some(format!("email:{}", email.to_lowercase())),
        (None, None) => None,
    }
}

/// Ids leased at a time, at least: one lease serves many batches, and a
/// restart leaves a gap of at most this many ids.
const ID_BLOCK: i64 = 64;

/// Writes filings in batches: everything waiting goes into one transaction,
/// and nobody is answered before it commits. Ids are handed out here, in
/// order, from blocks leased in the store, so several processes can file
/// into one database without their ids colliding.
async fn writer(store: Store, mut jobs: mpsc::Receiver<Job>, generation: Arc<AtomicU64>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut ids = 0..0;
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let wanted = batch.len() as i64;
        if ids.end - ids.start < wanted {
            match store.lease_complaint_ids(wanted.max(ID_BLOCK)).await {
                Ok(leased) => ids = leased,
                Err(e) => {
                    tracing::error!("cannot lease complaint ids: {e}");
                    for job in batch.drain(..) {
                        let _ = job.answer.send(Err(CivicError::Unavailable));
                    }
                    continue;
                }
            }
        }
        let filings: Vec<FilingRow> = batch
            .iter_mut()
            .map(|job| {
                job.row.id = ids.next().expect("leased enough ids above");
                FilingRow {
                    complaint: job.row.clone(),
                    reporter: job.reporter.clone(),
                    event: event(
                        job.row.id,
                        job.row.requested_at,
                        "received",
                        Some(Status::Received.as_str().into()),
                        String::new(),
                        true,
                        None,
                    ),
                }
            })
            .collect();
        match store.insert_complaints(filings).await {
            Ok(()) => {
                generation.fetch_add(1, Ordering::Release);
                for job in batch.drain(..) {
                    let _ = job.answer.send(Ok(job.row));
                }
            }
            Err(e) => {
                tracing::error!("a batch of complaints failed to commit: {e}");
                for job in batch.drain(..) {
                    let _ = job.answer.send(Err(CivicError::Unavailable));
                }
            }
        }
    }
}

/// Sends the emails of pending notifications, woken by each change that makes some.
async fn mailer(desk: Desk, smtp: SmtpSettings) {
    loop {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            desk.inner.mail_wake.notified(),
        )
        .await;
        let pending = match desk.inner.store.pending_emails(100).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("cannot read pending emails: {e}");
                continue;
            }
        };
        for n in pending {
            let Some(to) = n.email.as_deref() else {
                continue;
            };
            let subject = format!("[cityos] complaint #{}", n.complaint_id);
            let state = match crate::mail::send(&smtp, to, &subject, &n.text).await {
                Ok(()) => {
                    desk.inner.emails_sent.fetch_add(1, Ordering::Relaxed);
                    "sent"
                }
                Err(e) => {
                    tracing::warn!(notification = n.id, "email not sent: {e}");
                    "failed"
                }
            };
            if let Err(e) = desk.inner.store.set_email_state(n.id, state).await {
                tracing::warn!("cannot record an email's state: {e}");
            }
        }
    }
}
