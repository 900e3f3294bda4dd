use super::inputs;
use super::InputError;
use crate::core::config::Preset;
use crate::core::draft::{draft, DraftError, DraftInput};
use crate::render;
use std::path::PathBuf;
use std::process::ExitCode;

/// Draft the Cedar rules that would allow every observed call.
///
/// Reads the policy repository (`policies/schema.cedarschema`,
/// `policies/agents/*.cedar`), leaves every rule in it alone, and drafts only the
/// gap: observed calls the repository does not allow yet. Prints the unified
/// diff of what would change, then the evidence for every new rule. Nothing is
/// written without --write.
///
/// Example: shadowdraft draft --observations calls.jsonl --catalogue tools.json --repo policy-repo
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Observation file: JSONL of calls (or of batches), or one ObservationBatch JSON.
    /// Repeat for several files; `-` reads standard input.
    #[arg(long = "observations", short = 'o', required = true, value_name = "FILE")]
    observations: Vec<PathBuf>,
    /// Tool catalogue: an MCP tools/list result or a JSON array of tools. Types
    /// arguments never observed and tells which tools are read-only.
    #[arg(long, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    /// Policy repository directory. Missing or empty: a new repository.
    #[arg(long, default_value = ".", value_name = "DIR")]
    repo: PathBuf,
    /// Write the changed files into the repository directory.
    #[arg(long)]
    write: bool,
    /// shadowdraft.yaml whose `drafting:` section sets the preset and thresholds.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override the configured preset.
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Print only the diff, not the evidence.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PresetArg {
    Tight,
    Balanced,
    Loose,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = inputs::drafting_config(args.config.as_deref())?;
    if let Some(p) = args.preset {
        config.preset = match p {
            PresetArg::Tight => Preset::Tight,
            PresetArg::Balanced => Preset::Balanced,
            PresetArg::Loose => Preset::Loose,
        };
    }
    let catalogue = args.catalogue.as_deref().map(inputs::catalogue).transpose()?;
    let summary = inputs::observations(&args.observations)?;
    let files = inputs::repo(&args.repo)?;
    let draft = draft(&DraftInput {
        files: &files,
        summary: &summary,
        catalogue: catalogue.as_ref(),
        config: &config,
    })
    .map_err(|e| match e {
        DraftError::Invariant(_) => anyhow::Error::new(e),
        other => InputError(other.to_string()).into(),
    })?;
    print!("{}", render::diff(&draft.changes));
    if !args.quiet {
        println!();
        print!("{}", render::evidence(&draft.evidence));
    }
    if args.write {
        inputs::write_changes(&args.repo, &draft.changes)?;
        eprintln!(
            "wrote {} file(s) with {} new rule(s) to {}",
            draft.changes.len(),
            draft.new_rules.len(),
            args.repo.display()
        );
    } else if !draft.changes.is_empty() {
        eprintln!(
            "dry run: {} file(s) would change; add --write to write them",
            draft.changes.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
