//! A stateful fake of the GitHub REST API, enough for the bot: App auth (JWT verified with
//! the App's public key), installation tokens, pull requests, labels, reviewers, issue
//! comments and check runs. Answers are GitHub's own OpenAPI examples
//! (`tests/fixtures/github/`) with the fields the fake's state decides overwritten.
//!
//! The server runs on its own thread and runtime, so it serves both async tests and
//! blocking code (git2, `std::process::Command`) alike. Routes are also served under
//! `/api/v3` (GitHub Enterprise style): `url_with_prefix()`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The Enterprise-style prefix the fake also serves its routes under.
pub const API_PREFIX: &str = "/api/v3";
const DOCS: &str = "https://docs.github.com/rest";

/// A pull request as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub number: u64,
    pub title: String,
    pub body: String,
    /// Branch name, without the `owner:` prefix.
    pub head: String,
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub teams: Vec<String>,
    /// The head sha when the PR was last read or merged (branches can be deleted later).
    pub last_head_sha: String,
}

/// An issue comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub user: String,
    pub body: String,
}

/// A check run as posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path as received, including any `/api/v3` prefix, without the query.
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
}

/// An installation token the fake minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// An injected failure; see [`FakeGitHub::fail_next`].
#[derive(Debug, Clone)]
struct Fault {
    method: Option<String>,
    path: String,
    exact: bool,
    status: u16,
    retry_after: Option<u64>,
    remaining: u32,
    /// Handle the request first (state changes), then answer with the error anyway, like
    /// a GitHub that created the PR but timed out at the edge.
    after: bool,
    /// Not an error: the request is handled, and answered this much later.
    delay: Option<Duration>,
}

impl Fault {
    /// `"METHOD /exact/path"` or a substring of the path.
    fn matching(matcher: &str) -> Fault {
        let (method, path, exact) = match matcher.split_once(' ') {
            Some((m, p)) if !m.is_empty() && m.chars().all(|c| c.is_ascii_uppercase()) => {
                (Some(m.to_string()), p.trim().to_string(), true)
            }
            _ => (None, matcher.to_string(), false),
        };
        Fault {
            method,
            path,
            exact,
            status: 0,
            retry_after: None,
            remaining: 1,
            after: false,
            delay: None,
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && if self.exact {
                path == self.path
            } else {
                path.contains(&self.path)
            }
    }
}

/// A kind of fault the seeded injector ([`FakeGitHub::inject_faults`]) answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// 500, 502, 503 or 504.
    ServerError,
    /// 429 with `Retry-After`.
    RateLimited,
    /// 403 "You have exceeded a secondary rate limit" with `Retry-After`.
    SecondaryRateLimit,
    /// The TCP connection is reset (RST) instead of answered.
    ConnectionReset,
    /// Handled, and answered [`FaultPlan::slow`] later.
    Slow,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::ServerError,
        FaultKind::RateLimited,
        FaultKind::SecondaryRateLimit,
        FaultKind::ConnectionReset,
        FaultKind::Slow,
    ];

    /// Whether the client sees a failed attempt (everything but a slow answer).
    pub fn fails(self) -> bool {
        self != FaultKind::Slow
    }
}

/// How the seeded injector picks its faults: each request, with probability
/// `rate`, gets one kind drawn uniformly from `kinds`. Server errors and
/// resets come before or after the request is carried out (a coin flip), so
/// the client cannot tell whether its POST took effect.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub seed: u64,
    pub rate: f64,
    pub kinds: Vec<FaultKind>,
    /// Seconds in the `Retry-After` of rate-limit answers.
    pub retry_after: u64,
    /// How late a slow answer comes.
    pub slow: Duration,
}

/// One fault the injector answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub kind: FaultKind,
    pub method: String,
    /// Without the `/api/v3` prefix and the query.
    pub path: String,
    /// The status answered (`None` for a reset).
    pub status: Option<u16>,
    /// The request was carried out before the fault.
    pub processed: bool,
}

struct Injector {
    plan: FaultPlan,
    rng: u64,
    injected: Vec<Injected>,
}

impl Injector {
    /// splitmix64: small, seeded, good enough to spread faults.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for this request, if any, and whether it comes after processing.
    fn roll(&mut self) -> Option<(FaultKind, bool, u16)> {
        if self.plan.kinds.is_empty() || self.chance() >= self.plan.rate {
            return None;
        }
        let pick = self.next() % self.plan.kinds.len() as u64;
        let kind = self.plan.kinds[pick as usize];
        let after = self.next() % 2 == 1;
        let status = match kind {
            FaultKind::ServerError => [500, 502, 503, 504][(self.next() % 4) as usize],
            FaultKind::RateLimited => 429,
            FaultKind::SecondaryRateLimit => 403,
            FaultKind::ConnectionReset | FaultKind::Slow => 0,
        };
        Some((kind, after, status))
    }
}

/// When a request hook runs; see [`FakeGitHub::on_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    /// On receipt: the request is then not carried out.
    Before,
    /// After the request was carried out, before it is answered.
    After,
}

