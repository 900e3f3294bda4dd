//! The stdio front: `shadowdraft mcp` speaks MCP on its own stdin and stdout
//! (logs go to stderr only) and spawns the upstream server as its child.

use super::session::{Ended, Identity, Session};
use super::{connection_id, intercept, Gateway};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::RoleServer;
use std::sync::Arc;

/// Serve the agent on this process's stdin and stdout until it closes them.
/// The session attribute `mcp_session` is a random id of this connection.
pub async fn serve(gateway: Arc<Gateway>, agent: String) -> Result<Ended, String> {
    let max = gateway.node.settings.mcp.max_message_bytes;
    let (read, write) = rmcp::transport::stdio_pipes();
    let transport = AsyncRwTransport::<RoleServer, _, _>::new(read, write).with_max_line_length(max);
    let identity = Identity {
        agent,
        session: intercept::session(None, &connection_id()),
    };
    Ok(Session::open(gateway, identity, transport)?.run().await)
}
