//! Properties of drafting over random small call sets (sessions, some bound to
//! arguments, and sets of addresses and identifiers included): it never fails,
//! every call is allowed by the result, and the result depends only on the
//! multiset of calls (same input → same bytes, in any order).

mod common;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};
use shadowdraft::core::check::{self, Decider};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, Draft, DraftInput};
use shadowdraft::core::observation::Call;
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft::render;

/// Agent ids, including ones that need escaping in Cedar and in file names.
const AGENTS: [&str; 3] = ["alpha", "beta-bot.v2", "gamma/ü \"q\""];
/// Tool names with different risks: read-only, side-effecting, destructive.
const TOOLS: [&str; 3] = ["get_record", "send_message", "delete_item"];
/// Argument names, some of them destination-like.
const NAMES: [&str; 8] = [
    "to",
    "url",
    "query",
    "customer_id",
    "amount",
    "limit",
    "enabled",
    "meta",
];
const DOMAINS: [&str; 3] = ["example.com", "corp.example", "mail.test"];
const PREFIXES: [&str; 4] = ["cust_", "ord-", "ACCT", "#W"];
const HOSTS: [&str; 2] = ["api.example.com", "files.test"];
const PATHS: [&str; 3] = ["v1/items", "docs", "a/b/c"];
const STATES: [&str; 3] = ["open", "closed", "pending"];
const LABELS: [&str; 4] = ["red", "green", "blue", "x*y"];

/// What kind of value an argument carries (fixed per tool and argument, so the
/// types agree across calls: type conflicts are tested elsewhere).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Email {
        domains: usize,
    },
    Id {
        prefix: usize,
    },
    Text,
    Url,
    Int {
        range: usize,
    },
    Decimal,
    Bool,
    Enum,
    Labels,
    Record,
    /// A set of addresses: matched element by element (`context.derived`).
    Emails {
        domains: usize,
    },
    /// A set of identifiers.
    Ids {
        prefix: usize,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (1..=3usize).prop_map(|domains| Kind::Email { domains }),
        (0..4usize).prop_map(|prefix| Kind::Id { prefix }),
        Just(Kind::Text),
        Just(Kind::Url),
        (0..3usize).prop_map(|range| Kind::Int { range }),
        Just(Kind::Decimal),
        Just(Kind::Bool),
        Just(Kind::Enum),
        Just(Kind::Labels),
        Just(Kind::Record),
        (1..=3usize).prop_map(|domains| Kind::Emails { domains }),
        (0..4usize).prop_map(|prefix| Kind::Ids { prefix }),
    ]
}

/// One argument of a tool: its kind and whether calls may leave it out.
#[derive(Debug, Clone)]
struct ArgSpec {
    kind: Kind,
    optional: bool,
}

/// The random inputs of one argument of one call.
#[derive(Debug, Clone)]
struct Raw {
    present: bool,
    null_when_absent: bool,
    seed: u64,
    text: String,
}

#[derive(Debug, Clone)]
struct RawCall {
    agent: usize,
    tool: usize,
    other_server: bool,
    count: u64,
    args: Vec<Raw>,
    /// A session: whether its `user` is the first string argument's value, and a seed.
    session: Option<(bool, u64)>,
}

fn value(kind: Kind, raw: &Raw) -> Value {
    let s = raw.seed;
    match kind {
        Kind::Email { domains } => {
            let local = ["alice", "bob.smith", "c+d", "ops"][(s % 4) as usize];
            json!(format!("{local}@{}", DOMAINS[(s / 4) as usize % domains]))
        }
        Kind::Id { prefix } => json!(format!("{}{:05}", PREFIXES[prefix], s % 100_000)),
        Kind::Text => json!(raw.text),
        Kind::Url => json!(format!(
            "https://{}/{}/{}",
            HOSTS[(s % 2) as usize],
            PATHS[(s / 2 % 3) as usize],
            s % 1000
        )),
        Kind::Int { range } => {
            let (lo, hi) = [(0i64, 100i64), (-50, 50), (1_000, 1_000_000)][range];
            json!(lo + (s % (hi - lo + 1) as u64) as i64)
        }
        Kind::Decimal => json!((s % 100_000) as f64 / 100.0),
        Kind::Bool => json!(s.is_multiple_of(2)),
        Kind::Enum => json!(STATES[(s % 3) as usize]),
        Kind::Labels => {
            // Never empty here: empty lists have their own tests below.
            let n = 1 + (s % 3) as usize;
            Value::Array((0..n).map(|i| json!(LABELS[(s as usize / 4 + i) % 4])).collect())
        }
        Kind::Record => json!({"source": STATES[(s % 3) as usize], "priority": (s / 3 % 5) as i64}),
        Kind::Emails { domains } => Value::Array(
            (0..1 + s % 3)
                .map(|i| {
                    value(
                        Kind::Email { domains },
                        &Raw {
                            seed: s / 3 + i * 7,
                            ..raw.clone()
                        },
                    )
                })
                .collect(),
        ),
        Kind::Ids { prefix } => Value::Array(
            (0..1 + s % 3)
                .map(|i| {
                    value(
                        Kind::Id { prefix },
                        &Raw {
                            seed: s / 3 + i * 7,
                            ..raw.clone()
                        },
                    )
                })
                .collect(),
        ),
    }
}

