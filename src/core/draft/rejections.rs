//! The memory of rules reviewers turned down. A turned-down rule is drafted as
//! usual (so its fingerprint and calls are known) and then withheld: a closed
//! proposal means "not this rule", however many more calls it would allow.
//! A different rule (other values, another shape: another fingerprint) is a
//! new question and is proposed; `/shadowdraft redraft` forgets the memory.

use super::rule::BuiltRule;
use super::Rejections;
use crate::core::evidence::{AgentEvidence, Withheld};

/// Turned down as it is.
fn withhold(rule: &BuiltRule, rejected: &Rejections) -> bool {
    rejected.contains_key(&rule.evidence.fingerprint)
}

/// The rules still to propose. Each withheld one is listed in the agent's
/// evidence with the reviewers' reason, and its calls no longer count as
/// `drafted`.
pub(super) fn without_withheld(
    rules: Vec<BuiltRule>,
    rejected: &Rejections,
    evidence: &mut AgentEvidence,
    drafted: &mut u64,
) -> Vec<BuiltRule> {
    let (kept, withheld): (Vec<BuiltRule>, Vec<BuiltRule>) =
        rules.into_iter().partition(|r| !withhold(r, rejected));
    for rule in withheld {
        let rejection = &rejected[&rule.evidence.fingerprint];
        *drafted -= rule.evidence.calls;
        evidence.withheld.push(Withheld {
            what: rule.evidence.id,
            calls: rule.evidence.calls,
            reason: rejection.reason.clone(),
        });
    }
    kept
}
