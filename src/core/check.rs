//! `shadowdraft check` and `explain`: parse the repository, validate it
//! strictly, replay observations, and say for each denied call why.

use super::mapping;
use super::observation::Call;
use super::policies::{Owner, Policies, RepoFiles, SCHEMA_PATH};
use super::projection;
use super::replay::{authorize, explain_miss, Miss};
use super::schema::Schema;
use super::summary::Summary;
use cedar_policy::{PolicySet, Request, ValidationMode, Validator};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

/// A policy repository that parsed.
pub struct LoadedRepo {
    pub schema: Schema,
    pub policies: Policies,
}

/// Parse the schema and every agent file; all problems are returned together.
pub fn load(files: &RepoFiles) -> Result<LoadedRepo, Vec<String>> {
    let mut problems = Vec::new();
    let schema = match files.schema.as_deref() {
        None => {
            problems.push(format!("{SCHEMA_PATH}: missing"));
            None
        }
        Some(text) => Schema::parse(text)
            .map_err(|e| problems.push(format!("{SCHEMA_PATH}: {e}")))
            .ok(),
    };
    let policies = Policies::load(files)
        .map_err(|errors| problems.extend(errors.iter().map(ToString::to_string)))
        .ok();
    match (schema, policies) {
        (Some(schema), Some(policies)) if problems.is_empty() => Ok(LoadedRepo { schema, policies }),
        _ => Err(problems),
    }
}

/// An observed call the repository denies, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub agent: String,
    pub tool: String,
    pub server: String,
    pub calls: u64,
    pub args: String,
    pub why: String,
}

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<String>,
    pub validation_errors: Vec<String>,
    pub denied: Vec<Denied>,
    pub rules: usize,
    pub shapes_replayed: usize,
    pub calls_replayed: u64,
    /// Ids of the rules that allowed some replayed call.
    pub used: BTreeSet<String>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.validation_errors.is_empty() && self.denied.is_empty()
    }
}

/// Why `policies` deny this request: the closest rule of the agent for the tool
/// and the conditions of it that did not hold.
pub fn why_denied(repo: &LoadedRepo, agent: &str, tool: &str, request: &Request) -> String {
    let slice = repo.policies.slice_indices(agent, tool);
    if slice.is_empty() {
        return format!("no rule covers agent {agent:?} calling {tool:?}");
    }
    let mut best: Option<(usize, String, Vec<String>)> = None;
    for i in slice {
        let rule = &repo.policies.rules[i];
        match explain_miss(&rule.policy, request) {
            Miss::Forbidden => return format!("forbidden by {}", rule.id),
            Miss::Scope => {}
            Miss::Conditions(failing) => {
                if best.as_ref().is_none_or(|b| failing.len() < b.0) {
                    best = Some((failing.len(), rule.id.to_string(), failing));
                }
            }
        }
    }
    match best {
        Some((_, id, failing)) => format!("closest rule {id}: {} did not hold", failing.join("; ")),
        None => format!("no rule for agent {agent:?} and tool {tool:?} matches this server"),
    }
}

fn args_text(args: &Map<String, Value>) -> String {
    let text = super::secrets::redact(&Value::Object(args.clone()).to_string());
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(159).collect::<String>())
    } else {
        text
    }
}

/// Parse, validate strictly and replay the observations in `summary`.
pub fn check(files: &RepoFiles, summary: Option<&Summary>) -> CheckReport {
    let mut report = CheckReport::default();
    let repo = match load(files) {
        Ok(repo) => repo,
        Err(problems) => {
            report.problems = problems;
            return report;
        }
    };
    report.rules = repo.policies.rules.len();
    match repo.schema.to_cedar() {
        Ok(schema) => {
            let result = Validator::new(schema).validate(&repo.policies.all(), ValidationMode::Strict);
            report.validation_errors = result.validation_errors().map(|e| e.to_string()).collect();
        }
        Err(e) => report.problems.push(format!("{SCHEMA_PATH}: {e}")),
    }
    let Some(summary) = summary else {
        return report;
    };
    for (agent, tool, slice) in summary.slices() {
        let indices = repo.policies.slice_indices(agent, tool);
        let set = repo.policies.slice(agent, tool);
        let mut shapes: Vec<_> = slice.shapes.iter().collect();
        shapes.sort_by(|a, b| a.0.cmp(b.0));
        report.shapes_replayed += shapes.len();
        let keys: Vec<_> = shapes.iter().map(|(k, _)| *k).collect();
        let reads = repo.policies.reads(&indices);
        // Shapes the slice's rules cannot tell apart are decided once, as drafting does.
        for members in projection::group(slice, &keys, reads.as_deref()) {
            let calls: u64 = members.iter().map(|&i| shapes[i].1.count).sum();
            report.calls_replayed += calls;
            let key = keys[members[0]];
            let server = &slice.servers[key.server as usize];
            for (args, session) in slice.representative_calls(key) {
                let why = match mapping::request(agent, tool, server, &args, session.as_ref(), &repo.schema) {
                    Err(e) => Some(format!("cannot be represented: {e}")),
                    Ok(request) => {
                        let verdict = authorize(&set, &request);
                        if verdict.allowed {
                            report.used.extend(verdict.determining);
                            None
                        } else {
                            Some(why_denied(&repo, agent, tool, &request))
                        }
                    }
                };
                if let Some(why) = why {
                    report.denied.push(Denied {
                        agent: agent.to_string(),
                        tool: tool.to_string(),
                        server: server.clone(),
                        calls,
                        args: args_text(&args),
                        why,
                    });
                    break;
                }
            }
        }
    }
    report
}

