//! Building one rule: walk the tool's arguments over the calls the rule stands
//! for, let the ladder pick each argument's condition, and write the rule with
//! its id, fingerprint and evidence.

use super::condition::{binding_docs, condition_docs, condition_summary, sample};
use crate::core::classify::{ElementKind, Shape};
use crate::core::config::Thresholds;
use crate::core::evidence::{ArgEvidence, RuleEvidence};
use crate::core::ladder::{self, LeafInput, Role, Rung};
use crate::core::layout::{self, Doc};
use crate::core::observation::rfc3339;
use crate::core::policies::{FINGERPRINT_KEY, GENERATED_KEY, GENERATED_VALUE};
use crate::core::risk::{self, ToolRisk};
use crate::core::schema::DerivedAttrs;
use crate::core::secrets;
use crate::core::summary::{earliest, latest, Entry, ShapeKey, ShapeStats, Slice};
use crate::core::syntax::{has_path, quote};
use crate::core::tokens;
use crate::core::types::{ArgType, Attr};
use cedar_policy::{Policy, PolicyId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One (agent, tool) being drafted: its calls, grouped into rules.
pub(super) struct SliceDraft<'a> {
    agent: &'a str,
    tool: &'a str,
    slice: &'a Slice,
    risk: ToolRisk,
    leaf_by_path: HashMap<&'a [String], u32>,
    /// What the schema says of the tool's context beyond `input`.
    context: ToolContext<'a>,
}

/// The tool's context as the schema declares it, beyond `input`, and what
/// the catalogue says of its arguments.
pub(super) struct ToolContext<'a> {
    /// `context.session` attributes.
    pub(super) session: Option<&'a BTreeMap<String, Attr>>,
    /// `context.derived` attributes, per argument.
    pub(super) derived: Option<&'a DerivedAttrs>,
    /// Top-level arguments the catalogue gives an `enum` for.
    pub(super) enums: Option<&'a BTreeSet<String>>,
}

/// Distinct values a binding to the session needs: one value equal to the
/// session's every time could be a coincidence, two are a relation.
const BINDING_MIN_DISTINCT: u64 = 2;

/// Cluster-wide facts about the calls one rule stands for.
pub(super) struct Members<'a> {
    shapes: Vec<(&'a ShapeKey, &'a ShapeStats)>,
    pub(super) calls: u64,
    /// Calls in which each path (or a path below it) is present.
    presence: HashMap<Vec<String>, u64>,
    /// Per leaf: value index → calls.
    values: HashMap<u32, BTreeMap<u32, u64>>,
    /// Per (argument leaf, session leaf): calls in which they were equal.
    bound: HashMap<(u32, u32), u64>,
}

impl<'a> Members<'a> {
    pub(super) fn new(slice: &Slice, shapes: Vec<(&'a ShapeKey, &'a ShapeStats)>) -> Members<'a> {
        let mut presence: HashMap<Vec<String>, u64> = HashMap::new();
        let mut values: HashMap<u32, BTreeMap<u32, u64>> = HashMap::new();
        let mut bound: HashMap<(u32, u32), u64> = HashMap::new();
        let mut calls = 0;
        for (key, stats) in &shapes {
            calls += stats.count;
            for pair in &key.bound {
                *bound.entry(*pair).or_default() += stats.count;
            }
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
            bound,
        }
    }

    /// Where and when these calls were seen, redacted for the evidence.
    fn sightings(&self) -> Sightings {
        let mut seen = Sightings::default();
        for (_, stats) in &self.shapes {
            seen.sources
                .extend(stats.sources.iter().map(|s| secrets::redact(s)));
            seen.traces
                .extend(stats.traces.iter().map(|s| secrets::redact(s)));
            seen.first = earliest(seen.first, stats.first_seen);
            seen.last = latest(seen.last, stats.last_seen);
            seen.shadow_denied += stats.shadow_denied;
        }
        seen.traces.sort();
        seen.traces.dedup();
        seen.traces.truncate(3);
        seen
    }
}

