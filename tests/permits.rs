//! The bot end to end, with the real solver: every proposal says what it
//! newly permits ("What this PR newly permits"), proved, with example calls;
//! the check run carries `check --against main`; a reviewer's edit on the
//! branch is diffed against the drafted rule; a query out of time says so and
//! does not block the draft.

mod common;

use common::external;
use common::rig::*;
use serde_json::json;
use std::time::Duration;

fn branch() -> String {
    format!("shadowdraft/{AGENT}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_shows_what_it_newly_permits_and_an_edit_shows_what_it_removes() {
    external::cvc5();
    let rig = Rig::new();
    let bot = rig.bot().await;
    assert_eq!(bot.observe(emails(3)).await.status, 202);
    bot.idle().await;

    let pr = rig.github.pull(1).expect("a pull request");
    let body = &pr.body;
    assert!(body.contains("### What this PR newly permits"), "{body}");
    assert!(
        body.contains("Nothing beyond the observed calls' generalisation"),
        "{body}"
    );
    assert!(body.contains("(cvc5 1."), "the solver is named: {body}");
    let rule = format!("`{AGENT}/send_email/1` · `{AGENT} calling send_email on gmail` · drafted:");
    assert!(body.contains(&rule), "{body}");
    assert!(
        body.contains("new: `main` allows none of the calls it allows (`when has body && "),
        "{body}"
    );
    assert!(
        body.contains(&format!("  - e.g. `{AGENT}` calls `send_email` on `gmail` with ")),
        "{body}"
    );
    let section = body.split("### What this PR newly permits").nth(1).unwrap();
    let section = section.split("<details>").next().unwrap();
    assert_eq!(
        section.matches("  - e.g. ").count(),
        2,
        "two example calls: {section}"
    );
    for line in section.lines().filter(|l| l.starts_with("  - e.g. ")) {
        assert!(
            line.contains("`to = \"") && line.contains("adatum.com"),
            "the drafted domain: {line}"
        );
    }
    let runs = rig.github.check_runs();
    let verify = runs
        .iter()
        .find(|r| r.name == "shadowdraft/verify")
        .expect("a check run");
    assert_eq!(verify.conclusion.as_deref(), Some("success"));
    let summary = verify.summary.as_deref().unwrap_or("");
    assert!(summary.contains("`check --against main`: passed"), "{summary}");

    // A reviewer tightens the drafted rule on the branch: only `user0@` may be written to.
    let file = format!("policies/agents/{AGENT}.cedar");
    rig.edit_on(
        &branch(),
        &file,
        |text| {
            let pattern = text
                .lines()
                .find(|l| l.contains("context.input.to like"))
                .expect("the drafted rule matches the recipient's domain")
                .to_string();
            let exact = format!("{}context.input.to == \"user0@adatum.com\" &&", " ".repeat(2));
            text.replacen(&pattern, &exact, 1)
        },
        "Only user0",
    );
    let ticket = json!([{"agent": AGENT, "tool": "create_ticket", "server": "zendesk",
                         "args": {"title": "Printer on fire", "priority": 2}}]);
    assert_eq!(bot.observe(ticket).await.status, 202);
    bot.idle().await;
    let comments = rig.replies(1);
    assert_eq!(comments.len(), 1, "{comments:?}");
    let comment = &comments[0];
    assert!(comment.contains("### What this PR newly permits"), "{comment}");
    assert!(comment.contains("drafted, then edited by a person"), "{comment}");
    assert!(
        comment.contains(&format!("`{AGENT}/send_email/1` was edited on this branch: this edit removes calls the drafted rule allowed")),
        "{comment}"
    );
    let removed: Vec<&str> = comment
        .lines()
        .filter(|l| l.starts_with("  - this edit removes, e.g. "))
        .collect();
    assert!(!removed.is_empty(), "{comment}");
    for line in removed {
        assert!(
            !line.contains("user0@adatum.com"),
            "user0 is still allowed: {line}"
        );
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_out_of_time_says_so_and_the_draft_is_proposed_all_the_same() {
    let rig = Rig::new();
    let mut settings = rig.settings();
    // A solver that says who it is and then never answers a query; one second per query.
    let stuck = r#"while read line; do case "$line" in
        *":name"*) echo '(:name "stuck")';; *":version"*) echo '(:version "0")';; esac; done"#;
    settings.proof.solver = Some(vec!["sh".into(), "-c".into(), stuck.into()]);
    settings.proof.timeout = Duration::from_secs(1);
    let bot = rig.bot_with(settings).await;
    assert_eq!(bot.observe(emails(3)).await.status, 202);
    bot.idle().await;
    let body = rig.github.pull(1).expect("the draft is proposed").body;
    assert!(body.contains("### What this PR newly permits"), "{body}");
    assert!(
        body.contains("⏱ Not decided within 1 s per query (the draft is not blocked"),
        "{body}"
    );
    assert!(body.contains(&format!("- rule {AGENT}/send_email/1\n")), "{body}");
    assert!(
        body.contains("drafted:\n  not decided within 1 s per query."),
        "{body}"
    );
    assert!(!body.contains("Nothing beyond"), "nothing was proved: {body}");
    let verify = rig
        .github
        .check_runs()
        .into_iter()
        .find(|r| r.name == "shadowdraft/verify")
        .unwrap();
    assert_eq!(
        verify.conclusion.as_deref(),
        Some("success"),
        "an undecided proof does not block"
    );
    assert!(verify
        .summary
        .unwrap_or_default()
        .contains("not decided within 1 s per query"));
    bot.stop().await;
}
