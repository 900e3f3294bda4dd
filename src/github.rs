//! Placeholder until the GitHub client lands from its branch.
#![allow(dead_code, unused_variables)]
use std::collections::BTreeMap;
pub struct AppSettings { pub api_url: String, pub app_id: u64, pub private_key_pem: Vec<u8>, pub installation_id: Option<u64>, pub owner: String, pub repo: String }
pub struct PullRef { pub number: u64, pub head_sha: String, pub html_url: String, pub body: String }
pub struct CheckRun { pub name: String, pub head_sha: String, pub conclusion: String, pub title: String, pub summary: String }
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("retryable {status}: {message}")]
    Retryable { status: u16, retry_after: Option<std::time::Duration>, message: String },
    #[error("rejected {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("transport: {0}")]
    Transport(String),
}
pub struct GitHub;
impl GitHub {
    pub fn new(settings: AppSettings) -> anyhow::Result<GitHub> { todo!() }
    pub async fn installation_token(&self) -> Result<String, GitHubError> { todo!() }
    pub async fn find_open_pull(&self, head_branch: &str) -> Result<Option<PullRef>, GitHubError> { todo!() }
    pub async fn open_pull(&self, head_branch: &str, base: &str, title: &str, body: &str) -> Result<PullRef, GitHubError> { todo!() }
    pub async fn update_pull(&self, number: u64, title: &str, body: &str) -> Result<(), GitHubError> { todo!() }
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), GitHubError> { todo!() }
    pub async fn request_reviewers(&self, number: u64, users: &[String], teams: &[String]) -> Result<(), GitHubError> { todo!() }
    pub async fn comment_bodies(&self, number: u64) -> Result<Vec<String>, GitHubError> { todo!() }
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), GitHubError> { todo!() }
    pub async fn create_check_run(&self, run: &CheckRun) -> Result<(), GitHubError> { todo!() }
    pub fn errors_by_status(&self) -> BTreeMap<u16, u64> { todo!() }
}
