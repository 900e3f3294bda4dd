//! The bot's settings: `shadowdraft serve`'s part of the file, checked, with
//! its secrets read from the environment.

use super::{
    Check, Committer, Config, ConfigError, ForgeKind, HttpLimits, ProofConfig, ReviewConfig, StoreKind,
    DEFAULT_DATA_DIR,
};
use crate::core::config::DraftingConfig;
use crate::core::spans::SpanMapping;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `serve` needs, checked, with secrets read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: the embedded local repository under `data_dir`.
    pub repo_url: Option<String>,
    pub base_branch: String,
    pub committer: Committer,
    pub forge: ForgeSettings,
    pub ingest: IngestSettings,
    pub review: ReviewConfig,
    pub labels: Vec<String>,
    pub drafting: DraftingConfig,
    pub http: HttpLimits,
    pub store: StoreSettings,
    pub proof: ProofSettings,
}

/// `proof:`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofSettings {
    pub enabled: bool,
    /// `None`: the default solver (cvc5 from `PATH`).
    pub solver: Option<Vec<String>>,
    pub timeout: std::time::Duration,
    pub budget: std::time::Duration,
    pub max_examples: usize,
}

impl ProofConfig {
    fn settings(&self, check: &Check<'_>) -> Result<ProofSettings, ConfigError> {
        let seconds = |key: &str, value: Option<u64>, default: u64| match value.unwrap_or(default) {
            n @ 1..=3600 => Ok(std::time::Duration::from_secs(n)),
            n => Err(check.fail(key, format!("{n} is not between 1 and 3600 seconds"))),
        };
        if self
            .solver
            .as_ref()
            .is_some_and(|s| s.first().is_none_or(|p| p.trim().is_empty()))
        {
            return Err(check.fail("proof.solver", "names no program".into()));
        }
        let max_examples = self.max_examples.unwrap_or(2);
        if !(1..=10).contains(&max_examples) {
            return Err(check.fail(
                "proof.max_examples",
                format!("{max_examples} is not between 1 and 10"),
            ));
        }
        Ok(ProofSettings {
            enabled: self.enabled.unwrap_or(true),
            solver: self.solver.clone(),
            timeout: seconds("proof.timeout_seconds", self.timeout_seconds, 10)?,
            budget: seconds("proof.budget_seconds", self.budget_seconds, 120)?,
            max_examples,
        })
    }
}

/// Where the bot keeps its state.
#[derive(Clone)]
pub enum StoreSettings {
    /// `data_dir/shadowdraft.db`: one process.
    Sqlite,
    /// One database shared by every replica.
    Postgres {
        /// Holds the password: never logged.
        url: String,
        lease_seconds: u64,
    },
}

impl std::fmt::Debug for StoreSettings {
    // The URL carries the database password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSettings::Sqlite => f.write_str("Sqlite"),
            StoreSettings::Postgres { lease_seconds, .. } => f
                .debug_struct("Postgres")
                .field("lease_seconds", lease_seconds)
                .finish_non_exhaustive(),
        }
    }
}

/// A claim on a job or delivery lasts this long without a heartbeat.
pub const DEFAULT_LEASE_SECONDS: u64 = 30;

#[derive(Debug, Clone)]
pub enum ForgeSettings {
    Local,
    Github(GithubSettings),
}

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub app: AppSettings,
    pub webhook_secrets: Vec<String>,
    /// Not in the file: the defaults, which tests shorten.
    pub retry: GitHubRetry,
}

/// How the GitHub client retries a call that got a 5xx, a rate limit or no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitHubRetry {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// The wait before the first retry, doubled before each next one.
    pub first_backoff: std::time::Duration,
    /// The longest single wait, a server's `Retry-After` included.
    pub max_wait: std::time::Duration,
}

impl Default for GitHubRetry {
    fn default() -> Self {
        GitHubRetry {
            attempts: 4,
            first_backoff: std::time::Duration::from_millis(200),
            max_wait: std::time::Duration::from_secs(60),
        }
    }
}

/// How to reach GitHub and which App / repository to act as.
#[derive(Clone)]
pub struct AppSettings {
    /// `https://api.github.com`, or a GitHub Enterprise prefix such as `https://ghe.example.com/api/v3`.
    pub api_url: String,
    pub app_id: u64,
    /// PKCS#1 or PKCS#8 RSA private key of the App, PEM.
    pub private_key_pem: Vec<u8>,
    /// Looked up from `owner/repo` when absent.
    pub installation_id: Option<u64>,
    pub owner: String,
    pub repo: String,
}

