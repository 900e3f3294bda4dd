//! The GitHub App client against the stateful fake GitHub, and git pushes through the
//! authenticated HTTP bridge.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fake_github::{key, FakeGitHub};
use common::git_bridge::{git, init_bare, GitBridge};
use shadowdraft::config::AppSettings;
use shadowdraft::forge::{CheckRun, GitHub, GitHubError};

const APP_ID: u64 = 31337;
const OWNER: &str = "acme";
const REPO: &str = "agent-policies";
const BRANCH: &str = "shadowdraft/billing-bot";

fn fake(bare: Option<&Path>) -> FakeGitHub {
    FakeGitHub::start(
        APP_ID,
        &key("app-public-key.pem"),
        OWNER,
        REPO,
        bare.map(Path::to_path_buf),
    )
}

fn settings(api_url: String, installation_id: Option<u64>) -> AppSettings {
    AppSettings {
        api_url,
        app_id: APP_ID,
        private_key_pem: key("app-private-key.pem"),
        installation_id,
        owner: OWNER.into(),
        repo: REPO.into(),
    }
}

/// A client with quick backoff, so retry tests stay fast.
fn client(fake: &FakeGitHub) -> GitHub {
    GitHub::new(settings(fake.url(), Some(fake.installation_id())))
        .expect("client")
        .with_retries(4, Duration::from_millis(20))
}

/// A fake without a repository accepts any branch name; its shas are made up.
fn fake_and_client() -> (FakeGitHub, GitHub) {
    let f = fake(None);
    let c = client(&f);
    (f, c)
}

const PULLS: &str = "/repos/acme/agent-policies/pulls";
const TOKENS: &str = "/app/installations/4242/access_tokens";

#[tokio::test]
async fn installation_token_is_minted_with_a_verified_jwt_and_cached() {
    let (fake, gh) = fake_and_client();
    let first = gh.installation_token().await.expect("token");
    let second = gh.installation_token().await.expect("token");
    assert_eq!(first, second);
    assert_eq!(fake.tokens_issued().len(), 1);
    assert_eq!(fake.count("POST", TOKENS), 1);
    assert!(fake.token_is_valid(&first));
    assert!(gh.errors_by_status().is_empty());
}

