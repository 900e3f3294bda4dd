//! A whole deployment for tests: a bare policy repository behind `git
//! http-backend`, the fake GitHub, and `shadowdraft serve` settings wired to
//! them, with helpers to post observations and deliver signed webhooks.

use super::fake_github::{key, FakeGitHub};
use super::git_bridge::{git, init_bare, GitBridge};
use super::http::{request, Reply};
use serde_json::{json, Value};
use shadowdraft::config::{Config, Settings};
use shadowdraft::core::observation::{parse_batch, Origin};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft::serve::Running;
use std::path::{Path, PathBuf};

pub const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";
pub const SECRET: &str = "test-ingest-secret-that-is-32-bytes-long";
pub const AGENT: &str = "support-bot-001";
pub const APP_ID: u64 = 31337;

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub github: FakeGitHub,
    pub bridge: GitBridge,
    pub bare: PathBuf,
}

impl Rig {
    pub fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("git/policies.git");
        init_bare(
            &bare,
            &[
                (
                    "policies/schema.cedarschema",
                    "entity Agent;\n\nentity McpServer;\n",
                ),
                ("README.md", "# policies\n"),
            ],
        )
        .unwrap();
        let github = FakeGitHub::start(
            APP_ID,
            &key("app-public-key.pem"),
            "acme",
            "agent-policies",
            Some(bare.clone()),
        );
        let bridge = GitBridge::start(&dir.path().join("git"), github.token_checker());
        Rig {
            dir,
            github,
            bridge,
            bare,
        }
    }

    pub fn settings(&self) -> Settings {
        let key_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-private-key.pem");
        let yaml = format!(
            r#"
listen: 127.0.0.1:0
data_dir: {data}
policy_repo:
  url: {url}
forge:
  kind: github
  api_url: {api}
  app_id: {APP_ID}
  private_key_path: {key}
  repository: acme/agent-policies
  webhook_secrets_env: [TEST_WEBHOOK_OLD, TEST_WEBHOOK_SECRET]
ingest:
  hs256_secret_env: TEST_INGEST_SECRET
  max_body_bytes: 65536
review:
  security_team: "@acme/security"
  agents:
    {AGENT}: {{reviewers: [alice], team_reviewers: [security]}}
drafting:
  debounce_seconds: 0
"#,
            data = self.dir.path().join("data").display(),
            url = self.bridge.repo_url("policies"),
            api = self.github.url(),
            key = key_path.display(),
        );
        Config::parse("test.yaml", &yaml)
            .unwrap()
            .settings("test.yaml", &|var| match var {
                "TEST_INGEST_SECRET" => Some(SECRET.to_string()),
                "TEST_WEBHOOK_SECRET" => Some(WEBHOOK_SECRET.to_string()),
                "TEST_WEBHOOK_OLD" => Some("a-rotated-out-secret".to_string()),
                _ => None,
            })
            .unwrap()
    }

    /// Files of a branch of the bare repository, as `shadowdraft check` reads them.
    pub fn files_at(&self, branch: &str) -> RepoFiles {
        let mut files = RepoFiles::default();
        let listing = git(&self.bare, &["ls-tree", "-r", "--name-only", branch]).unwrap();
        for path in listing.lines() {
            let text = git(&self.bare, &["show", &format!("{branch}:{path}")]).unwrap();
            if path == "policies/schema.cedarschema" {
                files.schema = Some(text);
            } else if path.starts_with("policies/agents/") && path.ends_with(".cedar") {
                files.agents.insert(path.to_string(), text);
            }
        }
        files
    }

    pub fn tip(&self, branch: &str) -> String {
        git(&self.bare, &["rev-parse", branch]).unwrap()
    }
}

pub fn token() -> String {
    let exp = shadowdraft::clock::now() as u64 + 300;
    shadowdraft::auth::hs256_token(SECRET.as_bytes(), "shadowdraft", "node-1", exp)
}

pub fn batch(calls: Value) -> Value {
    json!({"source": "node-1", "calls": calls})
}

pub fn emails(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"agent": AGENT, "tool": "send_email", "server": "gmail",
                       "args": {"to": format!("user{i}@adatum.com"), "subject": "Your ticket", "body": "Hello"}})
            })
            .collect(),
    )
}

pub async fn post(running: &Running, body: &Value, key: Option<&str>) -> Reply {
    let auth = format!("Bearer {}", token());
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    let url = format!("http://{}/v1/observations", running.addr);
    request("POST", &url, &headers, body.to_string().into_bytes()).await
}

pub fn summary_of(body: &Value) -> Summary {
    let origin = Origin {
        source: "test".into(),
        line: None,
    };
    let mut summary = Summary::default();
    for call in parse_batch(&origin, &body.to_string()).unwrap().calls {
        summary.add(&call, None);
    }
    summary
}

pub fn queue_empty(running: &Running) -> bool {
    running.app.ctx.store.lock().unwrap().queue_depth().unwrap() == 0
}

/// Deliver a webhook as GitHub does: signed with the current secret.
pub async fn deliver(running: &Running, event: &str, delivery: &str, payload: &Value) -> Reply {
    let body = payload.to_string().into_bytes();
    let signature = shadowdraft::serve::webhook::sign(WEBHOOK_SECRET, &body);
    let url = format!("http://{}/github/webhook", running.addr);
    let headers = [
        ("x-github-event", event),
        ("x-github-delivery", delivery),
        ("x-hub-signature-256", signature.as_str()),
        ("content-type", "application/json"),
    ];
    request("POST", &url, &headers, body).await
}

/// A real example payload from `@octokit/webhooks-examples`.
pub fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `pull_request.closed` for the bot's PR `number` of `AGENT`.
pub fn closed(number: u64, merged: bool) -> Value {
    let mut p = example("pull_request.closed.json");
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["merged"] = json!(merged);
    p["pull_request"]["head"]["ref"] = json!(format!("shadowdraft/{AGENT}"));
    p["pull_request"]["base"]["ref"] = json!("main");
    p["repository"]["full_name"] = json!("acme/agent-policies");
    p
}

/// `issue_comment.created` on PR `number` by `user`.
pub fn comment(number: u64, user: &str, body: &str) -> Value {
    let mut p = example("issue_comment.created.json");
    p["issue"]["number"] = json!(number);
    p["issue"]["pull_request"] =
        json!({"url": format!("https://api.github.com/repos/acme/agent-policies/pulls/{number}")});
    p["comment"]["body"] = json!(body);
    p["comment"]["user"]["login"] = json!(user);
    p["comment"]["user"]["type"] = json!("User");
    p["repository"]["full_name"] = json!("acme/agent-policies");
    p
}

/// Nothing waiting: no delivery and no drafting job.
pub fn settled(running: &Running) -> bool {
    let store = running.app.ctx.store.lock().unwrap();
    store.next_event_due().unwrap().is_none() && store.queue_depth().unwrap() == 0
}
