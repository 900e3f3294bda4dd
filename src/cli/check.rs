use super::inputs;
use crate::core::check::check;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a policy repository: parse, validate strictly, replay observations.
///
/// Parses policies/schema.cedarschema and every policies/agents/*.cedar, runs
/// Cedar's strict validator over them, and, given observations, replays every
/// distinct call through the Cedar authorizer. Exits 1 naming each problem and
/// each denied call with the rule that came closest and the condition that
/// failed; 0 when everything passes. Run it in CI on every policy PR.
///
/// Example: shadowdraft check policy-repo --observations calls.jsonl
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy repository directory.
    #[arg(default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// Observations to replay (repeatable; `-` for standard input).
    #[arg(long = "observations", short = 'o', value_name = "FILE")]
    observations: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let files = inputs::repo(&args.dir)?;
    let summary = if args.observations.is_empty() {
        None
    } else {
        Some(inputs::observations(&args.observations)?)
    };
    let report = check(&files, summary.as_ref());
    for p in &report.problems {
        println!("error: {p}");
    }
    for e in &report.validation_errors {
        println!("invalid: {e}");
    }
    for d in &report.denied {
        println!(
            "denied: {} calling {} on {} ({} call{}) {}\n  why: {}",
            d.agent,
            d.tool,
            d.server,
            d.calls,
            if d.calls == 1 { "" } else { "s" },
            d.args,
            d.why
        );
    }
    let replayed = if summary.is_some() {
        format!(
            ", {} distinct call shapes ({} calls) replayed, {} denied",
            report.shapes_replayed,
            report.calls_replayed,
            report.denied.len()
        )
    } else {
        String::new()
    };
    if report.passed() {
        println!(
            "ok: {} rules valid under strict validation{replayed}",
            report.rules
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "failed: {} problem(s), {} validation error(s){replayed}",
            report.problems.len(),
            report.validation_errors.len()
        );
        Ok(ExitCode::from(1))
    }
}
