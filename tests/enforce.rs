//! `shadowdraft enforce` end to end with real parts: the bot (real router,
//! SQLite, git2 against a bare repository behind `git http-backend`, the fake
//! GitHub), the node on loopback fetching `main` of the same bare repository
//! (by its local path), the real Cedar engine.

mod common;

use common::git_bridge::git;
use common::http::{eventually, get, request, Reply};
use common::rig::{emails, Rig, AGENT, SECRET};
use serde_json::{json, Value};
use shadowdraft::config::{Config, Settings};
use shadowdraft::enforce::{self, NodeSettings};
use shadowdraft::serve::{self as server, Running};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

fn env(var: &str) -> Option<String> {
    (var == "TEST_INGEST_SECRET").then(|| SECRET.to_string())
}

/// The bot of the shared rig, listening on `listen`.
fn bot_settings(rig: &Rig, listen: SocketAddr) -> Settings {
    let mut settings = rig.settings();
    settings.listen = listen;
    settings
}

/// The node fetches `main` of the bare repository by its local path.
fn node_settings(rig: &Rig, bot: SocketAddr, enforce: &str) -> NodeSettings {
    let yaml = format!(
        r#"
data_dir: {data}
policy_repo:
  url: {bare}
  base_branch: main
enforce:
  listen: 127.0.0.1:0
  node_id: node-7
  interval_seconds: 3600
  flush_seconds: 1
  report_url: http://{bot}/v1/observations
  report_hs256_secret_env: TEST_INGEST_SECRET
{enforce}
"#,
        data = rig.dir.path().join("node").display(),
        bare = rig.bare.display(),
    );
    let config = Config::parse("node.yaml", &yaml).unwrap();
    let mut settings = NodeSettings::from_config(&config, "node.yaml", &env).unwrap();
    settings.retry_max = Duration::from_millis(300);
    settings
}

/// A person pushes a commit to `main` (outside any PR).
fn push_to_main(rig: &Rig, file: &str, append: &str, message: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let bare = rig.bare.to_str().unwrap();
    git(work.path(), &["clone", "--quiet", bare, "w"]).unwrap();
    let w = work.path().join("w");
    let path = w.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default() + append;
    std::fs::write(&path, text).unwrap();
    git(&w, &["commit", "--quiet", "-am", message]).unwrap();
    git(&w, &["push", "--quiet", "origin", "main"]).unwrap();
    rig.tip("main")
}

fn token() -> String {
    let exp = shadowdraft::clock::now() as u64 + 300;
    shadowdraft::auth::hs256_token(SECRET.as_bytes(), "shadowdraft", "node-7", exp)
}

async fn observe(bot: &Running, calls: Value) -> Reply {
    let auth = format!("Bearer {}", token());
    let url = format!("http://{}/v1/observations", bot.addr);
    let body = json!({"source": "node-7", "calls": calls}).to_string();
    request(
        "POST",
        &url,
        &[("authorization", &auth), ("content-type", "application/json")],
        body.into_bytes(),
    )
    .await
}

fn evaluation(agent: &str, tool: &str, input: Value) -> Value {
    json!({"subject": {"type": "agent", "id": agent}, "action": {"name": tool},
           "resource": {"type": "mcp_server", "id": "gmail"}, "context": {"input": input}})
}

async fn decide(node: &enforce::Running, body: &Value) -> Value {
    let url = format!("http://{}/access/v1/evaluation", node.addr);
    let reply = request(
        "POST",
        &url,
        &[("content-type", "application/json"), ("x-request-id", "r-1")],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.headers["x-request-id"], "r-1");
    reply.json()
}

async fn refresh(node: &enforce::Running) -> Reply {
    let url = format!("http://{}/v1/refresh", node.addr);
    request("POST", &url, &[], Vec::new()).await
}

