//! Invariants of a draft of a synthetic fleet against an empty repository, for
//! every preset: every training call is allowed, the repository checks clean,
//! drafting is deterministic, planted secrets never leak into anything a person
//! reads, and calls that differ from what was observed are denied.

mod common;

use common::Drafted;
use serde_json::{json, Map, Value};
use shadowdraft::core::check::{self, Decider, LoadedRepo};
use shadowdraft::core::config::Preset;
use shadowdraft::core::observation::Call;
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::render;
use shadowdraft_fleet::Split;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Fleet (agents, calls per agent, seed) per preset. Balanced is measured against
/// attacks per kind, so it gets the most calls.
fn size(preset: Preset) -> (usize, usize, u64) {
    match preset {
        Preset::Tight => (8, 200, 11),
        Preset::Balanced => (12, 300, 12),
        Preset::Loose => (8, 200, 13),
    }
}

fn fleet(preset: Preset) -> shadowdraft_fleet::Fleet {
    let (agents, calls, seed) = size(preset);
    common::fleet(agents, calls, seed)
}

/// One draft per preset, shared by the tests of that preset.
fn drafted(preset: Preset) -> &'static Drafted {
    static TIGHT: OnceLock<Drafted> = OnceLock::new();
    static BALANCED: OnceLock<Drafted> = OnceLock::new();
    static LOOSE: OnceLock<Drafted> = OnceLock::new();
    let cell = match preset {
        Preset::Tight => &TIGHT,
        Preset::Balanced => &BALANCED,
        Preset::Loose => &LOOSE,
    };
    cell.get_or_init(|| common::draft_fleet(fleet(preset), &RepoFiles::default(), preset))
}

fn drafted_repo(d: &Drafted) -> RepoFiles {
    common::applied(&RepoFiles::default(), &d.draft)
}

fn loaded(d: &Drafted) -> LoadedRepo {
    check::load(&drafted_repo(d)).unwrap_or_else(|p| panic!("drafted repo does not load:\n{}", p.join("\n")))
}

fn short(call: &Call) -> String {
    let text = format!(
        "{} calling {} on {} with {}",
        call.agent,
        call.tool,
        call.server,
        Value::Object(call.args.clone())
    );
    text.chars().take(300).collect()
}

// ---------------------------------------------------------------------------------------------
// (a) every training call is allowed

