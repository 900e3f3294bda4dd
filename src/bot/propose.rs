//! The proposal executor: draft one agent, gather the facts the planner
//! ([`crate::core::plan`]) needs, and carry its plan out against git, the
//! forge and the store.

use super::{blocking, Context, JobError};
use crate::core::catalogue::{self, Catalogue};
use crate::core::check::unused_generated;
use crate::core::draft::{draft_remembering, Draft, DraftInput};
use crate::core::evidence::Withheld;
use crate::core::hex;
use crate::core::observation::rfc3339;
use crate::core::permits::{applied, Section};
use crate::core::plan::{self, Facts, ForeignCommit, OpenProposal, Plan, ProposalStep};
use crate::core::policies::RepoFiles;
use crate::core::summary::Summary;
use crate::core::window;
use crate::forge::{CheckRun, Proposal};
use crate::git::branch_for;
use crate::proof::Prover;
use crate::render::{self, ProposalView};
use crate::store::{ProposalRecord, ProposedRule};
use git2::Oid;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// What a job did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposed {
    /// No calls in the window, or `main` already allows all of them.
    NothingToPropose,
    Opened(u64),
    Updated(u64),
    /// The proposal already shows this draft.
    Unchanged(u64),
    /// Someone else pushed to the branch: new evidence went into a comment.
    Commented(u64),
}

/// The policy repository as one fetch found it.
struct Fetched {
    base_tip: Oid,
    files: RepoFiles,
    branch_tip: Option<Oid>,
}

/// A draft and what goes with it into the proposal.
struct Drafted {
    draft: Draft,
    unused: Vec<String>,
    rules: Vec<ProposedRule>,
}

/// The facts about the branch and the open proposal, owned.
#[derive(Default)]
struct Gathered {
    open: Option<Proposal>,
    section: String,
    foreign: Vec<ForeignCommit>,
    evidence_commented: bool,
    drafted_commit: Option<Oid>,
    branch_holds_draft: bool,
    checked_head: Option<String>,
    /// The pull request the store records for the agent.
    recorded: Option<u64>,
}

/// Draft one agent and bring its proposal up to date.
pub async fn propose(ctx: &Context, agent: &str) -> Result<Proposed, JobError> {
    let branch = branch_for(agent);
    let fetched = fetch(ctx, &branch).await?;
    let Some(drafted) = draft(ctx, agent, fetched.files.clone()).await? else {
        return Ok(Proposed::NothingToPropose);
    };
    ctx.metrics.drafted();
    let mut view = view(ctx, agent, &branch, &fetched, &drafted).await?;
    if ctx.settings.proof.enabled && !drafted.draft.new_rules.is_empty() {
        view.permits = Some(permits(ctx, agent, &fetched, &drafted).await?);
    }
    let gathered = match drafted.draft.new_rules.is_empty() {
        true => Gathered::default(),
        false => gather(ctx, agent, &fetched, &drafted, &view).await?,
    };
    let drafted_commit = gathered.drafted_commit.map(|c| c.to_string()).unwrap_or_default();
    let branch_tip = fetched.branch_tip.map(|t| t.to_string());
    let facts = Facts {
        new_rules: drafted.draft.new_rules.len(),
        open: gathered.open.as_ref().map(|p| OpenProposal {
            number: p.number,
            body_changed: render::replace_section(&p.body, &gathered.section) != p.body,
        }),
        foreign_commits: &gathered.foreign,
        evidence_commented: gathered.evidence_commented,
        branch_holds_draft: gathered.branch_holds_draft,
        branch_tip: branch_tip.as_deref(),
        drafted_commit: &drafted_commit,
        checked_head: gathered.checked_head.as_deref(),
    };
    match plan::plan(&facts) {
        Plan::Nothing => Ok(Proposed::NothingToPropose),
        Plan::LeaveBranchAlone { author } => Err(JobError::Failed(format!(
            "{branch} has commits by {author} but no open proposal; leaving it alone"
        ))),
        Plan::AlreadyCommented { number } => Ok(Proposed::Unchanged(number)),
        Plan::CommentEvidence { number } => {
            view.foreign = gathered
                .foreign
                .iter()
                .map(|c| format!("{} by {}", &c.sha[..7.min(c.sha.len())], c.author))
                .collect();
            ctx.forge
                .comment(number, &render::takeover_comment(&view))
                .await?;
            ctx.metrics.commented();
            Ok(Proposed::Commented(number))
        }
        Plan::Publish {
            push,
            proposal,
            check_run,
        } => {
            let head = match (push, fetched.branch_tip, gathered.drafted_commit) {
                (false, Some(tip), _) => tip,
                (_, _, Some(new)) => {
                    let branch = branch.clone();
                    ctx.git(move |repo, credentials| repo.push(&branch, credentials))
                        .await?;
                    new
                }
                _ => unreachable!("the planner publishes only a drafted commit"),
            };
            let (number, url, outcome) = open_or_update(ctx, agent, &drafted, &gathered, proposal).await?;
            let head = head.to_string();
            if check_run {
                ctx.forge
                    .check_run(&verify_run(
                        &head,
                        &drafted.draft,
                        view.permits.as_ref(),
                        &ctx.settings.base_branch,
                    ))
                    .await?;
            }
            let record = ProposalRecord {
                number,
                head,
                digest: view.digest,
                url,
            };
            ctx.store
                .save_proposal(agent, &record, crate::clock::now())
                .await?;
            ctx.store.save_proposal_rules(agent, &drafted.rules).await?;
            Ok(outcome)
        }
    }
}

