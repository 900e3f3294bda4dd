//! The memory of rules reviewers turned down. A turned-down rule is drafted as
//! usual (so its fingerprint and calls are known) and then withheld, unless
//! the calls behind it have grown enough since to ask again.

use super::rule::BuiltRule;
use super::Rejections;
use crate::core::evidence::{AgentEvidence, Withheld};

/// Turned down, and the evidence has not grown enough since.
fn withhold(rule: &BuiltRule, rejected: &Rejections, factor: f64) -> bool {
    if rejected.is_empty() {
        return false;
    }
    rejected
        .get(&rule.evidence.fingerprint)
        .is_some_and(|r| r.permanent || (rule.evidence.calls as f64) < r.calls as f64 * factor)
}

/// The rules still to propose. Each withheld one is listed in the agent's
/// evidence with the reviewers' reason, and its calls no longer count as
/// `drafted`.
pub(super) fn without_withheld(
    rules: Vec<BuiltRule>,
    rejected: &Rejections,
    factor: f64,
    evidence: &mut AgentEvidence,
    drafted: &mut u64,
) -> Vec<BuiltRule> {
    let (kept, withheld): (Vec<BuiltRule>, Vec<BuiltRule>) =
        rules.into_iter().partition(|r| !withhold(r, rejected, factor));
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
