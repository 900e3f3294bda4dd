//! The enforcement node's decision path on a fleet-sized policy.
//!
//! cargo bench --bench enforce -- [agents,agents,…] [calls-per-agent] [--http SECONDS] [--concurrency N]
//!
//! For each fleet size (default 40 and 400 agents): draft the fleet's training
//! calls in memory, load the result as the node does (parse, strict
//! validation, per-(agent, tool) slices), then time `POST
//! /access/v1/evaluation` in process — AuthZEN JSON in, Cedar request,
//! authorisation on the slice, JSON answer out — over the held-out and attack
//! calls, one at a time: p50 / p99. With `--http`, the node serves on loopback
//! and N concurrent keep-alive clients (hyper-util) post evaluations for the
//! given seconds: evaluations per second.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{applied, draft_fleet};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use shadowdraft::config::Config;
use shadowdraft::core::config::Preset;
use shadowdraft::core::mapping;
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::enforce::authzen;
use shadowdraft::enforce::policy::Enforced;
use shadowdraft::enforce::{Node, NodeSettings};
use shadowdraft_fleet::Split;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn authzen(call: &Value) -> Vec<u8> {
    json!({
        "subject": {"type": "agent", "id": call["agent"]},
        "action": {"name": call["tool"]},
        "resource": {"type": "mcp_server", "id": call.get("server").cloned().unwrap_or(json!("default"))},
        "context": {"input": call["args"]},
    })
    .to_string()
    .into_bytes()
}

/// Nanoseconds this thread has spent on a CPU (Linux), so a busy shared
/// machine shows as waiting time in the wall-clock figures, not here.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Requests timed per fleet size.
const SAMPLE: usize = 3_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Loaded {
    node: Arc<Node>,
    files: RepoFiles,
    bodies: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn load(agents: usize, calls_per_agent: usize) -> Loaded {
    let started = Instant::now();
    let drafted = draft_fleet(
        common::fleet(agents, calls_per_agent, 7),
        &RepoFiles::default(),
        Preset::Balanced,
    );
    let files = applied(&RepoFiles::default(), &drafted.draft);
    let drafted_in = started.elapsed();
    let started = Instant::now();
    let enforced = Enforced::build("bench", &files).expect("the drafted fleet loads");
    let loaded_in = started.elapsed();
    let rules = enforced.rules;
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = format!("data_dir: {}\nenforce: {{mode: enforce}}\n", dir.path().display());
    let config = Config::parse("bench.yaml", &yaml).expect("config");
    let settings = NodeSettings::from_config(&config, "bench.yaml", &|_| None).expect("settings");
    let node = Node::new(settings, false).expect("node");
    node.policy.install(enforced);
    let all: Vec<Vec<u8>> = drafted
        .fleet
        .calls(Split::HeldOut)
        .chain(drafted.fleet.calls(Split::Attack))
        .map(|c| authzen(&c))
        .collect();
    // The same number of requests at every fleet size, spread over all agents,
    // so only the policy grows between runs, not the benchmark's own data.
    let step = (all.len() / SAMPLE).max(1);
    let bodies: Vec<Vec<u8>> = all.into_iter().step_by(step).take(SAMPLE).collect();
    println!(
        "{agents} agents: {rules} rules; drafted in {:.2} s; load (parse + strict validation + slices) {:.0} ms; {} evaluation bodies",
        drafted_in.as_secs_f64(),
        loaded_in.as_secs_f64() * 1e3,
        bodies.len()
    );
    Loaded {
        node: Arc::new(node),
        files,
        bodies,
        _dir: dir,
    }
}

fn in_process(loaded: &Loaded, agents: usize) {
    let node = &loaded.node;
    // Warm up (slices, allocator, caches).
    for body in loaded.bodies.iter().take(2_000) {
        node.evaluation(body).expect("valid");
    }
    let rounds = (200_000 / loaded.bodies.len()).max(2);
    // A freshly loaded commit: its decision cache is empty, so the first round
    // decides every call with Cedar (cold) and the later ones repeat calls (warm).
    node.policy
        .install(Enforced::build("bench", &loaded.files).expect("the drafted fleet loads"));
    let mut cold = Vec::with_capacity(loaded.bodies.len());
    let mut times = Vec::with_capacity(rounds * loaded.bodies.len());
    let mut allowed = 0u64;
    let cpu_before = thread_cpu_ns();
    let wall = Instant::now();
    for round in 0..rounds {
        for body in &loaded.bodies {
            let start = Instant::now();
            let out = node.evaluation(body).expect("valid");
            let took = start.elapsed();
            if round == 0 {
                cold.push(took);
            }
            times.push(took);
            allowed += (out.starts_with(b"{\"decision\":true")) as u64;
        }
    }
    let wall = wall.elapsed();
    let on_cpu = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) as f64 / 1e3 / times.len() as f64);
    times.sort_unstable();
    cold.sort_unstable();
    println!(
        "  cold (first sight of each call, Cedar decides): p50 {:.1} µs, p99 {:.1} µs over {} calls",
        percentile(&cold, 0.5).as_secs_f64() * 1e6,
        percentile(&cold, 0.99).as_secs_f64() * 1e6,
        cold.len()
    );
    // Where the time goes: the AuthZEN parse alone, and parse + Cedar request.
    let phase = |f: &dyn Fn(&[u8])| {
        let mut t: Vec<Duration> = Vec::with_capacity(loaded.bodies.len() * 10);
        for _ in 0..10 {
            for body in &loaded.bodies {
                let start = Instant::now();
                f(body);
                t.push(start.elapsed());
            }
        }
        t.sort_unstable();
        percentile(&t, 0.5).as_secs_f64() * 1e6
    };
    let policy = node.policy.current().expect("loaded");
    let parse = phase(&|b| {
        std::hint::black_box(authzen::parse_evaluation(b).expect("valid"));
    });
    let map = phase(&|b| {
        let q = authzen::parse_evaluation(b).expect("valid");
        let _ = std::hint::black_box(mapping::request(
            &q.agent,
            &q.tool,
            &q.server,
            &q.args,
            q.session.as_ref(),
            &policy.repo.schema,
        ));
    });
    let decide = phase(&|b| {
        let q = authzen::parse_evaluation(b).expect("valid");
        std::hint::black_box(shadowdraft::enforce::decide(Some(&policy), &q));
    });
    println!(
        "  p50 by phase: AuthZEN parse {parse:.1} µs; + Cedar request {map:.1} µs (cold path only); decide with the cache warm {decide:.1} µs; + answer JSON, metrics = the figure below"
    );
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "  in process, {agents} agents, all rounds: {} evaluations, p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs (on-CPU mean {:.1} µs, CPU share {:.0}%), allowed {:.0}%",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6,
        on_cpu.unwrap_or(f64::NAN),
        on_cpu.map_or(f64::NAN, |c| 100.0 * c * times.len() as f64 / 1e6 / wall.as_secs_f64()),
        100.0 * allowed as f64 / times.len() as f64
    );
}