#[tokio::test]
async fn a_client_signing_with_another_key_is_rejected_without_retry() {
    let fake = fake(None);
    // The other key is PKCS#1 ("BEGIN RSA PRIVATE KEY"): both PEM forms parse.
    let gh = GitHub::new(AppSettings {
        private_key_pem: key("other-private-key.pem"),
        ..settings(fake.url(), Some(fake.installation_id()))
    })
    .expect("PKCS#1 key parses");
    let err = gh.installation_token().await.expect_err("wrong key");
    assert!(
        matches!(err, GitHubError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(fake.count("POST", TOKENS), 1);
    assert!(fake.tokens_issued().is_empty());
    assert_eq!(gh.errors_by_status().get(&401), Some(&1));
    // Nothing that needs a token gets through either.
    let err = gh.comment(1, "hi").await.expect_err("no token");
    assert!(
        matches!(err, GitHubError::Rejected { status: 401, .. }),
        "{err:?}"
    );
}

#[test]
fn a_bad_private_key_fails_at_construction() {
    let mut s = settings("https://api.github.com".into(), Some(1));
    s.private_key_pem = b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n".to_vec();
    let err = GitHub::new(s).expect_err("bad key").to_string();
    assert!(err.contains("private key"), "{err}");
    let mut s = settings("https://api.github.com".into(), Some(1));
    s.private_key_pem = b"not pem at all".to_vec();
    assert!(GitHub::new(s).is_err());
    let s = settings("not a url".into(), Some(1));
    assert!(GitHub::new(s).is_err());
}

#[tokio::test]
async fn a_token_close_to_expiry_is_refreshed() {
    let (fake, gh) = fake_and_client();
    fake.set_token_ttl(Duration::from_secs(4 * 60));
    let first = gh.installation_token().await.expect("token");
    let second = gh.installation_token().await.expect("token");
    assert_ne!(first, second, "a token with 4 minutes left must not be reused");
    assert_eq!(fake.tokens_issued().len(), 2);
    fake.set_token_ttl(Duration::from_secs(3600));
    let third = gh.installation_token().await.expect("token");
    let fourth = gh.installation_token().await.expect("token");
    assert_eq!(third, fourth);
    assert_eq!(fake.tokens_issued().len(), 3);
}

#[tokio::test]
async fn the_installation_is_looked_up_once_when_not_configured() {
    let fake = fake(None);
    fake.set_token_ttl(Duration::from_secs(60));
    let gh = GitHub::new(settings(fake.url(), None)).expect("client");
    gh.installation_token().await.expect("token");
    gh.installation_token().await.expect("token");
    assert_eq!(fake.count("GET", "/repos/acme/agent-policies/installation"), 1);
    assert_eq!(fake.tokens_issued().len(), 2);
}

#[tokio::test]
async fn pull_request_lifecycle_round_trips_through_the_fake() {
    let (fake, gh) = fake_and_client();
    assert_eq!(gh.find_open_pull(BRANCH).await.expect("find"), None);

    let opened = gh
        .open_pull(BRANCH, "main", "Draft for billing-bot", "body v1")
        .await
        .expect("open");
    assert_eq!(opened.number, 1);
    assert_eq!(opened.body, "body v1");
    assert_eq!(opened.html_url, "https://github.com/acme/agent-policies/pull/1");
    assert_eq!(opened.head_sha.len(), 40);
    assert_eq!(
        gh.find_open_pull(BRANCH).await.expect("find"),
        Some(opened.clone())
    );
    assert_eq!(gh.find_open_pull("shadowdraft/other").await.expect("find"), None);

    gh.update_pull(1, "Draft for billing-bot (2 rules)", "body v2")
        .await
        .expect("update");
    gh.add_labels(1, &["shadowdraft".into(), "needs-review".into()])
        .await
        .expect("labels");
    gh.add_labels(1, &["shadowdraft".into()])
        .await
        .expect("labels again");
    gh.request_reviewers(1, &["alice".into()], &["payments".into()])
        .await
        .expect("reviewers");
    gh.request_reviewers(1, &[], &[])
        .await
        .expect("nothing to request");
    let pull = fake.pull(1).expect("pull");
    assert_eq!(pull.title, "Draft for billing-bot (2 rules)");
    assert_eq!(pull.body, "body v2");
    assert_eq!(pull.head, BRANCH);
    assert_eq!(pull.base, "main");
    assert_eq!(pull.labels, ["shadowdraft", "needs-review"]);
    assert_eq!(pull.reviewers, ["alice"]);
    assert_eq!(pull.teams, ["payments"]);
    assert_eq!(
        fake.count("POST", "/repos/acme/agent-policies/pulls/1/requested_reviewers"),
        1
    );
    assert_eq!(
        gh.find_open_pull(BRANCH).await.expect("find").map(|p| p.body),
        Some("body v2".into())
    );

    fake.add_comment(1, "alice", "/shadowdraft redraft");
    gh.comment(1, "<!-- shadowdraft:evidence -->\nnew evidence")
        .await
        .expect("comment");
    let bodies = gh.comment_bodies(1).await.expect("comments");
    assert_eq!(
        bodies,
        [
            "/shadowdraft redraft",
            "<!-- shadowdraft:evidence -->\nnew evidence"
        ]
    );
    assert_eq!(fake.comments(1)[1].user, "shadowdraft[bot]");

    let run = CheckRun {
        name: "shadowdraft/check".into(),
        head_sha: opened.head_sha.clone(),
        conclusion: "failure".into(),
        title: "1 rule would deny observed calls".into(),
        summary: "details".into(),
    };
    gh.create_check_run(&run).await.expect("check run");
    let runs = fake.check_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, run.name);
    assert_eq!(runs[0].head_sha, run.head_sha);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].conclusion.as_deref(), Some("failure"));
    assert_eq!(runs[0].title.as_deref(), Some(run.title.as_str()));
    assert_eq!(runs[0].summary.as_deref(), Some("details"));

    // GitHub refuses a second open PR for the same head.
    let err = gh
        .open_pull(BRANCH, "main", "again", "")
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, GitHubError::Rejected { status: 422, .. }),
        "{err:?}"
    );
    fake.close(1);
    assert_eq!(gh.find_open_pull(BRANCH).await.expect("find"), None);
    assert_eq!(gh.errors_by_status().get(&422), Some(&1));
}

