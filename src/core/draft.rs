//! Drafting: observations + the policy repository → the rules that close the
//! gap, the files that change, and the evidence for each rule.
//!
//! Invariants checked on every draft, before anything is returned:
//! every representable observed call is allowed by existing ∪ draft (replayed
//! through Cedar, one request per distinct call shape against its (agent, tool)
//! slice), and the drafted rules pass strict validation.

use super::catalogue::Catalogue;
use super::classify::{guard_parts, Shape};
use super::config::{DraftingConfig, Thresholds};
use super::evidence::{
    AgentEvidence, ArgEvidence, Evidence, RuleEvidence, Totals, Unrepresentable, Withheld,
};
use super::ladder::{self, Condition, LeafInput, Role};
use super::layout::{self, Doc};
use super::mapping;
use super::observation::rfc3339;
use super::policies::{
    self, Owner, Policies, RepoError, RepoFiles, FINGERPRINT_KEY, GENERATED_KEY, GENERATED_VALUE, SCHEMA_PATH,
};
use super::projection;
use super::replay::authorize;
use super::risk::{self, ToolRisk};
use super::schema::{Schema, SchemaError};
use super::secrets;
use super::summary::{earliest, latest, ShapeKey, ShapeStats, Slice, Summary};
use super::syntax::{has_path, input_path, pattern, quote};
use super::tokens;
use super::types::{decimal_scaled, decimal_text, ArgType, Attr, Inferred};
use cedar_policy::{Policy, PolicyId, PolicySet};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a draft is made from.
pub struct DraftInput<'a> {
    pub files: &'a RepoFiles,
    pub summary: &'a Summary,
    pub catalogue: Option<&'a Catalogue>,
    pub config: &'a DraftingConfig,
}

/// A file the draft changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub before: Option<String>,
    pub after: String,
}

/// Rules reviewers turned down, by content fingerprint (annotations and layout ignored).
pub type Rejections = BTreeMap<String, Rejection>;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// Calls behind the rule when it was turned down.
    pub calls: u64,
    /// Shown in the evidence, e.g. "closed without merging in #12".
    pub reason: String,
    /// Never proposed again, whatever the evidence (an `ignore` command).
    pub permanent: bool,
}

/// The result of drafting.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Changed files by repository-relative path.
    pub changes: BTreeMap<String, FileChange>,
    pub evidence: Evidence,
    /// Ids of the new rules, in file order.
    pub new_rules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("invalid drafting configuration: {0}")]
    Config(String),
    #[error("{SCHEMA_PATH}: {0}")]
    Schema(#[from] SchemaError),
    #[error("the policy repository does not parse:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Repo(Vec<RepoError>),
    /// A drafting invariant failed: a bug, reported rather than shipped.
    #[error("draft rejected by its own checks:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invariant(Vec<String>),
}

/// Turned down, and the evidence has not grown enough since.
fn withhold(rule: &BuiltRule, rejected: &Rejections, factor: f64) -> bool {
    if rejected.is_empty() {
        return false;
    }
    rejected
        .get(&rule.evidence.fingerprint)
        .is_some_and(|r| r.permanent || (rule.evidence.calls as f64) < r.calls as f64 * factor)
}

/// A sample value as shown in evidence: redacted and cut short.
fn sample(value: &Value, secret: bool) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if secret {
        return secrets::redacted(&text);
    }
    let text = secrets::redact(&text);
    if text.chars().count() > 48 {
        format!("{}…", text.chars().take(47).collect::<String>())
    } else {
        text
    }
}

fn literal(value: &Value, ty: &ArgType) -> String {
    match (ty, value) {
        (ArgType::Decimal, Value::Number(n)) => {
            format!(
                "decimal(\"{}\")",
                decimal_scaled(n).map(decimal_text).unwrap_or_default()
            )
        }
        (_, Value::String(s)) => quote(s),
        (_, other) => other.to_string(),
    }
}

