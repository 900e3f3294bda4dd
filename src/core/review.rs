//! What reviewers' decisions mean for the rules a proposal carried: merged
//! rules are promoted, rules deleted before the merge and rules of a proposal
//! closed without merging are turned down (by fingerprint).

use super::draft::Rejection;
use std::collections::BTreeSet;

/// A rule of a proposal as the bot last pushed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedRule {
    pub id: String,
    pub fingerprint: String,
    pub calls: u64,
}

/// What to remember about each rule of a closed proposal.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdicts<'a> {
    pub promoted: Vec<&'a ProposedRule>,
    /// (fingerprint, why) of the rules turned down.
    pub turned_down: Vec<(&'a str, Rejection)>,
}

/// Pull request `number` was merged and `on_main` holds the rule ids of the
/// base branch now: the rules that made it are promoted, the others were
/// deleted on the way.
pub fn merged<'a>(rules: &'a [ProposedRule], on_main: &BTreeSet<String>, number: u64) -> Verdicts<'a> {
    let mut verdicts = Verdicts::default();
    for rule in rules {
        if on_main.contains(&rule.id) {
            verdicts.promoted.push(rule);
        } else {
            verdicts.turned_down.push((
                &rule.fingerprint,
                turned_down(rule, format!("deleted from #{number} before it was merged")),
            ));
        }
    }
    verdicts
}

/// Pull request `number` was closed without merging: every rule is turned down.
pub fn closed(rules: &[ProposedRule], number: u64) -> Verdicts<'_> {
    Verdicts {
        promoted: Vec::new(),
        turned_down: rules
            .iter()
            .map(|rule| {
                (
                    rule.fingerprint.as_str(),
                    turned_down(rule, format!("#{number} was closed without merging")),
                )
            })
            .collect(),
    }
}

fn turned_down(rule: &ProposedRule, reason: String) -> Rejection {
    Rejection {
        calls: rule.calls,
        reason,
        permanent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<ProposedRule> {
        ["a/send/1", "a/send/2"]
            .iter()
            .map(|id| ProposedRule {
                id: id.to_string(),
                fingerprint: format!("fp-{id}"),
                calls: 4,
            })
            .collect()
    }

    #[test]
    fn a_merge_promotes_what_reached_main_and_turns_down_what_was_deleted() {
        let rules = rules();
        let on_main = BTreeSet::from(["a/send/1".to_string(), "human/rule".to_string()]);
        let v = merged(&rules, &on_main, 9);
        assert_eq!(v.promoted, vec![&rules[0]]);
        assert_eq!(v.turned_down.len(), 1);
        assert_eq!(v.turned_down[0].0, "fp-a/send/2");
        assert_eq!(v.turned_down[0].1.reason, "deleted from #9 before it was merged");
        assert!(!v.turned_down[0].1.permanent);
        assert_eq!(v.turned_down[0].1.calls, 4);
    }

    #[test]
    fn closing_turns_every_rule_down() {
        let rules = rules();
        let v = closed(&rules, 3);
        assert!(v.promoted.is_empty());
        assert_eq!(v.turned_down.len(), 2);
        assert!(v
            .turned_down
            .iter()
            .all(|(_, r)| r.reason == "#3 was closed without merging"));
    }
}