type HookFn = Arc<dyn Fn() + Send + Sync>;

struct Hook {
    matcher: Fault,
    point: HookPoint,
    run: HookFn,
}

struct State {
    app_id: u64,
    key: DecodingKey,
    owner: String,
    repo: String,
    repo_dir: Option<PathBuf>,
    installation_id: u64,
    token_ttl: Duration,
    tokens: Vec<IssuedToken>,
    pulls: Vec<Pull>,
    comments: BTreeMap<u64, Vec<Comment>>,
    check_runs: Vec<RecordedCheckRun>,
    requests: Vec<RequestRecord>,
    faults: Vec<Fault>,
    injector: Option<Injector>,
    hooks: Vec<Hook>,
    next_id: u64,
    base_url: String,
    /// Repository permission by user login; users not listed have "read".
    permissions: BTreeMap<String, String>,
    /// `Some(code_owner_reviews)` when the base branch is protected.
    protection: Option<bool>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panicking handler must not hide the state from the test's assertions.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fake. Dropping it stops the server.
pub struct FakeGitHub {
    state: Shared,
    addr: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads a test fixture key (`app-private-key.pem`, `app-public-key.pem`, ...).
pub fn key(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl FakeGitHub {
    /// Starts the fake for the App `app_id` (JWTs verified with `public_key_pem`) installed
    /// on `owner/repo`. With `bare_repo`, PR head shas are the branch tips there and
    /// [`FakeGitHub::merge`] updates its `main`.
    pub fn start(
        app_id: u64,
        public_key_pem: &[u8],
        owner: &str,
        repo: &str,
        bare_repo: Option<PathBuf>,
    ) -> FakeGitHub {
        let key = DecodingKey::from_rsa_pem(public_key_pem).expect("App public key PEM");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake GitHub");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            app_id,
            key,
            owner: owner.to_string(),
            repo: repo.to_string(),
            repo_dir: bare_repo,
            installation_id: 4242,
            token_ttl: Duration::from_secs(3600),
            tokens: Vec::new(),
            pulls: Vec::new(),
            comments: BTreeMap::new(),
            check_runs: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            injector: None,
            hooks: Vec::new(),
            next_id: 1000,
            base_url: format!("http://{addr}"),
            permissions: BTreeMap::new(),
            protection: Some(true),
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let tx = serve_resettable(listener, app);
        FakeGitHub {
            state,
            addr,
            _shutdown: tx,
        }
    }

    /// Base URL, like `https://api.github.com` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL with the Enterprise prefix, like `https://ghe.example.com/api/v3`.
    pub fn url_with_prefix(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    pub fn installation_id(&self) -> u64 {
        lock(&self.state).installation_id
    }

    /// Lifetime of tokens minted from now on (GitHub: one hour).
    pub fn set_token_ttl(&self, ttl: Duration) {
        lock(&self.state).token_ttl = ttl;
    }

    pub fn pulls(&self) -> Vec<Pull> {
        lock(&self.state).pulls.clone()
    }

    pub fn pull(&self, number: u64) -> Option<Pull> {
        lock(&self.state)
            .pulls
            .iter()
            .find(|p| p.number == number)
            .cloned()
    }

    pub fn comments(&self, number: u64) -> Vec<Comment> {
        lock(&self.state)
            .comments
            .get(&number)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a comment as if a human wrote it (for `/shadowdraft` commands and the like).
    pub fn add_comment(&self, number: u64, user: &str, body: &str) -> u64 {
        let mut s = lock(&self.state);
        let id = s.id();
        s.comments.entry(number).or_default().push(Comment {
            id,
            user: user.to_string(),
            body: body.to_string(),
        });
        id
    }

    pub fn check_runs(&self) -> Vec<RecordedCheckRun> {
        lock(&self.state).check_runs.clone()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state).requests.clone()
    }

    /// How many requests had this method and exactly this path (prefix and query excluded).
    pub fn count(&self, method: &str, path: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.method == method && strip_prefix(&r.path) == path)
            .count()
    }

    pub fn tokens_issued(&self) -> Vec<IssuedToken> {
        lock(&self.state).tokens.clone()
    }

    /// Whether `token` was minted by the fake and has not expired: the check GitHub's git
    /// endpoint makes, for [`super::git_bridge::GitBridge`].
    pub fn token_is_valid(&self, token: &str) -> bool {
        valid_token(&lock(&self.state), token)
    }

    pub fn token_checker(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let state = self.state.clone();
        Arc::new(move |token: &str| valid_token(&lock(&state), token))
    }

    /// Makes the next `times` requests matching `matcher` fail with `status`.
    /// `matcher` is either `"METHOD /exact/path"` (e.g. `"POST /repos/o/r/pulls"`) or a
    /// substring of the path (e.g. `"/comments"`); the `/api/v3` prefix and the query are
    /// ignored. `retry_after` adds a `Retry-After` header. A 403 fault reads as GitHub's
    /// secondary rate limit; any other status gets a generic GitHub error body.
    pub fn fail_next(&self, matcher: &str, status: u16, retry_after: Option<u64>, times: u32) {
        self.add_fault(matcher, status, retry_after, times, false);
    }

    /// Like [`FakeGitHub::fail_next`], but the request is carried out before the error is
    /// answered: the client cannot tell whether its POST took effect.
    pub fn fail_next_after_processing(&self, matcher: &str, status: u16, times: u32) {
        self.add_fault(matcher, status, None, times, true);
    }

    /// Handle the next `times` requests matching `matcher` (as for
    /// [`FakeGitHub::fail_next`]) at once, but answer them `delay` later: a
    /// client that dies meanwhile never learns its POST took effect.
    pub fn delay_next(&self, matcher: &str, delay: Duration, times: u32) {
        self.add_fault(matcher, 200, None, times, true);
        if let Some(fault) = lock(&self.state).faults.last_mut() {
            fault.delay = Some(delay);
        }
    }

    fn add_fault(&self, matcher: &str, status: u16, retry_after: Option<u64>, times: u32, after: bool) {
        let mut fault = Fault::matching(matcher);
        fault.status = status;
        fault.retry_after = retry_after;
        fault.remaining = times;
        fault.after = after;
        lock(&self.state).faults.push(fault);
    }

    /// From now on, answer requests with faults drawn by a seeded injector
    /// ([`FaultPlan`]); faults set with [`FakeGitHub::fail_next`] and the like
    /// come first. [`FakeGitHub::injected`] tells what it did.
    pub fn inject_faults(&self, plan: FaultPlan) {
        let rng = plan.seed;
        lock(&self.state).injector = Some(Injector {
            plan,
            rng,
            injected: Vec::new(),
        });
    }

    /// Stop injecting faults (what was injected stays readable).
    pub fn stop_faults(&self) {
        if let Some(injector) = lock(&self.state).injector.as_mut() {
            injector.plan.rate = 0.0;
        }
    }

    /// Every fault the injector answered with, in order.
    pub fn injected(&self) -> Vec<Injected> {
        lock(&self.state)
            .injector
            .as_ref()
            .map(|i| i.injected.clone())
            .unwrap_or_default()
    }

    /// Run `hook` once, on the first request matching `matcher` (as for
    /// [`FakeGitHub::fail_next`]), at `point`. A test kills the bot from
    /// there: `Before`, the request is never carried out; `After`, it was,
    /// but its answer never reaches the dead client.
    pub fn on_request(&self, matcher: &str, point: HookPoint, hook: impl Fn() + Send + Sync + 'static) {
        lock(&self.state).hooks.push(Hook {
            matcher: Fault::matching(matcher),
            point,
            run: Arc::new(hook),
        });
    }

    /// Hooks set with [`FakeGitHub::on_request`] that have not run yet.
    pub fn hooks_waiting(&self) -> usize {
        lock(&self.state).hooks.len()
    }

    /// Closes a pull request without merging, as a reviewer would.
    /// Give `user` a repository permission (`admin`, `write`, `read`, `none`).
    pub fn set_permission(&self, user: &str, permission: &str) {
        lock(&self.state)
            .permissions
            .insert(user.into(), permission.into());
    }

    /// `None`: the base branch is not protected; `Some(b)`: protected, code-owner reviews `b`.
    pub fn set_protection(&self, code_owner_reviews: Option<bool>) {
        lock(&self.state).protection = code_owner_reviews;
    }

    pub fn close(&self, number: u64) {
        let mut s = lock(&self.state);
        if let Some(p) = s.pulls.iter_mut().find(|p| p.number == number) {
            p.state = "closed".into();
        }
    }

    /// Merges a pull request: in the bare repository, the base branch is fast-forwarded to
    /// the head, or gets a merge commit when it has moved on; the PR is closed and
    /// marked merged. Returns the new tip of the base branch.
    pub fn merge(&self, number: u64) -> anyhow::Result<String> {
        let (pull, dir) = {
            let s = lock(&self.state);
            let pull = s.pulls.iter().find(|p| p.number == number).cloned();
            (pull, s.repo_dir.clone())
        };
        let pull = pull.ok_or_else(|| anyhow::anyhow!("no pull request #{number}"))?;
        anyhow::ensure!(pull.state == "open", "pull request #{number} is not open");
        let (head_sha, merge_sha) = match &dir {
            Some(dir) => {
                let head = git(
                    dir,
                    &["rev-parse", "--verify", &format!("refs/heads/{}", pull.head)],
                )?;
                let base = git(
                    dir,
                    &["rev-parse", "--verify", &format!("refs/heads/{}", pull.base)],
                )?;
                let ff = Command::new("git")
                    .arg("--git-dir")
                    .arg(dir)
                    .args(["merge-base", "--is-ancestor", &base, &head])
                    .status()?
                    .success();
                let merged = if ff {
                    head.clone()
                } else {
                    let tree = git(dir, &["merge-tree", "--write-tree", &base, &head])
                        .map_err(|e| anyhow::anyhow!("pull request #{number} conflicts: {e}"))?;
                    let tree = tree.lines().next().unwrap_or_default().to_string();
                    let message = format!(
                        "Merge pull request #{number} from {}\n\n{}",
                        pull.head, pull.title
                    );
                    git(
                        dir,
                        &["commit-tree", &tree, "-p", &base, "-p", &head, "-m", &message],
                    )?
                };
                git(
                    dir,
                    &["update-ref", &format!("refs/heads/{}", pull.base), &merged, &base],
                )?;
                (head, merged)
            }
            None => (pull.last_head_sha.clone(), fake_sha(&format!("merge-{number}"))),
        };
        let mut s = lock(&self.state);
        if let Some(p) = s.pulls.iter_mut().find(|p| p.number == number) {
            p.state = "closed".into();
            p.merged = true;
            p.merge_commit_sha = Some(merge_sha.clone());
            p.last_head_sha = head_sha;
        }
        Ok(merge_sha)
    }
}

/// Runs git against a bare repository, returning trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "GitHub")
        .env("GIT_AUTHOR_EMAIL", "noreply@github.com")
        .env("GIT_COMMITTER_NAME", "GitHub")
        .env("GIT_COMMITTER_EMAIL", "noreply@github.com")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A stable 40-hex "sha" for branches when the fake has no repository.
fn fake_sha(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::new();
    for round in 0..3u64 {
        for b in seed.bytes().chain(round.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}

fn valid_token(s: &State, token: &str) -> bool {
    s.tokens.iter().any(|t| t.token == token && t.expires_at > now())
}

fn strip_prefix(path: &str) -> &str {
    match path.strip_prefix(API_PREFIX) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn head_sha(&self, pull: &Pull) -> String {
        match &self.repo_dir {
            Some(dir) => git(
                dir,
                &["rev-parse", "--verify", &format!("refs/heads/{}", pull.head)],
            )
            .unwrap_or_else(|_| pull.last_head_sha.clone()),
            None => pull.last_head_sha.clone(),
        }
    }

    fn branch_sha(&self, branch: &str) -> Option<String> {
        match &self.repo_dir {
            Some(dir) => git(dir, &["rev-parse", "--verify", &format!("refs/heads/{branch}")]).ok(),
            None => Some(fake_sha(branch)),
        }
    }

    fn html_base(&self) -> String {
        format!("https://github.com/{}/{}", self.owner, self.repo)
    }

    fn api_repo(&self) -> String {
        format!("{}/repos/{}/{}", self.base_url, self.owner, self.repo)
    }

    /// A pull request rendered onto one of GitHub's examples.
    fn render_pull(&mut self, number: u64, template: &str) -> Value {
        let Some(index) = self.pulls.iter().position(|p| p.number == number) else {
            return Value::Null;
        };
        let sha = self.head_sha(&self.pulls[index]);
        self.pulls[index].last_head_sha = sha.clone();
        let p = self.pulls[index].clone();
        let mut v = fixture(template);
        let api = format!("{}/pulls/{number}", self.api_repo());
        let html = format!("{}/pull/{number}", self.html_base());
        v["url"] = json!(api);
        v["id"] = json!(number + 100_000);
        v["number"] = json!(number);
        v["html_url"] = json!(html);
        v["diff_url"] = json!(format!("{html}.diff"));
        v["patch_url"] = json!(format!("{html}.patch"));
        v["issue_url"] = json!(format!("{}/issues/{number}", self.api_repo()));
        v["comments_url"] = json!(format!("{}/issues/{number}/comments", self.api_repo()));
        v["state"] = json!(p.state);
        v["title"] = json!(p.title);
        v["body"] = json!(p.body);
        v["user"]["login"] = json!("shadowdraft[bot]");
        v["user"]["type"] = json!("Bot");
        let label_template = fixture("label.json");
        v["labels"] = Value::Array(
            p.labels
                .iter()
                .map(|name| {
                    let mut l = label_template.clone();
                    l["name"] = json!(name);
                    l["url"] = json!(format!("{}/labels/{name}", self.api_repo()));
                    l
                })
                .collect(),
        );
        let user_template = v["user"].clone();
        v["requested_reviewers"] = Value::Array(
            p.reviewers
                .iter()
                .map(|login| {
                    let mut u = user_template.clone();
                    u["login"] = json!(login);
                    u["type"] = json!("User");
                    u
                })
                .collect(),
        );
        let team_template = v["requested_teams"].get(0).cloned().unwrap_or_else(|| json!({}));
        v["requested_teams"] = Value::Array(
            p.teams
                .iter()
                .map(|slug| {
                    let mut t = team_template.clone();
                    t["name"] = json!(slug);
                    t["slug"] = json!(slug);
                    t
                })
                .collect(),
        );
        v["head"]["ref"] = json!(p.head);
        v["head"]["sha"] = json!(sha);
        v["head"]["label"] = json!(format!("{}:{}", self.owner, p.head));
        v["base"]["ref"] = json!(p.base);
        v["base"]["label"] = json!(format!("{}:{}", self.owner, p.base));
        if let Some(base_sha) = self.branch_sha(&p.base) {
            v["base"]["sha"] = json!(base_sha);
        }
        for side in ["head", "base"] {
            if v[side]["repo"].is_object() {
                v[side]["repo"]["name"] = json!(self.repo);
                v[side]["repo"]["full_name"] = json!(format!("{}/{}", self.owner, self.repo));
                v[side]["repo"]["owner"]["login"] = json!(self.owner);
            }
        }
        if v.get("merged").is_some() {
            v["merged"] = json!(p.merged);
        }
        v["merge_commit_sha"] = json!(p.merge_commit_sha);
        v["merged_at"] = if p.merged {
            json!(rfc3339(now()))
        } else {
            Value::Null
        };
        v["closed_at"] = if p.state == "closed" {
            json!(rfc3339(now()))
        } else {
            Value::Null
        };
        v
    }

    fn render_comment(&self, number: u64, c: &Comment) -> Value {
        let mut v = fixture("issue-comment.json");
        v["id"] = json!(c.id);
        v["body"] = json!(c.body);
        v["user"]["login"] = json!(c.user);
        v["url"] = json!(format!("{}/issues/comments/{}", self.api_repo(), c.id));
        v["html_url"] = json!(format!(
            "{}/pull/{number}#issuecomment-{}",
            self.html_base(),
            c.id
        ));
        v["issue_url"] = json!(format!("{}/issues/{number}", self.api_repo()));
        v
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"message": message, "documentation_url": DOCS, "status": status.as_u16().to_string()}),
        ),
    )
        .into_response()
}

fn validation_failed(resource: &str, field: &str, code: &str, message: Option<&str>) -> Response {
    let mut e = json!({"resource": resource, "field": field, "code": code});
    if let Some(m) = message {
        e["message"] = json!(m);
    }
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({"message": "Validation Failed", "errors": [e], "documentation_url": DOCS, "status": "422"})),
    )
        .into_response()
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    matches!(scheme.to_ascii_lowercase().as_str(), "bearer" | "token").then(|| credential.trim().to_string())
}