/// Whether values of this kind are strings (a session attribute bound to
/// them keeps one type).
fn is_string(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Email { .. } | Kind::Id { .. } | Kind::Text | Kind::Url | Kind::Enum
    )
}

/// A random world (agents, tools and their arguments) and 1–60 calls in it.
fn calls() -> impl Strategy<Value = Vec<Call>> {
    let tool_specs = prop::collection::vec(prop::collection::vec((kind(), any::<bool>()), 1..=4), 1..=3);
    let raw = prop::collection::vec(
        (
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
            "[a-zA-Z0-9 *\"\\\\.,:/@é-]{0,24}",
        )
            .prop_map(|(present, null_when_absent, seed, text)| Raw {
                present,
                null_when_absent,
                seed,
                text,
            }),
        4,
    );
    let session = prop::option::of((any::<bool>(), any::<u64>()));
    let call = (0..3usize, 0..3usize, any::<bool>(), 1..=3u64, raw, session).prop_map(
        |(agent, tool, other_server, count, args, session)| RawCall {
            agent,
            tool,
            other_server,
            count,
            args,
            session,
        },
    );
    (1..=3usize, tool_specs, prop::collection::vec(call, 1..=60)).prop_map(|(agents, tools, raws)| {
        let specs: Vec<Vec<ArgSpec>> = tools
            .into_iter()
            .map(|args| {
                args.into_iter()
                    .map(|(kind, optional)| ArgSpec { kind, optional })
                    .collect()
            })
            .collect();
        raws.into_iter()
            .map(|r| {
                let tool = r.tool % specs.len();
                let mut args = Map::new();
                for (i, spec) in specs[tool].iter().enumerate() {
                    let raw = &r.args[i];
                    let name = NAMES[(i + tool * 3) % NAMES.len()];
                    if spec.optional && !raw.present {
                        if raw.null_when_absent {
                            args.insert(name.into(), Value::Null);
                        }
                        continue;
                    }
                    args.insert(name.into(), value(spec.kind, raw));
                }
                let server = format!("srv-{tool}{}", if r.other_server { "-b" } else { "" });
                let mut call = json!({
                    "agent": AGENTS[r.agent % agents],
                    "tool": TOOLS[tool],
                    "server": server,
                    "count": r.count,
                    "args": args,
                });
                if let Some((bind, seed)) = r.session {
                    let bound = specs[tool]
                        .iter()
                        .enumerate()
                        .find(|(_, spec)| is_string(spec.kind))
                        .and_then(|(i, _)| args.get(NAMES[(i + tool * 3) % NAMES.len()]))
                        .filter(|v| bind && v.is_string());
                    let user = bound.cloned().unwrap_or_else(|| json!(format!("u-{}", seed % 5)));
                    call["session"] = json!({"user": user, "tier": (seed % 3) as i64});
                }
                common::call(&call)
            })
            .collect()
    })
}

fn summary(calls: &[Call]) -> Summary {
    let mut s = Summary::default();
    for c in calls {
        s.add(c, None);
    }
    s
}

fn run(calls: &[Call], preset: Preset) -> Result<Draft, String> {
    let config = DraftingConfig {
        preset,
        ..DraftingConfig::default()
    };
    draft(&DraftInput {
        files: &RepoFiles::default(),
        summary: &summary(calls),
        catalogue: None,
        config: &config,
    })
    .map_err(|e| e.to_string())
}