#[derive(Default)]
struct Sightings {
    sources: BTreeSet<String>,
    /// The first three distinct trace ids.
    traces: Vec<String>,
    first: Option<i64>,
    last: Option<i64>,
    shadow_denied: u64,
}

pub(super) struct BuiltRule {
    pub(super) text: String,
    /// `text` is already laid out exactly as cedar-policy-formatter would.
    pub(super) formatted: bool,
    /// The rule parsed, with its id, for replay.
    pub(super) policy: Policy,
    pub(super) evidence: RuleEvidence,
}

/// What walking the arguments yields for one rule.
#[derive(Default)]
struct Constraints {
    /// The conjuncts of the rule's `when`, in argument order.
    conditions: Vec<Doc>,
    args: Vec<ArgEvidence>,
    /// Arguments the rule requires to be absent.
    absent: Vec<String>,
}

impl<'a> SliceDraft<'a> {
    pub(super) fn new(
        agent: &'a str,
        tool: &'a str,
        slice: &'a Slice,
        risk: ToolRisk,
        context: ToolContext<'a>,
    ) -> SliceDraft<'a> {
        SliceDraft {
            agent,
            tool,
            slice,
            risk,
            context,
            leaf_by_path: slice
                .leaves
                .iter()
                .enumerate()
                .map(|(i, l)| (l.path.as_slice(), i as u32))
                .collect(),
        }
    }
}