/// Verifies an App JWT like GitHub: RS256 with the App's key, unexpired, `iss` = App id
/// (string or number), `iat` not in the future, at most ten minutes of validity.
fn verify_app_jwt(s: &State, headers: &HeaderMap) -> Result<(), String> {
    let deny = |m: &str| Err(m.to_string());
    let Some(jwt) = bearer(headers) else {
        return deny("A JSON web token could not be decoded");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let data = match jsonwebtoken::decode::<Value>(&jwt, &s.key, &validation) {
        Ok(data) => data,
        Err(e) => return deny(&format!("A JSON web token could not be decoded ({e})")),
    };
    let claims = data.claims;
    let iss_ok = match &claims["iss"] {
        Value::String(v) => v == &s.app_id.to_string(),
        Value::Number(n) => n.as_u64() == Some(s.app_id),
        _ => false,
    };
    if !iss_ok {
        return deny("Integration not found ('iss' claim does not match the App)");
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return deny("'iat' and 'exp' must be numeric");
    };
    if iat > now().unix_timestamp() + 5 {
        return deny("'Issued at' claim ('iat') must be an Integer representing a time in the past");
    }
    if exp - iat > 600 {
        return deny("'Expiration time' claim ('exp') is too far in the future");
    }
    Ok(())
}

fn has_valid_token(s: &State, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|t| valid_token(s, &t))
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What becomes of one request once the fake's state was consulted.
struct Outcome {
    response: Response,
    delay: Option<Duration>,
    /// Reset the connection instead of answering.
    reset: bool,
    hook: Option<HookFn>,
}

impl Outcome {
    fn answer(response: Response) -> Outcome {
        Outcome {
            response,
            delay: None,
            reset: false,
            hook: None,
        }
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Shared>,
    axum::Extension(connection): axum::Extension<Arc<Connection>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = answer(&state, method, uri, headers, body);
    if let Some(hook) = outcome.hook {
        // Blocking (it kills a process and waits for it): off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || hook()).await;
    }
    if outcome.reset {
        connection.reset();
        // The connection task drops the connection; this answer is never sent.
        std::future::pending::<()>().await;
    }
    if let Some(delay) = outcome.delay {
        tokio::time::sleep(delay).await;
    }
    outcome.response
}

fn answer(state: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Outcome {
    let mut s = lock(state);
    let full_path = uri.path().to_string();
    let prefix = if strip_prefix(&full_path).len() != full_path.len() {
        API_PREFIX
    } else {
        ""
    };
    let path = strip_prefix(&full_path).to_string();
    let hooked = s.hooks.iter().position(|h| h.matcher.matches(&method, &path));
    let mut outcome = match hooked.map(|i| s.hooks.remove(i)) {
        Some(hook) => {
            let response = match hook.point {
                HookPoint::Before => error(StatusCode::SERVICE_UNAVAILABLE, "not carried out (test hook)"),
                HookPoint::After => serve(&mut s, &method, &path, prefix, uri.query(), &headers, &body),
            };
            Outcome {
                hook: Some(hook.run),
                ..Outcome::answer(response)
            }
        }
        None => route(&mut s, &method, &path, prefix, uri.query(), &headers, &body),
    };
    let reset = now().unix_timestamp() + 3600;
    let h = outcome.response.headers_mut();
    h.entry("x-ratelimit-limit")
        .or_insert(HeaderValue::from_static("5000"));
    h.entry("x-ratelimit-remaining")
        .or_insert(HeaderValue::from_static("4999"));
    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
        h.entry("x-ratelimit-reset").or_insert(v);
    }
    h.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    let status = match outcome.reset {
        true => 0,
        false => outcome.response.status().as_u16(),
    };
    s.requests.push(RequestRecord {
        method: method.to_string(),
        path: full_path,
        query: uri.query().map(str::to_string),
        status,
    });
    outcome
}

fn route(
    s: &mut State,
    method: &Method,
    path: &str,
    prefix: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let fault = s
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && f.matches(method, path))
        .map(|f| {
            f.remaining -= 1;
            f.clone()
        });
    s.faults.retain(|f| f.remaining > 0);
    match fault {
        Some(Fault {
            delay: Some(delay), ..
        }) => Outcome {
            delay: Some(delay),
            ..Outcome::answer(serve(s, method, path, prefix, query, headers, body))
        },
        Some(fault) => {
            if fault.after {
                let _ = serve(s, method, path, prefix, query, headers, body);
            }
            Outcome::answer(fault_response(&fault))
        }
        None => inject(s, method, path, prefix, query, headers, body),
    }
}

/// The seeded injector's turn: a fault, or the request served as usual.
fn inject(
    s: &mut State,
    method: &Method,
    path: &str,
    prefix: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let Some((kind, after, status, plan)) = s
        .injector
        .as_mut()
        .and_then(|i| i.roll().map(|(k, a, st)| (k, a, st, i.plan.clone())))
    else {
        return Outcome::answer(serve(s, method, path, prefix, query, headers, body));
    };
    // GitHub refuses a rate-limited request outright; other faults may strike after the work.
    let processed = match kind {
        FaultKind::Slow => true,
        FaultKind::RateLimited | FaultKind::SecondaryRateLimit => false,
        FaultKind::ServerError | FaultKind::ConnectionReset => after,
    };
    let served = processed.then(|| serve(s, method, path, prefix, query, headers, body));
    if let Some(injector) = s.injector.as_mut() {
        injector.injected.push(Injected {
            kind,
            method: method.to_string(),
            path: path.to_string(),
            status: (status != 0).then_some(status),
            processed,
        });
    }
    let fault = |status: u16, retry_after: Option<u64>| {
        let mut f = Fault::matching(path);
        f.status = status;
        f.retry_after = retry_after;
        fault_response(&f)
    };
    match kind {
        FaultKind::Slow => Outcome {
            delay: Some(plan.slow),
            ..Outcome::answer(served.expect("a slow answer is served"))
        },
        FaultKind::ConnectionReset => Outcome {
            reset: true,
            ..Outcome::answer(error(StatusCode::INTERNAL_SERVER_ERROR, "reset"))
        },
        FaultKind::ServerError => Outcome::answer(fault(status, None)),
        FaultKind::RateLimited | FaultKind::SecondaryRateLimit => {
            Outcome::answer(fault(status, Some(plan.retry_after)))
        }
    }
}

fn fault_response(fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match fault.status {
        403 => "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        429 => "API rate limit exceeded",
        _ => status.canonical_reason().unwrap_or("Server Error"),
    };
    let mut r = error(status, message);
    if let Some(secs) = fault.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
    }
    r
}

