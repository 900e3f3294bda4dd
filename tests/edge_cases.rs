//! Edge cases of argument values found while writing the property tests. Each
//! states what drafting should do; a call that cannot be represented must be
//! reported and stay denied, never make the whole draft fail.

mod common;

use serde_json::{json, Value};
use shadowdraft::core::check::{self, Decider};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, Draft, DraftInput};
use shadowdraft::core::observation::{parse_call, Call, Origin};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;

fn call(agent: &str, tool: &str, args: Value) -> Call {
    common::call(&json!({"agent": agent, "tool": tool, "server": "srv", "args": args}))
}

fn run(calls: &[Call], preset: Preset) -> Draft {
    let mut summary = Summary::default();
    for c in calls {
        summary.add(c, None);
    }
    let config = DraftingConfig {
        preset,
        ..DraftingConfig::default()
    };
    draft(&DraftInput {
        files: &RepoFiles::default(),
        summary: &summary,
        catalogue: None,
        config: &config,
    })
    .unwrap_or_else(|e| panic!("drafting failed: {e}"))
}

/// The calls the draft denies.
fn denied(d: &Draft, calls: &[Call]) -> Vec<Call> {
    let files = common::applied(&RepoFiles::default(), d);
    let repo = check::load(&files).unwrap_or_else(|p| panic!("draft does not load: {p:?}"));
    let mut decider = Decider::new(&repo);
    calls.iter().filter(|c| !decider.allowed(c)).cloned().collect()
}

/// One agent always sends `cc: []`, another lists addresses: a common shape for
/// e-mail tools. The element type is known, so every call can be drafted.
#[test]
fn an_empty_list_next_to_non_empty_ones_is_drafted() {
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(call(
            "a",
            "send_email",
            json!({"to": format!("x{i}@corp.example"), "cc": []}),
        ));
        calls.push(call(
            "b",
            "send_email",
            json!({"to": format!("y{i}@corp.example"), "cc": ["boss@corp.example"]}),
        ));
    }
    for preset in [Preset::Tight, Preset::Balanced, Preset::Loose] {
        let d = run(&calls, preset);
        assert!(denied(&d, &calls).is_empty(), "{preset:?}");
        // `[]` is still the only cc agent a may send.
        let mut more = calls[0].clone();
        more.args.insert("cc".into(), json!(["boss@corp.example"]));
        assert_eq!(denied(&d, &[more.clone()]), vec![more], "{preset:?}");
    }
}

/// An argument only ever seen as `[]` has no element type: such calls cannot be
/// represented. They stay denied, and the evidence says so.
#[test]
fn an_argument_only_ever_empty_is_reported_unrepresentable() {
    let calls: Vec<Call> = (0..4)
        .map(|i| call("a", "tag_items", json!({"id": format!("it_{i}"), "tags": []})))
        .collect();
    let d = run(&calls, Preset::Balanced);
    assert_eq!(denied(&d, &calls).len(), 4);
    assert_eq!(d.evidence.totals.unrepresentable, 4);
    let reasons: Vec<&str> = d.evidence.agents[0]
        .unrepresentable
        .iter()
        .map(|u| u.reason.as_str())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("tags")), "{reasons:?}");
}

/// Whole numbers beyond ±922 337 203 685 477 (nanosecond timestamps, snowflake
/// ids) are valid Cedar Longs and must be drafted like any other.
#[test]
fn large_whole_numbers_next_to_small_ones_are_drafted() {
    let calls = vec![
        call("a", "get_events", json!({"since_ns": 5})),
        call("a", "get_events", json!({"since_ns": 7})),
        call(
            "a",
            "get_events",
            json!({"since_ns": 1_767_225_600_000_000_000i64}),
        ),
    ];
    for preset in [Preset::Tight, Preset::Balanced, Preset::Loose] {
        let d = run(&calls, preset);
        assert!(denied(&d, &calls).is_empty(), "{preset:?}");
    }
}

/// A whole number above i64::MAX cannot be a Cedar Long: that call is
/// unrepresentable and reported; the others are drafted.
#[test]
fn a_number_beyond_i64_is_unrepresentable_not_fatal() {
    let calls = vec![
        call("a", "get_events", json!({"n": 5})),
        call("a", "get_events", json!({"n": 7})),
        call("a", "get_events", json!({"n": 18_000_000_000_000_000_000u64})),
    ];
    let d = run(&calls, Preset::Balanced);
    assert_eq!(d.evidence.totals.unrepresentable, 1, "{:?}", d.evidence.totals);
    assert_eq!(denied(&d, &calls), vec![calls[2].clone()]);
}

/// Headroom must not push a decimal bound past what Cedar's `decimal` holds
/// (922337203685477.5807): the bound would not parse.
#[test]
fn decimal_headroom_stays_within_cedar_decimal() {
    let calls = vec![
        call("a", "get_quote", json!({"amount": 1.5})),
        call("a", "get_quote", json!({"amount": 900_000_000_000_000.5})),
    ];
    for preset in [Preset::Balanced, Preset::Loose] {
        let d = run(&calls, preset);
        assert!(denied(&d, &calls).is_empty(), "{preset:?}");
    }
}

/// `count` is any u64 ≥ 1; summing counts must neither panic nor wrap around.
#[test]
fn huge_counts_do_not_overflow_the_totals() {
    let origin = Origin {
        source: "x".into(),
        line: Some(1),
    };
    let line = |count: u64| format!(r#"{{"agent":"a","tool":"get_x","args":{{}},"count":{count}}}"#);
    // A count no node could have seen is rejected, naming the field.
    let err = parse_call(&origin, &line(u64::MAX - 5)).unwrap_err();
    assert_eq!(err.field, "count");
    assert!(err.message.contains("at most"), "{err}");
    // The largest accepted counts add up without wrapping.
    let big = parse_call(&origin, &line(shadowdraft::core::observation::MAX_COUNT)).unwrap();
    let mut summary = Summary::default();
    for _ in 0..3 {
        summary.add(&big, None);
    }
    assert_eq!(summary.calls, 3 * shadowdraft::core::observation::MAX_COUNT);
}
