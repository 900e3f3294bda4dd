//! The store: the only durable state of `shadowdraft serve` (SQLite, the
//! embedded default).
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

mod sqlite;

pub use crate::core::review::ProposedRule;
pub use sqlite::Store;

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
