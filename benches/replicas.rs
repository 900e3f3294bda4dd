//! Ingest throughput of 1, 2 and 3 `shadowdraft serve` replicas sharing one
//! PostgreSQL server, end to end over loopback.
//!
//! cargo bench --bench replicas -- [seconds] [connections] [batch_size]
//!
//! Defaults: 10 s per run, 8 keep-alive HTTP/1.1 connections spread
//! round-robin over the replicas, 1 000 calls per batch from the synthetic
//! fleet (400 agents), each batch with a unique `Idempotency-Key`, only 202s
//! counted. PostgreSQL runs as in production (fsync on, synchronous commit):
//! a 202 means the batch is committed. Each run gets a fresh database; after
//! it, the calls every agent has in its window (`GET /v1/agents/{agent}` on
//! the first replica) must add up to the calls acknowledged, or the bench fails.
//!
//! On a 2-core machine the replicas, PostgreSQL and the load generator share
//! the cores: the point is correctness and the shape of the curve.
#[allow(dead_code)]
#[path = "support/figures.rs"]
mod figures;
use figures::{percentile_ms, thousands};

#[path = "../tests/common/postgres.rs"]
mod postgres;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_shadowdraft");
const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
const AGENTS: usize = 400;
const DISTINCT_BATCHES: usize = 200;

fn main() -> ExitCode {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seconds = *numbers.first().unwrap_or(&10) as u64;
    let connections = (*numbers.get(1).unwrap_or(&8)).max(1);
    let batch_size = (*numbers.get(2).unwrap_or(&1000)).max(1);
    println!(
        "replicas bench: {seconds} s per run, {connections} connections, {batch_size} calls/batch, {AGENTS}-agent fleet"
    );
    let (batches, agents) = build_batches(batch_size);
    let cluster = postgres::Cluster::start_durable();
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("policies.git");
    let committer = shadowdraft::config::Committer {
        name: "bench".into(),
        email: "bench@example.com".into(),
    };
    shadowdraft::git::init_bare(&repo, "main", &[("README.md", "# policies\n")], &committer)
        .expect("policy repo");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    let mut failed = false;
    for n in 1..=3 {
        let url = cluster.create_database(&format!("bench{n}"));
        let servers: Vec<Server> = (0..n)
            .map(|i| Server::start(dir.path(), &repo, &url, n, i))
            .collect();
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
        let cpu_before: f64 = servers.iter().map(Server::cpu_seconds).sum();
        let run = runtime.block_on(load(&addrs, &batches, connections, seconds));
        let cpu = servers.iter().map(Server::cpu_seconds).sum::<f64>() - cpu_before;
        // Give the folders a checkpoint, then count what the window holds.
        std::thread::sleep(Duration::from_secs(3));
        let counted: u64 = agents.iter().map(|a| calls_in_window(addrs[0], a)).sum();
        let ok = counted == run.calls && run.errors == 0;
        failed |= !ok;
        let secs = run.elapsed.as_secs_f64();
        rows.push(format!(
            "| {n} | **{}** | {:.1} | {:.1} / {:.1} ms | {:.2} | {} | {} |",
            thousands((run.calls as f64 / secs) as u64),
            run.batches as f64 / secs,
            percentile_ms(&run.latencies_us, 0.5),
            percentile_ms(&run.latencies_us, 0.99),
            cpu / secs,
            run.errors,
            if ok {
                format!("{} = {} (ok)", thousands(counted), thousands(run.calls))
            } else {
                format!("{} != {} (FAIL)", thousands(counted), thousands(run.calls))
            },
        ));
        drop(servers);
    }
    println!("\n| replicas | calls/s (202, committed) | batches/s | ack p50 / p99 | replicas' CPU (cores) | errors | calls in window = acknowledged |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    if failed {
        println!("FAILED");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Pre-serialised batches and the agents in them.
fn build_batches(batch_size: usize) -> (Arc<Vec<(Bytes, u64)>>, Vec<String>) {
    let fleet = Fleet::new(&FleetSpec {
        agents: AGENTS,
        calls_per_agent: (DISTINCT_BATCHES * batch_size).div_ceil(AGENTS),
        seed: 7,
    });
    let mut calls = fleet.calls(Split::Train);
    let mut agents = BTreeSet::new();
    let mut out = Vec::new();
    for i in 0..DISTINCT_BATCHES {
        let chunk: Vec<serde_json::Value> = calls.by_ref().take(batch_size).collect();
        for c in &chunk {
            agents.insert(c["agent"].as_str().expect("agent").to_string());
        }
        let n = chunk.len() as u64;
        let body = serde_json::json!({"source": format!("bench-node-{}", i % 16), "calls": chunk});
        out.push((Bytes::from(serde_json::to_vec(&body).expect("serialise")), n));
    }
    (Arc::new(out), agents.into_iter().collect())
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &Path, repo: &Path, url: &str, run: usize, i: usize) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let config = dir.join(format!("run{run}-replica{i}.yaml"));
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\ndata_dir: {data}\npolicy_repo: {{url: {repo}}}\n\
                 ingest: {{hs256_secret_env: BENCH_SECRET, max_body_bytes: 67108864}}\n\
                 drafting: {{debounce_seconds: 3600}}\n\
                 store: {{kind: postgres, url_env: BENCH_DATABASE_URL}}\n",
                data = dir.join(format!("run{run}-data{i}")).display(),
                repo = repo.display(),
            ),
        )
        .expect("config");
        let log = std::fs::File::create(config.with_extension("log")).expect("log");
        let mut child = Command::new(SERVER)
            .args(["serve", "--config"])
            .arg(&config)
            .env("BENCH_SECRET", SECRET)
            .env("BENCH_DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SERVER}: {e}"));
        let started = Instant::now();
        while !matches!(http_get(addr, "/healthz"), Ok((200, _))) {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "replica exited with {status}; see {}",
                    config.with_extension("log").display()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "replica did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, addr }
    }

    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime: fields 14 and 15, the 12th and 13th after the command.
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (field(11) + field(12)) as f64 / 100.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    calls: u64,
    batches: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

