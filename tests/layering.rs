//! The layering of `ARCHITECTURE.md`, kept true: every `crate::<part>` path in
//! `src/` must be an edge the table allows, the table must be acyclic, every
//! part of `src/` must have a row, and `core` must do no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Layers = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `part → parts it may import`, read from the table in ARCHITECTURE.md.
fn allowed() -> Layers {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut layers = Layers::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let part = backticked(cells[0]).pop().expect("a part name");
        let part = part.trim_end_matches('/').trim_end_matches(".rs").to_string();
        let imports = backticked(cells[cells.len() - 1]).into_iter().collect();
        layers.insert(part, imports);
    }
    assert!(
        layers.len() > 5,
        "the table of parts was not found in ARCHITECTURE.md"
    );
    layers
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The part a file of `src/` belongs to: its folder, or its own name.
fn part_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root().join("src")).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

/// The parts a file names as `crate::<part>`, outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `shadowdraft_crate::`
            }
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn every_import_is_an_edge_the_architecture_allows() {
    let layers = allowed();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut forbidden = Vec::new();
    for file in &files {
        let Some(part) = part_of(file) else { continue };
        let Some(may) = layers.get(&part) else {
            forbidden.push(format!(
                "{}: part `{part}` has no row in ARCHITECTURE.md",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        // A `crate::{a, b}` group would hide its parts from the check.
        if text.contains("crate::{") {
            forbidden.push(format!(
                "{}: a `crate::{{…}}` group; import each part by name",
                file.display()
            ));
        }
        for import in imports(&text) {
            if import != part && !may.contains(&import) {
                forbidden.push(format!("{}: `{part}` imports `{import}`", file.display()));
            }
        }
    }
    assert!(
        forbidden.is_empty(),
        "edges ARCHITECTURE.md does not allow:\n{}",
        forbidden.join("\n")
    );
}

#[test]
fn the_layers_have_no_cycle_and_name_only_known_parts() {
    let layers = allowed();
    for (part, may) in &layers {
        for import in may {
            assert!(
                layers.contains_key(import),
                "`{part}` may import `{import}`, which has no row"
            );
        }
    }
    // Repeatedly take the parts whose imports are all taken: a cycle leaves some behind.
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while placed.len() < layers.len() {
        let next: Vec<&str> = layers
            .iter()
            .filter(|(part, may)| {
                !placed.contains(part.as_str()) && may.iter().all(|m| placed.contains(m.as_str()))
            })
            .map(|(part, _)| part.as_str())
            .collect();
        assert!(
            !next.is_empty(),
            "a cycle among: {:?}",
            layers
                .keys()
                .filter(|p| !placed.contains(p.as_str()))
                .collect::<Vec<_>>()
        );
        placed.extend(next);
    }
}

#[test]
fn core_does_no_io() {
    let mut files = Vec::new();
    rust_files(&root().join("src/core"), &mut files);
    let io = [
        "std::fs",
        "std::net",
        "tokio",
        "git2",
        "SystemTime",
        "Instant::now",
        "std::env",
        "std::process",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests may read fixtures.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for word in io {
            if code
                .lines()
                .any(|l| !l.trim_start().starts_with("//") && l.contains(word))
            {
                found.push(format!("{}: {word}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "I/O in the pure core:\n{}", found.join("\n"));
}

#[test]
fn the_parser_sees_imports_in_all_their_forms() {
    let text =
        "use crate::core::x;\nlet a = crate::clock::now(); // crate::serve\nuse shadowdraft_crate::y;\n";
    let found = imports(text);
    assert_eq!(found, BTreeSet::from(["core".to_string(), "clock".to_string()]));
}
