//! Shadow feedback: observed calls aggregated into `ObservationBatch`es,
//! spooled to disk, and posted to the bot's `POST /v1/observations`.
//!
//! Identical calls (agent, tool, server, args, decision, policy commit) are
//! counted, not repeated. A batch is written to the spool (temp file, fsync,
//! rename) before it is sent and deleted only once the bot answered 202 or
//! 200, so neither a bot outage nor a restart of either side loses it. Its
//! `Idempotency-Key` is derived from its spool file name, so a batch sent
//! twice (answer lost, node restarted) counts once at the bot. The spool is
//! bounded: when full, the oldest batch is dropped and counted.

use super::authzen::Query;
use super::NodeMetrics;
use crate::config::{NodeSettings, ReportSecret};
use crate::core::hex;
use crate::core::observation::rfc3339;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    commit: Option<String>,
    agent: String,
    tool: String,
    server: String,
    args: String,
    session: Option<String>,
    allowed: bool,
}

struct Seen {
    args: Map<String, Value>,
    session: Option<Map<String, Value>>,
    count: u64,
    first: i64,
    last: i64,
}

/// Calls waiting to be flushed into a batch.
#[derive(Default)]
struct Pending {
    calls: HashMap<Key, Seen>,
}

pub struct Feedback {
    pending: Mutex<Pending>,
    spool: Spool,
    node_id: String,
    batch_max_calls: usize,
    /// Woken when enough distinct calls wait to make a batch.
    pub full: Notify,
    /// Woken when a batch was spooled.
    pub spooled: Notify,
}

impl Feedback {
    pub fn new(settings: &NodeSettings, metrics: Arc<NodeMetrics>) -> anyhow::Result<Feedback> {
        Ok(Feedback {
            pending: Mutex::default(),
            spool: Spool::open(&settings.dir.join("spool"), settings.spool_max_batches, metrics)?,
            node_id: settings.node_id.clone(),
            batch_max_calls: settings.batch_max_calls,
            full: Notify::new(),
            spooled: Notify::new(),
        })
    }

    /// Record one evaluated call and what the policy decided.
    pub fn record(&self, commit: Option<&str>, call: Query, allowed: bool) {
        let now = crate::clock::now();
        let Query {
            agent,
            tool,
            server,
            args,
            session,
        } = call;
        let key = Key {
            commit: commit.map(str::to_string),
            agent,
            tool,
            server,
            args: Value::Object(args.clone()).to_string(),
            session: session.as_ref().map(|s| Value::Object(s.clone()).to_string()),
            allowed,
        };
        let mut pending = self.pending.lock().expect("pending lock");
        let seen = pending.calls.entry(key).or_insert_with(|| Seen {
            args,
            session,
            count: 0,
            first: now,
            last: now,
        });
        seen.count += 1;
        seen.last = seen.last.max(now);
        if pending.calls.len() >= self.batch_max_calls {
            drop(pending);
            self.full.notify_one();
        }
    }

    /// Distinct calls waiting.
    pub fn pending(&self) -> usize {
        self.pending.lock().expect("pending lock").calls.len()
    }

    /// Turn what is waiting into batches (one per policy commit, at most
    /// `batch_max_calls` calls each) and spool them. Returns how many.
    pub fn flush(&self) -> anyhow::Result<usize> {
        let calls = std::mem::take(&mut self.pending.lock().expect("pending lock").calls);
        if calls.is_empty() {
            return Ok(0);
        }
        let mut by_commit: HashMap<Option<String>, Vec<Value>> = HashMap::new();
        for (key, seen) in calls {
            let mut call = json!({
                "agent": key.agent,
                "tool": key.tool,
                "server": key.server,
                "args": seen.args,
                "count": seen.count,
                "first_seen": rfc3339(seen.first),
                "last_seen": rfc3339(seen.last),
                "decision": if key.allowed { "allow" } else { "deny" },
            });
            if let Some(session) = seen.session {
                call["session"] = Value::Object(session);
            }
            by_commit.entry(key.commit).or_default().push(call);
        }
        let mut written = 0;
        for (commit, calls) in by_commit {
            for chunk in calls.chunks(self.batch_max_calls) {
                let mut batch = json!({"source": self.node_id, "calls": chunk});
                if let Some(c) = &commit {
                    batch["policy_commit"] = json!(c);
                }
                self.spool.write(batch.to_string().as_bytes())?;
                written += 1;
            }
        }
        self.spooled.notify_one();
        Ok(written)
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }
}

/// Batches on disk, oldest first, waiting to be sent.
pub struct Spool {
    dir: PathBuf,
    max: usize,
    seq: AtomicU64,
    lock: Mutex<()>,
    metrics: Arc<NodeMetrics>,
}

