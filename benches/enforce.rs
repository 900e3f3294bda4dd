//! The enforcement node's decision path on a fleet-sized policy.
//!
//! cargo bench --bench enforce -- [agents,agents,…] [calls-per-agent] [--cold-calls N]
//!     [--http SECONDS [--cold]] [--concurrency N]
//!
//! For each fleet size (default 40 and 400 agents): draft the fleet's training
//! calls in memory, load the result as the node does (parse, strict
//! validation, per-(agent, tool) slices), then time `POST
//! /access/v1/evaluation` in process — AuthZEN JSON in, Cedar request,
//! authorisation on the slice, JSON answer out:
//!
//! * *cold*: N (default 20,000) distinct held-out and attack calls of the same
//!   agents (more of their traffic than the drafted split holds, so the count
//!   is the same at every fleet size), each once on a freshly loaded commit.
//!   Distinct means distinct decision-cache keys, and the commit's cache
//!   counters must show no hit: every figure is a decision Cedar took. With
//!   the p50 of each phase (parse, + Cedar request, + authorisation on the slice).
//! * *repeated*: 3,000 of those calls, round after round (mostly cache hits).
//!
//! With `--http`, the node serves on loopback and N concurrent keep-alive
//! clients (hyper-util) post the repeated calls for the given seconds:
//! evaluations per second. `--cold` adds the same over HTTP with a body no
//! cache has seen: first one client (p50 / p99 per request), then N clients
//! (evaluations per second), each request the next distinct call of the pool;
//! again the cache counters must show no hit.
#[allow(dead_code)]
#[path = "support/figures.rs"]
mod figures;
use figures::percentile;

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
use shadowdraft::core::replay::authorize;
use shadowdraft::enforce::authzen;
use shadowdraft::enforce::cache::DecisionCache;
use shadowdraft::enforce::policy::Enforced;
use shadowdraft::enforce::{Node, NodeSettings};
use shadowdraft_fleet::Split;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fleet's seed (the same agents in the drafted split and in the traffic).
const SEED: u64 = 7;

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

/// Requests timed per round of the repeated calls.
const SAMPLE: usize = 3_000;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Loaded {
    node: Arc<Node>,
    files: RepoFiles,
    agents: usize,
    calls_per_agent: usize,
    /// Repeated calls: the drafted fleet's held-out and attack split, sampled.
    bodies: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn load(agents: usize, calls_per_agent: usize) -> Loaded {
    let started = Instant::now();
    let drafted = draft_fleet(
        common::fleet(agents, calls_per_agent, SEED),
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
        "{agents} agents: {rules} rules; drafted in {:.2} s; load (parse + strict validation + slices) {:.0} ms",
        drafted_in.as_secs_f64(),
        loaded_in.as_secs_f64() * 1e3,
    );
    Loaded {
        node: Arc::new(node),
        files,
        agents,
        calls_per_agent,
        bodies,
        _dir: dir,
    }
}

/// A freshly loaded commit of the drafted fleet: its decision cache is empty.
fn fresh(loaded: &Loaded) -> Arc<Enforced> {
    loaded
        .node
        .policy
        .install(Enforced::build("bench", &loaded.files).expect("the drafted fleet loads"));
    loaded.node.policy.current().expect("loaded")
}

/// `want` calls of the fleet's agents that no two share a decision-cache key
/// (calls no rule covers have no key: distinct bodies), held-out and attack
/// mixed in a fixed pseudo-random order. More of the agents' traffic than
/// the drafted split holds: the same agents and habits, more calls.
fn cold_pool(loaded: &Loaded, want: usize) -> Vec<Vec<u8>> {
    let policy = loaded.node.policy.current().expect("loaded");
    let mut calls_per_agent = (want * 2)
        .div_ceil(loaded.agents * 3 / 10)
        .max(loaded.calls_per_agent);
    loop {
        let fleet = common::fleet(loaded.agents, calls_per_agent, SEED);
        let mut seen = HashSet::new();
        let mut pool: Vec<Vec<u8>> = fleet
            .calls(Split::HeldOut)
            .chain(fleet.calls(Split::Attack))
            .map(|c| authzen(&c))
            .filter(|body| {
                let q = authzen::parse_evaluation(body).expect("valid");
                let key = match policy.unread_strings(&q.agent, &q.tool) {
                    Some(unread) => DecisionCache::key(&q, unread),
                    None => String::from_utf8_lossy(body).into_owned(),
                };
                seen.insert(key)
            })
            .collect();
        if pool.len() >= want {
            // Fisher-Yates with a fixed xorshift: the same order on every run.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for i in (1..pool.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pool.swap(i, (x % (i as u64 + 1)) as usize);
            }
            pool.truncate(want);
            return pool;
        }
        calls_per_agent *= 2;
    }
}