/// Open the proposal (with labels and reviewers) or update its body.
async fn open_or_update(
    ctx: &Context,
    agent: &str,
    drafted: &Drafted,
    gathered: &Gathered,
    step: ProposalStep,
) -> Result<(u64, String, Proposed), JobError> {
    let title = title(agent, drafted.draft.new_rules.len());
    let open = gathered.open.as_ref();
    Ok(match step {
        ProposalStep::Open => {
            let branch = branch_for(agent);
            let pr = ctx
                .forge
                .open(
                    agent,
                    &branch,
                    &ctx.settings.base_branch,
                    &title,
                    &gathered.section,
                )
                .await?;
            ctx.metrics.pr_opened();
            decorate(ctx, agent, pr.number).await?;
            (pr.number, pr.url, Proposed::Opened(pr.number))
        }
        ProposalStep::Update { number } => {
            let open = open.expect("an update has an open proposal");
            let body = render::replace_section(&open.body, &gathered.section);
            ctx.forge.update(agent, number, &title, &body).await?;
            ctx.metrics.pr_updated();
            adopt(ctx, agent, gathered, number).await?;
            (number, open.url.clone(), Proposed::Updated(number))
        }
        ProposalStep::Keep { number } => {
            let open = open.expect("kept proposals are open");
            adopt(ctx, agent, gathered, number).await?;
            (number, open.url.clone(), Proposed::Unchanged(number))
        }
    })
}

/// Labels and reviewers, as a proposal gets them when it opens.
async fn decorate(ctx: &Context, agent: &str, number: u64) -> Result<(), JobError> {
    let review = ctx.settings.review.agents.get(agent).cloned().unwrap_or_default();
    ctx.forge
        .decorate(
            number,
            &ctx.settings.labels,
            &review.reviewers,
            &review.team_reviewers,
        )
        .await?;
    Ok(())
}

/// An open proposal the store does not record was opened by a run that died
/// (or failed) before recording it, perhaps before decorating it: decorate it
/// now (both are idempotent on GitHub).
async fn adopt(ctx: &Context, agent: &str, gathered: &Gathered, number: u64) -> Result<(), JobError> {
    if gathered.recorded == Some(number) {
        return Ok(());
    }
    tracing::info!(number, "adopting a proposal opened by an earlier run");
    decorate(ctx, agent, number).await
}

async fn fetch(ctx: &Context, branch: &str) -> Result<Fetched, JobError> {
    let branch = branch.to_string();
    ctx.git(move |repo, credentials| {
        let base_tip = repo.fetch(credentials)?;
        Ok(Fetched {
            base_tip,
            files: repo.files(base_tip)?,
            branch_tip: repo.remote_tip(&branch)?,
        })
    })
    .await
}