impl Spool {
    pub fn open(dir: &Path, max: usize, metrics: Arc<NodeMetrics>) -> anyhow::Result<Spool> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        // Leftovers of a write cut short are not batches.
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            max,
            seq: AtomicU64::new(0),
            lock: Mutex::new(()),
            metrics,
        })
    }

    /// Write a batch durably; drops the oldest batches beyond the bound.
    pub fn write(&self, body: &[u8]) -> anyhow::Result<PathBuf> {
        let _guard = self.lock.lock().expect("spool lock");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let seq = self.seq.fetch_add(1, Relaxed);
        let name = format!("{nanos:020}-{seq:06}-{}.json", hex::encode(&random));
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let path = self.dir.join(&name);
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(body)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        let files = self.list();
        if files.len() > self.max {
            for old in &files[..files.len() - self.max] {
                if std::fs::remove_file(old).is_ok() {
                    self.metrics.spool_dropped.fetch_add(1, Relaxed);
                    tracing::warn!(file = %old.display(), "spool full: dropped the oldest batch");
                }
            }
        }
        Ok(path)
    }

    /// Spooled batches, oldest first.
    pub fn list(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "json")
                            && !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    pub fn depth(&self) -> usize {
        self.list().len()
    }

    /// Set a batch the bot refused as malformed aside (kept for inspection).
    fn reject(&self, path: &Path) {
        let dir = self.dir.join("rejected");
        let _ = std::fs::create_dir_all(&dir);
        if let Some(name) = path.file_name() {
            if std::fs::rename(path, dir.join(name)).is_err() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The `Idempotency-Key` of a spooled batch: stable across retries and
/// restarts, distinct across nodes.
pub fn idempotency_key(node_id: &str, path: &Path) -> String {
    let node = Sha256::digest(node_id.as_bytes());
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    format!("{}-{stem}", hex::encode(&node[..8]))
}

/// How one attempt to send a batch ended.
enum Sent {
    Accepted,
    /// The bot refused the batch itself (4xx other than auth or throttling): never retried.
    Refused(u16, String),
    Retry(String),
}

/// Sends spooled batches, oldest first, retrying with exponential backoff.
pub struct Sender {
    pub(crate) settings: NodeSettings,
    pub(crate) feedback: Arc<Feedback>,
    pub(crate) metrics: Arc<NodeMetrics>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Sender {
    pub fn new(settings: NodeSettings, feedback: Arc<Feedback>, metrics: Arc<NodeMetrics>) -> Sender {
        Sender {
            settings,
            feedback,
            metrics,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn secret(&self) -> Result<Vec<u8>, String> {
        match &self.settings.report_secret {
            ReportSecret::Value(v) => Ok(v.clone()),
            ReportSecret::KeyFile(path) => std::fs::read_to_string(path)
                .map(|t| t.trim().as_bytes().to_vec())
                .map_err(|e| {
                    format!(
                        "no ingest secret: set enforce.report_hs256_secret_env ({} is unreadable: {e})",
                        path.display()
                    )
                }),
        }
    }

    async fn send(&self, path: &Path) -> Sent {
        let body = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => return Sent::Refused(0, format!("unreadable spool file: {e}")),
        };
        let secret = match self.secret() {
            Ok(s) => s,
            Err(e) => return Sent::Retry(e),
        };
        let exp = (crate::clock::now() + 300) as u64;
        let token = crate::auth::hs256_token(
            &secret,
            &self.settings.report_audience,
            &self.settings.node_id,
            exp,
        );
        let request = hyper::Request::post(&self.settings.report_url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key(&self.settings.node_id, path))
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Sent::Retry(format!("cannot build the request: {e}")),
        };
        let response = match tokio::time::timeout(Duration::from_secs(30), self.client.request(request)).await
        {
            Err(_) => return Sent::Retry("the bot did not answer within 30 s".into()),
            Ok(Err(e)) => return Sent::Retry(format!("cannot reach the bot: {e}")),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let text = match response.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).chars().take(500).collect(),
            Err(_) => String::new(),
        };
        match status {
            200 | 202 => Sent::Accepted,
            400 | 413 | 422 => Sent::Refused(status, text),
            _ => Sent::Retry(format!("the bot answered {status}: {text}")),
        }
    }

    /// Send until `stop`; wakes when a batch is spooled.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let initial = Duration::from_millis(100);
        let mut backoff = initial;
        loop {
            if *stop.borrow() {
                return;
            }
            let files = self.feedback.spool.list();
            if files.is_empty() {
                tokio::select! {
                    _ = self.feedback.spooled.notified() => {}
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                continue;
            }
            for path in files {
                if *stop.borrow() {
                    return;
                }
                match self.send(&path).await {
                    Sent::Accepted => {
                        let _ = std::fs::remove_file(&path);
                        self.metrics.batches_sent.fetch_add(1, Relaxed);
                        backoff = initial;
                    }
                    Sent::Refused(status, why) => {
                        tracing::error!(file = %path.display(), status, %why, "the bot refused a batch; set aside");
                        self.feedback.spool.reject(&path);
                        self.metrics.batches_rejected.fetch_add(1, Relaxed);
                    }
                    Sent::Retry(why) => {
                        self.metrics.batches_failed.fetch_add(1, Relaxed);
                        tracing::warn!(%why, retry_in = ?backoff, "cannot send observations yet");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => {}
                        }
                        backoff = (backoff * 2).min(self.settings.retry_max);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_is_ordered_bounded_and_keys_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(NodeMetrics::default());
        let spool = Spool::open(dir.path(), 3, metrics.clone()).unwrap();
        let paths: Vec<_> = (0..5)
            .map(|i| spool.write(format!("{i}").as_bytes()).unwrap())
            .collect();
        let listed = spool.list();
        assert_eq!(listed, paths[2..].to_vec(), "the oldest were dropped");
        assert_eq!(metrics.spool_dropped.load(Relaxed), 2);
        let k = idempotency_key("node-1", &listed[0]);
        assert_eq!(k, idempotency_key("node-1", &listed[0]));
        assert_ne!(k, idempotency_key("node-2", &listed[0]));
        assert!(k.len() <= 255);
        // A fresh spool over the same directory sees the same batches.
        let again = Spool::open(dir.path(), 3, metrics).unwrap();
        assert_eq!(again.list(), listed);
    }
}
