//! Drafting against a repository that already has rules: human rules are left
//! byte-for-byte alone, only the gap is drafted, ids keep counting, edited
//! rules change owner, unused generated rules are proposed for removal, and a
//! schema on `main` that disagrees with the observations is never rewritten.

mod common;

use serde_json::{json, Value};
use shadowdraft::core::check::{self, Decider};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, Draft, DraftInput};
use shadowdraft::core::evidence::AgentEvidence;
use shadowdraft::core::observation::Call;
use shadowdraft::core::policies::{Owner, Policies, RepoFiles, SCHEMA_PATH};
use shadowdraft::core::summary::Summary;
use shadowdraft::render;
use shadowdraft_fleet::Split;
use std::collections::BTreeMap;

const BOT_FILE: &str = "policies/agents/bot.cedar";

const SCHEMA: &str = r#"entity Agent;
entity McpServer;
action "get_customer" appliesTo {
  principal: [Agent],
  resource: [McpServer],
  context: { input: { customer_id: __cedar::String, expand?: __cedar::Bool } }
};
action "pay" appliesTo {
  principal: [Agent],
  resource: [McpServer],
  context: { input: { amount: __cedar::Long, memo?: __cedar::String } }
};
"#;

/// A human rule: no @generated, allows every `cust_A…` customer on `crm`.
const HUMAN_A: &str = r#"// Hand-written by the payments team.
@id("bot/get_customer/1")
permit (
  principal   == Agent::"bot",
  action      == Action::"get_customer",
  resource    == McpServer::"crm"
)
when { context.input.customer_id like "cust_A*" };  // trailing comment kept"#;

/// Another human rule with a higher number: new ids must continue after it.
const HUMAN_EU: &str = r#"@id("bot/get_customer/5")
permit (principal == Agent::"bot", action == Action::"get_customer", resource == McpServer::"crm-eu");"#;

fn human_repo() -> RepoFiles {
    RepoFiles {
        schema: Some(SCHEMA.to_string()),
        agents: BTreeMap::from([(BOT_FILE.to_string(), format!("{HUMAN_A}\n\n{HUMAN_EU}\n"))]),
    }
}

fn obs(tool: &str, server: &str, args: Value) -> Call {
    common::call(&json!({"agent": "bot", "tool": tool, "server": server, "args": args}))
}

/// 10 calls the first human rule allows, 3 the second allows, 5 + 4 + 3 gap
/// calls, and 2 calls that do not fit the schema (fractional amount on a Long).
fn observations() -> Vec<Call> {
    let mut calls = Vec::new();
    for i in 0..10 {
        calls.push(obs(
            "get_customer",
            "crm",
            json!({"customer_id": format!("cust_A{i:04}")}),
        ));
    }
    for i in 0..3 {
        calls.push(obs(
            "get_customer",
            "crm-eu",
            json!({"customer_id": format!("cust_E{i:04}"), "expand": true}),
        ));
    }
    for i in 0..5 {
        calls.push(obs(
            "get_customer",
            "crm",
            json!({"customer_id": format!("cust_B{i:04}"), "expand": true}),
        ));
    }
    for i in 0..4 {
        calls.push(obs(
            "list_orders",
            "crm",
            json!({"customer_id": format!("cust_A{i:04}"), "limit": 10}),
        ));
    }
    for i in 0..3 {
        calls.push(obs("pay", "bank", json!({"amount": 10 + i})));
    }
    for i in 0..2 {
        calls.push(obs("pay", "bank", json!({"amount": 10.5 + i as f64})));
    }
    calls
}

fn summary(calls: &[Call]) -> Summary {
    let mut s = Summary::default();
    for c in calls {
        s.add(c, None);
    }
    s
}

fn run(files: &RepoFiles, calls: &[Call]) -> Draft {
    draft(&DraftInput {
        files,
        summary: &summary(calls),
        catalogue: None,
        config: &DraftingConfig::default(),
    })
    .unwrap_or_else(|e| panic!("draft failed: {e}"))
}

fn agent<'a>(d: &'a Draft, name: &str) -> &'a AgentEvidence {
    d.evidence
        .agents
        .iter()
        .find(|a| a.agent == name)
        .unwrap_or_else(|| panic!("no evidence for agent {name}"))
}

