//! The review loop end to end: real webhook payloads (`@octokit/webhooks-examples`),
//! signed as GitHub signs them, through the real router and worker, against the
//! stateful fake GitHub and a real bare repository.

mod common;

use common::git_bridge::git;
use common::http::{eventually, request};
use common::rig::*;
use serde_json::json;
use shadowdraft::core::check::check;
use shadowdraft::serve as server;

fn open_pulls(rig: &Rig) -> usize {
    rig.github.pulls().iter().filter(|p| p.state == "open").count()
}

fn replies(rig: &Rig, number: u64) -> Vec<String> {
    rig.github.comments(number).into_iter().map(|c| c.body).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_promotes_and_closing_is_remembered_until_new_evidence_or_redraft() {
    let rig = Rig::new();
    rig.github.set_permission("alice", "write");
    let running = server::start(rig.settings()).await.unwrap();
    let branch = format!("shadowdraft/{AGENT}");

    // A proposal, closed without merging: its rules are turned down and the branch goes.
    assert_eq!(post(&running, &batch(emails(4)), Some("b1")).await.status, 202);
    eventually(30, "PR #1", || open_pulls(&rig) == 1 && settled(&running)).await;
    rig.github.close(1);
    assert_eq!(
        deliver(&running, "pull_request", "d-close-1", &closed(1, false))
            .await
            .status,
        202
    );
    eventually(30, "the close handled", || settled(&running)).await;
    assert!(
        git(&rig.bare, &["rev-parse", "--verify", &branch]).is_err(),
        "branch deleted"
    );
    let rejected = running.app.ctx.store.lock().unwrap().rejections(AGENT).unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");

    // The same evidence again: not proposed again.
    running.app.ctx.store.lock().unwrap().queue(AGENT, 0).unwrap();
    running.app.ctx.wake.notify_one();
    eventually(30, "the redraft", || settled(&running)).await;
    assert_eq!(
        rig.github.pulls().len(),
        1,
        "no second proposal for the same evidence"
    );

    // `/shadowdraft redraft` on the closed PR, by someone with write access, brings it back.
    let reply = deliver(
        &running,
        "issue_comment",
        "d-redraft",
        &comment(1, "alice", "/shadowdraft redraft"),
    )
    .await;
    assert_eq!(reply.status, 202);
    eventually(30, "PR #2", || open_pulls(&rig) == 1 && settled(&running)).await;
    assert_eq!(rig.github.pulls().len(), 2);
    assert!(replies(&rig, 1).iter().any(|c| c.contains("Redrafting")));

    // Closing #2 and then twice the calls (new evidence) proposes it again without a command.
    rig.github.close(2);
    deliver(&running, "pull_request", "d-close-2", &closed(2, false)).await;
    eventually(30, "the close handled", || settled(&running)).await;
    assert_eq!(post(&running, &batch(emails(4)), Some("b2")).await.status, 202);
    eventually(30, "PR #3", || open_pulls(&rig) == 1 && settled(&running)).await;
    assert_eq!(rig.github.pulls().len(), 3);

    // Merged: the rules are promoted, the branch deleted, and the calls stop producing drafts.
    let main = rig.github.merge(3).unwrap();
    let merged = closed(3, true);
    assert_eq!(
        deliver(&running, "pull_request", "d-merge-3", &merged)
            .await
            .status,
        202
    );
    eventually(30, "the merge handled", || settled(&running)).await;
    let promoted = running.app.ctx.store.lock().unwrap().promotions().unwrap();
    assert!(
        !promoted.is_empty() && promoted.iter().all(|(a, _, pr)| a == AGENT && *pr == 3),
        "{promoted:?}"
    );
    assert!(git(&rig.bare, &["rev-parse", "--verify", &branch]).is_err());
    assert_eq!(rig.tip("main"), main);
    assert!(check(&rig.files_at("main"), Some(&summary_of(&batch(emails(4))))).passed());
    assert_eq!(post(&running, &batch(emails(4)), Some("b3")).await.status, 202);
    eventually(30, "the redraft", || settled(&running)).await;
    assert_eq!(rig.github.pulls().len(), 3, "main covers the calls now");

    // A replayed delivery does nothing a second time.
    let again = deliver(&running, "pull_request", "d-merge-3", &merged).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_need_write_access_and_unknown_ones_get_help() {
    let rig = Rig::new();
    rig.github.set_permission("alice", "write");
    rig.github.set_permission("mallory", "read");
    let running = server::start(rig.settings()).await.unwrap();
    let calls = json!([
        {"agent": AGENT, "tool": "send_email", "server": "gmail", "args": {"to": "a@adatum.com", "subject": "s"}},
        {"agent": AGENT, "tool": "search_docs", "server": "docs", "args": {"query": "refunds"}}
    ]);
    assert_eq!(post(&running, &batch(calls), None).await.status, 202);
    eventually(30, "PR #1", || open_pulls(&rig) == 1 && settled(&running)).await;
    let body = rig.github.pull(1).unwrap().body;
    assert!(body.contains("search_docs"));

    // Without write access: refused, nothing done.
    deliver(
        &running,
        "issue_comment",
        "c1",
        &comment(1, "mallory", "/shadowdraft ignore search_docs"),
    )
    .await;
    eventually(30, "a reply", || replies(&rig, 1).len() == 1 && settled(&running)).await;
    assert!(
        replies(&rig, 1)[0].contains("only people with write access"),
        "{:?}",
        replies(&rig, 1)
    );
    assert!(rig.github.pull(1).unwrap().body.contains("search_docs"));

    // Quoted or fenced commands are not commands; an unknown one gets the list.
    let text = "> /shadowdraft ignore search_docs\n```\n/shadowdraft redraft\n```\n/shadowdraft frobnicate";
    deliver(&running, "issue_comment", "c2", &comment(1, "alice", text)).await;
    eventually(30, "a reply", || replies(&rig, 1).len() == 2 && settled(&running)).await;
    let help = &replies(&rig, 1)[1];
    assert!(
        help.contains("is not a shadowdraft command") && help.contains("/shadowdraft redraft"),
        "{help}"
    );
    assert!(rig.github.pull(1).unwrap().body.contains("search_docs"));

    // explain <rule-id> answers with that rule's evidence.
    let rule = format!("{AGENT}/send_email/1");
    deliver(
        &running,
        "issue_comment",
        "c3",
        &comment(1, "alice", &format!("/shadowdraft explain {rule}")),
    )
    .await;
    eventually(30, "a reply", || replies(&rig, 1).len() == 3 && settled(&running)).await;
    let explained = &replies(&rig, 1)[2];
    assert!(
        explained.contains(&format!("#### `{rule}`")) && explained.contains("| argument |"),
        "{explained}"
    );

    // ignore <tool> by a writer: the PR is redrafted without it and says why.
    deliver(
        &running,
        "issue_comment",
        "c4",
        &comment(1, "alice", "/shadowdraft ignore search_docs"),
    )
    .await;
    eventually(30, "the PR without search_docs", || {
        let body = rig.github.pull(1).unwrap().body;
        body.contains("ignored by @alice")
            && !body.contains("#### `support-bot-001/search_docs")
            && settled(&running)
    })
    .await;
    assert_eq!(replies(&rig, 1).len(), 4);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_authenticated_and_unprotected_branches_are_flagged() {
    let rig = Rig::new();
    rig.github.set_protection(None);
    let running = server::start(rig.settings()).await.unwrap();
    let url = format!("http://{}/github/webhook", running.addr);
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
    assert_eq!(
        request("POST", &url, &headers, body).await.status,
        202,
        "unknown events are acknowledged"
    );

    // A push to main and installation events are taken in.
    let mut push = example("push.json");
    push["ref"] = json!("refs/heads/main");
    push["repository"]["full_name"] = json!("acme/agent-policies");
    assert_eq!(deliver(&running, "push", "p1", &push).await.status, 202);
    let install = example("installation.created.json");
    assert_eq!(
        deliver(&running, "installation", "i1", &install).await.status,
        202
    );
    eventually(30, "deliveries handled", || settled(&running)).await;
    let id = install["installation"]["id"].as_u64().unwrap();
    assert!(!running
        .app
        .ctx
        .store
        .lock()
        .unwrap()
        .installation_repositories(id)
        .unwrap()
        .is_empty());

    // main requires no code-owner review: the proposal says so at the top.
    assert_eq!(post(&running, &batch(emails(2)), None).await.status, 202);
    eventually(30, "PR #1", || open_pulls(&rig) == 1 && settled(&running)).await;
    let body = rig.github.pull(1).unwrap().body;
    assert!(
        body.contains("> [!CAUTION]") && body.contains("does not require a code owner"),
        "{body}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_proposal_is_announced_once_every_node_has_loaded_it() {
    let rig = Rig::new();
    let running = server::start(rig.settings()).await.unwrap();
    let before = rig.tip("main");
    assert_eq!(post(&running, &batch(emails(3)), None).await.status, 202);
    eventually(30, "PR #1", || open_pulls(&rig) == 1 && settled(&running)).await;
    let merged = rig.github.merge(1).unwrap();
    let mut event = closed(1, true);
    event["pull_request"]["merge_commit_sha"] = json!(merged);
    assert_eq!(deliver(&running, "pull_request", "m1", &event).await.status, 202);
    eventually(30, "the merge handled", || settled(&running)).await;

    let report = |node: &str, commit: &str| json!({"source": node, "policy_commit": commit, "calls": []});
    assert_eq!(post(&running, &report("node-a", &merged), None).await.status, 202);
    assert_eq!(post(&running, &report("node-b", &before), None).await.status, 202);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let announced = |rig: &Rig| {
        replies(rig, 1)
            .iter()
            .filter(|c| c.contains("Rolled out"))
            .count()
    };
    assert_eq!(announced(&rig), 0, "node-b still enforces the old commit");

    assert_eq!(post(&running, &report("node-b", &merged), None).await.status, 202);
    eventually(30, "the rollout comment", || announced(&rig) == 1).await;
    assert!(replies(&rig, 1)
        .iter()
        .any(|c| c.contains("loaded by 2 of 2 enforcement nodes")));
    let metrics = common::http::get(&format!("http://{}/metrics", running.addr))
        .await
        .body;
    let line = format!("shadowdraft_node_policy_commit{{node=\"node-b\",commit=\"{merged}\"}} 1");
    assert!(metrics.contains(&line), "{metrics}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(announced(&rig), 1, "announced once");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_protection_is_read_once_not_per_draft() {
    let rig = Rig::new();
    let running = server::start(rig.settings()).await.unwrap();
    assert_eq!(post(&running, &batch(emails(2)), Some("p1")).await.status, 202);
    eventually(30, "PR #1", || open_pulls(&rig) == 1 && settled(&running)).await;
    assert_eq!(post(&running, &batch(emails(5)), Some("p2")).await.status, 202);
    eventually(30, "the update", || {
        rig.github.count("PATCH", "/repos/acme/agent-policies/pulls/1") >= 1 && settled(&running)
    })
    .await;
    assert_eq!(
        rig.github
            .count("GET", "/repos/acme/agent-policies/branches/main/protection"),
        1
    );
    running.stop().await;
}
