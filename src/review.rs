//! The review loop: what the bot does with the webhook deliveries the worker
//! takes from the store. Merged proposals are promoted, closed ones and rules
//! deleted before merging are remembered as turned down, commands in comments
//! are carried out for people with write access.

use crate::config::Forge as ForgeSettings;
use crate::core::commands::{self, Command};
use crate::core::draft::Rejection;
use crate::core::policies::{Policies, RepoFiles};
use crate::forge::ForgeError;
use crate::repo::{branch_for, BRANCH_PREFIX};
use crate::store::Event;
use crate::worker::Context;
use serde_json::Value;
use std::collections::BTreeSet;

/// Handle one delivery. Errors leave it queued for a retry.
pub async fn handle(ctx: &Context, event: &Event) -> Result<(), ForgeError> {
    let payload: Value = serde_json::from_slice(&event.payload)
        .map_err(|e| ForgeError::Failed(format!("delivery {} is not JSON: {e}", event.delivery)))?;
    if !ours(ctx, &payload) {
        return Ok(());
    }
    match event.event.as_str() {
        "pull_request" => pull_request(ctx, &payload).await,
        "push" => push(ctx, &payload),
        "installation" | "installation_repositories" => installation(ctx, &event.event, &payload),
        "issue_comment" | "pull_request_review" | "pull_request_review_comment" => {
            comment(ctx, event, &payload).await
        }
        _ => Ok(()),
    }
}

/// Deliveries about other repositories of the installation are not ours.
fn ours(ctx: &Context, payload: &Value) -> bool {
    let ForgeSettings::Github(gh) = &ctx.settings.forge else {
        return true;
    };
    match payload["repository"]["full_name"].as_str() {
        Some(name) => name.eq_ignore_ascii_case(&format!("{}/{}", gh.app.owner, gh.app.repo)),
        // Installation events name no single repository.
        None => true,
    }
}

