//! The local forge of the embedded default: each proposal is kept in the
//! store, its body written to `data_dir/proposals/<agent>.md`, and listed at
//! `GET /v1/proposals`: the whole loop without a GitHub account.

use super::Proposal;
use crate::store::{LocalPull, Store};
use std::path::PathBuf;
use std::sync::Arc;

pub struct LocalForge {
    store: Arc<Store>,
    dir: PathBuf,
}

impl LocalForge {
    pub fn new(store: Arc<Store>, dir: PathBuf) -> LocalForge {
        LocalForge { store, dir }
    }

    pub async fn find_open(&self, agent: &str) -> anyhow::Result<Option<Proposal>> {
        Ok(self
            .store
            .local_pulls()
            .await?
            .into_iter()
            .find(|p| p.agent == agent && p.state == "open")
            .map(|p| Proposal {
                url: self.url(agent),
                number: p.number,
                body: p.body,
            }))
    }

    pub async fn open(
        &self,
        agent: &str,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> anyhow::Result<Proposal> {
        let now = crate::clock::now();
        let number = self
            .store
            .open_local_pull(&LocalPull {
                number: 0,
                agent: agent.into(),
                branch: branch.into(),
                base: base.into(),
                title: title.into(),
                body: body.into(),
                state: "open".into(),
                created_at: now,
                updated_at: now,
            })
            .await?;
        self.write_body(agent, body)?;
        Ok(Proposal {
            number,
            url: self.url(agent),
            body: body.into(),
        })
    }

    pub async fn update(&self, agent: &str, number: u64, title: &str, body: &str) -> anyhow::Result<()> {
        self.store
            .update_local_pull(number, title, body, crate::clock::now())
            .await?;
        self.write_body(agent, body)
    }

    pub async fn comments(&self, number: u64) -> anyhow::Result<Vec<String>> {
        self.store.local_comments(number).await
    }

    pub async fn comment(&self, number: u64, body: &str) -> anyhow::Result<()> {
        self.store
            .add_local_comment(number, body, crate::clock::now())
            .await
    }

    fn url(&self, agent: &str) -> String {
        self.file(agent).display().to_string()
    }

    fn write_body(&self, agent: &str, body: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.file(agent), body)?;
        Ok(())
    }

    /// `proposals/<safe name>.md`: any agent id makes a safe file name.
    fn file(&self, agent: &str) -> PathBuf {
        self.dir
            .join(format!("{}.md", crate::core::names::safe_name(agent)))
    }
}
