//! Ingest throughput of the real `shadowdraft serve`, end to end over loopback.
//!
//! cargo bench --bench ingest -- [seconds] [concurrency] [batch_size] [--debounce S] [--batches N] [--agents N]
//!
//! Defaults: 20 s, 8 keep-alive HTTP/1.1 connections, 1 000 calls per batch,
//! `drafting.debounce_seconds: 3600` (no drafting job runs during the
//! measurement; pass `--debounce 5` to measure with drafting running), 300
//! distinct batches from the synthetic fleet (`shadowdraft::fleet`, 400 agents).
//!
//! Target (ingest issue): >= 100 000 calls/s in batches of 1 000 with durable
//! acknowledgement on 2 cores.
//!
//! The server is the release binary cargo builds for benches
//! (`CARGO_BIN_EXE_shadowdraft`, i.e. target/release/shadowdraft), started as a
//! separate process with a temporary data_dir and a free loopback port. The
//! batches are serialised before the clock starts; each connection posts them
//! back to back, each with a unique `Idempotency-Key`, and counts only 202s.
//!
//! After the run: the server is killed with SIGKILL (a crash), the calls on
//! disk are counted with the server's own recovery code and compared with the
//! calls acknowledged; the server is restarted on the same data_dir (recovery
//! time), its window compared with the one before the crash, then stopped with
//! SIGTERM (graceful shutdown time) and the calls counted again.
//! Any non-202 answer, or any acknowledged call missing on disk, fails the bench.
//!
//! `--otlp protobuf|json` posts the same calls as OpenTelemetry exports to
//! `POST /v1/traces` instead: each call one `execute_tool` span (GenAI
//! conventions, arguments as the JSON string `gen_ai.tool.call.arguments`),
//! `batch_size` spans per export, counting only 200s (durable, as for batches).
#[allow(dead_code)]
#[path = "support/figures.rs"]
mod figures;
use figures::{percentile_ms, thousands};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_shadowdraft");
const SECRET_VAR: &str = "SHADOWDRAFT_BENCH_INGEST_SECRET";
const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
const AUDIENCE: &str = "shadowdraft";
const WINDOW_DAYS: u32 = 14;

struct Options {
    seconds: u64,
    concurrency: usize,
    batch_size: usize,
    debounce: u64,
    batches: usize,
    agents: usize,
    /// Post OTLP exports to `/v1/traces` in this encoding (`protobuf`, `json`).
    otlp: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 20,
        concurrency: 8,
        batch_size: 1000,
        debounce: 3600,
        batches: 300,
        agents: 400,
        otlp: None,
    };
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--debounce" => o.debounce = value("--debounce") as u64,
            "--batches" => o.batches = value("--batches"),
            "--agents" => o.agents = value("--agents"),
            "--otlp" => match args.next().as_deref() {
                Some(e @ ("protobuf" | "json")) => o.otlp = Some(e.to_string()),
                _ => panic!("--otlp needs protobuf or json"),
            },
            // `cargo bench` passes `--bench`.
            other => {
                if let Ok(n) = other.parse::<usize>() {
                    positional.push(n);
                }
            }
        }
    }
    if let Some(&s) = positional.first() {
        o.seconds = s as u64;
    }
    if let Some(&c) = positional.get(1) {
        o.concurrency = c.max(1);
    }
    if let Some(&b) = positional.get(2) {
        o.batch_size = b.max(1);
    }
    o
}

/// Pre-serialised batches: (body, calls in it).
fn build_batches(o: &Options) -> Vec<(Bytes, u64)> {
    let total = o.batches * o.batch_size;
    let fleet = Fleet::new(&FleetSpec {
        agents: o.agents,
        calls_per_agent: total.div_ceil(o.agents),
        seed: 7,
    });
    let mut out = Vec::with_capacity(o.batches);
    let mut calls = fleet.calls(Split::Train);
    for i in 0..o.batches {
        let chunk: Vec<serde_json::Value> = calls.by_ref().take(o.batch_size).collect();
        let n = chunk.len() as u64;
        let body = match o.otlp.as_deref() {
            None => {
                let body = serde_json::json!({"source": format!("bench-node-{}", i % 16), "calls": chunk});
                serde_json::to_vec(&body).expect("serialise")
            }
            Some(encoding) => otlp_export(i, &chunk, encoding),
        };
        out.push((Bytes::from(body), n));
    }
    out
}

