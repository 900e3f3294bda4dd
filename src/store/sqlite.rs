//! The SQLite implementation of the store: the embedded default, one process.

use super::{Appended, Claim, Delivery, Incoming, Job, JobStatus, LocalPull, ProposalRecord, ProposedRule};
use crate::core::draft::{Rejection, Rejections};
use crate::core::window::BucketKey;
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
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
CREATE TABLE IF NOT EXISTS proposal_rules (
    agent TEXT NOT NULL,
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (agent, id)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    delivery TEXT NOT NULL,
    event TEXT NOT NULL,
    payload BLOB NOT NULL,
    due_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS rejections (
    agent TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    calls INTEGER NOT NULL,
    reason TEXT NOT NULL,
    permanent INTEGER NOT NULL,
    PRIMARY KEY (agent, fingerprint)
);
CREATE TABLE IF NOT EXISTS ignored_tools (
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (agent, tool)
);
CREATE TABLE IF NOT EXISTS promotions (
    agent TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pull INTEGER NOT NULL,
    merged_at INTEGER NOT NULL,
    PRIMARY KEY (agent, rule_id)
);
CREATE TABLE IF NOT EXISTS installations (
    id INTEGER PRIMARY KEY,
    repositories TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    source TEXT PRIMARY KEY,
    policy_commit TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
    pull INTEGER PRIMARY KEY,
    agent TEXT NOT NULL,
    merge_commit TEXT NOT NULL,
    announced INTEGER NOT NULL DEFAULT 0
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
CREATE TABLE IF NOT EXISTS catalogues (
    server TEXT PRIMARY KEY,
    catalogue TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS local_comments (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// `PRAGMA auto_vacuum = INCREMENTAL`.
const INCREMENTAL: i64 = 2;

pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub fn open(path: &Path) -> anyhow::Result<Sqlite> {
        let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Raw batches hold secrets until they are folded: deleted rows are
        // zeroed, not left in free pages, and free pages go back to the OS.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let auto_vacuum: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
        if auto_vacuum != INCREMENTAL {
            conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
            // A database made before this takes the setting only through a VACUUM.
            conn.execute_batch("VACUUM")?;
        }
        // WAL with a full sync on commit: an acknowledged batch survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot create the tables in {}", path.display()))?;
        Ok(Sqlite { conn })
    }

    /// Write batches in one transaction and queue their agents for drafting
    /// `debounce` seconds out (an agent already queued keeps its time, so a
    /// busy agent is drafted at most once per debounce).
    pub fn append(&mut self, batches: &[Incoming], debounce: i64) -> anyhow::Result<Vec<Appended>> {
        // IMMEDIATE: take the write lock up front, so a concurrent writer makes
        // this wait (busy timeout) instead of failing the read-then-write.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(batches.len());
        let mut agents: Vec<(&str, i64)> = Vec::new();
        {
            let mut seen = tx.prepare_cached("SELECT body_sha256 FROM idempotency WHERE key = ?1")?;
            let mut remember = tx.prepare_cached(
                "INSERT INTO idempotency (key, body_sha256, received_at) VALUES (?1, ?2, ?3)",
            )?;
            let mut journal = tx.prepare_cached("INSERT INTO journal (received_at, body) VALUES (?1, ?2)")?;
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
                out.push(Appended::New(tx.last_insert_rowid()));
                if let Some((source, commit)) = &batch.node {
                    tx.prepare_cached(
                        "INSERT INTO nodes (source, policy_commit, seen_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (source) DO UPDATE SET policy_commit = ?2, seen_at = ?3",
                    )?
                    .execute(params![source, commit, batch.received_at])?;
                }
                agents.extend(
                    batch
                        .agents
                        .iter()
                        .map(|a| (a.as_str(), batch.received_at + debounce)),
                );
            }
            // Each agent once per group, at its earliest due time.
            agents.sort_unstable();
            agents.dedup_by(|a, b| a.0 == b.0);
            let mut queue = tx.prepare_cached(
                "INSERT INTO jobs (agent, due_at, generation) VALUES (?1, ?2, 1)
                 ON CONFLICT (agent) DO UPDATE SET generation = generation + 1",
            )?;
            for (agent, due_at) in agents {
                queue.execute(params![agent, due_at])?;
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        // Move everything into the database file and empty the WAL, so the raw
        // batches just deleted (zeroed by secure_delete) survive nowhere, then
        // return the free pages.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.execute_batch("PRAGMA incremental_vacuum")?;
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

    /// The job due first, if it is due by `now`. One process runs one worker,
    /// so taking it needs no lease.
    pub fn claim_job(&self, now: i64) -> anyhow::Result<Option<Job>> {
        Ok(self.next_job()?.filter(|job| job.due_at <= now))
    }

    /// When the next job is due, if any is queued.
    pub fn next_job_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT MIN(due_at) FROM jobs", [], |r| r.get(0))?)
    }

    /// One process holds every claim it takes.
    pub fn renew(&self, _claim: &Claim) -> anyhow::Result<bool> {
        Ok(true)
    }

    pub fn health(&self) -> anyhow::Result<()> {
        self.conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
        Ok(())
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

    /// The agent's queued job and the error of its last attempt, if it is queued.
    pub fn job(&self, agent: &str) -> anyhow::Result<Option<JobStatus>> {
        Ok(self
            .conn
            .query_row(
                "SELECT agent, due_at, generation, attempts, last_error FROM jobs WHERE agent = ?1",
                [agent],
                |r| {
                    let job = Job {
                        agent: r.get(0)?,
                        due_at: r.get(1)?,
                        generation: r.get(2)?,
                        attempts: r.get(3)?,
                    };
                    Ok(JobStatus {
                        job,
                        last_error: r.get(4)?,
                        claimed_by: None,
                    })
                },
            )
            .optional()?)
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

    /// The rules of the agent's proposal, replacing what was recorded.
    pub fn save_proposal_rules(&mut self, agent: &str, rules: &[ProposedRule]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM proposal_rules WHERE agent = ?1", [agent])?;
        for rule in rules {
            tx.execute(
                "INSERT INTO proposal_rules (agent, id, fingerprint, calls) VALUES (?1, ?2, ?3, ?4)",
                params![agent, rule.id, rule.fingerprint, rule.calls as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn proposal_rules(&self, agent: &str) -> anyhow::Result<Vec<ProposedRule>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, fingerprint, calls FROM proposal_rules WHERE agent = ?1 ORDER BY id")?;
        let rows = stmt.query_map([agent], |r| {
            Ok(ProposedRule {
                id: r.get(0)?,
                fingerprint: r.get(1)?,
                calls: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The proposal is closed (merged or not): forget it.
    pub fn forget_proposal(&self, agent: &str) -> anyhow::Result<()> {
        self.conn
            .execute("DELETE FROM proposals WHERE agent = ?1", [agent])?;
        self.conn
            .execute("DELETE FROM proposal_rules WHERE agent = ?1", [agent])?;
        Ok(())
    }

    /// The agent whose open proposal is pull request `number`.
    pub fn agent_of_pull(&self, number: u64) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT agent FROM proposals WHERE number = ?1",
                [number as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Store a webhook delivery for the worker. `false`: this delivery was seen before.
    pub fn record_delivery(
        &mut self,
        delivery: &str,
        event: &str,
        payload: &[u8],
        now: i64,
    ) -> anyhow::Result<bool> {
        let tx = self.conn.transaction()?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO deliveries (id, received_at) VALUES (?1, ?2)",
            params![delivery, now],
        )? == 1;
        if new {
            tx.execute(
                "INSERT INTO events (delivery, event, payload, due_at) VALUES (?1, ?2, ?3, ?4)",
                params![delivery, event, payload, now],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// The oldest event due by `now`.
    pub fn claim_event(&self, now: i64) -> anyhow::Result<Option<Delivery>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, delivery, event, payload, attempts FROM events WHERE due_at <= ?1 ORDER BY id LIMIT 1",
                [now],
                |r| {
                    Ok(Delivery {
                        id: r.get(0)?,
                        delivery: r.get(1)?,
                        event: r.get(2)?,
                        payload: r.get(3)?,
                        attempts: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// When the next event is due, if any is queued.
    pub fn next_event_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT MIN(due_at) FROM events", [], |r| r.get(0))?)
    }

    pub fn finish_event(&self, id: i64) -> anyhow::Result<()> {
        self.conn.execute("DELETE FROM events WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn fail_event(&self, id: i64, retry_at: i64, error: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE events SET due_at = ?2, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
            params![id, retry_at, error],
        )?;
        Ok(())
    }

    pub fn rejections(&self, agent: &str) -> anyhow::Result<Rejections> {
        let mut stmt = self
            .conn
            .prepare("SELECT fingerprint, calls, reason, permanent FROM rejections WHERE agent = ?1")?;
        let rows = stmt.query_map([agent], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Rejection {
                    calls: r.get::<_, i64>(1)? as u64,
                    reason: r.get(2)?,
                    permanent: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn reject(&self, agent: &str, fingerprint: &str, rejection: &Rejection) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO rejections (agent, fingerprint, calls, reason, permanent) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (agent, fingerprint) DO UPDATE SET calls = ?3, reason = ?4, permanent = MAX(permanent, ?5)",
            params![agent, fingerprint, rejection.calls as i64, rejection.reason, rejection.permanent],
        )?;
        Ok(())
    }

    /// Forget the agent's rejections and ignored tools (a `redraft` command).
    pub fn forgive(&self, agent: &str) -> anyhow::Result<()> {
        self.conn
            .execute("DELETE FROM rejections WHERE agent = ?1", [agent])?;
        self.conn
            .execute("DELETE FROM ignored_tools WHERE agent = ?1", [agent])?;
        Ok(())
    }

    pub fn ignored_tools(&self, agent: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT tool, reason FROM ignored_tools WHERE agent = ?1 ORDER BY tool")?;
        let rows = stmt.query_map([agent], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn ignore_tool(&self, agent: &str, tool: &str, reason: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO ignored_tools (agent, tool, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent, tool) DO UPDATE SET reason = ?3",
            params![agent, tool, reason],
        )?;
        Ok(())
    }

    pub fn promote(&self, agent: &str, rule: &ProposedRule, pull: u64, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO promotions (agent, rule_id, fingerprint, pull, merged_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (agent, rule_id) DO UPDATE SET fingerprint = ?3, pull = ?4, merged_at = ?5",
            params![agent, rule.id, rule.fingerprint, pull as i64, now],
        )?;
        Ok(())
    }

    /// Promoted rules: (agent, rule id, pull request).
    pub fn promotions(&self) -> anyhow::Result<Vec<(String, String, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT agent, rule_id, pull FROM promotions ORDER BY agent, rule_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The repositories an App installation serves (`None`: uninstalled).
    pub fn set_installation(&self, id: u64, repositories: Option<&[String]>, now: i64) -> anyhow::Result<()> {
        match repositories {
            Some(repos) => self.conn.execute(
                "INSERT INTO installations (id, repositories, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET repositories = ?2, updated_at = ?3",
                params![id as i64, repos.join("\n"), now],
            )?,
            None => self
                .conn
                .execute("DELETE FROM installations WHERE id = ?1", [id as i64])?,
        };
        Ok(())
    }

    pub fn installation_repositories(&self, id: u64) -> anyhow::Result<Vec<String>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT repositories FROM installations WHERE id = ?1",
                [id as i64],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default())
    }

    /// Installations the bot heard of that list `repository` (`owner/name`).
    pub fn installations_serving(&self, repository: &str) -> anyhow::Result<usize> {
        let mut stmt = self.conn.prepare("SELECT repositories FROM installations")?;
        let lists = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut serving = 0;
        for list in lists {
            serving += list?.lines().any(|r| r.eq_ignore_ascii_case(repository)) as usize;
        }
        Ok(serving)
    }

    /// Nodes that reported since `since`: (node, policy commit, last seen).
    pub fn nodes(&self, since: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT source, policy_commit, seen_at FROM nodes WHERE seen_at >= ?1 ORDER BY source",
        )?;
        let rows = stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keep `catalogue` (a `tools/list` result, as JSON text) as the latest of `server`.
    pub fn save_catalogue(
        &self,
        server: &str,
        catalogue: &str,
        source: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO catalogues (server, catalogue, source, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (server) DO UPDATE SET catalogue = ?2, source = ?3, updated_at = ?4",
            params![server, catalogue, source, now],
        )?;
        Ok(())
    }

    /// The latest catalogue of each server: (server, `tools/list` JSON text), by server.
    pub fn catalogues(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT server, catalogue FROM catalogues ORDER BY server")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Follow a merged proposal until the nodes have loaded it.
    pub fn start_rollout(&self, pull: u64, agent: &str, merge_commit: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO rollouts (pull, agent, merge_commit) VALUES (?1, ?2, ?3)",
            params![pull as i64, agent, merge_commit],
        )?;
        Ok(())
    }

    /// Merged proposals not yet reported as loaded: (pull, merge commit).
    pub fn pending_rollouts(&self) -> anyhow::Result<Vec<(u64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT pull, merge_commit FROM rollouts WHERE announced = 0 ORDER BY pull")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn announce_rollout(&self, pull: u64) -> anyhow::Result<()> {
        self.conn
            .execute("UPDATE rollouts SET announced = 1 WHERE pull = ?1", [pull as i64])?;
        Ok(())
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
            node: Some(("node-1".into(), format!("commit-{body}"))),
            received_at: 100,
        }
    }

    #[test]
    fn a_retried_batch_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Sqlite::open(&dir.path().join("s.db")).unwrap();
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
        assert_eq!(
            store.next_job().unwrap().unwrap().due_at,
            130,
            "queued once, when first stored"
        );
        assert_eq!(again[0], Appended::Duplicate);
        assert_eq!(again[1], Appended::KeyReused);
        assert!(matches!(again[2], Appended::New(_)));
        assert_eq!(store.journal().unwrap().len(), 2);
        assert_eq!(
            store.nodes(0).unwrap(),
            vec![("node-1".to_string(), "commit-z".to_string(), 100)]
        );
    }

    #[test]
    fn jobs_survive_reopening_and_new_batches_keep_them_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let agent = "a".to_string();
        {
            let store = Sqlite::open(&path).unwrap();
            store.queue(&agent, 130).unwrap();
        }
        let store = Sqlite::open(&path).unwrap();
        let job = store.next_job().unwrap().expect("queued");
        assert_eq!((job.agent.as_str(), job.due_at), ("a", 130));
        // A batch arrives while the job runs: finishing it must not drop the new work.
        store.queue(&agent, 160).unwrap();
        store.finish_job(&job, 500).unwrap();
        let again = store.next_job().unwrap().expect("still queued");
        assert_eq!(again.due_at, 500);
        store.finish_job(&again, 900).unwrap();
        assert_eq!(store.queue_depth().unwrap(), 0);
    }

    #[test]
    fn the_latest_catalogue_of_each_server_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("s.db")).unwrap();
        store
            .save_catalogue("files", r#"{"tools":[]}"#, "node-1", 1)
            .unwrap();
        store
            .save_catalogue("crm", r#"{"tools":[{"name":"a"}]}"#, "node-2", 2)
            .unwrap();
        store
            .save_catalogue("files", r#"{"tools":[{"name":"read_file"}]}"#, "node-1", 3)
            .unwrap();
        assert_eq!(
            store.catalogues().unwrap(),
            vec![
                ("crm".to_string(), r#"{"tools":[{"name":"a"}]}"#.to_string()),
                (
                    "files".to_string(),
                    r#"{"tools":[{"name":"read_file"}]}"#.to_string()
                ),
            ]
        );
    }

    #[test]
    fn checkpoint_moves_the_journal_into_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Sqlite::open(&dir.path().join("s.db")).unwrap();
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
