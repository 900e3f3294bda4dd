//! shadowdraft: drafts Cedar policy for AI agent fleets from observed tool
//! calls, and proposes it for human review.
//!
//! `core` decides and does no I/O. The edges carry out: `cli` (commands),
//! `server` (HTTP), `ingest` and `store` (durable observations), `worker`
//! (drafting jobs), `repo` (git2), `forge` and `github` (proposals), `auth`,
//! `render` (templates), `webhook` and `review` (the review loop), `config`
//! and `metrics`.

pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod enforce;
pub mod forge;
pub mod github;
pub mod ingest;
pub mod metrics;
pub mod render;
pub mod repo;
pub mod review;
pub mod rollout;
pub mod server;
pub mod store;
pub mod webhook;
pub mod worker;
