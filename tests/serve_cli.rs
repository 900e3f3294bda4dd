//! The `shadowdraft serve` binary as a user runs it: the README quickstart on
//! the embedded default, and a crash (SIGKILL) that must lose no accepted batch.

mod common;

use common::http::{get, request};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn serve(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shadowdraft"))
        .current_dir(dir)
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "warn")
        .env("TEST_INGEST_SECRET", "a-secret-for-this-test-of-32-bytes!")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shadowdraft serve")
}

/// Read stdout lines until one contains `marker`; returns everything read.
fn read_until(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut out = String::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            out.push_str(&line);
            out.push('\n');
            if line.contains(marker) {
                return out;
            }
        }
    }
    panic!("no `{marker}` in the output:\n{out}");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap()
}

#[test]
fn quickstart_shows_the_whole_loop_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(dir.path(), &["--example", "--listen", "127.0.0.1:0"]);
    let out = read_until(&mut child, "Stop with Ctrl-C");
    assert!(out.contains("Generated an ingest key"), "{out}");
    assert!(out.contains("curl -X POST http://127.0.0.1:"), "{out}");
    assert!(out.contains("Posted 1800 example calls of 6 agents"), "{out}");
    assert_eq!(out.matches("  #").count(), 6, "one proposal per agent:\n{out}");
    let addr = out
        .split("shadowdraft serving on http://")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let listed = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(get(&format!("http://{addr}/v1/proposals")))
        .json();
    assert_eq!(listed["proposals"].as_array().unwrap().len(), 6);
    assert_eq!(listed["proposals"][5]["branch"], "shadowdraft/support-bot-001");
    let body =
        std::fs::read_to_string(dir.path().join("shadowdraft-data/proposals/support-bot-001.md")).unwrap();
    assert_eq!(listed["proposals"][5]["body"].as_str().unwrap(), body);
    assert!(body.contains("| argument | role | rung |"), "{body}");
    let key = std::fs::metadata(dir.path().join("shadowdraft-data/ingest.key")).unwrap();
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    assert!(terminate(&mut child).success(), "a graceful stop exits 0");

    // A second run reuses the key, does not print it, and counts the example once.
    let mut child = serve(dir.path(), &["--example", "--listen", "127.0.0.1:0"]);
    let out = read_until(&mut child, "Stop with Ctrl-C");
    assert!(!out.contains("Generated an ingest key"), "{out}");
    assert_eq!(
        out.matches("  #").count(),
        6,
        "still one proposal per agent:\n{out}"
    );
    assert!(terminate(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shadowdraft.yaml"),
        "listen: 127.0.0.1:0\ningest: {hs256_secret_env: TEST_INGEST_SECRET}\ndrafting: {debounce_seconds: 3600}\n",
    )
    .unwrap();
    let start = |dir: &Path| {
        let mut child = serve(dir, &[]);
        let out = read_until(&mut child, "shadowdraft serving on http://");
        let addr = out.rsplit("http://").next().unwrap().trim().to_string();
        (child, addr)
    };
    let (mut child, addr) = start(dir.path());
    let token = shadowdraft::auth::hs256_token(
        b"a-secret-for-this-test-of-32-bytes!",
        "shadowdraft",
        "node-1",
        shadowdraft::clock::now() as u64 + 300,
    );
    let auth = format!("Bearer {token}");
    let body = serde_json::json!({"source": "n", "calls": [
        {"agent": "a", "tool": "t", "args": {"x": 1}},
        {"agent": "a", "tool": "t", "args": {"x": 2}, "count": 41}
    ]});
    let reply = request(
        "POST",
        &format!("http://{addr}/v1/observations"),
        &[("authorization", &auth)],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // No time for a checkpoint: the batch exists only in the journal.
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, addr) = start(dir.path());
    let metrics = get(&format!("http://{addr}/metrics")).await.body;
    assert!(metrics.contains("shadowdraft_window_shapes 2\n"), "{metrics}");
    assert!(metrics.contains("shadowdraft_queue_depth 1\n"), "{metrics}");
    assert!(terminate(&mut child).success());
}

#[test]
fn an_invalid_config_stops_serve_before_it_starts_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shadowdraft.yaml"),
        "ingest:\n  max_body_bytes: lots\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shadowdraft"))
        .current_dir(dir.path())
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingest.max_body_bytes"), "{stderr}");
    assert!(
        !dir.path().join("shadowdraft-data").exists(),
        "nothing was created"
    );
}
