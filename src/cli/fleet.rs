use anyhow::Context;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Generate a synthetic fleet to try shadowdraft on or to measure it.
///
/// Writes catalogue.json (an MCP tools/list result), train.jsonl (legitimate
/// calls with a few planted secrets), heldout.jsonl (legitimate calls from the
/// following days) and attacks.jsonl (the same agents and tools with hostile
/// arguments, each labelled with its kind in an `attack` field).
///
/// Example: shadowdraft fleet --agents 20 --calls-per-agent 500 --out fleet/
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value_t = 20)]
    agents: usize,
    #[arg(long, default_value_t = 500)]
    calls_per_agent: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::new(&FleetSpec {
        agents: args.agents,
        calls_per_agent: args.calls_per_agent,
        seed: args.seed,
    });
    fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let catalogue = serde_json::to_string_pretty(&fleet.catalogue())?;
    fs::write(args.out.join("catalogue.json"), catalogue + "\n")?;
    for (name, split) in [
        ("train", Split::Train),
        ("heldout", Split::HeldOut),
        ("attacks", Split::Attack),
    ] {
        let path = args.out.join(format!("{name}.jsonl"));
        let mut out = BufWriter::new(
            fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        for (label, mut call) in fleet.labelled(split) {
            if matches!(split, Split::Attack) {
                call["attack"] = serde_json::Value::from(label);
            }
            serde_json::to_writer(&mut out, &call)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    eprintln!(
        "wrote catalogue.json, train.jsonl, heldout.jsonl, attacks.jsonl to {}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
