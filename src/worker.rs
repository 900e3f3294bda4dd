//! The drafting worker: takes queued agents from the store when they are due,
//! drafts the gap between `main` and the agent's observed calls, and proposes
//! it. A job that fails stays queued (with backoff) and survives restarts.

use crate::config::Settings;
use crate::core::check::unused_generated;
use crate::core::draft::{draft_remembering, Draft, DraftInput};
use crate::core::evidence::Withheld;
use crate::core::observation::rfc3339;
use crate::core::window::{self, Window};
use crate::forge::{Forge, ForgeError};
use crate::github::CheckRun;
use crate::ingest::{hex, FoldProgress};
use crate::metrics::Metrics;
use crate::render::{self, ProposalView};
use crate::repo::{branch_for, Credentials, PolicyRepo};
use crate::store::{Event, Job, ProposalRecord, ProposedRule, Store};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Everything a job needs; shared with the HTTP handlers.
pub struct Context {
    pub settings: Settings,
    pub store: Arc<Mutex<Store>>,
    pub window: Arc<Mutex<Window>>,
    pub repo: Arc<Mutex<PolicyRepo>>,
    pub forge: Forge,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    /// How far ingest has folded: a job waits for what was acknowledged.
    pub progress: Arc<FoldProgress>,
}

/// How often the worker looks whether nodes have loaded merged proposals.
const ROLLOUT_EVERY: Duration = Duration::from_secs(2);

impl Context {
    /// Run `work` on the policy repository off the async threads, with the
    /// forge's credentials for fetch and push.
    pub async fn git<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PolicyRepo, Option<&Credentials>) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ForgeError> {
        let credentials = self.forge.credentials().await?;
        let repo = self.repo.clone();
        blocking(move || work(&repo.lock().expect("repo lock"), credentials.as_ref())).await
    }
}

/// What a job did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No calls in the window, or `main` already allows all of them.
    NothingToPropose,
    Opened(u64),
    Updated(u64),
    /// The proposal already shows this draft.
    Unchanged(u64),
    /// Someone else pushed to the branch: new evidence went into a comment.
    Commented(u64),
}

/// Run jobs until `shutdown` turns true; a job in flight is finished first.
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let mut rollouts_checked = Instant::now() - ROLLOUT_EVERY;
    let mut rollouts_waiting = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if rollouts_checked.elapsed() >= ROLLOUT_EVERY {
            rollouts_checked = Instant::now();
            rollouts_waiting = crate::rollout::check(&ctx).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot check rollouts; trying again later");
                true
            });
        }
        let now = crate::clock::now();
        let event = ctx.store.lock().expect("store lock").next_event(now);
        match event {
            Ok(Some(event)) => {
                handle_event(&ctx, event).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the event queue"),
        }
        let next = {
            let store = ctx.store.lock().expect("store lock");
            store.next_job()
        };
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
    let due = ctx.store.lock().expect("store lock").next_event_due().ok()??;
    Some(Duration::from_secs((due - crate::clock::now()).max(0) as u64))
}

