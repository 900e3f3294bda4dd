//! shadowdraft: drafts Cedar policy for AI agent fleets from observed tool
//! calls, and proposes it for human review.
//!
//! The folders are the architecture (`ARCHITECTURE.md` is the map, and
//! `tests/layering.rs` keeps it true):
//!
//! - `core` decides and does no I/O: observations in; rules, evidence,
//!   verdicts and plans out.
//! - `config` holds every configuration type, checked into settings.
//! - `git`, `auth`, `http`, `render` and `clock` are edges both sides use.
//! - `enforce` is the enforcement node; it never imports the bot.
//! - `store`, `forge`, `bot` and `serve` are the bot (cargo feature `bot`).
//! - `cli` dispatches the commands.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod enforce;
pub mod git;
pub mod http;
pub mod proof;
pub mod render;

#[cfg(feature = "bot")]
pub mod bot;
#[cfg(feature = "bot")]
pub mod forge;
#[cfg(feature = "bot")]
pub mod serve;
#[cfg(feature = "bot")]
pub mod store;
