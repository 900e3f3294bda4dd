//! GitHub webhook deliveries, parsed once, at receipt, into the events the
//! bot acts on. A payload that lacks what its event needs is refused with the
//! missing field named (and counted); it is never read as pull request #0.
//! The store keeps the typed event, not GitHub's payload.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A pull request was merged or closed without merging.
    PullRequestClosed {
        repository: String,
        number: u64,
        /// The head branch, e.g. `shadowdraft/billing-bot`.
        head: String,
        merged: bool,
        merge_commit: Option<String>,
    },
    /// Someone pushed to a pull request's head branch.
    PullRequestSynchronized {
        repository: String,
        number: u64,
        head: String,
        sender: Option<String>,
    },
    /// A branch or tag moved.
    Push { repository: String, git_ref: String },
    /// The App was installed (`repositories` it serves) or uninstalled.
    Installation {
        installation: u64,
        deleted: bool,
        repositories: Vec<String>,
    },
    /// Repositories were added to or removed from an installation.
    InstallationRepositories {
        installation: u64,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// A comment, review or review comment on a pull request: maybe commands.
    Comment {
        repository: String,
        number: u64,
        author: String,
        /// Written by a bot (ours included): never a command.
        by_bot: bool,
        text: String,
        /// The head branch when the payload names it (reviews do, issue comments do not).
        head: Option<String>,
    },
}

impl Event {
    /// The repository the event is about; installation events name none.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Event::PullRequestClosed { repository, .. }
            | Event::PullRequestSynchronized { repository, .. }
            | Event::Push { repository, .. }
            | Event::Comment { repository, .. } => Some(repository),
            Event::Installation { .. } | Event::InstallationRepositories { .. } => None,
        }
    }
}

/// What a delivery turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Event(Event),
    /// A delivery the bot has nothing to do with (another action, a comment
    /// on an issue), acknowledged and dropped: why.
    Ignored(String),
}

/// A delivery whose payload lacks what its event needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{event}` payload: {message}")]
pub struct Rejected {
    pub event: String,
    pub message: String,
}

/// The `X-GitHub-Event` names the bot acts on; others are acknowledged and ignored.
pub const HANDLED: &[&str] = &[
    "pull_request",
    "push",
    "installation",
    "installation_repositories",
    "issue_comment",
    "pull_request_review",
    "pull_request_review_comment",
];

/// Parse a delivery of the event `name`.
pub fn parse(name: &str, payload: &[u8]) -> Result<Parsed, Rejected> {
    let rejected = |message: String| Rejected {
        event: name.to_string(),
        message,
    };
    let parsed = match name {
        "pull_request" => pull_request(read(payload).map_err(rejected)?),
        "push" => {
            let p: PushPayload = read(payload).map_err(rejected)?;
            Parsed::Event(Event::Push {
                repository: p.repository.full_name,
                git_ref: p.git_ref,
            })
        }
        "installation" => {
            let p: InstallationPayload = read(payload).map_err(rejected)?;
            Parsed::Event(Event::Installation {
                installation: p.installation.id,
                deleted: p.action == "deleted",
                repositories: names(p.repositories),
            })
        }
        "installation_repositories" => {
            let p: InstallationRepositoriesPayload = read(payload).map_err(rejected)?;
            Parsed::Event(Event::InstallationRepositories {
                installation: p.installation.id,
                added: names(p.repositories_added),
                removed: names(p.repositories_removed),
            })
        }
        "issue_comment" => {
            let p: IssueCommentPayload = read(payload).map_err(rejected)?;
            if p.issue.pull_request.is_none() {
                return Ok(Parsed::Ignored(
                    "a comment on an issue, not a pull request".into(),
                ));
            }
            comment(&p.action, p.repository, p.issue.number, None, p.comment)
        }
        "pull_request_review" => {
            let p: ReviewPayload = read(payload).map_err(rejected)?;
            let head = Some(p.pull_request.head.name);
            comment(&p.action, p.repository, p.pull_request.number, head, p.review)
        }
        "pull_request_review_comment" => {
            let p: ReviewCommentPayload = read(payload).map_err(rejected)?;
            let head = Some(p.pull_request.head.name);
            comment(&p.action, p.repository, p.pull_request.number, head, p.comment)
        }
        other => Parsed::Ignored(format!("the bot does not act on `{other}` events")),
    };
    Ok(parsed)
}

/// Deserialize with the path of the first missing or mistyped field; a
/// duplicated key is an error too (serde's derive refuses it).
fn read<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => e.inner().to_string(),
            _ => format!("`{path}`: {}", e.inner()),
        }
    })
}

fn pull_request(p: PullRequestPayload) -> Parsed {
    let (repository, number, head) = (
        p.repository.full_name,
        p.pull_request.number,
        p.pull_request.head.name,
    );
    match p.action.as_str() {
        "closed" => Parsed::Event(Event::PullRequestClosed {
            repository,
            number,
            head,
            merged: p.pull_request.merged.unwrap_or(false),
            merge_commit: p.pull_request.merge_commit_sha,
        }),
        "synchronize" => Parsed::Event(Event::PullRequestSynchronized {
            repository,
            number,
            head,
            sender: p.sender.map(|s| s.login),
        }),
        other => Parsed::Ignored(format!("pull request action `{other}`")),
    }
}

fn comment(action: &str, repository: Repo, number: u64, head: Option<String>, item: Written) -> Parsed {
    if !matches!(action, "created" | "submitted") {
        return Parsed::Ignored(format!("comment action `{action}`"));
    }
    Parsed::Event(Event::Comment {
        repository: repository.full_name,
        number,
        by_bot: item.user.kind.as_deref() == Some("Bot") || item.user.login.ends_with("[bot]"),
        author: item.user.login,
        // A review submitted without a body has `null` there.
        text: item.body.unwrap_or_default(),
        head,
    })
}