/// Cedar conjuncts for one argument's condition.
fn condition_docs(path: &[String], ty: &ArgType, condition: &Condition) -> Vec<Doc> {
    let expr = input_path(path);
    match condition {
        Condition::Any => vec![],
        Condition::OneOf(values) if values.len() == 1 => {
            vec![Doc::Atom(format!("{expr} == {}", literal(&values[0], ty)))]
        }
        Condition::OneOf(values) => vec![Doc::List {
            items: values.iter().map(|v| literal(v, ty)).collect(),
            method: "contains",
            arg: expr,
        }],
        // Only empty sets seen; `[]` cannot be typed, so say it the typed way.
        Condition::SubsetOf(values) if values.is_empty() => vec![Doc::Atom(format!("{expr}.isEmpty()"))],
        Condition::SubsetOf(values) => {
            let element = match ty {
                ArgType::Set(e) => e.as_ref().clone(),
                other => other.clone(),
            };
            vec![Doc::List {
                items: values.iter().map(|v| literal(v, &element)).collect(),
                method: "containsAll",
                arg: expr,
            }]
        }
        Condition::Like { patterns, guards } => {
            let mut out = vec![if let [only] = patterns.as_slice() {
                Doc::Like {
                    subject: expr.clone(),
                    pattern: pattern(only),
                }
            } else {
                Doc::Or {
                    not: false,
                    items: patterns
                        .iter()
                        .map(|p| format!("{expr} like {}", pattern(p)))
                        .collect(),
                }
            }];
            if !guards.is_empty() {
                out.push(Doc::Or {
                    not: true,
                    items: guards
                        .iter()
                        .map(|g| format!("{expr} like {}", pattern(&guard_parts(g))))
                        .collect(),
                });
            }
            out
        }
        Condition::Range { low, high } => {
            if *ty == ArgType::Long {
                let scale = super::types::DECIMAL_SCALE;
                vec![
                    Doc::Atom(format!("{expr} >= {}", low / scale)),
                    Doc::Atom(format!("{expr} <= {}", high / scale)),
                ]
            } else {
                vec![
                    Doc::Atom(format!(
                        "{expr}.greaterThanOrEqual(decimal(\"{}\"))",
                        decimal_text(*low)
                    )),
                    Doc::Atom(format!(
                        "{expr}.lessThanOrEqual(decimal(\"{}\"))",
                        decimal_text(*high)
                    )),
                ]
            }
        }
    }
}

fn condition_summary(condition: &Condition, ty: &ArgType) -> String {
    let show = |v: &Value| match v {
        Value::String(s) => quote(s),
        other => other.to_string(),
    };
    let list = |values: &[Value]| {
        let mut shown: Vec<String> = values.iter().take(4).map(show).collect();
        if values.len() > 4 {
            shown.push(format!("+{} more", values.len() - 4));
        }
        shown.join(", ")
    };
    match condition {
        Condition::Any => format!("any {ty}"),
        Condition::OneOf(values) => format!("one of {}", list(values)),
        Condition::SubsetOf(values) => format!("subset of {}", list(values)),
        Condition::Like { patterns, .. } => patterns
            .iter()
            .map(|p| format!("like {}", pattern(p)))
            .collect::<Vec<_>>()
            .join(" or "),
        Condition::Range { low, high } => format!(
            "{} ..= {}",
            decimal_text(*low).trim_end_matches(".0"),
            decimal_text(*high).trim_end_matches(".0")
        ),
    }
}

/// One (agent, tool) being drafted: its calls, grouped into rules.
struct SliceDraft<'a> {
    agent: &'a str,
    tool: &'a str,
    slice: &'a Slice,
    risk: ToolRisk,
    leaf_by_path: HashMap<&'a [String], u32>,
}

/// Cluster-wide facts about the calls one rule stands for.
struct Members<'a> {
    shapes: Vec<(&'a ShapeKey, &'a ShapeStats)>,
    calls: u64,
    /// Calls in which each path (or a path below it) is present.
    presence: HashMap<Vec<String>, u64>,
    /// Per leaf: value index → calls.
    values: HashMap<u32, BTreeMap<u32, u64>>,
}

