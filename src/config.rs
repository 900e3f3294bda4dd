//! `shadowdraft.yaml` (DESIGN §8). Every key is optional; unknown keys are errors
//! that name the key. Sections the service reads are kept as YAML until the
//! service that reads them types them.

use crate::core::config::DraftingConfig;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub policy_repo: Option<serde_yaml::Value>,
    pub forge: Option<serde_yaml::Value>,
    pub ingest: Option<serde_yaml::Value>,
    pub review: Option<serde_yaml::Value>,
    #[serde(default)]
    pub drafting: DraftingConfig,
    pub enforce: Option<serde_yaml::Value>,
}
