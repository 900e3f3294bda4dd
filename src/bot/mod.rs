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
use crate::core::window::{self, Window};
use crate::forge::{Forge, ForgeError};
use crate::git::{Credentials, PolicyRepo};
use crate::store::{Postgres, Store};
use ingest::FoldProgress;
use metrics::Metrics;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Everything a job needs; shared with the HTTP handlers.
pub struct Context {
    pub settings: Settings,
    pub store: Arc<Store>,
    /// Where the calls of the window are read from.
    pub observed: Observed,
    pub repo: Arc<Mutex<PolicyRepo>>,
    pub forge: Forge,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    /// Tells whoever waits when the worker has nothing left to do.
    pub idle: worker::Idle,
}

/// Where drafting reads the calls observed in the window.
pub enum Observed {
    /// One process (SQLite): the whole window in memory, kept by ingest's
    /// folder; `progress` says how far it has folded what was acknowledged.
    Local {
        window: Arc<Mutex<Window>>,
        progress: Arc<FoldProgress>,
    },
    /// Several replicas (PostgreSQL): the shared buckets and the batches not
    /// yet folded into them, read for one agent at a time.
    Shared(Postgres),
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

    /// Read the agent's retained days with every batch acknowledged so far in them.
    pub async fn observed<T: Send + 'static>(
        &self,
        agent: &str,
        read: impl FnOnce(&Window) -> T + Send + 'static,
    ) -> Result<T, JobError> {
        match &self.observed {
            Observed::Local { window, progress } => {
                progress.caught_up(Duration::from_secs(30)).await;
                Ok(read(&window.lock().expect("window lock")))
            }
            Observed::Shared(db) => {
                let span = window::span(crate::clock::now(), self.retain_days());
                let rows = db.agent_rows(agent, window::day_of(span.start)).await?;
                let agent = agent.to_string();
                blocking(move || Ok(read(&ingest::agent_window(rows, &agent)?))).await
            }
        }
    }

    /// Distinct call shapes in the window (`None`: the store did not answer).
    pub async fn shapes_in_window(&self) -> Option<usize> {
        match &self.observed {
            Observed::Local { window, .. } => Some(window.lock().expect("window lock").shape_count()),
            Observed::Shared(db) => {
                let span = window::span(crate::clock::now(), self.retain_days());
                db.window_shapes(window::day_of(span.start))
                    .await
                    .ok()
                    .map(|n| n as usize)
            }
        }
    }

    /// How long a claim lasts without a heartbeat; `None`: one process needs none.
    pub fn lease(&self) -> Option<Duration> {
        match &*self.store {
            Store::Sqlite(_) => None,
            Store::Postgres(db) => Some(Duration::from_secs(db.lease_seconds())),
        }
    }

    /// Days of buckets kept: the drafting window, or longer to tell unused rules.
    pub fn retain_days(&self) -> u32 {
        let drafting = &self.settings.drafting;
        drafting.window_days.max(drafting.unused_after)
    }
}

/// The key that one replica at a time holds to act on an agent's proposal.
pub fn agent_key(agent: &str) -> String {
    format!("agent:{agent}")
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
