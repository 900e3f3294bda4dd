//! Drafting one (agent, tool) slice of the observations: replay its call
//! shapes against the existing rules to find the gap, then cluster the gap
//! into rules and build them. Slices are independent, so they are drafted in
//! parallel; everything here reads shared state and writes only its outcome.

use super::cluster::cluster;
use super::rule::{BuiltRule, Members, SliceDraft, ToolContext};
use super::DraftInput;
use crate::core::config::Thresholds;
use crate::core::evidence::Unrepresentable;
use crate::core::mapping;
use crate::core::policies::Policies;
use crate::core::projection;
use crate::core::replay::authorize;
use crate::core::risk;
use crate::core::schema::Schema;
use crate::core::summary::{earliest, latest, ShapeKey, ShapeStats, Slice};
use crate::core::tokens;
use crate::core::types::Attr;
use cedar_policy::PolicySet;
use std::collections::BTreeMap;

/// What drafting needs to see, shared read-only by the worker threads.
pub(super) struct Drafting<'a> {
    pub(super) input: &'a DraftInput<'a>,
    pub(super) schema: &'a Schema,
    pub(super) policies: &'a Policies,
    pub(super) thresholds: &'a Thresholds,
}

/// How the repository decides the representative calls of one shape.
pub(super) enum ShapeDecision {
    /// All allowed, by these rules.
    Allowed(Vec<String>),
    /// A `forbid` rule denies one: a person's decision the draft must not work around.
    Forbidden(Vec<String>),
    /// Nothing allows one: the gap to draft.
    NotAllowed,
}

/// What drafting one (agent, tool) produced.
#[derive(Default)]
pub(super) struct SliceOutcome {
    pub(super) already_allowed: u64,
    pub(super) unrepresentable: Vec<Unrepresentable>,
    pub(super) unrepresentable_calls: u64,
    pub(super) forbidden_calls: u64,
    /// Ids of existing rules that allowed some observed call.
    pub(super) used: Vec<String>,
    pub(super) drafted_calls: u64,
    pub(super) rules: Vec<BuiltRule>,
    /// Invariant failures: bugs, reported rather than shipped.
    pub(super) problems: Vec<String>,
    pub(super) window: (Option<i64>, Option<i64>),
}

/// Shapes paired with their statistics, sorted by shape.
type Shapes<'a> = [(&'a ShapeKey, &'a ShapeStats)];

/// One (agent, tool) slice and what drafting it needs to see.
pub(super) struct SliceJob<'a> {
    pub(super) cx: &'a Drafting<'a>,
    pub(super) agent: &'a str,
    pub(super) tool: &'a str,
    pub(super) slice: &'a Slice,
}

/// Draft one (agent, tool): find the gap, cluster it into rules, replay.
pub(super) fn draft_slice(cx: &Drafting<'_>, agent: &str, tool: &str, slice: &Slice) -> SliceOutcome {
    let job = SliceJob {
        cx,
        agent,
        tool,
        slice,
    };
    let mut out = SliceOutcome::default();
    let mut shapes: Vec<(&ShapeKey, &ShapeStats)> = slice.shapes.iter().collect();
    shapes.sort_by(|a, b| a.0.cmp(b.0));
    out.window = window(&shapes);
    let existing = cx.policies.slice(agent, tool);
    let read = cx.policies.reads(&cx.policies.slice_indices(agent, tool));
    let mut gap = job.find_gap(&shapes, &existing, read.as_deref(), &mut out);
    let Some(attrs) = cx.schema.tool(tool) else {
        return out;
    };
    if gap.is_empty() {
        return out;
    }
    gap.sort_by(|a, b| a.0.cmp(b.0));
    let (with_draft, draft_reads) = job.draft_rules(&gap, attrs, existing, read, &mut out);
    let replay_problems = job.replay_gap(&gap, &with_draft, draft_reads.as_deref());
    out.problems.extend(replay_problems);
    out
}

/// The first and last time any of the shapes was seen.
fn window(shapes: &Shapes<'_>) -> (Option<i64>, Option<i64>) {
    shapes.iter().fold((None, None), |(first, last), (_, stats)| {
        (earliest(first, stats.first_seen), latest(last, stats.last_seen))
    })
}