fn rule_text<'a>(file: &'a str, id: &str) -> &'a str {
    let start = file
        .find(&format!("@id(\"{id}\")"))
        .unwrap_or_else(|| panic!("{id} not in file:\n{file}"));
    let end = file[start..]
        .find("};")
        .map(|i| start + i + 2)
        .expect("rule ends");
    &file[start..end]
}

#[test]
fn human_rules_are_kept_and_only_the_gap_is_drafted() {
    let files = human_repo();
    let calls = observations();
    let d = run(&files, &calls);

    // The human rules are byte-for-byte unchanged: the old file is a prefix of the new.
    let change = d.changes.get(BOT_FILE).expect("bot's file changes");
    let before = files.agents[BOT_FILE].as_str();
    assert_eq!(change.before.as_deref(), Some(before));
    assert!(
        change.after.starts_with(before.trim_end()),
        "the existing text was not kept as is:\n{}",
        change.after
    );
    assert!(change.after.contains(HUMAN_A) && change.after.contains(HUMAN_EU));
    assert_eq!(change.after.matches("@id(\"bot/get_customer/1\")").count(), 1);

    // Only the gap got rules, numbered after the highest existing id of each (agent, tool).
    assert_eq!(
        d.new_rules,
        vec!["bot/get_customer/6", "bot/list_orders/1", "bot/pay/1"],
        "new rules"
    );
    let totals = &d.evidence.totals;
    assert_eq!(totals.calls, 27);
    assert_eq!(totals.already_allowed, 13, "{totals:?}");
    assert_eq!(totals.drafted, 12, "{totals:?}");
    assert_eq!(totals.unrepresentable, 2, "{totals:?}");
    assert_eq!(totals.new_rules, 3);
    assert_eq!(agent(&d, "bot").already_allowed, 13);
    let rendered = render::evidence(&d.evidence);
    assert!(
        rendered.contains("| already allowed by the repository | 13 |"),
        "{rendered}"
    );

    // The new get_customer rule covers the gap (cust_B…), not what the human rules allow.
    let new_rule = rule_text(&change.after, "bot/get_customer/6");
    assert!(new_rule.contains("@generated(\"shadowdraft\")"), "{new_rule}");
    assert!(new_rule.contains("cust_B"), "{new_rule}");
    assert!(!new_rule.contains("cust_A"), "{new_rule}");
    let evidence = agent(&d, "bot");
    let drafted_for_get: Vec<_> = evidence
        .rules
        .iter()
        .filter(|r| r.tool == "get_customer")
        .collect();
    assert_eq!(drafted_for_get.len(), 1);
    assert_eq!(drafted_for_get[0].calls, 5);

    // Ownership after the draft: humans stay human, the new rules are the bot's.
    let out = common::applied(&files, &d);
    let policies = Policies::load(&out).expect("output parses");
    let owner = |id: &str| policies.rule(id).map(|r| r.owner);
    assert_eq!(owner("bot/get_customer/1"), Some(Owner::Human));
    assert_eq!(owner("bot/get_customer/5"), Some(Owner::Human));
    for id in &d.new_rules {
        assert_eq!(owner(id), Some(Owner::Bot), "{id}");
    }

    // Every representable call is allowed by the result; the two fractional ones are not.
    let repo = check::load(&out).expect("output loads");
    let mut decider = Decider::new(&repo);
    let denied: Vec<&Call> = calls.iter().filter(|c| !decider.allowed(c)).collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(denied
        .iter()
        .all(|c| c.tool == "pay" && c.args["amount"].is_f64()));
}

#[test]
fn drafting_the_output_again_changes_nothing() {
    let files = human_repo();
    let calls = observations();
    let first = run(&files, &calls);
    let out = common::applied(&files, &first);
    let second = run(&out, &calls);
    let agent_changes: Vec<&String> = second
        .changes
        .keys()
        .filter(|p| p.starts_with("policies/agents/"))
        .collect();
    assert!(
        agent_changes.is_empty(),
        "agent files changed on a second draft: {agent_changes:?}\n{}",
        render::diff(&second.changes)
    );
    assert!(second.new_rules.is_empty(), "{:?}", second.new_rules);
    assert!(
        second.changes.is_empty(),
        "the schema changed on a second draft:\n{}",
        render::diff(&second.changes)
    );
    let totals = &second.evidence.totals;
    assert_eq!(totals.already_allowed, 25, "{totals:?}");
    assert_eq!(totals.drafted, 0);
    assert_eq!(totals.unrepresentable, 2);
    // Nothing the first draft made is unused, so nothing is proposed for removal.
    assert!(agent(&second, "bot").removal_candidates.is_empty());
}