fn http(loaded: &Loaded, seconds: u64, concurrency: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bodies: Arc<Vec<Bytes>> = Arc::new(loaded.bodies.iter().map(|b| Bytes::from(b.clone())).collect());
    let node = loaded.node.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, shadowdraft::enforce::router(node)).await });
        let url: hyper::Uri = format!("http://{addr}/access/v1/evaluation").parse().expect("uri");
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let (bodies, count, url) = (bodies.clone(), count.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = worker * 7919;
                while Instant::now() < deadline {
                    let body = bodies[i % bodies.len()].clone();
                    i += 1;
                    let request = hyper::Request::post(url.clone())
                        .header("content-type", "application/json")
                        .body(Full::new(body))
                        .expect("request");
                    let response = client.request(request).await.expect("the node answers");
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.expect("body");
                    count.fetch_add(1, Relaxed);
                }
            }));
        }
        let start = Instant::now();
        for t in tasks {
            t.await.expect("client");
        }
        let n = count.load(Relaxed);
        println!(
            "  over HTTP on loopback: {n} evaluations in {:.1} s = {:.0} evaluations/s ({concurrency} keep-alive clients, node and clients on one 2-thread runtime)",
            start.elapsed().as_secs_f64(),
            n as f64 / start.elapsed().as_secs_f64()
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let http_seconds = flag("--http");
    let concurrency = flag("--concurrency").unwrap_or(32) as usize;
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !(a.starts_with("--") || *i > 0 && args[i - 1].starts_with("--")))
        .map(|(_, a)| a)
        .collect();
    let sizes: Vec<usize> = positional
        .first()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![40, 400]);
    let calls_per_agent = positional.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    for agents in sizes {
        let loaded = load(agents, calls_per_agent);
        in_process(&loaded, agents);
        if let Some(seconds) = http_seconds {
            http(&loaded, seconds, concurrency);
        }
    }
}