/// One OTLP export of `calls`, each an `execute_tool` span.
fn otlp_export(batch: usize, calls: &[serde_json::Value], encoding: &str) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let text = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(value.into())),
        }),
        ..KeyValue::default()
    };
    let now = shadowdraft::clock::now() as u64 * 1_000_000_000;
    let spans = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let id = ((batch as u64) << 32) | i as u64;
            Span {
                trace_id: [id.to_be_bytes(), (id ^ 0x5eed).to_be_bytes()].concat(),
                span_id: (id + 1).to_be_bytes().to_vec(),
                name: format!("execute_tool {}", call["tool"].as_str().expect("tool")),
                kind: SpanKind::Internal as i32,
                start_time_unix_nano: now,
                end_time_unix_nano: now + 1_000_000,
                attributes: vec![
                    text("gen_ai.operation.name", "execute_tool"),
                    text("gen_ai.tool.name", call["tool"].as_str().expect("tool")),
                    text("gen_ai.agent.name", call["agent"].as_str().expect("agent")),
                    text("mcp.server.name", call["server"].as_str().expect("server")),
                    text("gen_ai.tool.call.arguments", &call["args"].to_string()),
                ],
                ..Span::default()
            }
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "bench-agents")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    match encoding {
        "protobuf" => request.encode_to_vec(),
        _ => serde_json::to_vec(&request).expect("serialise"),
    }
}

// ---------------------------------------------------------------- the server process

