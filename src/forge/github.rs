//! The GitHub App client: App JWT → installation token → REST calls for pull requests,
//! labels, reviewers, comments and check runs.
//!
//! octocrab is used only as the HTTP transport (`Octocrab::send`), because the retry
//! logic needs every status and the rate-limit headers, and the installation token must
//! be visible to the caller (it is also the `git push` password). Responses are parsed
//! into small local structs holding only the fields used, so GitHub adding fields never
//! breaks us.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use octocrab::{OctoBody, Octocrab};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::{AppSettings, GitHubRetry};

/// How long a branch-protection reading is trusted.
const PROTECTION_TTL: Duration = Duration::from_secs(600);

/// The fields of a pull request the bot acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRef {
    pub number: u64,
    pub head_sha: String,
    pub html_url: String,
    pub body: String,
}

/// A completed check run to attach to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub name: String,
    pub head_sha: String,
    /// `success`, `failure` or `neutral`.
    pub conclusion: String,
    pub title: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// 5xx, 429, or a (secondary) rate limit: worth retrying later.
    #[error("GitHub answered {status} (retryable): {message}")]
    Retryable {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    /// Anything else GitHub refused (4xx): retrying will not help.
    #[error("GitHub refused the request with {status}: {message}")]
    Rejected { status: u16, message: String },
    /// Could not reach GitHub or could not read its answer.
    #[error("could not talk to GitHub: {0}")]
    Transport(String),
}

/// What became of the client's calls beyond their answers' statuses, for /metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Attempts that got no HTTP answer (connection refused or reset, timeout).
    pub transport_errors: u64,
    /// Calls that still failed, retryably, on their last attempt.
    pub gave_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    retries: AtomicU64,
    transport_errors: AtomicU64,
    gave_up: AtomicU64,
}

/// One failed attempt, and whether another attempt may help.
struct Failed {
    error: GitHubError,
    retry: bool,
}

impl From<GitHubError> for Failed {
    fn from(error: GitHubError) -> Self {
        let retry = matches!(error, GitHubError::Retryable { .. });
        Failed { error, retry }
    }
}

/// Installation tokens last an hour; refresh with this much left so a token handed to
/// `git push` does not expire mid-push.
const TOKEN_REFRESH_MARGIN: time::Duration = time::Duration::minutes(5);
/// GitHub accepts App JWTs of at most 10 minutes; `iat` is backdated for clock drift.
const JWT_BACKDATE_SECS: i64 = 60;
const JWT_LIFETIME_SECS: i64 = 9 * 60;
const USER_AGENT_VALUE: &str = concat!("shadowdraft/", env!("CARGO_PKG_VERSION"));
/// Pages of 100 comments; a PR with more than 10 000 comments is not one the bot manages.
const MAX_PAGES: usize = 100;

#[derive(Default)]
struct AuthCache {
    installation_id: Option<u64>,
    token: Option<CachedToken>,
    jwt: Option<(String, OffsetDateTime)>,
}

struct CachedToken {
    token: String,
    expires_at: OffsetDateTime,
}

/// A GitHub App client acting on one repository.
pub struct GitHub {
    http: Octocrab,
    /// `api_url` without a trailing slash; routes start with `/`.
    base: String,
    app_id: u64,
    owner: String,
    repo: String,
    key: EncodingKey,
    auth: tokio::sync::Mutex<AuthCache>,
    errors: Mutex<BTreeMap<u16, u64>>,
    calls: Counters,
    /// Branch protection as last read, by branch: asked once per PROTECTION_TTL,
    /// not once per draft.
    protection: Mutex<BTreeMap<String, (std::time::Instant, bool)>>,
    attempts: u32,
    first_backoff: Duration,
    max_retry_wait: Duration,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("base", &self.base)
            .field("app_id", &self.app_id)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct JwtClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    expires_at: String,
}

#[derive(Deserialize)]
struct InstallationResponse {
    id: u64,
}

#[derive(Deserialize)]
struct PullResponse {
    number: u64,
    html_url: String,
    body: Option<String>,
    head: PullHead,
}

#[derive(Deserialize)]
struct PermissionResponse {
    permission: String,
}

#[derive(Deserialize)]
struct PullHeadRef {
    head: HeadRef,
}

#[derive(Deserialize)]
struct HeadRef {
    #[serde(rename = "ref")]
    head_ref: String,
}

