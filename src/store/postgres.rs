//! The PostgreSQL implementation of the store: several replicas share one
//! database. Any replica takes any request; what one replica must do alone
//! is claimed with `FOR UPDATE SKIP LOCKED` and a lease it renews (jobs,
//! deliveries), or held with an advisory lock ([`Postgres::lock`]).
//!
//! Ingest appends to the journal only (no row another replica writes), so
//! replicas' acknowledgements never wait on each other; folding
//! ([`FoldTx`]) moves journal rows into the per-(agent, day) buckets, queues
//! the agents and records the nodes, in one transaction per checkpoint.

use super::{Appended, Claim, Delivery, Incoming, Job, JobStatus, LocalPull, ProposalRecord, ProposedRule};
use crate::core::draft::{Rejection, Rejections};
use crate::core::window::BucketKey;
use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The schema, in order; each runs once per database, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("postgres/0001_initial.sql"))];

/// The advisory lock that serialises migrations between replicas starting at once.
const MIGRATION_LOCK: i64 = 0x5348_4144_4f57; // "SHADOW"

/// The database clock in Unix seconds: leases are read against it.
const DB_NOW: &str = "EXTRACT(EPOCH FROM now())::bigint";

/// How long a request waits for a connection before the store counts as down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Who this process is when it claims work: unique per start.
    replica: Arc<str>,
    lease_seconds: i64,
}

/// A key held by [`Postgres::lock`]: an advisory lock of an open transaction,
/// released when it ends, also when the process dies and its connection drops.
pub struct Lock {
    _tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

/// One row of the journal.
pub struct JournalRow {
    pub id: i64,
    pub received_at: i64,
    pub body: Vec<u8>,
}

/// What a draft reads of one agent: its buckets and its unfolded batches,
/// from one snapshot, so every acknowledged batch counts exactly once.
pub struct AgentRows {
    pub buckets: Vec<(BucketKey, Vec<u8>)>,
    pub journal: Vec<JournalRow>,
}

impl Postgres {
    /// Connect, and bring the schema up to date under an advisory lock.
    pub async fn open(url: &str, lease_seconds: u64) -> anyhow::Result<Postgres> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .context("cannot connect to PostgreSQL (store.url_env)")?;
        migrate(&pool).await?;
        let mut random = [0u8; 4];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness for the replica id: {e}"))?;
        let replica = format!("{}-{}", std::process::id(), crate::core::hex::encode(&random));
        Ok(Postgres {
            pool,
            replica: replica.into(),
            lease_seconds: lease_seconds as i64,
        })
    }

