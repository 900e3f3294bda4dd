//! Where proposals go: GitHub pull requests ([`github`]), or the local forge
//! of the embedded default ([`local`]).

pub mod github;
pub mod local;

pub use github::{CallCounts, CheckRun, GitHub, GitHubError};
pub use local::LocalForge;

use crate::git::Credentials;
use std::collections::BTreeMap;
use std::time::Duration;

pub enum Forge {
    Local(LocalForge),
    GitHub(Box<GitHub>),
}

/// An open proposal, as the forge shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub number: u64,
    pub url: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// Worth retrying: GitHub was down or rate-limited us.
    #[error("{message} (retry{})", .retry_after.map(|d| format!(" after {}s", d.as_secs())).unwrap_or_default())]
    Retryable {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{0}")]
    Failed(String),
}

impl From<GitHubError> for ForgeError {
    fn from(e: GitHubError) -> Self {
        match e {
            GitHubError::Retryable {
                status,
                retry_after,
                message,
            } => ForgeError::Retryable {
                retry_after,
                message: format!("GitHub answered {status}: {message}"),
            },
            GitHubError::Transport(m) => ForgeError::Retryable {
                retry_after: None,
                message: format!("GitHub unreachable: {m}"),
            },
            GitHubError::Rejected { status, message } => {
                ForgeError::Failed(format!("GitHub refused the request ({status}): {message}"))
            }
        }
    }
}

impl From<anyhow::Error> for ForgeError {
    fn from(e: anyhow::Error) -> Self {
        ForgeError::Failed(format!("{e:#}"))
    }
}

impl Forge {
    /// Credentials for fetching and pushing the policy repository.
    pub async fn credentials(&self) -> Result<Option<Credentials>, ForgeError> {
        match self {
            Forge::Local(_) => Ok(None),
            Forge::GitHub(gh) => Ok(Some(Credentials {
                user: "x-access-token".into(),
                password: gh.installation_token().await?,
            })),
        }
    }

    pub async fn find_open(&self, agent: &str, branch: &str) -> Result<Option<Proposal>, ForgeError> {
        match self {
            Forge::Local(local) => Ok(local.find_open(agent).await?),
            Forge::GitHub(gh) => Ok(gh.find_open_pull(branch).await?.map(|p| Proposal {
                number: p.number,
                url: p.html_url,
                body: p.body,
            })),
        }
    }

    pub async fn open(
        &self,
        agent: &str,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Proposal, ForgeError> {
        match self {
            Forge::Local(local) => Ok(local.open(agent, branch, base, title, body).await?),
            Forge::GitHub(gh) => {
                let p = gh.open_pull(branch, base, title, body).await?;
                Ok(Proposal {
                    number: p.number,
                    url: p.html_url,
                    body: p.body,
                })
            }
        }
    }

    pub async fn update(&self, agent: &str, number: u64, title: &str, body: &str) -> Result<(), ForgeError> {
        match self {
            Forge::Local(local) => Ok(local.update(agent, number, title, body).await?),
            Forge::GitHub(gh) => Ok(gh.update_pull(number, title, body).await?),
        }
    }

    /// Labels and requested reviewers, set when a proposal opens.
    pub async fn decorate(
        &self,
        number: u64,
        labels: &[String],
        reviewers: &[String],
        teams: &[String],
    ) -> Result<(), ForgeError> {
        match self {
            Forge::Local(_) => Ok(()),
            Forge::GitHub(gh) => {
                if !labels.is_empty() {
                    gh.add_labels(number, labels).await?;
                }
                gh.request_reviewers(number, reviewers, teams).await?;
                Ok(())
            }
        }
    }

    pub async fn comments(&self, number: u64) -> Result<Vec<String>, ForgeError> {
        match self {
            Forge::Local(local) => Ok(local.comments(number).await?),
            Forge::GitHub(gh) => Ok(gh.comment_bodies(number).await?),
        }
    }

    pub async fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        match self {
            Forge::Local(local) => Ok(local.comment(number, body).await?),
            Forge::GitHub(gh) => Ok(gh.comment(number, body).await?),
        }
    }

    /// The `shadowdraft/verify` check on a pushed head commit.
    pub async fn check_run(&self, run: &CheckRun) -> Result<(), ForgeError> {
        match self {
            Forge::Local(_) => Ok(()),
            Forge::GitHub(gh) => Ok(gh.create_check_run(run).await?),
        }
    }

    /// Whether `user` may give commands: write access on GitHub; everyone locally.
    pub async fn can_write(&self, user: &str) -> Result<bool, ForgeError> {
        match self {
            Forge::Local(_) => Ok(true),
            Forge::GitHub(gh) => Ok(gh.can_write(user).await?),
        }
    }

    /// The head branch of a pull request.
    pub async fn pull_head(&self, number: u64) -> Result<Option<String>, ForgeError> {
        match self {
            Forge::Local(_) => Ok(None),
            Forge::GitHub(gh) => Ok(Some(gh.pull_head(number).await?)),
        }
    }

    /// Whether merging into `branch` needs a code owner's approval (`None`: the forge has no such rule).
    pub async fn code_owner_reviews_required(&self, branch: &str) -> Result<Option<bool>, ForgeError> {
        match self {
            Forge::Local(_) => Ok(None),
            Forge::GitHub(gh) => Ok(Some(gh.code_owner_reviews_required(branch).await?)),
        }
    }

    pub fn errors_by_status(&self) -> BTreeMap<u16, u64> {
        match self {
            Forge::Local(_) => BTreeMap::new(),
            Forge::GitHub(gh) => gh.errors_by_status(),
        }
    }

    /// GitHub retries, transport errors and calls given up.
    pub fn github_calls(&self) -> CallCounts {
        match self {
            Forge::Local(_) => CallCounts::default(),
            Forge::GitHub(gh) => gh.calls(),
        }
    }
}
