use crate::config::Config;
use crate::serve;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run the bot: ingest observations, draft, and propose pull requests.
///
/// Reads shadowdraft.yaml (DESIGN §8): --config FILE, else ./shadowdraft.yaml
/// if present, else the embedded default. The embedded default keeps
/// everything under ./shadowdraft-data: a SQLite database, a local policy
/// repository (policy-repo.git) and a local forge that writes each proposal
/// to shadowdraft-data/proposals/<agent>.md and lists them at GET
/// /v1/proposals. It listens on 127.0.0.1:8080 and generates an ingest key.
///
/// Example: shadowdraft serve --example
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Post the bundled example fleet's observations to this service once it
    /// is up, then show the proposals it drafted (try the loop in seconds).
    #[arg(long)]
    example: bool,
    /// Listen on this address instead of the configured one (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (config, path) = Config::load(args.config.as_deref())?;
    let file = path.map_or_else(|| "(embedded default)".to_string(), |p| p.display().to_string());
    let mut settings = config
        .settings(&file, &|var| std::env::var(var).ok())
        .map_err(|e| super::InputError(e.to_string()))?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if args.example {
        // Draft as soon as the example arrives instead of waiting out the debounce.
        settings.drafting.debounce_seconds = 0;
    }
    super::init_logging();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let stop = super::shutdown_signal();
        let running = serve::start(settings).await?;
        println!("shadowdraft serving on http://{}", running.addr);
        if args.example {
            super::example::run(&running).await?;
        }
        stop.await;
        tracing::info!("shutting down: finishing in-flight work");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
