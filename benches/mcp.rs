//! The latency the MCP gateway adds to a `tools/call`.
//!
//! `cargo bench --bench mcp -- [CALLS]` (default 2000) times CALLS sequential
//! `tools/call echo` requests from the official Rust SDK's client, after 200
//! to warm up, four ways:
//!
//! - stdio, direct: the client spawns `@modelcontextprotocol/server-everything`;
//! - stdio, gateway: the client spawns `shadowdraft mcp` (this build) in front of it;
//! - HTTP, direct: server-everything over streamable HTTP on loopback;
//! - HTTP, gateway: `/mcp/everything` of a node (in this process) whose
//!   upstream is that same URL.
//!
//! The node runs in enforce mode with a rule allowing the call (a warm
//! policy: each decision after the first comes from the decision cache). It
//! prints p50 / p99 per way and what the gateway adds. Needs Node.js and the
//! npm packages `.ci/install-test-deps` installs.
#[allow(dead_code)]
#[path = "support/figures.rs"]
mod figures;
use figures::percentile;

use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::json;
use shadowdraft::config::Config;
use shadowdraft::enforce::{self, NodeSettings};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WARMUP: usize = 200;

fn deps() -> PathBuf {
    match std::env::var_os("SHADOWDRAFT_TEST_DEPS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/shadowdraft-ci/deps"),
    }
}

fn everything() -> PathBuf {
    let script = deps().join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "{} is missing: run .ci/install-test-deps",
        script.display()
    );
    script
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// A policy repository allowing agent `bench` to call `echo` on `everything`.
fn policy_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("policies");
    std::fs::create_dir_all(repo.join("policies/agents")).unwrap();
    std::fs::write(
        repo.join("policies/schema.cedarschema"),
        "entity Agent;\n\nentity McpServer;\n\naction \"echo\" appliesTo {\n  principal: [Agent],\n  resource: [McpServer],\n  context: { input: { message: __cedar::String } }\n};\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("policies/agents/bench.cedar"),
        "@id(\"bench/echo/1\")\npermit (principal == Agent::\"bench\", action == Action::\"echo\", resource == McpServer::\"everything\")\nwhen { context.input.message like \"ping *\" };\n",
    )
    .unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch", "main"]);
    git(&repo, &["add", "."]);
    git(
        &repo,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "--quiet",
            "-m",
            "policy",
        ],
    );
    repo
}

/// Time `calls` echo calls (after the warm-up) on a connected client.
async fn time_calls(peer: &rmcp::Peer<rmcp::RoleClient>, calls: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(calls);
    for i in 0..WARMUP + calls {
        let args = json!({"message": format!("ping {}", i % 7)})
            .as_object()
            .unwrap()
            .clone();
        let start = Instant::now();
        let result = peer
            .call_tool(CallToolRequestParams::new("echo").with_arguments(args))
            .await
            .expect("the call answers");
        let elapsed = start.elapsed();
        assert_ne!(result.is_error, Some(true), "{result:?}");
        if i >= WARMUP {
            times.push(elapsed);
        }
    }
    times.sort();
    times
}

fn row(name: &str, times: &[Duration]) -> (Duration, Duration) {
    let (p50, p99) = (percentile(times, 0.5), percentile(times, 0.99));
    println!(
        "{name:<16} p50 {:>8.1} µs   p99 {:>8.1} µs",
        micros(p50),
        micros(p99)
    );
    (p50, p99)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn added(name: &str, direct: (Duration, Duration), via: (Duration, Duration)) {
    let diff = |a: Duration, b: Duration| micros(a) - micros(b);
    println!(
        "{name:<16} p50 {:>+8.1} µs   p99 {:>+8.1} µs   (added by the gateway)",
        diff(via.0, direct.0),
        diff(via.1, direct.1)
    );
}

async fn stdio(command: Command, calls: usize) -> Vec<Duration> {
    let transport = TokioChildProcess::new(tokio::process::Command::from(command)).expect("spawn");
    let client = ().serve(transport).await.expect("initialize");
    let times = time_calls(client.peer(), calls).await;
    let _ = client.cancel().await;
    times
}

async fn http(url: &str, token: Option<String>, calls: usize) -> Vec<Duration> {
    let tls = shadowdraft::enforce::tls::client_config(None).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .build()
        .unwrap();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let transport = StreamableHttpClientTransport::with_client(client, config);
    let client = ().serve(transport).await.expect("initialize");
    let times = time_calls(client.peer(), calls).await;
    let _ = client.cancel().await;
    times
}

fn main() {
    let calls: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("CALLS is a number"))
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let repo = policy_repo(dir.path());
    let script = everything();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream_url = format!("http://127.0.0.1:{port}/mcp");
    let config = dir.path().join("shadowdraft.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\npolicy_repo: {{url: {}}}\nenforce:\n  listen: 127.0.0.1:0\n  mode: enforce\n  report_url: http://127.0.0.1:9/v1/observations\n  report_hs256_secret_env: BENCH_SECRET\n  mcp:\n    agent: bench\n    hs256_secret_env: BENCH_SECRET\n    servers:\n      everything: {{url: '{upstream_url}'}}\n",
            dir.path().join("state").display(),
            repo.display()
        ),
    )
    .unwrap();
    const SECRET: &str = "a-bench-secret-that-is-32-bytes-long!";
    std::env::set_var("BENCH_SECRET", SECRET);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("{calls} sequential tools/call echo, after {WARMUP} to warm up");

    let mut direct = Command::new("node");
    direct
        .arg(&script)
        .arg("stdio")
        .stderr(std::process::Stdio::null());
    let stdio_direct = row("stdio direct", &runtime.block_on(stdio(direct, calls)));
    let mut via = Command::new(env!("CARGO_BIN_EXE_shadowdraft"));
    via.args([
        "mcp",
        "--config",
        config.to_str().unwrap(),
        "--server",
        "everything",
        "--agent",
        "bench",
        "--",
    ])
    .arg("node")
    .arg(&script)
    .arg("stdio")
    .env("RUST_LOG", "error")
    .stderr(std::process::Stdio::null());
    let stdio_via = row("stdio gateway", &runtime.block_on(stdio(via, calls)));

    let mut server = Command::new("node")
        .arg(&script)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start server-everything over HTTP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server-everything did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let http_direct = row("HTTP direct", &runtime.block_on(http(&upstream_url, None, calls)));
    let text = std::fs::read_to_string(&config).unwrap();
    let settings =
        NodeSettings::from_config(&Config::parse("bench.yaml", &text).unwrap(), "bench.yaml", &|v| {
            std::env::var(v).ok()
        })
        .unwrap();
    let http_via = runtime.block_on(async {
        let node = enforce::start(settings).await.unwrap();
        while node.node.policy.current().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let exp = shadowdraft::clock::now() as u64 + 3600;
        let token = shadowdraft::auth::hs256_token(SECRET.as_bytes(), "shadowdraft-mcp", "bench", exp);
        let times = http(
            &format!("http://{}/mcp/everything", node.addr),
            Some(token),
            calls,
        )
        .await;
        node.stop().await;
        times
    });
    let http_via = row("HTTP gateway", &http_via);
    let _ = server.kill();
    let _ = server.wait();
    added("stdio", stdio_direct, stdio_via);
    added("HTTP", http_direct, http_via);
}
