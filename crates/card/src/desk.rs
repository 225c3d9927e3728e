//! [`CardDesk`]: the card book behind a group-committing writer.
//!
//! Requests queue to one writer task. It takes everything waiting (up to a
//! batch), executes it on the book, writes the batch to the store in one
//! transaction, and only then answers every request in it: an answer means
//! the operation and all its ledger entries are durable. One fsync serves a
//! whole batch, which is where the throughput comes from.
//!
//! The log is self-contained: each operation is stored with the distances
//! and operators the network told the book while pricing it, so a restart
//! replays it to exactly the same charges even if the network changed since.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cityos_fare::{Distances, FareRules};
use cityos_ledger::Won;
use cityos_store::Store;
use cityos_store::cards::{CardBatch, CardOpRow, TapKey, TransferRow};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::book::{
    Answer, CardBook, CardId, CardView, NetworkView, Operation, Request, card_account,
};

/// Most requests committed together.
const MAX_BATCH: usize = 8192;
/// Requests waiting for the writer before new ones are turned away.
const QUEUE: usize = 65_536;

/// Why the desk could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The store failed; the request was not applied (retry with the same op_id).
    #[error("the card store is unavailable: {0}")]
    Store(#[from] cityos_store::StoreError),
    /// The desk is overloaded or shutting down; retry with the same op_id.
    #[error("the card desk is not accepting requests right now")]
    Unavailable,
    /// The stored log does not replay to the answers it recorded.
    #[error("the card log is inconsistent at operation '{0}'")]
    Inconsistent(String),
    /// The fare rules are not valid.
    #[error("fare rules: {0}")]
    Rules(String),
}

/// What the network answered while an operation was priced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lookups {
    /// (route, from stop, to stop, metres).
    distances: Vec<(Option<String>, String, String, Option<u32>)>,
    /// (route, stop, operator).
    operators: Vec<(Option<String>, String, String)>,
}

/// Records every answer of a live network view.
struct Recording<'a> {
    inner: &'a dyn NetworkView,
    seen: std::cell::RefCell<Lookups>,
}

impl Distances for Recording<'_> {
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32> {
        let d = self.inner.distance_m(route_id, from_stop, to_stop);
        let mut seen = self.seen.borrow_mut();
        // Repricing asks the same legs again; the log keeps each answer once.
        if !seen
            .distances
            .iter()
            .any(|x| x.0.as_deref() == route_id && x.1 == from_stop && x.2 == to_stop)
        {
            seen.distances.push((
                route_id.map(str::to_owned),
                from_stop.to_owned(),
                to_stop.to_owned(),
                d,
            ));
        }
        d
    }
}

impl NetworkView for Recording<'_> {
    fn operator(&self, route_id: Option<&str>, stop_id: &str) -> String {
        let o = self.inner.operator(route_id, stop_id);
        let mut seen = self.seen.borrow_mut();
        if !seen
            .operators
            .iter()
            .any(|x| x.0.as_deref() == route_id && x.1 == stop_id)
        {
            seen.operators
                .push((route_id.map(str::to_owned), stop_id.to_owned(), o.clone()));
        }
        o
    }
}

/// Answers from a recording, for replay.
struct Replay<'a>(&'a Lookups);

impl Distances for Replay<'_> {
    fn distance_m(&self, route_id: Option<&str>, from_stop: &str, to_stop: &str) -> Option<u32> {
        self.0
            .distances
            .iter()
            .find(|d| d.0.as_deref() == route_id && d.1 == from_stop && d.2 == to_stop)
            .and_then(|d| d.3)
    }
}

impl NetworkView for Replay<'_> {
    fn operator(&self, route_id: Option<&str>, stop_id: &str) -> String {
        self.0
            .operators
            .iter()
            .find(|o| o.0.as_deref() == route_id && o.1 == stop_id)
            .map_or_else(|| "unknown".to_owned(), |o| o.2.clone())
    }
}

/// An operation as logged.
#[derive(Debug, Serialize, Deserialize)]
struct Logged {
    op: Operation,
    lookups: Lookups,
    /// The version of the fare rules that priced it.
    #[serde(default)]
    rules: i64,
}

/// Every version of the fare rules the log was priced with, and the one in force.
struct RulesHistory {
    versions: BTreeMap<i64, FareRules>,
    current: i64,
}

