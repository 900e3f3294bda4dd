//! The review loop end to end: real webhook payloads (`@octokit/webhooks-examples`),
//! signed as GitHub signs them, through the real router and worker, against the
//! stateful fake GitHub and a real bare repository. Each test is one thing a
//! reviewer does and what the bot does about it.

mod common;

use common::git_bridge::git;
use common::http::{eventually, request};
use common::rig::*;
use serde_json::json;
use shadowdraft::core::check::check;

fn branch() -> String {
    format!("shadowdraft/{AGENT}")
}

/// The bot with one open proposal (#1) for four emails.
async fn with_a_proposal(rig: &Rig) -> Bot<'_> {
    rig.github.set_permission("alice", "write");
    rig.github.set_permission("mallory", "read");
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(4)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.open_pulls(), 1);
    bot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_proposal_turns_its_rules_down_and_deletes_the_branch() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    assert_eq!(bot.close(1).await.status, 202);
    bot.idle().await;
    assert!(
        git(&rig.bare, &["rev-parse", "--verify", &branch()]).is_err(),
        "branch deleted"
    );
    let status = bot.agent(AGENT).await;
    assert_eq!(status["turned_down"].as_array().unwrap().len(), 1, "{status}");
    assert!(status["proposal"].is_null());

    // More of the same calls: not proposed again.
    assert_eq!(bot.observe(emails(1)).await.status, 202);
    bot.idle().await;
    assert_eq!(
        rig.github.pulls().len(),
        1,
        "no second proposal for the same evidence"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redraft_command_brings_a_turned_down_rule_back() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    bot.close(1).await;
    bot.idle().await;
    assert_eq!(
        bot.comment_as("alice", 1, "/shadowdraft redraft").await.status,
        202
    );
    bot.idle().await;
    assert_eq!(rig.open_pulls(), 1);
    assert_eq!(rig.github.pulls().len(), 2);
    assert_replied(&rig, 1, "Redrafting");
    assert!(bot.agent(AGENT).await["turned_down"]
        .as_array()
        .unwrap()
        .is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_calls_again_after_a_close_propose_nothing() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    bot.close(1).await;
    bot.idle().await;
    // The calls behind the closed rule come again: twice the evidence, the same rule.
    assert_eq!(bot.observe(emails(4)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.open_pulls(), 0);
    assert_eq!(
        rig.github.pulls().len(),
        1,
        "a closed proposal means: not this rule"
    );
    let status = bot.agent(AGENT).await;
    assert_eq!(status["turned_down"].as_array().unwrap().len(), 1, "{status}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_rule_is_proposed_after_a_close() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    bot.close(1).await;
    bot.idle().await;
    let searches = json!([
        {"agent": AGENT, "tool": "search_tickets", "server": "zendesk", "args": {"query": "refund for order 1"}},
        {"agent": AGENT, "tool": "search_tickets", "server": "zendesk", "args": {"query": "login loop"}},
    ]);
    assert_eq!(bot.observe(searches).await.status, 202);
    assert_eq!(bot.observe(emails(4)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.open_pulls(), 1);
    let pulls = rig.github.pulls();
    assert_eq!(pulls.len(), 2);
    let policy = &rig.files_at(&branch()).agents[&format!("policies/agents/{AGENT}.cedar")];
    assert!(policy.contains(r#"Action::"search_tickets""#), "{policy}");
    assert!(
        !policy.contains(r#"Action::"send_email""#),
        "the closed rule stays out: {policy}"
    );
    assert!(pulls[1].body.contains("Not proposed again"), "{}", pulls[1].body);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_promotes_the_rules_and_their_calls_stop_producing_drafts() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    let main = bot.merge(1).await;
    bot.idle().await;
    let status = bot.agent(AGENT).await;
    let promoted = status["promoted"].as_array().unwrap();
    assert!(
        !promoted.is_empty() && promoted.iter().all(|p| p["pull_request"] == 1),
        "{status}"
    );
    assert!(git(&rig.bare, &["rev-parse", "--verify", &branch()]).is_err());
    assert_eq!(rig.tip("main"), main);
    assert!(check(&rig.files_at("main"), Some(&summary_of(&batch(emails(4))))).passed());

    assert_eq!(bot.observe(emails(4)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.github.pulls().len(), 1, "main covers the calls now");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_delivery_is_acknowledged_and_done_once() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    let command = comment(1, "alice", "/shadowdraft help");
    assert_eq!(bot.redeliver("issue_comment", "d-1", &command).await.status, 202);
    bot.idle().await;
    let again = bot.redeliver("issue_comment", "d-1", &command).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    bot.idle().await;
    assert_eq!(rig.replies(1).len(), 1, "one reply per delivery");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_people_without_write_access_do_nothing() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    bot.comment_as("mallory", 1, "/shadowdraft ignore send_email")
        .await;
    bot.idle().await;
    assert_replied(&rig, 1, "only people with write access");
    assert!(rig.github.pull(1).unwrap().body.contains("send_email"));
    assert!(bot.agent(AGENT).await["ignored_tools"]
        .as_array()
        .unwrap()
        .is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_and_fenced_commands_are_not_commands_and_unknown_ones_get_the_list() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    let text = "> /shadowdraft ignore send_email\n```\n/shadowdraft redraft\n```\n/shadowdraft frobnicate";
    bot.comment_as("alice", 1, text).await;
    bot.idle().await;
    assert_replied(&rig, 1, "is not a shadowdraft command");
    assert_replied(&rig, 1, "/shadowdraft redraft");
    assert_eq!(rig.replies(1).len(), 1);
    assert!(bot.agent(AGENT).await["ignored_tools"]
        .as_array()
        .unwrap()
        .is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_answers_with_the_rules_evidence_from_comments_reviews_and_review_comments() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    let rule = format!("{AGENT}/send_email/1");
    let heading = format!("#### `{rule}`");
    bot.comment_as("alice", 1, &format!("/shadowdraft explain {rule}"))
        .await;
    bot.idle().await;
    assert_replied(&rig, 1, &heading);
    assert_replied(&rig, 1, "| argument |");

    bot.review_as(
        "alice",
        1,
        &format!("Looks right.\n\n/shadowdraft explain {rule}"),
    )
    .await;
    bot.idle().await;
    assert_eq!(rig.replies(1).len(), 2);
    assert_replied(&rig, 1, &heading);

    bot.review_comment_as("alice", 1, "/shadowdraft explain nobody/x/9")
        .await;
    bot.idle().await;
    assert_eq!(rig.replies(1).len(), 3);
    assert_replied(&rig, 1, "There is no rule `nobody/x/9`");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_a_tool_redrafts_the_proposal_without_it() {
    let rig = Rig::new();
    rig.github.set_permission("alice", "write");
    let bot = rig.bot().await;
    let calls = json!([
        {"agent": AGENT, "tool": "send_email", "server": "gmail", "args": {"to": "a@adatum.com", "subject": "s"}},
        {"agent": AGENT, "tool": "search_docs", "server": "docs", "args": {"query": "refunds"}}
    ]);
    assert_eq!(bot.observe(calls).await.status, 202);
    bot.idle().await;
    assert!(rig.github.pull(1).unwrap().body.contains("search_docs"));

    bot.comment_as("alice", 1, "/shadowdraft ignore search_docs")
        .await;
    bot.idle().await;
    assert_replied(&rig, 1, "will not be proposed again");
    let body = rig.github.pull(1).unwrap().body;
    assert!(body.contains("ignored by @alice"), "{body}");
    assert!(!body.contains("#### `support-bot-001/search_docs"), "{body}");
    let status = bot.agent(AGENT).await;
    assert_eq!(status["ignored_tools"][0]["tool"], "search_docs");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_must_be_signed_with_a_configured_secret() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let url = bot.url("/github/webhook");
    let body = closed(1, true).to_string().into_bytes();

    let unsigned = request(
        "POST",
        &url,
        &[("x-github-event", "pull_request"), ("x-github-delivery", "x")],
        body.clone(),
    )
    .await;
    assert_eq!(unsigned.status, 401);
    let forged = shadowdraft::serve::webhook::sign("not-the-secret", &body);
    let headers = [
        ("x-github-event", "pull_request"),
        ("x-github-delivery", "x"),
        ("x-hub-signature-256", forged.as_str()),
    ];
    assert_eq!(request("POST", &url, &headers, body.clone()).await.status, 401);
    // A rotated-in secret is accepted as well as the current one.
    let rotated = shadowdraft::serve::webhook::sign("a-rotated-out-secret", &body);
    let headers = [
        ("x-github-event", "ping"),
        ("x-github-delivery", "y"),
        ("x-hub-signature-256", rotated.as_str()),
    ];
    let reply = request("POST", &url, &headers, body).await;
    assert_eq!(reply.status, 202, "unknown events are acknowledged");
    assert!(reply.json()["ignored"].is_string());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_lacking_what_its_event_needs_is_refused_and_counted() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    let mut no_number = closed(1, false);
    no_number["pull_request"]
        .as_object_mut()
        .unwrap()
        .remove("number");
    let reply = bot.deliver("pull_request", &no_number).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"].as_str().unwrap().contains("pull_request"),
        "{}",
        reply.body
    );
    assert_eq!(bot.metric("shadowdraft_webhooks_rejected_total").await, Some(1.0));
    bot.idle().await;
    assert_eq!(rig.open_pulls(), 1, "nothing was closed, no PR #0 was touched");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installation_events_tell_which_repositories_the_app_serves() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let gauge = "shadowdraft_installations_serving_repository";
    assert_eq!(bot.metric(gauge).await, Some(0.0));
    let mut install = example("installation.created.json");
    install["repositories"][0]["full_name"] = json!("acme/agent-policies");
    assert_eq!(bot.deliver("installation", &install).await.status, 202);
    bot.idle().await;
    assert_eq!(bot.metric(gauge).await, Some(1.0));

    let mut removed = example("installation_repositories.removed.json");
    removed["installation"]["id"] = install["installation"]["id"].clone();
    removed["repositories_removed"][0]["full_name"] = json!("acme/agent-policies");
    assert_eq!(
        bot.deliver("installation_repositories", &removed).await.status,
        202
    );
    bot.idle().await;
    assert_eq!(bot.metric(gauge).await, Some(0.0));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_branch_without_code_owner_review_is_flagged_on_the_proposal() {
    let rig = Rig::new();
    rig.github.set_protection(None);
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(2)).await.status, 202);
    bot.idle().await;
    let body = rig.github.pull(1).unwrap().body;
    assert!(
        body.contains("> [!CAUTION]") && body.contains("does not require a code owner"),
        "{body}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_proposal_is_announced_once_every_node_has_loaded_it() {
    let rig = Rig::new();
    let bot = with_a_proposal(&rig).await;
    let before = rig.tip("main");
    let merged = bot.merge(1).await;
    bot.idle().await;

    let report = |node: &str, commit: &str| json!({"source": node, "policy_commit": commit, "calls": []});
    assert_eq!(bot.report(&report("node-a", &merged)).await.status, 202);
    assert_eq!(bot.report(&report("node-b", &before)).await.status, 202);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let announced = |rig: &Rig| rig.replies(1).iter().filter(|c| c.contains("Rolled out")).count();
    assert_eq!(announced(&rig), 0, "node-b still enforces the old commit");

    assert_eq!(bot.report(&report("node-b", &merged)).await.status, 202);
    // Rollouts are looked at every two seconds, not on an event.
    eventually(30, "the rollout comment", || announced(&rig) == 1).await;
    assert_replied(&rig, 1, "loaded by 2 of 2 enforcement nodes");
    let line = format!("shadowdraft_node_policy_commit{{node=\"node-b\",commit=\"{merged}\"}}");
    assert_eq!(bot.metric(&line).await, Some(1.0));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(announced(&rig), 1, "announced once");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_protection_is_read_once_not_per_draft() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(2)).await.status, 202);
    bot.idle().await;
    assert_eq!(bot.observe(emails(5)).await.status, 202);
    bot.idle().await;
    assert!(rig.github.count("PATCH", "/repos/acme/agent-policies/pulls/1") >= 1);
    assert_eq!(
        rig.github
            .count("GET", "/repos/acme/agent-policies/branches/main/protection"),
        1
    );
    bot.stop().await;
}
