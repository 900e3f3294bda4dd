//! `serve --example`: feed the bundled example fleet to the running service
//! through its own HTTP endpoint, then show what it proposed.

use crate::core::observation::{parse_line, Line, Origin};
use crate::serve::Running;
use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Six agents' observed calls (examples/fleet/train.jsonl), compiled in.
const EXAMPLE: &str = include_str!("../../examples/fleet/train.jsonl");
const BATCH: usize = 500;

pub async fn run(running: &Running) -> anyhow::Result<()> {
    let app = &running.app;
    let settings = &app.ctx.settings;
    let secret = settings
        .ingest
        .hs256_secret
        .clone()
        .or_else(|| app.generated_key.clone())
        .context("--example signs its requests with the HS256 ingest key; none is configured")?;
    let token = crate::auth::hs256_token(
        &secret,
        &settings.ingest.audience,
        "example",
        (crate::clock::now() + 600) as u64,
    );
    let mut calls = Vec::new();
    for (i, line) in EXAMPLE.lines().enumerate() {
        let origin = Origin {
            source: "example".into(),
            line: Some(i + 1),
        };
        if let Line::Call(_) = parse_line(&origin, line)? {
            calls.push(line);
        }
    }
    let agents = {
        let mut a: Vec<String> = calls
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["agent"].as_str().map(str::to_string))
            .collect();
        a.sort();
        a.dedup();
        a
    };

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("http://{}/v1/observations", running.addr);
    for (n, chunk) in calls.chunks(BATCH).enumerate() {
        let body = format!(r#"{{"source":"example-node","calls":[{}]}}"#, chunk.join(","));
        let request = hyper::Request::post(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bundled-example-{n}"))
            .body(Full::new(Bytes::from(body)))?;
        let response = client
            .request(request)
            .await
            .context("cannot reach the service")?;
        let status = response.status();
        let text = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "the service refused example batch {n}: {status} {}",
                String::from_utf8_lossy(&text)
            );
        }
    }
    println!(
        "Posted {} example calls of {} agents to {url}; drafting…",
        calls.len(),
        agents.len()
    );

    if tokio::time::timeout(Duration::from_secs(120), running.idle())
        .await
        .is_err()
    {
        bail!("the agents are still being drafted after 2 minutes");
    }
    let proposals = app.ctx.store.local_pulls().await?;
    println!("\nProposals (GET http://{}/v1/proposals):", running.addr);
    for p in &proposals {
        println!(
            "  #{} {}  [{}]\n     branch {}: {}",
            p.number,
            p.title,
            p.state,
            p.branch,
            body_path(settings, &p.agent)
        );
    }
    println!(
        "\nThe drafted rules are commits on shadowdraft/* branches of {}.\nStop with Ctrl-C.",
        settings.data_dir.join("policy-repo.git").display()
    );
    Ok(())
}

fn body_path(settings: &crate::config::Settings, agent: &str) -> String {
    settings
        .data_dir
        .join("proposals")
        .join(format!("{}.md", crate::core::names::safe_name(agent)))
        .display()
        .to_string()
}
