use super::diff::{revision, ProofArgs};
use super::inputs;
use crate::core::check::check;
use crate::core::permits::{Review, Sides};
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
/// With --against REV it also proves, with an SMT solver, what DIR newly
/// permits over REV: it fails when DIR allows a call REV denies outside the
/// drafted rules' own scope (a new drafted rule as it is; a drafted rule a
/// person edited, as far as the agent, tool and server it names), e.g. a human
/// edit that widens another agent; and it reports rules that never allow
/// anything (always-denies) and rules a `forbid` shadows.
///
/// Example: shadowdraft check policy-repo --observations calls.jsonl
/// Example: shadowdraft check . --against main
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy repository directory.
    #[arg(default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// Observations to replay (repeatable; `-` for standard input).
    #[arg(long = "observations", short = 'o', value_name = "FILE")]
    observations: Vec<PathBuf>,
    /// Prove what DIR newly permits over this revision (e.g. `main`).
    #[arg(long, value_name = "REV")]
    against: Option<String>,
    #[command(flatten)]
    proof: ProofArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let files = inputs::repo(&args.dir)?;
    let summary = if args.observations.is_empty() {
        None
    } else {
        Some(inputs::observations(&args.observations)?)
    };
    let report = check(&files, summary.as_ref());
    let against = match &args.against {
        Some(rev) if report.problems.is_empty() => Some(against(&args, rev)?),
        _ => None,
    };
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
    let beyond_ok = against.as_ref().is_none_or(Review::nothing_beyond);
    if report.passed() && beyond_ok {
        println!(
            "ok: {} rules valid under strict validation{replayed}",
            report.rules
        );
        Ok(ExitCode::SUCCESS)
    } else {
        let beyond = match &against {
            Some(review) if !review.nothing_beyond() => format!(
                ", {} scope(s) newly permitted beyond the drafted rules, {} undecided",
                review.beyond.len(),
                review.timed_out.len() + review.errors.len()
            ),
            _ => String::new(),
        };
        println!(
            "failed: {} problem(s), {} validation error(s){replayed}{beyond}",
            report.problems.len(),
            report.validation_errors.len()
        );
        Ok(ExitCode::from(1))
    }
}

/// Prove what the directory newly permits over `rev`, print what matters, return the review.
fn against(args: &Args, rev: &str) -> anyhow::Result<Review> {
    let (prover, version) = args.proof.prover()?;
    let (base_label, base) = revision(&args.dir, Some(rev))?;
    let (_, head) = revision(&args.dir, None)?;
    let review = prover
        .review(Sides {
            base: &base,
            head: &head,
        })
        .value;
    let short = &base_label[..base_label.len().min(12)];
    for beyond in &review.beyond {
        println!(
            "beyond: {} is newly permitted outside the drafted rules' scope (vs {rev} {short})",
            beyond.scope
        );
        for example in &beyond.examples {
            println!("  e.g. {}", example.text);
        }
    }
    for what in &review.timed_out {
        println!("undecided: {what} (no answer within --timeout)");
    }
    for e in &review.errors {
        println!("undecided: {e}");
    }
    for id in &review.always_denies {
        println!("always-denies: {id} never allows anything");
    }
    for idle in &review.shadowed {
        println!(
            "shadowed: {} allows nothing a forbid does not deny ({})",
            idle.id,
            idle.shadowed_by.join(", ")
        );
    }
    for what in &review.unconfirmed {
        println!("BUG: a counterexample did not replay through the Cedar authorizer: {what}");
    }
    if review.nothing_beyond() {
        println!("proved ({version}): everything newly permitted over {rev} lies within the drafted rules");
    }
    Ok(review)
}
