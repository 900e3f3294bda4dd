//! The `drafting:` section of `shadowdraft.yaml`: presets and their thresholds.
//!
//! Defaults were chosen on the synthetic fleet (`shadowdraft fleet`, see the
//! README's "Choosing thresholds"): `balanced` keeps almost every held-out
//! legitimate call allowed while denying almost every attack.

use super::risk::Effect;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How far arguments may generalise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Exact values wherever the sample allows; ranges without headroom.
    Tight,
    /// Enums listed, identifiers and non-destinations by pattern, numbers with headroom.
    #[default]
    Balanced,
    /// Patterns everywhere they exist, wide numeric headroom.
    Loose,
}

/// Kinds of value a destination may generalise to a pattern on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    Url,
    Email,
    Path,
    Identifier,
    Date,
}

impl PatternKind {
    pub fn label(self) -> &'static str {
        match self {
            PatternKind::Url => "URL-prefix",
            PatternKind::Email => "email-domain",
            PatternKind::Path => "directory",
            PatternKind::Identifier => "identifier-prefix",
            PatternKind::Date => "date",
        }
    }
}

/// The numbers behind a preset; any may be overridden in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Most distinct values an ordinary argument may list.
    pub max_literals: usize,
    /// Calls per distinct value that make an argument enum-like (listed even
    /// when a pattern exists). 0 lists whenever `max_literals` allows.
    pub min_repeats: f64,
    /// Most distinct values a destination of a side-effecting tool may list.
    pub destination_max_literals: usize,
    /// Value kinds on which destinations may climb to a structural pattern.
    pub destination_patterns: Vec<PatternKind>,
    /// Most distinct patterns per argument before it climbs further.
    pub max_patterns: usize,
    /// Directories kept in URL and path patterns; 3 or more also keeps dates to the month (else the year).
    pub path_depth: usize,
    /// Upper bounds grow by this factor, then round up to 1-2-5 steps; 0 keeps the maximum seen.
    pub numeric_headroom: f64,
    /// Lower bounds of non-negative ranges drop to 0.
    pub floor_at_zero: bool,
    /// Most rules per (agent, tool) before argument combinations are merged.
    pub max_clusters: usize,
    /// An argument bound to the session keeps the condition its values alone
    /// would have had (`tight`); otherwise the binding replaces it.
    pub bound_keeps_values: bool,
}

impl Preset {
    pub fn thresholds(self) -> Thresholds {
        use PatternKind::*;
        match self {
            Preset::Tight => Thresholds {
                max_literals: 32,
                min_repeats: 0.0,
                destination_max_literals: 32,
                destination_patterns: vec![],
                max_patterns: 4,
                path_depth: 3,
                numeric_headroom: 0.0,
                floor_at_zero: false,
                max_clusters: 4,
                bound_keeps_values: true,
            },
            Preset::Balanced => Thresholds {
                max_literals: 24,
                min_repeats: 3.0,
                destination_max_literals: 24,
                destination_patterns: vec![Url, Email, Path, Date],
                max_patterns: 8,
                path_depth: 2,
                numeric_headroom: 0.5,
                floor_at_zero: true,
                max_clusters: 3,
                bound_keeps_values: false,
            },
            Preset::Loose => Thresholds {
                max_literals: 12,
                min_repeats: 5.0,
                destination_max_literals: 12,
                destination_patterns: vec![Url, Email, Path, Identifier, Date],
                max_patterns: 16,
                path_depth: 1,
                numeric_headroom: 4.0,
                floor_at_zero: true,
                max_clusters: 2,
                bound_keeps_values: false,
            },
        }
    }
}

/// Per-tool settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSettings {
    /// Overrides the risk read from the catalogue or the tool's name.
    pub risk: Effect,
}

/// The `drafting:` configuration section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DraftingConfig {
    /// Observations older than this are not drafted from (service only).
    pub window_days: u32,
    /// Quiet time before a changed agent is redrafted (service only).
    pub debounce_seconds: u64,
    pub preset: Preset,
    /// Overrides of single thresholds on top of the preset.
    pub thresholds: Option<serde_yaml::Value>,
    /// Risk overrides by tool name.
    pub tools: BTreeMap<String, ToolSettings>,
    /// Days without a matching call after which a generated rule on `main` is
    /// proposed for removal (service only).
    pub unused_after: u32,
    /// Removed: a turned-down rule used to be proposed again once its calls
    /// reached this multiple. A closed proposal now means "not this rule", so
    /// the key is refused with an error that says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repropose_factor: Option<serde_yaml::Value>,
}