impl RulesHistory {
    /// Loads the stored versions and makes `toml` the current one, storing it
    /// as a new version when it differs from the latest: a fare change takes
    /// effect from the next operation, and the past keeps the rules that priced it.
    async fn load(store: &Store, toml: &str) -> Result<RulesHistory, DeskError> {
        FareRules::from_toml(toml).map_err(|e| DeskError::Rules(e.to_string()))?;
        let mut stored = store.fare_rules_versions().await?;
        let current = match stored.last() {
            Some((version, text)) if text == toml => *version,
            latest => {
                let version = latest.map_or(1, |l| l.0 + 1);
                store.add_fare_rules(version, toml).await?;
                stored.push((version, toml.to_owned()));
                version
            }
        };
        let mut versions = BTreeMap::new();
        for (version, text) in stored {
            let rules = FareRules::from_toml(&text)
                .map_err(|e| DeskError::Rules(format!("stored version {version}: {e}")))?;
            versions.insert(version, rules);
        }
        Ok(RulesHistory { versions, current })
    }

    fn get(&self, version: i64) -> Option<&FareRules> {
        // Operations logged before versions existed were priced by the first.
        self.versions.get(&version).or_else(|| {
            if version == 0 {
                self.versions.values().next()
            } else {
                None
            }
        })
    }
}

/// Gives the desk the network in force when a request is priced.
pub type NetworkSource = Arc<dyn Fn() -> Arc<dyn NetworkView + Send + Sync> + Send + Sync>;

struct Job {
    op_id: String,
    request: Request,
    reply: oneshot::Sender<Result<Answer, DeskError>>,
}

/// The card desk: submit requests, read cards, audit.
#[derive(Clone)]
pub struct CardDesk {
    jobs: mpsc::Sender<Job>,
    book: Arc<RwLock<CardBook>>,
    store: Store,
}

/// Requests queued by [`CardDesk::queue_many`], awaiting their answers.
pub struct Queued {
    pending: Vec<Result<oneshot::Receiver<Result<Answer, DeskError>>, DeskError>>,
}

impl Queued {
    /// The answers, in the order queued, each once durable.
    pub async fn answers(self) -> Vec<Result<Answer, DeskError>> {
        let mut out = Vec::with_capacity(self.pending.len());
        for p in self.pending {
            out.push(match p {
                Ok(answer) => answer.await.unwrap_or(Err(DeskError::Unavailable)),
                Err(e) => Err(e),
            });
        }
        out
    }
}

/// What [`CardDesk::audit`] found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Operations in the log.
    pub operations: usize,
    /// Ledger transfers.
    pub transfers: usize,
    /// Sum of all balances as the database computes them: must be zero.
    pub database_sum: Won,
    /// Accounts whose balance in the database differs from the replayed book.
    pub mismatched_accounts: Vec<String>,
    /// Cards below their allowed negative balance.
    pub cards_below_limit: Vec<String>,
    /// The in-memory ledger's own audit.
    pub ledger_holds: bool,
}

impl AuditReport {
    /// Whether every invariant holds.
    pub fn holds(&self) -> bool {
        self.database_sum == 0
            && self.mismatched_accounts.is_empty()
            && self.cards_below_limit.is_empty()
            && self.ledger_holds
    }
}

