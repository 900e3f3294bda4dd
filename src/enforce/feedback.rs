//! Shadow feedback: observed calls aggregated into `ObservationBatch`es,
//! spooled to disk, and posted to the bot's `POST /v1/observations`.
//!
//! Identical calls (agent, tool, server, args, session, decision, policy
//! commit) are counted, not repeated. The MCP gateway adds the `tools/list`
//! result of each upstream server (its catalogue) to the next batch when it
//! changes. A batch is written to the spool (temp file, fsync,
//! rename) before it is sent and deleted only once the bot answered 202 or
//! 200, so neither a bot outage nor a restart of either side loses it. Its
//! `Idempotency-Key` is derived from its spool file name, so a batch sent
//! twice (answer lost, node restarted) counts once at the bot. The spool is
//! bounded: when full, the oldest batch is dropped and counted.

use super::authzen::Query;
use super::NodeMetrics;
use crate::config::{NodeSettings, ReportSecret};
use crate::core::observation::{reportable, rfc3339};
use crate::core::{hex, secrets};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
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
    /// Too large or deep to report: only that it happened is sent
    /// (`calls_without_args`), so the bot still sees the tool in use.
    without_args: bool,
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
    /// Catalogues not yet in a batch, by server.
    catalogues: BTreeMap<String, Value>,
    /// The catalogue last reported per server: an unchanged one is not sent again.
    reported: HashMap<String, Value>,
}