/// Why `drafting.repropose_factor` is refused.
pub const REPROPOSE_FACTOR_REMOVED: &str = "drafting.repropose_factor: this key was removed: a rule \
     reviewers turned down is no longer proposed again when its calls grow, only as a different rule \
     (new values or shape) or after `/shadowdraft redraft`; delete the key";

impl Default for DraftingConfig {
    fn default() -> Self {
        DraftingConfig {
            window_days: 14,
            debounce_seconds: 30,
            preset: Preset::Balanced,
            thresholds: None,
            tools: BTreeMap::new(),
            unused_after: 30,
            repropose_factor: None,
        }
    }
}

impl DraftingConfig {
    /// The preset's thresholds with the configured overrides applied, or why
    /// the section is invalid.
    pub fn thresholds(&self) -> Result<Thresholds, String> {
        if self.repropose_factor.is_some() {
            return Err(REPROPOSE_FACTOR_REMOVED.into());
        }
        let t = self.merged_thresholds()?;
        let cap = super::summary::EXACT_VALUES;
        for (key, value) in [
            ("max_literals", t.max_literals),
            ("destination_max_literals", t.destination_max_literals),
        ] {
            if value > cap {
                return Err(format!(
                    "drafting.thresholds.{key}: at most {cap} (exact values kept per argument)"
                ));
            }
        }
        if t.max_patterns == 0 || t.max_clusters == 0 {
            return Err("drafting.thresholds: max_patterns and max_clusters must be at least 1".into());
        }
        if !(t.numeric_headroom >= 0.0 && t.min_repeats >= 0.0) {
            return Err("drafting.thresholds: numeric_headroom and min_repeats must not be negative".into());
        }
        Ok(t)
    }

    fn merged_thresholds(&self) -> Result<Thresholds, String> {
        let base = self.preset.thresholds();
        let Some(overrides) = &self.thresholds else {
            return Ok(base);
        };
        let mut merged = serde_yaml::to_value(&base).map_err(|e| e.to_string())?;
        let (Some(target), Some(source)) = (merged.as_mapping_mut(), overrides.as_mapping()) else {
            return Err("drafting.thresholds: expected a mapping".into());
        };
        for (k, v) in source {
            if !target.contains_key(k) {
                return Err(format!(
                    "drafting.thresholds: unknown key `{}`",
                    k.as_str().unwrap_or("?")
                ));
            }
            target.insert(k.clone(), v.clone());
        }
        serde_yaml::from_value(merged).map_err(|e| format!("drafting.thresholds: {e}"))
    }

    pub fn risk_override(&self, tool: &str) -> Option<Effect> {
        self.tools.get(tool).map(|t| t.risk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_on_top_of_the_preset() {
        let c: DraftingConfig = serde_yaml::from_str(
            "preset: tight\nthresholds: {max_literals: 5}\ntools: {x: {risk: read_only}}",
        )
        .unwrap();
        let t = c.thresholds().unwrap();
        assert_eq!(t.max_literals, 5);
        assert_eq!(t.numeric_headroom, 0.0);
        assert_eq!(c.risk_override("x"), Some(Effect::ReadOnly));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = serde_yaml::from_str::<DraftingConfig>("presets: tight").unwrap_err();
        assert!(e.to_string().contains("presets"), "{e}");
        let c: DraftingConfig = serde_yaml::from_str("thresholds: {max_literal: 5}").unwrap();
        assert!(c.thresholds().unwrap_err().contains("max_literal"));
        let c: DraftingConfig = serde_yaml::from_str("thresholds: {max_literals: 500}").unwrap();
        assert!(c.thresholds().unwrap_err().contains("at most 32"));
    }

    #[test]
    fn the_removed_repropose_factor_is_refused_with_its_reason() {
        let c: DraftingConfig = serde_yaml::from_str("repropose_factor: 2").unwrap();
        let e = c.thresholds().unwrap_err();
        assert!(e.starts_with("drafting.repropose_factor"), "{e}");
        assert!(e.contains("/shadowdraft redraft"), "{e}");
    }
}
