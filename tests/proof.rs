//! Proofs about policy changes with the real solver (cvc5) behind Cedar's
//! symbolic compiler: known implications and non-implications, counterexamples
//! that read as calls and replay, schema changes, the review of a pull
//! request, time limits, and (a property) no false "implies" against
//! brute-force replay of the calls that drafted two random policies.

mod common;

use common::external;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};
use shadowdraft::core::check::{self, Decider, LoadedRepo};
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::observation::Call;
use shadowdraft::core::permits::{Change, Example, Newness, ScopeDiff, Sides};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft::proof::{Limits, Prover, SolverCommand};
use std::collections::BTreeMap;
use std::time::Duration;

const SCHEMA: &str = r#"entity Agent; entity McpServer;
action "pay" appliesTo { principal: [Agent], resource: [McpServer],
  context: { input: { amount: Long, "to": String, "cc"?: Set<String>, "price"?: decimal, "meta"?: {"n"?: Long} } } };
action "read" appliesTo { principal: [Agent], resource: [McpServer], context: { input: { "path"?: String } } };"#;

fn repo(schema: &str, rules: &str) -> LoadedRepo {
    check::load(&RepoFiles {
        schema: Some(schema.to_string()),
        agents: BTreeMap::from([("policies/agents/a.cedar".to_string(), rules.to_string())]),
    })
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn prover() -> Prover {
    Prover {
        solver: external::cvc5(),
        limits: Limits {
            timeout: Duration::from_secs(30),
            max_examples: 2,
            workers: 2,
            budget: None,
        },
    }
}

fn pay(id: &str, condition: &str) -> String {
    format!(
        r#"@id("{id}") permit (principal == Agent::"a", action == Action::"pay", resource == McpServer::"bank") when {{ {condition} }};"#
    )
}

fn only(diffs: &[ScopeDiff]) -> &ScopeDiff {
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    &diffs[0]
}

fn calls_of(examples: &[Example]) -> Vec<Call> {
    examples.iter().map(|e| common::call(&e.call)).collect()
}

/// Known answers: (head condition, base condition, head ⇒ base).
const CASES: &[(&str, &str, bool)] = &[
    ("context.input.amount <= 100", "context.input.amount <= 500", true),
    (
        "context.input.amount <= 500",
        "context.input.amount <= 100",
        false,
    ),
    ("context.input.amount <= 5", "context.input.amount < 6", true),
    (
        r#"context.input.to like "*@acme.com""#,
        r#"context.input.to like "*.com""#,
        true,
    ),
    (
        r#"context.input.to like "*.com""#,
        r#"context.input.to like "*@acme.com""#,
        false,
    ),
    (
        r#"["eur", "sek"].contains(context.input.to)"#,
        r#"context.input.to like "*e*""#,
        true,
    ),
    (
        r#"context.input.to like "cust_XP*" && !(context.input.to like "*/*" || context.input.to like "*..*")"#,
        r#"context.input.to like "cust_*""#,
        true,
    ),
    (
        r#"context.input.to like "cust_*""#,
        r#"context.input.to like "cust_XP*" && !(context.input.to like "*/*" || context.input.to like "*..*")"#,
        false,
    ),
    (
        r#"context.input has price && context.input.price.lessThanOrEqual(decimal("5000.5"))"#,
        r#"context.input has price && context.input.price.lessThanOrEqual(decimal("5000.0"))"#,
        false,
    ),
    (
        r#"context.input has price && context.input.price.lessThan(decimal("5000.0"))"#,
        r#"context.input has price && context.input.price.lessThanOrEqual(decimal("5000.0"))"#,
        true,
    ),
    ("!(context.input has cc)", "true", true),
    ("true", "!(context.input has cc)", false),
    (
        r#"context.input has cc && ["a@x.com", "b@x.com"].containsAll(context.input.cc)"#,
        r#"context.input has cc && ["a@x.com", "b@x.com", "c@x.com"].containsAll(context.input.cc)"#,
        true,
    ),
    (
        r#"context.input has cc && ["a@x.com", "b@x.com", "c@x.com"].containsAll(context.input.cc)"#,
        r#"context.input has cc && ["a@x.com", "b@x.com"].containsAll(context.input.cc)"#,
        false,
    ),
    (
        "if context.input has meta.n then [1, 2].contains(context.input.meta.n) else true",
        "if context.input has meta.n then context.input.meta.n <= 3 else true",
        true,
    ),
    (
        "if context.input has meta.n then context.input.meta.n <= 3 else true",
        "if context.input has meta.n then [1, 2].contains(context.input.meta.n) else true",
        false,
    ),
    (
        r#"context.input.to like "é*ü""#,
        r#"context.input.to like "é*""#,
        true,
    ),
    (
        r#"context.input.to like "é*""#,
        r#"context.input.to like "é*ü""#,
        false,
    ),
    (r#"context.input.to like "*\"*\\*""#, "false", false),
    (
        r#"context.input.to == "\u{1F600}x\u{7}""#,
        r#"context.input.to like "x*""#,
        false,
    ),
    (
        "context.input.amount >= 9223372036854775806",
        "context.input.amount < 9223372036854775807",
        false,
    ),
];

#[test]
fn cvc5_answers_known_implications_and_non_implications() {
    let prover = prover();
    let mut wrong = Vec::new();
    for (head_condition, base_condition, implies) in CASES {
        let base = repo(SCHEMA, &pay("a/pay/1", base_condition));
        let head = repo(SCHEMA, &pay("a/pay/1", head_condition));
        let diffs = prover
            .diff(Sides {
                base: &base,
                head: &head,
            })
            .value;
        let d = only(&diffs);
        assert!(d.error.is_none() && !d.timed_out, "{head_condition}: {d:?}");
        assert!(d.unconfirmed.is_empty(), "every counterexample replays: {d:?}");
        if d.head_implies_base != Some(*implies) {
            wrong.push(format!(
                "{head_condition} ⇒ {base_condition}: said {:?}",
                d.head_implies_base
            ));
        }
        assert_eq!(d.newly_permitted.is_empty(), *implies, "{head_condition}: {d:?}");
        // The counterexample is a call: it replays allowed by head, denied by base.
        for call in calls_of(&d.newly_permitted) {
            assert!(Decider::new(&head).allowed(&call), "{call:?}");
            assert!(!Decider::new(&base).allowed(&call), "{call:?}");
        }
    }
    assert!(wrong.is_empty(), "wrong answers: {wrong:#?}");
}

#[test]
fn a_widened_rule_shows_the_calls_it_newly_permits() {
    let base = repo(
        SCHEMA,
        &pay(
            "a/pay/1",
            r#"context.input.to like "GB00*" && context.input.amount <= 100"#,
        ),
    );
    let head = repo(
        SCHEMA,
        &pay(
            "a/pay/1",
            r#"context.input.to like "*" && context.input.amount <= 100"#,
        ),
    );
    let diffs = prover()
        .diff(Sides {
            base: &base,
            head: &head,
        })
        .value;
    let d = only(&diffs);
    assert_eq!(
        (d.agent.as_str(), d.tool.as_str(), d.server.as_str()),
        ("a", "pay", "bank")
    );
    assert_eq!(d.head_implies_base, Some(false));
    assert_eq!(d.base_implies_head, Some(true));
    assert_eq!(d.newly_permitted.len(), 2, "two examples: {d:?}");
    assert_ne!(d.newly_permitted[0], d.newly_permitted[1], "different calls");
    assert!(d.no_longer_permitted.is_empty());
    for call in d.newly_permitted.iter().map(|e| &e.call) {
        let to = call["args"]["to"].as_str().unwrap();
        assert!(!to.starts_with("GB00"), "{call}");
        assert!(call["args"]["amount"].as_i64().unwrap() <= 100, "{call}");
        assert_eq!(call["agent"], "a");
    }
}

#[test]
fn an_argument_new_to_the_schema_widens_old_rules_and_diff_says_so() {
    // The base declares no `cc`: a call carrying one does not fit and is denied.
    let narrow = SCHEMA.replace(r#""cc"?: Set<String>, "#, "");
    let rule = pay("a/pay/1", "context.input.amount <= 100");
    let base = repo(&narrow, &rule);
    let head = repo(SCHEMA, &rule);
    let diffs = prover()
        .diff(Sides {
            base: &base,
            head: &head,
        })
        .value;
    let d = only(&diffs);
    assert_eq!(d.head_implies_base, Some(false), "{d:?}");
    assert_eq!(d.base_implies_head, Some(true), "{d:?}");
    for call in d.newly_permitted.iter().map(|e| &e.call) {
        assert!(
            call["args"].get("cc").is_some(),
            "only calls with `cc` are new: {call}"
        );
    }
}

#[test]
fn a_rule_for_every_agent_is_compared_for_agents_no_rule_names() {
    let base = repo(SCHEMA, &pay("a/pay/1", "true"));
    let head = repo(
        SCHEMA,
        &format!(
            "{}\n@id(\"h/1\") permit (principal, action == Action::\"read\", resource);",
            pay("a/pay/1", "true")
        ),
    );
    let diffs = prover()
        .diff(Sides {
            base: &base,
            head: &head,
        })
        .value;
    let others = diffs
        .iter()
        .find(|d| d.agent == "*" && d.tool == "read")
        .expect("a scope for other agents");
    assert_eq!(others.head_implies_base, Some(false));
    let call = &others.newly_permitted[0].call;
    assert_ne!(call["agent"], "a", "the example is another agent: {call}");
}

#[test]
fn the_review_says_what_each_rule_adds_and_removes() {
    let base_rules = format!(
        "{}\n{}",
        pay("a/pay/1", r#"context.input.to like "GB00*""#),
        r#"@id("a/read/1") permit (principal == Agent::"a", action == Action::"read", resource == McpServer::"fs");"#
    );
    let head_rules = format!(
        "{}\n{}\n{}\n{}",
        // A reviewer tightened the rule: it now also caps the amount.
        pay(
            "a/pay/1",
            r#"context.input.to like "GB00*" && context.input.amount <= 10"#
        ),
        // Added by a person for another agent: beyond any drafted rule.
        r#"@id("b/read/1") permit (principal == Agent::"b", action == Action::"read", resource == McpServer::"fs");"#,
        // Never allows anything.
        pay("a/pay/2", "context.input.amount < 0 && context.input.amount > 5"),
        // Shadowed by a forbid.
        r#"@id("a/read/2") permit (principal == Agent::"a", action == Action::"read", resource == McpServer::"fs") when { context.input has path };
           @id("a/read/forbid") forbid (principal == Agent::"a", action == Action::"read", resource == McpServer::"fs") when { context.input has path };"#,
    );
    let base = repo(SCHEMA, &base_rules);
    let head = repo(SCHEMA, &head_rules);
    let review = prover()
        .review(Sides {
            base: &base,
            head: &head,
        })
        .value;
    assert!(
        review.errors.is_empty() && review.timed_out.is_empty(),
        "{review:#?}"
    );
    assert!(review.unconfirmed.is_empty(), "{review:#?}");
    let rule = |id: &str| {
        review
            .rules
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id}: {review:#?}"))
    };
    let tightened = rule("a/pay/1");
    assert_eq!(tightened.change, Change::Edited);
    assert!(tightened.adds.is_empty(), "{tightened:?}");
    assert!(
        !tightened.removes.is_empty(),
        "this edit removes calls: {tightened:?}"
    );
    for example in &tightened.removes {
        assert!(
            example.call["args"]["amount"].as_i64().unwrap() > 10,
            "{example:?}"
        );
        assert!(example.text.contains("`pay` on `bank`"), "{}", example.text);
    }
    let other = rule("b/read/1");
    assert_eq!((other.change, other.newness), (Change::Added, Newness::AllNew));
    assert_eq!(review.beyond.len(), 1, "{review:#?}");
    assert_eq!(review.beyond[0].scope, "b calling read on fs");
    assert!(!review.beyond[0].examples.is_empty());
    assert!(!review.nothing_beyond());
    assert_eq!(review.always_denies, vec!["a/pay/2".to_string()]);
    assert_eq!(review.shadowed.len(), 1, "{review:#?}");
    assert_eq!(review.shadowed[0].id, "a/read/2");
    assert_eq!(review.shadowed[0].shadowed_by, vec!["a/read/forbid".to_string()]);
}

#[test]
fn a_removed_rule_shows_the_calls_no_longer_permitted() {
    let base = repo(
        SCHEMA,
        &format!(
            "{}\n{}",
            pay("a/pay/1", "true"),
            pay("a/pay/2", "context.input.amount > 1000")
        ),
    );
    let head = repo(SCHEMA, &pay("a/pay/2", "context.input.amount > 1000"));
    let diffs = prover()
        .diff(Sides {
            base: &base,
            head: &head,
        })
        .value;
    let d = only(&diffs);
    assert_eq!(
        (d.head_implies_base, d.base_implies_head),
        (Some(true), Some(false))
    );
    for call in d.no_longer_permitted.iter().map(|e| &e.call) {
        assert!(call["args"]["amount"].as_i64().unwrap() <= 1000, "{call}");
    }
    let review = prover()
        .review(Sides {
            base: &base,
            head: &head,
        })
        .value;
    assert!(review.nothing_beyond(), "{review:#?}");
    let removed = &review.rules[0];
    assert_eq!(
        (removed.id.as_str(), removed.change),
        ("a/pay/1", Change::Removed)
    );
    assert!(!removed.removes.is_empty());
}

#[test]
fn a_query_out_of_time_says_so_and_a_missing_solver_says_how_to_get_one() {
    external::cvc5();
    let base = repo(SCHEMA, &pay("a/pay/1", "true"));
    let head = repo(SCHEMA, &pay("a/pay/1", "context.input.amount < 5"));
    let sides = Sides {
        base: &base,
        head: &head,
    };
    let silent = Prover {
        // Reads its input and never answers, like a solver stuck on a hard query.
        solver: SolverCommand::parse("sleep 60").unwrap(),
        limits: Limits {
            timeout: Duration::from_millis(300),
            ..Limits::default()
        },
    };
    let started = std::time::Instant::now();
    let proved = silent.diff(sides);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the limit holds: {:?}",
        started.elapsed()
    );
    let d = only(&proved.value);
    assert!(d.timed_out, "{d:?}");
    assert_eq!((d.head_implies_base, d.base_implies_head), (None, None));
    assert!(proved.stats.timed_out >= 2, "{:?}", proved.stats);
    let review = silent.review(sides).value;
    assert!(
        !review.timed_out.is_empty() && !review.nothing_beyond(),
        "{review:#?}"
    );

    let missing = SolverCommand::parse("no-such-solver-7f3a").unwrap();
    let e = missing.version().unwrap_err();
    assert!(
        e.contains("no-such-solver-7f3a") && e.contains("apt-get install cvc5"),
        "{e}"
    );
    let d = Prover {
        solver: missing,
        limits: Limits::default(),
    }
    .diff(sides)
    .value;
    assert!(
        only(&d).error.as_deref().unwrap_or("").contains("install cvc5"),
        "{d:?}"
    );
}

// --- The command line ------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_shadowdraft");

fn shadowdraft(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

/// A git work tree whose `main` holds the example policies without `support-bot-001`.
fn policy_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let agents = dir.path().join("policies/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::copy(
        root.join("policies/schema.cedarschema"),
        dir.path().join("policies/schema.cedarschema"),
    )
    .unwrap();
    for entry in std::fs::read_dir(root.join("policies/agents")).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("support-bot-001.cedar") {
            std::fs::copy(&path, agents.join(path.file_name().unwrap())).unwrap();
        }
    }
    let repo = git2::Repository::init_opts(
        dir.path(),
        git2::RepositoryInitOptions::new().initial_head("main"),
    )
    .unwrap();
    let mut index = repo.index().unwrap();
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "base", &tree, &[]).unwrap();
    dir
}

#[test]
fn check_against_main_passes_a_draft_and_fails_a_human_edit_that_widens_another_agent() {
    external::cvc5();
    let repo = policy_repo();
    let dir = repo.path().to_str().unwrap();
    let train = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleet/train.jsonl");
    let (code, out, err) = shadowdraft(&["draft", "--observations", train, "--repo", dir, "--write"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = shadowdraft(&["check", dir, "--observations", train, "--against", "main"]);
    assert_eq!(code, 0, "the drafted rules are the new scope: {out}{err}");
    assert!(out.contains("proved (cvc5 "), "{out}");

    // A person lets another agent charge customers.
    let billing = repo.path().join("policies/agents/billing-bot-001.cedar");
    let mut text = std::fs::read_to_string(&billing).unwrap();
    text.push_str(
        "\n@id(\"extra\")\npermit (principal == Agent::\"research-bot-001\", action == Action::\"charge_customer\", resource == McpServer::\"stripe\");\n",
    );
    std::fs::write(&billing, text).unwrap();
    let (code, out, err) = shadowdraft(&["check", dir, "--against", "main"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("beyond: research-bot-001 calling charge_customer on stripe"),
        "{out}"
    );
    assert!(
        out.contains("e.g. `research-bot-001` calls `charge_customer` on `stripe` with "),
        "{out}"
    );

    let (code, out, err) = shadowdraft(&["diff", dir, "--json", "--max-examples", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    let diff: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diff["head"], "worktree");
    assert_eq!(diff["base"].as_str().unwrap().len(), 40, "{diff}");
    let actions = diff["actions"].as_array().unwrap();
    assert!(
        actions
            .iter()
            .all(|a| a["head_implies_base"] == json!(false) && a["base_implies_head"] == json!(true)),
        "{diff:#}"
    );
    let research = actions
        .iter()
        .find(|a| a["agent"] == "research-bot-001")
        .unwrap_or_else(|| panic!("{diff:#}"));
    assert_eq!(research["tool"], "charge_customer");
    assert_eq!(research["timed_out"], false);
    let call = &research["newly_permitted"][0];
    assert_eq!(
        (call["agent"].as_str(), call["server"].as_str()),
        (Some("research-bot-001"), Some("stripe"))
    );
    assert!(call["args"].is_object());
    assert!(
        actions.iter().any(|a| a["agent"] == "support-bot-001"),
        "the draft shows too: {diff:#}"
    );

    let (code, _, err) = shadowdraft(&["diff", dir, "--solver", "no-such-solver-7f3a"]);
    assert_eq!(code, 2);
    assert!(err.contains("apt-get install cvc5"), "{err}");
    let (code, _, err) = shadowdraft(&["diff", dir, "--base", "no-such-branch"]);
    assert_eq!(code, 2);
    assert!(err.contains("`no-such-branch` is not a commit"), "{err}");
}

// --- Property: no false "implies" -----------------------------------------

const TOOLS: [&str; 2] = ["send_message", "get_record"];
const NAMES: [&str; 5] = ["to", "customer_id", "amount", "state", "labels"];

fn argument(name: &str, seed: u64) -> Value {
    match name {
        "to" => json!(format!(
            "{}@{}",
            ["alice", "bob", "ops"][(seed % 3) as usize],
            ["acme.com", "evil.test"][(seed / 3 % 2) as usize]
        )),
        "customer_id" => json!(format!(
            "{}{:04}",
            ["cust_", "ord-"][(seed % 2) as usize],
            seed % 10_000
        )),
        "amount" => json!((seed % 2_000) as i64 - 100),
        "state" => json!(["open", "closed", "pending"][(seed % 3) as usize]),
        _ => Value::Array(
            (0..1 + seed % 2)
                .map(|i| json!(["red", "blue", "x*y"][((seed / 2 + i) % 3) as usize]))
                .collect(),
        ),
    }
}

/// Calls of two agents in one small world: the arguments' types agree across calls.
fn calls() -> impl Strategy<Value = Vec<Call>> {
    let call = (
        0..2usize,
        0..2usize,
        any::<bool>(),
        prop::collection::vec((any::<bool>(), any::<u64>()), 5),
    );
    prop::collection::vec(call, 1..=12).prop_map(|raws| {
        raws.into_iter()
            .map(|(agent, tool, other_server, args)| {
                let mut map = Map::new();
                for (i, (present, seed)) in args.into_iter().enumerate() {
                    // Tools use different arguments; the first is always present.
                    let name = NAMES[(i + tool * 2) % NAMES.len()];
                    if i == 0 || present {
                        map.insert(name.into(), argument(name, seed));
                    }
                }
                let agent = ["alpha", "beta"][agent];
                common::call(&json!({
                    "agent": agent,
                    "tool": TOOLS[tool],
                    "server": if other_server { "srv-b" } else { "srv-a" },
                    "args": map,
                }))
            })
            .collect()
    })
}

fn drafted(calls: &[Call]) -> RepoFiles {
    let mut summary = Summary::default();
    for c in calls {
        summary.add(c, None);
    }
    let d = draft(&DraftInput {
        files: &RepoFiles::default(),
        summary: &summary,
        catalogue: None,
        config: &DraftingConfig::default(),
    })
    .expect("drafting succeeds");
    common::applied(&RepoFiles::default(), &d)
}

proptest! {
    #![proptest_config(Config { cases: 12, failure_persistence: None, ..Config::default() })]

    /// For two policies drafted from random calls, every call either allows and
    /// the other denies refutes the verdict for its scope; each example replays.
    #[test]
    fn diff_agrees_with_replay_over_the_calls_that_drafted_the_policies(a in calls(), b in calls()) {
        let (base_files, head_files) = (drafted(&a), drafted(&b));
        let base = check::load(&base_files).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let head = check::load(&head_files).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let diffs = prover().diff(Sides { base: &base, head: &head }).value;
        let (mut in_base, mut in_head) = (Decider::new(&base), Decider::new(&head));
        for d in &diffs {
            prop_assert!(d.error.is_none() && !d.timed_out, "{d:?}");
            prop_assert!(d.unconfirmed.is_empty(), "a counterexample did not replay: {d:?}");
            prop_assert_eq!(d.head_implies_base == Some(false), !d.newly_permitted.is_empty(), "{:?}", d);
            prop_assert_eq!(d.base_implies_head == Some(false), !d.no_longer_permitted.is_empty(), "{:?}", d);
            for call in calls_of(&d.newly_permitted) {
                prop_assert!(in_head.allowed(&call) && !in_base.allowed(&call), "{call:?}");
            }
            for call in calls_of(&d.no_longer_permitted) {
                prop_assert!(in_base.allowed(&call) && !in_head.allowed(&call), "{call:?}");
            }
        }
        for call in a.iter().chain(&b) {
            let (allowed_base, allowed_head) = (in_base.allowed(call), in_head.allowed(call));
            if allowed_base == allowed_head {
                continue;
            }
            let scope = diffs.iter().find(|d| d.agent == call.agent && d.tool == call.tool && d.server == call.server);
            let scope = scope.ok_or_else(|| TestCaseError::fail(format!("the sides differ on {call:?} but diff has no scope for it: {diffs:#?}")))?;
            if allowed_head {
                prop_assert_eq!(scope.head_implies_base, Some(false), "false implies: head allows {:?}", call);
            } else {
                prop_assert_eq!(scope.base_implies_head, Some(false), "false implies: base allows {:?}", call);
            }
        }
    }
}
