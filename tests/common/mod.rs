//! Helpers shared by the integration tests: a synthetic fleet drafted in memory.

#![allow(dead_code)]

pub mod external;
pub mod fake_github;
pub mod git_bridge;
pub mod http;
pub mod otel;
pub mod postgres;
pub mod replicas;
pub mod rig;

use shadowdraft::core::catalogue::{self, Catalogue};
use shadowdraft::core::config::{DraftingConfig, Preset};
use shadowdraft::core::draft::{draft, Draft, DraftInput};
use shadowdraft::core::observation::{parse_call, Call, Origin};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft_fleet::{Fleet, FleetSpec, Split};

pub fn call(value: &serde_json::Value) -> Call {
    let origin = Origin {
        source: "fleet".into(),
        line: None,
    };
    parse_call(&origin, &value.to_string()).expect("fleet calls are valid")
}

pub struct Drafted {
    pub fleet: Fleet,
    pub catalogue: Catalogue,
    pub summary: Summary,
    pub draft: Draft,
}

pub fn fleet(agents: usize, calls_per_agent: usize, seed: u64) -> Fleet {
    Fleet::new(&FleetSpec {
        agents,
        calls_per_agent,
        seed,
    })
}

/// Draft a fleet's training calls against `files` with `preset`.
pub fn draft_fleet(fleet: Fleet, files: &RepoFiles, preset: Preset) -> Drafted {
    let catalogue = catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let mut summary = Summary::default();
    for v in fleet.calls(Split::Train) {
        summary.add(&call(&v), None);
    }
    let config = DraftingConfig {
        preset,
        ..DraftingConfig::default()
    };
    let draft = draft(&DraftInput {
        files,
        summary: &summary,
        catalogue: Some(&catalogue),
        config: &config,
    })
    .expect("draft");
    Drafted {
        fleet,
        catalogue,
        summary,
        draft,
    }
}

/// The repository after applying a draft's changes to `files`.
pub fn applied(files: &RepoFiles, draft: &Draft) -> RepoFiles {
    let mut out = files.clone();
    for (path, change) in &draft.changes {
        if path.ends_with(".cedarschema") {
            out.schema = Some(change.after.clone());
        } else {
            out.agents.insert(path.clone(), change.after.clone());
        }
    }
    out
}
