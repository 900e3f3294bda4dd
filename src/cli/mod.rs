//! The command line: one file per subcommand, each with one args struct and one
//! function. Exit codes: 0 success, 1 the answer is "no" (a check failed, a call
//! is denied), 2 the input is wrong (a file that does not parse, a bad flag).

mod check;
mod diff;
mod draft;
mod enforce;
#[cfg(feature = "bot")]
mod example;
mod explain;
mod fleet;
mod init;
mod inputs;
mod mcp;
#[cfg(feature = "bot")]
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Drafts Cedar policy for AI agents from the tool calls they were observed
/// making, and proposes it for human review.
///
/// Agents run in shadow mode; enforcement nodes log every tool call. shadowdraft
/// turns those observations into the Cedar rules that would have allowed them,
/// generalising each argument only as far as the evidence supports, and shows
/// the evidence next to every rule. A person reviews and merges; nodes enforce.
#[derive(Debug, Parser)]
#[command(name = "shadowdraft", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[cfg(feature = "bot")]
    Serve(serve::Args),
    Init(init::Args),
    Draft(draft::Args),
    Check(check::Args),
    Diff(diff::Args),
    Explain(explain::Args),
    Fleet(fleet::Args),
    Enforce(enforce::Args),
    Mcp(mcp::Args),
}

pub use inputs::observations as read_summary;

/// An error that is the user's to fix: printed as is, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Structured logs on stderr for the long-running commands; `RUST_LOG` filters (default `info`).
fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Parse arguments, run the subcommand, map errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(feature = "bot")]
        Command::Serve(args) => serve::run(args),
        Command::Init(args) => init::run(args),
        Command::Draft(args) => draft::run(args),
        Command::Check(args) => check::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Fleet(args) => fleet::run(args),
        Command::Enforce(args) => enforce::run(args),
        Command::Mcp(args) => mcp::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Install the SIGINT and SIGTERM handlers now, so a signal that arrives
/// while the service starts is not lost, and wait for either in the future
/// returned. Call inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("install the SIGINT handler");
        async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