/// Generated rules of `agent` that no call in `summary` used: candidates for removal.
pub fn unused_generated(files: &RepoFiles, summary: &Summary, agent: &str) -> Vec<String> {
    let report = check(files, Some(summary));
    let Ok(policies) = Policies::load(files) else {
        return Vec::new();
    };
    policies
        .rules
        .iter()
        .filter(|r| r.owner == Owner::Bot && r.agent.as_deref() == Some(agent))
        .map(|r| r.id.to_string())
        .filter(|id| !report.used.contains(id))
        .collect()
}

/// Decides calls against a repository, caching each (agent, tool) slice: the
/// decision path of enforcement, and of replaying held-out or attack calls.
pub struct Decider<'a> {
    repo: &'a LoadedRepo,
    slices: HashMap<(String, String), PolicySet>,
}

impl<'a> Decider<'a> {
    pub fn new(repo: &'a LoadedRepo) -> Decider<'a> {
        Decider {
            repo,
            slices: HashMap::new(),
        }
    }

    /// Allowed or not; a call that does not fit the schema is denied (fail closed).
    pub fn allowed(&mut self, call: &Call) -> bool {
        let Ok(request) = mapping::request(
            &call.agent,
            &call.tool,
            &call.server,
            &call.args,
            call.session.as_ref(),
            &self.repo.schema,
        ) else {
            return false;
        };
        let key = (call.agent.clone(), call.tool.clone());
        let repo = self.repo;
        let set = self
            .slices
            .entry(key)
            .or_insert_with(|| repo.policies.slice(&call.agent, &call.tool));
        authorize(set, &request).allowed
    }
}

/// What `explain` says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub allowed: bool,
    pub determining: Vec<String>,
    /// For each other rule of the agent on this tool: why it did not allow the call.
    pub misses: Vec<(String, String)>,
    /// Set when the call does not fit the schema (it is then denied: fail closed).
    pub unrepresentable: Option<String>,
}

/// Decide one call and explain the decision.
pub fn explain(repo: &LoadedRepo, call: &Call) -> Explanation {
    let request = match mapping::request(
        &call.agent,
        &call.tool,
        &call.server,
        &call.args,
        call.session.as_ref(),
        &repo.schema,
    ) {
        Ok(r) => r,
        Err(e) => {
            return Explanation {
                allowed: false,
                determining: vec![],
                misses: vec![],
                unrepresentable: Some(e.to_string()),
            }
        }
    };
    let verdict = authorize(&repo.policies.slice(&call.agent, &call.tool), &request);
    let mut misses = Vec::new();
    for i in repo.policies.slice_indices(&call.agent, &call.tool) {
        let rule = &repo.policies.rules[i];
        let id = rule.id.to_string();
        if verdict.determining.contains(&id) {
            continue;
        }
        let why = match explain_miss(&rule.policy, &request) {
            Miss::Scope => "its principal, action or resource does not match".to_string(),
            Miss::Forbidden => "forbid rule: matched".to_string(),
            Miss::Conditions(failing) if failing.is_empty() => "matched".to_string(),
            Miss::Conditions(failing) => format!("did not hold: {}", failing.join("; ")),
        };
        misses.push((id, why));
    }
    Explanation {
        allowed: verdict.allowed,
        determining: verdict.determining,
        misses,
        unrepresentable: None,
    }
}
