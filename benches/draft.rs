//! Drafting at fleet scale: 1 M calls across 400 agents (the target:
//! under 2 s on 2 cores, memory bounded by distinct shapes, not calls).
//!
//! cargo bench --bench draft -- [agents] [calls-per-agent]
//!
//! The calls are generated to a JSONL file first (not timed), then read the way
//! `shadowdraft draft` reads them: parse + summarise, then draft against an
//! empty repository with replay and strict validation.

use shadowdraft::core::catalogue;
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::io::Write;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
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
    let catalogue = catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rss_before = peak_rss_mib();

    let start = Instant::now();
    let summary = shadowdraft::cli::read_summary(&[path]).expect("observations");
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
}
