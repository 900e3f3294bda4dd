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
use super::evidence::{AgentEvidence, ArgEvidence, Evidence, RuleEvidence, Totals, Unrepresentable};
use super::ladder::{self, Condition, LeafInput, Role};
use super::mapping;
use super::policies::{
    self, Owner, Policies, RepoError, RepoFiles, FINGERPRINT_KEY, GENERATED_KEY, GENERATED_VALUE, SCHEMA_PATH,
};
use super::replay::authorize;
use super::risk::{self, ToolRisk};
use super::schema::{Schema, SchemaError};
use super::secrets;
use super::summary::{ShapeKey, ShapeStats, Slice, Summary};
use super::syntax::{has_path, input_path, pattern, quote};
use super::types::{decimal_scaled, decimal_text, ArgType, Attr, Inferred};
use cedar_policy::{Policy, PolicyId, Request};
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

/// Width the formatter wraps drafted rules at.
const LINE_WIDTH: usize = 100;

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
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
fn condition_text(path: &[String], ty: &ArgType, condition: &Condition) -> Vec<String> {
    let expr = input_path(path);
    match condition {
        Condition::Any => vec![],
        Condition::OneOf(values) if values.len() == 1 => {
            vec![format!("{expr} == {}", literal(&values[0], ty))]
        }
        Condition::OneOf(values) => {
            let list: Vec<String> = values.iter().map(|v| literal(v, ty)).collect();
            vec![format!("[{}].contains({expr})", list.join(", "))]
        }
        Condition::SubsetOf(values) => {
            let element = match ty {
                ArgType::Set(e) => e.as_ref().clone(),
                other => other.clone(),
            };
            let list: Vec<String> = values.iter().map(|v| literal(v, &element)).collect();
            vec![format!("[{}].containsAll({expr})", list.join(", "))]
        }
        Condition::Like { patterns, guards } => {
            let likes: Vec<String> = patterns
                .iter()
                .map(|p| format!("{expr} like {}", pattern(p)))
                .collect();
            let mut out = vec![if likes.len() == 1 {
                likes[0].clone()
            } else {
                format!("({})", likes.join(" || "))
            }];
            if !guards.is_empty() {
                let guard: Vec<String> = guards
                    .iter()
                    .map(|g| format!("{expr} like {}", pattern(&guard_parts(g))))
                    .collect();
                out.push(format!("!({})", guard.join(" || ")));
            }
            out
        }
        Condition::Range { low, high } => {
            if *ty == ArgType::Long {
                let scale = super::types::DECIMAL_SCALE;
                vec![
                    format!("{expr} >= {}", low / scale),
                    format!("{expr} <= {}", high / scale),
                ]
            } else {
                vec![
                    format!("{expr}.greaterThanOrEqual(decimal(\"{}\"))", decimal_text(*low)),
                    format!("{expr}.lessThanOrEqual(decimal(\"{}\"))", decimal_text(*high)),
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
        conditions: &mut Vec<String>,
        args: &mut Vec<ArgEvidence>,
        absent: &mut Vec<String>,
    ) {
        for (name, attr) in attrs {
            prefix.push(name.clone());
            let present = members.presence.get(prefix.as_slice()).copied().unwrap_or(0);
            let always = present == members.calls;
            let dotted = prefix.join(".");
            if present == 0 {
                conditions.push(format!("!({})", has_path(prefix)));
                absent.push(dotted);
            } else if let ArgType::Record(inner) = &attr.ty {
                if always {
                    conditions.push(has_path(prefix));
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
                let parts = condition_text(prefix, &attr.ty, &decision.condition);
                if always {
                    conditions.push(has_path(prefix));
                    conditions.extend(parts);
                } else if !parts.is_empty() {
                    conditions.push(format!(
                        "(if {} then {} else true)",
                        has_path(prefix),
                        parts.join(" && ")
                    ));
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
        let body = if conditions.is_empty() {
            String::new()
        } else {
            format!("\nwhen {{\n  {}\n}}", conditions.join(" &&\n  "))
        };
        let core = format!("{head}{body};");
        let policy =
            Policy::parse(None, &core).map_err(|e| format!("{id}: drafted rule does not parse: {e}"))?;
        let text = format!(
            "@id({})\n@{GENERATED_KEY}({})\n@{FINGERPRINT_KEY}(\"{}\")\n{core}",
            quote(id),
            quote(GENERATED_VALUE),
            policies::fingerprint(&policy)
        );
        let mut sources = BTreeSet::new();
        let mut traces = Vec::new();
        let (mut first, mut last, mut denied) = (None::<i64>, None::<i64>, 0);
        for (_, stats) in &members.shapes {
            sources.extend(stats.sources.iter().map(|s| secrets::redact(s)));
            traces.extend(stats.traces.iter().map(|s| secrets::redact(s)));
            first = match (first, stats.first_seen) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            last = match (last, stats.last_seen) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
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
            evidence: RuleEvidence {
                id: id.to_string(),
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
        line_width: LINE_WIDTH,
        indent_width: 2,
    };
    cedar_policy_formatter::policies_str_to_pretty(text, &config).map_err(|e| format!("formatter: {e}"))
}

/// Draft the rules that would allow every observed call the repository does not allow yet.
pub fn draft(input: &DraftInput<'_>) -> Result<Draft, DraftError> {
    let t = input.config.thresholds().map_err(DraftError::Config)?;
    let mut schema = Schema::parse(input.files.schema.as_deref().unwrap_or(""))?;
    let mut policies = Policies::load(input.files).map_err(DraftError::Repo)?;
    let type_conflicts = extend_schema(&mut schema, input.summary, input.catalogue);

    let mut evidence = Evidence {
        preset: format!("{:?}", input.config.preset).to_lowercase(),
        type_conflicts,
        ..Evidence::default()
    };
    let mut totals = Totals {
        calls: input.summary.calls,
        shapes: input.summary.shape_count(),
        ..Totals::default()
    };
    let mut window: (Option<i64>, Option<i64>) = (None, None);
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut agents: BTreeMap<String, AgentEvidence> = BTreeMap::new();
    let mut new_texts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut new_rules = Vec::new();
    let mut gaps: Vec<(String, String, Vec<Request>)> = Vec::new();
    let mut invariant = Vec::new();
    let mut tools_seen = BTreeSet::new();

    for (agent, tool, slice) in input.summary.slices() {
        tools_seen.insert(tool.to_string());
        let agent_evidence = agents.entry(agent.to_string()).or_insert_with(|| AgentEvidence {
            agent: agent.to_string(),
            file: policies::agent_file(agent),
            ..AgentEvidence::default()
        });
        let existing = policies.slice(agent, tool);
        let mut shapes: Vec<(&ShapeKey, &ShapeStats)> = slice.shapes.iter().collect();
        shapes.sort_by(|a, b| a.0.cmp(b.0));
        let mut gap: Vec<(&ShapeKey, &ShapeStats)> = Vec::new();
        let mut unrepresentable: BTreeMap<String, u64> = BTreeMap::new();
        for (key, stats) in shapes {
            window.0 = match (window.0, stats.first_seen) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            window.1 = match (window.1, stats.last_seen) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let server = &slice.servers[key.server as usize];
            let requests: Result<Vec<Request>, _> = slice
                .representatives(key)
                .iter()
                .map(|args| mapping::request(agent, tool, server, args, &schema))
                .collect();
            let requests = match requests {
                Ok(r) => r,
                Err(e) => {
                    *unrepresentable.entry(e.to_string()).or_default() += stats.count;
                    totals.unrepresentable += stats.count;
                    continue;
                }
            };
            let verdicts: Vec<_> = requests.iter().map(|r| authorize(&existing, r)).collect();
            if verdicts.iter().all(|v| v.allowed) {
                used.extend(verdicts.into_iter().flat_map(|v| v.determining));
                totals.already_allowed += stats.count;
                agent_evidence.already_allowed += stats.count;
            } else {
                gaps.push((agent.to_string(), tool.to_string(), requests));
                gap.push((key, stats));
            }
        }
        for (reason, calls) in unrepresentable {
            agent_evidence.unrepresentable.push(Unrepresentable {
                tool: tool.to_string(),
                calls,
                reason,
            });
        }
        if gap.is_empty() {
            continue;
        }
        let Some(attrs) = schema.tool(tool).cloned() else {
            continue;
        };
        let clusters = cluster(slice, &gap, t.max_clusters);
        let slice_draft = SliceDraft {
            agent,
            tool,
            slice,
            risk: risk::classify(
                tool,
                input.catalogue.and_then(|c| c.tools.get(tool)),
                input.config.risk_override(tool),
            ),
            leaf_by_path: slice
                .leaves
                .iter()
                .enumerate()
                .map(|(i, l)| (l.path.as_slice(), i as u32))
                .collect(),
        };
        let mut n = policies.last_number(agent, tool);
        for (server, members) in clusters {
            n += 1;
            let id = format!("{agent}/{tool}/{n}");
            let members = Members::new(slice, members);
            totals.drafted += members.calls;
            match slice_draft.build(&id, &server, &members, &attrs, &t) {
                Ok(rule) => {
                    new_texts.entry(agent.to_string()).or_default().push(rule.text);
                    agent_evidence.rules.push(rule.evidence);
                    new_rules.push(id);
                }
                Err(e) => invariant.push(e),
            }
        }
    }

    // Format each agent's new rules and add them to the set replay will use.
    let mut changes = BTreeMap::new();
    for (agent, texts) in &new_texts {
        let file = policies::agent_file(agent);
        let formatted = format_rules(&texts.join("\n\n")).map_err(|e| DraftError::Invariant(vec![e]))?;
        let parsed: cedar_policy::PolicySet = formatted.parse().map_err(|e| {
            DraftError::Invariant(vec![format!("{file}: formatted draft does not parse: {e}")])
        })?;
        for policy in parsed.policies() {
            let id = policy.annotation("id").unwrap_or_default().to_string();
            policies.push(&file, PolicyId::new(&id), policy);
            if policies.rules.last().map(|r| r.owner) != Some(Owner::Bot) {
                invariant.push(format!("{id}: fingerprint does not survive formatting"));
            }
        }
        let before = input.files.agents.get(&file).cloned();
        let after = match &before {
            Some(b) if !b.trim().is_empty() => format!("{}\n\n{}", b.trim_end(), formatted.trim_end()) + "\n",
            _ => format!(
                "// Rules for agent {}. Rules marked @generated were drafted by shadowdraft from\n\
                 // observed calls; edit any rule and it becomes yours: the bot never rewrites it.\n\n{}\n",
                quote(agent),
                formatted.trim_end()
            ),
        };
        changes.insert(file, FileChange { before, after });
        totals.new_rules += texts.len();
    }

    // Invariant 1: replay every gap shape against existing ∪ draft.
    for (agent, tool, requests) in &gaps {
        let set = policies.slice(agent, tool);
        for request in requests {
            let verdict = authorize(&set, request);
            if !verdict.allowed {
                invariant.push(format!(
                    "replay: a call of {agent} to {tool} is still denied ({:?})",
                    verdict.errors
                ));
            }
        }
    }
    // Invariant 2: strict validation of the drafted rules.
    let cedar_schema = schema.to_cedar()?;
    let validation = cedar_policy::Validator::new(cedar_schema)
        .validate(&policies.all(), cedar_policy::ValidationMode::Strict);
    let new_ids: BTreeSet<&String> = new_rules.iter().collect();
    for error in validation.validation_errors() {
        let id = error.policy_id().to_string();
        if new_ids.contains(&id) {
            invariant.push(format!("validation: {error}"));
        } else {
            evidence.existing_problems.push(format!("{error}"));
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
        new_rules,
    })
}
