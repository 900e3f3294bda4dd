//! `shadowdraft serve` end to end, with real parts: the real router over
//! loopback, a real SQLite file, real git (a bare repository behind `git
//! http-backend` that demands the installation token), the real Cedar engine,
//! and GitHub faked at the HTTP level (responses from its OpenAPI examples,
//! App JWTs verified with the App's public key).

mod common;

use common::git_bridge::git;
use common::http::request;
use common::rig::*;
use serde_json::json;
use shadowdraft::core::check::check;

fn branch() -> String {
    format!("shadowdraft/{AGENT}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_becomes_one_pull_request_with_evidence_reviewers_and_a_check() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let calls = emails(12);
    let reply = bot.observe_keyed("batch-1", calls.clone()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    bot.idle().await;

    assert_eq!(rig.github.pulls().len(), 1);
    let pr = rig.github.pull(1).unwrap();
    assert_eq!(pr.head, branch());
    assert_eq!(pr.base, "main");
    assert!(pr.body.contains("| argument | role | rung |"), "{}", pr.body);
    assert!(pr.body.contains("<!-- shadowdraft:begin -->"));
    assert!(pr.body.contains("14-day window"));
    assert!(pr.labels.contains(&"shadowdraft".to_string()));
    assert_eq!(pr.reviewers, vec!["alice".to_string()]);
    assert_eq!(pr.teams, vec!["security".to_string()]);
    let head = rig.tip(&branch());
    let runs = rig.github.check_runs();
    assert!(
        runs.iter().any(|r| r.name == "shadowdraft/verify"
            && r.head_sha == head
            && r.conclusion.as_deref() == Some("success")),
        "{runs:?}"
    );
    // The branch holds policy that `shadowdraft check` passes for the observed calls.
    let report = check(&rig.files_at(&branch()), Some(&summary_of(&batch(calls))));
    assert!(report.passed(), "{report:?}");
    // The bot never wrote main.
    assert_eq!(
        git(&rig.bare, &["log", "--format=%s", "main"]).unwrap(),
        "Initial policies"
    );
    let status = bot.agent(AGENT).await;
    assert_eq!(status["proposal"]["number"], 1);
    assert_eq!(status["calls_in_window"], 12);
    assert_eq!(bot.metric("shadowdraft_prs_opened_total").await, Some(1.0));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_counts_once_and_new_evidence_updates_the_same_pull_request() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    assert_eq!(bot.observe_keyed("batch-1", emails(12)).await.status, 202);
    bot.idle().await;
    let head = rig.tip(&branch());

    let again = bot.observe_keyed("batch-1", emails(12)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    let search = json!([{"agent": AGENT, "tool": "search_docs", "server": "docs", "args": {"query": "refund policy"}}]);
    assert_eq!(bot.observe_keyed("batch-2", search).await.status, 202);
    bot.idle().await;

    assert!(rig.github.pull(1).unwrap().body.contains("search_docs"));
    assert_eq!(rig.github.pulls().len(), 1, "never a second PR");
    assert_eq!(rig.github.count("POST", "/repos/acme/agent-policies/pulls"), 1);
    assert_ne!(rig.tip(&branch()), head, "the branch moved to the new draft");
    assert_eq!(bot.metric("shadowdraft_batches_duplicate_total").await, Some(1.0));
    assert_eq!(bot.metric("shadowdraft_calls_ingested_total").await, Some(13.0));
    assert_eq!(bot.metric("shadowdraft_prs_updated_total").await, Some(1.0));
    let listed = request("GET", &bot.url("/v1/proposals"), &[], Vec::new())
        .await
        .json();
    assert_eq!(listed["proposals"][0]["agent"], AGENT);
    assert_eq!(listed["proposals"][0]["pull_request"]["number"], 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_person_pushes_to_the_branch_the_bot_comments_instead_and_only_once() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(3)).await.status, 202);
    bot.idle().await;
    let file = format!("policies/agents/{AGENT}.cedar");
    let human_tip = rig.commit_on(&branch(), &file, "\n// reviewed by alice\n", "Tighten send_email");

    let ticket = json!([{"agent": AGENT, "tool": "create_ticket", "server": "zendesk",
                         "args": {"title": "Printer on fire", "priority": 2}}]);
    assert_eq!(bot.observe(ticket).await.status, 202);
    bot.idle().await;
    assert_eq!(
        rig.tip(&branch()),
        human_tip,
        "the human commit is not overwritten"
    );
    let comments = rig.replies(1);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].contains("create_ticket") && comments[0].contains("Test Author"),
        "{}",
        comments[0]
    );

    // The base branch moved (GitHub says so): a redraft with the same evidence comments no more.
    assert_eq!(bot.pushed("main").await.status, 202);
    bot.idle().await;
    assert_eq!(rig.replies(1).len(), 1);
    assert_eq!(bot.metric("shadowdraft_comments_total").await, Some(1.0));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_main_redrafts_open_proposals_on_the_new_base() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(3)).await.status, 202);
    bot.idle().await;
    let base_before = rig.tip("main");
    let main = rig.commit_on("main", "README.md", "More about the policies.\n", "Docs");
    assert_ne!(main, base_before);
    assert_eq!(bot.pushed("main").await.status, 202);
    bot.idle().await;
    let parent = git(&rig.bare, &["rev-parse", &format!("{}^", branch())]).unwrap();
    assert_eq!(parent, main, "the proposal was rebuilt on the new main");
    assert_eq!(rig.github.pulls().len(), 1);
    // A push to another branch changes nothing.
    let tip = rig.tip(&branch());
    assert_eq!(bot.pushed("feature").await.status, 202);
    bot.idle().await;
    assert_eq!(rig.tip(&branch()), tip);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_github_fails_stays_queued_and_lands_after_a_restart() {
    let rig = Rig::new();
    // GitHub fails every attempt of the first job (the client tries 4 times).
    rig.github
        .fail_next("POST /repos/acme/agent-policies/pulls", 502, None, 4);
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(3)).await.status, 202);
    bot.idle().await;
    assert_eq!(bot.metric("shadowdraft_jobs_failed_total").await, Some(1.0));
    assert!(rig.github.pulls().is_empty());
    let status = bot.agent(AGENT).await;
    assert!(
        status["job"]["last_error"].as_str().unwrap().contains("502"),
        "the failed job stays queued with its error: {status}"
    );
    assert_eq!(
        bot.metric("shadowdraft_github_errors_total{status=\"502\"}")
            .await,
        Some(4.0)
    );
    bot.stop().await;

    // Restart on the same data: the queued job runs and lands exactly one PR.
    let bot = rig.bot().await;
    // The failed job waits out its backoff (5 s) before it is due again.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    bot.idle().await;
    assert_eq!(rig.github.pulls().len(), 1);
    assert!(bot.agent(AGENT).await["job"].is_null(), "nothing left queued");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_sent_after_github_created_the_pull_request_makes_no_second_one() {
    let rig = Rig::new();
    rig.github
        .fail_next_after_processing("POST /repos/acme/agent-policies/pulls", 502, 1);
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(2)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.github.pulls().len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors_and_lose_nothing() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let url = bot.url("/v1/observations");
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
    assert_eq!(bot.metric("shadowdraft_calls_ingested_total").await, Some(0.0));
    let reply = request("POST", &url, &[("authorization", &auth)], good).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(bot.metric("shadowdraft_calls_ingested_total").await, Some(1.0));
    // The agent status needs a token too.
    let anonymous = request("GET", &bot.url(&format!("/v1/agents/{AGENT}")), &[], Vec::new()).await;
    assert_eq!(anonymous.status, 401);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_batches_survive_a_restart_without_a_checkpoint() {
    let rig = Rig::new();
    let mut settings = rig.settings();
    // Keep the job from running so only the store carries the batch over.
    settings.drafting.debounce_seconds = 3_600;
    let bot = rig.bot_with(settings.clone()).await;
    assert_eq!(bot.observe_keyed("k", emails(5)).await.status, 202);
    bot.stop().await;
    let bot = rig.bot_with(settings).await;
    let status = bot.agent(AGENT).await;
    assert_eq!(status["calls_in_window"], 5);
    // The retry after the restart is still recognised, and the job is still queued.
    assert_eq!(bot.observe_keyed("k", emails(5)).await.status, 200);
    assert!(bot.agent(AGENT).await["job"].is_object());
    bot.stop().await;
}
