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
    /// Extra CA certificates (PEM) trusted, besides the system's, for an
    /// `https://` `report_url` and MCP upstream URLs.
    pub tls_ca_path: Option<PathBuf>,
    /// Allow a plain `http://` `report_url` that is not on loopback.
    pub report_allow_http: Option<bool>,
    /// The MCP gateway (DESIGN §9).
    #[serde(default)]
    pub mcp: McpConfig,
}

/// `enforce.mcp:` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// The agent the gateway speaks for when neither `--agent` nor a token names one.
    pub agent: Option<String>,
    /// `aud` an agent's bearer JWT must carry on `/mcp/<server>`; default `shadowdraft-mcp`.
    pub audience: Option<String>,
    /// Names the variable holding the HS256 secret agent tokens are signed with.
    pub hs256_secret_env: Option<String>,
    /// RS256 / EdDSA public keys (PEM) agent tokens may be signed with.
    #[serde(default)]
    pub public_key_paths: Vec<PathBuf>,
    /// The claim of an agent's token that names the end user (dots reach into
    /// objects: `act.sub`); default `user`.
    pub user_claim: Option<String>,
    /// In enforce mode, leave the tools the agent has no rule for out of `tools/list`.
    pub hide_unruled_tools: Option<bool>,
    /// An upstream that has not answered a request within this long: the
    /// client gets an error and the upstream a cancellation.
    pub call_timeout_seconds: Option<u64>,
    /// Largest MCP message accepted from a client (a stdio line, an HTTP body).
    pub max_message_bytes: Option<usize>,
    /// `Origin` headers accepted on `/mcp/<server>` (browsers); others get 403.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, McpServerConfig>,
}

/// One upstream MCP server: a `command` the node spawns (stdio) or a streamable HTTP `url`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    pub command: Option<Vec<String>>,
    pub url: Option<String>,
    /// Names the variable holding a bearer token sent to a `url` upstream.
    pub bearer_token_env: Option<String>,
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
    /// PEM text of `tls_ca_path`.
    pub tls_ca: Option<Vec<u8>>,
    pub mcp: McpSettings,
}

/// The MCP gateway's settings, checked.
#[derive(Debug, Clone)]
pub struct McpSettings {
    pub agent: Option<String>,
    pub audience: String,
    pub hs256_secret: Option<Vec<u8>>,
    /// (path, PEM) of each public key.
    pub public_keys: Vec<(PathBuf, Vec<u8>)>,
    /// The claim path naming the end user, split at dots.
    pub user_claim: Vec<String>,
    pub hide_unruled_tools: bool,
    pub call_timeout: Duration,
    pub max_message_bytes: usize,
    pub allowed_origins: Vec<String>,
    pub servers: BTreeMap<String, Upstream>,
}

impl McpSettings {
    /// Whether agent tokens can be verified at all.
    pub fn verifies_tokens(&self) -> bool {
        self.hs256_secret.is_some() || !self.public_keys.is_empty()
    }
}

/// Where an upstream MCP server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Spawned as a child and spoken to over stdio: the program and its arguments.
    Command(Vec<String>),
    /// Streamable HTTP.
    Url { url: String, bearer: Option<String> },
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
pub const DEFAULT_MCP_AUDIENCE: &str = "shadowdraft-mcp";

/// A host that never leaves the machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Agent ids and server names share the observation limits; server names
/// also appear in the path `/mcp/<server>`.
fn check_server_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(
            "may hold only letters, digits, `.`, `_` and `-` (it is part of the URL /mcp/<server>)".into(),
        );
    }
    Ok(())
}

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
        let allow_http = e.report_allow_http.unwrap_or(false);
        match report_url.parse::<hyper::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => {}
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {
                let host = uri.host().unwrap_or_default();
                if !allow_http && !is_loopback(host) {
                    return Err(fail(
                        "enforce.report_url",
                        format!(
                            "plain http:// to {host} would send observations and the report token unencrypted: \
                             use https://, or set enforce.report_allow_http: true"
                        ),
                    ));
                }
            }
            _ => {
                return Err(fail(
                    "enforce.report_url",
                    format!("`{report_url}` is not an http:// or https:// URL"),
                ))
            }
        }
        let tls_ca = match &e.tls_ca_path {
            Some(path) => Some(check.read("enforce.tls_ca_path", path)?),
            None => None,
        };
        let mcp = mcp_settings(&e.mcp, &check)?;
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
            tls_ca,
            mcp,
        })
    }

    /// The mode for one agent.
    pub fn mode_of(&self, agent: &str) -> Mode {
        self.agents.get(agent).copied().unwrap_or(self.mode)
    }
}

