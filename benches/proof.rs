//! What proving a pull request costs: the "What this PR newly permits" section
//! (`Prover::section`, the bot's one call) for one agent's draft against a
//! base that holds the rest of a synthetic fleet's rules, and the same for
//! `diff`. Two agents: one with 8 tools, and the fleet's largest (most rules).
//!
//! cargo bench --bench proof -- [agents] [calls-per-agent] [workers]
//!
//! Needs cvc5 on PATH (`apt-get install cvc5`). Setup (generating and drafting
//! the fleet) is not timed.

use serde_json::Value;
use shadowdraft::core::catalogue;
use shadowdraft::core::check::load;
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::observation::{parse_call, Call, Origin};
use shadowdraft::core::permits::{applied, Sides};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft::proof::{Limits, Prover, SolverCommand};
use shadowdraft_fleet::{Fleet, FleetSpec, Split};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn summary<'a>(calls: impl Iterator<Item = &'a Call>) -> Summary {
    let mut s = Summary::default();
    for c in calls {
        s.add(c, None);
    }
    s
}

fn drafted(files: &RepoFiles, summary: &Summary, catalogue: &catalogue::Catalogue) -> RepoFiles {
    let d = draft(&DraftInput {
        files,
        summary,
        catalogue: Some(catalogue),
        config: &DraftingConfig::default(),
    })
    .expect("draft");
    applied(files, &d.changes)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let spec = FleetSpec {
        agents: *args.first().unwrap_or(&400),
        calls_per_agent: *args.get(1).unwrap_or(&300),
        seed: 7,
    };
    let workers = *args.get(2).unwrap_or(&2);
    let solver = SolverCommand::default();
    let version = solver.version().unwrap_or_else(|e| panic!("{e}"));
    let fleet = Fleet::new(&spec);
    let origin = Origin {
        source: "fleet".into(),
        line: None,
    };
    let calls: Vec<Call> = fleet
        .calls(Split::Train)
        .map(|v: Value| parse_call(&origin, &v.to_string()).expect("fleet calls parse"))
        .collect();
    let catalogue = catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let mut tools: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in &calls {
        tools.entry(&c.agent).or_default().insert(&c.tool);
    }
    let everything = drafted(&RepoFiles::default(), &summary(calls.iter()), &catalogue);
    let all = load(&everything).expect("the fleet's draft loads");
    let rules_of = |agent: &str| {
        all.policies
            .rules
            .iter()
            .filter(|r| r.agent.as_deref() == Some(agent))
            .count()
    };
    let largest = tools
        .keys()
        .copied()
        .max_by_key(|a| (rules_of(a), std::cmp::Reverse(*a)))
        .expect("agents");
    let eight = tools.iter().find(|(_, t)| t.len() == 8).map(|(a, _)| *a);
    println!(
        "fleet: {} agents × {} calls, {} rules; {version}; {workers} workers",
        spec.agents,
        spec.calls_per_agent,
        all.policies.rules.len()
    );
    let mut agents = vec![("largest agent", largest)];
    match eight {
        Some(a) => agents.insert(0, ("an agent with 8 tools", a)),
        None => println!("(no agent of this fleet has exactly 8 tools)"),
    }
    for (what, agent) in agents {
        // main: every other agent's rules; the PR: this agent's draft on top.
        let base = drafted(
            &RepoFiles::default(),
            &summary(calls.iter().filter(|c| c.agent != agent)),
            &catalogue,
        );
        let head = drafted(
            &base,
            &summary(calls.iter().filter(|c| c.agent == agent)),
            &catalogue,
        );
        let prover = Prover {
            solver: solver.clone(),
            limits: Limits {
                timeout: Duration::from_secs(30),
                max_examples: 2,
                workers,
                budget: None,
            },
        };
        let started = Instant::now();
        let section = prover.section(&base, &head, None);
        let pr = started.elapsed();
        let (base_repo, head_repo) = (load(&base).expect("base"), load(&head).expect("head"));
        let started = Instant::now();
        let review = prover.review(Sides {
            base: &base_repo,
            head: &head_repo,
        });
        let reviewed = started.elapsed();
        let started = Instant::now();
        let diff = prover.diff(Sides {
            base: &base_repo,
            head: &head_repo,
        });
        let diffed = started.elapsed();
        let s = &review.stats;
        println!(
            "\n{what} `{agent}`: {} tools, {} rules drafted, {} scopes changed",
            tools[agent].len(),
            section.review.rules.len(),
            diff.value.len()
        );
        println!(
            "  PR section (load, solver probe, review): {:.2} s wall · nothing beyond: {} · {} undecided",
            pr.as_secs_f64(),
            section.nothing_beyond,
            section.review.timed_out.len() + section.review.errors.len()
        );
        println!(
            "  review: {} queries in {:.2} s wall · per query {:.1} ms mean (compile + solve), slowest {:.1} ms",
            s.queries,
            reviewed.as_secs_f64(),
            s.busy.as_secs_f64() * 1e3 / s.queries.max(1) as f64,
            s.slowest.as_secs_f64() * 1e3
        );
        let d = &diff.stats;
        println!(
            "  diff:   {} queries in {:.2} s wall · per query {:.1} ms mean, slowest {:.1} ms",
            d.queries,
            diffed.as_secs_f64(),
            d.busy.as_secs_f64() * 1e3 / d.queries.max(1) as f64,
            d.slowest.as_secs_f64() * 1e3
        );
    }
}
