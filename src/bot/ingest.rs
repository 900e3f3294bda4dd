//! Accepting observation batches durably and fast.
//!
//! Handlers validate a batch whole and hand it to the writer thread, which
//! commits everything waiting in one transaction (group commit: one fsync for
//! many batches), queueing the batches' agents for drafting, and answers as
//! soon as it is durable. The folder thread then folds the stored batches, in
//! journal order, into the in-memory [`Window`], and every few seconds
//! checkpoints the changed day buckets and empties the journal up to what it
//! has folded. The threads overlap, so SQLite and summarising use both cores;
//! the folder's queue is bounded, so acknowledgements never outrun folding by
//! more than [`FOLD_QUEUE`] batches. A drafting job first waits until
//! everything acknowledged is folded ([`FoldProgress::caught_up`]).
//!
//! With PostgreSQL ([`Journal::Shared`]) the writer is the same and the
//! acknowledgement waits for the database's commit; the folder
//! ([`SharedFolder`]) folds, at each checkpoint, the batches it wrote and any
//! batch a dead replica left behind into the shared buckets, in one
//! transaction that also deletes them from the journal. A draft reads the
//! agent's buckets and its unfolded batches from one snapshot
//! ([`agent_window`]), so it sees every acknowledged call exactly once.

use super::metrics::Metrics;
use crate::core::hex;
use crate::core::observation::{parse_batch, Batch, Origin};
use crate::core::summary::Summary;
use crate::core::window::{self, BucketKey, Window};
use crate::store::postgres::{AgentRows, JournalRow};
use crate::store::{Appended, Incoming, Postgres, Sqlite};
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// Batches waiting for the writer before new ones are turned away with 503.
const QUEUE: usize = 512;
/// Most batches committed in one transaction.
const GROUP: usize = 128;
/// Stored batches waiting to be folded before the writer waits for the folder.
pub const FOLD_QUEUE: usize = 64;
/// Parsed batches a shared folder keeps for its next checkpoint; past that it
/// leaves the oldest to be read back from the journal.
const SHARED_PENDING: usize = 4096;
/// Journal rows older than this are folded by whichever replica checkpoints
/// next: the replica that stored them died or cannot reach the database.
const ORPHANED_AFTER: Duration = Duration::from_secs(10);
/// Most orphaned rows one checkpoint takes on.
const ORPHANS_PER_CHECKPOINT: i64 = 256;

/// How far the writer and the folder have got, in journal ids.
#[derive(Debug, Default)]
pub struct FoldProgress {
    committed: AtomicI64,
    folded: AtomicI64,
}