/// The gap between `files` and the agent's calls in the window, with what was
/// turned down or ignored withheld. `None`: no calls in the window.
async fn draft(ctx: &Context, agent: &str, files: RepoFiles) -> Result<Option<Drafted>, JobError> {
    let drafting = &ctx.settings.drafting;
    let now = crate::clock::now();
    let (unused_after, window_days, who) = (drafting.unused_after, drafting.window_days, agent.to_string());
    let (mut summary, history) = ctx
        .observed(agent, move |window| {
            // Rules count as unused only once the agent was watched for the whole period.
            let watched_long_enough = window
                .first_day(&who)
                .is_some_and(|first| first <= window::day_of(now) - i64::from(unused_after) + 1);
            let history = watched_long_enough.then(|| window.summary(&who, window::span(now, unused_after)));
            (window.summary(&who, window::span(now, window_days)), history)
        })
        .await?;
    let (rejected, ignored, catalogues) = (
        ctx.store.rejections(agent).await?,
        ctx.store.ignored_tools(agent).await?,
        ctx.store.catalogues().await?,
    );
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
        return Ok(None);
    }
    let catalogue = catalogue_of(&summary, &catalogues);
    let config = drafting.clone();
    let who = agent.to_string();
    let mut drafted = blocking(move || {
        let input = DraftInput {
            files: &files,
            summary: &summary,
            catalogue: catalogue.as_ref(),
            config: &config,
        };
        let draft = draft_remembering(&input, &rejected)?;
        let unused = history
            .map(|h| unused_generated(&files, &h, &who))
            .unwrap_or_default();
        let rules = proposed_rules(&draft);
        Ok(Drafted { draft, unused, rules })
    })
    .await?;
    if let Some(evidence) = drafted
        .draft
        .evidence
        .agents
        .iter_mut()
        .find(|a| a.agent == agent)
    {
        evidence.withheld.extend(ignored_calls);
    }
    Ok(Some(drafted))
}

/// The catalogues gateways reported for the servers these calls went to, as
/// one (`None` when there is none). One that no longer parses is skipped.
fn catalogue_of(summary: &Summary, stored: &[(String, String)]) -> Option<Catalogue> {
    let servers: BTreeSet<&str> = summary
        .slices()
        .into_iter()
        .flat_map(|(_, _, slice)| slice.servers.iter().map(String::as_str))
        .collect();
    let parsed: Vec<Catalogue> = stored
        .iter()
        .filter(|(server, _)| servers.contains(server.as_str()))
        .filter_map(|(server, text)| match catalogue::parse(server, text) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(%server, error = %e, "a stored catalogue does not parse; drafting without it");
                None
            }
        })
        .collect();
    (!parsed.is_empty()).then(|| catalogue::merge(parsed))
}

/// What the proposal shows: the evidence, the diff, and the digest that
/// identifies this draft's content.
async fn view(
    ctx: &Context,
    agent: &str,
    branch: &str,
    fetched: &Fetched,
    drafted: &Drafted,
) -> Result<ProposalView, JobError> {
    let base = &ctx.settings.base_branch;
    let warning = match drafted.draft.new_rules.is_empty() {
        true => None,
        false => plan::protection_warning(base, ctx.forge.code_owner_reviews_required(base).await?),
    };
    let days = ctx.settings.drafting.window_days;
    let span = window::span(crate::clock::now(), days);
    let diff = render::diff(&drafted.draft.changes);
    let evidence = render::evidence(&drafted.draft.evidence);
    let digest = hex::encode(&Sha256::digest(format!(
        "{}\n{diff}\n{evidence}",
        fetched.base_tip
    )))[..16]
        .to_string();
    Ok(ProposalView {
        agent: agent.to_string(),
        base: base.clone(),
        branch: branch.to_string(),
        window_days: days,
        window_start: rfc3339(span.start),
        window_end: rfc3339(span.end),
        evidence,
        diff,
        files: drafted.draft.changes.len(),
        digest,
        foreign: Vec::new(),
        warning,
        unused: drafted.unused.clone(),
        unused_after: ctx.settings.drafting.unused_after,
        permits: None,
    })
}