fn every_training_call_is_allowed(preset: Preset) {
    let d = drafted(preset);
    assert!(!d.draft.new_rules.is_empty(), "{preset:?}: nothing drafted");
    let repo = loaded(d);
    let mut decider = Decider::new(&repo);
    let mut total = 0;
    let mut denied = Vec::new();
    for v in d.fleet.calls(Split::Train) {
        let call = common::call(&v);
        total += 1;
        if !decider.allowed(&call) {
            denied.push(short(&call));
        }
    }
    let (agents, calls, _) = size(preset);
    assert_eq!(total, agents * calls);
    assert!(
        denied.is_empty(),
        "{preset:?}: {} of {total} training calls denied by the drafted repo, e.g.:\n{}",
        denied.len(),
        denied.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    // Evidence agrees: every call is either drafted or (here, with an empty repo) none already allowed.
    let totals = &d.draft.evidence.totals;
    assert_eq!(totals.calls, total as u64);
    assert_eq!(totals.unrepresentable, 0, "{preset:?}: {totals:?}");
    assert_eq!(totals.already_allowed, 0, "{preset:?}: {totals:?}");
    assert_eq!(totals.drafted, total as u64, "{preset:?}: {totals:?}");
    assert_eq!(totals.new_rules, d.draft.new_rules.len());
}

// ---------------------------------------------------------------------------------------------
// (b) the drafted repository passes `check` strictly

fn drafted_repo_passes_check(preset: Preset) {
    let d = drafted(preset);
    let files = drafted_repo(d);
    let report = check::check(&files, Some(&d.summary));
    assert!(
        report.passed(),
        "{preset:?}: check failed\nproblems: {:#?}\nvalidation: {:#?}\ndenied: {:#?}",
        report.problems,
        report.validation_errors,
        report.denied.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(report.rules, d.draft.new_rules.len(), "{preset:?}");
    assert_eq!(report.calls_replayed, d.summary.calls, "{preset:?}");
    assert_eq!(report.shapes_replayed, d.summary.shape_count(), "{preset:?}");
    // Without observations it still validates.
    assert!(check::check(&files, None).passed());
}

// ---------------------------------------------------------------------------------------------
// (c) determinism

fn drafting_is_deterministic(preset: Preset) {
    let d = drafted(preset);
    // The same calls, generated and summarised afresh: the same input.
    let again = common::draft_fleet(fleet(preset), &RepoFiles::default(), preset).draft;
    assert_eq!(
        d.draft.changes.keys().collect::<Vec<_>>(),
        again.changes.keys().collect::<Vec<_>>(),
        "{preset:?}: changed files differ"
    );
    for (path, change) in &d.draft.changes {
        assert!(
            change.after.as_bytes() == again.changes[path].after.as_bytes(),
            "{preset:?}: {path} differs between two drafts of the same input"
        );
        assert_eq!(change.before, again.changes[path].before);
    }
    assert_eq!(d.draft.new_rules, again.new_rules, "{preset:?}");
    assert_eq!(
        render::evidence(&d.draft.evidence),
        render::evidence(&again.evidence),
        "{preset:?}: rendered evidence differs"
    );
    assert_eq!(render::diff(&d.draft.changes), render::diff(&again.changes));
}

// ---------------------------------------------------------------------------------------------
// (d) secrets never leak

/// The characters that follow `marker` in `text` while `keep` holds, at every occurrence.
fn after(text: &str, marker: &str, keep: impl Fn(char) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        rest = &rest[i + marker.len()..];
        let s: String = rest.chars().take_while(|c| keep(*c)).collect();
        if !s.is_empty() {
            out.push(s);
        }
    }
    out
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The random part of each secret planted in a call labelled `label`.
fn planted_secrets(label: &str, args: &Map<String, Value>) -> Vec<String> {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let mut texts = Vec::new();
    strings(&Value::Object(args.clone()), &mut texts);
    let mut out = Vec::new();
    for t in &texts {
        match label {
            "secret_github_token" => out.extend(after(t, "ghp_", alnum)),
            "secret_stripe_key" => out.extend(after(t, "sk_live_", alnum)),
            "secret_aws_key" => {
                out.extend(after(t, "AKIA", alnum));
                for key_id in after(t, "AKIA", alnum) {
                    out.extend(after(t, &format!("AKIA{key_id} / "), alnum));
                }
            }
            "secret_jwt" => {
                for token in after(t, "Bearer ", |c| !c.is_whitespace()) {
                    // The header is a well-known constant; the payload and signature are not.
                    if let Some((_, rest)) = token.split_once('.') {
                        out.push(rest.to_string());
                    }
                }
            }
            "secret_card_number" => {
                for card in after(t, "Card on file: ", |c| {
                    c.is_ascii_digit() || c == ' ' || c == '-'
                }) {
                    let card = card.trim_end_matches(' ').to_string();
                    let digits: String = card.chars().filter(char::is_ascii_digit).collect();
                    out.push(card);
                    out.push(digits);
                }
            }
            "secret_url_token" if t.starts_with("http") => {
                if let Some((_, token)) = t.rsplit_once('=') {
                    out.push(token.to_string());
                }
            }
            _ => {}
        }
    }
    if label == "secret_api_key_arg" {
        if let Some(Value::String(key)) = args.get("api_key") {
            out.push(key.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

fn secrets_never_leak(preset: Preset) {
    let d = drafted(preset);
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut kinds = BTreeSet::new();
    for (label, v) in d.fleet.labelled(Split::Train) {
        if !label.starts_with("secret_") {
            continue;
        }
        let call = common::call(&v);
        let found = planted_secrets(label, &call.args);
        assert!(
            !found.is_empty(),
            "could not find the planted {label} in {}",
            short(&call)
        );
        for s in found {
            assert!(
                s.len() >= 16,
                "{label}: extracted secret {s:?} is too short to be meaningful"
            );
            secrets.push((label.to_string(), s));
        }
        kinds.insert(label);
    }
    assert!(
        secrets.len() >= 5 && kinds.len() >= 3,
        "{preset:?}: too few planted secrets to test ({} of kinds {kinds:?})",
        secrets.len()
    );
    let evidence = render::evidence(&d.draft.evidence);
    let diff = render::diff(&d.draft.changes);
    let mut outputs: Vec<(String, &str)> = d
        .draft
        .changes
        .iter()
        .map(|(path, change)| (path.clone(), change.after.as_str()))
        .collect();
    outputs.push(("rendered evidence".into(), &evidence));
    outputs.push(("rendered diff".into(), &diff));
    let mut leaks = Vec::new();
    for (label, secret) in &secrets {
        for (name, text) in &outputs {
            if text.contains(secret.as_str()) {
                leaks.push(format!("{label} {secret:?} appears in {name}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{preset:?}: secrets leaked:\n{}",
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// (e) calls that differ from what was observed are denied

/// The first training call of every (agent, tool), and the argument names seen for it.
fn first_calls(d: &Drafted) -> BTreeMap<(String, String), (Call, BTreeSet<String>)> {
    let mut out: BTreeMap<(String, String), (Call, BTreeSet<String>)> = BTreeMap::new();
    for v in d.fleet.calls(Split::Train) {
        let call = common::call(&v);
        let names: Vec<String> = call.args.keys().cloned().collect();
        out.entry((call.agent.clone(), call.tool.clone()))
            .or_insert_with(|| (call, BTreeSet::new()))
            .1
            .extend(names);
    }
    out
}

fn assert_all_denied(preset: Preset, what: &str, repo: &LoadedRepo, calls: &[Call]) {
    assert!(!calls.is_empty(), "{preset:?}: no calls for {what}");
    let mut decider = Decider::new(repo);
    let allowed: Vec<String> = calls.iter().filter(|c| decider.allowed(c)).map(short).collect();
    assert!(
        allowed.is_empty(),
        "{preset:?}: {} of {} calls with {what} were allowed, e.g.:\n{}",
        allowed.len(),
        calls.len(),
        allowed.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn unobserved_variations_are_denied(preset: Preset) {
    let d = drafted(preset);
    let repo = loaded(d);
    let firsts = first_calls(d);
    let agents: BTreeSet<String> = firsts.keys().map(|(a, _)| a.clone()).collect();
    let tools: BTreeMap<String, Call> = firsts
        .iter()
        .map(|((_, t), (c, _))| (t.clone(), c.clone()))
        .collect();
    assert_eq!(agents.len(), size(preset).0);

    // A tool the agent never called (with arguments another agent used for it).
    let mut foreign = Vec::new();
    for agent in &agents {
        for (tool, example) in &tools {
            if !firsts.contains_key(&(agent.clone(), tool.clone())) {
                foreign.push(Call {
                    agent: agent.clone(),
                    ..example.clone()
                });
            }
        }
    }
    assert_all_denied(preset, "a tool the agent never called", &repo, &foreign);

    // A tool nobody called that the catalogue declares.
    let example = &firsts.values().next().expect("some call").0;
    let mut never = Vec::new();
    for tool in &d.draft.evidence.never_observed {
        for agent in &agents {
            never.push(Call {
                agent: agent.clone(),
                tool: tool.clone(),
                args: Map::new(),
                ..example.clone()
            });
        }
    }
    if !never.is_empty() {
        assert_all_denied(preset, "a catalogue tool nobody called", &repo, &never);
    }

    // The same call on another server.
    let servers: Vec<Call> = firsts
        .values()
        .flat_map(|(c, _)| {
            [format!("{}-evil", c.server), "default".to_string()].map(|server| Call { server, ..c.clone() })
        })
        .collect();
    assert_all_denied(preset, "a different server", &repo, &servers);

    // Every observed call is allowed in the first place, so the variations above are what deny.
    let mut decider = Decider::new(&repo);
    for (c, _) in firsts.values() {
        assert!(
            decider.allowed(c),
            "{preset:?}: observed call denied: {}",
            short(c)
        );
    }

    // An argument never seen for this (agent, tool): one the schema knows for some
    // tools (`bcc`), and one it knows nowhere.
    let mut extra = Vec::new();
    for (c, seen) in firsts.values() {
        for (name, value) in [("bcc", json!("x@evil.example")), ("zz_injected", json!("1"))] {
            if !seen.contains(name) {
                let mut call = c.clone();
                call.args.insert(name.into(), value);
                extra.push(call);
            }
        }
        // An array-valued `bcc`, the shape the catalogue declares for e-mail tools.
        if !seen.contains("bcc") {
            let mut call = c.clone();
            call.args.insert("bcc".into(), json!(["x@evil.example"]));
            extra.push(call);
        }
    }
    assert_all_denied(preset, "an extra argument never seen", &repo, &extra);
}

/// Denied / total attack calls per kind, computed once per preset.
fn attack_rates(preset: Preset) -> &'static BTreeMap<&'static str, (usize, usize)> {
    type Rates = BTreeMap<&'static str, (usize, usize)>;
    static TIGHT: OnceLock<Rates> = OnceLock::new();
    static BALANCED: OnceLock<Rates> = OnceLock::new();
    static LOOSE: OnceLock<Rates> = OnceLock::new();
    let cell = match preset {
        Preset::Tight => &TIGHT,
        Preset::Balanced => &BALANCED,
        Preset::Loose => &LOOSE,
    };
    cell.get_or_init(|| {
        let d = drafted(preset);
        let repo = loaded(d);
        let mut decider = Decider::new(&repo);
        let mut rates = Rates::new();
        for (kind, v) in d.fleet.labelled(Split::Attack) {
            let call = common::call(&v);
            let entry = rates.entry(kind).or_default();
            entry.1 += 1;
            if !decider.allowed(&call) {
                entry.0 += 1;
            }
        }
        rates
    })
}

fn assert_kinds_denied(preset: Preset, kinds: &[&str], at_least: f64) {
    let rates = attack_rates(preset);
    let shown: Vec<String> = rates
        .iter()
        .map(|(k, (denied, total))| format!("{k}: {denied}/{total}"))
        .collect();
    let mut failures = Vec::new();
    for kind in kinds {
        let Some(&(denied, total)) = rates.get(kind) else {
            failures.push(format!("{kind}: no attack calls of this kind in the split"));
            continue;
        };
        if total < 10 {
            failures.push(format!("{kind}: only {total} attack calls, too few to measure"));
            continue;
        }
        let rate = denied as f64 / total as f64;
        if rate < at_least {
            failures.push(format!(
                "{kind}: denied {denied}/{total} = {:.1}% < {:.0}%",
                rate * 100.0,
                at_least * 100.0
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{preset:?}: attack kinds not denied often enough:\n  {}\nall kinds: {}",
        failures.join("\n  "),
        shown.join(", ")
    );
}

const STRUCTURAL_KINDS: [&str; 2] = ["other_agents_tool", "other_server"];

macro_rules! per_preset {
    ($module:ident, $preset:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn every_training_call_is_allowed() {
                super::every_training_call_is_allowed($preset);
            }

            #[test]
            fn drafted_repo_passes_strict_check() {
                super::drafted_repo_passes_check($preset);
            }

            #[test]
            fn drafting_is_deterministic() {
                super::drafting_is_deterministic($preset);
            }

            #[test]
            fn planted_secrets_never_leak() {
                super::secrets_never_leak($preset);
            }

            #[test]
            fn unobserved_variations_are_denied() {
                super::unobserved_variations_are_denied($preset);
            }

            /// Another agent's tool and another server are never allowed, whatever the preset.
            #[test]
            fn structural_attacks_are_always_denied() {
                super::assert_kinds_denied($preset, &STRUCTURAL_KINDS, 1.0);
            }
        }
    };
}

per_preset!(tight, Preset::Tight);
per_preset!(balanced, Preset::Balanced);
per_preset!(loose, Preset::Loose);

#[test]
fn balanced_denies_attack_kinds() {
    assert_kinds_denied(
        Preset::Balanced,
        &[
            "amount_out_of_range",
            "injected_optional_arg",
            "other_agents_tool",
            "other_server",
            "path_traversal",
            "exfil_url_host",
            "new_account",
        ],
        0.95,
    );
}

#[test]
fn secret_extraction_finds_each_kind() {
    // The extractor itself: each planted kind yields its random part.
    let args = |s: &str| json!({ "text": s }).as_object().unwrap().clone();
    let gh = planted_secrets(
        "secret_github_token",
        &args("see CI token if you need it: ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    );
    assert_eq!(gh, vec!["abcdefghijklmnopqrstuvwxyz0123456789"]);
    let card = planted_secrets(
        "secret_card_number",
        &args("x Card on file: 4111 1111 1111 1111 exp 01/29"),
    );
    assert_eq!(card, vec!["4111 1111 1111 1111", "4111111111111111"]);
    let url = planted_secrets(
        "secret_url_token",
        &json!({"url": "https://api.example.com/v1/x?a=b&token=ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"})
            .as_object()
            .unwrap()
            .clone(),
    );
    assert_eq!(url, vec!["ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"]);
}
