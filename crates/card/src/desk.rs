//! [`CardDesk`]: the card book behind a group-committing writer.
//!
//! Requests queue to one writer task. It takes everything waiting (up to a
//! batch), executes it on the book, writes the batch to the store in one
//! transaction, and only then answers every request in it: an answer means
//! the operation and all its ledger entries are durable. One fsync serves a
//! whole batch, which is where the throughput comes from.
//!
//! The journal is self-contained: each operation is stored with the
//! distances and operators the network told the book while pricing it, so a
//! restart replays it to exactly the same charges even if the network changed
//! since. A whole batch is one journal row: a durable tap costs a few hundred
//! bytes of sequential write, not a handful of b-tree inserts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cityos_fare::{Distances, FareRules};
use cityos_ledger::{Transfer, Won};
use cityos_store::cards::{CardLogBatch, CardWriterLock};
use cityos_store::{Engine, Store};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::book::{
    Answer, CardBook, CardId, CardView, Executed, NetworkView, Operation, Request, card_account,
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
#[serde(default)]
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

impl Lookups {
    fn is_empty(&self) -> bool {
        self.distances.is_empty() && self.operators.is_empty()
    }
}

/// An operation as the journal holds it: borrowed from the book when
/// written, owned when read back.
#[derive(Debug, Serialize, Deserialize)]
struct LogEntry<'a> {
    op: Cow<'a, Operation>,
    #[serde(default, skip_serializing_if = "Lookups::is_empty")]
    lookups: Lookups,
    /// The version of the fare rules that priced it.
    #[serde(default)]
    rules: i64,
    card_id: CardId,
    answer: Cow<'a, Answer>,
    /// Its ledger transfers, so the audit can sum the journal without the book.
    #[serde(default, skip_serializing_if = "<[Transfer]>::is_empty")]
    transfers: Cow<'a, [Transfer]>,
}

/// A journal row's entries.
fn entries(batch: &CardLogBatch) -> Result<Vec<LogEntry<'static>>, DeskError> {
    serde_json::from_str(&batch.body)
        .map_err(|e| DeskError::Inconsistent(format!("journal batch {}: {e}", batch.batch)))
}

/// Executes logged operations on a fresh book, each with the fare rules that priced it.
struct Replayer<'h> {
    history: &'h RulesHistory,
    /// The oldest version, which priced operations logged before versions existed.
    first: i64,
    in_force: i64,
    book: CardBook,
}