fn serve(
    s: &mut State,
    method: &Method,
    path: &str,
    prefix: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let json: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            if let Err(m) = verify_app_jwt(s, headers) {
                return error(StatusCode::UNAUTHORIZED, &m);
            }
            if id.parse::<u64>().ok() != Some(s.installation_id) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            let n = s.id();
            let token = format!(
                "ghs_fake{n:06}{}",
                &fake_sha(&format!("{n}-{}", now().unix_timestamp_nanos()))[..24]
            );
            let expires_at = now() + s.token_ttl;
            s.tokens.push(IssuedToken {
                token: token.clone(),
                expires_at,
            });
            let mut v = fixture("installation-token.json");
            v["token"] = json!(token);
            v["expires_at"] = json!(rfc3339(expires_at));
            created(v)
        }
        (_, ["repos", owner, repo, ..]) if *owner != s.owner || *repo != s.repo => {
            error(StatusCode::NOT_FOUND, "Not Found")
        }
        ("GET", ["repos", _, _, "installation"]) => {
            if let Err(m) = verify_app_jwt(s, headers) {
                return error(StatusCode::UNAUTHORIZED, &m);
            }
            let mut v = fixture("installation.json");
            v["id"] = json!(s.installation_id);
            v["app_id"] = json!(s.app_id);
            v["account"]["login"] = json!(s.owner);
            v["access_tokens_url"] = json!(format!(
                "{}/app/installations/{}/access_tokens",
                s.base_url, s.installation_id
            ));
            ok(v)
        }
        (_, ["repos", ..]) if !has_valid_token(s, headers) => {
            error(StatusCode::UNAUTHORIZED, "Bad credentials")
        }
        ("GET", ["repos", _, _, "collaborators", user, "permission"]) => {
            let permission = s.permissions.get(*user).cloned().unwrap_or_else(|| "read".into());
            let mut v = fixture("collaborator-permission.json");
            v["permission"] = json!(permission);
            v["role_name"] = json!(permission);
            v["user"]["login"] = json!(user);
            ok(v)
        }
        ("GET", ["repos", _, _, "branches", _, "protection"]) => match s.protection {
            None => error(StatusCode::NOT_FOUND, "Branch not protected"),
            Some(code_owners) => {
                let mut v = fixture("branch-protection.json");
                v["required_pull_request_reviews"]["require_code_owner_reviews"] = json!(code_owners);
                ok(v)
            }
        },
        ("GET", ["repos", _, _, "pulls"]) => {
            let state = query_param(query, "state").unwrap_or_else(|| "open".into());
            let head = query_param(query, "head");
            let numbers: Vec<u64> = s
                .pulls
                .iter()
                .filter(|p| state == "all" || p.state == state)
                .filter(|p| {
                    head.as_ref()
                        .is_none_or(|h| *h == format!("{}:{}", s.owner, p.head))
                })
                .map(|p| p.number)
                .collect();
            let list: Vec<Value> = numbers
                .into_iter()
                .map(|n| s.render_pull(n, "pull-request-simple.json"))
                .collect();
            ok(Value::Array(list))
        }
        ("POST", ["repos", _, _, "pulls"]) => {
            let (Some(title), Some(head), Some(base)) = (
                json["title"].as_str(),
                json["head"].as_str(),
                json["base"].as_str(),
            ) else {
                return validation_failed("PullRequest", "head", "missing_field", None);
            };
            let owner_prefix = format!("{}:", s.owner);
            let head = head.strip_prefix(&owner_prefix).unwrap_or(head).to_string();
            if s.pulls.iter().any(|p| p.state == "open" && p.head == head) {
                let msg = format!("A pull request already exists for {}:{head}.", s.owner);
                return validation_failed("PullRequest", "head", "custom", Some(&msg));
            }
            let Some(head_sha) = s.branch_sha(&head) else {
                return validation_failed("PullRequest", "head", "invalid", None);
            };
            if s.branch_sha(base).is_none() {
                return validation_failed("PullRequest", "base", "invalid", None);
            }
            let number = s.pulls.iter().map(|p| p.number).max().unwrap_or(0) + 1;
            s.pulls.push(Pull {
                number,
                title: title.to_string(),
                body: json["body"].as_str().unwrap_or_default().to_string(),
                head,
                base: base.to_string(),
                state: "open".into(),
                merged: false,
                merge_commit_sha: None,
                labels: Vec::new(),
                reviewers: Vec::new(),
                teams: Vec::new(),
                last_head_sha: head_sha,
            });
            created(s.render_pull(number, "pull-request.json"))
        }
        ("GET", ["repos", _, _, "pulls", n]) => match pull_index(s, n) {
            Some(i) => {
                let number = s.pulls[i].number;
                ok(s.render_pull(number, "pull-request.json"))
            }
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        ("PATCH", ["repos", _, _, "pulls", n]) => {
            let Some(i) = pull_index(s, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let p = &mut s.pulls[i];
            if let Some(t) = json["title"].as_str() {
                p.title = t.to_string();
            }
            if let Some(b) = json["body"].as_str() {
                p.body = b.to_string();
            }
            if let Some(b) = json["base"].as_str() {
                p.base = b.to_string();
            }
            match json["state"].as_str() {
                Some(st @ ("open" | "closed")) if !p.merged => p.state = st.to_string(),
                Some(_) | None => {}
            }
            let number = p.number;
            ok(s.render_pull(number, "pull-request.json"))
        }
        ("POST", ["repos", _, _, "issues", n, "labels"]) => {
            let Some(i) = pull_index(s, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let names: Vec<String> = match &json {
                Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                v => v["labels"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            };
            if names.is_empty() {
                return validation_failed("Label", "labels", "missing_field", None);
            }
            for name in names {
                if !s.pulls[i].labels.contains(&name) {
                    s.pulls[i].labels.push(name);
                }
            }
            let template = fixture("label.json");
            let api = s.api_repo();
            let labels: Vec<Value> = s.pulls[i]
                .labels
                .iter()
                .map(|name| {
                    let mut l = template.clone();
                    l["name"] = json!(name);
                    l["url"] = json!(format!("{api}/labels/{name}"));
                    l
                })
                .collect();
            ok(Value::Array(labels))
        }
        ("POST", ["repos", _, _, "pulls", n, "requested_reviewers"]) => {
            let Some(i) = pull_index(s, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default()
            };
            let (users, teams) = (strings(&json["reviewers"]), strings(&json["team_reviewers"]));
            if users.is_empty() && teams.is_empty() {
                return validation_failed("PullRequest", "reviewers", "missing_field", None);
            }
            let p = &mut s.pulls[i];
            for u in users {
                if !p.reviewers.contains(&u) {
                    p.reviewers.push(u);
                }
            }
            for t in teams {
                if !p.teams.contains(&t) {
                    p.teams.push(t);
                }
            }
            let number = p.number;
            created(s.render_pull(number, "pull-request-review-request.json"))
        }
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            let Some(i) = pull_index(s, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let number = s.pulls[i].number;
            let per_page = query_param(query, "per_page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let page = query_param(query, "page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            let all = s.comments.get(&number).cloned().unwrap_or_default();
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| s.render_comment(number, c))
                .collect();
            let last = all.len().div_ceil(per_page).max(1);
            let mut r = ok(Value::Array(items));
            let link = |p: usize, rel: &str| {
                format!(
                    "<{}{prefix}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"",
                    s.base_url
                )
            };
            let mut links = Vec::new();
            if page < last {
                links.push(link(page + 1, "next"));
                links.push(link(last, "last"));
            }
            if page > 1 {
                links.push(link(1, "first"));
                links.push(link(page - 1, "prev"));
            }
            if !links.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
                    r.headers_mut().insert("link", v);
                }
            }
            r
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            let Some(i) = pull_index(s, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let Some(text) = json["body"].as_str() else {
                return validation_failed("IssueComment", "body", "missing_field", None);
            };
            let number = s.pulls[i].number;
            let id = s.id();
            let c = Comment {
                id,
                user: "shadowdraft[bot]".into(),
                body: text.to_string(),
            };
            let v = s.render_comment(number, &c);
            s.comments.entry(number).or_default().push(c);
            created(v)
        }
        ("POST", ["repos", _, _, "check-runs"]) => {
            let (Some(name), Some(head_sha)) = (json["name"].as_str(), json["head_sha"].as_str()) else {
                return validation_failed("CheckRun", "name", "missing_field", None);
            };
            let conclusion = json["conclusion"].as_str().map(str::to_string);
            let status = json["status"].as_str().map(str::to_string).unwrap_or_else(|| {
                if conclusion.is_some() {
                    "completed"
                } else {
                    "queued"
                }
                .into()
            });
            let id = s.id();
            let run = RecordedCheckRun {
                id,
                name: name.to_string(),
                head_sha: head_sha.to_string(),
                status: status.clone(),
                conclusion: conclusion.clone(),
                title: json["output"]["title"].as_str().map(str::to_string),
                summary: json["output"]["summary"].as_str().map(str::to_string),
            };
            let mut v = fixture("check-run.json");
            v["id"] = json!(id);
            v["name"] = json!(run.name);
            v["head_sha"] = json!(run.head_sha);
            v["status"] = json!(status);
            v["conclusion"] = json!(conclusion);
            v["output"]["title"] = json!(run.title);
            v["output"]["summary"] = json!(run.summary);
            v["url"] = json!(format!("{}/check-runs/{id}", s.api_repo()));
            v["html_url"] = json!(format!("{}/runs/{id}", s.html_base()));
            v["started_at"] = json!(rfc3339(now()));
            v["completed_at"] = if run.status == "completed" {
                json!(rfc3339(now()))
            } else {
                Value::Null
            };
            s.check_runs.push(run);
            created(v)
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn pull_index(s: &State, n: &str) -> Option<usize> {
    let n: u64 = n.parse().ok()?;
    s.pulls.iter().position(|p| p.number == n)
}

/// One TCP connection to the fake, which a handler can reset.
pub struct Connection {
    reset: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Connection {
    fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// The connection's stream: closed with `SO_LINGER` 0 (an RST, not a FIN)
/// once reset.
struct ResettableStream {
    stream: tokio::net::TcpStream,
    connection: Arc<Connection>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.connection.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl tokio::io::AsyncRead for ResettableStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Like [`super::http::serve_in_background`], with each request told its
/// [`Connection`] so a fault can reset it.
fn serve_resettable(listener: std::net::TcpListener, app: Router) -> tokio::sync::oneshot::Sender<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    listener.set_nonblocking(true).expect("nonblocking listener");
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake GitHub runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => return,
                };
                let connection = Arc::new(Connection {
                    reset: AtomicBool::new(false),
                    notify: tokio::sync::Notify::new(),
                });
                let service =
                    TowerToHyperService::new(app.clone().layer(axum::Extension(connection.clone())));
                let io = TokioIo::new(ResettableStream {
                    stream,
                    connection: connection.clone(),
                });
                tokio::spawn(async move {
                    let builder = Builder::new(TokioExecutor::new());
                    let serving = builder.serve_connection(io, service);
                    tokio::select! {
                        _ = serving => {}
                        _ = connection.notify.notified() => {}
                    }
                });
            }
        });
    });
    stop
}