#[test]
fn drafting_a_drafted_fleet_again_changes_nothing() {
    let d = common::draft_fleet(common::fleet(6, 200, 21), &RepoFiles::default(), Preset::Balanced);
    let out = common::applied(&RepoFiles::default(), &d.draft);
    let again = draft(&DraftInput {
        files: &out,
        summary: &d.summary,
        catalogue: Some(&d.catalogue),
        config: &DraftingConfig::default(),
    })
    .expect("second draft");
    assert!(
        again.changes.is_empty(),
        "second draft of the same fleet changed files:\n{}",
        render::diff(&again.changes)
    );
    assert_eq!(again.evidence.totals.already_allowed, d.summary.calls);
    assert!(again
        .evidence
        .agents
        .iter()
        .all(|a| a.removal_candidates.is_empty()));
}

/// A fleet drafted from its first weeks, then from all of them: the second draft
/// only appends, never touches what the first wrote, and closes the whole gap.
#[test]
fn later_observations_only_append() {
    let fleet = common::fleet(6, 240, 22);
    let catalogue =
        shadowdraft::core::catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let calls: Vec<Call> = fleet.calls(Split::Train).map(|v| common::call(&v)).collect();
    let config = DraftingConfig::default();
    let early = summary(&calls[..calls.len() / 3]);
    let all = summary(&calls);
    let first = draft(&DraftInput {
        files: &RepoFiles::default(),
        summary: &early,
        catalogue: Some(&catalogue),
        config: &config,
    })
    .expect("first draft");
    let repo = common::applied(&RepoFiles::default(), &first);
    let second = draft(&DraftInput {
        files: &repo,
        summary: &all,
        catalogue: Some(&catalogue),
        config: &config,
    })
    .expect("second draft");
    assert!(
        !second.new_rules.is_empty(),
        "two thirds more calls should leave a gap"
    );
    for (path, change) in &second.changes {
        if path == SCHEMA_PATH {
            continue;
        }
        if let Some(before) = &change.before {
            assert!(
                change.after.starts_with(before.trim_end()),
                "{path}: existing rules were rewritten"
            );
        }
    }
    let existing = Policies::load(&repo).expect("first draft parses");
    for id in &second.new_rules {
        assert!(existing.rule(id).is_none(), "{id} reuses an existing id");
        let (prefix, n) = id.rsplit_once('/').expect("agent/tool/n");
        let (agent, tool) = prefix.split_once('/').expect("agent/tool");
        let n: u32 = n.parse().expect("numeric suffix");
        assert!(
            n > existing.last_number(agent, tool),
            "{id} does not continue numbering"
        );
    }
    let t = &second.evidence.totals;
    assert_eq!(
        t.already_allowed + t.drafted + t.unrepresentable,
        t.calls,
        "{t:?}"
    );
    assert!(t.already_allowed >= early.calls, "{t:?}");
    let out = common::applied(&repo, &second);
    let loaded = check::load(&out).expect("loads");
    let mut decider = Decider::new(&loaded);
    assert!(
        calls.iter().all(|c| decider.allowed(c)),
        "some training call is denied"
    );
}

