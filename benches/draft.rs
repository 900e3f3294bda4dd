//! Drafting at fleet scale: 1 M calls across 400 agents (the target:
//! under 2 s on 2 cores, memory bounded by distinct shapes, not calls).
//!
//! cargo bench --bench draft -- [agents] [calls-per-agent]
//!
//! The calls are generated to a JSONL file first (not timed), then read the way
//! `shadowdraft draft` reads them: parse + summarise, then draft against an
//! empty repository with replay and strict validation (in process, per phase).
//!
//! Then the whole command, as users run it: the release binary
//! (`CARGO_BIN_EXE_shadowdraft draft --observations F --catalogue C --repo EMPTY`,
//! output to /dev/null) against `jq -c . F > /dev/null` re-printing the same
//! file, each timed on its own in this run, and their ratio (issue 15: <= 0.25).

use shadowdraft::core::catalogue;
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_shadowdraft");

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Run a command with its output discarded; its wall time.
fn timed(command: &mut Command) -> Duration {
    let start = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (jq: apt-get install -y jq)"));
    assert!(status.success(), "{command:?} failed: {status}");
    start.elapsed()
}

/// The whole `shadowdraft draft` command against `jq -c .` on the same file.
fn against_jq(observations: &Path, catalogue: &Path, repo: &Path) {
    let draft = timed(
        Command::new(SERVER)
            .arg("draft")
            .arg("--observations")
            .arg(observations)
            .arg("--catalogue")
            .arg(catalogue)
            .arg("--repo")
            .arg(repo),
    );
    let jq = timed(Command::new("jq").arg("-c").arg(".").arg(observations));
    println!(
        "shadowdraft draft {:.2} s · jq -c . {:.2} s · ratio {:.2}x (target <= 0.25x)",
        draft.as_secs_f64(),
        jq.as_secs_f64(),
        draft.as_secs_f64() / jq.as_secs_f64()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let spec = FleetSpec {
        agents: *args.first().unwrap_or(&400),
        calls_per_agent: *args.get(1).unwrap_or(&2500),
        seed: 7,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("train.jsonl");
    let fleet = Fleet::new(&spec);
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for call in fleet.calls(Split::Train) {
            serde_json::to_writer(&mut out, &call).expect("write");
            out.write_all(b"\n").expect("write");
        }
    }
    let catalogue_path = dir.path().join("catalogue.json");
    std::fs::write(&catalogue_path, fleet.catalogue().to_string()).expect("write catalogue");
    let catalogue = catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rss_before = peak_rss_mib();

    let start = Instant::now();
    let summary = shadowdraft::cli::read_summary(std::slice::from_ref(&path)).expect("observations");
    let summarised = start.elapsed();
    let rss_summary = peak_rss_mib();
    let config = DraftingConfig::default();
    let files = RepoFiles::default();
    let d = draft(&DraftInput {
        files: &files,
        summary: &summary,
        catalogue: Some(&catalogue),
        config: &config,
    })
    .expect("draft");
    let total = start.elapsed();
    println!(
        "{} calls ({:.0} MB JSONL), {} agents: {} distinct shapes, {} rules",
        summary.calls,
        bytes as f64 / 1e6,
        spec.agents,
        summary.shape_count(),
        d.new_rules.len()
    );
    println!(
        "parse+summarise {:.2} s · draft+replay+validate {:.2} s · total {:.2} s · peak RSS {:.0} MiB (before reading: {:.0} MiB, after summarising: {:.0} MiB)",
        summarised.as_secs_f64(),
        (total - summarised).as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_mib(),
        rss_before,
        rss_summary
    );
    let empty_repo = dir.path().join("repo");
    against_jq(&path, &catalogue_path, &empty_repo);
}
