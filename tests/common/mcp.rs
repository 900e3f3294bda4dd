//! Driving the MCP gateway as agents do: the official TypeScript SDK client
//! (`tests/fixtures/mcp/client.mjs`) runs a plan of steps against it, over
//! stdio (the client spawns `shadowdraft mcp`) or streamable HTTP.

use super::external::{node, npm_package};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/client.mjs")
}

/// The plan's transport part for stdio: the client spawns `shadowdraft mcp ARGS…`.
pub fn via_gateway(args: &[String], env: &[(&str, &str)]) -> Value {
    let env: serde_json::Map<String, Value> = env.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"transport": "stdio", "command": env!("CARGO_BIN_EXE_shadowdraft"), "args": args, "env": env})
}

/// `shadowdraft mcp --config CONFIG --server SERVER --agent AGENT -- UPSTREAM…`.
pub fn gateway_args(config: &Path, server: &str, agent: &str, upstream: &[String]) -> Vec<String> {
    let mut args = vec![
        "mcp".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--server".into(),
        server.into(),
        "--agent".into(),
        agent.into(),
        "--".into(),
    ];
    args.extend(upstream.iter().cloned());
    args
}

/// The plan's transport part for streamable HTTP.
pub fn via_http(url: &str, token: Option<&str>) -> Value {
    json!({"transport": "http", "url": url, "token": token})
}

/// Start the client on `transport` with `steps`; see [`Run::finish`].
pub fn start(transport: &Value, steps: Value) -> Run {
    let mut plan = transport.clone();
    plan["sdk"] = json!(npm_package("@modelcontextprotocol/sdk").display().to_string());
    plan["steps"] = steps;
    let child = Command::new(node())
        .arg(client_script())
        .arg(plan.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    Run { child }
}

/// Run the client to the end: one JSON value per step, `initialize` first.
pub fn run(transport: &Value, steps: Value) -> Vec<Value> {
    start(transport, steps).finish(Duration::from_secs(120))
}

pub struct Run {
    pub child: Child,
}

impl Run {
    /// Wait (at most `limit`) and read what every step printed.
    pub fn finish(mut self, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the MCP client did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut text = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// The text of a tool result.
pub fn text(step: &Value) -> String {
    step["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {step}"))
        .to_string()
}

/// The direct children of a process (Linux).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

/// Whether a process is still running (not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// Wait until `f` holds (at most `limit`).
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send a signal to a process.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}