#[tokio::test]
async fn comments_are_read_across_pages() {
    let (fake, gh) = fake_and_client();
    gh.open_pull(BRANCH, "main", "t", "b").await.expect("open");
    for i in 0..230 {
        fake.add_comment(1, "alice", &format!("comment {i}"));
    }
    let bodies = gh.comment_bodies(1).await.expect("comments");
    assert_eq!(bodies.len(), 230);
    assert_eq!(bodies[0], "comment 0");
    assert_eq!(bodies[229], "comment 229");
    let pages = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/issues/1/comments"))
        .count();
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn a_502_on_create_is_retried_into_exactly_one_pull() {
    let (fake, gh) = fake_and_client();
    fake.fail_next(&format!("POST {PULLS}"), 502, None, 1);
    let pull = gh
        .open_pull(BRANCH, "main", "t", "b")
        .await
        .expect("open after retry");
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(pull.number, 1);
    assert_eq!(fake.count("POST", PULLS), 2);
    assert_eq!(gh.errors_by_status().get(&502), Some(&1));
}

#[tokio::test]
async fn a_create_that_succeeded_behind_a_502_is_not_repeated() {
    let (fake, gh) = fake_and_client();
    fake.fail_next_after_processing(&format!("POST {PULLS}"), 502, 1);
    let pull = gh
        .open_pull(BRANCH, "main", "t", "b")
        .await
        .expect("found after retry");
    assert_eq!(pull.number, 1);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.count("POST", PULLS), 1, "the PR existed, so no second POST");
    assert_eq!(fake.count("GET", PULLS), 1);
}

#[tokio::test]
async fn a_comment_posted_behind_a_502_is_not_posted_again() {
    let (fake, gh) = fake_and_client();
    gh.open_pull(BRANCH, "main", "t", "b").await.expect("open");
    fake.fail_next_after_processing("POST /repos/acme/agent-policies/issues/1/comments", 502, 1);
    gh.comment(1, "<!-- marker -->\nhello").await.expect("comment");
    assert_eq!(fake.comments(1).len(), 1, "{:?}", fake.comments(1));
    assert_eq!(
        fake.count("POST", "/repos/acme/agent-policies/issues/1/comments"),
        1
    );
    // A comment that failed before GitHub took it is posted on the retry.
    fake.fail_next("POST /repos/acme/agent-policies/issues/1/comments", 503, None, 1);
    gh.comment(1, "second").await.expect("comment");
    assert_eq!(fake.comments(1).len(), 2);
    assert_eq!(gh.calls().retries, 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (fake, gh) = fake_and_client();
    gh.installation_token().await.expect("token");
    fake.fail_next("/comments", 429, Some(1), 1);
    let started = Instant::now();
    gh.open_pull(BRANCH, "main", "t", "b").await.expect("open");
    gh.comment(1, "hello").await.expect("comment after waiting");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(fake.comments(1).len(), 1);
    assert_eq!(gh.errors_by_status().get(&429), Some(&1));
}

#[tokio::test]
async fn secondary_rate_limits_are_retried_and_retry_after_is_capped() {
    let fake = fake(None);
    let gh = client(&fake).with_max_retry_wait(Duration::from_millis(50));
    gh.installation_token().await.expect("token");
    fake.fail_next("POST /repos/acme/agent-policies/check-runs", 403, Some(30), 2);
    let run = CheckRun {
        name: "n".into(),
        head_sha: "0".repeat(40),
        conclusion: "neutral".into(),
        title: "t".into(),
        summary: "s".into(),
    };
    let started = Instant::now();
    gh.create_check_run(&run)
        .await
        .expect("check run after two rate limits");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.check_runs().len(), 1);
    assert_eq!(gh.errors_by_status().get(&403), Some(&2));
}

