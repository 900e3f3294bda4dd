//! The drafting worker: takes queued agents from the store when they are due,
//! drafts the gap between `main` and the agent's observed calls, and proposes
//! it. A job that fails stays queued (with backoff) and survives restarts.

use super::{propose, review, rollout, Context, JobError};
use crate::store::{Delivery, Job};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How often the worker looks whether nodes have loaded merged proposals.
const ROLLOUT_EVERY: Duration = Duration::from_secs(2);

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
        let event = ctx.store().next_event(now);
        match event {
            Ok(Some(event)) => {
                handle_event(&ctx, event).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the event queue"),
        }
        let next = ctx.store().next_job();
        let wait = match next {
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job queue");
                Some(Duration::from_secs(5))
            }
            Ok(None) => event_wait(&ctx),
            Ok(Some(job)) => {
                let now = crate::clock::now();
                if job.due_at <= now {
                    run_job(&ctx, job).await;
                    continue;
                }
                let job_wait = Duration::from_secs((job.due_at - now) as u64);
                Some(event_wait(&ctx).map_or(job_wait, |w| w.min(job_wait)))
            }
        };
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

/// How long until a delivery that failed before is due again.
fn event_wait(ctx: &Context) -> Option<Duration> {
    let due = ctx.store().next_event_due().ok()??;
    Some(Duration::from_secs((due - crate::clock::now()).max(0) as u64))
}

async fn handle_event(ctx: &Context, event: Delivery) {
    let span = tracing::info_span!("delivery", id = %event.delivery, event = %event.event);
    let _enter = span.enter();
    let result = review::handle(ctx, &event).await;
    let store = ctx.store();
    let recorded = match result {
        Ok(()) => store.finish_event(event.id),
        Err(e) => {
            let wait = backoff(event.attempts, &e);
            tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "delivery failed; it stays queued");
            store.fail_event(
                event.id,
                crate::clock::now() + wait.as_secs() as i64,
                &e.to_string(),
            )
        }
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record the delivery's result");
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
    let result = propose::propose(ctx, &job.agent).await;
    let now = crate::clock::now();
    let store = ctx.store();
    let recorded = match result {
        Ok(outcome) => {
            tracing::info!(
                ?outcome,
                took_ms = started.elapsed().as_millis() as u64,
                "job done"
            );
            ctx.metrics.job_took(started.elapsed());
            store.finish_job(&job, now + ctx.settings.drafting.debounce_seconds as i64)
        }
        Err(e) => {
            ctx.metrics.job_failed();
            let wait = backoff(job.attempts, &e);
            tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "job failed; it stays queued");
            store.fail_job(&job, now + wait.as_secs() as i64, &e.to_string())
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
