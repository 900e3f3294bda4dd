//! The evidence behind a draft: what a reviewer reads before approving it.
//! Plain data, serialisable for the templates in `templates/`. Every value
//! here has already been through `secrets::redact`.

use super::ladder::{Role, Rung};
use super::risk::ToolRisk;
use serde::Serialize;

/// Everything a draft is based on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    pub preset: String,
    /// RFC 3339 bounds of the observations, when they carried timestamps.
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub totals: Totals,
    pub agents: Vec<AgentEvidence>,
    /// Catalogue tools no agent called.
    pub never_observed: Vec<String>,
    /// Observed arguments whose type contradicts the schema on `main`.
    pub type_conflicts: Vec<String>,
    /// Validation problems of rules that were already in the repository.
    pub existing_problems: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub shapes: usize,
    pub agents: usize,
    pub tools: usize,
    /// Calls the policy in the repository already allows.
    pub already_allowed: u64,
    /// Calls the new rules allow.
    pub drafted: u64,
    /// Calls that cannot be represented under the schema.
    pub unrepresentable: u64,
    /// Calls a `forbid` rule in the repository denies: never drafted.
    pub forbidden: u64,
    pub new_rules: usize,
    /// Calls seen without their arguments (not in `calls`).
    pub without_args: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentEvidence {
    pub agent: String,
    pub file: String,
    pub rules: Vec<RuleEvidence>,
    /// Generated rules in the repository that no observed call used.
    pub removal_candidates: Vec<String>,
    /// Rules (or whole tools) reviewers turned down, not proposed again.
    pub withheld: Vec<Withheld>,
    pub unrepresentable: Vec<Unrepresentable>,
    pub already_allowed: u64,
    /// Calls seen without their arguments, per tool: counted, never drafted from.
    pub without_args: Vec<WithoutArgs>,
}

/// Calls of one tool whose arguments were not recorded (OpenTelemetry records
/// them only on request), so no rule can say what they may be.
#[derive(Debug, Clone, Serialize)]
pub struct WithoutArgs {
    pub tool: String,
    pub calls: u64,
}

/// A rule the evidence supports but reviewers turned down.
#[derive(Debug, Clone, Serialize)]
pub struct Withheld {
    /// The rule id it would have had, or the tool when the whole tool is ignored.
    pub what: String,
    pub calls: u64,
    pub reason: String,
}

/// Calls that stay denied: they do not fit the schema, or a `forbid` rule denies them.
#[derive(Debug, Clone, Serialize)]
pub struct Unrepresentable {
    pub tool: String,
    pub calls: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleEvidence {
    pub id: String,
    /// The content fingerprint the rule carries (how rejections recognise it).
    pub fingerprint: String,
    pub tool: String,
    pub server: String,
    pub risk: ToolRisk,
    /// `read-only`, `side-effecting` or `destructive`.
    pub effect_label: &'static str,
    pub calls: u64,
    pub shapes: usize,
    pub sources: Vec<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Calls the policy on `main` denied while shadowing.
    pub shadow_denied: u64,
    pub traces: Vec<String>,
    pub args: Vec<ArgEvidence>,
    /// Paths of arguments any value of which passes.
    pub unconstrained: Vec<String>,
    /// Arguments of the tool this rule requires to be absent.
    pub absent: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArgEvidence {
    pub path: String,
    pub role: Role,
    pub rung: Rung,
    pub rung_label: &'static str,
    /// The condition in short form (`one of 3`, `like "…"`, `0..500`).
    pub condition: String,
    pub reason: String,
    /// `12` or `≈ 3400`.
    pub distinct: String,
    pub calls: u64,
    /// `always` or `N of M calls`.
    pub presence: String,
    pub samples: Vec<String>,
    pub unconstrained: bool,
    pub secret: bool,
}