#[test]
fn an_edited_generated_rule_becomes_the_humans() {
    let files = human_repo();
    let calls = observations();
    let first = run(&files, &calls);
    let mut out = common::applied(&files, &first);
    let text = out.agents[BOT_FILE].clone();
    let original = rule_text(&text, "bot/get_customer/6").to_string();
    assert!(original.contains("like \"cust_B*\""), "{original}");
    // A reviewer narrows the rule: the annotations stay, the body changes.
    let edited = original.replace("like \"cust_B*\"", "like \"cust_B000*\"");
    assert_ne!(edited, original);
    out.agents
        .insert(BOT_FILE.into(), text.replace(&original, &edited));

    let policies = Policies::load(&out).expect("edited file parses");
    let owner = |id: &str| policies.rule(id).map(|r| r.owner);
    assert_eq!(owner("bot/get_customer/6"), Some(Owner::Edited));
    assert_eq!(owner("bot/list_orders/1"), Some(Owner::Bot));
    assert_eq!(owner("bot/pay/1"), Some(Owner::Bot));
    assert_eq!(owner("bot/get_customer/1"), Some(Owner::Human));

    // The edited rule still allows cust_B0000..cust_B0004, so nothing changes;
    // narrow it so it misses some and the next draft has a gap to close.
    let narrower = original.replace("like \"cust_B*\"", "like \"cust_B0000\"");
    out.agents
        .insert(BOT_FILE.into(), text.replace(&original, &narrower));
    let again = run(&out, &calls);
    let change = again.changes.get(BOT_FILE).expect("the gap is drafted");
    assert!(
        change.after.contains(&narrower),
        "the edited rule was rewritten:\n{}",
        change.after
    );
    assert_eq!(again.new_rules, vec!["bot/get_customer/7"]);
    assert_eq!(agent(&again, "bot").rules[0].calls, 4);
    // An edited rule is the reviewer's: never proposed for removal, even if unused.
    let unused_edit = original.replace("like \"cust_B*\"", "like \"cust_Z*\"");
    out.agents
        .insert(BOT_FILE.into(), text.replace(&original, &unused_edit));
    let third = run(&out, &calls);
    let candidates = &agent(&third, "bot").removal_candidates;
    assert!(
        !candidates.contains(&"bot/get_customer/6".to_string()),
        "{candidates:?}"
    );
    assert!(third.changes[BOT_FILE].after.contains(&unused_edit));
}

#[test]
fn unused_generated_rules_are_removal_candidates() {
    let files = human_repo();
    let calls = observations();
    let first = run(&files, &calls);
    let out = common::applied(&files, &first);
    // Later observations: get_customer only (cust_A, crm-eu and cust_B); no list_orders, no pay.
    let later: Vec<Call> = calls
        .iter()
        .filter(|c| c.tool == "get_customer")
        .cloned()
        .collect();
    let d = run(&out, &later);
    assert!(d.new_rules.is_empty(), "{:?}", d.new_rules);
    let bot = agent(&d, "bot");
    assert_eq!(
        bot.removal_candidates,
        vec!["bot/list_orders/1".to_string(), "bot/pay/1".to_string()]
    );
    // Human rules are never candidates, used or not; neither is a used generated rule.
    let only_a: Vec<Call> = later
        .iter()
        .filter(|c| c.args["customer_id"].as_str().unwrap().starts_with("cust_A"))
        .cloned()
        .collect();
    let d = run(&out, &only_a);
    let bot = agent(&d, "bot");
    assert_eq!(
        bot.removal_candidates,
        vec![
            "bot/get_customer/6".to_string(),
            "bot/list_orders/1".to_string(),
            "bot/pay/1".to_string()
        ],
        "bot/get_customer/5 (human, unused) must not be listed"
    );
    let rendered = render::evidence(&d.evidence);
    assert!(
        rendered.contains("Removal candidates")
            && rendered.contains("`bot/list_orders/1`")
            && rendered.contains("`bot/get_customer/6`"),
        "{rendered}"
    );
}

/// Removal candidates are reported per observed agent: a generated rule of an
/// agent absent from the observations is not listed (the input may cover only
/// some agents, so absence is not evidence of disuse).
#[test]
fn agents_without_observations_get_no_removal_candidates() {
    let files = human_repo();
    let mut calls = observations();
    calls.push(common::call(
        &json!({"agent": "other", "tool": "get_customer", "server": "crm", "args": {"customer_id": "cust_O1"}}),
    ));
    let out = common::applied(&files, &run(&files, &calls));
    assert!(out.agents.contains_key("policies/agents/other.cedar"));
    let without_other: Vec<Call> = calls.iter().filter(|c| c.agent == "bot").cloned().collect();
    let d = run(&out, &without_other);
    assert!(d.evidence.agents.iter().all(|a| a.agent != "other"));
    assert!(d.changes.is_empty(), "{:?}", d.changes.keys());
}

