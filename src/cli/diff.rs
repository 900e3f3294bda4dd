use super::{inputs, InputError};
use crate::core::check::{load, LoadedRepo};
use crate::core::permits::{ScopeDiff, Sides};
use crate::core::policies::RepoFiles;
use crate::proof::{Limits, Prover, SolverCommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What the head newly permits over the base, proved: per agent, tool and server.
///
/// For every (agent, tool, server) whose rules differ between the two revisions
/// of a policy repository, asks Cedar's symbolic compiler and an SMT solver
/// whether everything the head allows the base allows too (head ⇒ base) and the
/// other way round. Each direction that fails comes with up to --max-examples
/// calls one side allows and the other denies, each replayed through the Cedar
/// authorizer. `*` stands for the agents (or servers) no rule names. Needs an
/// SMT solver: cvc5 by default (see --solver).
///
/// Example: shadowdraft diff --base main policy-repo --json
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy repository directory (a git work tree).
    #[arg(default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// The revision compared against.
    #[arg(long, default_value = "main", value_name = "REV")]
    base: String,
    /// The revision compared; without it, the files in DIR as they are.
    #[arg(long, value_name = "REV")]
    head: Option<String>,
    /// Print one JSON object (DESIGN §10) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    proof: ProofArgs,
}

/// How the proofs are run; shared by `diff` and `check --against`.
#[derive(Debug, clap::Args)]
pub struct ProofArgs {
    /// Counterexample calls shown per direction that fails.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=50))]
    max_examples: u16,
    /// Seconds one query may take; past it the scope is reported as timed out.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// The SMT solver's command line (default: $SHADOWDRAFT_SOLVER, else `cvc5 --lang smt --strings-exp`).
    #[arg(long, value_name = "CMD")]
    solver: Option<String>,
}

impl ProofArgs {
    /// The prover these flags describe, with its solver's name and version;
    /// a solver that does not start is the user's to fix.
    pub fn prover(&self) -> anyhow::Result<(Prover, String)> {
        let line = self
            .solver
            .clone()
            .or_else(|| std::env::var("SHADOWDRAFT_SOLVER").ok());
        let solver = match line {
            None => SolverCommand::default(),
            Some(line) => SolverCommand::parse(&line)
                .ok_or_else(|| InputError("--solver: the command line is empty".into()))?,
        };
        let version = solver.version().map_err(InputError)?;
        let prover = Prover {
            solver,
            limits: Limits {
                timeout: Duration::from_secs(self.timeout),
                max_examples: usize::from(self.max_examples),
                ..Limits::default()
            },
        };
        Ok((prover, version))
    }
}

/// The repository at `rev`, or the work tree; its label is the commit or `worktree`.
pub fn revision(dir: &Path, rev: Option<&str>) -> anyhow::Result<(String, LoadedRepo)> {
    let (label, files): (String, RepoFiles) = match rev {
        Some(rev) => crate::git::files_at_revision(dir, rev).map_err(|e| InputError(format!("{e:#}")))?,
        None => ("worktree".into(), inputs::repo(dir)?),
    };
    let repo = load(&files).map_err(|problems| {
        InputError(format!(
            "{} ({label}) does not load:\n  {}",
            dir.display(),
            problems.join("\n  ")
        ))
    })?;
    Ok((label, repo))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (prover, version) = args.proof.prover()?;
    let (base_label, base) = revision(&args.dir, Some(&args.base))?;
    let (head_label, head) = revision(&args.dir, args.head.as_deref())?;
    let started = Instant::now();
    let proved = prover.diff(Sides {
        base: &base,
        head: &head,
    });
    if args.json {
        let out = serde_json::json!({"base": base_label, "head": head_label, "actions": proved.value});
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({base_label}) → {} ({head_label})",
        args.base,
        args.head.as_deref().unwrap_or("work tree")
    );
    if proved.value.is_empty() {
        println!("no rules differ");
    }
    for scope in &proved.value {
        print_scope(scope);
    }
    let s = &proved.stats;
    println!(
        "{} scope{} compared with {version}: {} queries in {:.1} s (slowest {:.2} s, {} timed out)",
        proved.value.len(),
        if proved.value.len() == 1 { "" } else { "s" },
        s.queries,
        started.elapsed().as_secs_f64(),
        s.slowest.as_secs_f64(),
        s.timed_out
    );
    Ok(ExitCode::SUCCESS)
}

fn direction(verdict: Option<bool>) -> &'static str {
    match verdict {
        Some(true) => "holds",
        Some(false) => "fails",
        None => "undecided",
    }
}

fn print_scope(scope: &ScopeDiff) {
    println!(
        "\n{} calling {} on {}: head ⇒ base {}, base ⇒ head {}{}",
        scope.agent,
        scope.tool,
        scope.server,
        direction(scope.head_implies_base),
        direction(scope.base_implies_head),
        if scope.timed_out { " (timed out)" } else { "" }
    );
    if let Some(e) = &scope.error {
        println!("  cannot compare: {e}");
    }
    for example in &scope.newly_permitted {
        println!("  newly permitted: {}", example.text);
    }
    for example in &scope.no_longer_permitted {
        println!("  no longer permitted: {}", example.text);
    }
    for value in &scope.unconfirmed {
        println!("  BUG: the solver's counterexample {value} does not replay through the Cedar authorizer");
    }
}
