//! The MCP gateway (DESIGN §9): the node in the agent's call path.
//!
//! The agent speaks MCP to the gateway, over stdio (`shadowdraft mcp`,
//! [`stdio`]) or streamable HTTP (`/mcp/<server>` on `shadowdraft enforce`,
//! [`http`]); the gateway speaks MCP to the upstream server, a child process
//! it spawns or a URL. Messages pass as the official Rust SDK (`rmcp`) parses
//! them, one session per agent connection ([`session`]). Every `tools/call`
//! is decided by the node's decision path (`enforce::decide`: the same
//! mapping, cache and commit as AuthZEN): shadow mode forwards and records
//! it, enforce mode answers a denied call itself with `isError: true`. Each
//! `tools/list` result is reported to the bot as the server's catalogue.

pub mod http;
pub mod intercept;
pub mod session;
pub mod stdio;
mod upstream;

use super::Node;
use crate::config::Upstream;
use std::sync::Arc;

/// The gateway in front of one upstream server.
pub struct Gateway {
    pub node: Arc<Node>,
    /// The server's name: the resource of every decision (`McpServer::"<server>"`).
    pub server: String,
    pub upstream: Upstream,
}

/// A random id for a connection that has no MCP session id of its own (stdio).
pub fn connection_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    crate::core::hex::encode(&bytes)
}
