//! The review loop: what the bot does with the webhook events the worker
//! takes from the store. Merged proposals are promoted, closed ones and rules
//! deleted before merging are remembered as turned down ([`crate::core::review`]
//! decides which), commands in comments are carried out for people with
//! write access.

use super::events::Event;
use super::{agent_key, Context, JobError};
use crate::config::ForgeSettings;
use crate::core::commands::{self, Command};
use crate::core::draft::Rejection;
use crate::core::policies::{Policies, RepoFiles};
use crate::core::review::{self, Verdicts};
use crate::git::{agent_of_branch, branch_for};
use crate::store::Delivery;
use std::collections::BTreeSet;

/// Handle one stored delivery. Errors leave it queued for a retry.
pub async fn handle(ctx: &Context, delivery: &Delivery) -> Result<(), JobError> {
    let event: Event = match serde_json::from_slice(&delivery.payload) {
        Ok(event) => event,
        Err(e) => {
            // Stored by another version of the bot: nothing to retry.
            tracing::error!(delivery = %delivery.delivery, error = %e, "a stored delivery does not decode; dropped");
            return Ok(());
        }
    };
    if !ours(ctx, &event) {
        return Ok(());
    }
    match event {
        Event::PullRequestClosed {
            number,
            head,
            merged,
            merge_commit,
            ..
        } => {
            let Some(agent) = agent_of(ctx, number, Some(&head)).await? else {
                return Ok(());
            };
            match merged {
                true => promote(ctx, &agent, number, merge_commit.as_deref()).await,
                false => turn_down(ctx, &agent, number).await,
            }
        }
        Event::PullRequestSynchronized {
            number, head, sender, ..
        } => {
            // Foreign commits are detected from the branch itself when the agent
            // is next drafted; nothing to do but note it.
            if let Some(agent) = agent_of_branch(&head) {
                tracing::info!(%agent, number, ?sender, "proposal branch updated");
            }
            Ok(())
        }
        Event::Push { git_ref, .. } => push(ctx, &git_ref).await,
        Event::Installation {
            installation,
            deleted,
            repositories,
        } => {
            let repositories = (!deleted).then_some(repositories);
            ctx.store
                .set_installation(installation, repositories.as_deref(), crate::clock::now())
                .await?;
            warn_if_not_served(ctx, installation).await
        }
        Event::InstallationRepositories {
            installation,
            added,
            removed,
        } => {
            let mut repos: BTreeSet<String> = ctx
                .store
                .installation_repositories(installation)
                .await?
                .into_iter()
                .collect();
            repos.extend(added);
            for gone in removed {
                repos.remove(&gone);
            }
            let repos: Vec<String> = repos.into_iter().collect();
            ctx.store
                .set_installation(installation, Some(&repos), crate::clock::now())
                .await?;
            warn_if_not_served(ctx, installation).await
        }
        Event::Comment {
            number,
            author,
            by_bot,
            text,
            head,
            ..
        } => {
            // The bot's own words are never commands to itself.
            if by_bot {
                return Ok(());
            }
            comment(ctx, &delivery.delivery, number, &author, &text, head.as_deref()).await
        }
    }
}

/// Events about other repositories of the installation are not ours.
fn ours(ctx: &Context, event: &Event) -> bool {
    let (ForgeSettings::Github(gh), Some(name)) = (&ctx.settings.forge, event.repository()) else {
        return true;
    };
    name.eq_ignore_ascii_case(&format!("{}/{}", gh.app.owner, gh.app.repo))
}

/// Promote what made it to the base branch; remember rules deleted on the way.
async fn promote(
    ctx: &Context,
    agent: &str,
    number: u64,
    merge_commit: Option<&str>,
) -> Result<(), JobError> {
    let _held = ctx.store.lock(&agent_key(agent)).await?;
    let main = base_files(ctx).await?;
    let on_main: BTreeSet<String> = match Policies::load(&main) {
        Ok(policies) => policies.rules.iter().map(|r| r.id.to_string()).collect(),
        Err(errors) => {
            return Err(JobError::Failed(format!(
                "the merged base branch does not parse: {}",
                errors[0]
            )))
        }
    };
    let now = crate::clock::now();
    let store = &ctx.store;
    let rules = store.proposal_rules(agent).await?;
    let verdicts = review::merged(&rules, &on_main, number);
    for rule in &verdicts.promoted {
        store.promote(agent, rule, number, now).await?;
    }
    remember(store, agent, &verdicts).await?;
    store.forget_proposal(agent).await?;
    store.queue(agent, now).await?;
    if let Some(commit) = merge_commit {
        store.start_rollout(number, agent, commit).await?;
    }
    delete_branch(ctx, agent).await;
    ctx.wake.notify_one();
    Ok(())
}

/// Closed without merging: every rule of the proposal is turned down.
async fn turn_down(ctx: &Context, agent: &str, number: u64) -> Result<(), JobError> {
    let _held = ctx.store.lock(&agent_key(agent)).await?;
    let rules = ctx.store.proposal_rules(agent).await?;
    remember(&ctx.store, agent, &review::closed(&rules, number)).await?;
    ctx.store.forget_proposal(agent).await?;
    delete_branch(ctx, agent).await;
    Ok(())
}

async fn remember(store: &crate::store::Store, agent: &str, verdicts: &Verdicts<'_>) -> anyhow::Result<()> {
    for (fingerprint, rejection) in &verdicts.turned_down {
        store.reject(agent, fingerprint, rejection).await?;
    }
    Ok(())
}