impl FoldProgress {
    /// Wait until every batch acknowledged so far is in the window (at most `limit`).
    pub async fn caught_up(&self, limit: Duration) {
        let target = self.committed.load(Ordering::Acquire);
        let deadline = tokio::time::Instant::now() + limit;
        while self.folded.load(Ordering::Acquire) < target && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

pub struct Ingestor {
    sender: Mutex<Option<SyncSender<Pending>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct Pending {
    incoming: Incoming,
    batch: Batch,
    reply: oneshot::Sender<Result<Appended, String>>,
}

/// A stored batch on its way to the window.
struct Stored {
    id: i64,
    received_at: i64,
    batch: Batch,
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("too many batches are waiting to be stored; retry shortly")]
    Busy,
    #[error("the store failed: {0}")]
    Store(String),
}

/// Tuning of the ingest threads; tests shorten the checkpoint interval.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub debounce_seconds: i64,
    /// Days of buckets kept: the drafting window, or longer to tell unused rules.
    pub retain_days: u32,
    pub checkpoint_every: Duration,
}

/// The window as the store holds it: snapshots, with the journal folded on top.
pub struct Recovered {
    pub window: Window,
    /// The last journal id folded in.
    pub through: i64,
}

/// Where ingest writes: SQLite with the window in memory, or PostgreSQL.
pub enum Journal {
    /// Two connections of their own (writer, folder); the window recovered
    /// up to journal id `through`, which the folder keeps folding into.
    Local {
        writer: Box<Sqlite>,
        folder: Box<Sqlite>,
        window: Arc<Mutex<Window>>,
        through: i64,
        progress: Arc<FoldProgress>,
    },
    Shared(Postgres),
}

/// Load the window from the store.
pub fn recover(store: &Sqlite, retain_days: u32, now: i64) -> anyhow::Result<Recovered> {
    let mut restored = Window::default();
    let span = window::span(now, retain_days);
    for (key, blob) in store.buckets(window::day_of(span.start))? {
        let summary = rmp_serde::from_slice(&blob)
            .with_context(|| format!("the stored summary of {} day {} does not decode", key.0, key.1))?;
        restored.restore(key, summary);
    }
    let mut through = 0;
    for rows in store.journal()?.chunks(FOLD_QUEUE) {
        let mut batches = Vec::with_capacity(rows.len());
        for (id, received_at, body) in rows {
            let text = String::from_utf8_lossy(body);
            let batch = parse_batch(&origin(), &text)
                .with_context(|| format!("journal batch {id} does not parse"))?;
            batches.push((batch, *received_at));
            through = *id;
        }
        let refs: Vec<_> = batches.iter().map(|(b, at)| (b, *at)).collect();
        restored.fold_all(&refs);
    }
    Ok(Recovered {
        window: restored,
        through,
    })
}

/// The agent's window as a draft reads it from the shared store: its
/// buckets, with its calls in the batches not yet folded on top.
pub fn agent_window(rows: AgentRows, agent: &str) -> anyhow::Result<Window> {
    let mut out = Window::default();
    for (key, blob) in rows.buckets {
        out.restore(key.clone(), decode(&key, &blob)?);
    }
    let mut batches = Vec::with_capacity(rows.journal.len());
    for row in &rows.journal {
        let mut batch = parse_row(row)?;
        batch.calls.retain(|c| c.agent == agent);
        batches.push((batch, row.received_at));
    }
    let refs: Vec<_> = batches.iter().map(|(b, at)| (b, *at)).collect();
    out.fold_all(&refs);
    Ok(out)
}

fn decode(key: &BucketKey, blob: &[u8]) -> anyhow::Result<Summary> {
    rmp_serde::from_slice(blob)
        .with_context(|| format!("the stored summary of {} day {} does not decode", key.0, key.1))
}

fn parse_row(row: &JournalRow) -> anyhow::Result<Batch> {
    parse_batch(&origin(), &String::from_utf8_lossy(&row.body))
        .with_context(|| format!("journal batch {} does not parse", row.id))
}

fn origin() -> Origin {
    Origin {
        source: "request body".into(),
        line: None,
    }
}

/// Validate a request body as one `ObservationBatch`, whole.
pub fn validate(body: &[u8]) -> Result<Batch, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("request body is not UTF-8: {e}"))?;
    parse_batch(&origin(), text).map_err(|e| e.to_string())
}

