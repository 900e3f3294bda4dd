//! The policies of a policy repository (DESIGN §3): parsed, owned, sliced.
//!
//! A rule is the bot's when it carries `@generated("shadowdraft")` and its
//! `@fingerprint` still matches its content; anything else belongs to a human
//! and is never rewritten. Policies are sliced by (agent, tool) because Cedar's
//! authorizer evaluates every policy it is given.

use super::diagnostic;
use super::tokens;
use cedar_policy::{ActionConstraint, Policy, PolicyId, PolicySet, PrincipalConstraint};
use std::collections::{BTreeMap, HashMap};

/// Directory of per-agent policy files inside the repository.
pub const AGENTS_DIR: &str = "policies/agents";
/// Path of the schema inside the repository.
pub const SCHEMA_PATH: &str = "policies/schema.cedarschema";
/// Annotation that marks a rule as drafted by shadowdraft.
pub const GENERATED_KEY: &str = "generated";
pub const GENERATED_VALUE: &str = "shadowdraft";
/// Annotation holding the content fingerprint of a drafted rule.
pub const FINGERPRINT_KEY: &str = "fingerprint";

/// The text files of a policy repository that shadowdraft reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoFiles {
    /// `policies/schema.cedarschema`, if present.
    pub schema: Option<String>,
    /// `policies/agents/*.cedar` by repository-relative path.
    pub agents: BTreeMap<String, String>,
}

/// Who owns a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Drafted by shadowdraft and unchanged since.
    Bot,
    /// Written by a person.
    Human,
    /// Drafted, then edited by a person: now theirs.
    Edited,
}

/// One rule of the repository.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: PolicyId,
    pub file: String,
    pub policy: Policy,
    pub owner: Owner,
    /// `Some(agent)` when the rule names one agent; `None` applies to all.
    pub agent: Option<String>,
    /// `Some(tools)` when the rule names its actions; `None` applies to all.
    pub tools: Option<Vec<String>>,
    /// The `context.input` paths it reads (`None`: all of them), for replay.
    pub reads: Option<Vec<Vec<String>>>,
}

/// A file that does not parse, or a rule that breaks the repository's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RepoError {
    pub file: String,
    pub message: String,
}

/// All rules, indexed for slicing.
#[derive(Debug, Default)]
pub struct Policies {
    pub rules: Vec<Rule>,
    by_agent_tool: HashMap<(String, String), Vec<usize>>,
    by_agent: HashMap<String, Vec<usize>>,
    by_tool: HashMap<String, Vec<usize>>,
    everyone: Vec<usize>,
}

/// The content fingerprint of a policy (see `tokens::fingerprint`).
pub fn fingerprint(policy: &Policy) -> String {
    tokens::fingerprint(&policy.to_string())
}

fn string_id(uid: &cedar_policy::EntityUid) -> String {
    uid.id().unescaped().to_string()
}