impl<'a> Members<'a> {
    fn new(slice: &Slice, shapes: Vec<(&'a ShapeKey, &'a ShapeStats)>) -> Members<'a> {
        let mut presence: HashMap<Vec<String>, u64> = HashMap::new();
        let mut values: HashMap<u32, BTreeMap<u32, u64>> = HashMap::new();
        let mut calls = 0;
        for (key, stats) in &shapes {
            calls += stats.count;
            let mut prefixes: BTreeSet<&[String]> = BTreeSet::new();
            for (leaf, value) in &key.cells {
                let path = &slice.leaves[*leaf as usize].path;
                for i in 1..=path.len() {
                    prefixes.insert(&path[..i]);
                }
                *values.entry(*leaf).or_default().entry(*value).or_default() += stats.count;
            }
            for p in prefixes {
                *presence.entry(p.to_vec()).or_default() += stats.count;
            }
        }
        Members {
            shapes,
            calls,
            presence,
            values,
        }
    }
}

struct BuiltRule {
    text: String,
    /// `text` is already laid out exactly as cedar-policy-formatter would.
    formatted: bool,
    /// The rule parsed, with its id, for replay.
    policy: Policy,
    evidence: RuleEvidence,
}

impl SliceDraft<'_> {
    fn role(&self, name: &str, shapes: &[&Shape]) -> Role {
        let sends_somewhere = shapes
            .iter()
            .any(|s| matches!(s, Shape::Url { .. } | Shape::Email { .. }));
        let destination = risk::is_destination_name(name) || sends_somewhere;
        let tight = (self.risk.side_effecting() && destination) || (self.risk.open_world && sends_somewhere);
        if tight {
            Role::Destination
        } else {
            Role::Parameter
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        members: &Members<'_>,
        attrs: &BTreeMap<String, Attr>,
        prefix: &mut Vec<String>,
        t: &Thresholds,
        conditions: &mut Vec<Doc>,
        args: &mut Vec<ArgEvidence>,
        absent: &mut Vec<String>,
    ) {
        for (name, attr) in attrs {
            prefix.push(name.clone());
            let present = members.presence.get(prefix.as_slice()).copied().unwrap_or(0);
            let always = present == members.calls;
            let dotted = prefix.join(".");
            if present == 0 {
                conditions.push(Doc::Atom(format!("!({})", has_path(prefix))));
                absent.push(dotted);
            } else if let ArgType::Record(inner) = &attr.ty {
                if always {
                    conditions.push(Doc::Atom(has_path(prefix)));
                }
                self.walk(members, inner, prefix, t, conditions, args, absent);
            } else {
                let leaf_id = self.leaf_by_path[prefix.as_slice()];
                let leaf = &self.slice.leaves[leaf_id as usize];
                let entries = leaf.table.entries();
                let used: Vec<(&super::summary::Entry, u64)> = members.values[&leaf_id]
                    .iter()
                    .map(|(v, n)| (&entries[*v as usize], *n))
                    .collect();
                let shapes: Vec<&Shape> = used.iter().map(|(e, _)| &e.shape).collect();
                let role = self.role(name, &shapes);
                let (distinct, exact) = leaf.distinct.estimate();
                let input = LeafInput {
                    ty: &attr.ty,
                    exact: leaf.table.is_exact(),
                    values: used.clone(),
                    calls: present,
                    distinct,
                    leaf_calls: leaf.calls,
                    secret_name: leaf.secret_name,
                    role,
                };
                let decision = ladder::decide(&input, t);
                let parts = condition_docs(prefix, &attr.ty, &decision.condition);
                if always {
                    conditions.push(Doc::Atom(has_path(prefix)));
                    conditions.extend(parts);
                } else if !parts.is_empty() {
                    conditions.push(Doc::If {
                        guard: has_path(prefix),
                        then: parts,
                    });
                }
                let mut by_count = used.clone();
                by_count.sort_by(|a, b| {
                    b.1.cmp(&a.1)
                        .then_with(|| a.0.value.to_string().cmp(&b.0.value.to_string()))
                });
                args.push(ArgEvidence {
                    path: dotted,
                    role,
                    rung: decision.rung,
                    rung_label: decision.rung.label(),
                    condition: condition_summary(&decision.condition, &attr.ty),
                    reason: decision.reason.clone(),
                    distinct: if exact {
                        distinct.to_string()
                    } else {
                        format!("≈ {distinct}")
                    },
                    calls: present,
                    presence: if always {
                        "always".into()
                    } else {
                        format!("{present} of {} calls", members.calls)
                    },
                    samples: by_count
                        .iter()
                        .take(3)
                        .map(|(e, _)| sample(&e.value, leaf.secret_name || e.shape == Shape::Secret))
                        .collect(),
                    unconstrained: decision.unconstrained,
                    secret: decision.secret,
                });
            }
            prefix.pop();
        }
    }

    fn build(
        &self,
        id: &str,
        server: &str,
        members: &Members<'_>,
        attrs: &BTreeMap<String, Attr>,
        t: &Thresholds,
    ) -> Result<BuiltRule, String> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        let mut absent = Vec::new();
        self.walk(
            members,
            attrs,
            &mut Vec::new(),
            t,
            &mut conditions,
            &mut args,
            &mut absent,
        );
        let head = format!(
            "permit (\n  principal == Agent::{},\n  action == Action::{},\n  resource == McpServer::{}\n)",
            quote(self.agent),
            quote(self.tool),
            quote(server)
        );
        let (core, formatted) = layout::rule(&head, &conditions);
        let fingerprint = tokens::fingerprint(&core);
        let text = format!(
            "@id({})\n@{GENERATED_KEY}({})\n@{FINGERPRINT_KEY}(\"{fingerprint}\")\n{core}",
            quote(id),
            quote(GENERATED_VALUE),
        );
        let policy = Policy::parse(Some(PolicyId::new(id)), &text)
            .map_err(|e| format!("{id}: drafted rule does not parse: {e}"))?;
        let mut sources = BTreeSet::new();
        let mut traces = Vec::new();
        let (mut first, mut last, mut denied) = (None::<i64>, None::<i64>, 0);
        for (_, stats) in &members.shapes {
            sources.extend(stats.sources.iter().map(|s| secrets::redact(s)));
            traces.extend(stats.traces.iter().map(|s| secrets::redact(s)));
            first = earliest(first, stats.first_seen);
            last = latest(last, stats.last_seen);
            denied += stats.shadow_denied;
        }
        traces.sort();
        traces.dedup();
        traces.truncate(3);
        let unconstrained = args
            .iter()
            .filter(|a| a.unconstrained)
            .map(|a| a.path.clone())
            .collect();
        Ok(BuiltRule {
            text,
            formatted,
            policy,
            evidence: RuleEvidence {
                id: id.to_string(),
                fingerprint,
                tool: self.tool.to_string(),
                server: server.to_string(),
                risk: self.risk.clone(),
                effect_label: self.risk.effect.label(),
                calls: members.calls,
                shapes: members.shapes.len(),
                sources: sources.into_iter().take(8).collect(),
                first_seen: first.map(rfc3339),
                last_seen: last.map(rfc3339),
                shadow_denied: denied,
                traces,
                args,
                unconstrained,
                absent,
            },
        })
    }
}

