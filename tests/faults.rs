//! The fault campaign, part one: many drafts through the real bot while the
//! fake GitHub answers a fifth of its requests with 5xx, 429, secondary rate
//! limits, connection resets or slow answers (a seeded injector). Every draft
//! lands exactly once, no pull request or comment is duplicated, every retry
//! is bounded and counted, and `/metrics` shows it all.

mod common;

use common::fake_github::{FaultKind, FaultPlan};
use common::rig::*;
use serde_json::{json, Value};
use shadowdraft::config::{ForgeSettings, GitHubRetry, Settings};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const AGENTS: usize = 24;
const ROUNDS: usize = 3;
const ATTEMPTS: u32 = 6;

fn agent(i: usize) -> String {
    format!("fleet-bot-{i:02}")
}

/// Round `round` of evidence: every agent calls a tool new in that round.
fn evidence(round: usize) -> Value {
    let mut calls = Vec::new();
    for i in 0..AGENTS {
        for n in 0..3 {
            calls.push(json!({
                "agent": agent(i),
                "tool": format!("tool_{round}"),
                "server": "crm",
                "args": {"ticket": format!("T-{round}{i:02}{n}"), "priority": "high"}
            }));
        }
    }
    Value::Array(calls)
}

/// The rig's settings with short retry waits (GitHub's `Retry-After` of 1 s
/// capped at 20 ms) and no proofs: the campaign is about GitHub, and must be quick.
fn settings(rig: &Rig) -> Settings {
    let mut settings = rig.settings();
    let ForgeSettings::Github(gh) = &mut settings.forge else {
        panic!("the rig runs against the fake GitHub")
    };
    gh.retry = GitHubRetry {
        attempts: ATTEMPTS,
        first_backoff: Duration::from_millis(5),
        max_wait: Duration::from_millis(20),
    };
    settings.proof.enabled = false;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_land_exactly_once_while_github_fails_a_fifth_of_its_requests() {
    let started = Instant::now();
    let rig = Rig::new();
    rig.github.set_permission("alice", "write");
    rig.github.inject_faults(FaultPlan {
        seed: 16,
        rate: 0.2,
        kinds: FaultKind::ALL.to_vec(),
        retry_after: 1,
        slow: Duration::from_millis(300),
    });
    let bot = rig.bot_with(settings(&rig)).await;

    for round in 0..ROUNDS {
        let reply = bot.observe(evidence(round)).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        // Each round's tool reaches every agent's one proposal.
        settle(&bot, &format!("round {round} in every proposal"), || {
            let pulls = rig.github.pulls();
            pulls.len() == AGENTS
                && pulls
                    .iter()
                    .all(|p| (0..=round).all(|seen| p.body.contains(&format!("/tool_{seen}/"))))
        })
        .await;
        assert_eq!(
            rig.github.pulls().len(),
            AGENTS,
            "round {round}: one pull request per agent"
        );
    }

    // Commands in comments: every third agent stops proposing tool_1, the
    // others ask for help or a redraft; one delivery arrives twice.
    let numbers: BTreeMap<String, u64> = rig
        .github
        .pulls()
        .iter()
        .map(|p| (p.head.trim_start_matches("shadowdraft/").to_string(), p.number))
        .collect();
    let mut commands = 0;
    for (i, number) in numbers.values().enumerate() {
        let text = match i % 3 {
            0 => "/shadowdraft ignore tool_1",
            1 => "/shadowdraft help",
            _ => "/shadowdraft redraft",
        };
        let reply = bot.comment_as("alice", *number, text).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        commands += 1;
    }
    let again = bot
        .redeliver(
            "issue_comment",
            "delivery-0",
            &comment(numbers[&agent(0)], "alice", "/shadowdraft ignore tool_1"),
        )
        .await;
    assert_eq!(again.status, 200, "a redelivery is a duplicate: {}", again.body);
    settle(&bot, "a reply to every command", || {
        numbers.iter().enumerate().all(|(i, (name, number))| {
            let replied = rig
                .replies(*number)
                .iter()
                .any(|b| b.contains("<!-- shadowdraft:reply:"));
            let body = rig.github.pull(*number).map(|p| p.body).unwrap_or_default();
            replied && (i % 3 != 0 || !body.contains(&format!("{name}/tool_1/")))
        })
    })
    .await;

    // Exactly one pull request per agent, never a second for the same branch.
    let pulls = rig.github.pulls();
    assert_eq!(pulls.len(), AGENTS);
    let heads: std::collections::BTreeSet<&str> = pulls.iter().map(|p| p.head.as_str()).collect();
    assert_eq!(heads.len(), AGENTS, "no branch has two pull requests");
    assert!(pulls.iter().all(|p| p.state == "open"));
    assert!(
        pulls.iter().all(|p| p.labels == vec!["shadowdraft".to_string()]),
        "every proposal is labelled once"
    );
    // Exactly one reply per command, no comment twice.
    let mut replies = 0;
    for (i, (name, number)) in numbers.iter().enumerate() {
        let bodies = rig.replies(*number);
        let distinct: std::collections::BTreeSet<&String> = bodies.iter().collect();
        assert_eq!(
            distinct.len(),
            bodies.len(),
            "#{number} has a comment twice: {bodies:#?}"
        );
        let answers = bodies
            .iter()
            .filter(|b| b.contains("<!-- shadowdraft:reply:"))
            .count();
        assert_eq!(
            answers, 1,
            "#{number} ({name}): one reply per command: {bodies:#?}"
        );
        replies += answers;
        // What the command asked for was done.
        let body = rig.github.pull(*number).unwrap().body;
        match i % 3 {
            0 => assert!(
                !body.contains("/tool_1/") && body.contains("ignored by @alice") && body.contains("/tool_2/"),
                "{name}:\n{body}"
            ),
            _ => assert!(body.contains(&format!("{name}/tool_1/")), "{name}:\n{body}"),
        }
    }
    assert_eq!(replies, commands);

    // Every failure the fake injected was seen by the client, and either
    // retried or, after the last attempt, given up: retries are bounded and counted.
    let injected = rig.github.injected();
    let by_kind = |kind: FaultKind| injected.iter().filter(|f| f.kind == kind).count();
    let failures = injected.iter().filter(|f| f.kind.fails()).count();
    let metric = |name: &'static str| {
        let bot = &bot;
        async move {
            bot.metric(name)
                .await
                .unwrap_or_else(|| panic!("{name} in /metrics")) as usize
        }
    };
    let (retries, gave_up, transport) = (
        metric("shadowdraft_github_retries_total").await,
        metric("shadowdraft_github_gave_up_total").await,
        metric("shadowdraft_github_transport_errors_total").await,
    );
    assert_eq!(
        retries + gave_up,
        failures,
        "each failed attempt is retried or given up"
    );
    assert_eq!(transport, by_kind(FaultKind::ConnectionReset));
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for f in &injected {
        if let Some(status) = f.status {
            *statuses.entry(status).or_default() += 1;
        }
    }
    for (status, n) in &statuses {
        let name = format!("shadowdraft_github_errors_total{{status=\"{status}\"}}");
        assert_eq!(bot.metric(&name).await, Some(*n as f64), "{name}");
    }
    // A call that ran out of attempts failed its job or delivery, which waited
    // out its backoff and landed (the checks above).
    assert!(metric("shadowdraft_jobs_failed_total").await <= gave_up);
    assert_eq!(metric("shadowdraft_prs_opened_total").await, AGENTS);
    for kind in FaultKind::ALL {
        assert!(by_kind(kind) > 0, "the campaign injected no {kind:?}");
    }
    let drafts = metric("shadowdraft_drafts_total").await;
    let requests = rig.github.requests().len();
    eprintln!(
        "fault campaign: {AGENTS} agents, {ROUNDS} rounds, {commands} commands, {drafts} drafts, \
         {requests} GitHub requests, {} faults ({}), {retries} retries, {gave_up} given up, \
         {} pull requests, 0 duplicates, {:.1} s",
        injected.len(),
        FaultKind::ALL
            .iter()
            .map(|k| format!("{k:?} {}", by_kind(*k)))
            .collect::<Vec<_>>()
            .join(", "),
        pulls.len(),
        started.elapsed().as_secs_f64()
    );
    bot.stop().await;
}

/// Wait until `done` holds: the bot idle, and what failed every attempt
/// retried after its backoff (5 s). Bounded: a minute.
async fn settle(bot: &Bot<'_>, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        bot.idle().await;
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
