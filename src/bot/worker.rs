//! The drafting worker: takes queued agents from the store when they are due,
//! drafts the gap between `main` and the agent's observed calls, and proposes
//! it. A job that fails stays queued (with backoff) and survives restarts.
//!
//! With several replicas each worker claims what it takes (a job, a delivery)
//! for a lease it renews while it works ([`holding`]); a replica that dies
//! stops renewing, and another takes the work over once the lease runs out.
//! Acting on an agent's proposal also holds the agent's key
//! ([`super::agent_key`]), so no two replicas push or comment for one agent at once.

use super::{agent_key, propose, review, rollout, Context, JobError};
use crate::store::{Claim, Delivery, Job};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How often the worker looks whether nodes have loaded merged proposals.
const ROLLOUT_EVERY: Duration = Duration::from_secs(2);
/// Other replicas queue work too: a shared store is looked at this often.
const SHARED_POLL: Duration = Duration::from_secs(1);
/// Shortest sleep: work due but held elsewhere is not spun on.
const LEAST_WAIT: Duration = Duration::from_millis(100);

/// Lets a caller wait until the worker has looked at the queues and found
/// nothing due: tests and the quickstart wait on it instead of polling.
#[derive(Clone)]
pub struct Idle {
    asked: Arc<AtomicU64>,
    seen: Arc<watch::Sender<u64>>,
}

impl Default for Idle {
    fn default() -> Self {
        Idle {
            asked: Arc::new(AtomicU64::new(0)),
            seen: Arc::new(watch::channel(0).0),
        }
    }
}

impl Idle {
    /// Resolves once the worker, woken after this call, found nothing due.
    pub async fn wait(&self, wake: &Notify) {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut seen = self.seen.subscribe();
        wake.notify_one();
        let _ = seen.wait_for(|looked| *looked >= ticket).await;
    }

    /// The ticket a loop of the worker answers for.
    fn ticket(&self) -> u64 {
        self.asked.load(Ordering::SeqCst)
    }

    fn report(&self, ticket: u64) {
        self.seen.send_if_modified(|looked| {
            let newer = ticket > *looked;
            *looked = (*looked).max(ticket);
            newer
        });
    }
}

/// Run jobs until `shutdown` turns true; a job in flight is finished first.
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let mut rollouts_checked = Instant::now() - ROLLOUT_EVERY;
    let mut rollouts_waiting = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let ticket = ctx.idle.ticket();
        if rollouts_checked.elapsed() >= ROLLOUT_EVERY {
            rollouts_checked = Instant::now();
            rollouts_waiting = rollout::check(&ctx).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot check rollouts; trying again later");
                true
            });
        }
        let now = crate::clock::now();
        match ctx.store.claim_event(now).await {
            Ok(Some(event)) => {
                handle_event(&ctx, event).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot read the event queue"),
        }
        let wait = match ctx.store.claim_job(now).await {
            Ok(Some(job)) => {
                run_job(&ctx, job).await;
                continue;
            }
            Ok(None) => next_due(&ctx).await,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the job queue");
                Some(Duration::from_secs(5))
            }
        };
        let wait = match ctx.lease() {
            Some(_) => Some(wait.map_or(SHARED_POLL, |w| w.min(SHARED_POLL))),
            None => wait,
        }
        .map(|w| w.max(LEAST_WAIT));
        // While a rollout is followed, look again every ROLLOUT_EVERY.
        let wait = match (wait, rollouts_waiting) {
            (Some(w), true) => Some(w.min(ROLLOUT_EVERY)),
            (None, true) => Some(ROLLOUT_EVERY),
            (w, false) => w,
        };
        ctx.idle.report(ticket);
        let woken = ctx.wake.notified();
        tokio::select! {
            _ = woken => {}
            _ = shutdown.changed() => {}
            _ = sleep(wait) => {}
        }
    }
}

/// How long until the next job or delivery is due, if any is queued.
async fn next_due(ctx: &Context) -> Option<Duration> {
    let jobs = ctx.store.next_job_due().await.ok().flatten();
    let events = ctx.store.next_event_due().await.ok().flatten();
    let due = jobs.into_iter().chain(events).min()?;
    Some(Duration::from_secs((due - crate::clock::now()).max(0) as u64))
}

async fn handle_event(ctx: &Context, event: Delivery) {
    let span = tracing::info_span!("delivery", id = %event.delivery, event = %event.event);
    let _enter = span.enter();
    let Some(result) = holding(ctx, Claim::Event(event.id), review::handle(ctx, &event)).await else {
        tracing::warn!("lost the claim on the delivery; another replica handles it");
        return;
    };
    let recorded = match result {
        Ok(()) => ctx.store.finish_event(event.id).await,
        Err(e) => {
            let wait = backoff(event.attempts, &e);
            tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "delivery failed; it stays queued");
            ctx.store
                .fail_event(
                    event.id,
                    crate::clock::now() + wait.as_secs() as i64,
                    &e.to_string(),
                )
                .await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record the delivery's result");
    }
}

/// Run `work` while renewing `claim` every third of the lease. `None`: the
/// claim was lost (another replica took it over, or the store was out of
/// reach for most of a lease) and the work was stopped where it stood.
async fn holding<T>(ctx: &Context, claim: Claim, work: impl Future<Output = T>) -> Option<T> {
    let Some(lease) = ctx.lease() else {
        return Some(work.await);
    };
    let every = lease / 3;
    let heartbeat = async {
        let mut confirmed = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            match ctx.store.renew(&claim).await {
                Ok(true) => confirmed = Instant::now(),
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot renew the lease");
                    if confirmed.elapsed() + every >= lease {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        out = work => Some(out),
        () = heartbeat => None,
    }
}

async fn sleep(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn run_job(ctx: &Context, job: Job) {
    let started = Instant::now();
    let span = tracing::info_span!("job", agent = %job.agent, attempt = job.attempts + 1);
    let _enter = span.enter();
    let work = async {
        let _held = ctx.store.lock(&agent_key(&job.agent)).await?;
        propose::propose(ctx, &job.agent).await
    };
    let Some(result) = holding(ctx, Claim::Job(job.agent.clone()), work).await else {
        tracing::warn!("lost the claim on the job; another replica runs it");
        return;
    };
    let now = crate::clock::now();
    let recorded = match result {
        Ok(outcome) => {
            tracing::info!(
                ?outcome,
                took_ms = started.elapsed().as_millis() as u64,
                "job done"
            );
            ctx.metrics.job_took(started.elapsed());
            ctx.store
                .finish_job(&job, now + ctx.settings.drafting.debounce_seconds as i64)
                .await
        }
        Err(e) => {
            ctx.metrics.job_failed();
            let wait = backoff(job.attempts, &e);
            tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "job failed; it stays queued");
            ctx.store
                .fail_job(&job, now + wait.as_secs() as i64, &e.to_string())
                .await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record the job's result; it will run again");
    }
}

/// Exponential from 5 s to 10 min, or what the forge asked for if longer.
fn backoff(attempts: i64, error: &JobError) -> Duration {
    let exponential = Duration::from_secs((5u64 << attempts.clamp(0, 7)).min(600));
    match error {
        JobError::Retryable {
            retry_after: Some(after),
            ..
        } => exponential.max(*after),
        _ => exponential,
    }
}
