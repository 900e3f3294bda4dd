//! The bot's settings: `shadowdraft serve`'s part of the file, checked, with
//! its secrets read from the environment.

use super::{Check, Committer, Config, ConfigError, ForgeKind, ReviewConfig, DEFAULT_DATA_DIR};
use crate::core::config::DraftingConfig;
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
}

#[derive(Debug, Clone)]
pub enum ForgeSettings {
    Local,
    Github(GithubSettings),
}

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub app: AppSettings,
    pub webhook_secrets: Vec<String>,
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
            },
            review: self.review.clone(),
            labels: self
                .forge
                .labels
                .clone()
                .unwrap_or_else(|| vec!["shadowdraft".into()]),
            drafting: self.drafting.clone(),
        })
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
