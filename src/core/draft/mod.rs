//! Drafting: observations + the policy repository → the rules that close the
//! gap, the files that change, and the evidence for each rule.
//!
//! Invariants checked on every draft, before anything is returned:
//! every representable observed call is allowed by existing ∪ draft (replayed
//! through Cedar, one request per distinct call shape against its (agent, tool)
//! slice), and the drafted rules pass strict validation.
//!
//! One draft goes: extend the schema (`schema_extension`), draft each
//! (agent, tool) slice in parallel (`slice`: find the gap, `cluster` it,
//! build each `rule`, worded by `condition`), add the outcomes up (`gather`),
//! setting aside rules reviewers turned down (`rejections`), write the files
//! (`files`), and check the `invariants`.

mod cluster;
mod condition;
mod files;
mod gather;
mod invariants;
mod parallel;
mod rejections;
mod rule;
mod schema_extension;
mod slice;

use super::catalogue::Catalogue;
use super::config::DraftingConfig;
use super::evidence::Evidence;
use super::policies::{Policies, RepoError, RepoFiles, SCHEMA_PATH};
use super::schema::{Schema, SchemaError};
use super::summary::Summary;
use files::{schema_change, write_new_rules};
use gather::Gathered;
use invariants::validate;
use parallel::in_parallel;
use schema_extension::extend_schema;
use slice::{draft_slice, Drafting};
use std::collections::BTreeMap;

/// What a draft is made from.
pub struct DraftInput<'a> {
    pub files: &'a RepoFiles,
    pub summary: &'a Summary,
    pub catalogue: Option<&'a Catalogue>,
    pub config: &'a DraftingConfig,
}

/// A file the draft changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub before: Option<String>,
    pub after: String,
}

/// Rules reviewers turned down, by content fingerprint (annotations and layout ignored).
pub type Rejections = BTreeMap<String, Rejection>;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// Calls behind the rule when it was turned down (shown, not compared).
    pub calls: u64,
    /// Shown in the evidence, e.g. "closed without merging in #12".
    pub reason: String,
    /// Turned down by an `ignore` command rather than a review. Either way the
    /// rule is not proposed again until a `/shadowdraft redraft`.
    pub permanent: bool,
}

/// The result of drafting.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Changed files by repository-relative path.
    pub changes: BTreeMap<String, FileChange>,
    pub evidence: Evidence,
    /// Ids of the new rules, in file order.
    pub new_rules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("invalid drafting configuration: {0}")]
    Config(String),
    #[error("{SCHEMA_PATH}: {0}")]
    Schema(#[from] SchemaError),
    #[error("the policy repository does not parse:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Repo(Vec<RepoError>),
    /// A drafting invariant failed: a bug, reported rather than shipped.
    #[error("draft rejected by its own checks:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invariant(Vec<String>),
}

/// Draft the rules that would allow every observed call the repository does not allow yet.
pub fn draft(input: &DraftInput<'_>) -> Result<Draft, DraftError> {
    draft_remembering(input, &Rejections::new())
}

/// Draft, leaving out rules reviewers turned down (by fingerprint).
pub fn draft_remembering(input: &DraftInput<'_>, rejected: &Rejections) -> Result<Draft, DraftError> {
    let thresholds = input.config.thresholds().map_err(DraftError::Config)?;
    let mut schema = Schema::parse(input.files.schema.as_deref().unwrap_or(""))?;
    let mut policies = Policies::load(input.files).map_err(DraftError::Repo)?;
    let type_conflicts = extend_schema(&mut schema, input.summary, input.catalogue);

    let slices = input.summary.slices();
    let cx = Drafting {
        input,
        schema: &schema,
        policies: &policies,
        thresholds: &thresholds,
    };
    let outcomes = in_parallel(&slices, |(agent, tool, slice)| {
        draft_slice(&cx, agent, tool, slice)
    });
    let mut gathered = Gathered::from_slices(input.summary, &slices, outcomes, rejected);

    let (mut changes, new_ids) = write_new_rules(
        input.files,
        &mut policies,
        &gathered.new_rules,
        &mut gathered.agents,
    )?;
    let validation = validate(&schema, &policies, &new_ids)?;
    gathered.problems.extend(validation.failures);
    if !gathered.problems.is_empty() {
        return Err(DraftError::Invariant(gathered.problems));
    }

    if let Some(change) = schema_change(input.files, &schema)? {
        changes.insert(SCHEMA_PATH.to_string(), change);
    }
    gathered.mark_removal_candidates(&policies, &new_ids);
    let evidence = Evidence {
        preset: format!("{:?}", input.config.preset).to_lowercase(),
        type_conflicts,
        existing_problems: validation.existing_problems,
        ..Evidence::default()
    };
    Ok(gathered.into_draft(evidence, changes, input.catalogue))
}