/// Extend the schema with the catalogue's and the observations' argument types.
fn extend_schema(schema: &mut Schema, summary: &Summary, catalogue: Option<&Catalogue>) -> Vec<String> {
    let mut conflicts = Vec::new();
    let mut problems = Vec::new();
    if let Some(catalogue) = catalogue {
        for (name, tool) in &catalogue.tools {
            conflicts.extend(schema.add_tool(name, &tool.args));
        }
    }
    for (tool, types) in summary.tool_types() {
        let mut attrs = BTreeMap::new();
        for (name, inferred) in types {
            match inferred.to_arg_type() {
                Some(ty) => {
                    attrs.insert(name, Attr { ty, required: false });
                }
                None if inferred == Inferred::Conflict => problems.push(format!(
                    "{tool}: argument `{name}` was observed with incompatible types; calls carrying it cannot be represented"
                )),
                None => {}
            }
        }
        conflicts.extend(schema.add_tool(&tool, &attrs));
    }
    problems.extend(conflicts.into_iter().map(|c| {
        format!(
            "{}: argument `{}` is {} in the schema but {} was observed; calls carrying it cannot be represented",
            c.tool,
            c.path.join("."),
            c.schema_type,
            c.observed
        )
    }));
    problems
}

/// Group a slice's gap shapes into rules: one per server and distinct argument
/// combination. Combinations where one is a subset of another (an optional
/// argument) share a rule; disjoint ones (search by id vs by email) get their
/// own, which is tighter than one rule with every argument optional. Past
/// `max_clusters` combinations, one rule per server.
type ShapeGroup<'a> = Vec<(&'a ShapeKey, &'a ShapeStats)>;

