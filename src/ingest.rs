//! Accepting observation batches durably and fast.
//!
//! One writer thread owns the store's ingest connection. Handlers validate a
//! batch whole, hand it over and wait; the writer commits everything waiting
//! in one transaction (group commit: one fsync for many batches), folds the
//! batches into the in-memory [`Window`], and only then answers. Every few
//! seconds it checkpoints the changed day buckets and empties the journal.

use crate::core::observation::{parse_batch, Batch, Origin};
use crate::core::window::{self, Window};
use crate::metrics::Metrics;
use crate::store::{Appended, Incoming, Store};
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// Batches waiting for the writer before new ones are turned away with 503.
const QUEUE: usize = 512;
/// Most batches committed in one transaction.
const GROUP: usize = 128;

pub struct Ingestor {
    sender: Mutex<Option<SyncSender<Pending>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Pending {
    incoming: Incoming,
    batch: Batch,
    reply: oneshot::Sender<Result<Appended, String>>,
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

/// Tuning of the writer; tests shorten the checkpoint interval.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub debounce_seconds: i64,
    pub window_days: u32,
    pub checkpoint_every: Duration,
}

/// Load the window from the store: snapshots, then the journal folded on top.
pub fn recover(store: &Store, window_days: u32, now: i64) -> anyhow::Result<(Window, i64)> {
    let mut restored = Window::default();
    let span = window::span(now, window_days);
    for (key, blob) in store.buckets(window::day_of(span.start))? {
        let summary = rmp_serde::from_slice(&blob)
            .with_context(|| format!("the stored summary of {} day {} does not decode", key.0, key.1))?;
        restored.restore(key, summary);
    }
    let mut through = 0;
    for (id, received_at, body) in store.journal()? {
        let text = String::from_utf8_lossy(&body);
        let batch =
            parse_batch(&origin(), &text).with_context(|| format!("journal batch {id} does not parse"))?;
        restored.fold(&batch, received_at);
        through = id;
    }
    Ok((restored, through))
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
    /// Start the writer thread. `through` is the last journal id already in `window`.
    pub fn start(
        store: Store,
        window: Arc<Mutex<Window>>,
        through: i64,
        settings: WriterSettings,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Ingestor {
        let (sender, receiver) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("shadowdraft-writer".into())
            .spawn(move || {
                let mut writer = Writer {
                    store,
                    window,
                    through,
                    unsaved: through > 0,
                    settings,
                    metrics,
                    wake,
                };
                writer.run(receiver)
            })
            .expect("spawn the writer thread");
        Ingestor {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Store a validated batch; resolves once it is durable.
    pub async fn submit(
        &self,
        key: Option<String>,
        body: &[u8],
        batch: Batch,
    ) -> Result<Appended, IngestError> {
        let mut agents: Vec<String> = batch.calls.iter().map(|c| c.agent.clone()).collect();
        agents.sort_unstable();
        agents.dedup();
        let incoming = Incoming {
            key,
            body_sha256: hex(&Sha256::digest(body)),
            body: body.to_vec(),
            agents,
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

    /// Stop taking batches, store those waiting, checkpoint, and join the writer.
    pub fn shutdown(&self) {
        self.sender.lock().expect("sender lock").take();
        if let Some(writer) = self.writer.lock().expect("writer lock").take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Ingestor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Writer {
    store: Store,
    window: Arc<Mutex<Window>>,
    /// The last journal id folded into the window.
    through: i64,
    /// Batches were folded since the last checkpoint.
    unsaved: bool,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
}

impl Writer {
    fn run(&mut self, receiver: Receiver<Pending>) {
        let mut last_checkpoint = Instant::now();
        loop {
            let first = match receiver.recv_timeout(self.settings.checkpoint_every) {
                Ok(p) => Some(p),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(first) = first {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match receiver.try_recv() {
                        Ok(p) => group.push(p),
                        Err(_) => break,
                    }
                }
                self.commit(group);
            }
            if last_checkpoint.elapsed() >= self.settings.checkpoint_every {
                self.checkpoint();
                last_checkpoint = Instant::now();
            }
        }
        self.checkpoint();
    }

    fn commit(&mut self, group: Vec<Pending>) {
        let (pending, incoming): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|p| ((p.batch, p.reply), p.incoming))
            .unzip();
        let result = self.store.append(&incoming, self.settings.debounce_seconds);
        match result {
            Err(e) => {
                tracing::error!(error = %e, "storing observation batches failed");
                for (_, reply) in pending {
                    let _ = reply.send(Err(format!("{e:#}")));
                }
            }
            Ok(outcomes) => {
                let mut touched = false;
                {
                    let mut window = self.window.lock().expect("window lock");
                    for ((batch, _), (outcome, incoming)) in
                        pending.iter().zip(outcomes.iter().zip(&incoming))
                    {
                        if let Appended::New(id) = outcome {
                            window.fold(batch, incoming.received_at);
                            self.through = self.through.max(*id);
                            self.unsaved = true;
                            let calls: u64 = batch.calls.iter().map(|c| c.count).sum();
                            self.metrics.batch_ingested(calls);
                            touched |= !batch.calls.is_empty();
                        }
                    }
                }
                for ((_, reply), outcome) in pending.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                if touched {
                    self.wake.notify_one();
                }
            }
        }
    }

    fn checkpoint(&mut self) {
        let now = crate::clock::now();
        let span = window::span(now, self.settings.window_days);
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
