//! `shadowdraft serve` end to end, with real parts: the real router over
//! loopback, a real SQLite file, real git (a bare repository behind `git
//! http-backend` that demands the installation token), the real Cedar engine,
//! and GitHub faked at the HTTP level (responses from its OpenAPI examples,
//! App JWTs verified with the App's public key).

mod common;

use common::git_bridge::git;
use common::http::{eventually, get, request};
use common::rig::*;
use serde_json::json;
use shadowdraft::core::check::check;
use shadowdraft::serve as server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_become_one_pull_request_that_updates_and_respects_human_commits() {
    let rig = Rig::new();
    let running = server::start(rig.settings()).await.unwrap();
    let branch = format!("shadowdraft/{AGENT}");

    // 1. A batch → exactly one PR with the evidence, labels, reviewers and a check run.
    let first = batch(emails(12));
    let reply = post(&running, &first, Some("batch-1")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    eventually(30, "a PR", || {
        rig.github.pulls().len() == 1 && queue_empty(&running)
    })
    .await;
    let pr = rig.github.pull(1).unwrap();
    assert_eq!(pr.head, branch);
    assert_eq!(pr.base, "main");
    assert!(pr.body.contains("| argument | role | rung |"), "{}", pr.body);
    assert!(pr.body.contains("<!-- shadowdraft:begin -->"));
    assert!(pr.body.contains("14-day window"));
    assert!(pr.labels.contains(&"shadowdraft".to_string()));
    assert_eq!(pr.reviewers, vec!["alice".to_string()]);
    assert_eq!(pr.teams, vec!["security".to_string()]);
    let head = rig.tip(&branch);
    let runs = rig.github.check_runs();
    assert!(
        runs.iter().any(|r| r.name == "shadowdraft/verify"
            && r.head_sha == head
            && r.conclusion.as_deref() == Some("success")),
        "{runs:?}"
    );
    // The branch holds policy that `shadowdraft check` passes for the observed calls.
    let report = check(&rig.files_at(&branch), Some(&summary_of(&first)));
    assert!(report.passed(), "{report:?}");
    // The bot never wrote main.
    assert_eq!(
        git(&rig.bare, &["log", "--format=%s", "main"]).unwrap(),
        "Initial policies"
    );

    // 2. A retried batch counts once; a new batch updates the same PR.
    let again = post(&running, &first, Some("batch-1")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    let second = batch(json!([
        {"agent": AGENT, "tool": "search_docs", "server": "docs", "args": {"query": "refund policy"}}
    ]));
    assert_eq!(post(&running, &second, Some("batch-2")).await.status, 202);
    eventually(30, "the PR updated", || {
        rig.github.pull(1).unwrap().body.contains("search_docs") && queue_empty(&running)
    })
    .await;
    assert_eq!(rig.github.pulls().len(), 1, "never a second PR");
    assert_eq!(rig.github.count("POST", "/repos/acme/agent-policies/pulls"), 1);
    assert_ne!(rig.tip(&branch), head, "the branch moved to the new draft");

    // 3. A person pushes to the branch: the bot stops rewriting it and comments instead.
    let work = rig.dir.path().join("work");
    let token = rig.github.tokens_issued().last().unwrap().token.clone();
    let url = rig.bridge.authed_url("policies", &token);
    git(
        rig.dir.path(),
        &[
            "clone",
            "--quiet",
            "--branch",
            &branch,
            &url,
            work.to_str().unwrap(),
        ],
    )
    .unwrap();
    let file = work.join(format!("policies/agents/{AGENT}.cedar"));
    let tightened = std::fs::read_to_string(&file).unwrap() + "\n// reviewed by alice\n";
    std::fs::write(&file, tightened).unwrap();
    git(&work, &["commit", "--quiet", "-am", "Tighten send_email"]).unwrap();
    git(&work, &["push", "--quiet", "origin", &branch]).unwrap();
    let human_tip = rig.tip(&branch);

    let third = batch(json!([
        {"agent": AGENT, "tool": "create_ticket", "server": "zendesk", "args": {"title": "Printer on fire", "priority": 2}}
    ]));
    assert_eq!(post(&running, &third, Some("batch-3")).await.status, 202);
    eventually(30, "an evidence comment", || {
        rig.github
            .comments(1)
            .iter()
            .any(|c| c.body.contains("create_ticket"))
            && queue_empty(&running)
    })
    .await;
    assert_eq!(rig.tip(&branch), human_tip, "the human commit is not overwritten");
    let comments = rig.github.comments(1);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("Test Author"), "{}", comments[0].body);

    // The same evidence again does not comment twice.
    running.app.ctx.store.lock().unwrap().queue(AGENT, 0).unwrap();
    running.app.ctx.wake.notify_one();
    eventually(30, "the job ran", || queue_empty(&running)).await;
    assert_eq!(rig.github.comments(1).len(), 1);

    let listed = get(&format!("http://{}/v1/proposals", running.addr)).await.json();
    assert_eq!(listed["proposals"][0]["agent"], AGENT);
    assert_eq!(listed["proposals"][0]["pull_request"]["number"], 1);
    let metrics = get(&format!("http://{}/metrics", running.addr)).await.body;
    assert!(metrics.contains("shadowdraft_prs_opened_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("shadowdraft_batches_duplicate_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shadowdraft_calls_ingested_total 14\n"),
        "{metrics}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_failures_are_retried_and_a_queued_job_survives_a_restart() {
    let rig = Rig::new();
    // GitHub fails every attempt of the first job (the client tries 4 times).
    rig.github
        .fail_next("POST /repos/acme/agent-policies/pulls", 502, None, 4);
    let running = server::start(rig.settings()).await.unwrap();
    assert_eq!(post(&running, &batch(emails(3)), None).await.status, 202);
    eventually(30, "the job to fail", || {
        running.app.ctx.metrics.jobs_failed() == 1
    })
    .await;
    assert!(rig.github.pulls().is_empty());
    assert!(!queue_empty(&running), "the failed job stays queued");
    let metrics = get(&format!("http://{}/metrics", running.addr)).await.body;
    assert!(
        metrics.contains("shadowdraft_github_errors_total{status=\"502\"} 4\n"),
        "{metrics}"
    );
    running.stop().await;

    // Restart on the same data: the queued job runs and lands exactly one PR.
    let running = server::start(rig.settings()).await.unwrap();
    eventually(30, "the PR after restart", || {
        rig.github.pulls().len() == 1 && queue_empty(&running)
    })
    .await;
    assert_eq!(rig.github.pulls().len(), 1);
    running.stop().await;

    // A 502 that GitHub sends after creating the PR is not a reason for a second PR.
    let rig = Rig::new();
    rig.github
        .fail_next_after_processing("POST /repos/acme/agent-policies/pulls", 502, 1);
    let running = server::start(rig.settings()).await.unwrap();
    assert_eq!(post(&running, &batch(emails(2)), None).await.status, 202);
    eventually(30, "one PR", || {
        rig.github.pulls().len() == 1 && queue_empty(&running)
    })
    .await;
    assert_eq!(rig.github.pulls().len(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors_and_lose_nothing() {
    let rig = Rig::new();
    let running = server::start(rig.settings()).await.unwrap();
    let url = format!("http://{}/v1/observations", running.addr);
    let good = batch(emails(1)).to_string().into_bytes();

    let missing = request("POST", &url, &[], good.clone()).await;
    assert_eq!(missing.status, 401);
    assert!(missing.headers.contains_key("www-authenticate"));
    let expired = shadowdraft::auth::hs256_token(SECRET.as_bytes(), "shadowdraft", "n", 1_000);
    let reply = request(
        "POST",
        &url,
        &[("authorization", &format!("Bearer {expired}"))],
        good.clone(),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert!(reply.json()["message"].as_str().unwrap().contains("expired"));
    let forged = shadowdraft::auth::hs256_token(
        b"not-the-secret-not-the-secret-xx",
        "shadowdraft",
        "n",
        u64::MAX / 2,
    );
    let reply = request(
        "POST",
        &url,
        &[("authorization", &format!("Bearer {forged}"))],
        good.clone(),
    )
    .await;
    assert_eq!(reply.status, 401);

    let auth = format!("Bearer {}", token());
    let big = batch(emails(2_000)).to_string().into_bytes();
    let reply = request("POST", &url, &[("authorization", &auth)], big).await;
    assert_eq!(reply.status, 413);
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("max_body_bytes"));

    let malformed = batch(json!([
        {"agent": AGENT, "tool": "send_email", "args": {}},
        {"agent": AGENT, "args": {}}
    ]));
    let reply = request(
        "POST",
        &url,
        &[("authorization", &auth)],
        malformed.to_string().into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 400);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("calls[1].tool"), "{message}");
    let reply = request("POST", &url, &[("authorization", &auth)], b"{not json".to_vec()).await;
    assert_eq!(reply.status, 400);

    // Nothing was stored by the refused requests, and a valid one still goes through.
    assert_eq!(running.app.ctx.metrics.calls_ingested(), 0);
    let reply = request("POST", &url, &[("authorization", &auth)], good).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(running.app.ctx.metrics.calls_ingested(), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_batches_survive_a_restart_without_a_checkpoint() {
    let rig = Rig::new();
    let mut settings = rig.settings();
    // Keep the job from running so only the store carries the batch over.
    settings.drafting.debounce_seconds = 3_600;
    let running = server::start(settings.clone()).await.unwrap();
    assert_eq!(post(&running, &batch(emails(5)), Some("k")).await.status, 202);
    running.stop().await;
    let running = server::start(settings).await.unwrap();
    let summary = {
        let span = shadowdraft::core::window::span(shadowdraft::clock::now(), 14);
        running.app.ctx.window.lock().unwrap().summary(AGENT, span)
    };
    assert_eq!(summary.calls, 5);
    // The retry after the restart is still recognised.
    assert_eq!(post(&running, &batch(emails(5)), Some("k")).await.status, 200);
    assert_eq!(running.app.ctx.store.lock().unwrap().queue_depth().unwrap(), 1);
    running.stop().await;
}
