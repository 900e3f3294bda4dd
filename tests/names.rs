//! Every agent id the bot accepts has one name it can serve: a valid git
//! branch and file name, different for different ids (property tests over
//! arbitrary Unicode ids), and the bot proposes for agents with hostile names.

mod common;

use common::rig::*;
use proptest::prelude::*;
use serde_json::json;
use shadowdraft::core::names::{agent_of, safe_name, MAX_NAME};
use shadowdraft::git::{agent_of_branch, branch_for};

/// What ingest accepts as an agent id: 1 to 256 bytes without control characters.
fn agent_id() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,64}".prop_filter("at most 256 bytes", |s| s.len() <= 256)
}

fn long_agent_id() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{60,256}".prop_filter("at most 256 bytes", |s| s.len() <= 256)
}

fn servable(agent: &str) {
    let name = safe_name(agent);
    let branch = branch_for(agent);
    assert!(
        git2::Reference::is_valid_name(&format!("refs/heads/{branch}")),
        "{agent:?} → {branch}"
    );
    assert!(git2::Reference::is_valid_name(&format!(
        "refs/remotes/origin/{branch}"
    )));
    assert!(
        !name.contains('/'),
        "one path component, never a folder of another agent's"
    );
    assert!(name.len() <= MAX_NAME && format!("{name}.cedar").len() < 255);
    assert!(name != "." && name != ".." && !name.starts_with('.'));
    match agent_of(&name) {
        Some(back) => assert_eq!(back, agent, "names read back to their agent"),
        None => assert!(name.contains('+'), "only shortened names cannot be read back"),
    }
    if name.len() < MAX_NAME - 33 {
        assert_eq!(agent_of_branch(&branch).as_deref(), Some(agent));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_accepted_id_has_a_valid_branch_and_file_name(agent in agent_id()) {
        servable(&agent);
    }

    #[test]
    fn long_ids_are_servable_too(agent in long_agent_id()) {
        servable(&agent);
    }

    #[test]
    fn different_ids_have_different_names(a in agent_id(), b in agent_id()) {
        prop_assume!(a != b);
        prop_assert_ne!(safe_name(&a), safe_name(&b));
    }

    #[test]
    fn different_long_ids_have_different_names(a in long_agent_id(), b in long_agent_id()) {
        prop_assume!(a != b);
        prop_assert_ne!(safe_name(&a), safe_name(&b));
    }
}

#[test]
fn the_names_that_broke_git_are_servable() {
    let hostile = [
        "a b",
        "foo~1",
        "a:b",
        "a..b",
        ".hidden",
        "ends.",
        "x/",
        "a.lock",
        "@{u}",
        "[x]",
        "a*b",
        "a?b",
        "back\\slash",
        ".",
        "..",
        "a//b",
        "a/b",
        "victim",
        "victim/x",
        "-leading-dash",
    ];
    for agent in hostile {
        servable(agent);
    }
    servable(&"x".repeat(256));
    servable(&"é".repeat(128));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_hostile_names_each_get_their_proposal() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let agents = [
        "a b",
        "victim/x",
        "victim",
        "a.lock",
        "@{u}",
        "..",
        &"y".repeat(256),
    ];
    for agent in agents {
        let calls = json!([{"agent": agent, "tool": "send_email", "server": "gmail",
                            "args": {"to": "ops@adatum.com", "subject": "hi"}}]);
        assert_eq!(bot.observe(calls).await.status, 202);
    }
    bot.idle().await;
    assert_eq!(
        rig.open_pulls(),
        agents.len(),
        "one proposal per agent, none blocked by another"
    );
    for agent in agents {
        let status = bot.agent(&urlencode(agent)).await;
        assert!(status["job"].is_null(), "{agent:?}: {status}");
        assert!(status["proposal"].is_object(), "{agent:?}: {status}");
        let file = shadowdraft::core::policies::agent_file(agent);
        assert!(
            rig.files_at(&branch_for(agent)).agents.contains_key(&file),
            "{agent:?}"
        );
    }
    bot.stop().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
