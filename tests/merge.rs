//! Summaries built from parts of the input and merged draft exactly what one
//! summary of the whole input drafts: the basis of reading input in parallel.

mod common;

use shadowdraft::core::config::DraftingConfig;
use shadowdraft::core::draft::{draft, DraftInput};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft_fleet::Split;

#[test]
fn merged_summaries_draft_the_same_as_one() {
    let fleet = common::fleet(8, 400, 11);
    let catalogue =
        shadowdraft::core::catalogue::parse("fleet", &fleet.catalogue().to_string()).expect("catalogue");
    let calls: Vec<_> = fleet.calls(Split::Train).map(|v| common::call(&v)).collect();
    let mut whole = Summary::default();
    calls.iter().for_each(|c| whole.add(c, None));

    // Three interleaved parts, merged in reverse order.
    let mut parts: Vec<Summary> = (0..3).map(|_| Summary::default()).collect();
    for (i, c) in calls.iter().enumerate() {
        parts[i % 3].add(c, None);
    }
    let mut merged = Summary::default();
    for part in parts.into_iter().rev() {
        merged.merge(part);
    }
    assert_eq!(merged.calls, whole.calls);
    assert_eq!(merged.shape_count(), whole.shape_count());

    let run = |summary: &Summary| {
        let d = draft(&DraftInput {
            files: &RepoFiles::default(),
            summary,
            catalogue: Some(&catalogue),
            config: &DraftingConfig::default(),
        })
        .expect("draft");
        (d.changes, shadowdraft::render::evidence(&d.evidence))
    };
    let (whole_changes, whole_evidence) = run(&whole);
    let (merged_changes, merged_evidence) = run(&merged);
    assert!(!whole_changes.is_empty());
    assert_eq!(merged_changes, whole_changes, "policies differ after merging");
    if merged_evidence != whole_evidence {
        let diff = similar::TextDiff::from_lines(whole_evidence.as_str(), merged_evidence.as_str());
        panic!(
            "evidence differs after merging:\n{}",
            diff.unified_diff().context_radius(0)
        );
    }
}
