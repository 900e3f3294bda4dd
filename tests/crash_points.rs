//! The fault campaign, part two: the real `shadowdraft serve` process killed
//! with SIGKILL at the points where a crash could lose or repeat work, then
//! restarted on the same data. The fake GitHub kills it from a hook on the
//! request that marks the point (no failpoint in the bot's code):
//!
//! - between the push and the pull request: on receipt of `POST …/pulls`,
//!   which is then never carried out;
//! - between the pull request and recording it: after GitHub opened it,
//!   before the answer reaches the bot;
//! - during a webhook's work: on the command's reply, before and after
//!   GitHub posted it.
//!
//! After each restart: exactly one pull request per agent, decorated once,
//! every acknowledged call in it, and exactly one reply per command.

mod common;

use common::fake_github::HookPoint;
use common::git_bridge::git;
use common::replicas::{within, Replica};
use common::rig::{comment, token, Rig, AGENT, WEBHOOK_SECRET};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PULLS: &str = "POST /repos/acme/agent-policies/pulls";
const AGENTS: [&str; 3] = [AGENT, "billing-bot", "search-bot"];

/// The rig's config for the process, without proofs (they are not what is tested).
fn config(rig: &Rig) -> PathBuf {
    let path = rig.dir.path().join("shadowdraft.yaml");
    let text = rig.config(&rig.dir.path().join("data"), 0) + "proof: {enabled: false}\n";
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(config: &Path) -> Replica {
    Replica::start(config, &Rig::env()).await
}

/// A hook that SIGKILLs `pid` and returns once the process is dead (a zombie
/// for its parent to reap), so nothing it does can follow the hook.
fn kill(pid: u32) -> impl Fn() + Send + Sync + 'static {
    move || {
        let sent = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -KILL {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state …`: Z once dead, nothing once reaped.
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            if matches!(state, None | Some('Z' | 'X')) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("{pid} survived SIGKILL");
    }
}

/// Wait for the hook to have killed `bot`, and reap it.
async fn killed(rig: &Rig, bot: &mut Replica) {
    within(Duration::from_secs(90), "the hook to kill the bot", || {
        let done = rig.github.hooks_waiting() == 0;
        async move { done.then_some(()) }
    })
    .await;
    bot.kill();
}

/// Calls of every agent: 5 emails each, and `extra` calls of a second tool.
fn calls(extra: usize) -> Value {
    let mut calls = Vec::new();
    for name in AGENTS {
        for i in 0..5 {
            calls.push(json!({"agent": name, "tool": "send_email", "server": "gmail",
                              "args": {"to": format!("user{i}@adatum.com"), "subject": "Your ticket"}}));
        }
        for i in 0..extra {
            calls.push(json!({"agent": name, "tool": "lookup_order", "server": "shop",
                              "args": {"order_id": format!("A-{i}")}}));
        }
    }
    json!({"source": "node-1", "calls": calls})
}

async fn observe(bot: &Replica, body: &Value) {
    let auth = format!("Bearer {}", token());
    let reply = bot
        .request(
            "POST",
            "/v1/observations",
            &[("authorization", &auth), ("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
        .expect("the bot answers");
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// GitHub delivers `user`'s comment on `number` as delivery `id`.
async fn command(bot: &Replica, id: &str, number: u64, user: &str, text: &str) {
    let body = comment(number, user, text).to_string().into_bytes();
    let signature = shadowdraft::serve::webhook::sign(WEBHOOK_SECRET, &body);
    let reply = bot
        .request(
            "POST",
            "/github/webhook",
            &[
                ("x-github-event", "issue_comment"),
                ("x-github-delivery", id),
                ("x-hub-signature-256", &signature),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
        .expect("the bot answers");
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// Every agent's proposal recorded by the bot, its job done, and its calls all counted.
async fn all_proposed(bot: &Replica, calls_each: u64) {
    within(
        Duration::from_secs(90),
        "every agent's proposal recorded",
        || async {
            for name in AGENTS {
                let status = bot.agent(name).await;
                if status["proposal"].is_null() || !status["job"].is_null() {
                    return None;
                }
                assert_eq!(status["calls_in_window"], calls_each, "{name}: {status}");
            }
            Some(())
        },
    )
    .await;
}

/// Exactly one pull request per agent, each labelled, the agent with
/// reviewers configured asking them, each recorded by the bot under its number.
async fn one_pull_request_per_agent(rig: &Rig, bot: &Replica) {
    let pulls = rig.github.pulls();
    let heads: BTreeSet<&str> = pulls.iter().map(|p| p.head.as_str()).collect();
    assert_eq!(pulls.len(), AGENTS.len(), "{pulls:#?}");
    assert_eq!(
        heads.len(),
        AGENTS.len(),
        "one pull request per branch: {pulls:#?}"
    );
    for pull in &pulls {
        let name = pull.head.strip_prefix("shadowdraft/").unwrap();
        assert_eq!(
            pull.labels,
            vec!["shadowdraft".to_string()],
            "#{} ({name})",
            pull.number
        );
        if name == AGENT {
            assert_eq!(pull.reviewers, vec!["alice".to_string()], "#{}", pull.number);
            assert_eq!(pull.teams, vec!["security".to_string()], "#{}", pull.number);
        }
        assert!(
            pull.body.contains("send_email"),
            "#{}: {}",
            pull.number,
            pull.body
        );
        assert_eq!(bot.agent(name).await["proposal"]["number"], pull.number);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_push_and_the_pull_request() {
    let rig = Rig::new();
    let config = config(&rig);
    let mut bot = start(&config).await;
    rig.github
        .on_request(PULLS, HookPoint::Before, kill(bot.pid().unwrap()));
    observe(&bot, &calls(0)).await;
    killed(&rig, &mut bot).await;
    // The branch was pushed, the pull request never opened.
    assert!(rig.github.pulls().is_empty());
    let branches = git(
        &rig.bare,
        &["for-each-ref", "--format=%(refname)", "refs/heads/shadowdraft/"],
    )
    .unwrap();
    assert_eq!(branches.lines().count(), 1, "{branches}");

    let bot = start(&config).await;
    all_proposed(&bot, 5).await;
    one_pull_request_per_agent(&rig, &bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_pull_request_and_recording_it() {
    let rig = Rig::new();
    let config = config(&rig);
    let mut bot = start(&config).await;
    rig.github
        .on_request(PULLS, HookPoint::After, kill(bot.pid().unwrap()));
    observe(&bot, &calls(0)).await;
    killed(&rig, &mut bot).await;
    // GitHub opened it; the bot never heard.
    assert_eq!(rig.github.pulls().len(), 1);

    let bot = start(&config).await;
    all_proposed(&bot, 5).await;
    one_pull_request_per_agent(&rig, &bot).await;
    assert_eq!(
        rig.github.count("POST", "/repos/acme/agent-policies/pulls"),
        AGENTS.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_a_command_before_and_after_its_reply() {
    let rig = Rig::new();
    rig.github.set_permission("alice", "write");
    let config = config(&rig);
    let mut bot = start(&config).await;
    observe(&bot, &calls(3)).await;
    all_proposed(&bot, 8).await;
    let number = rig
        .github
        .pulls()
        .iter()
        .find(|p| p.head == format!("shadowdraft/{AGENT}"))
        .unwrap()
        .number;
    let replies = |delivery: &str| {
        let marker = format!("<!-- shadowdraft:reply:{delivery} -->");
        rig.replies(number).iter().filter(|b| b.contains(&marker)).count()
    };
    let reply_route = format!("POST /repos/acme/agent-policies/issues/{number}/comments");

    // Killed once the command was carried out, before its reply was posted.
    rig.github
        .on_request(&reply_route, HookPoint::Before, kill(bot.pid().unwrap()));
    command(
        &bot,
        "crash-1",
        number,
        "alice",
        "/shadowdraft ignore lookup_order",
    )
    .await;
    killed(&rig, &mut bot).await;
    assert_eq!(replies("crash-1"), 0);
    let mut bot = start(&config).await;
    within(
        Duration::from_secs(90),
        "the command carried out and answered",
        || {
            let done = replies("crash-1") == 1
                && !rig
                    .github
                    .pull(number)
                    .unwrap()
                    .body
                    .contains(&format!("{AGENT}/lookup_order/"));
            async move { done.then_some(()) }
        },
    )
    .await;
    let status = bot.agent(AGENT).await;
    assert_eq!(status["ignored_tools"][0]["tool"], "lookup_order", "{status}");

    // Killed after GitHub posted the reply, before the bot marked the delivery done.
    rig.github
        .on_request(&reply_route, HookPoint::After, kill(bot.pid().unwrap()));
    command(&bot, "crash-2", number, "alice", "/shadowdraft help").await;
    killed(&rig, &mut bot).await;
    assert_eq!(replies("crash-2"), 1);
    let bot = start(&config).await;
    // The restarted bot finds the delivery unfinished, sees its reply, and posts none.
    within(Duration::from_secs(90), "the delivery finished", || async {
        let status = bot.agent(AGENT).await;
        status["job"].is_null().then_some(())
    })
    .await;
    command(&bot, "after", number, "alice", "/shadowdraft help").await;
    within(Duration::from_secs(90), "a later command answered", || {
        let done = replies("after") == 1;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(replies("crash-1"), 1);
    assert_eq!(replies("crash-2"), 1, "{:#?}", rig.replies(number));
    let bodies = rig.replies(number);
    let distinct: BTreeSet<&String> = bodies.iter().collect();
    assert_eq!(distinct.len(), bodies.len(), "{bodies:#?}");
    one_pull_request_per_agent(&rig, &bot).await;
}
