//! shadowdraft: drafts Cedar policy for AI agent fleets from observed tool
//! calls, and proposes it for human review.
//!
//! `core` decides and does no I/O; `cli`, `render` and `config` are the edges.

pub mod cli;
pub mod config;
pub mod core;
pub mod fleet;
pub mod github;
pub mod render;