#[test]
fn a_schema_type_conflict_is_reported_not_rewritten() {
    let files = human_repo();
    let calls = observations();
    let d = run(&files, &calls);

    let conflicts = &d.evidence.type_conflicts;
    assert!(
        conflicts
            .iter()
            .any(|c| c.contains("pay") && c.contains("`amount`") && c.contains("Long")),
        "{conflicts:?}"
    );
    let rendered = render::evidence(&d.evidence);
    assert!(rendered.contains("### Type conflicts"), "{rendered}");

    // The attribute keeps its type on main (and its required-ness).
    let out = common::applied(&files, &d);
    let schema = out.schema.as_deref().expect("schema");
    assert!(
        schema.contains("amount: __cedar::Long") && !schema.contains("amount?:"),
        "{schema}"
    );
    assert!(!schema.contains("amount: __cedar::decimal"), "{schema}");

    // The fractional calls are unrepresentable, counted and explained; the whole ones are drafted.
    let bot = agent(&d, "bot");
    let pay: Vec<_> = bot.unrepresentable.iter().filter(|u| u.tool == "pay").collect();
    assert_eq!(pay.len(), 1, "{:?}", bot.unrepresentable);
    assert_eq!(pay[0].calls, 2);
    assert!(pay[0].reason.contains("amount"), "{}", pay[0].reason);
    let pay_rule = bot.rules.iter().find(|r| r.tool == "pay").expect("pay rule");
    assert_eq!(pay_rule.calls, 3);

    // `check` reports them as denied because they cannot be represented.
    let report = check::check(&out, Some(&summary(&calls)));
    assert!(report.problems.is_empty() && report.validation_errors.is_empty());
    assert_eq!(report.denied.len(), 2, "{:?}", report.denied);
    assert!(report
        .denied
        .iter()
        .all(|x| x.why.contains("cannot be represented")));

    // Only fractional amounts, with no whole ones at all: still no crash, no rule.
    let only_fractional: Vec<Call> = (0..3)
        .map(|i| obs("pay", "bank", json!({"amount": 0.25 + i as f64})))
        .collect();
    let d = run(&files, &only_fractional);
    assert!(d.new_rules.is_empty(), "{:?}", d.new_rules);
    assert_eq!(d.evidence.totals.unrepresentable, 3);
    assert!(!d.evidence.type_conflicts.is_empty());
}

/// A human `forbid` is a decision, not a gap: calls it forbids stay denied and
/// everything else is still drafted. Today the drafted permit cannot override
/// the forbid, replay fails, and the whole draft is rejected as an invariant
/// failure (see the report accompanying this test).
#[test]
fn a_human_forbid_is_respected_and_does_not_block_drafting() {
    let forbid = r#"@id("bot/pay/limit")
forbid (principal == Agent::"bot", action == Action::"pay", resource)
when { context.input.amount > 11 };"#;
    let files = RepoFiles {
        schema: Some(SCHEMA.to_string()),
        agents: BTreeMap::from([(BOT_FILE.to_string(), format!("{forbid}\n"))]),
    };
    let calls: Vec<Call> = (0..4)
        .map(|i| obs("pay", "bank", json!({"amount": 10 + i})))
        .chain((0..3).map(|i| {
            obs(
                "get_customer",
                "crm",
                json!({"customer_id": format!("cust_A{i}")}),
            )
        }))
        .collect();
    let d = draft(&DraftInput {
        files: &files,
        summary: &summary(&calls),
        catalogue: None,
        config: &DraftingConfig::default(),
    })
    .unwrap_or_else(|e| panic!("a human forbid rule made drafting fail: {e}"));
    let out = common::applied(&files, &d);
    assert!(
        out.agents[BOT_FILE].starts_with(forbid),
        "{}",
        out.agents[BOT_FILE]
    );
    let repo = check::load(&out).expect("loads");
    let mut decider = Decider::new(&repo);
    for c in &calls {
        let forbidden = c.tool == "pay" && c.args["amount"].as_i64().unwrap() > 11;
        assert_eq!(decider.allowed(c), !forbidden, "{c:?}");
    }
}
