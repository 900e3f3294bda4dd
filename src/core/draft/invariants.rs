//! The two checks every draft passes before it is returned. A failure is a
//! bug in drafting, reported as `DraftError::Invariant` rather than shipped:
//!
//! 1. every representable observed call is allowed by existing ∪ draft,
//!    replayed through Cedar, one request per distinct call shape against its
//!    (agent, tool) slice;
//! 2. the drafted rules pass strict validation against the extended schema.

use super::parallel::in_parallel;
use super::slice::{ShapeDecision, SliceJob};
use crate::core::policies::{Policies, Rule};
use crate::core::projection;
use crate::core::schema::{Schema, SchemaError};
use crate::core::secrets;
use crate::core::summary::{ShapeKey, ShapeStats};
use cedar_policy::PolicySet;
use serde_json::Value;
use std::collections::BTreeSet;

impl SliceJob<'_> {
    /// Invariant 1: existing ∪ draft allows every gap shape, replayed through Cedar.
    pub(super) fn replay_gap(
        &self,
        gap: &[(&ShapeKey, &ShapeStats)],
        with_draft: &PolicySet,
        draft_reads: Option<&[Vec<String>]>,
    ) -> Vec<String> {
        let gap_keys: Vec<&ShapeKey> = gap.iter().map(|(k, _)| *k).collect();
        let mut problems = Vec::new();
        for members in projection::group(self.slice, &gap_keys, draft_reads) {
            let key = gap_keys[members[0]];
            if !matches!(self.decide_shape(key, with_draft), Ok(ShapeDecision::Allowed(_))) {
                let args = Value::Object(self.slice.representatives(key).remove(0));
                problems.push(format!(
                    "replay: {} calling {} with {} is still denied",
                    self.agent,
                    self.tool,
                    secrets::redact(&args.to_string())
                ));
            }
        }
        problems
    }
}

/// What strict validation found, split by whose rules it is about.
pub(super) struct Validation {
    /// Errors in drafted rules: invariant failures.
    pub(super) failures: Vec<String>,
    /// Errors in rules already in the repository: shown in the evidence.
    pub(super) existing_problems: Vec<String>,
}

/// Invariant 2: the drafted rules pass strict validation. `policies` holds
/// the existing rules and the drafted ones, whose ids are `new_ids`.
pub(super) fn validate(
    schema: &Schema,
    policies: &Policies,
    new_ids: &BTreeSet<String>,
) -> Result<Validation, SchemaError> {
    let validator = cedar_policy::Validator::new(schema.to_cedar()?);
    // Each policy validates on its own, so chunks validate in parallel.
    let chunks: Vec<&[Rule]> = policies.rules.chunks(256).collect();
    let errors = in_parallel(&chunks, |rules| {
        let mut set = PolicySet::new();
        for rule in *rules {
            set.add(rule.policy.clone()).expect("ids are unique");
        }
        let result = validator.validate(&set, cedar_policy::ValidationMode::Strict);
        result
            .validation_errors()
            .map(|e| (e.policy_id().to_string(), e.to_string()))
            .collect::<Vec<_>>()
    });
    let mut found = Validation {
        failures: Vec::new(),
        existing_problems: Vec::new(),
    };
    for (id, error) in errors.into_iter().flatten() {
        if new_ids.contains(&id) {
            found.failures.push(format!("validation: {error}"));
        } else {
            found.existing_problems.push(error);
        }
    }
    Ok(found)
}