struct Server {
    child: Child,
    log: PathBuf,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn write_config(dir: &Path, port: u16, debounce: u64) -> PathBuf {
    let path = dir.join("shadowdraft.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}\n\
         data_dir: {data}\n\
         ingest:\n  hs256_secret_env: {SECRET_VAR}\n  max_body_bytes: 67108864\n\
         drafting:\n  debounce_seconds: {debounce}\n  window_days: {WINDOW_DAYS}\n",
        data = dir.join("data").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Start `shadowdraft serve` and wait for `/healthz`; returns it and the time it took.
fn start_server(config: &Path, addr: SocketAddr, log: &Path) -> (Server, Duration) {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("server log");
    let started = Instant::now();
    let mut child = Command::new(SERVER)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env(SECRET_VAR, SECRET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {SERVER}: {e} (run `cargo build --release --bin shadowdraft`)")
        });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "the server exited with {status} before answering /healthz; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if matches!(http_get(addr, "/healthz"), Ok((200, _))) {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!(
                "the server did not answer /healthz within 120 s; log: {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    (
        Server {
            child,
            log: log.to_path_buf(),
        },
        took,
    )
}

/// Send a signal with `kill` and wait for the process to exit; returns the time it took.
fn stop_server(server: &mut Server, signal: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            if signal == "TERM" && !status.success() {
                eprintln!(
                    "warning: the server exited with {status} after SIGTERM; log: {}",
                    server.log.display()
                );
            }
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = server.child.kill();
            panic!("the server did not stop within 120 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A one-shot HTTP/1.1 GET: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = http_get(addr, "/metrics").ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

// ---------------------------------------------------------------- /proc

fn proc_status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime in clock ticks, from a `stat` file.
fn stat_ticks(stat: &str) -> u64 {
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn process_ticks(pid: &str) -> u64 {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU ticks per thread (tid -> (name, ticks)).
fn thread_ticks(pid: u32) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let tid = e.file_name().to_string_lossy().to_string();
        let name = std::fs::read_to_string(e.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let ticks = stat_ticks(&std::fs::read_to_string(e.path().join("stat")).unwrap_or_default());
        out.insert(tid, (name, ticks));
    }
    out
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn db_bytes(data: &Path) -> (u64, u64) {
    let size = |name: &str| std::fs::metadata(data.join(name)).map(|m| m.len()).unwrap_or(0);
    (size("shadowdraft.db"), size("shadowdraft.db-wal"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Calls on disk, read with the server's own recovery code: (calls, shapes, time).
fn calls_on_disk(data: &Path, agents: &[String]) -> (u64, usize, Duration) {
    let started = Instant::now();
    let store = shadowdraft::store::Sqlite::open(&data.join("shadowdraft.db")).expect("open the store");
    let now = shadowdraft::clock::now();
    let window = shadowdraft::bot::ingest::recover(&store, WINDOW_DAYS, now)
        .expect("recover the window")
        .window;
    let span = shadowdraft::core::window::span(now, WINDOW_DAYS);
    let calls = agents.iter().map(|a| window.summary(a, span).calls).sum();
    (calls, window.shape_count(), started.elapsed())
}

// ---------------------------------------------------------------- load

#[derive(Default)]
struct ConnStats {
    accepted: u64,
    calls: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<u16, (u64, String)>,
    transport_error: Option<String>,
}

/// Where the load goes and what a durable acknowledgement looks like.
#[derive(Clone, Copy)]
struct Target {
    path: &'static str,
    content_type: &'static str,
    acknowledged: StatusCode,
}

impl Target {
    fn of(o: &Options) -> Target {
        match o.otlp.as_deref() {
            None => Target {
                path: "/v1/observations",
                content_type: "application/json",
                acknowledged: StatusCode::ACCEPTED,
            },
            Some(encoding) => Target {
                path: "/v1/traces",
                content_type: if encoding == "protobuf" {
                    "application/x-protobuf"
                } else {
                    "application/json"
                },
                acknowledged: StatusCode::OK,
            },
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    addr: SocketAddr,
    target: Target,
    batches: Arc<Vec<(Bytes, u64)>>,
    auth: HeaderValue,
    conn: usize,
    stop: Arc<AtomicBool>,
    acked_calls: Arc<AtomicU64>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let run = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut seq = 0usize;
        // Spread the connections over the batches.
        let mut i = conn * 37;
        while !stop.load(Ordering::Relaxed) {
            let (body, calls) = &batches[i % batches.len()];
            i += 1;
            seq += 1;
            let req = Request::post(target.path)
                .header(HOST, "127.0.0.1")
                .header(AUTHORIZATION, auth.clone())
                .header(CONTENT_TYPE, target.content_type)
                .header("idempotency-key", format!("bench-{conn}-{seq}"))
                .body(Full::new(body.clone()))?;
            sender.ready().await?;
            let t = Instant::now();
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let answer = resp.into_body().collect().await?.to_bytes();
            let took = t.elapsed();
            stats
                .latencies_us
                .push(took.as_micros().min(u32::MAX as u128) as u32);
            if status == target.acknowledged {
                stats.accepted += 1;
                stats.calls += calls;
                acked_calls.fetch_add(*calls, Ordering::Relaxed);
            } else {
                let e = stats.errors.entry(status.as_u16()).or_insert_with(|| {
                    (
                        0,
                        String::from_utf8_lossy(&answer[..answer.len().min(300)]).to_string(),
                    )
                });
                e.0 += 1;
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    if let Err(e) = run.await {
        stats.transport_error = Some(e.to_string());
    }
    stats
}

fn main() -> ExitCode {
    let o = options();
    let tck = clock_ticks_per_second();
    println!(
        "ingest bench{}: {} s, {} connections, {} calls/batch, {} distinct batches from a {}-agent fleet, drafting.debounce_seconds = {}{}",
        o.otlp.as_ref().map_or(String::new(), |e| format!(" (OTLP/{e} exports to /v1/traces, one tool span per call)")),
        o.seconds,
        o.concurrency,
        o.batch_size,
        o.batches,
        o.agents,
        o.debounce,
        if o.debounce >= o.seconds + 60 {
            " (no drafting job runs during the measurement)"
        } else {
            " (drafting jobs run during the measurement)"
        }
    );
    println!("server: {SERVER}");

    let prep = Instant::now();
    let batches = Arc::new(build_batches(&o));
    let body_bytes: u64 = batches.iter().map(|(b, _)| b.len() as u64).sum();
    // The agents in the batches, for counting calls on disk afterwards.
    let agents: Vec<String> = {
        let fleet = Fleet::new(&FleetSpec {
            agents: o.agents,
            calls_per_agent: (o.batches * o.batch_size).div_ceil(o.agents),
            seed: 7,
        });
        let calls = fleet.calls(Split::Train).take(o.batches * o.batch_size);
        let set: std::collections::BTreeSet<String> = calls
            .map(|c| c["agent"].as_str().expect("agent").to_string())
            .collect();
        set.into_iter().collect()
    };
    println!(
        "prepared {} batches ({:.0} KiB each on average, {} agents) in {:.1} s",
        batches.len(),
        body_bytes as f64 / batches.len() as f64 / 1024.0,
        agents.len(),
        prep.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = write_config(dir.path(), addr.port(), o.debounce);
    let log = dir.path().join("server.log");
    let (mut server, first_start) = start_server(&config, addr, &log);
    let pid = server.child.id();
    let rss_idle = proc_status_kib(pid, "VmRSS:");
    println!(
        "server pid {pid} up in {:.2} s, RSS {:.0} MiB idle",
        first_start.as_secs_f64(),
        rss_idle as f64 / 1024.0
    );

    let exp = shadowdraft::clock::now() as u64 + 3600 + o.seconds;
    let token = shadowdraft::auth::hs256_token(SECRET.as_bytes(), AUDIENCE, "bench-node", exp);
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");

    // The load generator: one thread, so the server keeps the rest of the machine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let threads_before = thread_ticks(pid);
    let server_ticks_before = process_ticks(&pid.to_string());
    let self_ticks_before = process_ticks("self");
    let started = Instant::now();
    let (stats, timeline, peak_rss_sampled) = runtime.block_on(async {
        let tasks: Vec<_> = (0..o.concurrency)
            .map(|c| {
                tokio::spawn(connection(
                    addr,
                    Target::of(&o),
                    batches.clone(),
                    auth.clone(),
                    c,
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        // Once a second: calls acknowledged and the server's RSS.
        let mut timeline = Vec::new();
        let mut peak = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last = 0u64;
        for s in 1..=o.seconds {
            tick.tick().await;
            let now = acked.load(Ordering::Relaxed);
            let rss = proc_status_kib(pid, "VmRSS:");
            peak = peak.max(rss);
            timeline.push((s, now - last, rss));
            last = now;
        }
        stop.store(true, Ordering::Relaxed);
        let mut stats = Vec::new();
        for t in tasks {
            stats.push(t.await.expect("connection task"));
        }
        (stats, timeline, peak)
    });
    let elapsed = started.elapsed();
    let server_cpu = (process_ticks(&pid.to_string()) - server_ticks_before) as f64 / tck;
    let self_cpu = (process_ticks("self") - self_ticks_before) as f64 / tck;
    let threads_after = thread_ticks(pid);

    println!("\nper second (calls acknowledged, server RSS):");
    for (s, calls, rss) in &timeline {
        println!(
            "  {s:>3} s  {:>9} calls/s  {:>6.0} MiB",
            thousands(*calls),
            *rss as f64 / 1024.0
        );
    }

    let accepted: u64 = stats.iter().map(|s| s.accepted).sum();
    let calls: u64 = stats.iter().map(|s| s.calls).sum();
    let mut latencies: Vec<u32> = stats
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let mut errors: BTreeMap<u16, (u64, String)> = BTreeMap::new();
    for s in &stats {
        for (status, (n, body)) in &s.errors {
            let e = errors.entry(*status).or_insert_with(|| (0, body.clone()));
            e.0 += n;
        }
    }
    let transport: Vec<&String> = stats.iter().filter_map(|s| s.transport_error.as_ref()).collect();
    let failed: u64 = errors.values().map(|(n, _)| n).sum::<u64>() + transport.len() as u64;

    // Per-thread CPU of the server during the run, grouped by thread name.
    let mut by_name: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (tid, (name, after)) in &threads_after {
        let before = threads_before.get(tid).map_or(0, |(_, t)| *t);
        let e = by_name.entry(name.clone()).or_default();
        e.0 += 1;
        e.1 += (after - before) as f64 / tck;
    }

    let server_calls_total = metric(addr, "shadowdraft_calls_ingested_total").unwrap_or(-1.0);
    let shapes_before = metric(addr, "shadowdraft_window_shapes").unwrap_or(-1.0);
    let peak_rss = proc_status_kib(pid, "VmHWM:");
    let (db_live, wal_live) = db_bytes(&data);

    // Crash: everything acknowledged must be on disk.
    let _ = stop_server(&mut server, "KILL");
    let (db_crash, wal_crash) = db_bytes(&data);
    let (on_disk_crash, _, offline_recovery) = calls_on_disk(&data, &agents);

    // Restart on the same data_dir (recovery), compare the window, then stop gracefully.
    let (mut server, restart) = start_server(&config, addr, &log);
    let restart_rss = proc_status_kib(server.child.id(), "VmHWM:");
    let shapes_after = metric(addr, "shadowdraft_window_shapes").unwrap_or(-1.0);
    let graceful = stop_server(&mut server, "TERM");
    let (db_final, wal_final) = db_bytes(&data);
    let (on_disk_final, _, _) = calls_on_disk(&data, &agents);
    let data_dir_bytes = dir_bytes(&data);

    let secs = elapsed.as_secs_f64();
    let calls_per_s = calls as f64 / secs;
    println!(
        "\nserver CPU during the run: {:.1} s over {:.1} s wall = {:.2} cores (load generator: {:.2} cores)",
        server_cpu,
        secs,
        server_cpu / secs,
        self_cpu / secs
    );
    for (name, (n, cpu)) in &by_name {
        if *cpu > 0.0 {
            println!(
                "  {name:<18} x{n:<3} {cpu:>6.1} s  ({:.0}% of one core)",
                100.0 * cpu / secs
            );
        }
    }

    let ok = |b: bool| if b { "ok" } else { "FAIL" };
    let durable = on_disk_crash == calls && on_disk_final == calls;
    println!("\n| figure | value |");
    println!("|---|---|");
    println!(
        "| run | {:.1} s, {} connections, {} calls/batch, debounce {} s |",
        secs, o.concurrency, o.batch_size, o.debounce
    );
    println!(
        "| **calls/s ({}, durable)** | **{}** (target 100,000: {}) |",
        Target::of(&o).acknowledged.as_u16(),
        thousands(calls_per_s as u64),
        if calls_per_s >= 100_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("| batches/s | {:.1} |", accepted as f64 / secs);
    println!(
        "| calls / batches acknowledged | {} / {} |",
        thousands(calls),
        thousands(accepted)
    );
    println!(
        "| request body throughput | {:.1} MiB/s |",
        mib(body_bytes / batches.len() as u64) * accepted as f64 / secs
    );
    println!(
        "| ack latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "| other answers / transport errors | {} / {} |",
        errors.values().map(|(n, _)| n).sum::<u64>(),
        transport.len()
    );
    println!(
        "| server peak RSS (VmHWM) | {:.0} MiB (idle at start {:.0} MiB; sampled peak VmRSS {:.0} MiB) |",
        peak_rss as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        peak_rss_sampled as f64 / 1024.0
    );
    println!(
        "| server CPU | {:.2} cores of {} |",
        server_cpu / secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| DB on disk at end of run | {:.1} MiB db + {:.1} MiB WAL |",
        mib(db_live),
        mib(wal_live)
    );
    println!(
        "| DB on disk after SIGKILL | {:.1} MiB db + {:.1} MiB WAL |",
        mib(db_crash),
        mib(wal_crash)
    );
    println!(
        "| DB on disk after restart + SIGTERM | {:.1} MiB db + {:.1} MiB WAL (data_dir files {:.1} MiB) |",
        mib(db_final),
        mib(wal_final),
        mib(data_dir_bytes)
    );
    println!(
        "| server's calls_ingested_total | {} |",
        thousands(server_calls_total.max(0.0) as u64)
    );
    println!(
        "| calls on disk after SIGKILL | {} ({}; offline recovery {:.2} s) |",
        thousands(on_disk_crash),
        ok(on_disk_crash == calls),
        offline_recovery.as_secs_f64()
    );
    println!(
        "| restart to /healthz (recovery) | {:.2} s (first start {:.2} s; RSS after restart {:.0} MiB) |",
        restart.as_secs_f64(),
        first_start.as_secs_f64(),
        restart_rss as f64 / 1024.0
    );
    println!(
        "| window shapes before crash / after restart | {} / {} ({}) |",
        shapes_before,
        shapes_after,
        ok(shapes_before == shapes_after && shapes_after > 0.0)
    );
    println!(
        "| graceful shutdown (SIGTERM) | {:.2} s |",
        graceful.as_secs_f64()
    );
    println!(
        "| calls on disk after SIGTERM | {} ({}) |",
        thousands(on_disk_final),
        ok(on_disk_final == calls)
    );

    for (status, (n, body)) in &errors {
        println!("error: {n} answers with status {status}, e.g. {body}");
    }
    for e in &transport {
        println!("error: connection failed: {e}");
    }
    if failed > 0 || !durable || shapes_before != shapes_after {
        println!("FAILED (server log: {}; kept)", log.display());
        let _ = dir.keep();
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
