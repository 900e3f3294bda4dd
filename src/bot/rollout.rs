//! Rollout status: batches say which policy commit each enforcement node
//! enforces; once every active node has loaded a merged proposal, the bot says
//! so on the pull request, once.

use super::{Context, JobError};

/// Nodes that reported within this many seconds count as active.
pub const ACTIVE_SECONDS: i64 = 24 * 3600;

/// Announce the merged proposals every active node has loaded. Returns
/// whether some are still waiting.
pub async fn check(ctx: &Context) -> Result<bool, JobError> {
    let now = crate::clock::now();
    let (pending, nodes) = (
        ctx.store.pending_rollouts().await?,
        ctx.store.nodes(now - ACTIVE_SECONDS).await?,
    );
    if pending.is_empty() {
        return Ok(false);
    }
    if nodes.is_empty() {
        return Ok(true);
    }
    let n = nodes.len();
    let loaded: Vec<(u64, String, usize)> = ctx
        .git(move |repo, credentials| {
            // Nodes may enforce commits newer than the mirror has seen.
            if nodes.iter().any(|(_, commit, _)| !repo.knows(commit)) {
                repo.fetch(credentials)?;
            }
            Ok(pending
                .into_iter()
                .map(|(pull, merge)| {
                    let k = nodes
                        .iter()
                        .filter(|(_, commit, _)| repo.includes(commit, &merge))
                        .count();
                    (pull, merge, k)
                })
                .collect())
        })
        .await?;
    let mut waiting = false;
    for (pull, merge, k) in loaded {
        if k < n {
            waiting = true;
            continue;
        }
        // One replica at a time; a replica that died after commenting left the marker.
        let _held = ctx.store.lock(&format!("rollout:{pull}")).await?;
        if !ctx
            .store
            .pending_rollouts()
            .await?
            .iter()
            .any(|(p, _)| *p == pull)
        {
            continue;
        }
        let marker = format!("<!-- shadowdraft:rollout:{merge} -->");
        let short = &merge[..merge.len().min(7)];
        let body = format!(
            "{marker}\nRolled out: `{short}` is loaded by {k} of {n} enforcement nodes \
             (nodes that reported in the last 24 hours)."
        );
        if !ctx
            .forge
            .comments(pull)
            .await?
            .iter()
            .any(|c| c.contains(&marker))
        {
            ctx.forge.comment(pull, &body).await?;
        }
        ctx.store.announce_rollout(pull).await?;
        tracing::info!(pull, %merge, nodes = n, "rollout complete");
    }
    Ok(waiting)
}