impl<'h> Replayer<'h> {
    /// Starts from an empty book, with the oldest rules.
    fn new(history: &'h RulesHistory) -> Result<Replayer<'h>, DeskError> {
        let first = history.first();
        let mut replayer = Replayer::resume(CardBook::new(history.rules(first)?), history);
        replayer.in_force = first;
        Ok(replayer)
    }

    /// Goes on from `book`, which prices with the current rules.
    fn resume(book: CardBook, history: &'h RulesHistory) -> Replayer<'h> {
        Replayer {
            history,
            first: history.first(),
            in_force: history.current,
            book,
        }
    }

    /// Executes `op` answering the network's questions from `lookups`, with rules version `rules`.
    fn execute(
        &mut self,
        op: Operation,
        lookups: &Lookups,
        rules: i64,
    ) -> Result<Executed, DeskError> {
        let version = if rules == 0 { self.first } else { rules };
        if version != self.in_force {
            self.book.set_rules(self.history.rules(version)?);
            self.in_force = version;
        }
        Ok(self.book.execute(op, &Replay(lookups)))
    }

    /// The book, pricing with the current rules from now on.
    fn finish(mut self) -> Result<CardBook, DeskError> {
        if self.in_force != self.history.current {
            self.book
                .set_rules(self.history.rules(self.history.current)?);
        }
        Ok(self.book)
    }
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

    /// The oldest version, which priced operations logged before versions existed.
    fn first(&self) -> i64 {
        self.versions.keys().next().copied().unwrap_or(self.current)
    }

    /// The rules of `version`.
    fn rules(&self, version: i64) -> Result<FareRules, DeskError> {
        self.versions
            .get(&version)
            .cloned()
            .ok_or_else(|| DeskError::Rules(format!("no stored fare rules version {version}")))
    }
}

/// Gives the desk the network in force when a request is priced.
pub type NetworkSource = Arc<dyn Fn() -> Arc<dyn NetworkView + Send + Sync> + Send + Sync>;

struct Job {
    op_id: String,
    request: Request,
    reply: oneshot::Sender<Result<Answer, DeskError>>,
}

/// What the desk has made durable and what failed, as plain counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DeskStats {
    /// Journal batches committed.
    pub batches: AtomicU64,
    /// Operations committed (repeats of earlier ones are not).
    pub operations: AtomicU64,
    /// Taps accepted and charged, once durable.
    pub taps_accepted: AtomicU64,
    /// Taps refused (unknown or blocked card, insufficient balance, …), once durable.
    pub taps_refused: AtomicU64,
    /// Commits that failed; nothing in them was acknowledged.
    pub commit_failures: AtomicU64,
}

/// The card desk: submit requests, read cards, audit.
#[derive(Clone)]
pub struct CardDesk {
    jobs: mpsc::Sender<Job>,
    book: Arc<RwLock<CardBook>>,
    store: Store,
    stats: Arc<DeskStats>,
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
    /// Operations in the journal.
    pub operations: usize,
    /// Ledger transfers in the journal.
    pub transfers: usize,
    /// Sum of all balances as the durable journal's transfers give them: must be zero.
    pub database_sum: Won,
    /// Accounts whose balance in the journal differs from the book in memory.
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
        convert_legacy_ops(&store, &history).await?;
        let started = std::time::Instant::now();
        let replayed = replay(&store, &history).await?;
        tracing::info!(
            batches = replayed.last_batch,
            operations = replayed.book.journal_len(),
            cards = replayed.book.card_count(),
            seconds = started.elapsed().as_secs_f64(),
            "card journal replayed"
        );
        let book = Arc::new(RwLock::new(replayed.book));
        let (jobs, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(DeskStats::default());
        let (done, drained) = watch::channel(0);
        let committer = Committer {
            store: store.clone(),
            last_batch: Arc::new(AtomicI64::new(replayed.last_batch)),
            stats: stats.clone(),
            done,
        };
        tokio::spawn(writer(
            rx,
            book.clone(),
            committer,
            drained,
            network,
            history,
        ));
        Ok(CardDesk {
            jobs,
            book,
            store,
            stats,
        })
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

    /// Counters of what was committed and what failed.
    pub fn stats(&self) -> &Arc<DeskStats> {
        &self.stats
    }

    /// A card's current view.
    pub fn card(&self, card_id: CardId) -> Option<CardView> {
        read(&self.book).card(card_id)
    }

    /// A card's operations with their answers and when the desk took them, oldest first.
    pub async fn history(
        &self,
        card_id: CardId,
    ) -> Result<Vec<(String, Request, Answer, i64)>, DeskError> {
        Ok(read(&self.book)
            .history(card_id)
            .into_iter()
            .map(|(op, answer)| (op.op_id.clone(), op.request.clone(), answer.clone(), op.at))
            .collect())
    }

    /// The fare rules in force.
    pub fn rules(&self) -> FareRules {
        read(&self.book).rules().clone()
    }

    /// Checks the invariants: the ledger transfers in the durable journal,
    /// summed without the book, come to zero and give every account the
    /// balance the book holds, and no card is below its allowed negative balance.
    pub async fn audit(&self) -> Result<AuditReport, DeskError> {
        let mut balances: FxHashMap<String, Won> = FxHashMap::default();
        let (mut operations, mut transfers) = (0, 0);
        let mut after = 0;
        loop {
            let batches = self.store.card_log_after(after, 64).await?;
            let Some(last) = batches.last() else { break };
            after = last.batch;
            for batch in &batches {
                for entry in entries(batch)? {
                    operations += 1;
                    for t in entry.transfers.iter() {
                        transfers += 1;
                        *balances.entry(t.debit.clone()).or_default() -= t.amount;
                        *balances.entry(t.credit.clone()).or_default() += t.amount;
                    }
                }
            }
        }
        let book = read(&self.book);
        let ledger = book.ledger();
        let mut mismatched: Vec<String> = balances
            .iter()
            .filter(|(a, b)| ledger.balance(a) != **b)
            .map(|(a, _)| a.clone())
            .collect();
        mismatched.extend(
            ledger
                .accounts()
                .filter(|a| !balances.contains_key(*a) && ledger.balance(a) != 0)
                .map(str::to_owned),
        );
        mismatched.sort();
        let mut cards_below_limit: Vec<String> = balances
            .iter()
            .filter(|(a, b)| {
                a.starts_with("card:") && ledger.limits(a).floor.is_some_and(|f| **b < f)
            })
            .map(|(a, _)| a.clone())
            .collect();
        cards_below_limit.sort();
        Ok(AuditReport {
            operations,
            transfers,
            database_sum: balances.values().sum(),
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

/// A book rebuilt from the journal, and the journal's last batch number.
struct Replayed {
    book: CardBook,
    last_batch: i64,
}

/// Rebuilds the book by executing the journal again, each operation with the
/// rules that priced it, checking each answer; it ends on the current rules.
async fn replay(store: &Store, history: &RulesHistory) -> Result<Replayed, DeskError> {
    let mut replayer = Replayer::new(history)?;
    let mut after = 0;
    loop {
        let batches = store.card_log_after(after, 64).await?;
        let Some(last) = batches.last() else { break };
        after = last.batch;
        apply_batches(&mut replayer, &batches)?;
    }
    Ok(Replayed {
        book: replayer.finish()?,
        last_batch: after,
    })
}

/// Executes the journal's `batches` with `replayer`, checking every answer.
fn apply_batches(replayer: &mut Replayer<'_>, batches: &[CardLogBatch]) -> Result<(), DeskError> {
    for batch in batches {
        for entry in entries(batch)? {
            let executed = replayer.execute(entry.op.into_owned(), &entry.lookups, entry.rules)?;
            if executed.answer != *entry.answer {
                let (op, _) = replayer
                    .book
                    .journaled(executed.position)
                    .expect("just executed");
                return Err(DeskError::Inconsistent(op.op_id.clone()));
            }
        }
    }
    Ok(())
}

/// Moves operations from the per-operation tables of earlier versions into
/// the journal, replaying them to recover their transfers, in one transaction.
async fn convert_legacy_ops(store: &Store, history: &RulesHistory) -> Result<(), DeskError> {
    /// How the per-operation tables held a request.
    #[derive(Deserialize)]
    struct Legacy {
        op: Operation,
        lookups: Lookups,
        #[serde(default)]
        rules: i64,
    }
    let rows = store.legacy_card_ops().await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut replayer = Replayer::new(history)?;
    let mut batches = Vec::with_capacity(rows.len());
    for row in rows {
        let inconsistent = || DeskError::Inconsistent(row.op_id.clone());
        let legacy: Legacy = serde_json::from_str(&row.request).map_err(|_| inconsistent())?;
        let answer: Answer = serde_json::from_str(&row.answer).map_err(|_| inconsistent())?;
        let executed = replayer.execute(legacy.op, &legacy.lookups, legacy.rules)?;
        if executed.answer != answer {
            return Err(inconsistent());
        }
        let (op, answer) = replayer
            .book
            .journaled(executed.position)
            .expect("just executed");
        let entry = LogEntry {
            op: Cow::Borrowed(op),
            lookups: legacy.lookups,
            rules: legacy.rules,
            card_id: row.card_id,
            answer: Cow::Borrowed(answer),
            transfers: Cow::Owned(executed.transfers),
        };
        batches.push(CardLogBatch {
            batch: batches.len() as i64 + 1,
            ops: 1,
            body: format!(
                "[{}]",
                serde_json::to_string(&entry).map_err(|_| inconsistent())?
            ),
        });
    }
    tracing::info!("moving {} card operations into the journal", batches.len());
    Ok(store.replace_legacy_card_ops(batches).await?)
}

/// A batch executed on the book, waiting for its commit.
struct ExecutedBatch {
    /// The journal row's body (a JSON array) and how many operations it holds.
    body: Vec<u8>,
    ops: i64,
    /// Of those, taps accepted and taps refused.
    taps: (u64, u64),
    replies: Vec<(oneshot::Sender<Result<Answer, DeskError>>, Answer)>,
    /// The failure count when it was executed: a batch built on a book that
    /// included a failed batch must not be committed.
    epoch: u64,
}

/// How long a writer on a shared database keeps its turn while busy, before
/// letting another replica write (it takes the next turn it can).
const TURN: Duration = Duration::from_millis(250);
/// How often an idle desk lets go of its turn and reads what other replicas wrote.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Executes requests on the book, batch after batch, while the committer
/// makes the previous batch durable: pricing and fsync overlap.
///
/// Replicas on one PostgreSQL take turns through the store's writer lock.
/// A desk takes its turn when requests come, first catches up with what the
/// others wrote meanwhile, and lets go once what it sent is durable, after
/// [`TURN`] when busy or when idle. Idle, it follows the others' batches, so
/// its balances and ridership stay current.
async fn writer(
    mut rx: mpsc::Receiver<Job>,
    book: Arc<RwLock<CardBook>>,
    committer: Committer,
    mut drained: watch::Receiver<u64>,
    network: NetworkSource,
    history: Arc<RulesHistory>,
) {
    let epoch = Arc::new(AtomicU64::new(0));
    let (store, last_batch) = (committer.store.clone(), committer.last_batch.clone());
    let (to_commit, pending) = mpsc::channel::<ExecutedBatch>(2);
    tokio::spawn(committer.run(pending, book.clone(), epoch.clone(), history.clone()));
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut turn: Option<(CardWriterLock, Instant)> = None;
    let mut sent = 0u64;
    let mut follow = tokio::time::interval(FOLLOW_EVERY);
    follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = rx.recv_many(&mut jobs, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                if turn.is_none() {
                    match store.card_writer_lock().await {
                        Ok(lock) => turn = Some((lock, Instant::now())),
                        Err(e) => {
                            tracing::error!("cannot take the card writer's turn: {e}");
                            for job in jobs.drain(..) {
                                let _ = job.reply.send(Err(DeskError::Unavailable));
                            }
                            continue;
                        }
                    }
                    // Nothing of ours is in flight: the book may take the others' batches.
                    catch_up(&store, &book, &last_batch, &epoch, &history).await;
                }
                let executed = execute_batch(&book, &mut jobs, &network, &epoch, history.current);
                sent += 1;
                if to_commit.send(executed).await.is_err() {
                    break;
                }
                if turn.as_ref().is_some_and(|(lock, since)| lock.is_shared() && since.elapsed() > TURN) {
                    let _ = drained.wait_for(|done| *done >= sent).await;
                    turn = None;
                }
            }
            _ = follow.tick() => {
                if turn.as_ref().is_some_and(|(lock, _)| lock.is_shared()) && rx.is_empty() {
                    let _ = drained.wait_for(|done| *done >= sent).await;
                    turn = None;
                }
                // Only a shared database has other writers to follow.
                if turn.is_none() && store.engine() == Engine::Postgres {
                    catch_up(&store, &book, &last_batch, &epoch, &history).await;
                }
            }
        }
    }
}

/// Applies the batches other processes wrote after `last_batch` to the book.
/// Call it only when none of this process's batches is in flight. A batch
/// that does not replay to its recorded answers makes the desk rebuild.
async fn catch_up(
    store: &Store,
    book: &RwLock<CardBook>,
    last_batch: &AtomicI64,
    epoch: &AtomicU64,
    history: &RulesHistory,
) {
    loop {
        let after = last_batch.load(Ordering::SeqCst);
        let batches = match store.card_log_after(after, 64).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cannot read the card journal to catch up: {e}");
                return;
            }
        };
        let Some(last) = batches.last().map(|b| b.batch) else {
            return;
        };
        let applied = {
            let mut guard = book.write().unwrap_or_else(|e| e.into_inner());
            let placeholder = CardBook::new(guard.rules().clone());
            let mut replayer =
                Replayer::resume(std::mem::replace(&mut *guard, placeholder), history);
            let applied = apply_batches(&mut replayer, &batches);
            match replayer.finish() {
                Ok(caught_up) => *guard = caught_up,
                Err(e) => tracing::error!("card book left on its rules: {e}"),
            }
            applied
        };
        match applied {
            Ok(()) => last_batch.store(last, Ordering::SeqCst),
            Err(e) => {
                tracing::error!("another process's card batch does not replay, rebuilding: {e}");
                let rebuilt = rebuild(store, book, epoch, history).await;
                last_batch.store(rebuilt, Ordering::SeqCst);
                return;
            }
        }
    }
}

fn execute_batch(
    book: &RwLock<CardBook>,
    jobs: &mut Vec<Job>,
    network: &NetworkSource,
    epoch: &AtomicU64,
    rules: i64,
) -> ExecutedBatch {
    let now = cityos_store::now_unix();
    let view = network();
    let mut body = Vec::with_capacity(jobs.len() * 512);
    body.push(b'[');
    let mut ops = 0;
    let mut taps = (0, 0);
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
        let executed = book.execute(op, &recording);
        if executed.new {
            let (op, answer) = book.journaled(executed.position).expect("just executed");
            let entry = LogEntry {
                op: Cow::Borrowed(op),
                lookups: recording.seen.into_inner(),
                rules,
                card_id: executed.card_id,
                answer: Cow::Borrowed(answer),
                transfers: Cow::Borrowed(&executed.transfers),
            };
            if ops > 0 {
                body.push(b',');
            }
            serde_json::to_writer(&mut body, &entry).expect("a log entry always serializes");
            ops += 1;
            match (&op.request, answer) {
                (Request::Tap { .. }, Answer::Refused { .. }) => taps.1 += 1,
                (Request::Tap { .. }, _) => taps.0 += 1,
                _ => {}
            }
        }
        replies.push((job.reply, executed.answer));
    }
    body.push(b']');
    ExecutedBatch {
        body,
        ops,
        taps,
        replies,
        epoch: built_on,
    }
}

/// The committing half of the desk: where the journal goes and where it ends.
struct Committer {
    store: Store,
    /// The journal's last batch as this process knows it; the writer moves
    /// it too when it catches up with other processes' batches.
    last_batch: Arc<AtomicI64>,
    stats: Arc<DeskStats>,
    /// How many batches the writer sent have been dealt with (committed or refused).
    done: watch::Sender<u64>,
}

impl Committer {
    /// Commits batches in order and only then answers. After a failure it
    /// rebuilds the book from what is durable and refuses every batch that
    /// was built on the book that had run ahead.
    async fn run(
        mut self,
        mut pending: mpsc::Receiver<ExecutedBatch>,
        book: Arc<RwLock<CardBook>>,
        epoch: Arc<AtomicU64>,
        history: Arc<RulesHistory>,
    ) {
        while let Some(mut executed) = pending.recv().await {
            let built_on_current = executed.epoch == epoch.load(Ordering::SeqCst);
            let result = if !built_on_current {
                Err(cityos_store::StoreError::Task(
                    "built on a book that was rolled back".to_owned(),
                ))
            } else if executed.ops == 0 {
                // Only repeats: nothing new to make durable.
                Ok(())
            } else {
                let body = std::mem::take(&mut executed.body);
                self.commit(body, executed.ops, executed.taps).await
            };
            if result.is_err() && built_on_current {
                self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = &result {
                    tracing::error!(
                        "card batch not committed, nothing in it was acknowledged: {e}"
                    );
                }
                // Rebuild before answering, so nobody reads a balance that was never durable after a refusal.
                let last = rebuild(&self.store, &book, &epoch, &history).await;
                self.last_batch.store(last, Ordering::SeqCst);
            }
            for (reply, answer) in executed.replies {
                let _ = reply.send(match &result {
                    Ok(()) => Ok(answer),
                    Err(_) => Err(DeskError::Unavailable),
                });
            }
            self.done.send_modify(|n| *n += 1);
        }
    }