fn cluster<'a>(
    slice: &Slice,
    gap: &[(&'a ShapeKey, &'a ShapeStats)],
    max_clusters: usize,
) -> Vec<(String, ShapeGroup<'a>)> {
    let mut signatures: BTreeMap<(String, BTreeSet<&[String]>), ShapeGroup<'a>> = BTreeMap::new();
    for (key, stats) in gap {
        let server = slice.servers[key.server as usize].clone();
        let paths = key
            .cells
            .iter()
            .map(|(l, _)| slice.leaves[*l as usize].path.as_slice())
            .collect();
        signatures
            .entry((server, paths))
            .or_default()
            .push((*key, *stats));
    }
    let keys: Vec<&(String, BTreeSet<&[String]>)> = signatures.keys().collect();
    // Union-find over "same server and one combination contains the other".
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..keys.len() {
        for j in i + 1..keys.len() {
            let (a, b) = (keys[i], keys[j]);
            if a.0 == b.0 && (a.1.is_subset(&b.1) || b.1.is_subset(&a.1)) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[rj.max(ri)] = ri.min(rj);
            }
        }
    }
    let mut groups: BTreeMap<usize, (String, ShapeGroup<'a>)> = BTreeMap::new();
    for (i, (key, members)) in signatures.iter().enumerate() {
        let r = root(&mut parent, i);
        let group = groups.entry(r).or_insert_with(|| (key.0.clone(), Vec::new()));
        group.1.extend(members.iter().copied());
    }
    let mut clusters: Vec<(String, ShapeGroup<'a>)> = groups.into_values().collect();
    if clusters.len() > max_clusters {
        let mut by_server: BTreeMap<String, ShapeGroup<'a>> = BTreeMap::new();
        for (server, members) in clusters {
            by_server.entry(server).or_default().extend(members);
        }
        clusters = by_server.into_iter().collect();
    }
    for (_, members) in &mut clusters {
        members.sort_by(|a, b| a.0.cmp(b.0));
    }
    clusters
}

fn format_rules(text: &str) -> Result<String, String> {
    let config = cedar_policy_formatter::Config {
        line_width: layout::LINE_WIDTH,
        indent_width: 2,
    };
    cedar_policy_formatter::policies_str_to_pretty(text, &config).map_err(|e| format!("formatter: {e}"))
}

/// How the repository decides the representative calls of one shape.
enum Outcome {
    /// All allowed, by these rules.
    Allowed(Vec<String>),
    /// A `forbid` rule denies one: a person's decision the draft must not work around.
    Forbidden(Vec<String>),
    /// Nothing allows one: the gap to draft.
    NotAllowed,
}

/// Decide the representative calls of one shape; `Err` when the call cannot be
/// represented under the schema.
fn decide_shape(
    agent: &str,
    tool: &str,
    slice: &Slice,
    key: &ShapeKey,
    schema: &Schema,
    set: &PolicySet,
) -> Result<Outcome, String> {
    let server = &slice.servers[key.server as usize];
    let mut determining = Vec::new();
    let mut allowed = true;
    for args in slice.representatives(key) {
        let request = mapping::request(agent, tool, server, &args, schema).map_err(|e| e.to_string())?;
        if set.is_empty() {
            allowed = false;
            continue;
        }
        let verdict = authorize(set, &request);
        if !verdict.allowed && !verdict.determining.is_empty() {
            return Ok(Outcome::Forbidden(verdict.determining));
        }
        allowed &= verdict.allowed;
        determining.extend(verdict.determining);
    }
    Ok(if allowed {
        Outcome::Allowed(determining)
    } else {
        Outcome::NotAllowed
    })
}

/// What drafting needs to see, shared read-only by the worker threads.
struct Context<'a> {
    input: &'a DraftInput<'a>,
    schema: &'a Schema,
    policies: &'a Policies,
    thresholds: &'a Thresholds,
}

