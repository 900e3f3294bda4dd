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
