//! Hostile input and unlucky operators, from outside: each test is one way
//! of attacking or misusing the bot or the node, and what must hold after.

mod common;

use common::http::get;
use common::rig::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_cannot_starve_the_server() {
    let rig = Rig::new();
    let mut settings = rig.settings();
    settings.http.header_timeout = Duration::from_secs(1);
    settings.http.max_connections = 64;
    let bot = rig.bot_with(settings).await;
    let addr = bot.running.addr;
    // 100 clients that send half a request head and then nothing.
    let slow: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /v1/observations HTTP/1.1\r\nHost: bot\r\nContent-Le")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let health = get(&bot.url("/healthz")).await;
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "health waited {:?}",
        started.elapsed()
    );
    // Every slow connection is closed by the server (EOF or reset), not held open.
    let closed = tokio::task::spawn_blocking(move || {
        slow.into_iter()
            .filter(|s| {
                let mut s = s.try_clone().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => s.read(&mut buf).map(|n| n == 0).unwrap_or(true),
                    Err(e) => !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 100, "every half-sent request is cut off");
    assert_eq!(
        bot.observe(emails(1)).await.status,
        202,
        "and the bot still serves"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_nodes_send_for_metrics_labels_is_validated_and_bounded() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let label = serde_json::json!({"source": "x\"} 1\nshadowdraft_evil 1", "calls": []});
    let reply = bot.report(&label).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"].as_str().unwrap().contains("source"),
        "{}",
        reply.body
    );
    let commit = serde_json::json!({"source": "node-1", "policy_commit": "not a commit", "calls": []});
    let reply = bot.report(&commit).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("policy_commit"),
        "{}",
        reply.body
    );
    for i in 0..300 {
        let body =
            serde_json::json!({"source": format!("node-{i}"), "policy_commit": "abcdef1", "calls": []});
        assert_eq!(bot.report(&body).await.status, 202);
    }
    let metrics = bot.metrics().await;
    assert!(!metrics.contains("shadowdraft_evil"));
    assert_eq!(bot.metric("shadowdraft_nodes_reporting").await, Some(300.0));
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("shadowdraft_node_policy_commit{"))
        .count();
    assert_eq!(series, shadowdraft::bot::metrics::MAX_NODE_SERIES);
    bot.stop().await;
}

/// Bytes of every file of the bot's SQLite database (the database, its WAL, its index).
fn database_bytes(data: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("shadowdraft.db")
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_observed_arguments_are_not_left_in_the_database_files() {
    let rig = Rig::new();
    let mut settings = rig.settings();
    settings.drafting.debounce_seconds = 3_600;
    let data = settings.data_dir.clone();
    let bot = rig.bot_with(settings).await;
    let stripe = "sk_live_51HqLyjWDarjtT1zdp7dc4kL9mQ2xVbN8rT5yU3iO";
    let pem_line = "MIIEowIBAAKCAQEA7bq98YQv1VZ3kNr5nQ2xVbN8rT5yU3iO51HqLyjWDarjtT1z";
    let password = "hunter2-correct-horse";
    let card = "4111111111111111";
    // A secret can arrive as an argument's name, too.
    let name_secret = "ghp_R2xvYmFsU2VjcmV0VG9rZW5Gb3JUZXN0aW5nMTIz";
    let calls = serde_json::json!([
        {"agent": AGENT, "tool": "charge", "server": "stripe",
         "args": {"api_key": stripe, "card": card, "amount": 12, name_secret: true}},
        {"agent": AGENT, "tool": "fetch", "server": "web",
         "args": {"url": format!("https://deploy:{password}@git.adatum.com/repo.git")}},
        {"agent": AGENT, "tool": "upload_key", "server": "vault",
         "args": {"key": format!("-----BEGIN RSA PRIVATE KEY-----\n{pem_line}\n-----END RSA PRIVATE KEY-----")}}
    ]);
    for _ in 0..50 {
        assert_eq!(bot.observe(calls.clone()).await.status, 202);
    }
    // The folder checkpoints every two seconds: the raw batches are deleted then.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let secrets = [stripe, pem_line, password, card, name_secret];
    for (file, bytes) in database_bytes(&data) {
        for secret in secrets {
            assert!(!holds(&bytes, secret), "{file} holds {secret} while the bot runs");
        }
    }
    assert_eq!(
        bot.agent(AGENT).await["calls_in_window"],
        150,
        "nothing acknowledged was lost"
    );
    bot.stop().await;
    let files = database_bytes(&data);
    assert!(!files.is_empty());
    for (file, bytes) in files {
        for secret in secrets {
            assert!(
                !holds(&bytes, secret),
                "{file} holds {secret} after a clean shutdown"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_sent_as_an_argument_name_reaches_no_schema_rule_or_pull_request() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let token_name = "ghp_R2xvYmFsU2VjcmV0VG9rZW5Gb3JUZXN0aW5nMTIz";
    let calls: Vec<_> = (0..12)
        .map(|i| {
            serde_json::json!({"agent": AGENT, "tool": "search", "server": "crm",
                "args": {token_name: "x", "query": format!("ticket {i}")}})
        })
        .collect();
    assert_eq!(bot.observe(serde_json::Value::Array(calls)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.open_pulls(), 1, "the call is still drafted from");
    let files = rig.files_at(&format!("shadowdraft/{AGENT}"));
    let schema = files.schema.clone().unwrap();
    assert!(!schema.contains(token_name), "{schema}");
    for (path, text) in &files.agents {
        assert!(!text.contains(token_name), "{path}: {text}");
    }
    for pull in rig.github.pulls() {
        assert!(!pull.body.contains(token_name), "{}", pull.body);
    }
    bot.stop().await;
}