/// What drafting one (agent, tool) produced.
#[derive(Default)]
struct SliceOutcome {
    already_allowed: u64,
    unrepresentable: Vec<Unrepresentable>,
    unrepresentable_calls: u64,
    forbidden_calls: u64,
    /// Ids of existing rules that allowed some observed call.
    used: Vec<String>,
    drafted_calls: u64,
    rules: Vec<BuiltRule>,
    /// Invariant failures: bugs, reported rather than shipped.
    problems: Vec<String>,
    window: (Option<i64>, Option<i64>),
}

/// Draft one (agent, tool): find the gap, cluster it into rules, replay.
fn draft_slice(cx: &Context<'_>, agent: &str, tool: &str, slice: &Slice) -> SliceOutcome {
    let mut out = SliceOutcome::default();
    let mut shapes: Vec<(&ShapeKey, &ShapeStats)> = slice.shapes.iter().collect();
    shapes.sort_by(|a, b| a.0.cmp(b.0));
    for (_, stats) in &shapes {
        out.window.0 = earliest(out.window.0, stats.first_seen);
        out.window.1 = latest(out.window.1, stats.last_seen);
    }
    let indices = cx.policies.slice_indices(agent, tool);
    let existing = cx.policies.slice(agent, tool);
    let read = cx.policies.reads(&indices);
    let keys: Vec<&ShapeKey> = shapes.iter().map(|(k, _)| *k).collect();
    let mut gap: Vec<(&ShapeKey, &ShapeStats)> = Vec::new();
    let mut unrepresentable: BTreeMap<String, u64> = BTreeMap::new();
    let mut forbidden: BTreeMap<String, u64> = BTreeMap::new();
    for members in projection::group(slice, &keys, read.as_deref()) {
        let calls: u64 = members.iter().map(|&i| shapes[i].1.count).sum();
        match decide_shape(agent, tool, slice, keys[members[0]], cx.schema, &existing) {
            Err(e) => {
                *unrepresentable.entry(e).or_default() += calls;
                out.unrepresentable_calls += calls;
            }
            Ok(Outcome::Allowed(determining)) => {
                out.used.extend(determining);
                out.already_allowed += calls;
            }
            Ok(Outcome::Forbidden(by)) => {
                *forbidden.entry(by.join(", ")).or_default() += calls;
                out.forbidden_calls += calls;
            }
            Ok(Outcome::NotAllowed) => gap.extend(members.iter().map(|&i| shapes[i])),
        }
    }
    out.unrepresentable = unrepresentable
        .into_iter()
        .map(|(reason, calls)| Unrepresentable {
            tool: tool.to_string(),
            calls,
            reason,
        })
        .chain(forbidden.into_iter().map(|(by, calls)| Unrepresentable {
            tool: tool.to_string(),
            calls,
            reason: format!("forbidden by {by}: not drafted"),
        }))
        .collect();
    let Some(attrs) = cx.schema.tool(tool) else {
        return out;
    };
    if gap.is_empty() {
        return out;
    }
    gap.sort_by(|a, b| a.0.cmp(b.0));
    let slice_draft = SliceDraft {
        agent,
        tool,
        slice,
        risk: risk::classify(
            tool,
            cx.input.catalogue.and_then(|c| c.tools.get(tool)),
            cx.input.config.risk_override(tool),
        ),
        leaf_by_path: slice
            .leaves
            .iter()
            .enumerate()
            .map(|(i, l)| (l.path.as_slice(), i as u32))
            .collect(),
    };
    let mut n = cx.policies.last_number(agent, tool);
    let mut with_draft = existing;
    let mut draft_reads = read;
    for (server, members) in cluster(slice, &gap, cx.thresholds.max_clusters) {
        n += 1;
        let id = format!("{agent}/{tool}/{n}");
        let members = Members::new(slice, members);
        out.drafted_calls += members.calls;
        match slice_draft.build(&id, &server, &members, attrs, cx.thresholds) {
            Ok(rule) => {
                if let Err(e) = with_draft.add(rule.policy.clone()) {
                    out.problems.push(format!("{id}: {e}"));
                }
                draft_reads = draft_reads.zip(tokens::read_paths(&rule.text)).map(|(mut a, b)| {
                    a.extend(b);
                    a
                });
                out.rules.push(rule);
            }
            Err(e) => out.problems.push(e),
        }
    }
    // Invariant 1: existing ∪ draft allows every gap shape, replayed through Cedar.
    let gap_keys: Vec<&ShapeKey> = gap.iter().map(|(k, _)| *k).collect();
    for members in projection::group(slice, &gap_keys, draft_reads.as_deref()) {
        let key = gap_keys[members[0]];
        if !matches!(
            decide_shape(agent, tool, slice, key, cx.schema, &with_draft),
            Ok(Outcome::Allowed(_))
        ) {
            let args = Value::Object(slice.representatives(key).remove(0));
            out.problems.push(format!(
                "replay: {agent} calling {tool} with {} is still denied",
                secrets::redact(&args.to_string())
            ));
        }
    }
    out
}

