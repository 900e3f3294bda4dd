//! `shadowdraft.yaml` (DESIGN §8). Every key is optional and missing keys take
//! the embedded default. Unknown keys are errors that name the key. Secrets are
//! never written in the file: a `*_env` key names the variable that holds them.
//!
//! [`Config`] is the file as written; [`Config::settings`] checks it and reads
//! the secrets, so a bad configuration stops the service before anything starts.

use crate::core::config::DraftingConfig;
use crate::core::spans::SpanMapping;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod bot;
mod node;

pub use bot::{
    AppSettings, ForgeSettings, GitHubRetry, GithubSettings, IngestSettings, ProofSettings, Settings,
    StoreSettings,
};
pub use node::{
    check_mcp_server_name, EnforceConfig, McpConfig, McpServerConfig, McpSettings, Mode, NodeSettings,
    ReportSecret, Upstream,
};

/// The file `shadowdraft serve` and `shadowdraft enforce` read when not told otherwise.
pub const DEFAULT_FILE: &str = "shadowdraft.yaml";

/// Where both `serve` and `enforce` keep their state unless `data_dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "shadowdraft-data";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub policy_repo: PolicyRepoConfig,
    #[serde(default)]
    pub forge: ForgeConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub drafting: DraftingConfig,
    #[serde(default)]
    pub enforce: EnforceConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub proof: ProofConfig,
}

/// `http:`: how long a client may take and how many may be served at once,
/// on every listener (`serve` and `enforce`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub header_timeout_seconds: Option<u64>,
    pub body_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
}

/// [`HttpConfig`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub max_connections: usize,
}

impl HttpConfig {
    pub fn limits(&self, check: &Check<'_>) -> Result<HttpLimits, ConfigError> {
        let seconds = |key: &str, value: Option<u64>, default: u64| match value.unwrap_or(default) {
            0 => Err(check.fail(key, "must be at least 1".into())),
            s => Ok(std::time::Duration::from_secs(s)),
        };
        let max_connections = self.max_connections.unwrap_or(1024);
        if max_connections == 0 {
            return Err(check.fail("http.max_connections", "must be at least 1".into()));
        }
        Ok(HttpLimits {
            header_timeout: seconds("http.header_timeout_seconds", self.header_timeout_seconds, 10)?,
            body_timeout: seconds("http.body_timeout_seconds", self.body_timeout_seconds, 30)?,
            max_connections,
        })
    }
}

/// `proof:`: how the bot proves what a proposal newly permits (an SMT solver
/// behind Cedar's symbolic compiler).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofConfig {
    /// `false`: proposals carry no "What this PR newly permits" section.
    pub enabled: Option<bool>,
    /// The solver's command line; default `[cvc5, --lang, smt, --strings-exp]` from `PATH`.
    pub solver: Option<Vec<String>>,
    /// Per query; one that takes longer is reported as undecided in the PR.
    pub timeout_seconds: Option<u64>,
    /// All queries of one proposal together.
    pub budget_seconds: Option<u64>,
    /// Example calls per rule and direction.
    pub max_examples: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRepoConfig {
    /// A URL (`https://…`, `http://…`) or a local path. Default: a repository in `data_dir`.
    pub url: Option<String>,
    pub base_branch: Option<String>,
    pub committer: Option<Committer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Committer {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    Github,
    #[default]
    Local,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeConfig {
    pub kind: Option<ForgeKind>,
    pub api_url: Option<String>,
    pub app_id: Option<u64>,
    pub private_key_path: Option<PathBuf>,
    pub installation_id: Option<u64>,
    /// `owner/name` on GitHub; default: the last two segments of `policy_repo.url`.
    pub repository: Option<String>,
    #[serde(default)]
    pub webhook_secrets_env: Vec<String>,
    /// Labels put on every proposal.
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One process, an embedded database file under `data_dir`.
    #[default]
    Sqlite,
    /// Several replicas sharing one PostgreSQL database.
    Postgres,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub kind: Option<StoreKind>,
    /// Names the variable holding the PostgreSQL URL (`postgres://user:pass@host/db`).
    pub url_env: Option<String>,
    /// How long a replica's claim on a job or delivery lasts without a heartbeat.
    pub lease_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub audience: Option<String>,
    pub hs256_secret_env: Option<String>,
    #[serde(default)]
    pub public_key_paths: Vec<PathBuf>,
    pub max_body_bytes: Option<usize>,
    /// Tokens whose `exp` is further out than this are refused (default 31 days).
    pub max_token_lifetime_seconds: Option<u64>,
    /// How OpenTelemetry spans posted to `/v1/traces` become calls.
    #[serde(default)]
    pub otlp: SpanMapping,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Owner of `policies/**` in CODEOWNERS, e.g. `@acme/security`.
    pub security_team: Option<String>,
    pub agents: BTreeMap<String, AgentReview>,
    /// Delete a proposal's branch once it is merged or closed.
    pub delete_branches: bool,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            security_team: None,
            agents: BTreeMap::new(),
            delete_branches: true,
        }
    }
}

/// Who owns and reviews one agent's policy.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReview {
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub reviewers: Vec<String>,
    #[serde(default)]
    pub team_reviewers: Vec<String>,
}

/// A configuration the user must fix: names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: `{key}`: {message}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl Config {
    /// Parse `shadowdraft.yaml` text; an unknown or mistyped key is named by its path.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().to_string();
            ConfigError {
                file: file.to_string(),
                key: if key == "." { "(top level)".into() } else { key },
                message,
            }
        })
    }

    /// The config at `path`, else `./shadowdraft.yaml` when present, else the embedded default.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(Config, Option<PathBuf>)> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok((Config::default(), None));
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Ok((Config::parse(&path.display().to_string(), &text)?, Some(path)))
    }
}

/// Checks a configuration: errors name the file and key; secrets come from `env`.
pub struct Check<'a> {
    pub file: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Check<'_> {
    pub fn fail(&self, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            key: key.to_string(),
            message,
        }
    }

    /// The value of the environment variable `var`, which `key` names.
    pub fn secret(&self, key: &str, var: &str) -> Result<String, ConfigError> {
        (self.env)(var)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.fail(key, format!("environment variable {var} is not set")))
    }

    pub fn read(&self, key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
        std::fs::read(path).map_err(|e| self.fail(key, format!("cannot read {}: {e}", path.display())))
    }
}
