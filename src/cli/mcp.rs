use crate::config::{check_mcp_server_name, Config, Upstream};
use crate::enforce::mcp::session::Ended;
use crate::enforce::mcp::{stdio, Gateway};
use crate::enforce::{self, Node, NodeSettings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Put an agent's MCP server behind the enforcement node (stdio).
///
/// Speaks MCP on stdin and stdout (logs go to stderr only) and spawns the
/// upstream MCP server CMD ARGS… as its child, so an agent's MCP
/// configuration replaces `"command": "npx", "args": [...]` with
/// `"command": "shadowdraft", "args": ["mcp", "--server", NAME, "--", "npx", ...]`.
///
/// Every tools/call is decided with the policy on the base branch of the
/// policy repository (principal: the agent; action: the tool; resource:
/// McpServer::"NAME"). Shadow mode (enforce.mode, or per agent in
/// enforce.agents) forwards the call and reports it to the bot
/// (enforce.report_url); enforce mode answers a denied call itself with a tool
/// result marked isError that names the decision, the reason and the policy
/// commit. The server's tools/list is reported as its catalogue. Everything
/// else (initialize, resources, prompts, notifications, progress,
/// cancellation) passes through unchanged. An upstream that exits is restarted.
///
/// Reads shadowdraft.yaml like `shadowdraft enforce` (--config FILE, else
/// ./shadowdraft.yaml if present, else the embedded default); give the config
/// an absolute data_dir, since MCP clients start servers in any directory.
///
/// Example: shadowdraft mcp --config /etc/shadowdraft.yaml --server files --agent support-bot -- npx -y @modelcontextprotocol/server-filesystem /srv/data
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The upstream server's name: the resource of every decision (and, without
    /// CMD, its key under enforce.mcp.servers).
    #[arg(long, value_name = "NAME")]
    server: String,
    /// The agent the calls are decided for; default enforce.mcp.agent.
    #[arg(long, value_name = "ID")]
    agent: Option<String>,
    /// The upstream MCP server to spawn; default enforce.mcp.servers.NAME.
    #[arg(last = true, value_name = "CMD ARGS")]
    command: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (config, path) = Config::load(args.config.as_deref())?;
    let file = path.map_or_else(|| "(embedded default)".to_string(), |p| p.display().to_string());
    let settings = NodeSettings::from_config(&config, &file, &|var| std::env::var(var).ok())
        .map_err(|e| super::InputError(e.to_string()))?;
    check_mcp_server_name(&args.server).map_err(|e| super::InputError(format!("--server: {e}")))?;
    let upstream = match (args.command.is_empty(), settings.mcp.servers.get(&args.server)) {
        (false, _) => Upstream::Command(args.command),
        (true, Some(configured)) => configured.clone(),
        (true, None) => {
            return Err(super::InputError(format!(
                "no upstream for server {:?}: give it after `--` (shadowdraft mcp --server {0} -- CMD ARGS…) \
                 or configure enforce.mcp.servers.{0} in {file}",
                args.server
            ))
            .into())
        }
    };
    let Some(agent) = args.agent.or_else(|| settings.mcp.agent.clone()) else {
        return Err(super::InputError(format!(
            "name the agent: --agent ID, or enforce.mcp.agent in {file}"
        ))
        .into());
    };
    if agent.is_empty() || agent.len() > 256 || agent.chars().any(char::is_control) {
        return Err(super::InputError("--agent: must be 1 to 256 printable characters".into()).into());
    }
    super::init_logging();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let signal = super::shutdown_signal();
        let node = Arc::new(tokio::task::spawn_blocking(move || Node::new(settings, true)).await??);
        // Decide the first call with the policy on the branch, not with none.
        let n = node.clone();
        let status = tokio::task::spawn_blocking(move || n.sync()).await?;
        if let Some(error) = &status.error {
            tracing::warn!(%error, "no policy loaded yet");
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = enforce::background(&node, &stopped, false);
        let gateway = Arc::new(Gateway {
            node: node.clone(),
            server: args.server,
            upstream,
        });
        let ended = tokio::select! {
            ended = stdio::serve(gateway, agent) => ended,
            _ = signal => Ok(Ended::ClientGone),
        };
        node.stopping.cancel();
        let _ = stop.send(true);
        for task in tasks {
            let _ = task.await;
        }
        // Report what this session saw before the process ends.
        let n = node.clone();
        tokio::task::spawn_blocking(move || n.feedback.flush()).await??;
        node.sender().drain(Duration::from_secs(3)).await;
        match ended {
            Ok(Ended::ClientGone) => Ok(ExitCode::SUCCESS),
            Ok(Ended::UpstreamFailed(why)) => {
                eprintln!("error: the upstream MCP server failed: {why}");
                Ok(ExitCode::from(1))
            }
            Err(why) => Err(super::InputError(why).into()),
        }
    })
}