pub struct Feedback {
    pending: Mutex<Pending>,
    metrics: Arc<NodeMetrics>,
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
            metrics: metrics.clone(),
            spool: Spool::open(&settings.dir.join("spool"), settings.spool_max_batches, metrics)?,
            node_id: settings.node_id.clone(),
            batch_max_calls: settings.batch_max_calls,
            full: Notify::new(),
            spooled: Notify::new(),
        })
    }

    /// Record one evaluated call (with the session it was made in) and what the
    /// policy decided. A call beyond the observation limits is counted and left
    /// out: the bot would refuse the whole batch it travelled in.
    pub fn record(&self, commit: Option<&str>, call: Query, allowed: bool) {
        let now = crate::clock::now();
        let Query {
            agent,
            tool,
            server,
            mut args,
            mut session,
        } = call;
        let without_args = match reportable(&args, session.as_ref()) {
            Ok(()) => false,
            Err(e) => {
                self.metrics.unreportable.fetch_add(1, Relaxed);
                tracing::warn!(%agent, %tool, %server, why = %e,
                    "a call too large to report is reported without its arguments");
                args.clear();
                session = None;
                true
            }
        };
        let key = Key {
            commit: commit.map(str::to_string),
            agent,
            tool,
            server,
            args: Value::Object(args.clone()).to_string(),
            session: session.as_ref().map(|s| Value::Object(s.clone()).to_string()),
            allowed,
            without_args,
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

    /// The `tools/list` result of an upstream MCP server; reported with the
    /// next batch unless it is the one last reported.
    pub fn catalogue(&self, server: &str, tools_list: Value) {
        let mut pending = self.pending.lock().expect("pending lock");
        if pending.reported.get(server) == Some(&tools_list) {
            return;
        }
        pending.reported.insert(server.to_string(), tools_list.clone());
        pending.catalogues.insert(server.to_string(), tools_list);
    }

    /// Distinct calls waiting.
    pub fn pending(&self) -> usize {
        self.pending.lock().expect("pending lock").calls.len()
    }

    /// Turn what is waiting into batches (one per policy commit, at most
    /// `batch_max_calls` calls each; catalogues ride with the first) and spool
    /// them. Returns how many.
    pub fn flush(&self) -> anyhow::Result<usize> {
        let (calls, mut catalogues) = {
            let mut pending = self.pending.lock().expect("pending lock");
            (
                std::mem::take(&mut pending.calls),
                std::mem::take(&mut pending.catalogues),
            )
        };
        if calls.is_empty() && catalogues.is_empty() {
            return Ok(0);
        }
        // Per policy commit: the calls with their arguments, and those without.
        let mut by_commit: HashMap<Option<String>, [Vec<Value>; 2]> = HashMap::new();
        for (key, mut seen) in calls {
            let mut call = json!({
                "agent": key.agent,
                "tool": key.tool,
                "server": key.server,
                "count": seen.count,
                "first_seen": rfc3339(seen.first),
                "last_seen": rfc3339(seen.last),
                "decision": if key.allowed { "allow" } else { "deny" },
            });
            // The spool is on disk: no secret the agent passed reaches it.
            if !key.without_args {
                secrets::redact_arguments(&mut seen.args);
                call["args"] = Value::Object(seen.args);
            }
            if let Some(mut session) = seen.session {
                secrets::redact_arguments(&mut session);
                call["session"] = Value::Object(session);
            }
            by_commit.entry(key.commit).or_default()[usize::from(key.without_args)].push(call);
        }
        if by_commit.is_empty() {
            by_commit.insert(None, Default::default());
        }
        let mut written = 0;
        for (commit, [with_args, without_args]) in by_commit {
            let mut chunks: Vec<(&str, &[Value])> = Vec::new();
            chunks.extend(with_args.chunks(self.batch_max_calls).map(|c| ("calls", c)));
            chunks.extend(
                without_args
                    .chunks(self.batch_max_calls)
                    .map(|c| ("calls_without_args", c)),
            );
            // A batch of catalogues alone has no calls.
            if chunks.is_empty() {
                chunks.push(("calls", &[]));
            }
            for (field, chunk) in chunks {
                let mut batch = json!({"source": self.node_id, "calls": []});
                batch[field] = json!(chunk);
                if let Some(c) = &commit {
                    batch["policy_commit"] = json!(c);
                }
                if !catalogues.is_empty() {
                    batch["catalogues"] = json!(std::mem::take(&mut catalogues));
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
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Sender {
    /// `tls`: the node's TLS client configuration, for an `https://` report URL.
    pub fn new(
        settings: NodeSettings,
        feedback: Arc<Feedback>,
        metrics: Arc<NodeMetrics>,
        tls: &rustls::ClientConfig,
    ) -> Sender {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .build();
        Sender {
            settings,
            feedback,
            metrics,
            client: Client::builder(TokioExecutor::new()).build(connector),
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

    /// Send what is spooled now, once each, oldest first, for at most `limit`
    /// (a gateway that is about to exit). Returns how many were accepted.
    pub async fn drain(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        let mut sent = 0;
        for path in self.feedback.spool.list() {
            match tokio::time::timeout_at(deadline, self.send(&path)).await {
                Err(_) => break,
                Ok(Sent::Accepted) => {
                    let _ = std::fs::remove_file(&path);
                    self.metrics.batches_sent.fetch_add(1, Relaxed);
                    sent += 1;
                }
                Ok(Sent::Refused(status, why)) => {
                    tracing::error!(file = %path.display(), status, %why, "the bot refused a batch; set aside");
                    self.feedback.spool.reject(&path);
                    self.metrics.batches_rejected.fetch_add(1, Relaxed);
                }
                Ok(Sent::Retry(why)) => {
                    self.metrics.batches_failed.fetch_add(1, Relaxed);
                    tracing::warn!(%why, "cannot send observations now; they stay spooled for the next start");
                    break;
                }
            }
        }
        sent
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

    fn feedback(dir: &Path) -> Feedback {
        let config =
            crate::config::Config::parse("t.yaml", &format!("data_dir: {}\n", dir.display())).unwrap();
        let settings = NodeSettings::from_config(&config, "t.yaml", &|_| None).unwrap();
        Feedback::new(&settings, Arc::new(NodeMetrics::default())).unwrap()
    }

    fn batches(feedback: &Feedback) -> Vec<Value> {
        let files = feedback.spool().list();
        let out = files
            .iter()
            .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
            .collect();
        for f in files {
            std::fs::remove_file(f).unwrap();
        }
        out
    }

    #[test]
    fn secrets_the_agent_passed_never_reach_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let feedback = feedback(dir.path());
        let key = "sk_live_51HqLyjWDarjtT1zdp7dc4kL9mQ2xVbN8rT5yU3iO";
        let call = Query {
            agent: "a".into(),
            tool: "charge".into(),
            server: "stripe".into(),
            args: json!({"api_key": key, "amount": 12}).as_object().unwrap().clone(),
            session: Some(json!({"token": key}).as_object().unwrap().clone()),
        };
        feedback.record(None, call, true);
        feedback.flush().unwrap();
        let files = feedback.spool().list();
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(!text.contains(key), "{text}");
        assert!(
            text.contains("‹secret:") && text.contains("\"amount\":12"),
            "{text}"
        );
    }

    #[test]
    fn sessions_keep_calls_apart_and_catalogues_ride_once() {
        let dir = tempfile::tempdir().unwrap();
        let feedback = feedback(dir.path());
        let args = |p: &str| json!({"path": p}).as_object().unwrap().clone();
        let alice = json!({"user": "alice", "mcp_session": "s1"})
            .as_object()
            .unwrap()
            .clone();
        let bob = json!({"user": "bob", "mcp_session": "s2"})
            .as_object()
            .unwrap()
            .clone();
        for session in [Some(&alice), Some(&alice), Some(&bob), None] {
            let call = Query {
                agent: "a".into(),
                tool: "read_file".into(),
                server: "files".into(),
                args: args("/srv/x"),
                session: session.cloned(),
            };
            feedback.record(Some("c1"), call, true);
        }
        assert_eq!(
            feedback.pending(),
            3,
            "the same call in two sessions is two calls"
        );
        let catalogue = json!({"tools": [{"name": "read_file", "annotations": {"readOnlyHint": true}}]});
        feedback.catalogue("files", catalogue.clone());
        assert_eq!(feedback.flush().unwrap(), 1);
        let batch = &batches(&feedback)[0];
        assert_eq!(batch["catalogues"]["files"], catalogue);
        let calls = batch["calls"].as_array().unwrap();
        let of = |user: &str| calls.iter().find(|c| c["session"]["user"] == user).unwrap()["count"].clone();
        assert_eq!(of("alice"), 2);
        assert_eq!(of("bob"), 1);
        assert!(calls.iter().any(|c| c.get("session").is_none()));
        // The same catalogue again is not reported again; a changed one is, alone if need be.
        feedback.catalogue("files", catalogue.clone());
        assert_eq!(feedback.flush().unwrap(), 0);
        feedback.catalogue("files", json!({"tools": []}));
        assert_eq!(feedback.flush().unwrap(), 1);
        let batch = &batches(&feedback)[0];
        assert_eq!(batch["calls"], json!([]));
        assert_eq!(batch["catalogues"]["files"], json!({"tools": []}));
        let origin = crate::core::observation::Origin {
            source: "t".into(),
            line: None,
        };
        assert!(crate::core::observation::parse_batch(&origin, &batch.to_string()).is_ok());
        // A call beyond the limits is counted, not reported.
        let mut deep = json!(1);
        for _ in 0..12 {
            deep = json!({ "x": deep });
        }
        let call = Query {
            agent: "a".into(),
            tool: "t".into(),
            server: "s".into(),
            args: deep.as_object().unwrap().clone(),
            session: None,
        };
        feedback.record(None, call, true);
        assert_eq!(feedback.metrics.unreportable.load(Relaxed), 1);
        assert_eq!(feedback.flush().unwrap(), 1);
        let batch = &batches(&feedback)[0];
        assert_eq!(batch["calls"], json!([]));
        let without = &batch["calls_without_args"][0];
        assert_eq!((&without["tool"], without.get("args")), (&json!("t"), None));
        assert!(crate::core::observation::parse_batch(&origin, &batch.to_string()).is_ok());
    }
}