/// Check `enforce.mcp`.
fn mcp_settings(m: &McpConfig, check: &Check) -> Result<McpSettings, ConfigError> {
    if let Some(agent) = &m.agent {
        if agent.is_empty() || agent.len() > 256 || agent.chars().any(char::is_control) {
            return Err(check.fail(
                "enforce.mcp.agent",
                "must be 1 to 256 printable characters".into(),
            ));
        }
    }
    let hs256_secret = match &m.hs256_secret_env {
        Some(var) => {
            let value = check.secret("enforce.mcp.hs256_secret_env", var)?;
            if value.len() < 32 {
                return Err(check.fail(
                    "enforce.mcp.hs256_secret_env",
                    "the secret must be at least 32 bytes long".into(),
                ));
            }
            Some(value.into_bytes())
        }
        None => None,
    };
    let mut public_keys = Vec::new();
    for (i, path) in m.public_key_paths.iter().enumerate() {
        let pem = check.read(&format!("enforce.mcp.public_key_paths[{i}]"), path)?;
        public_keys.push((path.clone(), pem));
    }
    let user_claim = m.user_claim.clone().unwrap_or_else(|| "user".into());
    let user_claim: Vec<String> = user_claim.split('.').map(str::to_string).collect();
    if user_claim.iter().any(String::is_empty) {
        return Err(check.fail(
            "enforce.mcp.user_claim",
            "must be a claim name, or names joined by dots (`act.sub`)".into(),
        ));
    }
    let call_timeout = m.call_timeout_seconds.unwrap_or(120);
    if call_timeout == 0 {
        return Err(check.fail("enforce.mcp.call_timeout_seconds", "must be at least 1".into()));
    }
    let max_message_bytes = m.max_message_bytes.unwrap_or(4 << 20);
    if !(1024..=(256 << 20)).contains(&max_message_bytes) {
        return Err(check.fail(
            "enforce.mcp.max_message_bytes",
            "must be between 1024 and 268435456".into(),
        ));
    }
    let mut servers = BTreeMap::new();
    for (name, server) in &m.servers {
        let key = |k: &str| format!("enforce.mcp.servers.{name}{k}");
        check_server_name(name).map_err(|e| check.fail(&key(""), e))?;
        let upstream = match (&server.command, &server.url) {
            (Some(command), None) => {
                if command.first().is_none_or(|c| c.is_empty()) {
                    return Err(check.fail(&key(".command"), "must name a program".into()));
                }
                if server.bearer_token_env.is_some() {
                    return Err(check.fail(
                        &key(".bearer_token_env"),
                        "only a `url` upstream takes a bearer token".into(),
                    ));
                }
                Upstream::Command(command.clone())
            }
            (None, Some(url)) => {
                match url.parse::<hyper::Uri>() {
                    Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
                    }
                    _ => {
                        return Err(
                            check.fail(&key(".url"), format!("`{url}` is not an http:// or https:// URL"))
                        )
                    }
                }
                let bearer = server
                    .bearer_token_env
                    .as_deref()
                    .map(|var| check.secret(&key(".bearer_token_env"), var))
                    .transpose()?;
                Upstream::Url {
                    url: url.clone(),
                    bearer,
                }
            }
            _ => {
                return Err(check.fail(
                    &key(""),
                    "give exactly one of `command` (spawned, stdio) or `url` (streamable HTTP)".into(),
                ))
            }
        };
        servers.insert(name.clone(), upstream);
    }
    Ok(McpSettings {
        agent: m.agent.clone(),
        audience: m.audience.clone().unwrap_or_else(|| DEFAULT_MCP_AUDIENCE.into()),
        hs256_secret,
        public_keys,
        user_claim,
        hide_unruled_tools: m.hide_unruled_tools.unwrap_or(false),
        call_timeout: Duration::from_secs(call_timeout),
        max_message_bytes,
        allowed_origins: m.allowed_origins.clone(),
        servers,
    })
}