impl CardDesk {
    /// Rebuilds the book from the store's log and starts the writer.
    ///
    /// `rules_toml` is the fare rules in force from now on (see
    /// [`cityos_fare::FareRules::from_toml`]); earlier operations keep the
    /// rules they were priced with.
    pub async fn open(
        store: Store,
        rules_toml: &str,
        network: NetworkSource,
    ) -> Result<CardDesk, DeskError> {
        let history = Arc::new(RulesHistory::load(&store, rules_toml).await?);
        let book = Arc::new(RwLock::new(replay(&store, &history).await?));
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(rx, book.clone(), store.clone(), network, history));
        Ok(CardDesk { jobs, book, store })
    }

    /// Submits a request; the answer comes once it is durable.
    pub async fn submit(&self, op_id: &str, request: Request) -> Result<Answer, DeskError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job {
                op_id: op_id.to_owned(),
                request,
                reply,
            })
            .map_err(|_| DeskError::Unavailable)?;
        answer.await.map_err(|_| DeskError::Unavailable)?
    }

    /// Submits requests in the given order (a validator's upload of stored
    /// taps) and returns their answers in that order, once durable.
    pub async fn submit_many(
        &self,
        requests: Vec<(String, Request)>,
    ) -> Vec<Result<Answer, DeskError>> {
        self.queue_many(requests).answers().await
    }

    /// Queues requests now, in order, and returns their answers to await
    /// later: callers that must keep order between batches queue them one
    /// after another and await the answers concurrently.
    pub fn queue_many(&self, requests: Vec<(String, Request)>) -> Queued {
        // Queue them all before awaiting any, so they execute in order and share commits.
        let pending = requests
            .into_iter()
            .map(|(op_id, request)| {
                let (reply, answer) = oneshot::channel();
                self.jobs
                    .try_send(Job {
                        op_id,
                        request,
                        reply,
                    })
                    .map(|()| answer)
                    .map_err(|_| DeskError::Unavailable)
            })
            .collect();
        Queued { pending }
    }

    /// A card's current view.
    pub fn card(&self, card_id: CardId) -> Option<CardView> {
        read(&self.book).card(card_id)
    }

    /// A card's logged operations with their answers, oldest first.
    pub async fn history(
        &self,
        card_id: CardId,
    ) -> Result<Vec<(String, Request, Answer, i64)>, DeskError> {
        let rows = self.store.card_ops_of(card_id).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let logged: Logged = serde_json::from_str(&row.request).ok()?;
                let answer: Answer = serde_json::from_str(&row.answer).ok()?;
                Some((row.op_id, logged.op.request, answer, row.at))
            })
            .collect())
    }

    /// The fare rules in force.
    pub fn rules(&self) -> FareRules {
        read(&self.book).rules().clone()
    }

    /// Checks the invariants: the ledger in the database sums to zero,
    /// every account there equals the book replayed from the log, and no
    /// card is below its allowed negative balance.
    pub async fn audit(&self) -> Result<AuditReport, DeskError> {
        let balances = self.store.ledger_balances().await?;
        let transfers = self.store.transfer_count().await? as usize;
        let operations = self.store.card_ops_after(0, i64::MAX).await?.len();
        let book = read(&self.book);
        let ledger = book.ledger();
        let mut mismatched: Vec<String> = balances
            .iter()
            .filter(|(a, b)| ledger.balance(a) != *b)
            .map(|(a, _)| a.clone())
            .collect();
        mismatched.extend(
            ledger
                .accounts()
                .filter(|a| !balances.iter().any(|(b, _)| b == a) && ledger.balance(a) != 0)
                .map(str::to_owned),
        );
        let cards_below_limit = balances
            .iter()
            .filter(|(a, b)| {
                a.starts_with("card:") && ledger.limits(a).floor.is_some_and(|f| *b < f)
            })
            .map(|(a, _)| a.clone())
            .collect();
        Ok(AuditReport {
            operations,
            transfers,
            database_sum: balances.iter().map(|b| b.1).sum(),
            mismatched_accounts: mismatched,
            cards_below_limit,
            ledger_holds: ledger.audit().holds(),
        })
    }

    /// Ridership of the accepted taps, of one date or of all.
    pub fn ridership(&self, date: Option<jiff::civil::Date>) -> crate::ridership::Ridership {
        read(&self.book).ridership(date)
    }

    /// The balance of a card account in the in-memory ledger.
    pub fn balance(&self, card_id: CardId) -> Won {
        read(&self.book).ledger().balance(&card_account(card_id))
    }
}

fn read(book: &RwLock<CardBook>) -> std::sync::RwLockReadGuard<'_, CardBook> {
    book.read().unwrap_or_else(|e| e.into_inner())
}

/// Rebuilds the book by executing the logged operations again, each with the
/// rules that priced it, checking each answer; it ends on the current rules.
async fn replay(store: &Store, history: &RulesHistory) -> Result<CardBook, DeskError> {
    let first = history
        .versions
        .keys()
        .next()
        .copied()
        .unwrap_or(history.current);
    let rules_of = |version: i64| {
        history
            .get(version)
            .cloned()
            .ok_or_else(|| DeskError::Rules(format!("no stored fare rules version {version}")))
    };
    let mut book = CardBook::new(rules_of(first)?);
    let mut in_force = first;
    let mut after = 0;
    loop {
        let rows = store.card_ops_after(after, 10_000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in rows {
            let logged: Logged = serde_json::from_str(&row.request)
                .map_err(|_| DeskError::Inconsistent(row.op_id.clone()))?;
            let version = if logged.rules == 0 {
                first
            } else {
                logged.rules
            };
            if version != in_force {
                book.set_rules(rules_of(version)?);
                in_force = version;
            }
            let executed = book.execute(&logged.op, &Replay(&logged.lookups));
            let answer = serde_json::to_string(&executed.answer).unwrap_or_default();
            if answer != row.answer {
                return Err(DeskError::Inconsistent(row.op_id));
            }
        }
    }
    if in_force != history.current {
        book.set_rules(rules_of(history.current)?);
    }
    Ok(book)
}

/// A batch executed on the book, waiting for its commit.
struct Executed {
    batch: CardBatch,
    replies: Vec<(oneshot::Sender<Result<Answer, DeskError>>, Answer)>,
    /// The failure count when it was executed: a batch built on a book that
    /// included a failed batch must not be committed.
    epoch: u64,
}

/// Executes requests on the book, batch after batch, while the committer
/// makes the previous batch durable: pricing and fsync overlap.
async fn writer(
    mut rx: mpsc::Receiver<Job>,
    book: Arc<RwLock<CardBook>>,
    store: Store,
    network: NetworkSource,
    history: Arc<RulesHistory>,
) {
    let epoch = Arc::new(AtomicU64::new(0));
    let (to_commit, pending) = mpsc::channel::<Executed>(2);
    tokio::spawn(committer(
        pending,
        store,
        book.clone(),
        epoch.clone(),
        history.clone(),
    ));
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let executed = execute_batch(&book, &mut jobs, &network, &epoch, history.current);
        if to_commit.send(executed).await.is_err() {
            break;
        }
    }
}

