//! The node's settings: the `enforce:` section of `shadowdraft.yaml` (DESIGN §8), checked into
//! [`NodeSettings`]. The policy repository (`policy_repo.url`, `base_branch`)
//! and `data_dir` come from the top level of the same file.

use super::{Check, Config, ConfigError, HttpLimits, DEFAULT_DATA_DIR};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What the node does with a decision.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answer allow, record the real decision and report it to the bot.
    #[default]
    Shadow,
    /// Answer the real decision.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shadow => "shadow",
            Mode::Enforce => "enforce",
        }
    }
}

/// `enforce:` as written. Every key is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforceConfig {
    pub listen: Option<SocketAddr>,
    pub node_id: Option<String>,
    pub mode: Option<Mode>,
    /// Per-agent mode, over `mode`.
    #[serde(default)]
    pub agents: BTreeMap<String, Mode>,
    /// How often to fetch the base branch of the policy repository.
    pub interval_seconds: Option<u64>,
    /// The bot's `POST /v1/observations`.
    pub report_url: Option<String>,
    /// Names the variable holding the HS256 ingest secret; default: the bot's
    /// generated `data_dir/ingest.key` (the embedded default, same `data_dir`).
    pub report_hs256_secret_env: Option<String>,
    /// `aud` of the report JWT; default `ingest.audience`, else `shadowdraft`.
    pub report_audience: Option<String>,
    /// Names the variable holding a token to fetch the policy repository over
    /// HTTPS (sent as the Basic password of `x-access-token`, as GitHub expects).
    pub repo_token_env: Option<String>,
    /// Observed calls are flushed to a batch at least this often.
    pub flush_seconds: Option<u64>,
    /// … or when this many distinct calls are waiting.
    pub batch_max_calls: Option<usize>,
    /// Most batches kept in the spool; when full, the oldest is dropped (counted).
    pub spool_max_batches: Option<usize>,
    /// Most items one `POST /access/v1/evaluations` may ask for (400 above).
    pub max_evaluations: Option<usize>,
    /// Largest AuthZEN request body (413 above).
    pub max_body_bytes: Option<usize>,
}

/// Everything `shadowdraft enforce` needs, checked.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub listen: SocketAddr,
    pub node_id: String,
    pub mode: Mode,
    pub agents: BTreeMap<String, Mode>,
    pub interval: Duration,
    pub repo_url: String,
    pub repo_token: Option<String>,
    pub base_branch: String,
    /// `data_dir/enforce`: the git mirror and the spool.
    pub dir: PathBuf,
    pub report_url: String,
    pub report_secret: ReportSecret,
    pub report_audience: String,
    pub flush_interval: Duration,
    pub batch_max_calls: usize,
    pub spool_max_batches: usize,
    /// Longest wait between two attempts to send a batch (backoff doubles up to it).
    pub retry_max: Duration,
    pub http: HttpLimits,
    pub max_evaluations: usize,
    pub max_body_bytes: usize,
}

