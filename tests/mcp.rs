//! The MCP gateway with real MCP servers and clients this project did not
//! write: `@modelcontextprotocol/server-filesystem` and
//! `@modelcontextprotocol/server-everything` behind it, driven by the official
//! TypeScript SDK client, over stdio (`shadowdraft mcp`) and streamable HTTP
//! (`/mcp/<server>` on the node). The policy comes from a real bare git
//! repository; reports go to an address nobody listens on, so they stay in the
//! node's spool, where the tests read them.

mod common;

use common::external::{everything_server, filesystem_server, mcp_server};
use common::git_bridge::init_bare;
use common::http::request;
use common::mcp::{alive, children, gateway_args, run, signal, start, text, via_gateway, via_http, wait_for};
use serde_json::{json, Value};
use shadowdraft::config::Config;
use shadowdraft::enforce::{self, NodeSettings};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const AGENT: &str = "support-bot";
const SECRET: &str = "a-secret-for-agent-tokens-of-32-bytes!";

const SCHEMA: &str = r#"entity Agent;

entity McpServer;

action "read_text_file" appliesTo {
  principal: [Agent],
  resource: [McpServer],
  context: { input: { path: __cedar::String, head?: decimal, tail?: decimal } }
};
"#;

struct Place {
    dir: tempfile::TempDir,
    /// What the filesystem server serves: `allowed/` (the policy's) and `private/`.
    data: PathBuf,
    config: PathBuf,
}

impl Place {
    /// A policy repository whose rule lets `AGENT` read files under `data/allowed/`,
    /// and a node configuration (`enforce:` keys in `enforce_yaml`).
    fn new(enforce_yaml: &str) -> Place {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        for sub in ["allowed", "private"] {
            std::fs::create_dir_all(data.join(sub)).unwrap();
            std::fs::write(data.join(sub).join("note.txt"), format!("{sub} note\n")).unwrap();
        }
        let rule = format!(
            "@id(\"{AGENT}/read_text_file/1\")\npermit (principal == Agent::\"{AGENT}\", action == Action::\"read_text_file\", resource == McpServer::\"files\")\nwhen {{ context.input.path like \"{}/allowed/*\" }};\n",
            data.display()
        );
        let bare = dir.path().join("policies.git");
        init_bare(
            &bare,
            &[
                ("policies/schema.cedarschema", SCHEMA),
                (&format!("policies/agents/{AGENT}.cedar"), &rule),
            ],
        )
        .unwrap();
        let config = dir.path().join("shadowdraft.yaml");
        let yaml = format!(
            "data_dir: {}\npolicy_repo: {{url: {}}}\nenforce:\n  listen: 127.0.0.1:0\n  report_url: http://127.0.0.1:9/v1/observations\n  report_hs256_secret_env: TEST_REPORT_SECRET\n  flush_seconds: 3600\n{enforce_yaml}",
            dir.path().join("state").display(),
            bare.display()
        );
        std::fs::write(&config, yaml).unwrap();
        Place { dir, data, config }
    }

    fn path(&self, relative: &str) -> String {
        self.data.join(relative).display().to_string()
    }

    /// The stdio transport: the client spawns `shadowdraft mcp` in front of `upstream`.
    fn stdio(&self, server: &str, upstream: &[String]) -> Value {
        via_gateway(
            &gateway_args(&self.config, server, AGENT, upstream),
            &[("TEST_REPORT_SECRET", SECRET)],
        )
    }

    fn files(&self) -> Vec<String> {
        filesystem_server(&[self.data.to_str().unwrap()])
    }

    /// The node's settings, for `enforce::start` in this process.
    fn settings(&self) -> NodeSettings {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let config = Config::parse("shadowdraft.yaml", &text).unwrap();
        NodeSettings::from_config(&config, "shadowdraft.yaml", &|var| {
            matches!(var, "TEST_REPORT_SECRET" | "TEST_AGENT_SECRET").then(|| SECRET.to_string())
        })
        .unwrap()
    }

