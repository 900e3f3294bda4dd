//! How a draft lands in the repository: each agent's new rules appended to
//! its policy file (a new file gets a header saying which rules the bot
//! owns), and the schema file when drafting extended it.

use super::parallel::in_parallel;
use super::rule::BuiltRule;
use super::{DraftError, FileChange};
use crate::core::evidence::AgentEvidence;
use crate::core::layout;
use crate::core::policies::{self, Policies, RepoFiles};
use crate::core::schema::{Schema, SchemaError};
use crate::core::syntax::quote;
use std::collections::{BTreeMap, BTreeSet};

/// Writes each agent's new rules into its policy file. The rules are also
/// added to `policies` (for validation) and to the agent's evidence. Returns
/// the changed files and the ids of the new rules.
pub(super) fn write_new_rules(
    files: &RepoFiles,
    policies: &mut Policies,
    new_rules: &BTreeMap<String, Vec<BuiltRule>>,
    agents: &mut BTreeMap<String, AgentEvidence>,
) -> Result<(BTreeMap<String, FileChange>, BTreeSet<String>), DraftError> {
    let per_agent: Vec<(&String, &Vec<BuiltRule>)> = new_rules.iter().collect();
    let formatted = in_parallel(&per_agent, |(_, rules)| format_agent_rules(rules));
    let mut changes = BTreeMap::new();
    let mut new_ids = BTreeSet::new();
    for ((agent, rules), formatted) in per_agent.into_iter().zip(formatted) {
        let formatted = formatted.map_err(|e| DraftError::Invariant(vec![e]))?;
        let file = policies::agent_file(agent);
        for rule in rules {
            new_ids.insert(rule.evidence.id.clone());
            policies.push_generated(&file, &rule.policy);
        }
        let evidence = agents.get_mut(agent.as_str()).expect("agent seen");
        evidence.rules.extend(rules.iter().map(|r| r.evidence.clone()));
        let before = files.agents.get(&file).cloned();
        let after = with_new_rules(agent, before.as_deref(), &formatted);
        changes.insert(file, FileChange { before, after });
    }
    Ok((changes, new_ids))
}

/// One agent's new rules as the formatter lays them out (the formatter checks
/// that what it writes parses to the same policies, so fingerprints hold).
fn format_agent_rules(rules: &[BuiltRule]) -> Result<String, String> {
    let texts = rules
        .iter()
        .map(|r| match r.formatted {
            true => Ok(r.text.clone()),
            false => format_rules(&r.text).map(|t| t.trim_end().to_string()),
        })
        .collect::<Result<Vec<String>, String>>()?;
    Ok(texts.join("\n\n"))
}

fn format_rules(text: &str) -> Result<String, String> {
    let config = cedar_policy_formatter::Config {
        line_width: layout::LINE_WIDTH,
        indent_width: 2,
    };
    cedar_policy_formatter::policies_str_to_pretty(text, &config).map_err(|e| format!("formatter: {e}"))
}

/// The agent's policy file with the new rules after what it held before.
fn with_new_rules(agent: &str, before: Option<&str>, formatted: &str) -> String {
    match before {
        Some(b) if !b.trim().is_empty() => format!("{}\n\n{}\n", b.trim_end(), formatted.trim_end()),
        _ => format!(
            "// Rules for agent {}. Rules marked @generated were drafted by shadowdraft from\n\
             // observed calls; edit any rule and it becomes yours: the bot never rewrites it.\n{}\n",
            quote(agent),
            formatted.trim_end()
        ),
    }
}

/// The schema file, when the drafted schema differs from the repository's.
pub(super) fn schema_change(files: &RepoFiles, schema: &Schema) -> Result<Option<FileChange>, SchemaError> {
    let after = schema.render()?;
    if files.schema.as_deref() == Some(after.as_str()) {
        return Ok(None);
    }
    Ok(Some(FileChange {
        before: files.schema.clone(),
        after,
    }))
}
