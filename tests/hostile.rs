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
