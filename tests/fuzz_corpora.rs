//! The fuzz corpora (`fuzz/corpus/<target>/`: seeds, and what AFL++ found and
//! minimised, crashes included once fixed) replayed through every fuzz target
//! on every `cargo test`, without AFL: each file through its own target and
//! through every other one (a webhook payload is a fine hostile observation).

#[allow(dead_code)]
#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::Instant;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus() {
    for (name, _) in targets::TARGETS {
        assert!(corpus(name).len() >= 2, "fuzz/corpus/{name} needs seeds");
    }
}

#[test]
fn every_corpus_file_goes_through_every_target_without_a_crash() {
    let started = Instant::now();
    let files: Vec<(String, Vec<u8>)> = targets::TARGETS
        .iter()
        .flat_map(|(name, _)| corpus(name))
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    for (target, run) in targets::TARGETS {
        for (path, data) in &files {
            let outcome = std::panic::catch_unwind(|| run(data));
            assert!(outcome.is_ok(), "target {target} crashed on {path}");
        }
    }
    eprintln!(
        "replayed {} corpus files through {} targets in {:?}",
        files.len(),
        targets::TARGETS.len(),
        started.elapsed()
    );
}