async fn pull_request(ctx: &Context, payload: &Value) -> Result<(), ForgeError> {
    let pull = &payload["pull_request"];
    let Some(agent) = pull["head"]["ref"]
        .as_str()
        .and_then(|r| r.strip_prefix(BRANCH_PREFIX))
    else {
        return Ok(());
    };
    let agent = agent.to_string();
    let number = pull["number"].as_u64().unwrap_or_default();
    match payload["action"].as_str() {
        Some("closed") if pull["merged"].as_bool() == Some(true) => {
            merged(ctx, &agent, number, pull["merge_commit_sha"].as_str()).await
        }
        Some("closed") => closed(ctx, &agent, number).await,
        Some("synchronize") => {
            // Foreign commits are detected from the branch itself when the agent
            // is next drafted; nothing to do but note it.
            tracing::info!(%agent, number, sender = ?payload["sender"]["login"], "proposal branch updated");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Promote what made it to the base branch; remember rules deleted on the way.
async fn merged(
    ctx: &Context,
    agent: &str,
    number: u64,
    merge_commit: Option<&str>,
) -> Result<(), ForgeError> {
    let main = base_files(ctx).await?;
    let on_main: BTreeSet<String> = match Policies::load(&main) {
        Ok(policies) => policies.rules.iter().map(|r| r.id.to_string()).collect(),
        Err(errors) => {
            return Err(ForgeError::Failed(format!(
                "the merged base branch does not parse: {}",
                errors[0]
            )))
        }
    };
    let now = crate::clock::now();
    {
        let store = ctx.store.lock().expect("store lock");
        for rule in store.proposal_rules(agent)? {
            if on_main.contains(&rule.id) {
                store.promote(agent, &rule, number, now)?;
            } else {
                let rejection = Rejection {
                    calls: rule.calls,
                    reason: format!("deleted from #{number} before it was merged"),
                    permanent: false,
                };
                store.reject(agent, &rule.fingerprint, &rejection)?;
            }
        }
        store.forget_proposal(agent)?;
        store.queue(agent, now)?;
        if let Some(commit) = merge_commit {
            store.start_rollout(number, agent, commit)?;
        }
    }
    delete_branch(ctx, agent).await;
    ctx.wake.notify_one();
    Ok(())
}

/// Closed without merging: every rule of the proposal is turned down.
async fn closed(ctx: &Context, agent: &str, number: u64) -> Result<(), ForgeError> {
    {
        let store = ctx.store.lock().expect("store lock");
        for rule in store.proposal_rules(agent)? {
            let rejection = Rejection {
                calls: rule.calls,
                reason: format!("#{number} was closed without merging"),
                permanent: false,
            };
            store.reject(agent, &rule.fingerprint, &rejection)?;
        }
        store.forget_proposal(agent)?;
    }
    delete_branch(ctx, agent).await;
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

async fn base_files(ctx: &Context) -> Result<RepoFiles, ForgeError> {
    ctx.git(|repo, credentials| {
        let tip = repo.fetch(credentials)?;
        repo.files(tip)
    })
    .await
}

/// The base branch moved: redraft every agent with an open proposal against it.
fn push(ctx: &Context, payload: &Value) -> Result<(), ForgeError> {
    let base = format!("refs/heads/{}", ctx.settings.base_branch);
    if payload["ref"].as_str() != Some(base.as_str()) {
        return Ok(());
    }
    let store = ctx.store.lock().expect("store lock");
    let now = crate::clock::now();
    for (agent, _) in store.proposals()? {
        store.queue(&agent, now)?;
    }
    drop(store);
    ctx.wake.notify_one();
    Ok(())
}

fn installation(ctx: &Context, event: &str, payload: &Value) -> Result<(), ForgeError> {
    let Some(id) = payload["installation"]["id"].as_u64() else {
        return Ok(());
    };
    let names = |key: &str| -> Vec<String> {
        payload[key]
            .as_array()
            .map(|repos| {
                repos
                    .iter()
                    .filter_map(|r| r["full_name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let store = ctx.store.lock().expect("store lock");
    let now = crate::clock::now();
    let action = payload["action"].as_str().unwrap_or_default();
    match (event, action) {
        ("installation", "deleted") => store.set_installation(id, None, now)?,
        ("installation", _) => store.set_installation(id, Some(&names("repositories")), now)?,
        ("installation_repositories", _) => {
            let mut repos: BTreeSet<String> = store.installation_repositories(id)?.into_iter().collect();
            repos.extend(names("repositories_added"));
            for gone in names("repositories_removed") {
                repos.remove(&gone);
            }
            let repos: Vec<String> = repos.into_iter().collect();
            store.set_installation(id, Some(&repos), now)?;
        }
        _ => {}
    }
    if let ForgeSettings::Github(gh) = &ctx.settings.forge {
        let name = format!("{}/{}", gh.app.owner, gh.app.repo);
        if store
            .installation_repositories(id)?
            .iter()
            .all(|r| !r.eq_ignore_ascii_case(&name))
        {
            tracing::warn!(installation = id, repository = %name, "the App no longer serves the policy repository");
        }
    }
    Ok(())
}

/// Commands in a PR comment, review or review comment.
async fn comment(ctx: &Context, event: &Event, payload: &Value) -> Result<(), ForgeError> {
    let (number, item) = match event.event.as_str() {
        "issue_comment" if payload["issue"]["pull_request"].is_object() => {
            (&payload["issue"]["number"], &payload["comment"])
        }
        "pull_request_review" => (&payload["pull_request"]["number"], &payload["review"]),
        "pull_request_review_comment" => (&payload["pull_request"]["number"], &payload["comment"]),
        _ => return Ok(()),
    };
    let action = payload["action"].as_str().unwrap_or_default();
    if !matches!(action, "created" | "submitted") {
        return Ok(());
    }
    let Some(number) = number.as_u64() else {
        return Ok(());
    };
    let user = item["user"]["login"].as_str().unwrap_or_default().to_string();
    // The bot's own words are never commands to itself.
    if item["user"]["type"].as_str() == Some("Bot") || user.ends_with("[bot]") {
        return Ok(());
    }
    let parsed = commands::parse(item["body"].as_str().unwrap_or_default());
    if parsed.is_empty() {
        return Ok(());
    }
    let Some(agent) = agent_of(ctx, number, payload).await? else {
        return Ok(());
    };
    let marker = format!("<!-- shadowdraft:reply:{} -->", event.delivery);
    if ctx
        .forge
        .comments(number)
        .await?
        .iter()
        .any(|c| c.contains(&marker))
    {
        return Ok(());
    }
    let reply = if ctx.forge.can_write(&user).await? {
        let mut lines = Vec::new();
        for command in parsed {
            lines.push(carry_out(ctx, &agent, number, &user, command).await?);
        }
        lines.join("\n\n")
    } else {
        format!(
            "@{user} only people with write access to this repository can give shadowdraft commands; nothing was done."
        )
    };
    ctx.forge.comment(number, &format!("{marker}\n{reply}")).await?;
    ctx.wake.notify_one();
    Ok(())
}

/// Which agent a pull request proposes for, if it is one of the bot's.
async fn agent_of(ctx: &Context, number: u64, payload: &Value) -> Result<Option<String>, ForgeError> {
    if let Some(head) = payload["pull_request"]["head"]["ref"].as_str() {
        return Ok(head.strip_prefix(BRANCH_PREFIX).map(str::to_string));
    }
    if let Some(agent) = ctx.store.lock().expect("store lock").agent_of_pull(number)? {
        return Ok(Some(agent));
    }
    Ok(ctx
        .forge
        .pull_head(number)
        .await?
        .and_then(|head| head.strip_prefix(BRANCH_PREFIX).map(str::to_string)))
}

async fn carry_out(
    ctx: &Context,
    agent: &str,
    number: u64,
    user: &str,
    command: Command,
) -> Result<String, ForgeError> {
    let now = crate::clock::now();
    Ok(match command {
        Command::Help => format!("shadowdraft commands:\n\n{}", commands::HELP),
        Command::Unknown(line) => format!(
            "`{}` is not a shadowdraft command. These are:\n\n{}",
            line.replace('`', "'"),
            commands::HELP
        ),
        Command::Redraft => {
            let store = ctx.store.lock().expect("store lock");
            store.forgive(agent)?;
            store.queue(agent, now)?;
            format!("Redrafting `{agent}` from the current evidence, turned-down rules and ignored tools included.")
        }
        Command::Ignore(target) => {
            let store = ctx.store.lock().expect("store lock");
            let reason = format!("ignored by @{user} in #{number}");
            if target.contains('/') {
                let rules = store.proposal_rules(agent)?;
                let Some(rule) = rules.iter().find(|r| r.id == target) else {
                    return Ok(format!("There is no rule `{target}` in this proposal."));
                };
                let rejection = Rejection {
                    calls: rule.calls,
                    reason,
                    permanent: true,
                };
                store.reject(agent, &rule.fingerprint, &rejection)?;
            } else {
                store.ignore_tool(agent, &target, &reason)?;
            }
            store.queue(agent, now)?;
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