#[tokio::test]
async fn client_errors_are_not_retried_and_server_errors_give_up_eventually() {
    let (fake, gh) = fake_and_client();
    let err = gh.update_pull(999, "t", "b").await.expect_err("no such PR");
    match err {
        GitHubError::Rejected { status, message } => {
            assert_eq!(status, 404);
            assert_eq!(message, "Not Found");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.count("PATCH", "/repos/acme/agent-policies/pulls/999"), 1);

    fake.fail_next("/pulls", 503, None, 10);
    let err = gh.find_open_pull(BRANCH).await.expect_err("GitHub stays down");
    assert!(
        matches!(err, GitHubError::Retryable { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(fake.count("GET", PULLS), 4);

    let errors = gh.errors_by_status();
    assert_eq!(errors.get(&404), Some(&1));
    assert_eq!(errors.get(&503), Some(&4));
    assert_eq!(errors.len(), 2);
}

#[tokio::test]
async fn an_api_url_with_a_path_prefix_is_joined_correctly() {
    let fake = fake(None);
    let gh = GitHub::new(settings(format!("{}/", fake.url_with_prefix()), None))
        .expect("client")
        .with_retries(4, Duration::from_millis(20));
    gh.open_pull(BRANCH, "main", "t", "b").await.expect("open");
    for i in 0..120 {
        fake.add_comment(1, "bob", &format!("c{i}"));
    }
    assert_eq!(gh.comment_bodies(1).await.expect("comments").len(), 120);
    let requests = fake.requests();
    assert!(requests.len() >= 5);
    for r in &requests {
        assert!(r.path.starts_with("/api/v3/"), "{r:?}");
        assert!(r.status < 300, "{r:?}");
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_by_the_fake() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = fake(None);
    let addr = fake.url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let request = format!(
        "GET {PULLS} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer ghs_forged\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("Bad credentials"), "{answer}");
}

#[tokio::test]
async fn git_pushes_need_a_valid_installation_token_and_merges_move_main() {
    let root = tempfile::tempdir().expect("tempdir");
    let bare = root.path().join("policies.git");
    let initial = init_bare(&bare, &[("policies/billing-bot.cedar", "// empty\n")]).expect("bare repo");
    let fake = fake(Some(&bare));
    let bridge = GitBridge::start(root.path(), fake.token_checker());
    let gh = client(&fake);
    let token = gh.installation_token().await.expect("token");

    let work = tempfile::tempdir().expect("tempdir");
    let clone = work.path().join("clone");
    let authed = bridge.authed_url("policies", &token);
    git(work.path(), &["clone", "--quiet", &authed, "clone"]).expect("clone with token");
    std::fs::write(
        clone.join("policies/billing-bot.cedar"),
        "permit(principal, action, resource);\n",
    )
    .expect("write");
    git(&clone, &["commit", "--quiet", "-am", "Draft billing-bot"]).expect("commit");
    let pushed = git(&clone, &["rev-parse", "HEAD"]).expect("rev-parse");

    let wrong = bridge.authed_url("policies", "ghs_not_a_token");
    let err = git(
        &clone,
        &["push", "--quiet", &wrong, &format!("HEAD:refs/heads/{BRANCH}")],
    )
    .expect_err("wrong token must not push");
    assert!(
        err.to_string().contains("401") || err.to_string().contains("uthentication"),
        "{err}"
    );
    assert!(git(
        &bare,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{BRANCH}")
        ]
    )
    .is_err());
    assert!(bridge.requests().iter().any(|r| r.status == 401));

    git(
        &clone,
        &["push", "--quiet", &authed, &format!("HEAD:refs/heads/{BRANCH}")],
    )
    .expect("push");
    assert_eq!(
        git(&bare, &["rev-parse", &format!("refs/heads/{BRANCH}")]).expect("ref"),
        pushed
    );

    // The fake reports the branch tip as the PR head, and merging moves main to it.
    let pull = gh.open_pull(BRANCH, "main", "Draft", "b").await.expect("open");
    assert_eq!(pull.head_sha, pushed);
    assert_eq!(git(&bare, &["rev-parse", "main"]).expect("main"), initial);
    let merged = fake.merge(pull.number).expect("merge");
    assert_eq!(merged, pushed, "fast-forward");
    assert_eq!(git(&bare, &["rev-parse", "main"]).expect("main"), pushed);
    let state = fake.pull(pull.number).expect("pull");
    assert!(state.merged && state.state == "closed");
    assert_eq!(gh.find_open_pull(BRANCH).await.expect("find"), None);

    // A branch from the old main gets a merge commit with both parents.
    git(&clone, &["checkout", "--quiet", "-b", "other", &initial]).expect("checkout");
    std::fs::write(
        clone.join("policies/other.cedar"),
        "forbid(principal, action, resource);\n",
    )
    .expect("write");
    git(&clone, &["add", "--all"]).expect("add");
    git(&clone, &["commit", "--quiet", "-m", "Other"]).expect("commit");
    let other = git(&clone, &["rev-parse", "HEAD"]).expect("rev-parse");
    git(
        &clone,
        &["push", "--quiet", &authed, "HEAD:refs/heads/shadowdraft/other"],
    )
    .expect("push");
    let pull = gh
        .open_pull("shadowdraft/other", "main", "Other", "b")
        .await
        .expect("open");
    let merge = fake.merge(pull.number).expect("merge");
    let parents = git(&bare, &["rev-list", "--parents", "-n", "1", &merge]).expect("parents");
    assert_eq!(parents, format!("{merge} {pushed} {other}"));
    let tree = git(&bare, &["ls-tree", "-r", "--name-only", "main"]).expect("tree");
    assert_eq!(tree, "policies/billing-bot.cedar\npolicies/other.cedar");
}