impl std::fmt::Debug for AppSettings {
    // The private key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSettings")
            .field("api_url", &self.api_url)
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub audience: String,
    /// `None` in the embedded default: a key is generated under `data_dir`.
    pub hs256_secret: Option<Vec<u8>>,
    /// (path, PEM) of each RS256 or EdDSA verification key.
    pub public_keys: Vec<(PathBuf, Vec<u8>)>,
    pub max_body_bytes: usize,
    pub max_token_lifetime_seconds: u64,
    /// How spans posted to `/v1/traces` become calls.
    pub otlp: SpanMapping,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

impl Config {
    /// Check the configuration and read its secrets. `file` names it in errors.
    pub fn settings(
        &self,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let check = Check { file, env };
        let fail = |key: &str, message: String| check.fail(key, message);
        let secret = |key: &str, var: &str| check.secret(key, var);
        let read = |key: &str, path: &Path| check.read(key, path);

        let listen = self
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let repo_url = self.policy_repo.url.clone();
        if repo_url.as_deref().is_some_and(str::is_empty) {
            return Err(fail("policy_repo.url", "must not be empty".into()));
        }
        let base_branch = self
            .policy_repo
            .base_branch
            .clone()
            .unwrap_or_else(|| "main".into());
        if base_branch.is_empty() || base_branch.starts_with("shadowdraft/") {
            return Err(fail(
                "policy_repo.base_branch",
                format!("`{base_branch}` cannot be the base: shadowdraft/* branches are the bot's"),
            ));
        }
        let committer = self.policy_repo.committer.clone().unwrap_or_else(|| Committer {
            name: "shadowdraft[bot]".into(),
            email: "shadowdraft[bot]@users.noreply.github.com".into(),
        });
        if committer.name.trim().is_empty() || !committer.email.contains('@') {
            return Err(fail(
                "policy_repo.committer",
                "needs a name and an email address".into(),
            ));
        }

        let forge = match self.forge.kind.unwrap_or_default() {
            ForgeKind::Local => ForgeSettings::Local,
            ForgeKind::Github => {
                let app_id = self
                    .forge
                    .app_id
                    .ok_or_else(|| fail("forge.app_id", "required when forge.kind is github".into()))?;
                let key_path = self.forge.private_key_path.as_deref().ok_or_else(|| {
                    fail(
                        "forge.private_key_path",
                        "required when forge.kind is github".into(),
                    )
                })?;
                let private_key_pem = read("forge.private_key_path", key_path)?;
                let repository = match (&self.forge.repository, &repo_url) {
                    (Some(r), _) => r.clone(),
                    (None, Some(url)) => repository_of(url).ok_or_else(|| {
                        fail(
                            "forge.repository",
                            format!("cannot tell owner/name from policy_repo.url `{url}`; set it"),
                        )
                    })?,
                    (None, None) => {
                        return Err(fail(
                            "policy_repo.url",
                            "required when forge.kind is github".into(),
                        ))
                    }
                };
                let (owner, repo) = repository
                    .split_once('/')
                    .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
                    .ok_or_else(|| fail("forge.repository", format!("`{repository}` is not owner/name")))?;
                let webhook_secrets = self
                    .forge
                    .webhook_secrets_env
                    .iter()
                    .map(|var| secret("forge.webhook_secrets_env", var))
                    .collect::<Result<_, _>>()?;
                ForgeSettings::Github(GithubSettings {
                    app: AppSettings {
                        api_url: self
                            .forge
                            .api_url
                            .clone()
                            .unwrap_or_else(|| "https://api.github.com".into()),
                        app_id,
                        private_key_pem,
                        installation_id: self.forge.installation_id,
                        owner: owner.to_string(),
                        repo: repo.to_string(),
                    },
                    webhook_secrets,
                    retry: GitHubRetry::default(),
                })
            }
        };
        if matches!(forge, ForgeSettings::Local) && self.forge.app_id.is_some() {
            return Err(fail(
                "forge.kind",
                "app_id is set but kind is not `github`".into(),
            ));
        }

        let hs256_secret = self
            .ingest
            .hs256_secret_env
            .as_deref()
            .map(|var| secret("ingest.hs256_secret_env", var).map(String::into_bytes))
            .transpose()?;
        if hs256_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(fail(
                "ingest.hs256_secret_env",
                "the secret must be at least 32 bytes long".into(),
            ));
        }
        let public_keys = self
            .ingest
            .public_key_paths
            .iter()
            .map(|p| read("ingest.public_key_paths", p).map(|pem| (p.clone(), pem)))
            .collect::<Result<_, _>>()?;
        let max_body_bytes = self.ingest.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        if max_body_bytes < 1024 {
            return Err(fail("ingest.max_body_bytes", "must be at least 1024".into()));
        }
        let max_token_lifetime_seconds = self
            .ingest
            .max_token_lifetime_seconds
            .unwrap_or(crate::auth::DEFAULT_MAX_LIFETIME_SECONDS);
        if max_token_lifetime_seconds < 60 {
            return Err(fail(
                "ingest.max_token_lifetime_seconds",
                "must be at least 60".into(),
            ));
        }
        self.ingest
            .otlp
            .check()
            .map_err(|(key, message)| fail(&format!("ingest.otlp.{key}"), message))?;
        let audience = self
            .ingest
            .audience
            .clone()
            .unwrap_or_else(|| "shadowdraft".into());

