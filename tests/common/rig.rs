//! A whole deployment for tests: a bare policy repository behind `git
//! http-backend`, the fake GitHub, and `shadowdraft serve` wired to them.
//! [`Bot`] is driven the way its users drive it: nodes post observations,
//! reviewers comment, close and merge (signed webhooks as GitHub sends them),
//! and tests read what the bot did on the fake GitHub, the repository and its
//! HTTP surface, never its internals.

use super::fake_github::{key, FakeGitHub};
use super::git_bridge::{git, init_bare, GitBridge};
use super::http::{get, request, Reply};
use serde_json::{json, Value};
use shadowdraft::config::{Config, Settings};
use shadowdraft::core::observation::{parse_batch, Origin};
use shadowdraft::core::policies::RepoFiles;
use shadowdraft::core::summary::Summary;
use shadowdraft::serve::Running;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
        let yaml = self.config(&self.dir.path().join("data"), 0);
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

    /// This rig's `shadowdraft.yaml`, keeping state in `data`; more top-level
    /// keys may be appended. Its secrets are read from [`Rig::env`].
    pub fn config(&self, data: &Path, debounce_seconds: u64) -> String {
        let key_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/app-private-key.pem");
        format!(
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
  debounce_seconds: {debounce_seconds}
"#,
            data = data.display(),
            url = self.bridge.repo_url("policies"),
            api = self.github.url(),
            key = key_path.display(),
        )
    }

    /// The environment [`Rig::config`] reads its secrets from.
    pub fn env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TEST_INGEST_SECRET", SECRET),
            ("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("TEST_WEBHOOK_OLD", "a-rotated-out-secret"),
        ]
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

    /// Start `shadowdraft serve` on this rig's settings.
    pub async fn bot(&self) -> Bot<'_> {
        self.bot_with(self.settings()).await
    }

    pub async fn bot_with(&self, settings: Settings) -> Bot<'_> {
        Bot {
            rig: self,
            running: shadowdraft::serve::start(settings).await.expect("the bot starts"),
            deliveries: AtomicU64::new(0),
        }
    }

    /// Pull requests open on the fake GitHub.
    pub fn open_pulls(&self) -> usize {
        self.github.pulls().iter().filter(|p| p.state == "open").count()
    }

    /// Comment bodies on a pull request, oldest first.
    pub fn replies(&self, number: u64) -> Vec<String> {
        self.github.comments(number).into_iter().map(|c| c.body).collect()
    }

    /// Someone with push access commits `text` on top of `branch`'s `path`.
    pub fn commit_on(&self, branch: &str, path: &str, text: &str, message: &str) -> String {
        self.edit_on(branch, path, |before| before + text, message)
    }

    /// Someone with push access edits `branch`'s `path` and pushes the commit.
    pub fn edit_on(
        &self,
        branch: &str,
        path: &str,
        edit: impl FnOnce(String) -> String,
        message: &str,
    ) -> String {
        let work = self.dir.path().join(format!("work-{}", self.tip(branch)));
        let token = self
            .github
            .tokens_issued()
            .last()
            .expect("a token was issued")
            .token
            .clone();
        let url = self.bridge.authed_url("policies", &token);
        git(
            self.dir.path(),
            &[
                "clone",
                "--quiet",
                "--branch",
                branch,
                &url,
                work.to_str().unwrap(),
            ],
        )
        .unwrap();
        let file = work.join(path);
        let before = std::fs::read_to_string(&file).unwrap_or_default();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, edit(before)).unwrap();
        git(&work, &["add", path]).unwrap();
        git(&work, &["commit", "--quiet", "-m", message]).unwrap();
        git(&work, &["push", "--quiet", "origin", branch]).unwrap();
        self.tip(branch)
    }
}

/// A running bot and the people around it.
pub struct Bot<'r> {
    pub rig: &'r Rig,
    pub running: Running,
    deliveries: AtomicU64,
}

