//! The SQLite store: the only durable state of `shadowdraft serve`.
//!
//! - `journal`: accepted batches not yet folded into a snapshot. A batch is
//!   acknowledged only after its row is committed (WAL, synchronous=FULL).
//! - `buckets`: per agent and day, the summary of every folded batch
//!   ([`crate::core::window`]); a checkpoint writes them and empties the
//!   journal in one transaction, so storage grows with shapes, not calls.
//! - `idempotency`: keys of accepted batches, so a retried batch counts once.
//! - `jobs`: agents waiting to be redrafted; they survive restarts.
//! - `proposals`: what the bot last proposed per agent.
//! - `local_pulls`: the proposals of the local forge.

use crate::core::window::BucketKey;
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS buckets (
    agent TEXT NOT NULL,
    day INTEGER NOT NULL,
    summary BLOB NOT NULL,
    PRIMARY KEY (agent, day)
);
CREATE TABLE IF NOT EXISTS jobs (
    agent TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS proposals (
    agent TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    head TEXT NOT NULL,
    digest TEXT NOT NULL,
    url TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS local_pulls (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    branch TEXT NOT NULL,
    base TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS local_comments (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

pub struct Store {
    conn: Connection,
}

/// A batch ready to be written: validated, with its agents known.
pub struct Incoming {
    pub key: Option<String>,
    pub body_sha256: String,
    pub body: Vec<u8>,
    pub agents: Vec<String>,
    pub received_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this journal id.
    New(i64),
    /// The key was seen before with the same body: counted once.
    Duplicate,
    /// The key was seen before with a different body.
    KeyReused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub agent: String,
    pub due_at: i64,
    pub generation: i64,
    pub attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProposalRecord {
    pub number: u64,
    pub head: String,
    pub digest: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocalPull {
    pub number: u64,
    pub agent: String,
    pub branch: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL with a full sync on commit: an acknowledged batch survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot create the tables in {}", path.display()))?;
        Ok(Store { conn })
    }

    /// Write batches in one transaction, and queue a redraft of their agents
    /// `debounce` seconds out (an agent already queued keeps its time).
    pub fn append(&mut self, batches: &[Incoming], debounce: i64) -> anyhow::Result<Vec<Appended>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(batches.len());
        {
            let mut seen = tx.prepare_cached("SELECT body_sha256 FROM idempotency WHERE key = ?1")?;
            let mut remember = tx.prepare_cached(
                "INSERT INTO idempotency (key, body_sha256, received_at) VALUES (?1, ?2, ?3)",
            )?;
            let mut journal = tx.prepare_cached("INSERT INTO journal (received_at, body) VALUES (?1, ?2)")?;
            let mut queue = tx.prepare_cached(
                "INSERT INTO jobs (agent, due_at, generation) VALUES (?1, ?2, 1)
                 ON CONFLICT (agent) DO UPDATE SET generation = generation + 1",
            )?;
            for batch in batches {
                if let Some(key) = &batch.key {
                    let known: Option<String> = seen.query_row([key], |r| r.get(0)).optional()?;
                    if let Some(sha) = known {
                        out.push(if sha == batch.body_sha256 {
                            Appended::Duplicate
                        } else {
                            Appended::KeyReused
                        });
                        continue;
                    }
                    remember.execute(params![key, batch.body_sha256, batch.received_at])?;
                }
                journal.execute(params![batch.received_at, batch.body])?;
                let id = tx.last_insert_rowid();
                for agent in &batch.agents {
                    queue.execute(params![agent, batch.received_at + debounce])?;
                }
                out.push(Appended::New(id));
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Batches not yet in a snapshot, oldest first: `(id, received_at, body)`.
    pub fn journal(&self) -> anyhow::Result<Vec<(i64, i64, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, received_at, body FROM journal ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Snapshots of days from `first_day` on.
    pub fn buckets(&self, first_day: i64) -> anyhow::Result<Vec<(BucketKey, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT agent, day, summary FROM buckets WHERE day >= ?1")?;
        let rows = stmt.query_map([first_day], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Persist changed buckets and drop the journal rows they now contain, atomically.
    pub fn checkpoint(
        &mut self,
        folded_through: i64,
        changed: &[(BucketKey, Vec<u8>)],
        first_day: i64,
        keys_before: i64,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO buckets (agent, day, summary) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent, day) DO UPDATE SET summary = excluded.summary",
            )?;
            for ((agent, day), blob) in changed {
                put.execute(params![agent, day, blob])?;
            }
        }
        tx.execute("DELETE FROM journal WHERE id <= ?1", [folded_through])?;
        tx.execute("DELETE FROM buckets WHERE day < ?1", [first_day])?;
        tx.execute("DELETE FROM idempotency WHERE received_at < ?1", [keys_before])?;
        tx.commit()?;
        Ok(())
    }

    /// The job due first, if any.
    pub fn next_job(&self) -> anyhow::Result<Option<Job>> {
        Ok(self
            .conn
            .query_row(
                "SELECT agent, due_at, generation, attempts FROM jobs ORDER BY due_at, agent LIMIT 1",
                [],
                |r| {
                    Ok(Job {
                        agent: r.get(0)?,
                        due_at: r.get(1)?,
                        generation: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// The job ran. If batches arrived meanwhile it stays queued, due at `again_at`.
    pub fn finish_job(&self, job: &Job, again_at: i64) -> anyhow::Result<()> {
        let done = self.conn.execute(
            "DELETE FROM jobs WHERE agent = ?1 AND generation = ?2",
            params![job.agent, job.generation],
        )?;
        if done == 0 {
            self.conn.execute(
                "UPDATE jobs SET due_at = ?2, attempts = 0, last_error = NULL WHERE agent = ?1",
                params![job.agent, again_at],
            )?;
        }
        Ok(())
    }

    /// The job failed: it stays queued and is retried at `retry_at`.
    pub fn fail_job(&self, job: &Job, retry_at: i64, error: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs SET due_at = ?2, attempts = attempts + 1, last_error = ?3 WHERE agent = ?1",
            params![job.agent, retry_at, error],
        )?;
        Ok(())
    }

    /// Queue an agent now (e.g. a command asked for a redraft).
    pub fn queue(&self, agent: &str, due_at: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO jobs (agent, due_at, generation) VALUES (?1, ?2, 1)
             ON CONFLICT (agent) DO UPDATE SET generation = generation + 1, due_at = MIN(due_at, ?2)",
            params![agent, due_at],
        )?;
        Ok(())
    }

    pub fn queue_depth(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))?)
    }

    pub fn proposal(&self, agent: &str) -> anyhow::Result<Option<ProposalRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT number, head, digest, url FROM proposals WHERE agent = ?1",
                [agent],
                |r| {
                    Ok(ProposalRecord {
                        number: r.get::<_, i64>(0)? as u64,
                        head: r.get(1)?,
                        digest: r.get(2)?,
                        url: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn save_proposal(&self, agent: &str, record: &ProposalRecord, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO proposals (agent, number, head, digest, url, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (agent) DO UPDATE SET number = ?2, head = ?3, digest = ?4, url = ?5, updated_at = ?6",
            params![agent, record.number as i64, record.head, record.digest, record.url, now],
        )?;
        Ok(())
    }

    /// What the bot last proposed, per agent.
    pub fn proposals(&self) -> anyhow::Result<Vec<(String, ProposalRecord)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT agent, number, head, digest, url FROM proposals ORDER BY agent")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                ProposalRecord {
                    number: r.get::<_, i64>(1)? as u64,
                    head: r.get(2)?,
                    digest: r.get(3)?,
                    url: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn local_pulls(&self) -> anyhow::Result<Vec<LocalPull>> {
        let mut stmt = self.conn.prepare(
            "SELECT number, agent, branch, base, title, body, state, created_at, updated_at
             FROM local_pulls ORDER BY number",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(LocalPull {
                number: r.get::<_, i64>(0)? as u64,
                agent: r.get(1)?,
                branch: r.get(2)?,
                base: r.get(3)?,
                title: r.get(4)?,
                body: r.get(5)?,
                state: r.get(6)?,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn open_local_pull(&self, pull: &LocalPull) -> anyhow::Result<u64> {
        self.conn.execute(
            "INSERT INTO local_pulls (agent, branch, base, title, body, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6)",
            params![
                pull.agent,
                pull.branch,
                pull.base,
                pull.title,
                pull.body,
                pull.created_at
            ],
        )?;
        Ok(self.conn.last_insert_rowid() as u64)
    }

    pub fn update_local_pull(&self, number: u64, title: &str, body: &str, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE local_pulls SET title = ?2, body = ?3, updated_at = ?4 WHERE number = ?1",
            params![number as i64, title, body, now],
        )?;
        Ok(())
    }

    pub fn local_comments(&self, number: u64) -> anyhow::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM local_comments WHERE number = ?1 ORDER BY id")?;
        let rows = stmt.query_map([number as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_local_comment(&self, number: u64, body: &str, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO local_comments (number, body, created_at) VALUES (?1, ?2, ?3)",
            params![number as i64, body, now],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(key: Option<&str>, body: &str) -> Incoming {
        Incoming {
            key: key.map(str::to_string),
            body_sha256: format!("sha-{body}"),
            body: body.as_bytes().to_vec(),
            agents: vec!["a".into()],
            received_at: 100,
        }
    }

    #[test]
    fn a_retried_batch_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let first = store.append(&[incoming(Some("k1"), "x")], 30).unwrap();
        assert!(matches!(first[0], Appended::New(_)));
        let again = store
            .append(
                &[
                    incoming(Some("k1"), "x"),
                    incoming(Some("k1"), "y"),
                    incoming(None, "z"),
                ],
                30,
            )
            .unwrap();
        assert_eq!(again[0], Appended::Duplicate);
        assert_eq!(again[1], Appended::KeyReused);
        assert!(matches!(again[2], Appended::New(_)));
        assert_eq!(store.journal().unwrap().len(), 2);
    }

    #[test]
    fn jobs_survive_reopening_and_new_batches_keep_them_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut store = Store::open(&path).unwrap();
            store.append(&[incoming(None, "x")], 30).unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let job = store.next_job().unwrap().expect("queued");
        assert_eq!((job.agent.as_str(), job.due_at), ("a", 130));
        // A batch arrives while the job runs: finishing it must not drop the new work.
        store.append(&[incoming(None, "y")], 30).unwrap();
        store.finish_job(&job, 500).unwrap();
        let again = store.next_job().unwrap().expect("still queued");
        assert_eq!(again.due_at, 500);
        store.finish_job(&again, 900).unwrap();
        assert_eq!(store.queue_depth().unwrap(), 0);
    }

    #[test]
    fn checkpoint_moves_the_journal_into_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let ids = store
            .append(&[incoming(None, "x"), incoming(None, "y")], 0)
            .unwrap();
        let Appended::New(first) = ids[0] else { panic!() };
        store
            .checkpoint(first, &[(("a".into(), 3), vec![1, 2])], 2, 0)
            .unwrap();
        assert_eq!(store.journal().unwrap().len(), 1);
        assert_eq!(
            store.buckets(0).unwrap(),
            vec![(("a".to_string(), 3), vec![1, 2])]
        );
        store.checkpoint(first, &[], 4, 0).unwrap();
        assert!(store.buckets(0).unwrap().is_empty());
    }
}