    /// Writes `body` (`ops` operations, `taps` accepted and refused) as the
    /// journal's next batch and counts it.
    async fn commit(
        &mut self,
        body: Vec<u8>,
        ops: i64,
        taps: (u64, u64),
    ) -> Result<(), cityos_store::StoreError> {
        let next = self.last_batch.load(Ordering::SeqCst) + 1;
        let batch = CardLogBatch {
            batch: next,
            ops,
            body: String::from_utf8(body).expect("serde_json writes UTF-8"),
        };
        self.store.append_card_log(batch).await?;
        self.last_batch.store(next, Ordering::SeqCst);
        let stats = &self.stats;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.operations.fetch_add(ops as u64, Ordering::Relaxed);
        stats.taps_accepted.fetch_add(taps.0, Ordering::Relaxed);
        stats.taps_refused.fetch_add(taps.1, Ordering::Relaxed);
        Ok(())
    }
}

/// Replaces the book with one replayed from the store and moves to a new
/// epoch, retrying until the store answers; returns the journal's last batch.
async fn rebuild(
    store: &Store,
    book: &RwLock<CardBook>,
    epoch: &AtomicU64,
    history: &RulesHistory,
) -> i64 {
    loop {
        match replay(store, history).await {
            Ok(fresh) => {
                let mut guard = book.write().unwrap_or_else(|e| e.into_inner());
                *guard = fresh.book;
                epoch.fetch_add(1, Ordering::SeqCst);
                return fresh.last_batch;
            }
            Err(e) => {
                tracing::error!("card book could not be rebuilt, retrying: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