#[derive(Deserialize)]
struct ProtectionResponse {
    required_pull_request_reviews: Option<ReviewRules>,
}

#[derive(Deserialize)]
struct ReviewRules {
    #[serde(default)]
    require_code_owner_reviews: bool,
}

#[derive(Deserialize)]
struct PullHead {
    sha: String,
}

impl From<PullResponse> for PullRef {
    fn from(p: PullResponse) -> Self {
        PullRef {
            number: p.number,
            head_sha: p.head.sha,
            html_url: p.html_url,
            body: p.body.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct CommentResponse {
    body: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    message: Option<String>,
}

/// A successful answer: what pagination and parsing need.
struct Answer {
    headers: HeaderMap,
    body: hyper::body::Bytes,
}

impl Answer {
    fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, Failed> {
        serde_json::from_slice(&self.body).map_err(|e| Failed {
            error: GitHubError::Transport(format!("unexpected {what} from GitHub: {e}")),
            retry: false,
        })
    }
}

impl GitHub {
    /// Parses the App key up front so a bad PEM fails at startup, not on the first PR.
    pub fn new(settings: AppSettings) -> anyhow::Result<GitHub> {
        let key = EncodingKey::from_rsa_pem(&settings.private_key_pem)
            .context("the GitHub App private key is not an RSA key in PEM form (PKCS#1 or PKCS#8)")?;
        // Parsing the PEM only checks the armour; signing proves the key is usable.
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &JwtClaims {
                iat: 0,
                exp: 1,
                iss: settings.app_id.to_string(),
            },
            &key,
        )
        .context("the GitHub App private key cannot sign RS256 tokens")?;
        let base = settings.api_url.trim_end_matches('/').to_string();
        let uri: hyper::Uri = base
            .parse()
            .with_context(|| format!("invalid GitHub api_url {base:?}"))?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            anyhow::bail!("GitHub api_url {base:?} must be an absolute http(s) URL");
        }
        let http = Octocrab::builder()
            .base_uri(base.as_str())
            .context("invalid GitHub api_url")?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .build()
            .context("could not build the GitHub HTTP client")?;
        Ok(GitHub {
            http,
            base,
            app_id: settings.app_id,
            owner: settings.owner,
            repo: settings.repo,
            key,
            auth: tokio::sync::Mutex::new(AuthCache {
                installation_id: settings.installation_id,
                ..AuthCache::default()
            }),
            errors: Mutex::new(BTreeMap::new()),
            calls: Counters::default(),
            protection: Mutex::new(BTreeMap::new()),
            attempts: GitHubRetry::default().attempts,
            first_backoff: GitHubRetry::default().first_backoff,
            max_retry_wait: GitHubRetry::default().max_wait,
        })
    }

    /// Caps any single wait between attempts (including a server's `Retry-After`), so a
    /// worker is never parked for long and tests stay fast.
    pub fn with_max_retry_wait(mut self, max: Duration) -> GitHub {
        self.max_retry_wait = max;
        self
    }

    /// Sets the number of attempts per call (at least 1) and the first backoff delay,
    /// which doubles on each retry.
    pub fn with_retries(mut self, attempts: u32, first_backoff: Duration) -> GitHub {
        self.attempts = attempts.max(1);
        self.first_backoff = first_backoff;
        self
    }

    /// The installation token, minted on first use and again when less than five minutes
    /// of validity are left. Also the `git push` password (user `x-access-token`).
    pub async fn installation_token(&self) -> Result<String, GitHubError> {
        self.retrying("installation token", || self.token_once()).await
    }

    /// The open pull request whose head is `owner:head_branch`, if any.
    pub async fn find_open_pull(&self, head_branch: &str) -> Result<Option<PullRef>, GitHubError> {
        self.retrying("find pull request", || self.find_open_pull_once(head_branch))
            .await
    }

    /// Opens a pull request. Before each retry it looks for an open PR on the branch
    /// first: GitHub may have created the PR yet answered 5xx, and a second POST would
    /// then fail with 422 (or worse, race).
    pub async fn open_pull(
        &self,
        head_branch: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRef, GitHubError> {
        let route = format!("{}/pulls", self.repo_route());
        let payload = json!({"title": title, "head": head_branch, "base": base, "body": body});
        let mut first = true;
        self.retrying("open pull request", || {
            let retry = !std::mem::replace(&mut first, false);
            let (route, payload) = (&route, &payload);
            async move {
                if retry {
                    if let Some(existing) = self.find_open_pull_once(head_branch).await? {
                        tracing::info!(
                            number = existing.number,
                            "pull request exists after a failed attempt"
                        );
                        return Ok(existing);
                    }
                }
                let answer = self.call(Method::POST, route, Some(payload)).await?;
                Ok(answer.json::<PullResponse>("pull request")?.into())
            }
        })
        .await
    }

    pub async fn update_pull(&self, number: u64, title: &str, body: &str) -> Result<(), GitHubError> {
        let route = format!("{}/pulls/{number}", self.repo_route());
        let payload = json!({"title": title, "body": body});
        self.retrying("update pull request", || async {
            self.call(Method::PATCH, &route, Some(&payload)).await?;
            Ok(())
        })
        .await
    }

    /// Adds labels (GitHub creates unknown labels on the fly).
    pub async fn add_labels(&self, number: u64, labels: &[String]) -> Result<(), GitHubError> {
        if labels.is_empty() {
            return Ok(());
        }
        let route = format!("{}/issues/{number}/labels", self.repo_route());
        let payload = json!({"labels": labels});
        self.retrying("add labels", || async {
            self.call(Method::POST, &route, Some(&payload)).await?;
            Ok(())
        })
        .await
    }

    /// Requests reviews; GitHub rejects an empty request, so none is sent then.
    pub async fn request_reviewers(
        &self,
        number: u64,
        users: &[String],
        teams: &[String],
    ) -> Result<(), GitHubError> {
        if users.is_empty() && teams.is_empty() {
            return Ok(());
        }
        let route = format!("{}/pulls/{number}/requested_reviewers", self.repo_route());
        let payload = json!({"reviewers": users, "team_reviewers": teams});
        self.retrying("request reviewers", || async {
            self.call(Method::POST, &route, Some(&payload)).await?;
            Ok(())
        })
        .await
    }

    /// Bodies of all issue comments on the PR, oldest first, following `Link: rel="next"`.
    pub async fn comment_bodies(&self, number: u64) -> Result<Vec<String>, GitHubError> {
        let mut route = format!("{}/issues/{number}/comments?per_page=100", self.repo_route());
        let mut bodies = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .retrying("list comments", || self.call(Method::GET, &route, None))
                .await?;
            let page: Vec<CommentResponse> = answer.json("comment list").map_err(|f| f.error)?;
            bodies.extend(page.into_iter().map(|c| c.body.unwrap_or_default()));
            match next_link(&answer.headers) {
                Some(next) => route = self.route_of(&next)?,
                None => return Ok(bodies),
            }
        }
        tracing::warn!(number, "stopped listing comments after {MAX_PAGES} pages");
        Ok(bodies)
    }

    /// Posts a comment. Before each retry it looks whether the comment is there
    /// already: GitHub may have posted it yet answered 5xx or dropped the
    /// connection. (Callers mark their comments to tell them across calls.)
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), GitHubError> {
        let route = format!("{}/issues/{number}/comments", self.repo_route());
        let payload = json!({"body": body});
        let mut first = true;
        self.retrying("comment", || {
            let retry = !std::mem::replace(&mut first, false);
            let (route, payload) = (&route, &payload);
            async move {
                if retry && self.comment_bodies_once(number).await?.iter().any(|c| c == body) {
                    tracing::info!(number, "comment exists after a failed attempt");
                    return Ok(());
                }
                self.call(Method::POST, route, Some(payload)).await?;
                Ok(())
            }
        })
        .await
    }

