//! How risky a tool is, and which of its arguments say where a call sends,
//! writes or pays. Those destinations are the exfiltration channel of an
//! injected agent, so the ladder keeps them tight on side-effecting tools.

use super::catalogue::CatalogueTool;
use serde::{Deserialize, Serialize};

/// What a tool does to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    ReadOnly,
    SideEffect,
    Destructive,
}

impl Effect {
    pub fn label(self) -> &'static str {
        match self {
            Effect::ReadOnly => "read-only",
            Effect::SideEffect => "side-effecting",
            Effect::Destructive => "destructive",
        }
    }
}

/// Where a classification came from, so the reviewer knows what to correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskSource {
    Config,
    Catalogue,
    Naming,
    Default,
}

/// A tool's risk with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolRisk {
    pub effect: Effect,
    /// The tool reaches outside systems (MCP `openWorldHint`), so even reads can leak.
    pub open_world: bool,
    pub source: RiskSource,
    pub reason: String,
}

impl ToolRisk {
    pub fn side_effecting(&self) -> bool {
        self.effect != Effect::ReadOnly
    }
}

const READ_VERBS: &[&str] = &[
    "get",
    "list",
    "search",
    "read",
    "fetch",
    "find",
    "query",
    "lookup",
    "describe",
    "show",
    "view",
    "count",
    "check",
    "browse",
    "retrieve",
    "inspect",
    "summarize",
    "summarise",
    "preview",
    "peek",
    "stat",
    "status",
    "diff",
    "explain",
    "validate",
    "estimate",
    "whoami",
    "ls",
    "cat",
];
const DESTRUCTIVE_VERBS: &[&str] = &[
    "delete",
    "remove",
    "drop",
    "destroy",
    "purge",
    "wipe",
    "revoke",
    "terminate",
    "truncate",
    "erase",
    "kill",
    "rm",
    "uninstall",
    "disable",
    "ban",
    "reset",
];
const WRITE_VERBS: &[&str] = &[
    "send", "create", "update", "write", "post", "put", "patch", "transfer", "pay", "refund", "charge",
    "invite", "share", "upload", "deploy", "merge", "close", "approve", "execute", "run", "schedule",
    "cancel", "move", "rename", "publish", "comment", "reply", "forward", "submit", "set", "add", "insert",
    "grant", "archive", "book", "order", "purchase", "issue", "assign", "open", "start", "stop", "restart",
    "rollback", "release", "push", "commit", "edit", "modify", "save", "store", "notify", "email", "message",
    "invoke", "call", "trigger", "apply", "sync", "import", "export", "copy", "tag", "label", "mark",
    "upsert", "enable", "register",
];

/// Lower-case words of a snake_case, kebab-case, dotted or camelCase name.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn naming(tool: &str) -> Option<(Effect, String)> {
    // The verb usually leads (`send_email`), sometimes trails (`email.send`).
    let ws = words(tool);
    let candidates = ws.first().into_iter().chain(ws.last());
    for w in candidates {
        if DESTRUCTIVE_VERBS.contains(&w.as_str()) {
            return Some((Effect::Destructive, format!("name contains the verb `{w}`")));
        }
        if WRITE_VERBS.contains(&w.as_str()) {
            return Some((Effect::SideEffect, format!("name contains the verb `{w}`")));
        }
        if READ_VERBS.contains(&w.as_str()) {
            return Some((Effect::ReadOnly, format!("name contains the verb `{w}`")));
        }
    }
    None
}

/// Classify a tool: configuration first, then the catalogue's MCP annotations,
/// then naming conventions; unknown tools count as side-effecting (fail safe).
pub fn classify(tool: &str, catalogue: Option<&CatalogueTool>, configured: Option<Effect>) -> ToolRisk {
    let open_world_hint = catalogue
        .and_then(|t| t.annotations.as_ref())
        .and_then(|a| a.open_world);
    if let Some(effect) = configured {
        return ToolRisk {
            effect,
            open_world: open_world_hint.unwrap_or(true),
            source: RiskSource::Config,
            reason: "set in drafting.tools".into(),
        };
    }
    if let Some(a) = catalogue.and_then(|t| t.annotations.as_ref()) {
        // MCP defaults: readOnlyHint false, destructiveHint true, openWorldHint true.
        let open_world = a.open_world.unwrap_or(true);
        if a.read_only == Some(true) {
            return ToolRisk {
                effect: Effect::ReadOnly,
                open_world,
                source: RiskSource::Catalogue,
                reason: "readOnlyHint: true".into(),
            };
        }
        if a.read_only.is_some() || a.destructive.is_some() {
            let destructive = a.destructive.unwrap_or(true);
            return ToolRisk {
                effect: if destructive {
                    Effect::Destructive
                } else {
                    Effect::SideEffect
                },
                open_world,
                source: RiskSource::Catalogue,
                reason: format!("readOnlyHint: false, destructiveHint: {destructive}"),
            };
        }
    }
    if let Some((effect, reason)) = naming(tool) {
        return ToolRisk {
            effect,
            open_world: open_world_hint.unwrap_or(true),
            source: RiskSource::Naming,
            reason,
        };
    }
    ToolRisk {
        effect: Effect::SideEffect,
        open_world: open_world_hint.unwrap_or(true),
        source: RiskSource::Default,
        reason: "no annotation and no known verb: assumed side-effecting".into(),
    }
}