/// Where the HS256 secret of the report JWT comes from.
#[derive(Debug, Clone)]
pub enum ReportSecret {
    Value(Vec<u8>),
    /// Read when sending: the bot may generate it after the node starts.
    KeyFile(PathBuf),
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8181";
pub const DEFAULT_REPORT_URL: &str = "http://127.0.0.1:8080/v1/observations";

impl NodeSettings {
    /// Check `config.enforce` (and the top-level keys it uses); `file` names it in errors.
    pub fn from_config(
        config: &Config,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NodeSettings, ConfigError> {
        let check = Check { file, env };
        let fail = |key: &str, message: String| check.fail(key, message);
        let secret = |key: &str, var: &str| check.secret(key, var);
        let e = &config.enforce;
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let repo_url = match &config.policy_repo.url {
            Some(url) if url.is_empty() => return Err(fail("policy_repo.url", "must not be empty".into())),
            Some(url) => url.clone(),
            // The embedded default's repository, as `serve` creates it.
            None => data_dir.join("policy-repo.git").display().to_string(),
        };
        let node_id = e.node_id.clone().unwrap_or_else(|| "node-1".into());
        if !crate::core::observation::is_node_id(&node_id) {
            return Err(fail(
                "enforce.node_id",
                crate::core::observation::NODE_ID_RULE.into(),
            ));
        }
        let interval_seconds = e.interval_seconds.unwrap_or(30);
        if interval_seconds == 0 {
            return Err(fail("enforce.interval_seconds", "must be at least 1".into()));
        }
        let report_url = e.report_url.clone().unwrap_or_else(|| DEFAULT_REPORT_URL.into());
        match report_url.parse::<hyper::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
            Ok(uri) if uri.scheme_str() == Some("https") => {
                return Err(fail(
                    "enforce.report_url",
                    "https is not supported yet: reach the bot over http (e.g. through a local TLS proxy)"
                        .into(),
                ))
            }
            _ => {
                return Err(fail(
                    "enforce.report_url",
                    format!("`{report_url}` is not an http:// URL"),
                ))
            }
        }
        let report_secret = match &e.report_hs256_secret_env {
            Some(var) => {
                let value = secret("enforce.report_hs256_secret_env", var)?;
                if value.len() < 32 {
                    return Err(fail(
                        "enforce.report_hs256_secret_env",
                        "the secret must be at least 32 bytes long".into(),
                    ));
                }
                ReportSecret::Value(value.into_bytes())
            }
            None => ReportSecret::KeyFile(data_dir.join("ingest.key")),
        };
        let repo_token = e
            .repo_token_env
            .as_deref()
            .map(|var| secret("enforce.repo_token_env", var))
            .transpose()?;
        let flush_seconds = e.flush_seconds.unwrap_or(5);
        if flush_seconds == 0 {
            return Err(fail("enforce.flush_seconds", "must be at least 1".into()));
        }
        let batch_max_calls = e.batch_max_calls.unwrap_or(1000);
        if !(1..=100_000).contains(&batch_max_calls) {
            return Err(fail(
                "enforce.batch_max_calls",
                "must be between 1 and 100000".into(),
            ));
        }
        let spool_max_batches = e.spool_max_batches.unwrap_or(10_000);
        if spool_max_batches == 0 {
            return Err(fail("enforce.spool_max_batches", "must be at least 1".into()));
        }
        let max_evaluations = e.max_evaluations.unwrap_or(256);
        if !(1..=100_000).contains(&max_evaluations) {
            return Err(fail(
                "enforce.max_evaluations",
                "must be between 1 and 100000".into(),
            ));
        }
        let max_body_bytes = e.max_body_bytes.unwrap_or(1 << 20);
        if max_body_bytes < 1024 {
            return Err(fail("enforce.max_body_bytes", "must be at least 1024".into()));
        }
        Ok(NodeSettings {
            listen: e
                .listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            node_id,
            mode: e.mode.unwrap_or_default(),
            agents: e.agents.clone(),
            interval: Duration::from_secs(interval_seconds),
            repo_url,
            repo_token,
            base_branch: config
                .policy_repo
                .base_branch
                .clone()
                .unwrap_or_else(|| "main".into()),
            dir: data_dir.join("enforce"),
            report_url,
            report_secret,
            report_audience: e
                .report_audience
                .clone()
                .or_else(|| config.ingest.audience.clone())
                .unwrap_or_else(|| "shadowdraft".into()),
            flush_interval: Duration::from_secs(flush_seconds),
            batch_max_calls,
            spool_max_batches,
            retry_max: Duration::from_secs(30),
            http: config.http.limits(&check)?,
            max_evaluations,
            max_body_bytes,
        })
    }

    /// The mode for one agent.
    pub fn mode_of(&self, agent: &str) -> Mode {
        self.agents.get(agent).copied().unwrap_or(self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let config = Config::parse("c.yaml", "").unwrap();
        let s = NodeSettings::from_config(&config, "c.yaml", &no_env).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.mode, Mode::Shadow);
        assert!(s.repo_url.ends_with("policy-repo.git"));
        assert!(matches!(s.report_secret, ReportSecret::KeyFile(_)));
        let e = Config::parse("c.yaml", "enforce:\n  mdoe: shadow\n").unwrap_err();
        assert_eq!(e.key, "enforce.mdoe");
        let e = Config::parse("c.yaml", "enforce:\n  agents: {a: maybe}\n").unwrap_err();
        assert_eq!(e.key, "enforce.agents.a");
    }

    #[test]
    fn per_agent_modes_and_secrets() {
        let yaml =
            "enforce:\n  mode: enforce\n  agents: {billing-bot: shadow}\n  report_hs256_secret_env: S\n";
        let config = Config::parse("c.yaml", yaml).unwrap();
        let e = NodeSettings::from_config(&config, "c.yaml", &no_env).unwrap_err();
        assert_eq!(e.key, "enforce.report_hs256_secret_env");
        let long = "s".repeat(32);
        let s = NodeSettings::from_config(&config, "c.yaml", &|v| (v == "S").then(|| long.clone())).unwrap();
        assert_eq!(s.mode_of("billing-bot"), Mode::Shadow);
        assert_eq!(s.mode_of("other"), Mode::Enforce);
        let config =
            Config::parse("c.yaml", "enforce: {report_url: 'https://bot/v1/observations'}\n").unwrap();
        let e = NodeSettings::from_config(&config, "c.yaml", &no_env).unwrap_err();
        assert_eq!(e.key, "enforce.report_url");
    }
}
