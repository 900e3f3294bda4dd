//! Rejection memory in the core: a rule reviewers turned down is not proposed
//! again, however much evidence it gathers; a different rule is.

mod common;

use serde_json::json;
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft_remembering, Draft, DraftInput, Rejection, Rejections};
use shadowdraft::core::policies::{fingerprint, Owner, Policies, RepoFiles};
use shadowdraft::core::summary::Summary;

fn summary(count: u64) -> Summary {
    summary_to(count, &[])
}

/// Three recipients at adatum.com, `count` calls each, and one call to each of `others`.
fn summary_to(count: u64, others: &[&str]) -> Summary {
    let mut s = Summary::default();
    for i in 0..3 {
        let mut call = common::call(&json!({
            "agent": "bot", "tool": "send_email", "server": "gmail",
            "args": {"to": format!("u{i}@adatum.com"), "subject": "s"}
        }));
        call.count = count;
        s.add(&call, None);
    }
    for to in others {
        s.add(
            &common::call(&json!({
                "agent": "bot", "tool": "send_email", "server": "gmail",
                "args": {"to": to, "subject": "s"}
            })),
            None,
        );
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
fn a_rejected_rule_returns_only_as_a_different_rule() {
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

    // Twice the calls of the same rule: still "not this rule".
    let grown = run(&summary(2), &rejected);
    let grown_rules = rules(&grown);
    assert!(
        !grown_rules.iter().any(|(_, fp)| *fp == email_fp),
        "{grown_rules:?}"
    );
    assert_eq!(grown.evidence.agents[0].withheld.len(), 1);
    assert_eq!(grown.evidence.agents[0].withheld[0].calls, 6);

    // So many of the same calls that the recipients look like an enum: the
    // rule lists them instead of their domain, a different (tighter) rule.
    let repeated = run(&summary(10), &rejected);
    let email_text = &repeated.changes["policies/agents/bot.cedar"].after;
    assert!(email_text.contains(r#""u0@adatum.com""#), "{email_text}");
    assert!(!rules(&repeated).iter().any(|(_, fp)| *fp == email_fp));

    // A recipient at another domain makes another rule: that is a new question.
    let different = run(&summary_to(1, &["x@contoso.com"]), &rejected);
    let different_rules = rules(&different);
    let email: Vec<_> = different_rules
        .iter()
        .filter(|(id, _)| id.contains("send_email"))
        .collect();
    assert_eq!(email.len(), 1, "{different_rules:?}");
    assert_ne!(email[0].1, email_fp);
    assert!(different.evidence.agents[0].withheld.is_empty());

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