/// Run `work` over `items` on the machine's cores; results keep item order,
/// so output does not depend on the number of threads. Workers take the next
/// item as they finish one, so a few heavy agents do not idle a core.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads <= 1 || items.len() < 2 {
        return items.iter().map(&work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break out };
                        out.push((i, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("drafting worker panicked"))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Draft the rules that would allow every observed call the repository does not allow yet.
pub fn draft(input: &DraftInput<'_>) -> Result<Draft, DraftError> {
    draft_remembering(input, &Rejections::new())
}

/// Draft, leaving out rules reviewers turned down unless the calls behind
/// them have since grown by `repropose_factor`.
pub fn draft_remembering(input: &DraftInput<'_>, rejected: &Rejections) -> Result<Draft, DraftError> {
    let thresholds = input.config.thresholds().map_err(DraftError::Config)?;
    let mut schema = Schema::parse(input.files.schema.as_deref().unwrap_or(""))?;
    let mut policies = Policies::load(input.files).map_err(DraftError::Repo)?;
    let type_conflicts = extend_schema(&mut schema, input.summary, input.catalogue);

    let slices = input.summary.slices();
    let outcomes = {
        let cx = Context {
            input,
            schema: &schema,
            policies: &policies,
            thresholds: &thresholds,
        };
        in_parallel(&slices, |(agent, tool, slice)| {
            draft_slice(&cx, agent, tool, slice)
        })
    };

    let mut totals = Totals {
        calls: input.summary.calls,
        shapes: input.summary.shape_count(),
        ..Totals::default()
    };
    let mut window: (Option<i64>, Option<i64>) = (None, None);
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut agents: BTreeMap<String, AgentEvidence> = BTreeMap::new();
    let mut new_rules: BTreeMap<String, Vec<BuiltRule>> = BTreeMap::new();
    let mut invariant = Vec::new();
    let mut tools_seen = BTreeSet::new();
    for ((agent, tool, _), outcome) in slices.iter().zip(outcomes) {
        tools_seen.insert(tool.to_string());
        window = (
            earliest(window.0, outcome.window.0),
            latest(window.1, outcome.window.1),
        );
        totals.already_allowed += outcome.already_allowed;
        totals.unrepresentable += outcome.unrepresentable_calls;
        totals.forbidden += outcome.forbidden_calls;
        totals.drafted += outcome.drafted_calls;
        used.extend(outcome.used);
        invariant.extend(outcome.problems);
        let evidence = agents.entry(agent.to_string()).or_insert_with(|| AgentEvidence {
            agent: agent.to_string(),
            file: policies::agent_file(agent),
            ..AgentEvidence::default()
        });
        let (rules, withheld): (Vec<BuiltRule>, Vec<BuiltRule>) = outcome
            .rules
            .into_iter()
            .partition(|r| !withhold(r, rejected, input.config.repropose_factor));
        for rule in withheld {
            let rejection = &rejected[&rule.evidence.fingerprint];
            totals.drafted -= rule.evidence.calls;
            evidence.withheld.push(Withheld {
                what: rule.evidence.id,
                calls: rule.evidence.calls,
                reason: rejection.reason.clone(),
            });
        }
        totals.new_rules += rules.len();
        evidence.already_allowed += outcome.already_allowed;
        evidence.unrepresentable.extend(outcome.unrepresentable);
        new_rules.entry(agent.to_string()).or_default().extend(rules);
    }
    new_rules.retain(|_, rules| !rules.is_empty());

    // Format each agent's new rules (the formatter checks that what it writes
    // parses to the same policies, so fingerprints hold).
    let per_agent: Vec<(&String, &Vec<BuiltRule>)> = new_rules.iter().collect();
    let formatted = in_parallel(&per_agent, |(_, rules)| {
        let texts = rules
            .iter()
            .map(|r| match r.formatted {
                true => Ok(r.text.clone()),
                false => format_rules(&r.text).map(|t| t.trim_end().to_string()),
            })
            .collect::<Result<Vec<String>, String>>()?;
        Ok::<String, String>(texts.join("\n\n"))
    });
    let mut changes = BTreeMap::new();
    let mut new_ids = BTreeSet::new();
    for ((agent, rules), formatted) in per_agent.into_iter().zip(formatted) {
        let formatted = formatted.map_err(|e| DraftError::Invariant(vec![e]))?;
        let file = policies::agent_file(agent);
        for rule in rules {
            new_ids.insert(rule.evidence.id.clone());
            policies.push_generated(&file, &rule.policy);
        }
        let evidence = agents.get_mut(agent.as_str()).expect("agent seen");
        evidence.rules.extend(rules.iter().map(|r| r.evidence.clone()));
        let before = input.files.agents.get(&file).cloned();
        let after = match &before {
            Some(b) if !b.trim().is_empty() => format!("{}\n\n{}\n", b.trim_end(), formatted.trim_end()),
            _ => format!(
                "// Rules for agent {}. Rules marked @generated were drafted by shadowdraft from\n\
                 // observed calls; edit any rule and it becomes yours: the bot never rewrites it.\n{}\n",
                quote(agent),
                formatted.trim_end()
            ),
        };
        changes.insert(file, FileChange { before, after });
    }

    // Invariant 2: the drafted rules pass strict validation.
    let mut evidence = Evidence {
        preset: format!("{:?}", input.config.preset).to_lowercase(),
        type_conflicts,
        ..Evidence::default()
    };
    let validator = cedar_policy::Validator::new(schema.to_cedar()?);
    // Each policy validates on its own, so chunks validate in parallel.
    let chunks: Vec<&[policies::Rule]> = policies.rules.chunks(256).collect();
    let errors = in_parallel(&chunks, |rules| {
        let mut set = PolicySet::new();
        for rule in *rules {
            set.add(rule.policy.clone()).expect("ids are unique");
        }
        let result = validator.validate(&set, cedar_policy::ValidationMode::Strict);
        result
            .validation_errors()
            .map(|e| (e.policy_id().to_string(), e.to_string()))
            .collect::<Vec<_>>()
    });
    for (id, error) in errors.into_iter().flatten() {
        if new_ids.contains(&id) {
            invariant.push(format!("validation: {error}"));
        } else {
            evidence.existing_problems.push(error);
        }
    }
    if !invariant.is_empty() {
        return Err(DraftError::Invariant(invariant));
    }

    let schema_text = schema.render()?;
    if input.files.schema.as_deref() != Some(schema_text.as_str()) {
        changes.insert(
            SCHEMA_PATH.to_string(),
            FileChange {
                before: input.files.schema.clone(),
                after: schema_text,
            },
        );
    }
    for agent in agents.values_mut() {
        agent.removal_candidates = policies
            .rules
            .iter()
            .filter(|r| r.owner == Owner::Bot && r.agent.as_deref() == Some(agent.agent.as_str()))
            .map(|r| r.id.to_string())
            .filter(|id| !used.contains(id) && !new_ids.contains(id))
            .collect();
    }
    if let Some(catalogue) = input.catalogue {
        evidence.never_observed = catalogue
            .tools
            .keys()
            .filter(|t| !tools_seen.contains(*t))
            .cloned()
            .collect();
    }
    totals.agents = agents.len();
    totals.tools = tools_seen.len();
    evidence.totals = totals;
    evidence.window_start = window.0.map(rfc3339);
    evidence.window_end = window.1.map(rfc3339);
    evidence.agents = agents.into_values().collect();
    Ok(Draft {
        changes,
        evidence,
        new_rules: new_rules
            .values()
            .flatten()
            .map(|r| r.evidence.id.clone())
            .collect(),
    })
}