    /// Every batch spooled so far, oldest first.
    fn spooled(&self) -> Vec<Value> {
        let spool = self.dir.path().join("state/enforce/spool");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&spool)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
            .collect()
    }

    fn spooled_calls(&self) -> Vec<Value> {
        self.spooled()
            .iter()
            .flat_map(|b| b["calls"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

fn step<'a>(steps: &'a [Value], op: &str, n: usize) -> &'a Value {
    steps
        .iter()
        .filter(|s| s["step"] == op)
        .nth(n)
        .unwrap_or_else(|| panic!("no step {op} #{n} in {steps:#?}"))
}

fn read(path: &str) -> Value {
    json!({"op": "callTool", "name": "read_text_file", "arguments": {"path": path}})
}

fn token(sub: &str, user: Option<&str>) -> String {
    let mut claims = json!({"sub": sub, "aud": "shadowdraft-mcp", "exp": shadowdraft::clock::now() + 300});
    if let Some(user) = user {
        claims["user"] = json!(user);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[test]
fn shadow_mode_over_stdio_forwards_every_call_and_reports_it_with_the_catalogue() {
    let place = Place::new("  mode: shadow\n");
    let steps = run(
        &place.stdio("files", &place.files()),
        json!([
            {"op": "listTools"},
            read(&place.path("allowed/note.txt")),
            read(&place.path("private/note.txt")),
            {"op": "callTool", "name": "write_file", "arguments": {"path": place.path("allowed/new.txt"), "content": "written"}},
        ]),
    );
    assert_eq!(
        step(&steps, "initialize", 0)["result"]["server"]["name"],
        "secure-filesystem-server"
    );
    let tools = step(&steps, "listTools", 0)["result"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    let read_tool = tools.iter().find(|t| t["name"] == "read_text_file").unwrap();
    assert_eq!(
        read_tool["annotations"]["readOnlyHint"], true,
        "annotations pass through"
    );
    assert_eq!(text(step(&steps, "callTool", 0)), "allowed note\n");
    // Shadow mode: the policy denies these, the calls go through all the same.
    assert_eq!(text(step(&steps, "callTool", 1)), "private note\n");
    assert_eq!(step(&steps, "callTool", 2)["result"]["isError"], Value::Null);
    assert_eq!(
        std::fs::read_to_string(place.data.join("allowed/new.txt")).unwrap(),
        "written"
    );

    // The gateway exits with its client and spools what it saw.
    let batches = place.spooled();
    let catalogue = batches
        .iter()
        .find_map(|b| b["catalogues"].get("files"))
        .expect("a catalogue");
    assert_eq!(catalogue["tools"].as_array().unwrap().len(), tools.len());
    let calls = place.spooled_calls();
    let decision_of = |path: &str| {
        calls
            .iter()
            .find(|c| c["tool"] == "read_text_file" && c["args"]["path"] == place.path(path))
            .unwrap_or_else(|| panic!("no call for {path}: {calls:#?}"))["decision"]
            .clone()
    };
    assert_eq!(decision_of("allowed/note.txt"), "allow");
    assert_eq!(decision_of("private/note.txt"), "deny");
    let write = calls.iter().find(|c| c["tool"] == "write_file").unwrap();
    assert_eq!(write["decision"], "deny");
    assert_eq!(write["agent"], AGENT);
    assert_eq!(write["server"], "files");
    let session = write["session"]["mcp_session"].as_str().unwrap();
    assert!(
        calls.iter().all(|c| c["session"]["mcp_session"] == session),
        "one connection, one session"
    );
    assert!(
        batches[0]["policy_commit"]
            .as_str()
            .is_some_and(|c| c.len() == 40),
        "{:?}",
        batches[0]
    );
}

#[test]
fn enforce_mode_refuses_off_policy_calls_before_they_reach_the_server() {
    let place = Place::new("  mode: enforce\n  mcp: {hide_unruled_tools: true}\n");
    let steps = run(
        &place.stdio("files", &place.files()),
        json!([
            {"op": "listTools"},
            read(&place.path("allowed/note.txt")),
            read(&place.path("private/note.txt")),
            {"op": "callTool", "name": "write_file", "arguments": {"path": place.path("allowed/new.txt"), "content": "x"}},
            {"op": "callTool", "name": "read_text_file", "arguments": {"path": place.path("allowed/note.txt"), "bcc": "x"}},
        ]),
    );
    let names: Vec<&str> = step(&steps, "listTools", 0)["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read_text_file"], "tools without a rule are hidden");
    assert_eq!(text(step(&steps, "callTool", 0)), "allowed note\n");

    let outside = step(&steps, "callTool", 1);
    assert_eq!(outside["result"]["isError"], true, "{outside}");
    let why = text(outside);
    assert!(why.contains("decision: deny"), "{why}");
    assert!(
        why.contains(&format!("closest rule {AGENT}/read_text_file/1")),
        "{why}"
    );
    assert!(why.contains("policy commit "), "{why}");

    let write = step(&steps, "callTool", 2);
    assert_eq!(write["result"]["isError"], true);
    assert!(text(write).contains("no rule covers"), "{write}");
    assert!(
        !place.data.join("allowed/new.txt").exists(),
        "a refused call never reaches the server"
    );

    let unknown_arg = step(&steps, "callTool", 3);
    assert_eq!(unknown_arg["result"]["isError"], true);
    assert!(
        text(unknown_arg).contains("does not fit the schema"),
        "{unknown_arg}"
    );
    assert!(place.spooled_calls().is_empty(), "enforce mode reports no calls");
}

#[test]
fn everything_else_passes_through_unchanged() {
    let place = Place::new("  mode: shadow\n");
    let steps = json!([
        {"op": "listTools"},
        {"op": "listResources"},
        {"op": "readResource", "uri": "demo://resource/static/document/architecture.md"},
        {"op": "listPrompts"},
        {"op": "getPrompt", "name": "simple-prompt"},
        {"op": "callTool", "name": "echo", "arguments": {"message": "hi"}},
        {"op": "callTool", "name": "get-structured-content", "arguments": {"location": "New York"}},
        {"op": "callTool", "name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 3}, "progress": true},
        {"op": "callTool", "name": "trigger-long-running-operation", "arguments": {"duration": 20, "steps": 2}, "abortAfterMs": 500},
        {"op": "ping"},
    ]);
    let upstream = everything_server();
    let direct = run(
        &json!({"transport": "stdio", "command": upstream[0], "args": upstream[1..]}),
        steps.clone(),
    );
    let proxied = run(&place.stdio("everything", &upstream), steps);
    assert_eq!(direct.len(), proxied.len());
    // Same answers, step by step, as the server gives them to a client connected directly.
    for (d, p) in direct.iter().zip(&proxied) {
        assert_eq!(d["ok"], p["ok"], "{d}\n{p}");
        assert_eq!(without_tasks(&d["result"]), p["result"], "{}", d["step"]);
        // The last notification may lose its race with the result, directly too.
        let (dp, pp) = (d["progress"].as_array(), p["progress"].as_array());
        assert!(
            dp.is_none_or(|dp| pp
                .is_some_and(|pp| pp.starts_with(dp) || dp.starts_with(pp) && pp.len() + 1 >= dp.len())),
            "progress notifications pass through: {d}\n{p}"
        );
    }
    assert!(step(&proxied, "listResources", 0)["result"]["resources"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(text(step(&proxied, "callTool", 0)), "Echo: hi");
    assert!(!step(&proxied, "callTool", 2)["progress"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(step(&proxied, "callTool", 3)["ok"], false, "cancelled");
    assert_eq!(
        step(&proxied, "ping", 0)["ok"],
        true,
        "the session goes on after a cancellation"
    );
    let catalogue = place
        .spooled()
        .into_iter()
        .find_map(|b| b["catalogues"].get("everything").cloned());
    assert_eq!(
        catalogue.unwrap()["tools"],
        without_tasks(&step(&direct, "listTools", 0)["result"])["tools"]
    );
}

/// What the gateway passes on of a result: the SDK's model (protocol
/// 2026-07-28) has no place for the 2025-11-25 tasks experiment (the `tasks`
/// capability, a tool's `execution.taskSupport`), so neither reaches the agent.
fn without_tasks(result: &Value) -> Value {
    let mut result = result.clone();
    if let Some(capabilities) = result.get_mut("capabilities").and_then(Value::as_object_mut) {
        capabilities.remove("tasks");
    }
    if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
        for tool in tools {
            tool.as_object_mut().unwrap().remove("execution");
        }
    }
    result
}

/// A raw stdio session with `shadowdraft mcp`: lines in, lines out.
struct Raw {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Raw {
    fn start(place: &Place, upstream: &[String]) -> Raw {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shadowdraft"))
            .args(gateway_args(&place.config, "everything", AGENT, upstream))
            .env("TEST_REPORT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut raw = Raw { child, lines };
        raw.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
        .to_string());
        let answer = raw.answer(0);
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        raw.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        raw
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message answering `id` (notifications in between are skipped).
    fn answer(&mut self, id: i64) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no answer to {id}"));
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// The next message with no id (an error about an unreadable request).
    fn anonymous(&mut self) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("an error without id");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("id").is_none_or(Value::is_null) && message.get("error").is_some() {
                return message;
            }
        }
    }

    fn call(&mut self, id: i64, tool: &str, arguments: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}).to_string());
        self.answer(id)
    }

    fn close(mut self) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        self.child.wait().unwrap()
    }
}

#[test]
fn bad_input_gets_an_error_and_the_gateway_survives() {
    let place =
        Place::new("  mode: enforce\n  agents: {support-bot: shadow}\n  mcp: {max_message_bytes: 65536}\n");
    let mut raw = Raw::start(&place, &everything_server());
    // Not JSON: ignored, as every official SDK does (no id to answer).
    raw.send("this is not json {");
    // JSON, but not a JSON-RPC message: Invalid Request.
    raw.send(r#"{"jsonrpc":"2.0","id":5,"method":42}"#);
    let invalid = raw.anonymous();
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    // A method nobody knows: the server's own answer comes back.
    raw.send(r#"{"jsonrpc":"2.0","id":6,"method":"no/such/method","params":{}}"#);
    let unknown = raw.answer(6);
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    // A message over enforce.mcp.max_message_bytes is dropped whole.
    let huge = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "x".repeat(200_000)}}});
    raw.send(&huge.to_string());
    // A large one within the limit is decided and forwarded.
    let large = raw.call(8, "echo", json!({"message": "y".repeat(60_000)}));
    assert!(
        large["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("yyy"),
        "{large}"
    );
    let echo = raw.call(9, "echo", json!({"message": "still here"}));
    assert_eq!(echo["result"]["content"][0]["text"], "Echo: still here");
    assert!(raw.close().success());
}

#[test]
fn a_tools_call_the_sdk_cannot_read_fails_closed_in_enforce_mode() {
    let place = Place::new("  mode: enforce\n");
    let mut raw = Raw::start(&place, &everything_server());
    raw.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":["not","an","object"]}}"#);
    let refused = raw.answer(3);
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fail closed"),
        "{refused}"
    );
    let denied = raw.call(4, "echo", json!({"message": "hi"}));
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    assert!(raw.close().success());
}

/// The upstream child of a `shadowdraft mcp` process.
fn upstream_of(gateway: u32) -> u32 {
    let mut found = None;
    wait_for(Duration::from_secs(30), "the upstream child", || {
        found = children(gateway).into_iter().find(|&c| alive(c));
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn an_upstream_that_crashes_is_restarted_and_one_that_hangs_times_out() {
    let place = Place::new("  mode: shadow\n  mcp: {call_timeout_seconds: 2}\n");
    let mut raw = Raw::start(&place, &everything_server());
    let first = upstream_of(raw.child.id());
    // A call in flight when the server dies gets an error; the next call reaches a new server.
    raw.send(
        &json!({"jsonrpc": "2.0", "id": 20, "method": "tools/call",
        "params": {"name": "trigger-long-running-operation", "arguments": {"duration": 10, "steps": 2}}})
        .to_string(),
    );
    std::thread::sleep(Duration::from_millis(500));
    signal(first, "KILL");
    let lost = raw.answer(20);
    assert!(
        lost["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited before answering"),
        "{lost}"
    );
    let again = raw.call(21, "echo", json!({"message": "after the crash"}));
    assert_eq!(
        again["result"]["content"][0]["text"], "Echo: after the crash",
        "{again}"
    );
    let second = upstream_of(raw.child.id());
    assert_ne!(first, second);

    // A server that stops answering: the call times out, the session goes on.
    signal(second, "STOP");
    let hung = raw.call(22, "echo", json!({"message": "anyone?"}));
    assert!(
        hung["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer tools/call within 2 s"),
        "{hung}"
    );
    signal(second, "CONT");
    let back = raw.call(23, "echo", json!({"message": "back"}));
    assert_eq!(back["result"]["content"][0]["text"], "Echo: back", "{back}");
    assert!(raw.close().success());
}

#[test]
fn a_client_that_disconnects_mid_call_ends_the_session_and_the_calls_are_kept() {
    let place = Place::new("  mode: shadow\n");
    let run = start(
        &place.stdio("everything", &everything_server()),
        json!([{"op": "callTool", "name": "trigger-long-running-operation", "arguments": {"duration": 30, "steps": 2}}]),
    );
    let client = run.child.id();
    let mut gateway = None;
    wait_for(Duration::from_secs(30), "the gateway", || {
        gateway = children(client)
            .into_iter()
            .find(|&c| alive(c) && !children(c).is_empty());
        gateway.is_some()
    });
    let gateway = gateway.unwrap();
    let upstream = upstream_of(gateway);
    // Wait until the call was decided (it is in the node's feedback), then vanish.
    std::thread::sleep(Duration::from_secs(2));
    signal(client, "KILL");
    let _ = run.finish(Duration::from_secs(10));
    wait_for(Duration::from_secs(20), "the gateway to exit", || !alive(gateway));
    wait_for(Duration::from_secs(20), "the upstream to exit", || {
        !alive(upstream)
    });
    let calls = place.spooled_calls();
    assert!(
        calls
            .iter()
            .any(|c| c["tool"] == "trigger-long-running-operation"),
        "the call was spooled on the way out: {calls:#?}"
    );
}

/// `server-everything` over streamable HTTP on a free port, as an upstream `url`.
fn everything_over_http() -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let argv = mcp_server(
        "@modelcontextprotocol/server-everything",
        "dist/index.js",
        &["streamableHttp"],
    );
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "server-everything to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (child, port)
}

fn http_yaml(place_data: &Path, everything_url: &str) -> String {
    format!(
        "  mode: enforce\n  agents: {{shadow-bot: shadow}}\n  mcp:\n    hs256_secret_env: TEST_AGENT_SECRET\n    user_claim: user\n    max_message_bytes: 65536\n    servers:\n      files: {{command: {files}}}\n      everything: {{command: {everything}}}\n      remote: {{url: '{everything_url}'}}\n",
        files = serde_json::to_string(&filesystem_server(&[place_data.to_str().unwrap()])).unwrap(),
        everything = serde_json::to_string(&everything_server()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_decides_for_the_token_s_agent_and_records_its_user() {
    let (mut remote, port) = everything_over_http();
    let place = Place::new("");
    let yaml = std::fs::read_to_string(&place.config).unwrap()
        + &http_yaml(&place.data, &format!("http://127.0.0.1:{port}/mcp"));
    std::fs::write(&place.config, yaml).unwrap();
    let node = enforce::start(place.settings()).await.unwrap();
    wait_for(Duration::from_secs(30), "the policy", || {
        node.node.policy.current().is_some()
    });
    let url = |server: &str| format!("http://{}/mcp/{server}", node.addr);

    // Enforce mode without a token: 401.
    let files = url("files");
    let no_token = tokio::task::spawn_blocking(move || run(&via_http(&files, None), json!([])))
        .await
        .unwrap();
    assert_eq!(no_token[0]["ok"], false);
    assert_eq!(no_token[0]["code"], 401, "{no_token:?}");

    let (files, alice) = (url("files"), token(AGENT, Some("alice@acme.com")));
    let (inside, outside) = (place.path("allowed/note.txt"), place.path("private/note.txt"));
    let steps = tokio::task::spawn_blocking(move || {
        run(
            &via_http(&files, Some(&alice)),
            json!([read(&inside), read(&outside), {"op": "listTools"}]),
        )
    })
    .await
    .unwrap();
    assert_eq!(text(step(&steps, "callTool", 0)), "allowed note\n");
    assert_eq!(step(&steps, "callTool", 1)["result"]["isError"], true);
    assert!(text(step(&steps, "callTool", 1)).contains("decision: deny"));

    // Another agent in shadow mode, over an upstream URL: forwarded, recorded with its user and session.
    let (remote_url, bob) = (url("remote"), token("shadow-bot", Some("bob@acme.com")));
    let steps = tokio::task::spawn_blocking(move || {
        run(
            &via_http(&remote_url, Some(&bob)),
            json!([{"op": "callTool", "name": "echo", "arguments": {"message": "via url"}}]),
        )
    })
    .await
    .unwrap();
    assert_eq!(text(step(&steps, "callTool", 0)), "Echo: via url");
    let (everything, carol) = (url("everything"), token("shadow-bot", Some("carol@acme.com")));
    let steps = tokio::task::spawn_blocking(move || {
        run(&via_http(&everything, Some(&carol)), json!([
            {"op": "callTool", "name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 2}, "progress": true},
            {"op": "listTools"},
        ]))
    })
    .await
    .unwrap();
    assert_eq!(
        step(&steps, "callTool", 0)["progress"].as_array().unwrap().len(),
        2,
        "{steps:?}"
    );

    let metrics = request("GET", &format!("http://{}/metrics", node.addr), &[], Vec::new())
        .await
        .body;
    assert!(
        metrics.contains("shadowdraft_enforce_mcp_sessions_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shadowdraft_enforce_mcp_refused_total 1"),
        "{metrics}"
    );
    let running = node.node.clone();
    node.stop().await;
    drop(running);
    let _ = remote.kill();

    let calls = place.spooled_calls();
    let echo = calls
        .iter()
        .find(|c| c["tool"] == "echo")
        .expect("the shadow call");
    assert_eq!(echo["agent"], "shadow-bot");
    assert_eq!(echo["server"], "remote");
    assert_eq!(echo["session"]["user"], "bob@acme.com");
    assert!(echo["session"]["mcp_session"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(
        calls.iter().all(|c| c["agent"] != AGENT),
        "enforce-mode calls are not reported"
    );
    let batches = place.spooled();
    let catalogues: Vec<&str> = batches
        .iter()
        .flat_map(|b| b["catalogues"].as_object().into_iter().flat_map(|c| c.keys()))
        .map(String::as_str)
        .collect();
    assert!(
        catalogues.contains(&"files") && catalogues.contains(&"everything"),
        "{catalogues:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_requests_get_precise_answers() {
    let place = Place::new("");
    let yaml =
        std::fs::read_to_string(&place.config).unwrap() + &http_yaml(&place.data, "http://127.0.0.1:9/mcp");
    std::fs::write(&place.config, yaml).unwrap();
    let node = enforce::start(place.settings()).await.unwrap();
    let url = format!("http://{}/mcp/everything", node.addr);
    let auth = format!("Bearer {}", token(AGENT, None));
    let accept = "application/json, text/event-stream";
    let headers = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("authorization", auth.clone()),
            ("accept", accept.to_string()),
            ("content-type", "application/json".to_string()),
        ];
        h.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        h
    };
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let url = url.clone();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request("POST", &url, &h, body).await
        }
    };
    let reply = post(headers(&[]), b"{not json".to_vec()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], -32700, "{}", reply.body);
    let reply = post(headers(&[]), br#"{"jsonrpc":"2.0","id":1,"method":7}"#.to_vec()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], -32600, "{}", reply.body);
    let reply = post(headers(&[]), vec![b' '; 70_000]).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    let ping = br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.to_vec();
    let reply = post(headers(&[]), ping.clone()).await;
    assert_eq!(reply.status, 400, "a request before initialize: {}", reply.body);
    let reply = post(headers(&[("mcp-session-id", "no-such-session")]), ping.clone()).await;
    assert_eq!(reply.status, 404);
    let reply = post(headers(&[("origin", "https://evil.example")]), ping.clone()).await;
    assert_eq!(reply.status, 403);
    let mut wrong = headers(&[]);
    wrong[1].1 = "application/json".into();
    assert_eq!(post(wrong, ping.clone()).await.status, 406);
    let mut forged = headers(&[]);
    forged[0].1 = "Bearer not.a.jwt".into();
    let reply = post(forged, ping.clone()).await;
    assert_eq!(reply.status, 401);
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let reply = request(
        "GET",
        &format!("http://{}/mcp/nowhere", node.addr),
        &[("authorization", &auth)],
        Vec::new(),
    )
    .await;
    assert_eq!(reply.status, 404);

    // A session belongs to the agent that opened it; an upstream that cannot be reached is a 502.
    let remote = format!("http://{}/mcp/remote", node.addr);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let h = headers(&[]);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = request("POST", &remote, &h, init.to_string().into_bytes()).await;
    assert!(
        reply.status == 502 || reply.body.contains("error"),
        "{} {}",
        reply.status,
        reply.body
    );
    let reply = post(headers(&[]), init.to_string().into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = reply.headers["mcp-session-id"].to_str().unwrap().to_string();
    let other = format!("Bearer {}", token("someone-else", None));
    let reply = request(
        "POST",
        &url,
        &[
            ("authorization", &other),
            ("accept", accept),
            ("content-type", "application/json"),
            ("mcp-session-id", &session),
        ],
        ping.clone(),
    )
    .await;
    assert_eq!(reply.status, 404, "another agent cannot use the session");
    let reply = request(
        "DELETE",
        &url,
        &[("authorization", &auth), ("mcp-session-id", &session)],
        Vec::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = post(headers(&[("mcp-session-id", &session)]), ping).await;
    assert_eq!(reply.status, 404, "a closed session is gone");
    node.stop().await;
}

#[test]
fn the_gateway_names_what_is_missing_before_it_starts() {
    let place = Place::new("");
    let gateway = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shadowdraft"))
            .arg("mcp")
            .arg("--config")
            .arg(&place.config)
            .args(args)
            .env("TEST_REPORT_SECRET", SECRET)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).to_string();
    let out = gateway(&["--server", "files", "--agent", AGENT]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no upstream for server \"files\""),
        "{}",
        stderr(&out)
    );
    let out = gateway(&["--server", "files", "--", "node", "x.js"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--agent"), "{}", stderr(&out));
    let out = gateway(&["--server", "a/b", "--agent", AGENT, "--", "node"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    let out = gateway(&[
        "--server",
        "files",
        "--agent",
        AGENT,
        "--",
        "/nonexistent/mcp-server",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot start /nonexistent/mcp-server"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_client_that_vanishes_mid_call_leaves_the_node_serving() {
    let place = Place::new("");
    let yaml =
        std::fs::read_to_string(&place.config).unwrap() + &http_yaml(&place.data, "http://127.0.0.1:9/mcp");
    std::fs::write(&place.config, yaml).unwrap();
    let node = enforce::start(place.settings()).await.unwrap();
    let url = format!("http://{}/mcp/everything", node.addr);
    let transport = via_http(&url, Some(&token("shadow-bot", None)));
    let long = json!([{"op": "callTool", "name": "trigger-long-running-operation", "arguments": {"duration": 30, "steps": 2}}]);
    let vanishing = start(&transport, long);
    let metrics = node.node.metrics.clone();
    let node_metrics = metrics.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(30), "the session", || {
            node_metrics
                .mcp_sessions
                .load(std::sync::atomic::Ordering::Relaxed)
                == 1
        })
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = vanishing.child.id();
    signal(pid, "KILL");
    let _ = tokio::task::spawn_blocking(move || vanishing.finish(Duration::from_secs(10))).await;
    let steps = tokio::task::spawn_blocking(move || {
        run(
            &transport,
            json!([{"op": "callTool", "name": "echo", "arguments": {"message": "next"}}]),
        )
    })
    .await
    .unwrap();
    assert_eq!(text(step(&steps, "callTool", 0)), "Echo: next", "{steps:?}");
    assert_eq!(metrics.mcp_sessions.load(std::sync::atomic::Ordering::Relaxed), 2);
    node.stop().await;
}
