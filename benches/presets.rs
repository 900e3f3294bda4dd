//! Held-out legitimate calls allowed and attack calls denied, per preset, on
//! the synthetic fleet; then, on the task corpora (`shadowdraft_fleet::Corpus`),
//! held-out tasks fully allowed and attack tasks denied, per attack kind. This
//! is how the defaults were chosen.
//!
//! cargo bench --bench presets -- [agents] [calls-per-agent] [seed]
//!
//! `SHOW_MISSES=<preset>` prints, for that preset, attacks let through and
//! held-out tasks denied.

use shadowdraft::core::catalogue;
#[path = "../tests/common/mod.rs"]
mod common;

use common::call;
use shadowdraft::core::check::{explain, load, Decider};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::observation::Call;
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft_fleet::{Corpus, Fleet, FleetSpec, Split};
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
    for preset in PRESETS {
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
        let show = showing(preset);
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
    for corpus in [Corpus::assistant(spec.seed), Corpus::customer_service(spec.seed)] {
        corpus_report(&corpus);
    }
}

const PRESETS: [Preset; 3] = [Preset::Tight, Preset::Balanced, Preset::Loose];

fn showing(preset: Preset) -> bool {
    std::env::var("SHOW_MISSES").is_ok_and(|p| p.eq_ignore_ascii_case(&format!("{preset:?}")))
}

/// Draft a corpus's training tasks, then decide its held-out tasks (allowed
/// when every call is) and its attack tasks (denied when any call is).
fn corpus_report(corpus: &Corpus) {
    let catalogue = catalogue::parse(corpus.name, &corpus.catalogue.to_string()).expect("catalogue");
    let mut summary = Summary::default();
    for v in corpus.calls(Split::Train) {
        summary.add(&call(v), None);
    }
    let task_calls = |split| -> Vec<(&str, Vec<Call>)> {
        corpus
            .tasks(split)
            .map(|t| (t.label, t.calls.iter().map(call).collect()))
            .collect()
    };
    let (heldout, attacks) = (task_calls(Split::HeldOut), task_calls(Split::Attack));
    let kinds: Vec<&str> = attacks
        .iter()
        .map(|(l, _)| *l)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!(
        "\ncorpus {}: {} training tasks ({} calls), {} held-out tasks, {} attack tasks\n",
        corpus.name,
        corpus.tasks(Split::Train).count(),
        corpus.calls(Split::Train).count(),
        heldout.len(),
        attacks.len()
    );
    println!(
        "| preset | rules | held-out tasks allowed | attack tasks denied | {} |",
        kinds.join(" | ")
    );
    println!("|---|---:|---:|---:|{}", "---:|".repeat(kinds.len()));
    for preset in PRESETS {
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
        let show = showing(preset);
        let mut allowed = 0;
        for (_, calls) in &heldout {
            match calls.iter().find(|c| !decider.allowed(c)) {
                None => allowed += 1,
                Some(c) if show => eprintln!(
                    "held-out denied: {} {} {}\n  {:?}",
                    c.agent,
                    c.tool,
                    serde_json::Value::Object(c.args.clone()),
                    explain(&repo, c).misses
                ),
                Some(_) => {}
            }
        }
        let mut per_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (label, calls) in &attacks {
            let denied = calls.iter().any(|c| !decider.allowed(c));
            let k = per_kind.entry(label).or_default();
            k.0 += 1;
            k.1 += denied as usize;
            if show && !denied {
                let c = &calls[0];
                eprintln!(
                    "attack allowed ({label}): {} {} {}",
                    c.agent,
                    c.tool,
                    serde_json::Value::Object(c.args.clone())
                );
            }
        }
        let denied: usize = per_kind.values().map(|k| k.1).sum();
        let cells: Vec<String> = kinds
            .iter()
            .map(|k| format!("{}/{}", per_kind[k].1, per_kind[k].0))
            .collect();
        println!(
            "| {preset:?} | {} | {allowed}/{} | {denied}/{} | {} |",
            d.new_rules.len(),
            heldout.len(),
            attacks.len(),
            cells.join(" | ")
        );
    }
}
