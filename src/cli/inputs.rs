//! Loading what the commands read: observations, catalogues, configuration and
//! the policy repository on disk, and writing a draft back.

use super::InputError;
use crate::core::catalogue::{self, Catalogue};
use crate::core::config::DraftingConfig;
use crate::core::draft::FileChange;
use crate::core::observation::{parse_batch, parse_line, Batch, Line, ObservationError, Origin};
use crate::core::policies::{RepoFiles, AGENTS_DIR, SCHEMA_PATH};
use crate::core::summary::Summary;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

/// Fold observation files (or `-` for standard input) into one summary.
/// `.jsonl` streams line by line, so memory follows distinct shapes, not file size.
pub fn observations(paths: &[PathBuf]) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    for path in paths {
        let name = path.display().to_string();
        let reader: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(fs::File::open(path).with_context(|| format!("cannot read observations {name}"))?)
        };
        read_observations(&name, BufReader::with_capacity(1 << 20, reader), &mut summary)?;
    }
    Ok(summary)
}

fn read_observations(name: &str, mut reader: impl BufRead, summary: &mut Summary) -> anyhow::Result<()> {
    let mut first = String::new();
    let mut line_no = 0;
    // Skip blank lines to find out whether this is JSONL or one pretty-printed batch.
    while first.trim().is_empty() {
        first.clear();
        if reader.read_line(&mut first)? == 0 {
            return Ok(());
        }
        line_no += 1;
    }
    if serde_json::from_str::<serde_json::Value>(first.trim()).is_err() {
        let mut rest = String::new();
        reader.read_to_string(&mut rest)?;
        let origin = Origin {
            source: name.to_string(),
            line: None,
        };
        let batch = parse_batch(&origin, &(first + &rest)).map_err(|e| InputError(e.to_string()))?;
        add_batch(&batch, summary);
        return Ok(());
    }
    read_lines_in_parallel(name, first, line_no, reader, summary)
}

/// Lines handed to a worker: the number of the first, and the lines.
type Chunk = (usize, Vec<String>);
const CHUNK_LINES: usize = 2048;

fn add_line(name: &str, line_no: usize, text: &str, summary: &mut Summary) -> Result<(), ObservationError> {
    let origin = Origin {
        source: name.to_string(),
        line: Some(line_no),
    };
    match parse_line(&origin, text)? {
        Line::Call(call) => summary.add(&call, None),
        Line::Batch(batch) => add_batch(&batch, summary),
    }
    Ok(())
}

fn add_batch(batch: &Batch, summary: &mut Summary) {
    let source = Some(batch.source.as_str()).filter(|s| !s.is_empty());
    for call in &batch.calls {
        summary.add(call, source);
    }
    for call in &batch.calls_without_args {
        summary.add_without_args(call);
    }
}

/// Parse and summarise JSONL on every core: one reader hands chunks of lines
/// to workers that each keep a summary, merged at the end (merging does not
/// depend on how lines were split). The first bad line, by line number, is
/// the one reported.
fn read_lines_in_parallel(
    name: &str,
    first: String,
    first_line: usize,
    mut reader: impl BufRead,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let (send, receive) = mpsc::sync_channel::<Chunk>(workers * 2);
    let receive = Mutex::new(receive);
    let failed = AtomicBool::new(false);
    let results: Vec<(Summary, Option<ObservationError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut part = Summary::default();
                    loop {
                        let Ok((start, lines)) = receive.lock().expect("reader alive").recv() else {
                            return (part, None);
                        };
                        for (i, line) in lines.iter().enumerate() {
                            let text = line.trim();
                            if text.is_empty() {
                                continue;
                            }
                            if let Err(e) = add_line(name, start + i, text, &mut part) {
                                failed.store(true, Ordering::Relaxed);
                                return (part, Some(e));
                            }
                        }
                    }
                })
            })
            .collect();
        let mut chunk = (first_line, vec![first]);
        let mut line_no = first_line;
        let mut read_error = None;
        while !failed.load(Ordering::Relaxed) {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    line_no += 1;
                    chunk.1.push(line);
                    if chunk.1.len() == CHUNK_LINES {
                        let next = (line_no + 1, Vec::with_capacity(CHUNK_LINES));
                        if send.send(std::mem::replace(&mut chunk, next)).is_err() {
                            break;
                        }
                    }
                }
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        if !chunk.1.is_empty() {
            let _ = send.send(chunk);
        }
        drop(send);
        let results = handles
            .into_iter()
            .map(|h| h.join().expect("reader worker panicked"))
            .collect();
        if let Some(e) = read_error {
            return Err(e);
        }
        Ok(results)
    })?;
    let mut errors = Vec::new();
    for (part, error) in results {
        summary.merge(part);
        errors.extend(error);
    }
    match errors.into_iter().min_by_key(|e| e.origin.line) {
        Some(e) => Err(InputError(e.to_string()).into()),
        None => Ok(()),
    }
}

/// Read a tool catalogue.
pub fn catalogue(path: &Path) -> anyhow::Result<Catalogue> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read catalogue {}", path.display()))?;
    Ok(catalogue::parse(&path.display().to_string(), &text).map_err(|e| InputError(e.to_string()))?)
}

/// The `drafting:` section of a `shadowdraft.yaml`; other sections are left to the service.
pub fn drafting_config(path: Option<&Path>) -> anyhow::Result<DraftingConfig> {
    let Some(path) = path else {
        return Ok(DraftingConfig::default());
    };
    let text = fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
    let config: crate::config::Config =
        serde_yaml::from_str(&text).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    Ok(config.drafting)
}

/// The policy files of a repository directory; a missing directory is an empty repository.
pub fn repo(dir: &Path) -> anyhow::Result<RepoFiles> {
    let mut files = RepoFiles::default();
    let schema = dir.join(SCHEMA_PATH);
    if schema.exists() {
        files.schema =
            Some(fs::read_to_string(&schema).with_context(|| format!("cannot read {}", schema.display()))?);
    }
    let agents = dir.join(AGENTS_DIR);
    if agents.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&agents)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().expect("listed").to_string_lossy().to_string();
            let text =
                fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.agents.insert(format!("{AGENTS_DIR}/{name}"), text);
        }
    }
    Ok(files)
}

/// Write changed files under `dir`, each through a temporary file and a rename.
pub fn write_changes(dir: &Path, changes: &BTreeMap<String, FileChange>) -> anyhow::Result<()> {
    for (relative, change) in changes {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let temporary = path.with_extension("shadowdraft-tmp");
        fs::write(&temporary, &change.after)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        fs::rename(&temporary, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
