//! Drafted files are exactly what cedar-policy-formatter would write, for every
//! preset: shadowdraft lays rules out itself and must not drift from it.

mod common;

use shadowdraft::core::config::Preset;
use shadowdraft::core::policies::RepoFiles;

#[test]
fn drafted_files_are_fixed_points_of_the_cedar_formatter() {
    let config = cedar_policy_formatter::Config {
        line_width: 100,
        indent_width: 2,
    };
    let mut files_checked = 0;
    for (seed, preset) in [(1, Preset::Tight), (2, Preset::Balanced), (3, Preset::Loose)] {
        let d = common::draft_fleet(common::fleet(12, 300, seed), &RepoFiles::default(), preset);
        for (path, change) in &d.draft.changes {
            if !path.ends_with(".cedar") {
                continue;
            }
            let formatted = cedar_policy_formatter::policies_str_to_pretty(&change.after, &config).unwrap();
            similar_asserts(&change.after, &formatted, path);
            files_checked += 1;
        }
    }
    assert!(files_checked >= 30, "only {files_checked} files checked");
}

fn similar_asserts(ours: &str, formatter: &str, path: &str) {
    if ours != formatter {
        let diff = similar::TextDiff::from_lines(ours, formatter);
        panic!(
            "{path} is not formatted:\n{}",
            diff.unified_diff().context_radius(2)
        );
    }
}