impl Policies {
    /// Parse every agent file. All errors are returned, each naming its file and line.
    pub fn load(files: &RepoFiles) -> Result<Policies, Vec<RepoError>> {
        let mut policies = Policies::default();
        let mut errors = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (file, text) in &files.agents {
            let set: PolicySet = match text.parse() {
                Ok(set) => set,
                Err(e) => {
                    errors.push(RepoError {
                        file: file.clone(),
                        message: diagnostic::describe(&e, text),
                    });
                    continue;
                }
            };
            if set.templates().next().is_some() {
                errors.push(RepoError {
                    file: file.clone(),
                    message: "policy templates are not supported in agent files".into(),
                });
            }
            for (index, policy) in set.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{file}#{index}"));
                if let Some(other) = seen.insert(id.clone(), file.clone()) {
                    errors.push(RepoError {
                        file: file.clone(),
                        message: format!("@id(\"{id}\") is also used in {other}"),
                    });
                    continue;
                }
                policies.push(file, PolicyId::new(&id), policy);
            }
        }
        if errors.is_empty() {
            Ok(policies)
        } else {
            Err(errors)
        }
    }

    /// Add a rule read from a file; its owner follows its annotations.
    pub fn push(&mut self, file: &str, id: PolicyId, policy: &Policy) {
        let owner = match (
            policy.annotation(GENERATED_KEY),
            policy.annotation(FINGERPRINT_KEY),
        ) {
            (Some(GENERATED_VALUE), Some(fp)) if fp == fingerprint(policy) => Owner::Bot,
            (Some(GENERATED_VALUE), _) => Owner::Edited,
            _ => Owner::Human,
        };
        self.insert(file, id, policy, owner);
    }

    /// Add a rule just drafted (its id is already set and its fingerprint fresh).
    pub fn push_generated(&mut self, file: &str, policy: &Policy) {
        self.insert(file, policy.id().clone(), policy, Owner::Bot);
    }

    fn insert(&mut self, file: &str, id: PolicyId, policy: &Policy, owner: Owner) {
        let agent = match policy.principal_constraint() {
            PrincipalConstraint::Eq(uid) if uid.type_name().to_string() == "Agent" => Some(string_id(&uid)),
            _ => None,
        };
        let tools = match policy.action_constraint() {
            ActionConstraint::Eq(uid) => Some(vec![string_id(&uid)]),
            ActionConstraint::In(uids) => Some(uids.iter().map(string_id).collect()),
            ActionConstraint::Any => None,
        };
        let index = self.rules.len();
        match (&agent, &tools) {
            (Some(a), Some(ts)) => {
                for t in ts {
                    self.by_agent_tool
                        .entry((a.clone(), t.clone()))
                        .or_default()
                        .push(index);
                }
            }
            (Some(a), None) => self.by_agent.entry(a.clone()).or_default().push(index),
            (None, Some(ts)) => {
                for t in ts {
                    self.by_tool.entry(t.clone()).or_default().push(index);
                }
            }
            (None, None) => self.everyone.push(index),
        }
        self.rules.push(Rule {
            reads: tokens::read_paths(&policy.to_string()),
            id: id.clone(),
            file: file.to_string(),
            policy: policy.new_id(id),
            owner,
            agent,
            tools,
        });
    }

    /// Indices of the rules that can apply to `agent` calling `tool`, in file order.
    pub fn slice_indices(&self, agent: &str, tool: &str) -> Vec<usize> {
        let key = (agent.to_string(), tool.to_string());
        let mut out: Vec<usize> = self
            .by_agent_tool
            .get(&key)
            .into_iter()
            .chain(self.by_agent.get(agent))
            .chain(self.by_tool.get(tool))
            .chain(std::iter::once(&self.everyone))
            .flatten()
            .copied()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The policy set for `agent` calling `tool`: every rule that could decide it.
    pub fn slice(&self, agent: &str, tool: &str) -> PolicySet {
        let mut set = PolicySet::new();
        for i in self.slice_indices(agent, tool) {
            set.add(self.rules[i].policy.clone()).expect("ids are unique");
        }
        set
    }

    /// The whole set, for strict validation.
    pub fn all(&self) -> PolicySet {
        let mut set = PolicySet::new();
        for rule in &self.rules {
            set.add(rule.policy.clone()).expect("ids are unique");
        }
        set
    }

    /// The paths the rules at `indices` read, together (`None`: all of them).
    pub fn reads(&self, indices: &[usize]) -> Option<Vec<Vec<String>>> {
        let mut all = Vec::new();
        for &i in indices {
            all.extend(self.rules[i].reads.clone()?);
        }
        all.sort();
        all.dedup();
        Some(all)
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id.to_string() == id)
    }

    /// Highest `<n>` among ids `<agent>/<tool>/<n>`, so new rules never reuse an id.
    pub fn last_number(&self, agent: &str, tool: &str) -> u32 {
        let prefix = format!("{agent}/{tool}/");
        self.rules
            .iter()
            .filter_map(|r| r.id.to_string().strip_prefix(&prefix)?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
    }
}

/// Repository-relative file of an agent's rules, named by the agent's safe
/// name ([`super::names`]), so any agent id makes a safe file name.
pub fn agent_file(agent: &str) -> String {
    format!("{AGENTS_DIR}/{}.cedar", super::names::safe_name(agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> RepoFiles {
        RepoFiles {
            schema: None,
            agents: BTreeMap::from([("policies/agents/a.cedar".to_string(), text.to_string())]),
        }
    }

    #[test]
    fn ownership_follows_the_fingerprint() {
        let body = r#"permit (principal == Agent::"a", action == Action::"t", resource);"#;
        let p: Policy = body.parse().unwrap();
        let fp = fingerprint(&p);
        let text = format!(
            "@id(\"a/t/1\")\n@generated(\"shadowdraft\")\n@fingerprint(\"{fp}\")\n{body}\n\
             @id(\"a/t/2\")\n@generated(\"shadowdraft\")\n@fingerprint(\"{fp}\")\n\
             permit (principal == Agent::\"a\", action == Action::\"t\", resource) when {{ false }};\n\
             permit (principal, action == Action::\"t\", resource);"
        );
        let ps = Policies::load(&files(&text)).unwrap();
        let owners: Vec<Owner> = ps.rules.iter().map(|r| r.owner).collect();
        assert_eq!(owners, vec![Owner::Bot, Owner::Edited, Owner::Human]);
        assert_eq!(ps.last_number("a", "t"), 2);
        assert_eq!(ps.slice_indices("a", "t"), vec![0, 1, 2]);
        assert_eq!(ps.slice_indices("b", "t"), vec![2]);
        assert_eq!(ps.slice_indices("a", "u"), Vec::<usize>::new());
    }

    #[test]
    fn parse_errors_and_duplicate_ids_name_the_file() {
        let errs = Policies::load(&files("permit (principal, action, resource) when { x };")).unwrap_err();
        assert_eq!(errs[0].file, "policies/agents/a.cedar");
        assert!(errs[0].message.contains("line 1"), "{}", errs[0].message);
        let dup = "@id(\"x\") permit (principal, action, resource);\n@id(\"x\") forbid (principal, action, resource);";
        let errs = Policies::load(&files(dup)).unwrap_err();
        assert!(errs[0].message.contains("@id(\"x\")"));
    }

    #[test]
    fn agent_files_are_safe_names() {
        assert_eq!(agent_file("billing-bot"), "policies/agents/billing-bot.cedar");
        assert_eq!(agent_file("../x/y"), "policies/agents/%2E%2E%2Fx%2Fy.cedar");
    }
}