impl SliceJob<'_> {
    /// Replays the shapes against the existing rules. Calls that are allowed,
    /// forbidden or not representable are counted in `out`; the shapes nothing
    /// allows are returned: the gap to draft.
    fn find_gap<'s>(
        &self,
        shapes: &Shapes<'s>,
        existing: &PolicySet,
        read: Option<&[Vec<String>]>,
        out: &mut SliceOutcome,
    ) -> Vec<(&'s ShapeKey, &'s ShapeStats)> {
        let keys: Vec<&ShapeKey> = shapes.iter().map(|(k, _)| *k).collect();
        let mut gap = Vec::new();
        let mut unrepresentable: BTreeMap<String, u64> = BTreeMap::new();
        let mut forbidden: BTreeMap<String, u64> = BTreeMap::new();
        for members in projection::group(self.slice, &keys, read) {
            let calls: u64 = members.iter().map(|&i| shapes[i].1.count).sum();
            match self.decide_shape(keys[members[0]], existing) {
                Err(e) => {
                    *unrepresentable.entry(e).or_default() += calls;
                    out.unrepresentable_calls += calls;
                }
                Ok(ShapeDecision::Allowed(determining)) => {
                    out.used.extend(determining);
                    out.already_allowed += calls;
                }
                Ok(ShapeDecision::Forbidden(by)) => {
                    *forbidden.entry(by.join(", ")).or_default() += calls;
                    out.forbidden_calls += calls;
                }
                Ok(ShapeDecision::NotAllowed) => gap.extend(members.iter().map(|&i| shapes[i])),
            }
        }
        out.unrepresentable = self.still_denied(unrepresentable, forbidden);
        gap
    }

    /// The calls that stay denied and why, for the evidence: first those the
    /// schema cannot represent, then those a `forbid` rule denies.
    fn still_denied(
        &self,
        unrepresentable: BTreeMap<String, u64>,
        forbidden: BTreeMap<String, u64>,
    ) -> Vec<Unrepresentable> {
        unrepresentable
            .into_iter()
            .map(|(reason, calls)| Unrepresentable {
                tool: self.tool.to_string(),
                calls,
                reason,
            })
            .chain(forbidden.into_iter().map(|(by, calls)| Unrepresentable {
                tool: self.tool.to_string(),
                calls,
                reason: format!("forbidden by {by}: not drafted"),
            }))
            .collect()
    }

    /// Clusters the gap into rules and builds them into `out`. Returns the
    /// slice's rules with the new ones added, and the input paths they read,
    /// for the replay.
    fn draft_rules(
        &self,
        gap: &Shapes<'_>,
        attrs: &BTreeMap<String, Attr>,
        existing: PolicySet,
        read: Option<Vec<Vec<String>>>,
        out: &mut SliceOutcome,
    ) -> (PolicySet, Option<Vec<Vec<String>>>) {
        let (cx, agent, tool) = (self.cx, self.agent, self.tool);
        let risk = risk::classify(
            tool,
            cx.input.catalogue.and_then(|c| c.tools.get(tool)),
            cx.input.config.risk_override(tool),
        );
        let context = ToolContext {
            session: cx.schema.session(tool),
            derived: cx.schema.derived(tool),
            enums: cx
                .input
                .catalogue
                .and_then(|c| c.tools.get(tool))
                .map(|t| &t.enums),
        };
        let slice_draft = SliceDraft::new(agent, tool, self.slice, risk, context);
        let mut n = cx.policies.last_number(agent, tool);
        let mut with_draft = existing;
        let mut draft_reads = read;
        for (server, members) in cluster(self.slice, gap, cx.thresholds.max_clusters) {
            n += 1;
            let id = format!("{agent}/{tool}/{n}");
            let members = Members::new(self.slice, members);
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
        (with_draft, draft_reads)
    }

    /// Decide the representative calls of one shape; `Err` when the call cannot be
    /// represented under the schema.
    pub(super) fn decide_shape(&self, key: &ShapeKey, set: &PolicySet) -> Result<ShapeDecision, String> {
        let server = &self.slice.servers[key.server as usize];
        let mut determining = Vec::new();
        let mut allowed = true;
        for (args, session) in self.slice.representative_calls(key) {
            let request = mapping::request(
                self.agent,
                self.tool,
                server,
                &args,
                session.as_ref(),
                self.cx.schema,
            )
            .map_err(|e| e.to_string())?;
            if set.is_empty() {
                allowed = false;
                continue;
            }
            let verdict = authorize(set, &request);
            if !verdict.allowed && !verdict.determining.is_empty() {
                return Ok(ShapeDecision::Forbidden(verdict.determining));
            }
            allowed &= verdict.allowed;
            determining.extend(verdict.determining);
        }
        Ok(if allowed {
            ShapeDecision::Allowed(determining)
        } else {
            ShapeDecision::NotAllowed
        })
    }
}