fn email(to: &str) -> Value {
    json!({"to": to, "subject": "Your ticket", "body": "Hello"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_draft_is_enforced_and_a_bad_commit_keeps_the_last_good_policy() {
    let rig = Rig::new();
    let bot = server::start(bot_settings(&rig, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let settings = node_settings(
        &rig,
        bot.addr,
        &format!("  mode: shadow\n  agents: {{{AGENT}: enforce}}"),
    );
    let node = enforce::start(settings).await.unwrap();
    let initial = rig.tip("main");
    eventually(30, "the first policy", || {
        node.node.policy.current().is_some_and(|p| p.commit == initial)
    })
    .await;

    // AuthZEN discovery.
    let config = get(&format!("http://{}/.well-known/authzen-configuration", node.addr))
        .await
        .json();
    assert_eq!(
        config["access_evaluation_endpoint"],
        format!("http://{}/access/v1/evaluation", node.addr)
    );
    assert!(config["access_evaluations_endpoint"]
        .as_str()
        .unwrap()
        .ends_with("/access/v1/evaluations"));

    // Before the draft is merged the call is denied.
    let call = evaluation(AGENT, "send_email", email("user3@adatum.com"));
    let before = decide(&node, &call).await;
    assert_eq!(before["decision"], false, "{before}");
    assert_eq!(before["context"]["policy_commit"], initial);

    // The bot drafts, a person merges, the node pulls.
    assert_eq!(observe(&bot, emails(12)).await.status, 202);
    bot.idle().await;
    assert_eq!(rig.github.pulls().len(), 1);
    let merged = rig.github.merge(1).unwrap();
    let reply = refresh(&node).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["commit"], merged);

    let after = decide(&node, &call).await;
    assert_eq!(after["decision"], true, "{after}");
    assert_eq!(after["context"]["policy_commit"], merged);
    assert_eq!(after["context"]["mode"], "enforce");
    let determining = after["context"]["determining_policies"].as_array().unwrap();
    assert!(
        determining
            .iter()
            .any(|id| id.as_str().unwrap().starts_with(&format!("{AGENT}/send_email/"))),
        "{after}"
    );
    // Outside the drafted shape: an injected bcc, a recipient domain never seen.
    let mut bcc = email("user3@adatum.com");
    bcc["bcc"] = json!("exfil@evil.example");
    let denied = decide(&node, &evaluation(AGENT, "send_email", bcc)).await;
    assert_eq!(denied["decision"], false, "{denied}");
    let elsewhere = decide(&node, &evaluation(AGENT, "send_email", email("ceo@evil.example"))).await;
    assert_eq!(elsewhere["decision"], false, "{elsewhere}");
    // Another agent has no rules: denied in enforce mode, allowed (and reported) in shadow.
    let other = decide(
        &node,
        &evaluation("other-bot", "send_email", email("user3@adatum.com")),
    )
    .await;
    assert_eq!(other["decision"], true);
    assert_eq!(other["context"]["shadow_decision"], false);

    // A batch request with a semantic.
    let batch = json!({
    "subject": {"type": "agent", "id": AGENT},
    "action": {"name": "send_email"},
    "resource": {"type": "mcp_server", "id": "gmail"},
    "options": {"evaluations_semantic": "deny_on_first_deny"},
    "evaluations": [
        {"context": {"input": email("user1@adatum.com")}},
        {"context": {"input": email("ceo@evil.example")}},
        {"context": {"input": email("user2@adatum.com")}}
    ]});
    let reply = request(
        "POST",
        &format!("http://{}/access/v1/evaluations", node.addr),
        &[],
        batch.to_string().into_bytes(),
    )
    .await;
    let decisions: Vec<bool> = reply.json()["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect();
    assert_eq!(decisions, vec![true, false]);
    // Malformed: an AuthZEN-style 400 naming the problem.
    let reply = request(
        "POST",
        &format!("http://{}/access/v1/evaluation", node.addr),
        &[],
        json!({"subject": {"type": "user", "id": "alice"}})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"].as_str().unwrap().contains("action"),
        "{}",
        reply.body
    );

    // A commit on main whose policy does not validate: the node keeps the last good one.
    let file = format!("policies/agents/{AGENT}.cedar");
    let bad = push_to_main(
        &rig,
        &file,
        "\npermit (principal, action, resource) when { context.input.nonexistent == 1 };\n",
        "A broken rule",
    );
    let reply = refresh(&node).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    let status = reply.json();
    assert_eq!(status["commit"], merged);
    assert_eq!(status["fetched"], bad);
    assert!(status["error"].as_str().unwrap().contains(&bad), "{status}");
    let still = decide(&node, &call).await;
    assert_eq!(still["decision"], true);
    assert_eq!(still["context"]["policy_commit"], merged);
    let metrics = get(&format!("http://{}/metrics", node.addr)).await.body;
    assert!(
        metrics.contains("shadowdraft_enforce_policy_load_failures_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shadowdraft_enforce_policy_last_sync_failed 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("shadowdraft_enforce_policy_info{{commit=\"{merged}\"")),
        "{metrics}"
    );
    // Refreshing again does not count the same bad commit twice.
    assert_eq!(refresh(&node).await.status, 409);
    assert_eq!(node.node.metrics.load_failures.load(Relaxed), 1);

    // main goes back to the good commit: the failure clears.
    git(&rig.bare, &["update-ref", "refs/heads/main", &merged]).unwrap();
    let reply = refresh(&node).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let metrics = get(&format!("http://{}/metrics", node.addr)).await.body;
    assert!(
        metrics.contains("shadowdraft_enforce_policy_last_sync_failed 0\n"),
        "{metrics}"
    );

    node.stop().await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_bound_to_the_session_is_enforced_with_the_session_the_node_is_given() {
    let rig = Rig::new();
    let bot = server::start(bot_settings(&rig, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let node = enforce::start(node_settings(&rig, bot.addr, "  mode: enforce"))
        .await
        .unwrap();
    let lookups: Vec<Value> = (0..6)
        .map(|i| {
            json!({"agent": AGENT, "tool": "get_user_details", "server": "gmail",
                   "args": {"user_id": format!("user_{i:04}")},
                   "session": {"user": format!("user_{i:04}")}})
        })
        .collect();
    assert_eq!(observe(&bot, Value::Array(lookups)).await.status, 202);
    bot.idle().await;
    rig.github.merge(1).unwrap();
    assert_eq!(refresh(&node).await.status, 200);

    let lookup = |user_id: &str, session: Value| {
        json!({"subject": {"type": "agent", "id": AGENT}, "action": {"name": "get_user_details"},
               "resource": {"type": "mcp_server", "id": "gmail"},
               "context": {"input": {"user_id": user_id}, "session": session}})
    };
    let own = decide(&node, &lookup("user_0777", json!({"user": "user_0777"}))).await;
    assert_eq!(own["decision"], true, "a new customer, about themselves: {own}");
    let other = decide(&node, &lookup("user_0001", json!({"user": "user_0777"}))).await;
    assert_eq!(other["decision"], false, "another customer's id: {other}");
    // The same call in another session is decided again, not taken from the cache.
    let again = decide(&node, &lookup("user_0001", json!({"user": "user_0001"}))).await;
    assert_eq!(again["decision"], true, "{again}");
    let none = decide(&node, &lookup("user_0001", Value::Null)).await;
    assert_eq!(none["decision"], false, "no session: {none}");
    let reply = request(
        "POST",
        &format!("http://{}/access/v1/evaluation", node.addr),
        &[],
        lookup("user_0001", json!({"user": {"id": 1}}))
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("context.session.user"), "{}", reply.body);
    node.stop().await;
    bot.stop().await;
}

async fn calls_ingested(bot: &Running) -> String {
    let metrics = get(&format!("http://{}/metrics", bot.addr)).await.body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("shadowdraft_calls_ingested_total "));
    line.expect("the counter is exported").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_bot_is_down_the_node_spools_and_every_call_arrives_once() {
    let rig = Rig::new();
    let bot = server::start(bot_settings(&rig, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let bot_addr = bot.addr;
    bot.stop().await;

    let node = enforce::start(node_settings(&rig, bot_addr, "  mode: shadow"))
        .await
        .unwrap();
    eventually(30, "the first policy", || node.node.policy.current().is_some()).await;
    // 10 calls, 4 distinct: 4 + 3 + 2 + 1.
    let mut sent = 0;
    for (i, times) in [4, 3, 2, 1].into_iter().enumerate() {
        for _ in 0..times {
            let body = evaluation(AGENT, "send_email", email(&format!("user{i}@adatum.com")));
            let out = decide(&node, &body).await;
            assert_eq!(out["decision"], true, "shadow mode answers allow");
            assert_eq!(out["context"]["shadow_decision"], false);
            sent += 1;
        }
    }
    assert_eq!(sent, 10);
    eventually(30, "a failed send", || {
        node.node.feedback.spool().depth() == 1 && node.node.metrics.batches_failed.load(Relaxed) >= 2
    })
    .await;

    // The node restarts while its batch waits: the spool carries it over.
    let spooled = node.node.feedback.spool().list();
    let kept = std::fs::read(&spooled[0]).unwrap();
    node.stop().await;
    let node = enforce::start(node_settings(&rig, bot_addr, "  mode: shadow"))
        .await
        .unwrap();
    assert_eq!(node.node.feedback.spool().list(), spooled);

    // The bot comes back on the same address and data.
    let bot = server::start(bot_settings(&rig, bot_addr)).await.unwrap();
    eventually(30, "the spool drained", || {
        node.node.feedback.spool().depth() == 0 && node.node.metrics.batches_sent.load(Relaxed) == 1
    })
    .await;
    assert_eq!(calls_ingested(&bot).await, "shadowdraft_calls_ingested_total 10");

    // The same batch again (e.g. its answer was lost): the bot counts it once.
    std::fs::write(&spooled[0], &kept).unwrap();
    node.node.feedback.spooled.notify_one();
    eventually(30, "the resend", || {
        node.node.metrics.batches_sent.load(Relaxed) == 2
    })
    .await;
    assert_eq!(calls_ingested(&bot).await, "shadowdraft_calls_ingested_total 10");
    let metrics = get(&format!("http://{}/metrics", bot.addr)).await.body;
    assert!(
        metrics.contains("shadowdraft_calls_ingested_total 10\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shadowdraft_batches_duplicate_total 1\n"),
        "{metrics}"
    );
    // The batch named the node and the commit it enforces.
    let batch: Value = serde_json::from_slice(&kept).unwrap();
    assert_eq!(batch["source"], "node-7");
    assert_eq!(batch["policy_commit"], rig.tip("main"));

    node.stop().await;
    bot.stop().await;
}

#[test]
fn the_command_explains_itself_and_names_a_bad_key() {
    let bin = env!("CARGO_BIN_EXE_shadowdraft");
    let help = std::process::Command::new(bin)
        .args(["enforce", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("AuthZEN") && text.contains("shadow"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shadowdraft.yaml");
    std::fs::write(&config, "enforce:\n  mdoe: enforce\n").unwrap();
    let out = std::process::Command::new(bin)
        .args(["enforce", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("enforce.mdoe"), "{err}");
}

/// The decision cache never changes a decision: every held-out and attack call
/// of a drafted fleet is decided the same cold, warm, and without the cache's
/// help (a freshly loaded commit for each call).
#[test]
fn cached_decisions_equal_fresh_ones() {
    use shadowdraft::core::config::Preset;
    use shadowdraft::core::policies::RepoFiles;
    use shadowdraft::enforce::authzen::Query;
    use shadowdraft::enforce::policy::Enforced;
    use shadowdraft_fleet::Split;

    let drafted = common::draft_fleet(common::fleet(6, 150, 11), &RepoFiles::default(), Preset::Balanced);
    let files = common::applied(&RepoFiles::default(), &drafted.draft);
    let cached = Enforced::build("c1", &files).unwrap();
    let queries: Vec<Query> = [Split::HeldOut, Split::Attack]
        .into_iter()
        .flat_map(|split| drafted.fleet.calls(split).collect::<Vec<_>>())
        .map(|v| {
            let call = common::call(&v);
            Query {
                agent: call.agent,
                tool: call.tool,
                server: call.server,
                args: call.args,
                session: call.session,
            }
        })
        .collect();
    assert!(queries.len() > 100);
    let cold: Vec<_> = queries
        .iter()
        .map(|q| enforce::decide(Some(&cached), q))
        .collect();
    assert!(!cached.cache.is_empty(), "the cache fills");
    let warm: Vec<_> = queries
        .iter()
        .map(|q| enforce::decide(Some(&cached), q))
        .collect();
    assert_eq!(cold, warm);
    // Without the cache: each call against a commit that has decided nothing yet.
    for (i, q) in queries.iter().enumerate().step_by(20) {
        let fresh = Enforced::build("c2", &files).unwrap();
        assert_eq!(enforce::decide(Some(&fresh), q), cold[i], "{q:?}");
    }
    assert!(cold.iter().any(|o| o.allowed) && cold.iter().any(|o| !o.allowed));
}

/// Cedar stays the source of truth: the native fast path takes every
/// held-out and attack call of a drafted fleet (each preset) to the same
/// decision, determining rules and reason as Cedar on the same slice.
#[test]
fn native_decisions_are_cedars() {
    use shadowdraft::core::config::Preset;
    use shadowdraft::core::policies::RepoFiles;
    use shadowdraft::enforce::authzen::Query;
    use shadowdraft::enforce::policy::Enforced;
    use shadowdraft_fleet::Split;

    for (preset, agents) in [(Preset::Balanced, 40), (Preset::Tight, 12), (Preset::Loose, 12)] {
        let drafted = common::draft_fleet(common::fleet(agents, 300, 7), &RepoFiles::default(), preset);
        let files = common::applied(&RepoFiles::default(), &drafted.draft);
        let enforced = Enforced::build("c1", &files).unwrap();
        assert_eq!(
            enforced.native_rules(),
            enforced.rules,
            "{preset:?}: every drafted rule is in the native fragment"
        );
        let (mut calls, mut native, mut denied, mut explained) = (0, 0, 0, 0);
        for v in drafted
            .fleet
            .calls(Split::HeldOut)
            .chain(drafted.fleet.calls(Split::Attack))
        {
            let call = common::call(&v);
            let query = Query {
                agent: call.agent,
                tool: call.tool,
                server: call.server,
                args: call.args,
                session: call.session,
            };
            calls += 1;
            let cedar = enforce::decide_by_cedar(&enforced, &query);
            if let Some(fast) = enforce::decide_natively(&enforced, &query) {
                assert_eq!(fast, cedar, "{preset:?}: {query:?}");
                native += 1;
                denied += !fast.allowed as usize;
                explained += fast.reason.as_deref().is_some_and(|r| r.contains("closest rule")) as usize;
            }
        }
        // Calls no rule covers never reach either path; all others are native.
        let uncovered = drafted
            .fleet
            .calls(Split::HeldOut)
            .chain(drafted.fleet.calls(Split::Attack))
            .map(|v| common::call(&v))
            .filter(|c| enforced.slice_for(&c.agent, &c.tool, &c.server).is_none())
            .count();
        assert_eq!(
            native,
            calls - uncovered,
            "{preset:?}: every covered call decided natively"
        );
        assert!(
            denied > 100 && explained > 100,
            "{preset:?}: {denied} denied, {explained} explained"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_are_capped_and_health_stays_responsive() {
    let rig = Rig::new();
    let node = enforce::start(node_settings(
        &rig,
        "127.0.0.1:9".parse().unwrap(),
        "  mode: enforce",
    ))
    .await
    .unwrap();
    let url = format!("http://{}/access/v1/evaluations", node.addr);
    // 200,000 items in 600 KB: refused whole, with the cap named, not answered with 33 MB.
    let mut huge = String::from(
        r#"{"subject": {"type": "agent", "id": "a"}, "action": {"name": "send_email"},
            "resource": {"type": "mcp_server", "id": "gmail"}, "evaluations": ["#,
    );
    huge.push_str(&vec!["{}"; 200_000].join(","));
    huge.push_str("]}");
    let started = std::time::Instant::now();
    let many: Vec<_> = (0..8)
        .map(|_| {
            let (url, body) = (url.clone(), huge.clone().into_bytes());
            tokio::spawn(async move { request("POST", &url, &[], body).await })
        })
        .collect();
    let health = get(&format!("http://{}/healthz", node.addr)).await;
    assert_eq!(health.status, 200);
    for reply in many {
        let reply = reply.await.unwrap();
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            reply.body.contains("at most 256") && reply.body.contains("enforce.max_evaluations"),
            "{}",
            reply.body
        );
        assert!(reply.body.len() < 1024);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Within the cap, every item is answered.
    let body = json!({"subject": {"type": "agent", "id": "a"}, "action": {"name": "send_email"},
        "resource": {"type": "mcp_server", "id": "gmail"},
        "evaluations": vec![json!({"context": {"input": {"to": "x@adatum.com"}}}); 256]});
    let reply = request("POST", &url, &[], body.to_string().into_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["evaluations"].as_array().unwrap().len(), 256);
    // A body over enforce.max_body_bytes is 413.
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(2 << 20));
    assert_eq!(request("POST", &url, &[], big.into_bytes()).await.status, 413);
    node.stop().await;
}
