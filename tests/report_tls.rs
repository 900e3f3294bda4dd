//! The node reports to the bot over TLS: a real TLS server on loopback (a
//! certificate made here with rcgen, served by tokio-rustls in front of the
//! real bot), trusted through `enforce.tls_ca_path`, and refused without it.

mod common;

use common::http::eventually;
use common::mcp::wait_for;
use common::rig::{Rig, SECRET};
use shadowdraft::config::Config;
use shadowdraft::enforce::{self, NodeSettings};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// TLS on `127.0.0.1:<port>` for the name `localhost`, passed on as plain TCP to `backend`.
async fn tls_front(backend: SocketAddr) -> (SocketAddr, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = rustls::pki_types::CertificateDer::from(certified.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, cert_pem)
}

fn node_settings(rig: &Rig, name: &str, report_url: &str, ca: Option<&std::path::Path>) -> NodeSettings {
    let ca = ca
        .map(|p| format!("  tls_ca_path: {}\n", p.display()))
        .unwrap_or_default();
    let yaml = format!(
        "data_dir: {}\npolicy_repo: {{url: {}}}\nenforce:\n  listen: 127.0.0.1:0\n  flush_seconds: 1\n  report_url: {report_url}\n  report_hs256_secret_env: TEST_INGEST_SECRET\n{ca}",
        rig.dir.path().join(name).display(),
        rig.bare.display(),
    );
    let config = Config::parse("node.yaml", &yaml).unwrap();
    let mut settings =
        NodeSettings::from_config(&config, "node.yaml", &|_| Some(SECRET.to_string())).unwrap();
    settings.retry_max = Duration::from_millis(200);
    settings
}

fn call(agent: &str) -> Vec<u8> {
    serde_json::json!({"subject": {"type": "agent", "id": agent}, "action": {"name": "send_email"},
        "resource": {"type": "mcp_server", "id": "gmail"}, "context": {"input": {"to": "a@adatum.com"}}})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reach_the_bot_over_tls_with_the_configured_ca_and_not_without_it() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let (front, cert_pem) = tls_front(bot.running.addr).await;
    let ca = rig.dir.path().join("ca.pem");
    std::fs::write(&ca, cert_pem).unwrap();
    let url = format!("https://localhost:{}/v1/observations", front.port());

    // Without the CA the bot's certificate is not trusted: nothing is sent, the batch waits.
    let untrusting = enforce::start(node_settings(&rig, "untrusting", &url, None))
        .await
        .unwrap();
    untrusting.node.evaluation(&call("tls-agent-untrusted")).unwrap();
    let metrics = untrusting.node.metrics.clone();
    wait_for(Duration::from_secs(20), "a failed attempt", || {
        metrics.batches_failed.load(Relaxed) > 0
    });
    assert_eq!(metrics.batches_sent.load(Relaxed), 0);
    assert_eq!(
        untrusting.node.feedback.spool().depth(),
        1,
        "the batch stays spooled"
    );
    untrusting.stop().await;

    let node = enforce::start(node_settings(&rig, "trusting", &url, Some(&ca)))
        .await
        .unwrap();
    node.node.evaluation(&call("tls-agent")).unwrap();
    let metrics = node.node.metrics.clone();
    eventually(20, "the batch sent over TLS", || {
        metrics.batches_sent.load(Relaxed) == 1
    })
    .await;
    bot.idle().await;
    let agent = bot.agent("tls-agent").await;
    assert_eq!(agent["calls_in_window"], 1, "{agent}");
    node.stop().await;
    bot.stop().await;
}
