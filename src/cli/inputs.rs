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
    // A first line that holds a whole JSON value (whatever follows it, which
    // the line's own parse then names) means JSONL.
    let mut values = serde_json::Deserializer::from_str(first.trim()).into_iter::<serde::de::IgnoredAny>();
    if values.next().is_none_or(|value| value.is_err()) {
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

/// Bytes of whole lines handed to a worker at a time.
const BLOCK_BYTES: usize = 1 << 20;

/// Whole lines handed to a worker: the number of the first line, and the
/// bytes, ending with a line's end (or the input's).
struct Block {
    first_line: usize,
    bytes: Vec<u8>,
}

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

/// Fold every line of a block in; the first bad one is the error.
fn add_block(name: &str, block: &Block, summary: &mut Summary) -> Result<(), ObservationError> {
    for (line_no, line) in (block.first_line..).zip(block.bytes.split(|&b| b == b'\n')) {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text.trim(),
            Err(e) => {
                return Err(ObservationError {
                    origin: Origin {
                        source: name.to_string(),
                        line: Some(line_no),
                    },
                    field: "(line)".into(),
                    message: format!("not UTF-8: {e}"),
                })
            }
        };
        if !text.is_empty() {
            add_line(name, line_no, text, summary)?;
        }
    }
    Ok(())
}

/// Cut `reader`'s bytes into blocks of whole lines of about `block_bytes`
/// each, numbered from `first_line`, and hand each to `send` in order; stops
/// early when `send` returns false.
fn cut_blocks(
    mut reader: impl Read,
    first_line: usize,
    block_bytes: usize,
    mut send: impl FnMut(Block) -> bool,
) -> std::io::Result<()> {
    let mut line_no = first_line;
    let mut bytes = Vec::with_capacity(block_bytes);
    loop {
        let searched = bytes.len();
        if (&mut reader).take(block_bytes as u64).read_to_end(&mut bytes)? == 0 {
            if !bytes.is_empty() {
                send(Block {
                    first_line: line_no,
                    bytes,
                });
            }
            return Ok(());
        }
        // A line that does not end in this block waits for the next one.
        let Some(last) = memchr::memrchr(b'\n', &bytes[searched..]) else {
            continue;
        };
        let cut = searched + last + 1;
        let mut next = Vec::with_capacity(block_bytes + bytes.len() - cut);
        next.extend_from_slice(&bytes[cut..]);
        bytes.truncate(cut);
        let lines = memchr::memchr_iter(b'\n', &bytes).count();
        if !send(Block {
            first_line: line_no,
            bytes,
        }) {
            return Ok(());
        }
        line_no += lines;
        bytes = next;
    }
}

/// Parse and summarise JSONL on every core: this thread cuts the input into
/// blocks of whole lines that workers each fold into a summary of their own,
/// merged at the end (merging does not depend on how lines were split). The
/// first bad line, by line number, is the one reported.
fn read_lines_in_parallel(
    name: &str,
    first: String,
    first_line: usize,
    reader: impl Read,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let input = std::io::Cursor::new(first.into_bytes()).chain(reader);
    read_blocks(name, input, first_line, BLOCK_BYTES, workers, summary)
}