        self.drafting
            .thresholds()
            .map_err(|e| fail("drafting", e.to_string()))?;
        if self.drafting.window_days == 0 {
            return Err(fail("drafting.window_days", "must be at least 1".into()));
        }

        let store = self.store_settings(&check)?;
        if matches!(store, StoreSettings::Postgres { .. }) {
            // Replicas share the database, not their data_dir: what a node or
            // reviewer sees must not depend on which replica answers.
            if self.ingest.hs256_secret_env.is_none() && self.ingest.public_key_paths.is_empty() {
                return Err(fail(
                    "ingest.hs256_secret_env",
                    "store.kind postgres runs several replicas, which must share the ingest key: set ingest.hs256_secret_env or ingest.public_key_paths".into(),
                ));
            }
            if repo_url.is_none() {
                return Err(fail(
                    "policy_repo.url",
                    "store.kind postgres runs several replicas, which must share the policy repository: set its URL".into(),
                ));
            }
        }

        Ok(Settings {
            listen,
            data_dir,
            repo_url,
            base_branch,
            committer,
            forge,
            ingest: IngestSettings {
                audience,
                hs256_secret,
                public_keys,
                max_body_bytes,
                max_token_lifetime_seconds,
                otlp: self.ingest.otlp.clone(),
            },
            review: self.review.clone(),
            labels: self
                .forge
                .labels
                .clone()
                .unwrap_or_else(|| vec!["shadowdraft".into()]),
            drafting: self.drafting.clone(),
            http: self.http.limits(&check)?,
            store,
            proof: self.proof.settings(&check)?,
        })
    }

    fn store_settings(&self, check: &Check<'_>) -> Result<StoreSettings, ConfigError> {
        let store = &self.store;
        match store.kind.unwrap_or_default() {
            StoreKind::Sqlite => {
                if store.url_env.is_some() {
                    return Err(check.fail("store.url_env", "only store.kind postgres reads a URL".into()));
                }
                Ok(StoreSettings::Sqlite)
            }
            StoreKind::Postgres => {
                let var = store.url_env.as_deref().ok_or_else(|| {
                    check.fail(
                        "store.url_env",
                        "required when store.kind is postgres: the variable holding the database URL".into(),
                    )
                })?;
                let url = check.secret("store.url_env", var)?;
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(check.fail("store.url_env", format!("{var} must hold a postgres:// URL")));
                }
                let lease_seconds = store.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
                if lease_seconds < 2 {
                    return Err(check.fail("store.lease_seconds", "must be at least 2".into()));
                }
                Ok(StoreSettings::Postgres { url, lease_seconds })
            }
        }
    }
}