const DESTINATION_WORDS: &[&str] = &[
    "to",
    "cc",
    "bcc",
    "recipient",
    "recipients",
    "email",
    "emails",
    "address",
    "addresses",
    "url",
    "uri",
    "urls",
    "endpoint",
    "webhook",
    "host",
    "hostname",
    "domain",
    "account",
    "accounts",
    "iban",
    "destination",
    "dest",
    "target",
    "path",
    "paths",
    "file",
    "filename",
    "filepath",
    "dir",
    "directory",
    "folder",
    "channel",
    "channels",
    "invitee",
    "invitees",
    "attendee",
    "attendees",
    "phone",
    "repo",
    "repository",
    "bucket",
    "payee",
    "beneficiary",
    "wallet",
    "recipient_id",
    "user",
    "users",
    "member",
    "members",
    "assignee",
    "reviewer",
    "reviewers",
    "link",
    "callback",
    "queue",
    "topic",
];

/// Words of argument names that say what a lookup is for: a query, or the
/// names of things (people, places, products) to find.
const LOOKUP_WORDS: &[&str] = &[
    "query",
    "q",
    "search",
    "keyword",
    "keywords",
    "term",
    "terms",
    "name",
    "names",
    "title",
    "titles",
    "city",
    "cities",
    "country",
    "countries",
    "place",
    "places",
    "location",
    "locations",
    "product",
    "products",
    "hotel",
    "hotels",
    "restaurant",
    "restaurants",
    "company",
    "companies",
    "cuisine",
];

/// Whether an argument name says it is what a lookup looks for.
pub fn is_lookup_name(name: &str) -> bool {
    words(name).iter().any(|w| LOOKUP_WORDS.contains(&w.as_str()))
}

/// Words of argument names that locate something on another system.
const REMOTE_WORDS: &[&str] = &[
    "url", "uri", "urls", "endpoint", "webhook", "host", "hostname", "domain", "link", "callback",
];

/// Whether an argument name says it locates something on another system: on
/// a tool that reaches the outside world, where it reads from or sends to.
pub fn is_remote_locator_name(name: &str) -> bool {
    words(name).iter().any(|w| REMOTE_WORDS.contains(&w.as_str()))
}

/// Whether an argument name says where the call sends, writes or pays.
pub fn is_destination_name(name: &str) -> bool {
    words(name)
        .iter()
        .any(|w| DESTINATION_WORDS.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalogue::Annotations;

    #[test]
    fn naming_conventions() {
        assert_eq!(classify("get_customer", None, None).effect, Effect::ReadOnly);
        assert_eq!(classify("sendEmail", None, None).effect, Effect::SideEffect);
        assert_eq!(classify("files.delete", None, None).effect, Effect::Destructive);
        let unknown = classify("frobnicate", None, None);
        assert_eq!(unknown.effect, Effect::SideEffect);
        assert_eq!(unknown.source, RiskSource::Default);
    }

    #[test]
    fn catalogue_annotations_beat_naming_and_config_beats_both() {
        let tool = CatalogueTool {
            annotations: Some(Annotations {
                read_only: Some(true),
                destructive: None,
                open_world: Some(false),
            }),
            ..Default::default()
        };
        let r = classify("send_report", Some(&tool), None);
        assert_eq!(
            (r.effect, r.source, r.open_world),
            (Effect::ReadOnly, RiskSource::Catalogue, false)
        );
        let r = classify("send_report", Some(&tool), Some(Effect::Destructive));
        assert_eq!((r.effect, r.source), (Effect::Destructive, RiskSource::Config));
    }

    #[test]
    fn destination_names() {
        for n in [
            "to",
            "recipientEmail",
            "webhook_url",
            "to_account",
            "file-path",
            "bcc",
        ] {
            assert!(is_destination_name(n), "{n}");
        }
        for n in ["subject", "body", "amount", "query", "limit", "currency"] {
            assert!(!is_destination_name(n), "{n}");
        }
    }
}