/// [`read_lines_in_parallel`] with the block size and the number of workers given.
fn read_blocks(
    name: &str,
    input: impl Read,
    first_line: usize,
    block_bytes: usize,
    workers: usize,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let (send, receive) = mpsc::sync_channel::<Block>(workers * 2);
    // The first worker to fail drops the receiver, so the reader stops too.
    let receive = Mutex::new(Some(receive));
    let results: Vec<(Summary, Option<ObservationError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut part = Summary::default();
                    // Blocks come in order: every block before a bad line's
                    // was taken before it, and is folded whole.
                    loop {
                        let block = match receive.lock().expect("reader alive").as_ref() {
                            Some(blocks) => blocks.recv(),
                            None => break,
                        };
                        let Ok(block) = block else {
                            break;
                        };
                        if let Err(e) = add_block(name, &block, &mut part) {
                            receive.lock().expect("reader alive").take();
                            return (part, Some(e));
                        }
                    }
                    (part, None)
                })
            })
            .collect();
        let read = cut_blocks(input, first_line, block_bytes, |block| send.send(block).is_ok());
        drop(send);
        let results = handles
            .into_iter()
            .map(|h| h.join().expect("reader worker panicked"))
            .collect();
        read.map(|()| results)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::draft::{draft, DraftInput};
    use shadowdraft_fleet::{Fleet, FleetSpec, Split};

    /// A small fleet's calls as JSONL, with CRLF line ends and blank lines mixed in.
    fn jsonl() -> String {
        let fleet = Fleet::new(&FleetSpec {
            agents: 4,
            calls_per_agent: 150,
            seed: 3,
        });
        let mut text = String::new();
        for (i, call) in fleet.calls(Split::Train).enumerate() {
            text.push_str(&call.to_string());
            text.push_str(match i % 7 {
                0 => "\r\n",
                3 => "\n\n",
                5 => "\n \r\n",
                _ => "\n",
            });
        }
        text
    }

    /// The reference: every line in turn, into one summary.
    fn line_by_line(name: &str, text: &str) -> Result<Summary, ObservationError> {
        let mut summary = Summary::default();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim();
            if !line.is_empty() {
                add_line(name, i + 1, line, &mut summary)?;
            }
        }
        Ok(summary)
    }

    fn in_blocks(text: &str, block_bytes: usize, workers: usize) -> anyhow::Result<Summary> {
        let mut summary = Summary::default();
        read_blocks("t.jsonl", text.as_bytes(), 1, block_bytes, workers, &mut summary)?;
        Ok(summary)
    }

    /// What a summary drafts to: the text users read, compared byte for byte.
    fn drafted(summary: &Summary) -> String {
        let d = draft(&DraftInput {
            files: &Default::default(),
            summary,
            catalogue: None,
            config: &Default::default(),
        })
        .expect("draft");
        format!(
            "{}\n{}",
            crate::render::diff(&d.changes),
            crate::render::evidence(&d.evidence)
        )
    }

    #[test]
    fn blocks_of_any_size_on_any_number_of_workers_summarise_as_line_by_line() {
        let text = jsonl();
        let expected = line_by_line("t.jsonl", &text).unwrap();
        let expected_draft = drafted(&expected);
        assert!(expected_draft.contains("permit"), "{expected_draft}");
        // 1 byte: every line is split across blocks; 97: most are, mid-line and mid-CRLF.
        for (block_bytes, workers) in [(1, 2), (97, 3), (4096, 2), (1 << 20, 1), (1 << 20, 2)] {
            let got = in_blocks(&text, block_bytes, workers).unwrap();
            assert_eq!(
                (got.calls, got.shape_count()),
                (expected.calls, expected.shape_count()),
                "{block_bytes} bytes, {workers} workers"
            );
            assert_eq!(
                drafted(&got),
                expected_draft,
                "{block_bytes} bytes, {workers} workers"
            );
        }
        // Without a final line end, the last line still counts.
        let trimmed = text.trim_end();
        let got = in_blocks(trimmed, 61, 2).unwrap();
        assert_eq!(got.calls, expected.calls);
    }

    #[test]
    fn the_first_bad_line_is_reported_by_its_number_whatever_the_split() {
        let text = jsonl();
        let mut lines: Vec<&str> = text.split('\n').collect();
        let (first_bad, later_bad) = (lines.len() / 3, lines.len() * 2 / 3);
        lines[first_bad] = r#"{"agent":"a","tool":5,"args":{}}"#;
        lines[later_bad] = "not json";
        let bad = lines.join("\n");
        let expected = line_by_line("t.jsonl", &bad).unwrap_err().to_string();
        assert!(
            expected.starts_with(&format!("t.jsonl:{}: field `tool`", first_bad + 1)),
            "{expected}"
        );
        for (block_bytes, workers) in [(1, 2), (113, 2), (4096, 3), (1 << 20, 2)] {
            let got = in_blocks(&bad, block_bytes, workers).unwrap_err().to_string();
            assert_eq!(got, expected, "{block_bytes} bytes, {workers} workers");
        }
        // A line that is not UTF-8 is named too.
        let mut bytes = text.clone().into_bytes();
        let at = text.len() / 2 + text[text.len() / 2..].find('{').unwrap() + 1;
        bytes[at] = 0xff;
        let line = text[..at].matches('\n').count() + 1;
        let mut summary = Summary::default();
        let e = read_blocks("t.jsonl", &bytes[..], 1, 64, 2, &mut summary).unwrap_err();
        let prefix = format!("t.jsonl:{line}: field `(line)`: not UTF-8");
        assert!(e.to_string().starts_with(&prefix), "{e}");
    }

    #[test]
    fn a_file_is_read_whole_after_its_first_line_is_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let text = format!("\n\r\n{}", jsonl());
        fs::write(&path, &text).unwrap();
        let got = observations(&[path]).unwrap();
        let expected = line_by_line("x", &text).unwrap();
        assert_eq!(drafted(&got), drafted(&expected));
    }
}
