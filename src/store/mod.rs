//! The store: the only durable state of `shadowdraft serve`. Two backends
//! behind one [`Store`]: SQLite ([`sqlite`], the embedded default, one process)
//! and PostgreSQL ([`postgres`], several replicas sharing one database).
//!
//! - `journal`: accepted batches not yet folded into a snapshot. A batch is
//!   acknowledged only after its row is committed (WAL, synchronous=FULL).
//! - `buckets`: per agent and day, the summary of every folded batch
//!   ([`crate::core::window`]); a checkpoint writes them and empties the
//!   journal in one transaction, so storage grows with shapes, not calls.
//! - `idempotency`: keys of accepted batches, so a retried batch counts once.
//! - `jobs`: agents waiting to be redrafted; they survive restarts.
//! - `proposals`: what the bot last proposed per agent.
//! - `local_pulls`: the proposals of the local forge.
//! - `catalogues`: the latest `tools/list` of each MCP server, as gateways report it.
//!
//! Ingest writes and folds the journal on connections of its own (the
//! group-commit hot path calls [`sqlite::Sqlite`] synchronously, or
//! [`postgres::Postgres`] from its thread); everything else goes through
//! [`Store`], whose methods are async and dispatch to the backend. Adding a
//! method: write it in both backends and add its line to `dispatch!` below.

pub mod postgres;
pub mod sqlite;

pub use crate::core::review::ProposedRule;
pub use postgres::Postgres;
pub use sqlite::Sqlite;

use crate::core::draft::{Rejection, Rejections};
use std::sync::Mutex;

/// The bot's state, in one of two backends.
pub enum Store {
    /// One process: calls run inline, as fast as the file allows.
    Sqlite(Mutex<Sqlite>),
    /// Several replicas: a pool of connections to the shared database.
    Postgres(Postgres),
}