fn names(repos: Option<Vec<Repo>>) -> Vec<String> {
    repos
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.full_name)
        .collect()
}

// GitHub's payloads, reduced to the fields the bot reads.

#[derive(Deserialize)]
struct Repo {
    full_name: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    head: Branch,
    merged: Option<bool>,
    merge_commit_sha: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    pull_request: Pull,
    repository: Repo,
    sender: Option<User>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    repository: Repo,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct InstallationPayload {
    action: String,
    installation: Installation,
    repositories: Option<Vec<Repo>>,
}

#[derive(Deserialize)]
struct InstallationRepositoriesPayload {
    installation: Installation,
    repositories_added: Option<Vec<Repo>>,
    repositories_removed: Option<Vec<Repo>>,
}

/// A comment, review or review comment: who wrote what.
#[derive(Deserialize)]
struct Written {
    user: User,
    body: Option<String>,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    /// Present when the issue is a pull request.
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    action: String,
    issue: Issue,
    comment: Written,
    repository: Repo,
}

#[derive(Deserialize)]
struct ReviewPayload {
    action: String,
    pull_request: Pull,
    review: Written,
    repository: Repo,
}

#[derive(Deserialize)]
struct ReviewCommentPayload {
    action: String,
    pull_request: Pull,
    comment: Written,
    repository: Repo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn example(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn parse_value(name: &str, payload: &Value) -> Result<Parsed, Rejected> {
        parse(name, payload.to_string().as_bytes())
    }

    #[test]
    fn github_examples_parse_into_events() {
        let Parsed::Event(Event::PullRequestClosed { number, merged, .. }) =
            parse_value("pull_request", &example("pull_request.closed.json")).unwrap()
        else {
            panic!("a closed pull request")
        };
        assert!(number > 0);
        assert!(!merged);
        let review = parse_value(
            "pull_request_review",
            &example("pull_request_review.submitted.json"),
        )
        .unwrap();
        assert!(
            matches!(&review, Parsed::Event(Event::Comment { head: Some(_), .. })),
            "{review:?}"
        );
        let push = parse_value("push", &example("push.json")).unwrap();
        assert!(matches!(push, Parsed::Event(Event::Push { .. })), "{push:?}");
        let sync = parse_value("pull_request", &example("pull_request.synchronize.json")).unwrap();
        assert!(matches!(
            sync,
            Parsed::Event(Event::PullRequestSynchronized { .. })
        ));
    }

    #[test]
    fn a_payload_without_what_its_event_needs_is_refused_naming_the_field() {
        let mut payload = example("pull_request.closed.json");
        payload["pull_request"].as_object_mut().unwrap().remove("number");
        let e = parse_value("pull_request", &payload).unwrap_err();
        assert!(e.message.contains("pull_request"), "{e}");
        assert!(e.message.contains("number"), "{e}");
        let mut payload = example("issue_comment.created.json");
        payload["comment"]["user"] = json!(null);
        let e = parse_value("issue_comment", &payload).unwrap_err();
        assert!(e.message.contains("comment.user"), "{e}");
        let e = parse("push", b"{\"ref\": 3}").unwrap_err();
        assert!(e.message.contains("ref"), "{e}");
        let e = parse("push", b"not json").unwrap_err();
        assert_eq!(e.event, "push");
    }

    #[test]
    fn duplicated_keys_are_refused() {
        let body =
            br#"{"ref": "refs/heads/main", "ref": "refs/heads/x", "repository": {"full_name": "a/b"}}"#;
        let e = parse("push", body).unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
    }

    #[test]
    fn what_the_bot_does_not_act_on_is_ignored_with_a_reason() {
        let mut opened = example("pull_request.closed.json");
        opened["action"] = json!("opened");
        assert!(matches!(
            parse_value("pull_request", &opened),
            Ok(Parsed::Ignored(_))
        ));
        let mut on_issue = example("issue_comment.created.json");
        on_issue["issue"].as_object_mut().unwrap().remove("pull_request");
        assert!(matches!(
            parse_value("issue_comment", &on_issue),
            Ok(Parsed::Ignored(_))
        ));
        let mut edited = example("issue_comment.created.json");
        edited["issue"]["pull_request"] = json!({"url": "x"});
        edited["action"] = json!("edited");
        assert!(matches!(
            parse_value("issue_comment", &edited),
            Ok(Parsed::Ignored(_))
        ));
    }

    #[test]
    fn a_review_without_a_body_is_an_empty_comment_and_bots_are_marked() {
        let mut review = example("pull_request_review.submitted.json");
        review["review"]["body"] = json!(null);
        review["review"]["user"]["login"] = json!("shadowdraft[bot]");
        let Ok(Parsed::Event(Event::Comment { text, by_bot, .. })) =
            parse_value("pull_request_review", &review)
        else {
            panic!()
        };
        assert_eq!(text, "");
        assert!(by_bot);
    }

    #[test]
    fn events_round_trip_through_the_store_format() {
        let event = Event::Comment {
            repository: "acme/p".into(),
            number: 4,
            author: "alice".into(),
            by_bot: false,
            text: "/shadowdraft help".into(),
            head: None,
        };
        let stored = serde_json::to_vec(&event).unwrap();
        assert_eq!(serde_json::from_slice::<Event>(&stored).unwrap(), event);
    }
}