/// What the branch newly permits over the base, proved ([`crate::proof`]): the
/// branch as the bot drafts it; once someone else pushed to it, the branch as
/// it is, with each drafted rule they edited compared with the bot's version.
async fn permits(
    ctx: &Context,
    agent: &str,
    fetched: &Fetched,
    drafted: &Drafted,
) -> Result<Section, JobError> {
    let ours = ctx
        .store
        .proposal(agent)
        .await?
        .and_then(|p| Oid::from_str(&p.head).ok());
    let taken_over = fetched
        .branch_tip
        .filter(|tip| ours.is_some_and(|ours| ours != *tip));
    let (base, draft) = (
        fetched.files.clone(),
        applied(&fetched.files, &drafted.draft.changes),
    );
    let (head, bots) = match (taken_over, ours) {
        (Some(tip), Some(ours)) => {
            ctx.git(move |repo, _| Ok((repo.files(tip)?, Some(repo.files(ours)?))))
                .await?
        }
        _ => (draft, None),
    };
    let prover = Prover::of(&ctx.settings.proof);
    blocking(move || Ok(prover.section(&base, &head, bots.as_ref()))).await
}

/// The open proposal, the branch's foreign commits, and the drafted commit
/// (built in the mirror, not pushed).
async fn gather(
    ctx: &Context,
    agent: &str,
    fetched: &Fetched,
    drafted: &Drafted,
    view: &ProposalView,
) -> Result<Gathered, JobError> {
    let open = ctx.forge.find_open(agent, &view.branch).await?;
    let (base_tip, branch_tip) = (fetched.base_tip, fetched.branch_tip);
    let (branch, changes) = (view.branch.clone(), drafted.draft.changes.clone());
    let message = commit_message(agent, drafted.draft.new_rules.len(), view);
    let (foreign, drafted_commit, branch_holds_draft) = ctx
        .git(move |repo, _| {
            let foreign = match branch_tip {
                Some(tip) => repo.foreign_commits(tip, base_tip)?,
                None => Vec::new(),
            };
            let new = repo.commit(base_tip, &branch, &changes, &message)?;
            let holds = match branch_tip {
                Some(tip) => repo.same_tree(tip, new)? && repo.parent(tip)? == Some(base_tip),
                None => false,
            };
            Ok((foreign, new, holds))
        })
        .await?;
    let evidence_commented = match (&open, foreign.is_empty()) {
        (Some(pr), false) => {
            let marker = render::comment_marker(&view.digest);
            ctx.forge
                .comments(pr.number)
                .await?
                .iter()
                .any(|c| c.contains(&marker))
        }
        _ => false,
    };
    let recorded = ctx.store.proposal(agent).await?;
    let checked_head = recorded.as_ref().map(|p| p.head.clone());
    Ok(Gathered {
        recorded: recorded.map(|p| p.number),
        open,
        section: render::proposal(view),
        foreign,
        evidence_commented,
        drafted_commit: Some(drafted_commit),
        branch_holds_draft,
        checked_head,
    })
}

fn title(agent: &str, rules: usize) -> String {
    format!(
        "shadowdraft: {rules} new rule{} for agent {agent}",
        if rules == 1 { "" } else { "s" }
    )
}

fn commit_message(agent: &str, rules: usize, view: &ProposalView) -> String {
    format!(
        "{}\n\nDrafted from observed calls {} → {}.\nEvidence: see the pull request.",
        title(agent, rules),
        view.window_start,
        view.window_end
    )
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
/// job would have failed before pushing; and `check --against` the base: it
/// fails when the branch permits calls beyond the drafted rules.
fn verify_run(head: &str, drafted: &Draft, permits: Option<&Section>, base: &str) -> CheckRun {
    let t = &drafted.evidence.totals;
    let (beyond, against) = permits.map_or((false, String::new()), |p| p.check_against(base));
    CheckRun {
        name: "shadowdraft/verify".into(),
        head_sha: head.to_string(),
        conclusion: if beyond { "failure" } else { "success" }.into(),
        title: match beyond {
            false => format!(
                "{} new rules validate; {} observed calls replay as allowed",
                t.new_rules,
                t.drafted + t.already_allowed
            ),
            true => format!("the branch permits calls {base} denies beyond its {} drafted rules", t.new_rules),
        },
        summary: format!(
            "Strict Cedar validation against `policies/schema.cedarschema`: passed.\n\n\
             Replay of every observed call shape through the drafted policy: {} calls allowed by the new rules, \
             {} already allowed, {} cannot be represented and stay denied, {} denied by a `forbid` rule.{against}",
            t.drafted, t.already_allowed, t.unrepresentable, t.forbidden
        ),
    }
}