async fn handle_event(ctx: &Context, event: Event) {
    let span = tracing::info_span!("delivery", id = %event.delivery, event = %event.event);
    let _enter = span.enter();
    let result = crate::review::handle(ctx, &event).await;
    let store = ctx.store.lock().expect("store lock");
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
    let result = propose(ctx, &job.agent).await;
    let now = crate::clock::now();
    let store = ctx.store.lock().expect("store lock");
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
fn backoff(attempts: i64, error: &ForgeError) -> Duration {
    let exponential = Duration::from_secs((5u64 << attempts.clamp(0, 7)).min(600));
    match error {
        ForgeError::Retryable {
            retry_after: Some(after),
            ..
        } => exponential.max(*after),
        _ => exponential,
    }
}

/// Draft one agent and bring its proposal up to date.
pub async fn propose(ctx: &Context, agent: &str) -> Result<Outcome, ForgeError> {
    let branch = branch_for(agent);
    let (base_tip, files, branch_tip) = {
        let branch = branch.clone();
        ctx.git(move |repo, credentials| {
            let base_tip = repo.fetch(credentials)?;
            Ok((base_tip, repo.files(base_tip)?, repo.remote_tip(&branch)?))
        })
        .await?
    };

    ctx.progress.caught_up(Duration::from_secs(30)).await;
    let days = ctx.settings.drafting.window_days;
    let now = crate::clock::now();
    let span = window::span(now, days);
    let unused_after = ctx.settings.drafting.unused_after;
    let (mut summary, history) = {
        let window = ctx.window.lock().expect("window lock");
        // Rules count as unused only once the agent was watched for the whole period.
        let watched_long_enough = window
            .first_day(agent)
            .is_some_and(|first| first <= window::day_of(now) - i64::from(unused_after) + 1);
        let history = watched_long_enough.then(|| window.summary(agent, window::span(now, unused_after)));
        (window.summary(agent, span), history)
    };
    let (rejected, ignored) = {
        let store = ctx.store.lock().expect("store lock");
        (store.rejections(agent)?, store.ignored_tools(agent)?)
    };
    let mut ignored_calls = Vec::new();
    for (tool, reason) in ignored {
        if let Some(calls) = summary.remove_tool(agent, &tool) {
            ignored_calls.push(Withheld {
                what: tool,
                calls,
                reason,
            });
        }
    }
    if summary.calls == 0 {
        return Ok(Outcome::NothingToPropose);
    }
    let config = ctx.settings.drafting.clone();
    let who = agent.to_string();
    let (mut drafted, unused, proposed): (Draft, Vec<String>, Vec<ProposedRule>) = blocking(move || {
        let input = DraftInput {
            files: &files,
            summary: &summary,
            catalogue: None,
            config: &config,
        };
        let drafted = draft_remembering(&input, &rejected)?;
        let unused = history
            .map(|h| unused_generated(&files, &h, &who))
            .unwrap_or_default();
        let proposed = proposed_rules(&drafted);
        Ok((drafted, unused, proposed))
    })
    .await?;
    ctx.metrics.drafted();
    // A schema change alone allows nothing: not worth a reviewer's time.
    if drafted.new_rules.is_empty() {
        return Ok(Outcome::NothingToPropose);
    }
    if let Some(evidence) = drafted.evidence.agents.iter_mut().find(|a| a.agent == agent) {
        evidence.withheld.extend(ignored_calls);
    }
    let warning = match ctx
        .forge
        .code_owner_reviews_required(&ctx.settings.base_branch)
        .await?
    {
        Some(false) => Some(format!(
            "`{}` does not require a code owner's review: anyone with write access can merge this policy. \
             Protect the branch and turn on \"Require review from Code Owners\".",
            ctx.settings.base_branch
        )),
        _ => None,
    };

    let diff = render::diff(&drafted.changes);
    let evidence = render::evidence(&drafted.evidence);
    let digest = hex(&Sha256::digest(format!("{base_tip}\n{diff}\n{evidence}")))[..16].to_string();
    let mut view = ProposalView {
        agent: agent.to_string(),
        base: ctx.settings.base_branch.clone(),
        branch: branch.clone(),
        window_days: days,
        window_start: rfc3339(span.start),
        window_end: rfc3339(span.end),
        evidence,
        diff,
        files: drafted.changes.len(),
        digest: digest.clone(),
        foreign: Vec::new(),
        warning,
        unused,
        unused_after,
    };
    let existing = ctx.forge.find_open(agent, &branch).await?;

    if let Some(tip) = branch_tip {
        let foreign = ctx
            .git(move |repo, _| repo.foreign_commits(tip, base_tip))
            .await?;
        if !foreign.is_empty() {
            // A person owns the branch now: never push over their work.
            let Some(pr) = existing else {
                return Err(ForgeError::Failed(format!(
                    "{branch} has commits by {} but no open proposal; leaving it alone",
                    foreign[0].author
                )));
            };
            let marker = render::comment_marker(&digest);
            if ctx
                .forge
                .comments(pr.number)
                .await?
                .iter()
                .any(|c| c.contains(&marker))
            {
                return Ok(Outcome::Unchanged(pr.number));
            }
            view.foreign = foreign
                .iter()
                .map(|c| format!("{} by {}", &c.sha[..7], c.author))
                .collect();
            ctx.forge
                .comment(pr.number, &render::takeover_comment(&view))
                .await?;
            ctx.metrics.commented();
            return Ok(Outcome::Commented(pr.number));
        }
    }

    let rules = drafted.new_rules.len();
    let title = format!(
        "shadowdraft: {rules} new rule{} for agent {agent}",
        if rules == 1 { "" } else { "s" }
    );
    let message = format!(
        "{title}\n\nDrafted from observed calls {} → {}.\nEvidence: see the pull request.",
        view.window_start, view.window_end
    );
    let head = {
        let (branch, changes) = (branch.clone(), drafted.changes.clone());
        ctx.git(move |repo, credentials| {
            let new = repo.commit(base_tip, &branch, &changes, &message)?;
            // Push only when the files or the base moved: re-pushing identical
            // content would churn the PR and its checks.
            if let Some(tip) = branch_tip {
                if repo.same_tree(tip, new)? && repo.parent(tip)? == Some(base_tip) {
                    return Ok(tip);
                }
            }
            repo.push(&branch, credentials)?;
            Ok(new)
        })
        .await?
    };

    let section = render::proposal(&view);
    let (number, url, outcome) = match existing {
        Some(pr) => {
            let body = render::replace_section(&pr.body, &section);
            if body == pr.body {
                (pr.number, pr.url, Outcome::Unchanged(pr.number))
            } else {
                ctx.forge.update(agent, pr.number, &title, &body).await?;
                ctx.metrics.pr_updated();
                (pr.number, pr.url, Outcome::Updated(pr.number))
            }
        }
        None => {
            let base = &ctx.settings.base_branch;
            let pr = ctx.forge.open(agent, &branch, base, &title, &section).await?;
            ctx.metrics.pr_opened();
            let review = ctx.settings.review.agents.get(agent).cloned().unwrap_or_default();
            ctx.forge
                .decorate(
                    pr.number,
                    &ctx.settings.labels,
                    &review.reviewers,
                    &review.team_reviewers,
                )
                .await?;
            (pr.number, pr.url, Outcome::Opened(pr.number))
        }
    };

    let head = head.to_string();
    let previous = ctx.store.lock().expect("store lock").proposal(agent)?;
    if previous.as_ref().map(|p| p.head.as_str()) != Some(head.as_str()) {
        ctx.forge.check_run(&verify_run(&head, &drafted)).await?;
    }
    let record = ProposalRecord {
        number,
        head,
        digest,
        url,
    };
    let mut store = ctx.store.lock().expect("store lock");
    store.save_proposal(agent, &record, crate::clock::now())?;
    store.save_proposal_rules(agent, &proposed)?;
    Ok(outcome)
}

/// The new rules of a draft with their fingerprints and calls, remembered so a
/// closed proposal or a rule deleted before merging can be recognised later.
fn proposed_rules(drafted: &Draft) -> Vec<ProposedRule> {
    drafted
        .evidence
        .agents
        .iter()
        .flat_map(|a| &a.rules)
        .map(|r| ProposedRule {
            id: r.id.clone(),
            fingerprint: r.fingerprint.clone(),
            calls: r.calls,
        })
        .collect()
}

/// `shadowdraft/verify`: the draft passed strict validation and replay, or the
/// job would have failed before pushing.
fn verify_run(head: &str, drafted: &Draft) -> CheckRun {
    let t = &drafted.evidence.totals;
    CheckRun {
        name: "shadowdraft/verify".into(),
        head_sha: head.to_string(),
        conclusion: "success".into(),
        title: format!("{} new rules validate; {} observed calls replay as allowed", t.new_rules, t.drafted + t.already_allowed),
        summary: format!(
            "Strict Cedar validation against `policies/schema.cedarschema`: passed.\n\n\
             Replay of every observed call shape through the drafted policy: {} calls allowed by the new rules, \
             {} already allowed, {} cannot be represented and stay denied, {} denied by a `forbid` rule.",
            t.drafted, t.already_allowed, t.unrepresentable, t.forbidden
        ),
    }
}

/// Run blocking work (git, drafting) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ForgeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ForgeError::Failed(format!("worker task failed: {e}")))?
        .map_err(ForgeError::from)
}
