//! What reviewers read, kept as reviewed files: the policies drafted for the
//! bundled example fleet (`policies/`) and their evidence
//! (`tests/snapshots/example-evidence.md`). Any change to drafting shows up
//! here as a diff. Regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test snapshots`.

use shadowdraft::core::catalogue;
use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::policies::RepoFiles;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compare(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual);
        panic!(
            "{} changed (UPDATE_SNAPSHOTS=1 to accept):\n{}",
            path.display(),
            diff.unified_diff().context_radius(2)
        );
    }
}

#[test]
fn example_fleet_drafts_the_committed_policies_and_evidence() {
    let fleet = root().join("examples/fleet");
    let catalogue_text = std::fs::read_to_string(fleet.join("catalogue.json")).unwrap();
    let catalogue = catalogue::parse("catalogue.json", &catalogue_text).unwrap();
    let summary = shadowdraft::cli::read_summary(&[fleet.join("train.jsonl")]).unwrap();
    let d = draft(&DraftInput {
        files: &RepoFiles::default(),
        summary: &summary,
        catalogue: Some(&catalogue),
        config: &DraftingConfig::default(),
    })
    .unwrap();
    assert!(d.changes.len() >= 7, "schema and six agent files");
    for (path, change) in &d.changes {
        compare(&root().join(path), &change.after);
    }
    let committed = std::fs::read_dir(root().join("policies/agents")).unwrap().count();
    assert_eq!(
        committed,
        d.changes.len() - 1,
        "no stale agent files in policies/"
    );
    compare(
        &root().join("tests/snapshots/example-evidence.md"),
        &shadowdraft::render::evidence(&d.evidence),
    );
}