fn preset() -> impl Strategy<Value = Preset> {
    prop_oneof![Just(Preset::Tight), Just(Preset::Balanced), Just(Preset::Loose)]
}

fn config() -> Config {
    Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Drafting never fails, and the result allows every call and checks clean.
    #[test]
    fn every_call_is_allowed_by_the_draft(calls in calls(), preset in preset()) {
        let d = run(&calls, preset).map_err(|e| TestCaseError::fail(format!("draft failed: {e}")))?;
        let files = common::applied(&RepoFiles::default(), &d);
        let repo = check::load(&files)
            .map_err(|p| TestCaseError::fail(format!("draft does not load: {p:?}")))?;
        let mut decider = Decider::new(&repo);
        for c in &calls {
            prop_assert!(decider.allowed(c), "denied: {c:?}\n{}", render::diff(&d.changes));
        }
        let report = check::check(&files, Some(&summary(&calls)));
        prop_assert!(report.passed(), "check failed: {:?} {:?} {:?}", report.problems, report.validation_errors, report.denied);
        let t = &d.evidence.totals;
        prop_assert_eq!(t.calls, calls.iter().map(|c| c.count).sum::<u64>());
        prop_assert_eq!(t.drafted, t.calls);
    }

    /// Same calls, same bytes: twice from the same summary, and from a fresh one.
    #[test]
    fn drafting_is_deterministic(calls in calls(), preset in preset()) {
        let config = DraftingConfig { preset, ..DraftingConfig::default() };
        let s = summary(&calls);
        let input = DraftInput { files: &RepoFiles::default(), summary: &s, catalogue: None, config: &config };
        let a = draft(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let b = draft(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let c = run(&calls, preset).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&a.changes, &b.changes);
        prop_assert_eq!(&a.changes, &c.changes);
        prop_assert_eq!(render::evidence(&a.evidence), render::evidence(&b.evidence));
        prop_assert_eq!(&a.new_rules, &c.new_rules);
    }

    /// The order calls arrive in does not matter.
    #[test]
    fn call_order_does_not_matter(
        (calls, shuffled) in calls().prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
        preset in preset(),
    ) {
        let a = run(&calls, preset).map_err(TestCaseError::fail)?;
        let b = run(&shuffled, preset).map_err(TestCaseError::fail)?;
        prop_assert_eq!(
            a.changes.keys().collect::<Vec<_>>(),
            b.changes.keys().collect::<Vec<_>>()
        );
        for (path, change) in &a.changes {
            prop_assert!(
                change.after == b.changes[path].after,
                "{} differs when the calls are permuted:\n{}",
                path,
                similar::TextDiff::from_lines(&change.after, &b.changes[path].after)
                    .unified_diff()
                    .context_radius(2)
            );
        }
        prop_assert_eq!(&a.new_rules, &b.new_rules);
    }
}

/// The generator covers what it claims to: several agents, tools, kinds and optional arguments.
#[test]
fn generator_covers_the_space() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut agents = std::collections::BTreeSet::new();
    let mut tools = std::collections::BTreeSet::new();
    let (mut nulls, mut arrays, mut floats, mut records) = (0, 0, 0, 0);
    let (mut sessions, mut bound) = (0, 0);
    for _ in 0..64 {
        for c in calls().new_tree(&mut runner).unwrap().current() {
            agents.insert(c.agent.clone());
            tools.insert(c.tool.clone());
            if let Some(session) = &c.session {
                sessions += 1;
                bound += c.args.values().any(|v| *v == session["user"]) as usize;
            }
            for v in c.args.values() {
                match v {
                    Value::Null => nulls += 1,
                    Value::Array(_) => arrays += 1,
                    Value::Number(n) if n.is_f64() => floats += 1,
                    Value::Object(_) => records += 1,
                    _ => {}
                }
            }
        }
    }
    assert_eq!(agents.len(), 3, "{agents:?}");
    assert_eq!(tools.len(), 3, "{tools:?}");
    assert!(nulls > 0 && arrays > 0 && floats > 0 && records > 0);
    assert!(sessions > 0 && bound > 0, "{sessions} sessions, {bound} bound");
}
