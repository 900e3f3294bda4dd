//! The files of a new policy repository (DESIGN §3): the schema, the agents
//! directory, CODEOWNERS from the `review:` configuration, the workflow that
//! runs `shadowdraft check` on every pull request, and a reviewer's guide.
//! Used by `shadowdraft init` and for the embedded default's repository.

use crate::config::ReviewConfig;
use crate::core::policies::{agent_file, SCHEMA_PATH};
use crate::render;
use serde_json::json;

/// Where the workflow installs shadowdraft from.
pub const SOURCE: &str = "https://github.com/shadowdraft/shadowdraft";

/// `(path, text)` of every file. CODEOWNERS needs `review.security_team`;
/// without one it is left out and the result says so.
pub fn files(review: &ReviewConfig, base: &str) -> (Vec<(String, String)>, Option<String>) {
    let team = review.security_team.clone();
    let shown_team = team.clone().unwrap_or_else(|| "the security team".into());
    let mut out = vec![
        (
            SCHEMA_PATH.to_string(),
            "entity Agent;\n\nentity McpServer;\n".to_string(),
        ),
        // git keeps no empty directories.
        ("policies/agents/.gitkeep".to_string(), String::new()),
        (
            ".github/workflows/policy-check.yml".to_string(),
            render::template(
                "init/policy-check.yml.j2",
                json!({"base": base, "version": env!("CARGO_PKG_VERSION"), "source": SOURCE}),
            ),
        ),
        (
            "REVIEWING.md".to_string(),
            render::template(
                "init/REVIEWING.md.j2",
                json!({"base": base, "security_team": shown_team}),
            ),
        ),
    ];
    let missing = match team {
        Some(team) => {
            let agents: Vec<_> = review
                .agents
                .iter()
                .map(|(agent, r)| {
                    let file = agent_file(agent);
                    json!({"file": file.rsplit('/').next().unwrap_or(&file), "owners": r.owners})
                })
                .collect();
            let text = render::template(
                "init/CODEOWNERS.j2",
                json!({"security_team": team, "agents": agents}),
            );
            out.push((".github/CODEOWNERS".to_string(), text));
            None
        }
        None => Some("review.security_team is not set: no .github/CODEOWNERS was written".to_string()),
    };
    (out, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentReview;

    #[test]
    fn codeowners_give_every_agent_file_its_owners_and_the_security_team() {
        let review = ReviewConfig {
            security_team: Some("@acme/security".into()),
            agents: [(
                "billing-bot".to_string(),
                AgentReview {
                    owners: vec!["@acme/payments".into()],
                    ..AgentReview::default()
                },
            )]
            .into(),
            ..ReviewConfig::default()
        };
        let (files, missing) = files(&review, "main");
        assert!(missing.is_none());
        let owners = &files.iter().find(|(p, _)| p == ".github/CODEOWNERS").unwrap().1;
        assert!(owners.contains("\n/policies/ @acme/security\n"), "{owners}");
        assert!(
            owners.contains("\n/policies/agents/billing-bot.cedar @acme/payments @acme/security\n"),
            "{owners}"
        );
        let workflow = &files
            .iter()
            .find(|(p, _)| p.ends_with("policy-check.yml"))
            .unwrap()
            .1;
        assert!(workflow.contains("run: shadowdraft check ."));
        assert!(workflow.contains("run: shadowdraft check . --against origin/${{ github.base_ref }}"));
        let (without, missing) = super::files(&ReviewConfig::default(), "main");
        assert!(missing.unwrap().contains("review.security_team"));
        assert!(without.iter().all(|(p, _)| p != ".github/CODEOWNERS"));
    }
}