/// Check a server name given on the command line (`shadowdraft mcp --server`).
pub fn check_mcp_server_name(name: &str) -> Result<(), String> {
    check_server_name(name)
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
    }

    #[test]
    fn reports_go_over_tls_or_stay_on_the_machine() {
        let settings = |yaml: &str| {
            let config = Config::parse("c.yaml", yaml).unwrap();
            NodeSettings::from_config(&config, "c.yaml", &no_env)
        };
        assert!(settings("enforce: {report_url: 'https://bot.acme.internal/v1/observations'}\n").is_ok());
        assert!(settings("enforce: {report_url: 'http://[::1]:8080/v1/observations'}\n").is_ok());
        assert!(settings("enforce: {report_url: 'http://localhost:8080/v1/observations'}\n").is_ok());
        let e = settings("enforce: {report_url: 'http://bot.acme.internal/v1/observations'}\n").unwrap_err();
        assert_eq!(e.key, "enforce.report_url");
        assert!(e.message.contains("report_allow_http"), "{e}");
        assert!(settings(
            "enforce: {report_url: 'http://bot.acme.internal/v1/observations', report_allow_http: true}\n"
        )
        .is_ok());
        let e = settings("enforce: {report_url: 'ftp://bot/v1'}\n").unwrap_err();
        assert_eq!(e.key, "enforce.report_url");
        let e = settings("enforce: {tls_ca_path: /nonexistent/ca.pem}\n").unwrap_err();
        assert_eq!(e.key, "enforce.tls_ca_path");
    }

    #[test]
    fn mcp_servers_are_a_command_or_a_url() {
        let yaml = "enforce:\n  mcp:\n    servers:\n      files: {command: [npx, -y, server]}\n      crm: {url: 'https://crm.internal/mcp'}\n";
        let config = Config::parse("c.yaml", yaml).unwrap();
        let s = NodeSettings::from_config(&config, "c.yaml", &no_env).unwrap();
        assert_eq!(
            s.mcp.servers["files"],
            Upstream::Command(vec!["npx".into(), "-y".into(), "server".into()])
        );
        assert!(matches!(
            &s.mcp.servers["crm"],
            Upstream::Url { bearer: None, .. }
        ));
        assert_eq!(s.mcp.audience, DEFAULT_MCP_AUDIENCE);
        assert_eq!(s.mcp.user_claim, vec!["user".to_string()]);
        assert!(!s.mcp.verifies_tokens());
        let fails = |yaml: &str| {
            let config = Config::parse("c.yaml", yaml).unwrap();
            NodeSettings::from_config(&config, "c.yaml", &no_env).unwrap_err()
        };
        let e = fails("enforce: {mcp: {servers: {files: {}}}}\n");
        assert_eq!(e.key, "enforce.mcp.servers.files");
        let e = fails("enforce: {mcp: {servers: {files: {command: [a], url: 'http://x/'}}}}\n");
        assert_eq!(e.key, "enforce.mcp.servers.files");
        let e = fails("enforce: {mcp: {servers: {'a b': {command: [a]}}}}\n");
        assert_eq!(e.key, "enforce.mcp.servers.a b");
        let e = fails("enforce: {mcp: {servers: {crm: {url: 'crm.internal'}}}}\n");
        assert_eq!(e.key, "enforce.mcp.servers.crm.url");
        let e = fails("enforce: {mcp: {servers: {crm: {url: 'https://crm/', bearer_token_env: CRM}}}}\n");
        assert_eq!(e.key, "enforce.mcp.servers.crm.bearer_token_env");
        let e = fails("enforce: {mcp: {hs256_secret_env: MCP_SECRET}}\n");
        assert_eq!(e.key, "enforce.mcp.hs256_secret_env");
        let e = fails("enforce: {mcp: {user_claim: 'act.'}}\n");
        assert_eq!(e.key, "enforce.mcp.user_claim");
        let e = Config::parse("c.yaml", "enforce: {mcp: {servers: {files: {comand: [a]}}}}\n").unwrap_err();
        assert_eq!(e.key, "enforce.mcp.servers.files.comand");
    }
}