impl SliceDraft<'_> {
    fn role(&self, name: &str, shapes: &[&Shape]) -> Role {
        let sends_somewhere = scalars(shapes)
            .iter()
            .any(|s| matches!(s, Shape::Url { .. } | Shape::Email { .. }));
        let destination = risk::is_destination_name(name) || sends_somewhere;
        // What an open-world tool reaches: even a read leaks through where it reads from.
        let remote = sends_somewhere || risk::is_remote_locator_name(name);
        let tight = (self.risk.side_effecting() && destination) || (self.risk.open_world && remote);
        if tight {
            Role::Destination
        } else {
            Role::Parameter
        }
    }

    /// Whether a top-level argument is what a read-only tool looks up: free
    /// text or words (never a URL, e-mail, path, identifier or date), not
    /// named as what locates a resource (`channel`, `user`, `file`…), not an
    /// enum in the catalogue, and named as a lookup (`query`, `city`,
    /// `hotel_names`…) or set-valued.
    fn lookup(&self, path: &[String], ty: &ArgType, shapes: &[&Shape]) -> bool {
        let [name] = path else {
            return false;
        };
        let values = scalars(shapes);
        let all_words = !values.is_empty() && values.iter().all(|s| **s == Shape::Text);
        !self.risk.side_effecting()
            && all_words
            && !risk::is_destination_name(name)
            && !self.declared_enum(path)
            && (matches!(ty, ArgType::Set(_)) || risk::is_lookup_name(name))
    }

    /// Whether the catalogue lists the values of a top-level argument.
    fn declared_enum(&self, path: &[String]) -> bool {
        matches!(path, [name] if self.context.enums.is_some_and(|e| e.contains(name)))
    }

    /// The session attribute an argument equalled in every call of the rule
    /// where it was present, over at least two distinct values, with the
    /// same type in the schema: `(attribute, calls, distinct)`.
    fn binding(
        &self,
        members: &Members<'_>,
        leaf_id: u32,
        ty: &ArgType,
        present: u64,
    ) -> Option<(String, u64, u64)> {
        let declared = self.context.session?;
        let leaf = &self.slice.leaves[leaf_id as usize];
        let distinct = if leaf.table.is_exact() {
            members.values.get(&leaf_id).map_or(0, |v| v.len() as u64)
        } else {
            leaf.distinct.estimate().0
        };
        if distinct < BINDING_MIN_DISTINCT {
            return None;
        }
        let scalar = match ty {
            ArgType::Set(element) => element.as_ref(),
            other => other,
        };
        self.slice
            .leaves
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_session())
            .filter(|(i, _)| members.bound.get(&(leaf_id, *i as u32)) == Some(&present))
            .find_map(|(_, l)| {
                let (name, attr) = declared.get_key_value(&l.path[1])?;
                (attr.ty == *scalar).then(|| (name.clone(), present, distinct))
            })
    }

    /// Constrains every argument under `prefix`: absent ones are required to
    /// stay absent, records are walked into, leaves go up the ladder.
    fn walk(
        &self,
        members: &Members<'_>,
        attrs: &BTreeMap<String, Attr>,
        prefix: &mut Vec<String>,
        t: &Thresholds,
        out: &mut Constraints,
    ) {
        for (name, attr) in attrs {
            prefix.push(name.clone());
            let present = members.presence.get(prefix.as_slice()).copied().unwrap_or(0);
            let always = present == members.calls;
            if present == 0 {
                out.conditions.push(Doc::Atom(format!("!({})", has_path(prefix))));
                out.absent.push(prefix.join("."));
            } else if let ArgType::Record(inner) = &attr.ty {
                if always {
                    out.conditions.push(Doc::Atom(has_path(prefix)));
                }
                self.walk(members, inner, prefix, t, out);
            } else {
                let (parts, arg) = self.leaf(members, name, &attr.ty, prefix, present, t);
                if always {
                    out.conditions.push(Doc::Atom(has_path(prefix)));
                    out.conditions.extend(parts);
                } else if !parts.is_empty() {
                    out.conditions.push(Doc::If {
                        guard: has_path(prefix),
                        then: parts,
                    });
                }
                out.args.push(arg);
            }
            prefix.pop();
        }
    }

    /// One argument with a value: the ladder's condition as Cedar conjuncts,
    /// and the evidence for it.
    fn leaf(
        &self,
        members: &Members<'_>,
        name: &str,
        ty: &ArgType,
        path: &[String],
        present: u64,
        t: &Thresholds,
    ) -> (Vec<Doc>, ArgEvidence) {
        let leaf_id = self.leaf_by_path[path];
        let leaf = &self.slice.leaves[leaf_id as usize];
        let entries = leaf.table.entries();
        let used: Vec<(&Entry, u64)> = members.values[&leaf_id]
            .iter()
            .map(|(v, n)| (&entries[*v as usize], *n))
            .collect();
        let shapes: Vec<&Shape> = used.iter().map(|(e, _)| &e.shape).collect();
        let role = self.role(name, &shapes);
        let (distinct, exact) = leaf.distinct.estimate();
        let derived: Vec<ElementKind> = match (self.context.derived, path) {
            (Some(derived), [arg]) => derived
                .get(arg)
                .into_iter()
                .flatten()
                .filter_map(|a| ElementKind::from_attribute(a))
                .collect(),
            _ => Vec::new(),
        };
        let input = LeafInput {
            ty,
            exact: leaf.table.is_exact(),
            values: used,
            calls: present,
            distinct,
            leaf_calls: leaf.calls,
            secret_name: leaf.secret_name,
            role,
            lookup: self.lookup(path, ty, &shapes),
            derived: &derived,
            declared_enum: self.declared_enum(path),
        };
        let decision = ladder::decide(&input, t);
        let mut docs = condition_docs(path, ty, &decision.condition);
        let (mut rung, mut condition, mut reason) = (
            decision.rung,
            condition_summary(&decision.condition, ty),
            decision.reason.clone(),
        );
        let mut unconstrained = decision.unconstrained;
        if let Some((attribute, calls, distinct)) = self.binding(members, leaf_id, ty, present) {
            let set = matches!(ty, ArgType::Set(_));
            let mut bound = binding_docs(path, set, &attribute);
            // `tight` keeps what the values alone allowed on top of the binding.
            if t.bound_keeps_values {
                bound.append(&mut docs);
            }
            docs = bound;
            rung = Rung::Session;
            condition = if set {
                format!("every element == session.{attribute}")
            } else {
                format!("== session.{attribute}")
            };
            let values = if t.bound_keeps_values {
                format!(
                    ", and {condition_was}",
                    condition_was = condition_summary(&decision.condition, ty)
                )
            } else {
                String::new()
            };
            reason = format!(
                "bound to the session: in all {calls} calls ({distinct} distinct values) it equalled \
                 `session.{attribute}`{values}"
            );
            unconstrained = false;
        }
        let evidence = ArgEvidence {
            path: path.join("."),
            role,
            rung,
            rung_label: rung.label(),
            condition,
            reason,
            distinct: if exact {
                distinct.to_string()
            } else {
                format!("≈ {distinct}")
            },
            calls: present,
            presence: if present == members.calls {
                "always".into()
            } else {
                format!("{present} of {} calls", members.calls)
            },
            samples: samples(&input.values, leaf.secret_name),
            unconstrained,
            secret: decision.secret,
        };
        (docs, evidence)
    }

    pub(super) fn build(
        &self,
        id: &str,
        server: &str,
        members: &Members<'_>,
        attrs: &BTreeMap<String, Attr>,
        t: &Thresholds,
    ) -> Result<BuiltRule, String> {
        let mut constraints = Constraints::default();
        self.walk(members, attrs, &mut Vec::new(), t, &mut constraints);
        let head = format!(
            "permit (\n  principal == Agent::{},\n  action == Action::{},\n  resource == McpServer::{}\n)",
            quote(self.agent),
            quote(self.tool),
            quote(server)
        );
        let (core, formatted) = layout::rule(&head, &constraints.conditions);
        let fingerprint = tokens::fingerprint(&core);
        let text = format!(
            "@id({})\n@{GENERATED_KEY}({})\n@{FINGERPRINT_KEY}(\"{fingerprint}\")\n{core}",
            quote(id),
            quote(GENERATED_VALUE),
        );
        let policy = Policy::parse(Some(PolicyId::new(id)), &text)
            .map_err(|e| format!("{id}: drafted rule does not parse: {e}"))?;
        Ok(BuiltRule {
            text,
            formatted,
            policy,
            evidence: self.evidence(id, server, fingerprint, members, constraints),
        })
    }

    fn evidence(
        &self,
        id: &str,
        server: &str,
        fingerprint: String,
        members: &Members<'_>,
        constraints: Constraints,
    ) -> RuleEvidence {
        let seen = members.sightings();
        let unconstrained = constraints
            .args
            .iter()
            .filter(|a| a.unconstrained)
            .map(|a| a.path.clone())
            .collect();
        RuleEvidence {
            id: id.to_string(),
            fingerprint,
            tool: self.tool.to_string(),
            server: server.to_string(),
            risk: self.risk.clone(),
            effect_label: self.risk.effect.label(),
            calls: members.calls,
            shapes: members.shapes.len(),
            sources: seen.sources.into_iter().take(8).collect(),
            first_seen: seen.first.map(rfc3339),
            last_seen: seen.last.map(rfc3339),
            shadow_denied: seen.shadow_denied,
            traces: seen.traces,
            args: constraints.args,
            unconstrained,
            absent: constraints.absent,
        }
    }
}

/// The shapes of scalar values: sets stand for their elements.
fn scalars<'s>(shapes: &[&'s Shape]) -> Vec<&'s Shape> {
    shapes
        .iter()
        .flat_map(|s| match s {
            Shape::Set(elements) => elements.iter().collect(),
            one => vec![*one],
        })
        .collect()
}

/// The three values most calls used, as the evidence shows them.
fn samples(used: &[(&Entry, u64)], secret_name: bool) -> Vec<String> {
    let mut by_count = used.to_vec();
    by_count.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.value.to_string().cmp(&b.0.value.to_string()))
    });
    by_count
        .iter()
        .take(3)
        .map(|(e, _)| sample(&e.value, secret_name || e.shape == Shape::Secret))
        .collect()
}
