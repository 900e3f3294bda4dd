//! The proposal planner: given a draft and the state of its branch and pull
//! request, decide what the bot does. Data in, a [`Plan`] out; the bot's
//! executor (`bot::propose`) gathers the [`Facts`] and carries the plan out.

/// A commit on a proposal branch that the bot did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCommit {
    pub sha: String,
    pub author: String,
}

/// The agent's open proposal, as the forge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenProposal {
    pub number: u64,
    /// Replacing the bot's section with the new evidence changes the body.
    pub body_changed: bool,
}

/// Everything the plan depends on.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// Rules the draft adds; a schema change alone allows nothing.
    pub new_rules: usize,
    pub open: Option<OpenProposal>,
    /// Commits on the branch by someone other than the bot.
    pub foreign_commits: &'a [ForeignCommit],
    /// The open proposal already has a comment carrying this draft's digest.
    pub evidence_commented: bool,
    /// The branch tip already holds exactly the drafted files, on the current base.
    pub branch_holds_draft: bool,
    /// The branch tip, the commit the draft would push, and the head the bot
    /// last posted a check run for.
    pub branch_tip: Option<&'a str>,
    pub drafted_commit: &'a str,
    pub checked_head: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No new rule: `main` already allows every observed call.
    Nothing,
    /// A person pushed to the branch but there is no open proposal to talk
    /// on: never push over their work; try again later.
    LeaveBranchAlone { author: String },
    /// A person owns the branch now: post the new evidence as a comment.
    CommentEvidence { number: u64 },
    /// … which was already posted for this draft.
    AlreadyCommented { number: u64 },
    /// The bot's branch: bring it and the proposal up to date.
    Publish {
        /// Push the drafted commit (false: the branch already holds it).
        push: bool,
        proposal: ProposalStep,
        /// Post `shadowdraft/verify` on the head (a head not checked before).
        check_run: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStep {
    Open,
    Update {
        number: u64,
    },
    /// The proposal already shows this draft.
    Keep {
        number: u64,
    },
}

pub fn plan(facts: &Facts<'_>) -> Plan {
    if facts.new_rules == 0 {
        return Plan::Nothing;
    }
    if let Some(first) = facts.foreign_commits.first() {
        return match facts.open {
            None => Plan::LeaveBranchAlone {
                author: first.author.clone(),
            },
            Some(open) if facts.evidence_commented => Plan::AlreadyCommented { number: open.number },
            Some(open) => Plan::CommentEvidence { number: open.number },
        };
    }
    // Re-pushing identical content would churn the PR and its checks.
    let push = !(facts.branch_holds_draft && facts.branch_tip.is_some());
    let head = if push {
        Some(facts.drafted_commit)
    } else {
        facts.branch_tip
    };
    let proposal = match facts.open {
        None => ProposalStep::Open,
        Some(open) if open.body_changed => ProposalStep::Update { number: open.number },
        Some(open) => ProposalStep::Keep { number: open.number },
    };
    Plan::Publish {
        push,
        proposal,
        check_run: facts.checked_head != head,
    }
}

/// The caution that opens a proposal when merging it needs no code owner.
pub fn protection_warning(base: &str, code_owner_reviews_required: Option<bool>) -> Option<String> {
    (code_owner_reviews_required == Some(false)).then(|| {
        format!(
            "`{base}` does not require a code owner's review: anyone with write access can merge this policy. \
             Protect the branch and turn on \"Require review from Code Owners\"."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Vec<ForeignCommit> {
        vec![ForeignCommit {
            sha: "abc1234".into(),
            author: "alice".into(),
        }]
    }

    fn publishing<'a>() -> Facts<'a> {
        Facts {
            new_rules: 2,
            drafted_commit: "new",
            ..Facts::default()
        }
    }

    #[test]
    fn a_draft_without_new_rules_proposes_nothing() {
        let facts = Facts {
            new_rules: 0,
            open: Some(OpenProposal {
                number: 3,
                body_changed: true,
            }),
            ..publishing()
        };
        assert_eq!(plan(&facts), Plan::Nothing);
    }

    #[test]
    fn a_first_draft_pushes_opens_and_checks() {
        assert_eq!(
            plan(&publishing()),
            Plan::Publish {
                push: true,
                proposal: ProposalStep::Open,
                check_run: true
            }
        );
    }

    #[test]
    fn a_person_on_the_branch_gets_a_comment_once_and_is_never_pushed_over() {
        let foreign = alice();
        let open = Some(OpenProposal {
            number: 7,
            body_changed: true,
        });
        let facts = Facts {
            foreign_commits: &foreign,
            open,
            ..publishing()
        };
        assert_eq!(plan(&facts), Plan::CommentEvidence { number: 7 });
        let commented = Facts {
            evidence_commented: true,
            ..facts.clone()
        };
        assert_eq!(plan(&commented), Plan::AlreadyCommented { number: 7 });
        let orphan = Facts { open: None, ..facts };
        assert_eq!(
            plan(&orphan),
            Plan::LeaveBranchAlone {
                author: "alice".into()
            }
        );
    }

    #[test]
    fn an_identical_draft_is_not_pushed_again_nor_checked_twice() {
        let facts = Facts {
            branch_holds_draft: true,
            branch_tip: Some("tip"),
            checked_head: Some("tip"),
            open: Some(OpenProposal {
                number: 4,
                body_changed: false,
            }),
            ..publishing()
        };
        assert_eq!(
            plan(&facts),
            Plan::Publish {
                push: false,
                proposal: ProposalStep::Keep { number: 4 },
                check_run: false
            }
        );
    }

    #[test]
    fn new_evidence_updates_the_proposal_and_a_new_head_is_checked() {
        let facts = Facts {
            branch_tip: Some("tip"),
            checked_head: Some("tip"),
            open: Some(OpenProposal {
                number: 4,
                body_changed: true,
            }),
            ..publishing()
        };
        assert_eq!(
            plan(&facts),
            Plan::Publish {
                push: true,
                proposal: ProposalStep::Update { number: 4 },
                check_run: true
            }
        );
        // The same files on the branch, but the check run never made it (a crash): post it.
        let unchecked = Facts {
            branch_holds_draft: true,
            checked_head: None,
            ..facts
        };
        assert_eq!(
            plan(&unchecked),
            Plan::Publish {
                push: false,
                proposal: ProposalStep::Update { number: 4 },
                check_run: true
            }
        );
    }

    #[test]
    fn an_unprotected_base_is_named_in_a_caution() {
        assert!(protection_warning("main", Some(false))
            .unwrap()
            .contains("`main` does not require a code owner's review"));
        assert_eq!(protection_warning("main", Some(true)), None);
        assert_eq!(
            protection_warning("main", None),
            None,
            "the local forge has no such rule"
        );
    }
}