/// `owner/name` from `https://host/owner/name(.git)` or `git@host:owner/name.git`.
fn repository_of(url: &str) -> Option<String> {
    let path = url.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = path.rsplit(['/', ':']);
    let name = parts.next()?;
    let owner = parts.next()?;
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_file_is_the_embedded_default() {
        let settings = Config::parse("c.yaml", "")
            .unwrap()
            .settings("c.yaml", &no_env)
            .unwrap();
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert!(settings.listen.ip().is_loopback());
        assert!(matches!(settings.forge, ForgeSettings::Local));
        assert_eq!(settings.base_branch, "main");
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = Config::parse("c.yaml", "forge:\n  kind: github\n  app_idd: 3\n").unwrap_err();
        assert_eq!(e.key, "forge.app_idd");
        assert!(e.to_string().contains("app_idd"), "{e}");
        let e = Config::parse("c.yaml", "drafting:\n  window_days: lots\n").unwrap_err();
        assert_eq!(e.key, "drafting.window_days");
    }

    #[test]
    fn github_needs_its_keys_and_names_the_missing_one() {
        let config = Config::parse("c.yaml", "forge: {kind: github}\n").unwrap();
        let e = config.settings("c.yaml", &no_env).unwrap_err();
        assert_eq!(e.key, "forge.app_id");
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let config = Config::parse("c.yaml", "ingest: {hs256_secret_env: INGEST}\n").unwrap();
        let e = config.settings("c.yaml", &no_env).unwrap_err();
        assert!(e.to_string().contains("INGEST is not set"), "{e}");
        let long = "k".repeat(40);
        let env = |v: &str| (v == "INGEST").then(|| long.clone());
        let settings = config.settings("c.yaml", &env).unwrap();
        assert_eq!(settings.ingest.hs256_secret.as_deref(), Some(long.as_bytes()));
    }

    #[test]
    fn the_commented_example_parses_and_names_what_it_still_needs() {
        let config = Config::parse("example", include_str!("../../shadowdraft.example.yaml")).unwrap();
        assert_eq!(config.forge.kind, Some(ForgeKind::Github));
        let e = config.settings("example", &no_env).unwrap_err();
        assert_eq!(e.key, "forge.private_key_path");
    }

    #[test]
    fn postgres_needs_its_url_a_shared_key_and_a_shared_repository() {
        let parse = |yaml: &str| Config::parse("c.yaml", yaml).unwrap();
        let long = "k".repeat(40);
        let env = |v: &str| match v {
            "DB" => Some("postgres://bot:pw@db/shadowdraft".to_string()),
            "NOT_A_URL" => Some("mysql://db".to_string()),
            "INGEST" => Some(long.clone()),
            _ => None,
        };
        let e = parse("store: {kind: postgres}\n")
            .settings("c.yaml", &env)
            .unwrap_err();
        assert_eq!(e.key, "store.url_env");
        let e = parse("store: {kind: postgres, url_env: NOT_A_URL}\n")
            .settings("c.yaml", &env)
            .unwrap_err();
        assert!(e.to_string().contains("postgres:// URL"), "{e}");
        let e = parse("store: {kind: postgres, url_env: DB}\n")
            .settings("c.yaml", &env)
            .unwrap_err();
        assert_eq!(e.key, "ingest.hs256_secret_env");
        let e = parse("store: {kind: postgres, url_env: DB}\ningest: {hs256_secret_env: INGEST}\n")
            .settings("c.yaml", &env)
            .unwrap_err();
        assert_eq!(e.key, "policy_repo.url");
        let settings = parse(
            "store: {kind: postgres, url_env: DB, lease_seconds: 5}\ningest: {hs256_secret_env: INGEST}\npolicy_repo: {url: /srv/p.git}\n",
        )
        .settings("c.yaml", &env)
        .unwrap();
        let StoreSettings::Postgres { url, lease_seconds } = &settings.store else {
            panic!("{:?}", settings.store)
        };
        assert_eq!(
            (url.as_str(), *lease_seconds),
            ("postgres://bot:pw@db/shadowdraft", 5)
        );
        assert!(
            !format!("{settings:?}").contains("pw@"),
            "the password stays out of logs"
        );
        let e = parse("store: {url_env: DB}\n")
            .settings("c.yaml", &env)
            .unwrap_err();
        assert_eq!(e.key, "store.url_env");
    }

    #[test]
    fn the_span_mapping_is_read_and_checked_under_ingest_otlp() {
        let config = Config::parse(
            "c.yaml",
            "ingest:\n  otlp:\n    agent_attributes: [service.name]\n    invalid_spans: skip\n",
        )
        .unwrap();
        let settings = config.settings("c.yaml", &no_env).unwrap();
        assert_eq!(
            settings.ingest.otlp.agent_attributes,
            vec!["service.name".to_string()]
        );
        assert_eq!(
            settings.ingest.otlp.invalid_spans,
            crate::core::spans::InvalidSpans::Skip
        );
        // What is not said keeps its default.
        assert_eq!(
            settings.ingest.otlp.server_attributes,
            SpanMapping::default().server_attributes
        );
        let e = Config::parse("c.yaml", "ingest:\n  otlp:\n    agent_attribute: [x]\n").unwrap_err();
        assert_eq!(e.key, "ingest.otlp.agent_attribute");
        let config = Config::parse("c.yaml", "ingest:\n  otlp:\n    agent_attributes: []\n").unwrap();
        let e = config.settings("c.yaml", &no_env).unwrap_err();
        assert_eq!(e.key, "ingest.otlp.agent_attributes");
    }

    #[test]
    fn repository_comes_from_the_url() {
        assert_eq!(
            repository_of("https://github.com/acme/agent-policies.git").as_deref(),
            Some("acme/agent-policies")
        );
        assert_eq!(
            repository_of("git@github.com:acme/p.git").as_deref(),
            Some("acme/p")
        );
    }
}
