use anyhow::Context;
use shadowdraft_fleet::{Corpus, Fleet, FleetSpec, Split};
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
/// With --corpus, writes a task corpus instead (the same four files; every
/// call carries a `task` number, attacks their kind): `assistant` (read-only
/// lookups over lists of names and queries) or `customer-service` (calls in
/// the customer's session, attacks with another customer's ids).
///
/// Example: shadowdraft fleet --agents 20 --calls-per-agent 500 --out fleet/
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write this task corpus instead of a fleet (--agents and --calls-per-agent do not apply).
    #[arg(long, value_enum)]
    corpus: Option<CorpusName>,
    #[arg(long, default_value_t = 20)]
    agents: usize,
    #[arg(long, default_value_t = 500)]
    calls_per_agent: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CorpusName {
    Assistant,
    CustomerService,
}

const SPLITS: [(&str, Split); 3] = [
    ("train", Split::Train),
    ("heldout", Split::HeldOut),
    ("attacks", Split::Attack),
];

fn writer(path: &std::path::Path) -> anyhow::Result<BufWriter<fs::File>> {
    Ok(BufWriter::new(
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    ))
}

fn write_corpus(corpus: &Corpus, out: &std::path::Path) -> anyhow::Result<()> {
    let catalogue = serde_json::to_string_pretty(&corpus.catalogue)?;
    fs::write(out.join("catalogue.json"), catalogue + "\n")?;
    for (name, split) in SPLITS {
        let mut w = writer(&out.join(format!("{name}.jsonl")))?;
        for (n, task) in corpus.tasks(split).enumerate() {
            for call in &task.calls {
                let mut call = call.clone();
                call["task"] = serde_json::Value::from(n);
                if split == Split::Attack {
                    call["attack"] = serde_json::Value::from(task.label);
                }
                serde_json::to_writer(&mut w, &call)?;
                w.write_all(b"\n")?;
            }
        }
        w.flush()?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    if let Some(name) = args.corpus {
        let corpus = match name {
            CorpusName::Assistant => Corpus::assistant(args.seed),
            CorpusName::CustomerService => Corpus::customer_service(args.seed),
        };
        write_corpus(&corpus, &args.out)?;
        eprintln!(
            "wrote the {} corpus (catalogue.json, train.jsonl, heldout.jsonl, attacks.jsonl) to {}",
            corpus.name,
            args.out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let fleet = Fleet::new(&FleetSpec {
        agents: args.agents,
        calls_per_agent: args.calls_per_agent,
        seed: args.seed,
    });
    let catalogue = serde_json::to_string_pretty(&fleet.catalogue())?;
    fs::write(args.out.join("catalogue.json"), catalogue + "\n")?;
    for (name, split) in SPLITS {
        let mut out = writer(&args.out.join(format!("{name}.jsonl")))?;
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
