//! Rejection memory in the core: a rule reviewers turned down is not proposed
//! again for the same evidence, and is once the evidence has grown enough.

mod common;

use serde_json::json;
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft_remembering, Draft, DraftInput, Rejection, Rejections};
use shadowdraft::core::policies::{fingerprint, Owner, Policies, RepoFiles};
use shadowdraft::core::summary::Summary;

fn summary(count: u64) -> Summary {
    let mut s = Summary::default();
    for i in 0..3 {
        let mut call = common::call(&json!({
            "agent": "bot", "tool": "send_email", "server": "gmail",
            "args": {"to": format!("u{i}@adatum.com"), "subject": "s"}
        }));
        call.count = count;
        s.add(&call, None);
    }
    s.add(
        &common::call(&json!({"agent": "bot", "tool": "search", "args": {"q": "x"}})),
        None,
    );
    s
}

fn run(summary: &Summary, rejected: &Rejections) -> Draft {
    draft_remembering(
        &DraftInput {
            files: &RepoFiles::default(),
            summary,
            catalogue: None,
            config: &DraftingConfig::default(),
        },
        rejected,
    )
    .unwrap()
}

/// The generated rules a draft adds, as (id, fingerprint).
fn rules(draft: &Draft) -> Vec<(String, String)> {
    let mut files = RepoFiles::default();
    for (path, change) in &draft.changes {
        if path.ends_with(".cedar") {
            files.agents.insert(path.clone(), change.after.clone());
        }
    }
    Policies::load(&files)
        .unwrap()
        .rules
        .iter()
        .filter(|r| r.owner == Owner::Bot)
        .map(|r| (r.id.to_string(), fingerprint(&r.policy)))
        .collect()
}

#[test]
fn a_rejected_rule_returns_only_with_new_evidence() {
    let first = run(&summary(1), &Rejections::new());
    let drafted = rules(&first);
    let (email_id, email_fp) = drafted
        .iter()
        .find(|(id, _)| id.contains("send_email"))
        .unwrap()
        .clone();
    let rejected = Rejections::from([(
        email_fp.clone(),
        Rejection {
            calls: 3,
            reason: "closed without merging in #1".into(),
            permanent: false,
        },
    )]);

    // The same evidence: the e-mail rule stays out, the other rule is still proposed.
    let again = run(&summary(1), &rejected);
    let ids: Vec<String> = rules(&again).into_iter().map(|(id, _)| id).collect();
    assert!(!ids.contains(&email_id), "{ids:?}");
    assert!(ids.iter().any(|id| id.contains("search")), "{ids:?}");
    let agent = &again.evidence.agents[0];
    assert_eq!(agent.withheld.len(), 1);
    assert_eq!(agent.withheld[0].calls, 3);
    assert!(agent.withheld[0].reason.contains("#1"));
    assert_eq!(again.evidence.totals.drafted, 1);
    assert!(shadowdraft::render::evidence(&again.evidence).contains("Not proposed again"));

    // Twice the calls (the default factor) bring it back.
    let grown = run(&summary(2), &rejected);
    assert!(rules(&grown).iter().any(|(_, fp)| *fp == email_fp));

    // An `ignore` is permanent.
    let ignored = Rejections::from([(
        email_fp.clone(),
        Rejection {
            permanent: true,
            ..rejected[&email_fp].clone()
        },
    )]);
    assert!(!rules(&run(&summary(50), &ignored))
        .iter()
        .any(|(_, fp)| *fp == email_fp));
}

#[test]
fn generated_rules_no_call_used_are_removal_candidates() {
    let drafted = run(&summary(1), &Rejections::new());
    let mut files = RepoFiles::default();
    for (path, change) in &drafted.changes {
        if path.ends_with(".cedar") {
            files.agents.insert(path.clone(), change.after.clone());
        } else {
            files.schema = Some(change.after.clone());
        }
    }
    // Later, the agent only searches.
    let mut later = Summary::default();
    later.add(
        &common::call(&json!({"agent": "bot", "tool": "search", "args": {"q": "y"}})),
        None,
    );
    let unused = shadowdraft::core::check::unused_generated(&files, &later, "bot");
    assert_eq!(unused.len(), 1, "{unused:?}");
    assert!(unused[0].contains("send_email"), "{unused:?}");
    assert!(shadowdraft::core::check::unused_generated(&files, &summary(1), "bot").is_empty());
}