impl Ingestor {
    /// Start the writer and folder threads.
    pub fn start(
        journal: Journal,
        settings: WriterSettings,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Ingestor {
        let (sender, receiver) = sync_channel(QUEUE);
        let (stored, to_fold) = sync_channel(FOLD_QUEUE);
        let debounce = settings.debounce_seconds;
        let (appender, progress, folder): (_, _, Box<dyn FnOnce() + Send>) = match journal {
            Journal::Local {
                writer,
                folder,
                window,
                through,
                progress,
            } => {
                progress.committed.store(through, Ordering::Release);
                progress.folded.store(through, Ordering::Release);
                let folder = Folder {
                    store: *folder,
                    window,
                    through,
                    unsaved: through > 0,
                    settings,
                    progress: progress.clone(),
                };
                (
                    Appender::Local(*writer),
                    progress,
                    Box::new(move || folder.run(to_fold)),
                )
            }
            Journal::Shared(db) => {
                let runtime = tokio::runtime::Handle::current();
                let folder = SharedFolder {
                    store: db.clone(),
                    runtime: runtime.clone(),
                    pending: Vec::new(),
                    settings,
                    wake: wake.clone(),
                };
                (
                    Appender::Shared(db, runtime),
                    Arc::new(FoldProgress::default()),
                    Box::new(move || folder.run(to_fold)),
                )
            }
        };
        let writer = std::thread::Builder::new()
            .name("shadowdraft-writer".into())
            .spawn(move || {
                Writer {
                    store: appender,
                    folder: stored,
                    progress,
                    debounce,
                    metrics,
                    wake,
                }
                .run(receiver)
            })
            .expect("spawn the writer thread");
        let folder = std::thread::Builder::new()
            .name("shadowdraft-folder".into())
            .spawn(folder)
            .expect("spawn the folder thread");
        Ingestor {
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(vec![writer, folder]),
        }
    }

    /// Store a validated batch; resolves once it is durable.
    pub async fn submit(
        &self,
        key: Option<String>,
        body: &[u8],
        mut batch: Batch,
    ) -> Result<Appended, IngestError> {
        // Only a key needs the body's digest: to tell a retry from a reused key
        // (the body as sent, so a retry matches whatever was redacted).
        let body_sha256 = key
            .as_ref()
            .map(|_| hex::encode(&Sha256::digest(body)))
            .unwrap_or_default();
        // No raw secret is journalled, folded or replicated: what is stored
        // is the batch with its secrets redacted.
        let body = if batch.redact_secrets() {
            batch.to_json().into_bytes()
        } else {
            body.to_vec()
        };
        let mut agents: Vec<String> = Vec::new();
        for call in &batch.calls {
            if !agents.contains(&call.agent) {
                agents.push(call.agent.clone());
            }
        }
        let node = batch
            .policy_commit
            .clone()
            .filter(|_| !batch.source.is_empty())
            .map(|commit| (batch.source.clone(), commit));
        let incoming = Incoming {
            key,
            body_sha256,
            body,
            agents,
            node,
            received_at: crate::clock::now(),
        };
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            incoming,
            batch,
            reply,
        };
        {
            let sender = self.sender.lock().expect("sender lock");
            let sender = sender.as_ref().ok_or(IngestError::ShuttingDown)?;
            sender.try_send(pending).map_err(|e| match e {
                TrySendError::Full(_) => IngestError::Busy,
                TrySendError::Disconnected(_) => IngestError::ShuttingDown,
            })?;
        }
        answer
            .await
            .map_err(|_| IngestError::ShuttingDown)?
            .map_err(IngestError::Store)
    }

    /// Stop taking batches; store, fold and checkpoint those waiting; join the threads.
    pub fn shutdown(&self) {
        self.sender.lock().expect("sender lock").take();
        for thread in self.threads.lock().expect("threads lock").drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Ingestor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The writer's connection.
enum Appender {
    Local(Sqlite),
    /// The pool, driven from the writer's thread by the service's runtime.
    Shared(Postgres, tokio::runtime::Handle),
}

impl Appender {
    fn append(&mut self, batches: &[Incoming], debounce: i64) -> anyhow::Result<Vec<Appended>> {
        match self {
            Appender::Local(db) => db.append(batches, debounce),
            // The shared folder queues the agents, at the same debounce.
            Appender::Shared(db, runtime) => runtime.block_on(db.append(batches)),
        }
    }
}

/// The writer thread: group commit, answer, pass the batches on to the folder.
struct Writer {
    store: Appender,
    folder: SyncSender<Stored>,
    progress: Arc<FoldProgress>,
    debounce: i64,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Pending>) {
        while let Ok(first) = receiver.recv() {
            let mut group = vec![first];
            while group.len() < GROUP {
                match receiver.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Pending>) {
        let (waiting, incoming): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|p| ((p.batch, p.reply), p.incoming))
            .unzip();
        let outcomes = match self.store.append(&incoming, self.debounce) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::error!(error = %e, "storing observation batches failed");
                for (_, reply) in waiting {
                    let _ = reply.send(Err(format!("{e:#}")));
                }
                return;
            }
        };
        if let Some(last) = outcomes.iter().rev().find_map(|o| match o {
            Appended::New(id) => Some(*id),
            _ => None,
        }) {
            self.progress.committed.store(last, Ordering::Release);
            // The worker recomputes when the next job is due.
            self.wake.notify_one();
        }
        for (((batch, reply), outcome), incoming) in waiting.into_iter().zip(outcomes).zip(incoming) {
            let _ = reply.send(Ok(outcome));
            if let Appended::New(id) = outcome {
                self.metrics
                    .batch_ingested(batch.calls.iter().map(|c| c.count).sum());
                // Blocks while the folder is FOLD_QUEUE batches behind: backpressure.
                let _ = self.folder.send(Stored {
                    id,
                    received_at: incoming.received_at,
                    batch,
                });
            }
        }
    }
}

