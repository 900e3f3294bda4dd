//! Authenticated git over HTTP, like github.com's: bare repositories under a root served
//! by `git http-backend` (CGI), with HTTP Basic auth whose password must be a currently
//! valid installation token (user name ignored, conventionally `x-access-token`).
//!
//! Runs on its own thread and runtime, so blocking git clients (git2, the `git` CLI via
//! `std::process`) can talk to it from any test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use tokio::io::AsyncWriteExt;

pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One request the bridge answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    pub method: String,
    pub path: String,
    pub user: Option<String>,
    pub status: u16,
}

struct Bridge {
    root: PathBuf,
    token_check: TokenCheck,
    requests: Mutex<Vec<GitRequest>>,
}

/// The server. Dropping it stops it.
pub struct GitBridge {
    addr: SocketAddr,
    bridge: Arc<Bridge>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl GitBridge {
    /// Serves the bare repositories under `root` (`{url}/{name}.git` is `root/{name}.git`),
    /// admitting requests whose Basic password passes `token_check`.
    pub fn start(root: &Path, token_check: TokenCheck) -> GitBridge {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind git bridge");
        let addr = listener.local_addr().expect("local addr");
        let bridge = Arc::new(Bridge {
            root: root.to_path_buf(),
            token_check,
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(bridge.clone());
        let tx = super::http::serve_in_background(listener, app);
        GitBridge {
            addr,
            bridge,
            _shutdown: tx,
        }
    }

    /// `http://127.0.0.1:port` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `{url}/{name}.git`, without credentials.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.url())
    }

    /// `http://x-access-token:{token}@127.0.0.1:port/{name}.git`, what the bot pushes to.
    pub fn authed_url(&self, name: &str, token: &str) -> String {
        format!("http://x-access-token:{token}@{}/{name}.git", self.addr)
    }

    pub fn requests(&self) -> Vec<GitRequest> {
        self.bridge.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Runs git with a fixed identity and no inherited repository, returning trimmed stdout.
pub fn git(cwd: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(cwd)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates a bare repository at `dir` (e.g. `root/policies.git`) whose `main` has one
/// commit holding `files` (paths may contain `/`), accepting pushes over HTTP.
/// Returns the commit sha.
pub fn init_bare(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "--quiet", "--bare", "--initial-branch=main"])?;
    git(dir, &["config", "http.receivepack", "true"])?;
    let work = tempfile::tempdir()?;
    git(work.path(), &["init", "--quiet", "--initial-branch=main"])?;
    for (path, content) in files {
        let file = work.path().join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, content)?;
    }
    git(work.path(), &["add", "--all"])?;
    git(
        work.path(),
        &["commit", "--quiet", "--allow-empty", "-m", "Initial policies"],
    )?;
    let dir_str = dir.to_str().ok_or_else(|| anyhow::anyhow!("non-UTF-8 path"))?;
    git(work.path(), &["push", "--quiet", dir_str, "main:refs/heads/main"])?;
    git(dir, &["rev-parse", "refs/heads/main"])
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

async fn handle(
    axum::extract::State(bridge): axum::extract::State<Arc<Bridge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credentials = basic_credentials(&headers).filter(|(_, password)| (bridge.token_check)(password));
    let response = match &credentials {
        None => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
            "Invalid username or token. Password authentication is not supported for Git operations.\n",
        )
            .into_response(),
        Some((user, _)) => match cgi(&bridge.root, &method, &uri, &headers, user, body).await {
            Ok(r) => r,
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("git http-backend: {e}\n"),
            )
                .into_response(),
        },
    };
    if let Ok(mut log) = bridge.requests.lock() {
        log.push(GitRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            user: credentials.map(|(u, _)| u),
            status: response.status().as_u16(),
        });
    }
    response
}

/// Runs `git http-backend` for one request (RFC 3875 CGI) and turns its output into a response.
async fn cgi(
    root: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    user: &str,
    body: Bytes,
) -> anyhow::Result<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_remove("GIT_DIR")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
        let _ = stdin.shutdown().await;
    });
    let out = child.wait_with_output().await?;
    let _ = writer.await;
    let stdout = out.stdout;
    let (head_end, body_start) = match (find(&stdout, b"\r\n\r\n"), find(&stdout, b"\n\n")) {
        (Some(a), Some(b)) if b < a => (b, b + 2),
        (Some(a), _) => (a, a + 4),
        (None, Some(b)) => (b, b + 2),
        (None, None) => anyhow::bail!(
            "no CGI headers in output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    let head = String::from_utf8_lossy(&stdout[..head_end]).into_owned();
    let mut response = Response::new(Body::from(stdout[body_start..].to_vec()));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            *response.status_mut() = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.trim()), HeaderValue::from_str(value)) {
            response.headers_mut().append(n, v);
        }
    }
    Ok(response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