/// A closed proposal's branch goes, so the next proposal starts clean.
async fn delete_branch(ctx: &Context, agent: &str) {
    if !ctx.settings.review.delete_branches {
        return;
    }
    let branch = branch_for(agent);
    let result = ctx
        .git(move |repo, credentials| repo.delete_branch(&branch, credentials))
        .await;
    if let Err(e) = result {
        tracing::warn!(%agent, error = %e, "cannot delete the proposal branch");
    }
}

async fn base_files(ctx: &Context) -> Result<RepoFiles, JobError> {
    ctx.git(|repo, credentials| {
        let tip = repo.fetch(credentials)?;
        repo.files(tip)
    })
    .await
}

/// The base branch moved: redraft every agent with an open proposal against it.
async fn push(ctx: &Context, git_ref: &str) -> Result<(), JobError> {
    if git_ref != format!("refs/heads/{}", ctx.settings.base_branch) {
        return Ok(());
    }
    let now = crate::clock::now();
    for (agent, _) in ctx.store.proposals().await? {
        ctx.store.queue(&agent, now).await?;
    }
    ctx.wake.notify_one();
    Ok(())
}

async fn warn_if_not_served(ctx: &Context, installation: u64) -> Result<(), JobError> {
    if let ForgeSettings::Github(gh) = &ctx.settings.forge {
        let name = format!("{}/{}", gh.app.owner, gh.app.repo);
        if ctx
            .store
            .installation_repositories(installation)
            .await?
            .iter()
            .all(|r| !r.eq_ignore_ascii_case(&name))
        {
            tracing::warn!(installation, repository = %name, "the App no longer serves the policy repository");
        }
    }
    Ok(())
}

/// Commands in a PR comment, review or review comment, answered once per delivery.
async fn comment(
    ctx: &Context,
    delivery: &str,
    number: u64,
    author: &str,
    text: &str,
    head: Option<&str>,
) -> Result<(), JobError> {
    let parsed = commands::parse(text);
    if parsed.is_empty() {
        return Ok(());
    }
    let Some(agent) = agent_of(ctx, number, head).await? else {
        return Ok(());
    };
    let _held = ctx.store.lock(&agent_key(&agent)).await?;
    let marker = format!("<!-- shadowdraft:reply:{delivery} -->");
    if ctx
        .forge
        .comments(number)
        .await?
        .iter()
        .any(|c| c.contains(&marker))
    {
        return Ok(());
    }
    let reply = if ctx.forge.can_write(author).await? {
        let mut lines = Vec::new();
        for command in parsed {
            lines.push(carry_out(ctx, &agent, number, author, command).await?);
        }
        lines.join("\n\n")
    } else {
        format!(
            "@{author} only people with write access to this repository can give shadowdraft commands; nothing was done."
        )
    };
    ctx.forge.comment(number, &format!("{marker}\n{reply}")).await?;
    ctx.wake.notify_one();
    Ok(())
}

/// Which agent a pull request proposes for, if it is one of the bot's: the
/// proposal the bot recorded, else the agent its head branch names.
async fn agent_of(ctx: &Context, number: u64, head: Option<&str>) -> Result<Option<String>, JobError> {
    if let Some(agent) = ctx.store.agent_of_pull(number).await? {
        return Ok(Some(agent));
    }
    let head = match head {
        Some(head) => head.to_string(),
        None => match ctx.forge.pull_head(number).await? {
            Some(head) => head,
            None => return Ok(None),
        },
    };
    Ok(agent_of_branch(&head))
}

async fn carry_out(
    ctx: &Context,
    agent: &str,
    number: u64,
    user: &str,
    command: Command,
) -> Result<String, JobError> {
    let now = crate::clock::now();
    Ok(match command {
        Command::Help => format!("shadowdraft commands:\n\n{}", commands::help()),
        Command::Unknown(line) => format!(
            "`{}` is not a shadowdraft command. These are:\n\n{}",
            line.replace('`', "'"),
            commands::help()
        ),
        Command::Redraft => {
            ctx.store.forgive(agent).await?;
            ctx.store.queue(agent, now).await?;
            format!("Redrafting `{agent}` from the current evidence, turned-down rules and ignored tools included.")
        }
        Command::Ignore(target) => {
            let store = &ctx.store;
            let reason = format!("ignored by @{user} in #{number}");
            if target.contains('/') {
                let rules = store.proposal_rules(agent).await?;
                let Some(rule) = rules.iter().find(|r| r.id == target) else {
                    return Ok(format!("There is no rule `{target}` in this proposal."));
                };
                let rejection = Rejection {
                    calls: rule.calls,
                    reason,
                    permanent: true,
                };
                store.reject(agent, &rule.fingerprint, &rejection).await?;
            } else {
                store.ignore_tool(agent, &target, &reason).await?;
            }
            store.queue(agent, now).await?;
            format!("`{target}` will not be proposed again for `{agent}`; redrafting without it.")
        }
        Command::Explain(rule) => {
            let body = ctx
                .forge
                .find_open(agent, &branch_for(agent))
                .await?
                .map(|p| p.body)
                .unwrap_or_default();
            match crate::render::rule_section(&body, &rule) {
                Some(section) => format!("Evidence for `{rule}`:\n\n{section}"),
                None => format!("There is no rule `{rule}` in this proposal."),
            }
        }
    })
}
