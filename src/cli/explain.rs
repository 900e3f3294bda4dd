use super::inputs;
use super::InputError;
use crate::core::check::{explain, load};
use crate::core::observation::{parse_call, Origin};
use std::path::PathBuf;
use std::process::ExitCode;

/// Explain the decision for one call.
///
/// Maps the call to its Cedar request exactly as enforcement does, decides it
/// against the agent's rules for the tool, prints the decision and the rules that
/// determined it, and for every other rule of the agent on that tool the
/// conditions that did not hold. Exits 0 when allowed, 1 when denied.
///
/// Example: shadowdraft explain policy-repo --call '{"agent":"billing-bot","tool":"send_payment","args":{"amount":120}}'
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy repository directory.
    #[arg(default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// The call as JSON: {"agent", "tool", "args", "server"?}.
    #[arg(long, value_name = "JSON")]
    call: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let origin = Origin {
        source: "--call".into(),
        line: None,
    };
    let call = parse_call(&origin, &args.call).map_err(|e| InputError(e.to_string()))?;
    let files = inputs::repo(&args.dir)?;
    let repo = load(&files).map_err(|problems| InputError(problems.join("\n")))?;
    let explanation = explain(&repo, &call);
    if let Some(why) = &explanation.unrepresentable {
        println!("DENY: the call does not fit the schema: {why}");
        return Ok(ExitCode::from(1));
    }
    if explanation.allowed {
        println!("ALLOW by {}", explanation.determining.join(", "));
    } else if explanation.determining.is_empty() {
        println!("DENY: no rule allows this call");
    } else {
        println!("DENY by {}", explanation.determining.join(", "));
    }
    for (id, why) in &explanation.misses {
        println!("  {id}: {why}");
    }
    Ok(if explanation.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
