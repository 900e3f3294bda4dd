//! `shadowdraft serve` processes (the built binary) sharing one PostgreSQL
//! database, each with its own data_dir and port, as a platform team runs
//! them behind a load balancer.

#![allow(dead_code)]

use super::http::{get, try_request, Reply};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable the replicas' `store.url_env` names.
pub const DATABASE_URL_VAR: &str = "TEST_DATABASE_URL";

pub struct Replica {
    child: Option<Child>,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its name in claims, as `/healthz` reports it.
    pub id: String,
    pub log: PathBuf,
}

/// The `store:` section that makes a replica share `url`'s database.
pub fn store_section(lease_seconds: u64) -> String {
    format!("store:\n  kind: postgres\n  url_env: {DATABASE_URL_VAR}\n  lease_seconds: {lease_seconds}\n")
}

impl Replica {
    /// Start one with `config`, the environment `env` (secrets, the database
    /// URL) and wait until it answers `/healthz`.
    pub async fn start(config: &Path, env: &[(&str, &str)]) -> Replica {
        let log = config.with_extension("log");
        let stderr = std::fs::File::create(&log).expect("replica log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_shadowdraft"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "shadowdraft=info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start shadowdraft serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("shadowdraft serving on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            panic!(
                "the replica did not start; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let health = get(&format!("http://{addr}/healthz")).await;
        assert_eq!(health.status, 200, "{}", health.body);
        // SQLite runs one process, without a name in claims.
        let id = health.json()["replica"].as_str().unwrap_or_default().to_string();
        Replica {
            child: Some(child),
            addr,
            id,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `kill -9`: no shutdown, no last checkpoint, its connections just drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the replica");
            child.wait().expect("reap the replica");
        }
    }

    /// SIGTERM: finish what is in flight, fold what is stored, exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the replica runs");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success());
        child.wait().expect("reap the replica")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// A request that fails (rather than panics) once the replica is gone.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        try_request(method, &self.url(path), headers, body).await
    }

    /// `GET /v1/agents/{agent}`, with an ingest token.
    pub async fn agent(&self, name: &str) -> serde_json::Value {
        let auth = format!("Bearer {}", super::rig::token());
        let path = format!("/v1/agents/{name}");
        let reply = self
            .request("GET", &path, &[("authorization", &auth)], Vec::new())
            .await
            .expect("the replica answers");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `check` every 100 ms until it returns `Some`, or panic after `limit`.
pub async fn within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
