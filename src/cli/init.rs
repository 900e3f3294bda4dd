use crate::config::Config;
use crate::render::bootstrap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write the layout of a new policy repository.
///
/// Creates policies/schema.cedarschema, policies/agents/, .github/CODEOWNERS
/// (policies/** owned by review.security_team, each agent file by its owners
/// and the security team), .github/workflows/policy-check.yml (runs
/// `shadowdraft check` on every pull request) and REVIEWING.md, a short guide
/// for reviewers. Existing files are kept; use --force to overwrite them.
///
/// Example: shadowdraft init agent-policies --config shadowdraft.yaml
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository directory (created if missing).
    dir: PathBuf,
    /// shadowdraft.yaml with the review: section (owners, security team).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (config, path) = Config::load(args.config.as_deref())?;
    let file = path.map_or_else(|| "(embedded default)".to_string(), |p| p.display().to_string());
    let base = config
        .policy_repo
        .base_branch
        .clone()
        .unwrap_or_else(|| "main".into());
    let (files, missing) = bootstrap::files(&config.review, &base);
    if let Some(warning) = missing {
        eprintln!("warning: {file}: {warning}");
    }
    for (relative, text) in files {
        let target = args.dir.join(&relative);
        if target.exists() && !args.force {
            println!("kept     {relative} (exists)");
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text)?;
        println!("wrote    {relative}");
    }
    Ok(ExitCode::SUCCESS)
}