struct Folder {
    store: Sqlite,
    window: Arc<Mutex<Window>>,
    /// The last journal id folded into the window.
    through: i64,
    /// Batches were folded since the last checkpoint.
    unsaved: bool,
    settings: WriterSettings,
    progress: Arc<FoldProgress>,
}

/// A checkpoint is due no sooner than this many times as long as the last
/// one took: while one runs nothing is folded, so under load checkpoints
/// grow apart instead of taking over (the journal keeps every batch meanwhile).
const CHECKPOINT_DUTY: u32 = 4;

impl Folder {
    fn run(mut self, batches: Receiver<Stored>) {
        let mut last_checkpoint = Instant::now();
        let mut last_cost = Duration::ZERO;
        loop {
            match batches.recv_timeout(self.settings.checkpoint_every) {
                Ok(first) => {
                    let mut group = vec![first];
                    while let Ok(next) = batches.try_recv() {
                        group.push(next);
                        if group.len() >= GROUP {
                            break;
                        }
                    }
                    self.fold(group);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let every = self.settings.checkpoint_every.max(last_cost * CHECKPOINT_DUTY);
            if last_checkpoint.elapsed() >= every {
                let start = Instant::now();
                self.checkpoint();
                last_cost = start.elapsed();
                last_checkpoint = Instant::now();
            }
        }
        self.checkpoint();
    }

    fn fold(&mut self, group: Vec<Stored>) {
        let batches: Vec<_> = group.iter().map(|s| (&s.batch, s.received_at)).collect();
        self.window.lock().expect("window lock").fold_all(&batches);
        self.through = group.iter().map(|s| s.id).fold(self.through, i64::max);
        self.unsaved = true;
        self.progress.folded.store(self.through, Ordering::Release);
        // Free the batches here, off the writer's path.
        drop(group);
    }

    fn checkpoint(&mut self) {
        let now = crate::clock::now();
        let span = window::span(now, self.settings.retain_days);
        let changed: Vec<_> = {
            let mut window = self.window.lock().expect("window lock");
            window.expire(span);
            window
                .take_dirty()
                .into_iter()
                .map(|(key, summary)| {
                    let blob = rmp_serde::to_vec(summary).expect("summaries serialise");
                    (key, blob)
                })
                .collect()
        };
        if changed.is_empty() && !self.unsaved {
            return;
        }
        if let Err(e) = self
            .store
            .checkpoint(self.through, &changed, window::day_of(span.start), span.start)
        {
            tracing::error!(error = %e, "checkpoint failed; the journal keeps every batch");
            let mut window = self.window.lock().expect("window lock");
            for (key, _) in changed {
                window.mark_dirty(key);
            }
        } else {
            self.unsaved = false;
        }
    }
}

/// The folder of a replica that shares PostgreSQL: keeps the batches it
/// stored (parsed) until a checkpoint folds them into the shared buckets.
struct SharedFolder {
    store: Postgres,
    runtime: tokio::runtime::Handle,
    pending: Vec<Stored>,
    settings: WriterSettings,
    /// The worker, told when a checkpoint queued agents.
    wake: Arc<Notify>,
}

impl SharedFolder {
    fn run(mut self, batches: Receiver<Stored>) {
        let mut last_checkpoint = Instant::now();
        loop {
            match batches.recv_timeout(self.settings.checkpoint_every) {
                Ok(first) => {
                    self.pending.push(first);
                    self.pending.extend(batches.try_iter());
                    // Still in the journal: a later checkpoint reads them back.
                    let excess = self.pending.len().saturating_sub(SHARED_PENDING);
                    self.pending.drain(..excess);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_checkpoint.elapsed() >= self.settings.checkpoint_every {
                self.checkpoint();
                last_checkpoint = Instant::now();
            }
        }
        self.checkpoint();
    }

    fn checkpoint(&mut self) {
        let runtime = self.runtime.clone();
        match runtime.block_on(self.fold()) {
            Ok(true) => self.wake.notify_one(),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "checkpoint failed; the journal keeps every batch")
            }
        }
    }

    /// One checkpoint's transaction. Returns whether it queued agents.
    async fn fold(&mut self) -> anyhow::Result<bool> {
        let now = crate::clock::now();
        let span = window::span(now, self.settings.retain_days);
        let own: Vec<i64> = self.pending.iter().map(|s| s.id).collect();
        let mut tx = self.store.begin_fold().await?;
        let (mine, orphans) = tx.claim(&own, ORPHANED_AFTER, ORPHANS_PER_CHECKPOINT).await?;
        let mine: HashSet<i64> = mine.into_iter().collect();
        let mut adopted = Vec::with_capacity(orphans.len());
        let mut folded: Vec<i64> = mine.iter().copied().collect();
        for row in &orphans {
            match parse_row(row) {
                Ok(batch) => {
                    adopted.push(Stored {
                        id: row.id,
                        received_at: row.received_at,
                        batch,
                    });
                    folded.push(row.id);
                }
                // Left in the journal for a version of the bot that reads it.
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "a journal batch does not parse; left in place")
                }
            }
        }
        let claimed: Vec<&Stored> = self
            .pending
            .iter()
            .filter(|s| mine.contains(&s.id))
            .chain(&adopted)
            .collect();

        let mut delta = Window::default();
        let batches: Vec<_> = claimed.iter().map(|s| (&s.batch, s.received_at)).collect();
        delta.fold_all(&batches);
        delta.expire(span);
        let delta = delta.into_buckets();
        let keys: Vec<BucketKey> = delta.keys().cloned().collect();
        let mut stored: BTreeMap<BucketKey, Vec<u8>> = tx.lock_buckets(&keys).await?.into_iter().collect();
        let mut merged = Vec::with_capacity(delta.len());
        for (key, summary) in delta {
            let blob = stored.remove(&key).unwrap_or_default();
            let mut total = if blob.is_empty() {
                Summary::default()
            } else {
                decode(&key, &blob)?
            };
            total.merge(summary);
            let shapes = total.shape_count() as i64;
            merged.push((
                key,
                rmp_serde::to_vec(&total).expect("summaries serialise"),
                shapes,
            ));
        }
        tx.put_buckets(&merged).await?;

        // Each agent at its earliest due time; each node at its latest report.
        let mut jobs: BTreeMap<String, i64> = BTreeMap::new();
        let mut nodes: BTreeMap<String, (String, i64)> = BTreeMap::new();
        for stored in &claimed {
            let due = stored.received_at + self.settings.debounce_seconds;
            for call in &stored.batch.calls {
                let at = jobs.entry(call.agent.clone()).or_insert(due);
                *at = (*at).min(due);
            }
            if let (false, Some(commit)) = (stored.batch.source.is_empty(), &stored.batch.policy_commit) {
                let seen = nodes
                    .entry(stored.batch.source.clone())
                    .or_insert_with(|| (commit.clone(), stored.received_at));
                if stored.received_at >= seen.1 {
                    *seen = (commit.clone(), stored.received_at);
                }
            }
        }
        let jobs: Vec<(String, i64)> = jobs.into_iter().collect();
        let nodes: Vec<(String, String, i64)> = nodes.into_iter().map(|(n, (c, t))| (n, c, t)).collect();
        tx.queue(&jobs).await?;
        tx.saw_nodes(&nodes).await?;
        tx.commit(&folded, window::day_of(span.start), span.start).await?;
        // What was not ours to claim was folded by another replica, or waits in the journal.
        self.pending.clear();
        Ok(!jobs.is_empty())
    }
}
