//! The bot: what happens behind `shadowdraft serve`'s HTTP surface. Ingest
//! makes acknowledged batches durable and folds them into the rolling window;
//! the worker takes due jobs and deliveries from the store, drafts with the
//! core, plans each proposal with [`crate::core::plan`] and carries the plan
//! out against git and the forge; review and rollout follow what people did
//! with the proposals.

pub mod events;
pub mod ingest;
pub mod metrics;
pub mod propose;
pub mod review;
pub mod rollout;
pub mod worker;

use crate::config::Settings;
use crate::core::window::Window;
use crate::forge::{Forge, ForgeError};
use crate::git::{Credentials, PolicyRepo};
use crate::store::Store;
use ingest::FoldProgress;
use metrics::Metrics;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Everything a job needs; shared with the HTTP handlers.
pub struct Context {
    pub settings: Settings,
    pub store: Arc<Mutex<Store>>,
    pub window: Arc<Mutex<Window>>,
    pub repo: Arc<Mutex<PolicyRepo>>,
    pub forge: Forge,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    /// How far ingest has folded: a job waits for what was acknowledged.
    pub progress: Arc<FoldProgress>,
    /// Tells whoever waits when the worker has nothing left to do.
    pub idle: worker::Idle,
}

/// Why a job or a delivery failed; it stays queued and is retried.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying soon: GitHub was down or rate-limited us.
    #[error("{message} (retry{})", .retry_after.map(|d| format!(" after {}s", d.as_secs())).unwrap_or_default())]
    Retryable {
        retry_after: Option<Duration>,
        message: String,
    },
    /// Git, the store or the forge refused; retried with the usual backoff.
    #[error("{0}")]
    Failed(String),
}

impl From<ForgeError> for JobError {
    fn from(e: ForgeError) -> Self {
        match e {
            ForgeError::Retryable { retry_after, message } => JobError::Retryable { retry_after, message },
            ForgeError::Failed(message) => JobError::Failed(message),
        }
    }
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        JobError::Failed(format!("{e:#}"))
    }
}

impl Context {
    /// Run `work` on the policy repository off the async threads, with the
    /// forge's credentials for fetch and push.
    pub async fn git<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PolicyRepo, Option<&Credentials>) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, JobError> {
        let credentials = self.forge.credentials().await?;
        let repo = self.repo.clone();
        blocking(move || work(&repo.lock().expect("repo lock"), credentials.as_ref())).await
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }
}

/// Run blocking work (git, drafting) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| JobError::Failed(format!("worker task failed: {e}")))?
        .map_err(JobError::from)
}