    /// This replica's name in claims (`claimed_by`).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn lease_seconds(&self) -> u64 {
        self.lease_seconds as u64
    }

    /// Store batches and remember their keys in one transaction. Agents are
    /// queued when the batches are folded, so appends of different replicas
    /// share no row and never wait on each other.
    pub async fn append(&self, batches: &[Incoming]) -> anyhow::Result<Vec<Appended>> {
        let mut attempt = 0;
        loop {
            match self.try_append(batches).await {
                Err(e) if attempt < 3 && retryable(&e) => attempt += 1,
                other => return other,
            }
        }
    }

    async fn try_append(&self, batches: &[Incoming]) -> anyhow::Result<Vec<Appended>> {
        // The first batch with each key claims it; later ones compare bodies.
        let mut first: BTreeMap<&str, &str> = BTreeMap::new();
        for batch in batches {
            if let Some(key) = &batch.key {
                first.entry(key.as_str()).or_insert(batch.body_sha256.as_str());
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut known: HashMap<String, String> = HashMap::new();
        let mut claimed: Vec<String> = Vec::new();
        if !first.is_empty() {
            let received = batches[0].received_at;
            let keys: Vec<&str> = first.keys().copied().collect();
            let shas: Vec<&str> = first.values().copied().collect();
            claimed = sqlx::query_scalar(
                "INSERT INTO idempotency (key, body_sha256, received_at)
                 SELECT k, s, $3 FROM unnest($1::text[], $2::text[]) AS t(k, s)
                 ON CONFLICT (key) DO NOTHING RETURNING key",
            )
            .bind(&keys)
            .bind(&shas)
            .bind(received)
            .fetch_all(&mut *tx)
            .await?;
            let seen: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| !claimed.iter().any(|c| c == k))
                .collect();
            if !seen.is_empty() {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT key, body_sha256 FROM idempotency WHERE key = ANY($1)")
                        .bind(&seen)
                        .fetch_all(&mut *tx)
                        .await?;
                known.extend(rows);
            }
        }
        let mut outcomes: Vec<Option<Appended>> = Vec::with_capacity(batches.len());
        let mut taken: Vec<&str> = Vec::new();
        for batch in batches {
            let Some(key) = batch.key.as_deref() else {
                outcomes.push(None);
                continue;
            };
            let ours = claimed.iter().any(|c| c == key) && !taken.contains(&key);
            if ours {
                taken.push(key);
                outcomes.push(None);
                continue;
            }
            let stored = known
                .get(key)
                .map(String::as_str)
                .or_else(|| first.get(key).copied());
            outcomes.push(Some(if stored == Some(batch.body_sha256.as_str()) {
                Appended::Duplicate
            } else {
                Appended::KeyReused
            }));
        }
        let new: Vec<&Incoming> = batches
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.is_none())
            .map(|(b, _)| b)
            .collect();
        let ids: Vec<i64> = if new.is_empty() {
            Vec::new()
        } else {
            let received: Vec<i64> = new.iter().map(|b| b.received_at).collect();
            let agents: Vec<String> = new.iter().map(|b| b.agents.join("\n")).collect();
            let bodies: Vec<&[u8]> = new.iter().map(|b| b.body.as_slice()).collect();
            // Ids drawn in the CTE come back in the batches' order.
            sqlx::query_scalar(
                "WITH rows AS (
                     SELECT nextval('journal_id_seq') AS id, t.ord, t.received_at, t.agents, t.body
                     FROM unnest($1::bigint[], $2::text[], $3::bytea[]) WITH ORDINALITY AS t(received_at, agents, body, ord)
                 ), stored AS (
                     INSERT INTO journal (id, received_at, agents, body)
                     SELECT id, received_at, string_to_array(agents, E'\\n'), body FROM rows
                 )
                 SELECT id FROM rows ORDER BY ord",
            )
            .bind(&received)
            .bind(&agents)
            .bind(&bodies)
            .fetch_all(&mut *tx)
            .await?
        };
        tx.commit().await?;
        let mut ids = ids.into_iter();
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Appended::New(ids.next().expect("one id per new batch"))))
            .collect())
    }

    /// Start folding: a transaction that claims journal rows and writes buckets.
    pub async fn begin_fold(&self) -> anyhow::Result<FoldTx> {
        Ok(FoldTx {
            tx: self.pool.begin().await?,
        })
    }

    /// The agent's buckets from `first_day` on and its unfolded batches.
    pub async fn agent_rows(&self, agent: &str, first_day: i64) -> anyhow::Result<AgentRows> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let buckets: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT day, summary FROM buckets WHERE agent = $1 AND day >= $2 ORDER BY day")
                .bind(agent)
                .bind(first_day)
                .fetch_all(&mut *tx)
                .await?;
        let journal = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(
            "SELECT id, received_at, body FROM journal WHERE agents @> ARRAY[$1::text] ORDER BY id",
        )
        .bind(agent)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id, received_at, body)| JournalRow {
            id,
            received_at,
            body,
        })
        .collect();
        tx.commit().await?;
        Ok(AgentRows {
            buckets: buckets
                .into_iter()
                .filter(|(_, blob)| !blob.is_empty())
                .map(|(day, blob)| ((agent.to_string(), day), blob))
                .collect(),
            journal,
        })
    }

    /// Distinct call shapes in the folded buckets from `first_day` on.
    pub async fn window_shapes(&self, first_day: i64) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(SUM(shapes), 0)::bigint FROM buckets WHERE day >= $1")
                .bind(first_day)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Hold `key` until the returned lock is dropped, waiting up to a lease
    /// for a replica that holds it.
    pub async fn lock(&self, key: &str) -> anyhow::Result<Lock> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{}s'", self.lease_seconds))
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_id(key))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("{key} is held by another replica"))?;
        Ok(Lock { _tx: tx })
    }

    pub async fn claim_job(&self, now: i64) -> anyhow::Result<Option<Job>> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET claimed_by = $2, lease_until = {DB_NOW} + $3
             WHERE agent = (
                 SELECT agent FROM jobs
                 WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < {DB_NOW})
                 ORDER BY due_at, agent LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING agent, due_at, generation, attempts"
        ))
        .bind(now)
        .bind(&*self.replica)
        .bind(self.lease_seconds)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Job {
            agent: r.get(0),
            due_at: r.get(1),
            generation: r.get(2),
            attempts: r.get(3),
        }))
    }

    /// When the next job is due, or a held one's lease runs out.
    pub async fn next_job_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(GREATEST(due_at, COALESCE(lease_until, 0))) FROM jobs")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn finish_job(&self, job: &Job, again_at: i64) -> anyhow::Result<()> {
        let done = sqlx::query("DELETE FROM jobs WHERE agent = $1 AND generation = $2 AND claimed_by = $3")
            .bind(&job.agent)
            .bind(job.generation)
            .bind(&*self.replica)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if done == 0 {
            sqlx::query(
                "UPDATE jobs SET due_at = $2, attempts = 0, last_error = NULL, claimed_by = NULL, lease_until = NULL
                 WHERE agent = $1 AND claimed_by = $3",
            )
            .bind(&job.agent)
            .bind(again_at)
            .bind(&*self.replica)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn fail_job(&self, job: &Job, retry_at: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE jobs SET due_at = $2, attempts = attempts + 1, last_error = $3, claimed_by = NULL, lease_until = NULL
             WHERE agent = $1 AND claimed_by = $4",
        )
        .bind(&job.agent)
        .bind(retry_at)
        .bind(error)
        .bind(&*self.replica)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn queue(&self, agent: &str, due_at: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO jobs (agent, due_at, generation) VALUES ($1, $2, 1)
             ON CONFLICT (agent) DO UPDATE SET generation = jobs.generation + 1, due_at = LEAST(jobs.due_at, $2)",
        )
        .bind(agent)
        .bind(due_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn job(&self, agent: &str) -> anyhow::Result<Option<JobStatus>> {
        let row = sqlx::query(&format!(
            "SELECT agent, due_at, generation, attempts, last_error,
                    CASE WHEN lease_until >= {DB_NOW} THEN claimed_by END
             FROM jobs WHERE agent = $1"
        ))
        .bind(agent)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| JobStatus {
            job: Job {
                agent: r.get(0),
                due_at: r.get(1),
                generation: r.get(2),
                attempts: r.get(3),
            },
            last_error: r.get(4),
            claimed_by: r.get(5),
        }))
    }

    pub async fn queue_depth(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn renew(&self, claim: &Claim) -> anyhow::Result<bool> {
        let query = match claim {
            Claim::Job(agent) => sqlx::query(
                "UPDATE jobs SET lease_until = EXTRACT(EPOCH FROM now())::bigint + $2
                 WHERE agent = $1 AND claimed_by = $3",
            )
            .bind(agent.as_str()),
            Claim::Event(id) => sqlx::query(
                "UPDATE events SET lease_until = EXTRACT(EPOCH FROM now())::bigint + $2
                 WHERE id = $1 AND claimed_by = $3",
            )
            .bind(*id),
        };
        let renewed = query
            .bind(self.lease_seconds)
            .bind(&*self.replica)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    pub async fn proposal(&self, agent: &str) -> anyhow::Result<Option<ProposalRecord>> {
        let row = sqlx::query("SELECT number, head, digest, url FROM proposals WHERE agent = $1")
            .bind(agent)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| record(&r, 0)))
    }

    pub async fn save_proposal(&self, agent: &str, record: &ProposalRecord, now: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO proposals (agent, number, head, digest, url, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (agent) DO UPDATE SET number = $2, head = $3, digest = $4, url = $5, updated_at = $6",
        )
        .bind(agent)
        .bind(record.number as i64)
        .bind(&record.head)
        .bind(&record.digest)
        .bind(&record.url)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn proposals(&self) -> anyhow::Result<Vec<(String, ProposalRecord)>> {
        let rows = sqlx::query("SELECT agent, number, head, digest, url FROM proposals ORDER BY agent")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), record(r, 1))).collect())
    }

    pub async fn save_proposal_rules(&self, agent: &str, rules: &[ProposedRule]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM proposal_rules WHERE agent = $1")
            .bind(agent)
            .execute(&mut *tx)
            .await?;
        let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        let fingerprints: Vec<&str> = rules.iter().map(|r| r.fingerprint.as_str()).collect();
        let calls: Vec<i64> = rules.iter().map(|r| r.calls as i64).collect();
        sqlx::query(
            "INSERT INTO proposal_rules (agent, id, fingerprint, calls)
             SELECT $1, i, f, c FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(i, f, c)",
        )
        .bind(agent)
        .bind(&ids)
        .bind(&fingerprints)
        .bind(&calls)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn proposal_rules(&self, agent: &str) -> anyhow::Result<Vec<ProposedRule>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, fingerprint, calls FROM proposal_rules WHERE agent = $1 ORDER BY id")
                .bind(agent)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, fingerprint, calls)| ProposedRule {
                id,
                fingerprint,
                calls: calls as u64,
            })
            .collect())
    }

    pub async fn forget_proposal(&self, agent: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in ["proposals", "proposal_rules"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE agent = $1"))
                .bind(agent)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn agent_of_pull(&self, number: u64) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT agent FROM proposals WHERE number = $1")
                .bind(number as i64)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn record_delivery(
        &self,
        delivery: &str,
        event: &str,
        payload: &[u8],
        now: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let new =
            sqlx::query("INSERT INTO deliveries (id, received_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(delivery)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if new {
            sqlx::query("INSERT INTO events (delivery, event, payload, due_at) VALUES ($1, $2, $3, $4)")
                .bind(delivery)
                .bind(event)
                .bind(payload)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    pub async fn claim_event(&self, now: i64) -> anyhow::Result<Option<Delivery>> {
        let row = sqlx::query(&format!(
            "UPDATE events SET claimed_by = $2, lease_until = {DB_NOW} + $3
             WHERE id = (
                 SELECT id FROM events
                 WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < {DB_NOW})
                 ORDER BY id LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, delivery, event, payload, attempts"
        ))
        .bind(now)
        .bind(&*self.replica)
        .bind(self.lease_seconds)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Delivery {
            id: r.get(0),
            delivery: r.get(1),
            event: r.get(2),
            payload: r.get(3),
            attempts: r.get(4),
        }))
    }

    pub async fn next_event_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(GREATEST(due_at, COALESCE(lease_until, 0))) FROM events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn finish_event(&self, id: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM events WHERE id = $1 AND claimed_by = $2")
            .bind(id)
            .bind(&*self.replica)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn fail_event(&self, id: i64, retry_at: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE events SET due_at = $2, attempts = attempts + 1, last_error = $3, claimed_by = NULL, lease_until = NULL
             WHERE id = $1 AND claimed_by = $4",
        )
        .bind(id)
        .bind(retry_at)
        .bind(error)
        .bind(&*self.replica)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn rejections(&self, agent: &str) -> anyhow::Result<Rejections> {
        let rows: Vec<(String, i64, String, bool)> =
            sqlx::query_as("SELECT fingerprint, calls, reason, permanent FROM rejections WHERE agent = $1")
                .bind(agent)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(fingerprint, calls, reason, permanent)| {
                (
                    fingerprint,
                    Rejection {
                        calls: calls as u64,
                        reason,
                        permanent,
                    },
                )
            })
            .collect())
    }

    pub async fn reject(&self, agent: &str, fingerprint: &str, rejection: &Rejection) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO rejections (agent, fingerprint, calls, reason, permanent) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agent, fingerprint) DO UPDATE
             SET calls = $3, reason = $4, permanent = rejections.permanent OR $5",
        )
        .bind(agent)
        .bind(fingerprint)
        .bind(rejection.calls as i64)
        .bind(&rejection.reason)
        .bind(rejection.permanent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn forgive(&self, agent: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in ["rejections", "ignored_tools"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE agent = $1"))
                .bind(agent)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn ignored_tools(&self, agent: &str) -> anyhow::Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT tool, reason FROM ignored_tools WHERE agent = $1 ORDER BY tool")
                .bind(agent)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn ignore_tool(&self, agent: &str, tool: &str, reason: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO ignored_tools (agent, tool, reason) VALUES ($1, $2, $3)
             ON CONFLICT (agent, tool) DO UPDATE SET reason = $3",
        )
        .bind(agent)
        .bind(tool)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn promote(&self, agent: &str, rule: &ProposedRule, pull: u64, now: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO promotions (agent, rule_id, fingerprint, pull, merged_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agent, rule_id) DO UPDATE SET fingerprint = $3, pull = $4, merged_at = $5",
        )
        .bind(agent)
        .bind(&rule.id)
        .bind(&rule.fingerprint)
        .bind(pull as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn promotions(&self) -> anyhow::Result<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT agent, rule_id, pull FROM promotions ORDER BY agent, rule_id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(a, r, p)| (a, r, p as u64)).collect())
    }

    pub async fn set_installation(
        &self,
        id: u64,
        repositories: Option<&[String]>,
        now: i64,
    ) -> anyhow::Result<()> {
        match repositories {
            Some(repos) => sqlx::query(
                "INSERT INTO installations (id, repositories, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET repositories = $2, updated_at = $3",
            )
            .bind(id as i64)
            .bind(repos.join("\n"))
            .bind(now),
            None => sqlx::query("DELETE FROM installations WHERE id = $1").bind(id as i64),
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn installation_repositories(&self, id: u64) -> anyhow::Result<Vec<String>> {
        let text: Option<String> = sqlx::query_scalar("SELECT repositories FROM installations WHERE id = $1")
            .bind(id as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(text
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default())
    }

    pub async fn installations_serving(&self, repository: &str) -> anyhow::Result<usize> {
        let lists: Vec<String> = sqlx::query_scalar("SELECT repositories FROM installations")
            .fetch_all(&self.pool)
            .await?;
        Ok(lists
            .iter()
            .filter(|list| list.lines().any(|r| r.eq_ignore_ascii_case(repository)))
            .count())
    }

    pub async fn save_catalogue(
        &self,
        server: &str,
        catalogue: &str,
        source: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO catalogues (server, catalogue, source, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (server) DO UPDATE SET catalogue = $2, source = $3, updated_at = $4",
        )
        .bind(server)
        .bind(catalogue)
        .bind(source)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn catalogues(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT server, catalogue FROM catalogues ORDER BY server")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn nodes(&self, since: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT source, policy_commit, seen_at FROM nodes WHERE seen_at >= $1 ORDER BY source",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn start_rollout(&self, pull: u64, agent: &str, merge_commit: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO rollouts (pull, agent, merge_commit) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(pull as i64)
        .bind(agent)
        .bind(merge_commit)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pending_rollouts(&self) -> anyhow::Result<Vec<(u64, String)>> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT pull, merge_commit FROM rollouts WHERE NOT announced ORDER BY pull")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(p, c)| (p as u64, c)).collect())
    }

    pub async fn announce_rollout(&self, pull: u64) -> anyhow::Result<()> {
        sqlx::query("UPDATE rollouts SET announced = true WHERE pull = $1")
            .bind(pull as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn local_pulls(&self) -> anyhow::Result<Vec<LocalPull>> {
        let rows = sqlx::query(
            "SELECT number, agent, branch, base, title, body, state, created_at, updated_at
             FROM local_pulls ORDER BY number",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LocalPull {
                number: r.get::<i64, _>(0) as u64,
                agent: r.get(1),
                branch: r.get(2),
                base: r.get(3),
                title: r.get(4),
                body: r.get(5),
                state: r.get(6),
                created_at: r.get(7),
                updated_at: r.get(8),
            })
            .collect())
    }

    pub async fn open_local_pull(&self, pull: &LocalPull) -> anyhow::Result<u64> {
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO local_pulls (agent, branch, base, title, body, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'open', $6, $6) RETURNING number",
        )
        .bind(&pull.agent)
        .bind(&pull.branch)
        .bind(&pull.base)
        .bind(&pull.title)
        .bind(&pull.body)
        .bind(pull.created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(number as u64)
    }

    pub async fn update_local_pull(
        &self,
        number: u64,
        title: &str,
        body: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE local_pulls SET title = $2, body = $3, updated_at = $4 WHERE number = $1")
            .bind(number as i64)
            .bind(title)
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn local_comments(&self, number: u64) -> anyhow::Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT body FROM local_comments WHERE number = $1 ORDER BY id")
                .bind(number as i64)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn add_local_comment(&self, number: u64, body: &str, now: i64) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO local_comments (number, body, created_at) VALUES ($1, $2, $3)")
            .bind(number as i64)
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn health(&self) -> anyhow::Result<()> {
        let answer = tokio::time::timeout(
            ACQUIRE_TIMEOUT,
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.pool),
        )
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL did not answer within {}s", ACQUIRE_TIMEOUT.as_secs()))?;
        answer.context("PostgreSQL is unreachable")?;
        Ok(())
    }
}

/// One checkpoint's transaction: claim journal rows, merge them into the
/// buckets, queue their agents, note their nodes, delete them; all or nothing.
pub struct FoldTx {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl FoldTx {
    /// Lock the rows of `own` (batches this replica stored and holds parsed)
    /// that still exist and nobody else holds, and up to `limit` rows of any
    /// replica stored more than `stale` ago (a replica that died before
    /// folding them). Returns the own ids locked and the stale rows.
    pub async fn claim(
        &mut self,
        own: &[i64],
        stale: Duration,
        limit: i64,
    ) -> anyhow::Result<(Vec<i64>, Vec<JournalRow>)> {
        let mine: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM journal WHERE id = ANY($1) FOR UPDATE SKIP LOCKED")
                .bind(own)
                .fetch_all(&mut *self.tx)
                .await?;
        let orphans = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(
            "SELECT id, received_at, body FROM journal
             WHERE stored_at < now() - make_interval(secs => $1) AND NOT (id = ANY($2))
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(stale.as_secs_f64())
        .bind(own)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?
        .into_iter()
        .map(|(id, received_at, body)| JournalRow {
            id,
            received_at,
            body,
        })
        .collect();
        Ok((mine, orphans))
    }

    /// Lock the buckets of `keys` (sorted, so replicas lock in one order),
    /// creating the missing ones; returns the stored summaries (empty: new).
    pub async fn lock_buckets(&mut self, keys: &[BucketKey]) -> anyhow::Result<Vec<(BucketKey, Vec<u8>)>> {
        let agents: Vec<&str> = keys.iter().map(|(a, _)| a.as_str()).collect();
        let days: Vec<i64> = keys.iter().map(|(_, d)| *d).collect();
        sqlx::query(
            "INSERT INTO buckets (agent, day, summary, shapes)
             SELECT a, d, ''::bytea, 0 FROM unnest($1::text[], $2::bigint[]) AS t(a, d)
             ON CONFLICT (agent, day) DO NOTHING",
        )
        .bind(&agents)
        .bind(&days)
        .execute(&mut *self.tx)
        .await?;
        let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT agent, day, summary FROM buckets
             WHERE (agent, day) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
             ORDER BY agent, day FOR UPDATE",
        )
        .bind(&agents)
        .bind(&days)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(a, d, s)| ((a, d), s)).collect())
    }

    /// Write merged buckets: (key, summary, distinct shapes).
    pub async fn put_buckets(&mut self, buckets: &[(BucketKey, Vec<u8>, i64)]) -> anyhow::Result<()> {
        let agents: Vec<&str> = buckets.iter().map(|((a, _), _, _)| a.as_str()).collect();
        let days: Vec<i64> = buckets.iter().map(|((_, d), _, _)| *d).collect();
        let summaries: Vec<&[u8]> = buckets.iter().map(|(_, s, _)| s.as_slice()).collect();
        let shapes: Vec<i64> = buckets.iter().map(|(_, _, n)| *n).collect();
        sqlx::query(
            "UPDATE buckets SET summary = u.s, shapes = u.n
             FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) AS u(a, d, s, n)
             WHERE buckets.agent = u.a AND buckets.day = u.d",
        )
        .bind(&agents)
        .bind(&days)
        .bind(&summaries)
        .bind(&shapes)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Queue agents for drafting: (agent, due at), one row per agent, sorted.
    /// An agent already queued keeps its time; its generation moves, so a
    /// job running now stays queued for what it did not see.
    pub async fn queue(&mut self, jobs: &[(String, i64)]) -> anyhow::Result<()> {
        let agents: Vec<&str> = jobs.iter().map(|(a, _)| a.as_str()).collect();
        let due: Vec<i64> = jobs.iter().map(|(_, d)| *d).collect();
        sqlx::query(
            "INSERT INTO jobs (agent, due_at, generation)
             SELECT a, d, 1 FROM unnest($1::text[], $2::bigint[]) AS t(a, d)
             ON CONFLICT (agent) DO UPDATE SET generation = jobs.generation + 1",
        )
        .bind(&agents)
        .bind(&due)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The policy commit each node last said it enforces: (node, commit, seen at), one per node, sorted.
    pub async fn saw_nodes(&mut self, nodes: &[(String, String, i64)]) -> anyhow::Result<()> {
        let sources: Vec<&str> = nodes.iter().map(|(s, _, _)| s.as_str()).collect();
        let commits: Vec<&str> = nodes.iter().map(|(_, c, _)| c.as_str()).collect();
        let seen: Vec<i64> = nodes.iter().map(|(_, _, t)| *t).collect();
        sqlx::query(
            "INSERT INTO nodes (source, policy_commit, seen_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
             ON CONFLICT (source) DO UPDATE SET policy_commit = excluded.policy_commit, seen_at = excluded.seen_at
             WHERE nodes.seen_at <= excluded.seen_at",
        )
        .bind(&sources)
        .bind(&commits)
        .bind(&seen)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Delete the folded rows, expire old days and keys, and commit.
    pub async fn commit(mut self, folded: &[i64], first_day: i64, keys_before: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM journal WHERE id = ANY($1)")
            .bind(folded)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM buckets WHERE day < $1")
            .bind(first_day)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM idempotency WHERE received_at < $1")
            .bind(keys_before)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// Apply the migrations this database has not seen, one replica at a time.
async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS shadowdraft_migrations (
             version BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM shadowdraft_migrations")
        .fetch_all(&mut *tx)
        .await?;
    for &(version, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        // Unprepared, so one text may hold many statements.
        sqlx::Executor::execute(&mut *tx, sql)
            .await
            .with_context(|| format!("PostgreSQL migration {version} failed"))?;
        sqlx::query("INSERT INTO shadowdraft_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    tx.commit().await?;
    Ok(())
}

/// A deadlock or serialisation failure: the transaction may simply run again.
fn retryable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// The advisory lock id of a key: the first 8 bytes of its SHA-256.
fn lock_id(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn record(row: &sqlx::postgres::PgRow, from: usize) -> ProposalRecord {
    ProposalRecord {
        number: row.get::<i64, _>(from) as u64,
        head: row.get(from + 1),
        digest: row.get(from + 2),
        url: row.get(from + 3),
    }
}