fn in_process(loaded: &Loaded, cold_calls: usize) {
    let node = &loaded.node;
    let agents = loaded.agents;
    let pool = cold_pool(loaded, cold_calls);
    // Warm up (allocator, code) on another commit, then decide every call of
    // the pool once on a fresh one.
    for body in pool.iter().take(2_000) {
        node.evaluation(body).expect("valid");
    }
    let policy = fresh(loaded);
    // How many rules a decision meets: what "flat in the number of agents" rests on.
    let sizes: Vec<usize> = pool
        .iter()
        .filter_map(|b| {
            let q = authzen::parse_evaluation(b).expect("valid");
            policy
                .slice_for(&q.agent, &q.tool, &q.server)
                .map(|set| set.policies().count())
        })
        .collect();
    println!(
        "  slices met by the cold calls: {:.2} rules on average, {} at most; {} of {} rules in the native fragment",
        sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
        sizes.iter().max().unwrap_or(&0),
        policy.native_rules(),
        policy.rules
    );
    let mut cold = Vec::with_capacity(pool.len());
    let mut allowed = 0u64;
    for body in &pool {
        let start = Instant::now();
        let out = node.evaluation(body).expect("valid");
        cold.push(start.elapsed());
        allowed += out.starts_with(b"{\"decision\":true") as u64;
    }
    assert_eq!(policy.cache.hits(), 0, "every cold call is a cache miss");
    cold.sort_unstable();
    println!(
        "  cold (distinct calls, each once on a fresh commit; cache hits {}, misses {}): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs over {} calls, allowed {:.0}%",
        policy.cache.hits(),
        policy.cache.misses(),
        micros(percentile(&cold, 0.5)),
        micros(percentile(&cold, 0.99)),
        micros(percentile(&cold, 0.999)),
        cold.len(),
        100.0 * allowed as f64 / cold.len() as f64
    );
    // Where the cold time goes: the AuthZEN parse alone, + the Cedar request,
    // + Cedar's authorisation on the slice (no cache on these paths).
    let phase = |f: &dyn Fn(&[u8])| {
        let mut t: Vec<Duration> = Vec::with_capacity(pool.len());
        for body in &pool {
            let start = Instant::now();
            f(body);
            t.push(start.elapsed());
        }
        t.sort_unstable();
        (micros(percentile(&t, 0.5)), micros(percentile(&t, 0.99)))
    };
    let request = |b: &[u8]| {
        let q = authzen::parse_evaluation(b).expect("valid");
        let r = mapping::request(
            &q.agent,
            &q.tool,
            &q.server,
            &q.args,
            q.session.as_ref(),
            &policy.repo.schema,
        );
        (q, r)
    };
    let parse = phase(&|b| {
        std::hint::black_box(authzen::parse_evaluation(b).expect("valid"));
    });
    let map = phase(&|b| {
        let _ = std::hint::black_box(request(b));
    });
    let authorised = phase(&|b| {
        let (q, r) = request(b);
        if let (Some(set), Ok(r)) = (policy.slice_for(&q.agent, &q.tool, &q.server), r) {
            std::hint::black_box(authorize(set, &r));
        }
    });
    let native = phase(&|b| {
        let q = authzen::parse_evaluation(b).expect("valid");
        std::hint::black_box(shadowdraft::enforce::decide_natively(&policy, &q));
    });
    println!(
        "  cold by phase, p50 / p99: AuthZEN parse {:.1} / {:.1} µs; Cedar's way: + Cedar request {:.1} / {:.1} µs, + authorisation on the slice {:.1} / {:.1} µs (no deny reason); the node's way: + native decision with its reason {:.1} / {:.1} µs; the rest of the cold figure is the cache key, answer JSON and metrics",
        parse.0, parse.1, map.0, map.1, authorised.0, authorised.1, native.0, native.1
    );

    // Repeated calls on a fresh commit: the first round fills the cache.
    fresh(loaded);
    let rounds = (200_000 / loaded.bodies.len()).max(2);
    let mut times = Vec::with_capacity(rounds * loaded.bodies.len());
    let mut allowed = 0u64;
    let cpu_before = thread_cpu_ns();
    let wall = Instant::now();
    for _ in 0..rounds {
        for body in &loaded.bodies {
            let start = Instant::now();
            let out = node.evaluation(body).expect("valid");
            times.push(start.elapsed());
            allowed += (out.starts_with(b"{\"decision\":true")) as u64;
        }
    }
    let wall = wall.elapsed();
    let on_cpu = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) as f64 / 1e3 / times.len() as f64);
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "  in process, {agents} agents, repeated ({rounds} rounds of {} calls): {} evaluations, p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs (on-CPU mean {:.1} µs, CPU share {:.0}%), allowed {:.0}%",
        loaded.bodies.len(),
        times.len(),
        micros(percentile(&times, 0.5)),
        micros(percentile(&times, 0.99)),
        micros(mean),
        on_cpu.unwrap_or(f64::NAN),
        on_cpu.map_or(f64::NAN, |c| 100.0 * c * times.len() as f64 / 1e6 / wall.as_secs_f64()),
        100.0 * allowed as f64 / times.len() as f64
    );
}

