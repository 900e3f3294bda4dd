//! Held-out legitimate calls allowed and attack calls denied, per preset, on
//! the synthetic fleet. This is how the defaults were chosen.
//!
//! cargo bench --bench presets -- [agents] [calls-per-agent] [seed]

use shadowdraft::core::catalogue;
#[path = "../tests/common/mod.rs"]
mod common;

use common::call;
use shadowdraft::core::check::{load, Decider};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::observation::Call;
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::collections::BTreeMap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let number = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let spec = FleetSpec {
        agents: number(0, 100),
        calls_per_agent: number(1, 1000),
        seed: number(2, 7) as u64,
    };
    let fleet = Fleet::new(&spec);
    let catalogue = catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let mut summary = Summary::default();
    for v in fleet.calls(Split::Train) {
        summary.add(&call(&v), None);
    }
    let heldout: Vec<(&str, Call)> = fleet
        .labelled(Split::HeldOut)
        .map(|(l, v)| (l, call(&v)))
        .collect();
    let attacks: Vec<(&str, Call)> = fleet
        .labelled(Split::Attack)
        .map(|(l, v)| (l, call(&v)))
        .collect();
    println!(
        "fleet: {} agents x {} train calls (seed {}), {} held-out, {} attacks",
        spec.agents,
        spec.calls_per_agent,
        spec.seed,
        heldout.len(),
        attacks.len()
    );
    println!("| preset | rules | held-out allowed | novel-but-benign allowed | attacks denied |");
    println!("|---|---:|---:|---:|---:|");
    let mut per_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for preset in [Preset::Tight, Preset::Balanced, Preset::Loose] {
        let config = DraftingConfig {
            preset,
            ..DraftingConfig::default()
        };
        let files = RepoFiles::default();
        let d = draft(&DraftInput {
            files: &files,
            summary: &summary,
            catalogue: Some(&catalogue),
            config: &config,
        })
        .expect("draft");
        let drafted = common::applied(&files, &d);
        let repo = load(&drafted).expect("drafted repository loads");
        let mut decider = Decider::new(&repo);
        let (mut legit, mut legit_ok, mut novel, mut novel_ok) = (0, 0, 0, 0);
        for (label, c) in &heldout {
            let ok = decider.allowed(c);
            if label.starts_with("novel") {
                novel += 1;
                novel_ok += ok as usize;
            } else {
                legit += 1;
                legit_ok += ok as usize;
            }
        }
        let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let show = std::env::var("SHOW_MISSES").is_ok_and(|p| p.eq_ignore_ascii_case(&format!("{preset:?}")));
        let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
        for (label, c) in &attacks {
            let k = kinds.entry(label).or_default();
            k.0 += 1;
            let denied = !decider.allowed(c);
            k.1 += denied as usize;
            let n = shown.entry(label).or_default();
            if show && !denied && *n < 3 {
                *n += 1;
                eprintln!(
                    "allowed {label}: {} {} {}",
                    c.agent,
                    c.tool,
                    serde_json::Value::Object(c.args.clone())
                );
            }
        }
        let denied: usize = kinds.values().map(|k| k.1).sum();
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        println!(
            "| {preset:?} | {} | {:.1}% ({legit_ok}/{legit}) | {:.1}% ({novel_ok}/{novel}) | {:.1}% ({denied}/{}) |",
            d.new_rules.len(),
            pct(legit_ok, legit),
            pct(novel_ok, novel),
            pct(denied, attacks.len()),
            attacks.len()
        );
        for (kind, (n, ok)) in kinds {
            per_kind
                .entry(kind)
                .or_default()
                .push(format!("{:.1}%", pct(ok, n)));
        }
    }
    println!("\n| attack kind | tight | balanced | loose |");
    println!("|---|---:|---:|---:|");
    for (kind, cells) in per_kind {
        println!("| {kind} | {} |", cells.join(" | "));
    }
}
