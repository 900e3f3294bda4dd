//! The pure core: observations in, policy text, evidence and verdicts out.
//! Nothing here touches the filesystem, the network, git or a clock.

pub mod catalogue;
pub mod check;
pub mod classify;
pub mod commands;
pub mod config;
pub mod diagnostic;
pub mod draft;
pub mod evidence;
pub mod hex;
pub mod json;
pub mod ladder;
pub mod layout;
pub mod mapping;
pub mod names;
pub mod native;
pub mod observation;
pub mod permits;
pub mod plan;
pub mod policies;
pub mod projection;
pub mod replay;
pub mod review;
pub mod risk;
pub mod schema;
pub mod secrets;
pub mod spans;
pub mod summary;
pub mod syntax;
pub mod tokens;
pub mod types;
pub mod window;