impl Bot<'_> {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    /// A node posts these calls as one batch.
    pub async fn observe(&self, calls: Value) -> Reply {
        post(&self.running, &batch(calls), None).await
    }

    /// … with an `Idempotency-Key`.
    pub async fn observe_keyed(&self, key: &str, calls: Value) -> Reply {
        post(&self.running, &batch(calls), Some(key)).await
    }

    /// A node posts this whole `ObservationBatch`.
    pub async fn report(&self, body: &Value) -> Reply {
        post(&self.running, body, None).await
    }

    /// Wait until the bot has done everything it was given.
    pub async fn idle(&self) {
        self.running.idle().await
    }

    /// GitHub delivers a signed webhook; a fresh delivery id each time.
    pub async fn deliver(&self, event: &str, payload: &Value) -> Reply {
        let n = self.deliveries.fetch_add(1, Ordering::SeqCst);
        deliver(&self.running, event, &format!("delivery-{n}"), payload).await
    }

    /// GitHub delivers it again, with the same delivery id.
    pub async fn redeliver(&self, event: &str, delivery: &str, payload: &Value) -> Reply {
        deliver(&self.running, event, delivery, payload).await
    }

    /// `user` comments `text` on pull request `number`.
    pub async fn comment_as(&self, user: &str, number: u64, text: &str) -> Reply {
        self.deliver("issue_comment", &comment(number, user, text)).await
    }

    /// `user` submits a review with `text` on pull request `number`.
    pub async fn review_as(&self, user: &str, number: u64, text: &str) -> Reply {
        let mut p = example("pull_request_review.submitted.json");
        p["pull_request"]["number"] = json!(number);
        p["pull_request"]["head"]["ref"] = json!(format!("shadowdraft/{AGENT}"));
        p["review"]["body"] = json!(text);
        p["review"]["user"]["login"] = json!(user);
        p["review"]["user"]["type"] = json!("User");
        p["repository"]["full_name"] = json!("acme/agent-policies");
        self.deliver("pull_request_review", &p).await
    }

    /// `user` comments `text` on a line of pull request `number`'s diff.
    pub async fn review_comment_as(&self, user: &str, number: u64, text: &str) -> Reply {
        let mut p = example("pull_request_review_comment.created.json");
        p["pull_request"]["number"] = json!(number);
        p["pull_request"]["head"]["ref"] = json!(format!("shadowdraft/{AGENT}"));
        p["comment"]["body"] = json!(text);
        p["comment"]["user"]["login"] = json!(user);
        p["comment"]["user"]["type"] = json!("User");
        p["repository"]["full_name"] = json!("acme/agent-policies");
        self.deliver("pull_request_review_comment", &p).await
    }

    /// A reviewer closes pull request `number` without merging; GitHub tells the bot.
    pub async fn close(&self, number: u64) -> Reply {
        self.rig.github.close(number);
        self.deliver("pull_request", &closed(number, false)).await
    }

    /// A reviewer merges pull request `number`; GitHub tells the bot. Returns the merge commit.
    pub async fn merge(&self, number: u64) -> String {
        let merged = self.rig.github.merge(number).expect("the fake GitHub merges");
        let mut event = closed(number, true);
        event["pull_request"]["merge_commit_sha"] = json!(merged);
        let reply = self.deliver("pull_request", &event).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        merged
    }

    /// GitHub says `branch` was pushed.
    pub async fn pushed(&self, branch: &str) -> Reply {
        let mut push = example("push.json");
        push["ref"] = json!(format!("refs/heads/{branch}"));
        push["repository"]["full_name"] = json!("acme/agent-policies");
        self.deliver("push", &push).await
    }

    /// `GET /v1/agents/{agent}`: what the bot knows about one agent.
    pub async fn agent(&self, agent: &str) -> Value {
        let auth = format!("Bearer {}", token());
        let reply = request(
            "GET",
            &self.url(&format!("/v1/agents/{agent}")),
            &[("authorization", &auth)],
            Vec::new(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    pub async fn metrics(&self) -> String {
        get(&self.url("/metrics")).await.body
    }

    /// The value of one metric line (name with labels), if present.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        self.metrics().await.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.parse().unwrap())
        })
    }

    pub async fn stop(self) {
        self.running.stop().await
    }
}

/// Expect the last reply on pull request `number` to contain `text`.
pub fn assert_replied(rig: &Rig, number: u64, text: &str) {
    let replies = rig.replies(number);
    let last = replies.last().unwrap_or_else(|| panic!("no reply on #{number}"));
    assert!(
        last.contains(text),
        "the last reply on #{number} does not say {text:?}:\n{last}"
    );
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