/// Post bodies for `seconds` from `concurrency` keep-alive clients; `next`
/// picks each request's body (`None`: nothing left to send). The number of
/// evaluations, the elapsed time, and each request's latency.
async fn post_for(
    url: &hyper::Uri,
    seconds: f64,
    concurrency: usize,
    next: Arc<dyn Fn(usize) -> Option<Bytes> + Send + Sync>,
) -> (u64, Duration, Vec<Duration>) {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for worker in 0..concurrency {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let (next, count, url) = (next.clone(), count.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker * 7919;
            while Instant::now() < deadline {
                let Some(body) = next(i) else { break };
                i += 1;
                let request = hyper::Request::post(url.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("request");
                let sent = Instant::now();
                let response = client.request(request).await.expect("the node answers");
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.expect("body");
                latencies.push(sent.elapsed());
                count.fetch_add(1, Relaxed);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    (count.load(Relaxed), start.elapsed(), latencies)
}

fn http(loaded: &Loaded, seconds: u64, concurrency: usize, cold: bool, cold_calls: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bodies: Arc<Vec<Bytes>> = Arc::new(loaded.bodies.iter().map(|b| Bytes::from(b.clone())).collect());
    // Enough distinct calls that the clients do not run out (they stop if they do).
    let pool: Arc<Vec<Bytes>> = Arc::new(if cold {
        cold_pool(loaded, cold_calls.max(seconds as usize * 60_000))
            .into_iter()
            .map(Bytes::from)
            .collect()
    } else {
        Vec::new()
    });
    let node = loaded.node.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, shadowdraft::enforce::router(node)).await });
        let url: hyper::Uri = format!("http://{addr}/access/v1/evaluation").parse().expect("uri");
        let repeated = bodies.clone();
        let next = Arc::new(move |i: usize| Some(repeated[i % repeated.len()].clone()));
        let (n, took, _) = post_for(&url, seconds as f64, concurrency, next).await;
        println!(
            "  over HTTP on loopback, repeated calls: {n} evaluations in {:.1} s = {:.0} evaluations/s ({concurrency} keep-alive clients, node and clients on one 2-thread runtime)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
        if !cold {
            return;
        }
        let policy = fresh(loaded);
        // Each request takes the next call of the pool: no body is sent twice.
        let taken = Arc::new(AtomicUsize::new(0));
        let next = {
            let (pool, taken) = (pool.clone(), taken.clone());
            Arc::new(move |_: usize| pool.get(taken.fetch_add(1, Relaxed)).cloned())
        };
        let (n, took, mut latencies) = post_for(&url, seconds as f64 / 2.0, 1, next.clone()).await;
        latencies.sort_unstable();
        println!(
            "  over HTTP, cold (a call no cache has seen in every request), 1 client: {n} evaluations in {:.1} s, p50 {:.1} µs, p99 {:.1} µs per request",
            took.as_secs_f64(),
            micros(percentile(&latencies, 0.5)),
            micros(percentile(&latencies, 0.99)),
        );
        let (n, took, mut latencies) = post_for(&url, seconds as f64 / 2.0, concurrency, next).await;
        latencies.sort_unstable();
        let exhausted = if taken.load(Relaxed) >= pool.len() {
            " (the pool ran out before the time)"
        } else {
            ""
        };
        println!(
            "  over HTTP, cold, {concurrency} clients: {n} evaluations in {:.1} s = {:.0} evaluations/s{exhausted}, p50 {:.1} µs, p99 {:.1} µs per request; cache hits {}, misses {}",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            micros(percentile(&latencies, 0.5)),
            micros(percentile(&latencies, 0.99)),
            policy.cache.hits(),
            policy.cache.misses(),
        );
        assert_eq!(policy.cache.hits(), 0, "every cold request is a cache miss");
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
    let cold_calls = flag("--cold-calls").unwrap_or(20_000) as usize;
    let cold_http = args.iter().any(|a| a == "--cold");
    let valued = ["--http", "--concurrency", "--cold-calls"];
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !(a.starts_with("--") || *i > 0 && valued.contains(&args[i - 1].as_str())))
        .map(|(_, a)| a)
        .collect();
    let sizes: Vec<usize> = positional
        .first()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![40, 400]);
    let calls_per_agent = positional.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    for agents in sizes {
        let loaded = load(agents, calls_per_agent);
        in_process(&loaded, cold_calls);
        if let Some(seconds) = http_seconds {
            http(&loaded, seconds, concurrency, cold_http, cold_calls);
        }
    }
}