/// Each line becomes an async method of [`Store`] that calls the backend's
/// method of the same name and signature.
macro_rules! dispatch {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> anyhow::Result<$ret> {
                    match self {
                        Store::Sqlite(db) => db.lock().expect("store lock").$name($($arg),*),
                        Store::Postgres(db) => db.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

dispatch! {
    /// Take the job due first, if one is due by `now` and no other replica holds it.
    fn claim_job(&self, now: i64) -> Option<Job>;
    /// When the next job is due, if any is queued.
    fn next_job_due(&self) -> Option<i64>;
    /// The job ran. If batches arrived meanwhile it stays queued, due at `again_at`.
    fn finish_job(&self, job: &Job, again_at: i64) -> ();
    /// The job failed: it stays queued and is retried at `retry_at`.
    fn fail_job(&self, job: &Job, retry_at: i64, error: &str) -> ();
    /// Queue an agent (e.g. a command asked for a redraft).
    fn queue(&self, agent: &str, due_at: i64) -> ();
    /// The agent's queued job, its last error and who holds it.
    fn job(&self, agent: &str) -> Option<JobStatus>;
    fn queue_depth(&self) -> i64;
    /// Extend a claim taken with `claim_job` or `claim_event`; `false`: it was lost.
    fn renew(&self, claim: &Claim) -> bool;
    fn proposal(&self, agent: &str) -> Option<ProposalRecord>;
    fn save_proposal(&self, agent: &str, record: &ProposalRecord, now: i64) -> ();
    /// What the bot last proposed, per agent.
    fn proposals(&self) -> Vec<(String, ProposalRecord)>;
    /// The rules of the agent's proposal, replacing what was recorded.
    fn save_proposal_rules(&self, agent: &str, rules: &[ProposedRule]) -> ();
    fn proposal_rules(&self, agent: &str) -> Vec<ProposedRule>;
    /// The proposal is closed (merged or not): forget it.
    fn forget_proposal(&self, agent: &str) -> ();
    /// The agent whose open proposal is pull request `number`.
    fn agent_of_pull(&self, number: u64) -> Option<String>;
    /// Store a webhook delivery for the worker. `false`: this delivery was seen before.
    fn record_delivery(&self, delivery: &str, event: &str, payload: &[u8], now: i64) -> bool;
    /// Take the oldest delivery due by `now` that no other replica holds.
    fn claim_event(&self, now: i64) -> Option<Delivery>;
    /// When the next delivery is due, if any is queued.
    fn next_event_due(&self) -> Option<i64>;
    fn finish_event(&self, id: i64) -> ();
    fn fail_event(&self, id: i64, retry_at: i64, error: &str) -> ();
    fn rejections(&self, agent: &str) -> Rejections;
    fn reject(&self, agent: &str, fingerprint: &str, rejection: &Rejection) -> ();
    /// Forget the agent's rejections and ignored tools (a `redraft` command).
    fn forgive(&self, agent: &str) -> ();
    fn ignored_tools(&self, agent: &str) -> Vec<(String, String)>;
    fn ignore_tool(&self, agent: &str, tool: &str, reason: &str) -> ();
    fn promote(&self, agent: &str, rule: &ProposedRule, pull: u64, now: i64) -> ();
    /// Promoted rules: (agent, rule id, pull request).
    fn promotions(&self) -> Vec<(String, String, u64)>;
    /// The repositories an App installation serves (`None`: uninstalled).
    fn set_installation(&self, id: u64, repositories: Option<&[String]>, now: i64) -> ();
    fn installation_repositories(&self, id: u64) -> Vec<String>;
    /// Installations the bot heard of that list `repository` (`owner/name`).
    fn installations_serving(&self, repository: &str) -> usize;
    /// Keep `catalogue` (a `tools/list` result, as JSON text) as the latest of `server`.
    fn save_catalogue(&self, server: &str, catalogue: &str, source: &str, now: i64) -> ();
    /// The latest catalogue of each server: (server, `tools/list` JSON text), by server.
    fn catalogues(&self) -> Vec<(String, String)>;
    /// Nodes that reported since `since`: (node, policy commit, last seen).
    fn nodes(&self, since: i64) -> Vec<(String, String, i64)>;
    /// Follow a merged proposal until the nodes have loaded it.
    fn start_rollout(&self, pull: u64, agent: &str, merge_commit: &str) -> ();
    /// Merged proposals not yet reported as loaded: (pull, merge commit).
    fn pending_rollouts(&self) -> Vec<(u64, String)>;
    fn announce_rollout(&self, pull: u64) -> ();
    fn local_pulls(&self) -> Vec<LocalPull>;
    fn open_local_pull(&self, pull: &LocalPull) -> u64;
    fn update_local_pull(&self, number: u64, title: &str, body: &str, now: i64) -> ();
    fn local_comments(&self, number: u64) -> Vec<String>;
    fn add_local_comment(&self, number: u64, body: &str, now: i64) -> ();
    /// The database answers.
    fn health(&self) -> ();
}

impl Store {
    /// Hold `key` (e.g. `agent:<name>`) until the guard is dropped: no other
    /// replica acts on it meanwhile. Waits for a holder to finish, up to a limit.
    pub async fn lock(&self, key: &str) -> anyhow::Result<Held> {
        match self {
            // One process has one worker: nobody else to exclude.
            Store::Sqlite(_) => Ok(Held::Alone),
            Store::Postgres(db) => Ok(Held::Postgres(db.lock(key).await?)),
        }
    }

    /// Which backend, for `/healthz`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// A key held with [`Store::lock`]; dropping it lets others have it.
pub enum Held {
    Alone,
    Postgres(postgres::Lock),
}

/// What a replica may hold a lease on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The agent's drafting job.
    Job(String),
    /// A stored delivery, by id.
    Event(i64),
}

/// A queued job as `GET /v1/agents/{agent}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub job: Job,
    pub last_error: Option<String>,
    /// The replica running it now (PostgreSQL only).
    pub claimed_by: Option<String>,
}

/// A validated batch ready to be written.
pub struct Incoming {
    pub key: Option<String>,
    /// Set when `key` is: tells a retry from a key reused for other data.
    pub body_sha256: String,
    pub body: Vec<u8>,
    /// The agents of its calls, queued for drafting.
    pub agents: Vec<String>,
    /// The node that sent it and the policy commit it enforces, when it said.
    pub node: Option<(String, String)>,
    pub received_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this journal id.
    New(i64),
    /// The key was seen before with the same body: counted once.
    Duplicate,
    /// The key was seen before with a different body.
    KeyReused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub agent: String,
    pub due_at: i64,
    pub generation: i64,
    pub attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProposalRecord {
    pub number: u64,
    pub head: String,
    pub digest: String,
    pub url: String,
}

/// A GitHub webhook delivery waiting to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub delivery: String,
    pub event: String,
    pub payload: Vec<u8>,
    pub attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocalPull {
    pub number: u64,
    pub agent: String,
    pub branch: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}