fn execute_batch(
    book: &RwLock<CardBook>,
    jobs: &mut Vec<Job>,
    network: &NetworkSource,
    epoch: &AtomicU64,
    rules: i64,
) -> Executed {
    let now = cityos_store::now_unix();
    let view = network();
    let mut batch = CardBatch::default();
    let mut replies = Vec::with_capacity(jobs.len());
    let mut book = book.write().unwrap_or_else(|e| e.into_inner());
    // Read under the lock: the committer swaps the book and bumps the epoch under it too.
    let built_on = epoch.load(Ordering::SeqCst);
    for job in jobs.drain(..) {
        let op = Operation {
            op_id: job.op_id,
            at: now,
            request: job.request,
        };
        let recording = Recording {
            inner: view.as_ref(),
            seen: Default::default(),
        };
        let executed = book.execute(&op, &recording);
        if executed.new {
            if let Some((validator_id, counter)) = &executed.tap_key {
                batch.taps.push(TapKey {
                    validator_id: validator_id.clone(),
                    counter: *counter,
                    op_id: op.op_id.clone(),
                });
            }
            batch
                .transfers
                .extend(executed.transfers.iter().map(|t| TransferRow {
                    id: t.id.clone(),
                    debit: t.debit.clone(),
                    credit: t.credit.clone(),
                    amount: t.amount,
                    kind: t.kind.as_str().to_owned(),
                    reference: t.reference.clone(),
                    at: t.at,
                }));
            let (op_id, kind) = (op.op_id.clone(), op.request.kind().to_owned());
            let logged = Logged {
                op,
                lookups: recording.seen.into_inner(),
                rules,
            };
            batch.ops.push(CardOpRow {
                seq: 0,
                op_id,
                kind,
                card_id: executed.card_id,
                request: serde_json::to_string(&logged).unwrap_or_default(),
                answer: serde_json::to_string(&executed.answer).unwrap_or_default(),
                at: now,
            });
        }
        replies.push((job.reply, executed.answer));
    }
    Executed {
        batch,
        replies,
        epoch: built_on,
    }
}

/// Commits batches in order and only then answers. After a failure it
/// rebuilds the book from what is durable and refuses every batch that was
/// built on the book that had run ahead.
async fn committer(
    mut pending: mpsc::Receiver<Executed>,
    store: Store,
    book: Arc<RwLock<CardBook>>,
    epoch: Arc<AtomicU64>,
    history: Arc<RulesHistory>,
) {
    while let Some(executed) = pending.recv().await {
        let result = if executed.epoch == epoch.load(Ordering::SeqCst) {
            store.append_card_batch(executed.batch).await
        } else {
            Err(cityos_store::StoreError::Task(
                "built on a book that was rolled back".to_owned(),
            ))
        };
        let failed = result.is_err() && executed.epoch == epoch.load(Ordering::SeqCst);
        if failed {
            if let Err(e) = &result {
                tracing::error!("card batch not committed, nothing in it was acknowledged: {e}");
            }
            // Rebuild before answering, so nobody reads a balance that was never durable after a refusal.
            rebuild(&store, &book, &epoch, &history).await;
        }
        for (reply, answer) in executed.replies {
            let _ = reply.send(match &result {
                Ok(()) => Ok(answer),
                Err(_) => Err(DeskError::Unavailable),
            });
        }
    }
}

/// Replaces the book with one replayed from the store and moves to a new
/// epoch, retrying until the store answers.
async fn rebuild(
    store: &Store,
    book: &RwLock<CardBook>,
    epoch: &AtomicU64,
    history: &RulesHistory,
) {
    loop {
        match replay(store, history).await {
            Ok(fresh) => {
                let mut guard = book.write().unwrap_or_else(|e| e.into_inner());
                *guard = fresh;
                epoch.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::error!("card book could not be rebuilt, retrying: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