    /// All comment bodies, each page tried once.
    async fn comment_bodies_once(&self, number: u64) -> Result<Vec<String>, Failed> {
        let mut route = format!("{}/issues/{number}/comments?per_page=100", self.repo_route());
        let mut bodies = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self.call(Method::GET, &route, None).await?;
            let page: Vec<CommentResponse> = answer.json("comment list")?;
            bodies.extend(page.into_iter().map(|c| c.body.unwrap_or_default()));
            match next_link(&answer.headers) {
                Some(next) => route = self.route_of(&next).map_err(Failed::from)?,
                None => break,
            }
        }
        Ok(bodies)
    }

    /// Creates a completed check run on `run.head_sha`.
    pub async fn create_check_run(&self, run: &CheckRun) -> Result<(), GitHubError> {
        let route = format!("{}/check-runs", self.repo_route());
        let payload = json!({
            "name": run.name,
            "head_sha": run.head_sha,
            "status": "completed",
            "conclusion": run.conclusion,
            "output": {"title": run.title, "summary": run.summary},
        });
        self.retrying("create check run", || async {
            self.call(Method::POST, &route, Some(&payload)).await?;
            Ok(())
        })
        .await
    }

    /// Whether `user` may write to the repository (permission admin, maintain or write).
    pub async fn can_write(&self, user: &str) -> Result<bool, GitHubError> {
        let route = format!("{}/collaborators/{}/permission", self.repo_route(), encode(user));
        let answer = self
            .retrying("read permission", || self.call(Method::GET, &route, None))
            .await;
        match answer {
            Ok(answer) => {
                let level: PermissionResponse = answer.json("permission").map_err(|f| f.error)?;
                Ok(matches!(
                    level.permission.as_str(),
                    "admin" | "maintain" | "write"
                ))
            }
            Err(GitHubError::Rejected { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The head branch of pull request `number`.
    pub async fn pull_head(&self, number: u64) -> Result<String, GitHubError> {
        let route = format!("{}/pulls/{number}", self.repo_route());
        let answer = self
            .retrying("read pull request", || self.call(Method::GET, &route, None))
            .await?;
        let pull: PullHeadRef = answer.json("pull request").map_err(|f| f.error)?;
        Ok(pull.head.head_ref)
    }

    /// Whether merging into `branch` needs a code owner's approval. An
    /// unprotected branch (404) does not.
    pub async fn code_owner_reviews_required(&self, branch: &str) -> Result<bool, GitHubError> {
        let cached = self.protection.lock().ok().and_then(|c| c.get(branch).copied());
        if let Some((_, required)) = cached.filter(|(read_at, _)| read_at.elapsed() < PROTECTION_TTL) {
            return Ok(required);
        }
        let route = format!("{}/branches/{}/protection", self.repo_route(), encode(branch));
        let required = match self
            .retrying("read branch protection", || self.call(Method::GET, &route, None))
            .await
        {
            Ok(answer) => {
                let protection: ProtectionResponse = answer.json("branch protection").map_err(|f| f.error)?;
                protection
                    .required_pull_request_reviews
                    .is_some_and(|r| r.require_code_owner_reviews)
            }
            Err(GitHubError::Rejected { status: 404, .. }) => false,
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.protection.lock() {
            cache.insert(branch.to_string(), (std::time::Instant::now(), required));
        }
        Ok(required)
    }

    /// Requests answered with an error, by HTTP status, for /metrics.
    pub fn errors_by_status(&self) -> BTreeMap<u16, u64> {
        self.errors.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Retries, transport errors and calls given up, for /metrics.
    pub fn calls(&self) -> CallCounts {
        CallCounts {
            retries: self.calls.retries.load(Relaxed),
            transport_errors: self.calls.transport_errors.load(Relaxed),
            gave_up: self.calls.gave_up.load(Relaxed),
        }
    }

    fn repo_route(&self) -> String {
        format!("/repos/{}/{}", encode(&self.owner), encode(&self.repo))
    }

    /// Turns a `Link` URL back into a route, refusing to send the token to another host.
    fn route_of(&self, url: &str) -> Result<String, GitHubError> {
        let origin = |u: &str| -> Option<String> {
            let uri: hyper::Uri = u.parse().ok()?;
            Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
        };
        let (Some(link_origin), Some(base_origin)) = (origin(url), origin(&self.base)) else {
            return Err(GitHubError::Transport(format!(
                "unusable pagination link {url:?}"
            )));
        };
        if link_origin != base_origin {
            return Err(GitHubError::Transport(format!(
                "pagination link {url:?} leaves {base_origin}"
            )));
        }
        let Some(path) = url.strip_prefix(&link_origin) else {
            return Err(GitHubError::Transport(format!(
                "unusable pagination link {url:?}"
            )));
        };
        let base_path = &self.base[base_origin.len()..];
        Ok(path.strip_prefix(base_path).unwrap_or(path).to_string())
    }

    async fn find_open_pull_once(&self, head_branch: &str) -> Result<Option<PullRef>, Failed> {
        let route = format!(
            "{}/pulls?state=open&head={}&per_page=100",
            self.repo_route(),
            encode(&format!("{}:{}", self.owner, head_branch))
        );
        let answer = self.call(Method::GET, &route, None).await?;
        let pulls: Vec<PullResponse> = answer.json("pull request list")?;
        Ok(pulls.into_iter().next().map(PullRef::from))
    }

    /// One attempt at a valid installation token, looking up the installation first if
    /// needed. The lock is held throughout so concurrent callers mint one token, not many.
    async fn token_once(&self) -> Result<String, Failed> {
        let mut cache = self.auth.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(t) = &cache.token {
            if t.expires_at - now > TOKEN_REFRESH_MARGIN {
                return Ok(t.token.clone());
            }
        }
        let jwt = self.app_jwt(&mut cache)?;
        let installation_id = match cache.installation_id {
            Some(id) => id,
            None => {
                let route = format!("{}/installation", self.repo_route());
                let answer = self.send(Method::GET, &route, None, &jwt).await?;
                let id = answer.json::<InstallationResponse>("installation")?.id;
                tracing::debug!(
                    installation_id = id,
                    "found the App installation for the repository"
                );
                cache.installation_id = Some(id);
                id
            }
        };
        let route = format!("/app/installations/{installation_id}/access_tokens");
        let answer = self.send(Method::POST, &route, None, &jwt).await?;
        let minted: TokenResponse = answer.json("installation token")?;
        let expires_at = OffsetDateTime::parse(&minted.expires_at, &Rfc3339).map_err(|e| Failed {
            error: GitHubError::Transport(format!("unreadable token expiry {:?}: {e}", minted.expires_at)),
            retry: false,
        })?;
        tracing::debug!(%expires_at, "minted an installation token");
        cache.token = Some(CachedToken {
            token: minted.token.clone(),
            expires_at,
        });
        Ok(minted.token)
    }

    /// The App JWT, reused while it has more than a minute left.
    fn app_jwt(&self, cache: &mut AuthCache) -> Result<String, Failed> {
        let now = OffsetDateTime::now_utc();
        if let Some((jwt, exp)) = &cache.jwt {
            if *exp - now > time::Duration::minutes(1) {
                return Ok(jwt.clone());
            }
        }
        let claims = JwtClaims {
            iat: now.unix_timestamp() - JWT_BACKDATE_SECS,
            exp: now.unix_timestamp() + JWT_LIFETIME_SECS,
            iss: self.app_id.to_string(),
        };
        let jwt =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key).map_err(|e| Failed {
                error: GitHubError::Transport(format!("could not sign the App JWT: {e}")),
                retry: false,
            })?;
        cache.jwt = Some((jwt.clone(), now + time::Duration::seconds(JWT_LIFETIME_SECS)));
        Ok(jwt)
    }

    /// One request with the installation token. A 401 drops the cached token so the next
    /// call mints a fresh one (it may have been revoked).
    async fn call(
        &self,
        method: Method,
        route: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Failed> {
        let token = self.token_once().await?;
        let result = self.send(method, route, body, &token).await;
        if let Err(Failed {
            error: GitHubError::Rejected { status: 401, .. },
            ..
        }) = &result
        {
            self.auth.lock().await.token = None;
        }
        result
    }

    /// Sends one request and classifies the answer; every error status is counted.
    async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<&serde_json::Value>,
        bearer: &str,
    ) -> Result<Answer, Failed> {
        let url = format!("{}{}", self.base, route);
        let transport = |e: String| Failed {
            error: GitHubError::Transport(e),
            retry: true,
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {bearer}"))
            .map_err(|_| transport("credential is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let builder = hyper::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(USER_AGENT, USER_AGENT_VALUE);
        let request = match body {
            Some(body) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(OctoBody::from(body.to_string())),
            None => builder.body(OctoBody::empty()),
        }
        .map_err(|e| Failed {
            error: GitHubError::Transport(format!("could not build {method} {url}: {e}")),
            retry: false,
        })?;
        let counted = |failed: Failed| {
            self.calls.transport_errors.fetch_add(1, Relaxed);
            failed
        };
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| counted(transport(format!("{method} {url}: {e}"))))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| counted(transport(format!("reading the answer to {method} {url}: {e}"))))?
            .to_bytes();
        if parts.status.is_success() {
            return Ok(Answer {
                headers: parts.headers,
                body,
            });
        }
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(parts.status.as_u16()).or_default() += 1;
        }
        let error = classify(parts.status, &parts.headers, &body, OffsetDateTime::now_utc());
        tracing::debug!(%method, %url, status = parts.status.as_u16(), %error, "GitHub answered with an error");
        Err(error.into())
    }

    /// Runs `op` up to `attempts` times, waiting between attempts: the server's
    /// `Retry-After` (capped) when given, else exponential backoff.
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, GitHubError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failed>>,
    {
        let mut backoff = self.first_backoff;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(failed) if failed.retry && attempt < self.attempts => {
                    let asked = match &failed.error {
                        GitHubError::Retryable { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = asked.unwrap_or(backoff).min(self.max_retry_wait);
                    tracing::warn!(
                        what,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %failed.error,
                        "GitHub call failed; retrying"
                    );
                    self.calls.retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(wait).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                Err(failed) => {
                    if failed.retry {
                        self.calls.gave_up.fetch_add(1, Relaxed);
                        tracing::warn!(what, attempt, error = %failed.error, "GitHub call failed; giving up");
                    }
                    return Err(failed.error);
                }
            }
        }
    }
}

/// Decides what an error answer means for the caller: GitHub signals rate limits with
/// 429, or 403 plus `x-ratelimit-remaining: 0` (primary) or a "secondary rate limit"
/// message. `x-ratelimit-reset` is only a wait hint when the limit is exhausted: GitHub
/// sends it on every answer.
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: OffsetDateTime) -> GitHubError {
    let message = serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .and_then(|e| e.message)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_string()
            } else {
                text.chars().take(200).collect()
            }
        });
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let secondary = message.to_ascii_lowercase().contains("secondary rate limit");
    let code = status.as_u16();
    let retryable = status.is_server_error() || code == 429 || (code == 403 && (exhausted || secondary));
    if !retryable {
        return GitHubError::Rejected {
            status: code,
            message,
        };
    }
    let retry_after = header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .or_else(|| {
            let reset = header("x-ratelimit-reset")?.parse::<i64>().ok()?;
            exhausted.then(|| Duration::from_secs(reset.saturating_sub(now.unix_timestamp()).max(0) as u64))
        });
    GitHubError::Retryable {
        status: code,
        retry_after,
        message,
    }
}

/// The `rel="next"` URL of a `Link` header, if any.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let mut pieces = part.split(';');
            let url = pieces.next()?.trim().strip_prefix('<')?.strip_suffix('>')?;
            pieces
                .any(|p| matches!(p.trim().replace(' ', "").as_str(), "rel=\"next\"" | "rel=next"))
                .then(|| url.to_string())
        })
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters pass).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn classification_follows_github_rate_limit_signals() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).expect("time");
        let body = br#"{"message":"Not Found"}"#;
        assert_eq!(
            classify(StatusCode::NOT_FOUND, &HeaderMap::new(), body, now),
            GitHubError::Rejected {
                status: 404,
                message: "Not Found".into()
            }
        );
        let e = classify(
            StatusCode::BAD_GATEWAY,
            &headers(&[("x-ratelimit-reset", "2000")]),
            b"",
            now,
        );
        assert!(
            matches!(
                e,
                GitHubError::Retryable {
                    status: 502,
                    retry_after: None,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1030")]),
            br#"{"message":"API rate limit exceeded"}"#,
            now,
        );
        assert_eq!(
            e,
            GitHubError::Retryable {
                status: 403,
                retry_after: Some(Duration::from_secs(30)),
                message: "API rate limit exceeded".into()
            }
        );
        let e = classify(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "7")]),
            br#"{"message":"You have exceeded a secondary rate limit."}"#,
            now,
        );
        assert!(matches!(e, GitHubError::Retryable { retry_after: Some(d), .. } if d.as_secs() == 7));
        let e = classify(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"{"message":"nope"}"#,
            now,
        );
        assert!(matches!(e, GitHubError::Rejected { status: 403, .. }));
        let e = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            b"slow down",
            now,
        );
        assert!(
            matches!(e, GitHubError::Retryable { status: 429, ref message, .. } if message == "slow down")
        );
    }

    #[test]
    fn next_link_is_found_among_relations() {
        let h = headers(&[(
            "link",
            r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next""#,
        )]);
        assert_eq!(next_link(&h).as_deref(), Some("https://api.github.com/x?page=3"));
        let h = headers(&[("link", r#"<https://api.github.com/x?page=1>; rel="first""#)]);
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn encoding_keeps_unreserved_characters() {
        assert_eq!(
            encode("acme:shadowdraft/billing-bot"),
            "acme%3Ashadowdraft%2Fbilling-bot"
        );
    }
}
