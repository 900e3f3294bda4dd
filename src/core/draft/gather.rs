//! Adding up what the slices produced: totals, the observation window, and
//! per-agent evidence, with turned-down rules set aside. Slices come in the
//! summary's order, so the sums do not depend on which thread drafted what.

use super::rejections::without_withheld;
use super::rule::BuiltRule;
use super::slice::SliceOutcome;
use super::{Draft, FileChange, Rejections};
use crate::core::catalogue::Catalogue;
use crate::core::evidence::{AgentEvidence, Evidence, Totals, WithoutArgs};
use crate::core::observation::rfc3339;
use crate::core::policies::{self, Owner, Policies};
use crate::core::summary::{earliest, latest, Slice, Summary};
use std::collections::{BTreeMap, BTreeSet};

/// Everything the slices produced, summed up.
pub(super) struct Gathered {
    totals: Totals,
    window: (Option<i64>, Option<i64>),
    /// Ids of existing rules that allowed some observed call.
    used: BTreeSet<String>,
    pub(super) agents: BTreeMap<String, AgentEvidence>,
    /// New rules by agent; agents without any are left out.
    pub(super) new_rules: BTreeMap<String, Vec<BuiltRule>>,
    /// Invariant failures: bugs, reported rather than shipped.
    pub(super) problems: Vec<String>,
    tools_seen: BTreeSet<String>,
}

impl Gathered {
    /// Sums up `outcomes`, which are in the order of `slices`. Rules turned
    /// down in `rejected` are withheld.
    pub(super) fn from_slices(
        summary: &Summary,
        slices: &[(&str, &str, &Slice)],
        outcomes: Vec<SliceOutcome>,
        rejected: &Rejections,
    ) -> Gathered {
        let mut gathered = Gathered {
            totals: Totals {
                calls: summary.calls,
                shapes: summary.shape_count(),
                ..Totals::default()
            },
            window: (None, None),
            used: BTreeSet::new(),
            agents: BTreeMap::new(),
            new_rules: BTreeMap::new(),
            problems: Vec::new(),
            tools_seen: BTreeSet::new(),
        };
        for ((agent, tool, _), outcome) in slices.iter().zip(outcomes) {
            gathered.add(agent, tool, outcome, rejected);
        }
        gathered.count_without_args(summary);
        gathered.new_rules.retain(|_, rules| !rules.is_empty());
        gathered
    }

    fn add(&mut self, agent: &str, tool: &str, outcome: SliceOutcome, rejected: &Rejections) {
        self.tools_seen.insert(tool.to_string());
        self.window = (
            earliest(self.window.0, outcome.window.0),
            latest(self.window.1, outcome.window.1),
        );
        let totals = &mut self.totals;
        totals.already_allowed += outcome.already_allowed;
        totals.unrepresentable += outcome.unrepresentable_calls;
        totals.forbidden += outcome.forbidden_calls;
        totals.drafted += outcome.drafted_calls;
        self.used.extend(outcome.used);
        self.problems.extend(outcome.problems);
        let evidence = self
            .agents
            .entry(agent.to_string())
            .or_insert_with(|| AgentEvidence {
                agent: agent.to_string(),
                file: policies::agent_file(agent),
                ..AgentEvidence::default()
            });
        let rules = without_withheld(outcome.rules, rejected, evidence, &mut totals.drafted);
        totals.new_rules += rules.len();
        evidence.already_allowed += outcome.already_allowed;
        evidence.unrepresentable.extend(outcome.unrepresentable);
        self.new_rules.entry(agent.to_string()).or_default().extend(rules);
    }

    /// Calls seen without arguments shape no rule; the evidence counts them per tool.
    fn count_without_args(&mut self, summary: &Summary) {
        for (agent, tools) in &summary.without_args {
            let evidence = self
                .agents
                .entry(agent.to_string())
                .or_insert_with(|| AgentEvidence {
                    agent: agent.to_string(),
                    file: policies::agent_file(agent),
                    ..AgentEvidence::default()
                });
            for (tool, &calls) in tools {
                evidence.without_args.push(WithoutArgs {
                    tool: tool.clone(),
                    calls,
                });
            }
            self.totals.without_args += tools.values().sum::<u64>();
        }
    }

    /// Lists, per agent, the generated rules no observed call used and the
    /// draft did not just add: candidates for removal.
    pub(super) fn mark_removal_candidates(&mut self, policies: &Policies, new_ids: &BTreeSet<String>) {
        for agent in self.agents.values_mut() {
            agent.removal_candidates = policies
                .rules
                .iter()
                .filter(|r| r.owner == Owner::Bot && r.agent.as_deref() == Some(agent.agent.as_str()))
                .map(|r| r.id.to_string())
                .filter(|id| !self.used.contains(id) && !new_ids.contains(id))
                .collect();
        }
    }

    /// The draft, with the sums and per-agent evidence added to `evidence`.
    pub(super) fn into_draft(
        self,
        mut evidence: Evidence,
        changes: BTreeMap<String, FileChange>,
        catalogue: Option<&Catalogue>,
    ) -> Draft {
        if let Some(catalogue) = catalogue {
            evidence.never_observed = catalogue
                .tools
                .keys()
                .filter(|t| !self.tools_seen.contains(*t))
                .cloned()
                .collect();
        }
        let mut totals = self.totals;
        totals.agents = self.agents.len();
        totals.tools = self.tools_seen.len();
        evidence.totals = totals;
        evidence.window_start = self.window.0.map(rfc3339);
        evidence.window_end = self.window.1.map(rfc3339);
        evidence.agents = self.agents.into_values().collect();
        Draft {
            changes,
            evidence,
            new_rules: self
                .new_rules
                .values()
                .flatten()
                .map(|r| r.evidence.id.clone())
                .collect(),
        }
    }
}