async fn load(
    addrs: &[SocketAddr],
    batches: &Arc<Vec<(Bytes, u64)>>,
    connections: usize,
    seconds: u64,
) -> Run {
    let exp = shadowdraft::clock::now() as u64 + 3600;
    let token = shadowdraft::auth::hs256_token(SECRET.as_bytes(), "shadowdraft", "bench-node", exp);
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (addr, batches, auth, stop) = (
                addrs[c % addrs.len()],
                batches.clone(),
                auth.clone(),
                stop.clone(),
            );
            tokio::spawn(async move { connection(addr, c, batches, auth, stop).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut run = Run {
        calls: 0,
        batches: 0,
        errors: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (calls, batches, errors, latencies) = task.await.expect("connection task");
        run.calls += calls;
        run.batches += batches;
        run.errors += errors;
        run.latencies_us.extend(latencies);
    }
    run.elapsed = started.elapsed();
    run.latencies_us.sort_unstable();
    run
}

async fn connection(
    addr: SocketAddr,
    conn: usize,
    batches: Arc<Vec<(Bytes, u64)>>,
    auth: HeaderValue,
    stop: Arc<AtomicBool>,
) -> (u64, u64, u64, Vec<u32>) {
    let (mut calls, mut accepted, mut errors, mut latencies) = (0, 0, 0, Vec::new());
    let run = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut seq = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let (body, n) = &batches[(conn * 37 + seq) % batches.len()];
            seq += 1;
            let request = Request::post("/v1/observations")
                .header(HOST, "127.0.0.1")
                .header(AUTHORIZATION, auth.clone())
                .header(CONTENT_TYPE, "application/json")
                .header("idempotency-key", format!("bench-{conn}-{seq}"))
                .body(Full::new(body.clone()))?;
            sender.ready().await?;
            let t = Instant::now();
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
            if status == StatusCode::ACCEPTED {
                calls += n;
                accepted += 1;
            } else {
                errors += 1;
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    if let Err(e) = run.await {
        eprintln!("connection {conn}: {e}");
        errors += 1;
    }
    (calls, accepted, errors, latencies)
}

fn calls_in_window(addr: SocketAddr, agent: &str) -> u64 {
    let exp = shadowdraft::clock::now() as u64 + 300;
    let token = shadowdraft::auth::hs256_token(SECRET.as_bytes(), "shadowdraft", "bench", exp);
    let request = format!(
        "GET /v1/agents/{agent} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = http(addr, &request).expect("the replica answers");
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    value["calls_in_window"].as_u64().expect("calls_in_window")
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

fn http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request.as_bytes())?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
