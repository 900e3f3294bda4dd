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
    let (pending, nodes) = {
        let store = ctx.store();
        (store.pending_rollouts()?, store.nodes(now - ACTIVE_SECONDS)?)
    };
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
        let short = &merge[..merge.len().min(7)];
        let body = format!(
            "<!-- shadowdraft:rollout:{merge} -->\nRolled out: `{short}` is loaded by {k} of {n} enforcement nodes \
             (nodes that reported in the last 24 hours)."
        );
        ctx.forge.comment(pull, &body).await?;
        ctx.store().announce_rollout(pull)?;
        tracing::info!(pull, %merge, nodes = n, "rollout complete");
    }
    Ok(waiting)
}
