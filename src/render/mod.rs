//! Turning drafts into what people read: the evidence (from `templates/`) and
//! unified diffs of the files a draft changes.

pub mod bootstrap;

use crate::core::draft::FileChange;
use crate::core::evidence::Evidence;
use minijinja::{Environment, Value};
use similar::TextDiff;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Templates are compiled into the binary so it renders the same anywhere.
const TEMPLATES: &[(&str, &str)] = &[
    ("evidence.md.j2", include_str!("../../templates/evidence.md.j2")),
    ("proposal.md.j2", include_str!("../../templates/proposal.md.j2")),
    ("permits.md.j2", include_str!("../../templates/permits.md.j2")),
    (
        "takeover-comment.md.j2",
        include_str!("../../templates/takeover-comment.md.j2"),
    ),
    (
        "init/CODEOWNERS.j2",
        include_str!("../../templates/init/CODEOWNERS.j2"),
    ),
    (
        "init/policy-check.yml.j2",
        include_str!("../../templates/init/policy-check.yml.j2"),
    ),
    (
        "init/REVIEWING.md.j2",
        include_str!("../../templates/init/REVIEWING.md.j2"),
    ),
];

/// GitHub refuses PR bodies and comments longer than this many characters.
pub const BODY_LIMIT: usize = 65_536;
const BEGIN: &str = "<!-- shadowdraft:begin -->";
const END: &str = "<!-- shadowdraft:end -->";

/// Escape text for one Markdown table cell.
fn cell(text: String) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Inline code inside a table cell; backticks in the value cannot close it early.
fn code(text: String) -> String {
    let body = cell(text);
    if body.contains('`') {
        format!("``{} ``", body)
    } else {
        format!("`{body}`")
    }
}

/// Inline code outside a table: backticks in the value cannot close it early.
fn inline(text: String) -> String {
    let body = text.replace(['\n', '\r'], " ");
    if body.contains('`') {
        format!("`` {body} ``")
    } else {
        format!("`{body}`")
    }
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.add_filter("cell", cell);
    env.add_filter("code", code);
    env.add_filter("inline", inline);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).expect("bundled templates parse");
    }
    env
});

/// The evidence as Markdown.
pub fn evidence(evidence: &Evidence) -> String {
    ENV.get_template("evidence.md.j2")
        .and_then(|t| t.render(Value::from_serialize(evidence)))
        .expect("the evidence model fits the bundled template")
}

/// Render one of the bundled templates (`templates/<name>`).
pub fn template(name: &str, context: impl serde::Serialize) -> String {
    ENV.get_template(name)
        .and_then(|t| t.render(Value::from_serialize(context)))
        .unwrap_or_else(|e| panic!("the bundled template {name} renders: {e}"))
}

/// A unified diff of every changed file, in path order.
pub fn diff(changes: &BTreeMap<String, FileChange>) -> String {
    let mut out = String::new();
    for (path, change) in changes {
        let before = change.before.as_deref().unwrap_or("");
        let old_name = if change.before.is_some() {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        };
        let text = TextDiff::from_lines(before, change.after.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &format!("b/{path}"))
            .to_string();
        out.push_str(&text);
    }
    out
}

/// What a proposal (or a comment with new evidence) is rendered from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProposalView {
    pub agent: String,
    pub base: String,
    pub branch: String,
    pub window_days: u32,
    pub window_start: String,
    pub window_end: String,
    /// The evidence, already rendered.
    pub evidence: String,
    pub diff: String,
    pub files: usize,
    /// Identifies this draft's content; a proposal whose body carries it is up to date.
    pub digest: String,
    /// Authors of commits on the branch that are not the bot's.
    pub foreign: Vec<String>,
    /// Shown prominently at the top, e.g. that code-owner review is not enforced.
    pub warning: Option<String>,
    /// Generated rules on the base branch no call used for `drafting.unused_after` days.
    pub unused: Vec<String>,
    pub unused_after: u32,
    /// What the branch newly permits over the base, proved; `None` when not asked.
    pub permits: Option<crate::core::permits::Section>,
}

/// The bot's section of the PR body, between its markers, within GitHub's limit.
pub fn proposal(view: &ProposalView) -> String {
    within_limit("proposal.md.j2", view)
}

/// The comment posted instead of rewriting a branch someone else pushed to.
pub fn takeover_comment(view: &ProposalView) -> String {
    within_limit("takeover-comment.md.j2", view)
}

/// The marker a body or comment carries when it shows the draft with `digest`.
pub fn digest_marker(digest: &str) -> String {
    format!("shadowdraft:digest:{digest}")
}

/// The marker of a comment that showed the draft with `digest`.
pub fn comment_marker(digest: &str) -> String {
    format!("shadowdraft:comment:{digest}")
}

fn render_view(template: &str, view: &ProposalView) -> String {
    let fence = "`".repeat(longest_backtick_run(&view.diff).max(2) + 1);
    ENV.get_template(template)
        .and_then(|t| t.render(minijinja::context! { fence => fence, ..Value::from_serialize(view) }))
        .expect("the proposal model fits the bundled template")
}

/// Render; when too long, drop the diff (the PR shows it anyway), then cut the evidence.
fn within_limit(template: &str, view: &ProposalView) -> String {
    let room = BODY_LIMIT - 2_000;
    let text = render_view(template, view);
    if text.chars().count() <= room {
        return text;
    }
    let mut short = view.clone();
    short.diff = "(too long for this description: see the changed files)".into();
    let text = render_view(template, &short);
    let excess = text.chars().count().saturating_sub(room);
    if excess == 0 {
        return text;
    }
    let keep = short.evidence.chars().count().saturating_sub(excess + 200);
    short.evidence = short.evidence.chars().take(keep).collect::<String>()
        + "\n\n… evidence cut to fit GitHub's limit; `shadowdraft draft` prints all of it.";
    render_view(template, &short)
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// The evidence of one rule in a rendered body: its `#### `id`` heading up to the next heading.
pub fn rule_section(body: &str, rule: &str) -> Option<String> {
    let heading = format!("#### `{rule}`");
    let start = body.lines().position(|l| l.starts_with(&heading))?;
    let section: Vec<&str> = body
        .lines()
        .skip(start)
        .enumerate()
        .take_while(|(i, l)| {
            *i == 0
                || !(l.starts_with("#### ") || l.starts_with("### ") || l.starts_with("<!-- shadowdraft:"))
        })
        .map(|(_, l)| l)
        .collect();
    Some(section.join("\n").trim_end().to_string())
}

/// Replace the bot's section of an existing body, keeping what people wrote around it.
pub fn replace_section(body: &str, section: &str) -> String {
    match (body.find(BEGIN), body.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}{}{}",
                &body[..start],
                section.trim_end(),
                &body[end + END.len()..]
            )
        }
        _ if body.trim().is_empty() => section.to_string(),
        _ => format!("{}\n\n{}", body.trim_end(), section),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_replace_only_the_bots_section() {
        let old = format!("Reviewer notes above.\n\n{BEGIN}\nold evidence\n{END}\n\nand below.");
        let new = replace_section(&old, &format!("{BEGIN}\nnew evidence\n{END}\n"));
        assert_eq!(
            new,
            format!("Reviewer notes above.\n\n{BEGIN}\nnew evidence\n{END}\n\nand below.")
        );
        assert_eq!(replace_section("", "x"), "x");
    }

    #[test]
    fn long_bodies_fit_githubs_limit_and_fences_outlast_the_diff() {
        let view = ProposalView {
            agent: "a".into(),
            base: "main".into(),
            branch: "shadowdraft/a".into(),
            window_days: 14,
            window_start: "s".into(),
            window_end: "e".into(),
            evidence: "row\n".repeat(30_000),
            diff: "+ `````x".into(),
            files: 1,
            digest: "d".into(),
            foreign: vec![],
            warning: Some("not protected".into()),
            unused: vec!["a/t/1".into()],
            unused_after: 30,
            permits: None,
        };
        let body = proposal(&view);
        assert!(body.chars().count() <= BODY_LIMIT);
        assert!(body.contains(&digest_marker("d")));
        assert!(body.contains("evidence cut"));
        assert!(body.contains("> [!CAUTION]\n> not protected"), "{body}");
        assert!(body.contains("`a/t/1`"));
        let small = proposal(&ProposalView {
            evidence: "e".into(),
            ..view
        });
        assert!(small.contains("``````diff"), "{small}");
    }

    #[test]
    fn the_evidence_counts_calls_seen_without_arguments_per_tool() {
        use crate::core::config::DraftingConfig;
        use crate::core::draft::{draft, DraftInput};
        use crate::core::observation::{parse_batch, Origin};
        use crate::core::policies::RepoFiles;
        use crate::core::summary::Summary;
        let origin = Origin {
            source: "t".into(),
            line: None,
        };
        let batch = parse_batch(
            &origin,
            r#"{"calls": [{"agent": "a", "tool": "search", "args": {"q": "x"}}],
                "calls_without_args": [{"agent": "a", "tool": "delete_file", "count": 3},
                                       {"agent": "b", "tool": "send_email"}]}"#,
        )
        .unwrap();
        let mut summary = Summary::default();
        batch.calls.iter().for_each(|c| summary.add(c, None));
        batch
            .calls_without_args
            .iter()
            .for_each(|c| summary.add_without_args(c));
        let files = RepoFiles::default();
        let drafted = draft(&DraftInput {
            files: &files,
            summary: &summary,
            catalogue: None,
            config: &DraftingConfig::default(),
        })
        .unwrap();
        assert_eq!(drafted.evidence.totals.without_args, 4);
        // No rule is drafted from them: only `search` has one.
        assert_eq!(drafted.new_rules.len(), 1, "{:?}", drafted.new_rules);
        let text = evidence(&drafted.evidence);
        assert!(
            text.contains("- `delete_file`: 3 calls seen without arguments"),
            "{text}"
        );
        assert!(
            text.contains("- `send_email`: 1 call seen without arguments"),
            "{text}"
        );
    }

    #[test]
    fn the_permits_section_says_what_is_beyond_idle_and_undecided() {
        use crate::core::permits::{Beyond, Example, Idle, Review, Section};
        let example = Example {
            call: serde_json::json!({}),
            text: "`b` calls `read` on `fs` with no arguments".into(),
        };
        let permits = Section {
            solver: "cvc5 1.0.3".into(),
            review: Review {
                beyond: vec![Beyond {
                    scope: "b calling read on fs".into(),
                    examples: vec![example],
                }],
                always_denies: vec!["a/pay/2".into()],
                shadowed: vec![Idle {
                    id: "a/read/2".into(),
                    shadowed_by: vec!["a/read/forbid".into()],
                }],
                timed_out: vec!["rule a/pay/3".into()],
                ..Review::default()
            },
            timeout_seconds: 10,
            ..Section::default()
        };
        let text = template(
            "permits.md.j2",
            serde_json::json!({"base": "main", "permits": permits}),
        );
        assert!(
            text.contains("⚠️ **This branch permits calls beyond the drafted rules.**"),
            "{text}"
        );
        assert!(
            text.contains("- `b calling read on fs`\n  - e.g. `b` calls `read` on `fs` with no arguments"),
            "{text}"
        );
        assert!(text.contains("- ⚠️ `a/pay/2` never allows anything"), "{text}");
        assert!(
            text.contains("- ⚠️ `a/read/2` allows nothing: `a/read/forbid` forbids every call it allows."),
            "{text}"
        );
        assert!(
            text.contains("⏱ Not decided within 10 s per query") && text.contains("- rule a/pay/3"),
            "{text}"
        );
        let unavailable = Section {
            unavailable: Some("cannot start the SMT solver `cvc5`".into()),
            ..Section::default()
        };
        let text = template(
            "permits.md.j2",
            serde_json::json!({"base": "main", "permits": unavailable}),
        );
        assert!(
            text.contains("Not proved: cannot start the SMT solver `cvc5`. The draft is not blocked"),
            "{text}"
        );
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(code("a|b\nc".into()), "`a\\|b c`");
        assert_eq!(code("x`y".into()), "``x`y ``");
    }

    #[test]
    fn new_files_diff_from_dev_null() {
        let changes = BTreeMap::from([(
            "policies/agents/a.cedar".to_string(),
            FileChange {
                before: None,
                after: "permit (principal, action, resource);\n".into(),
            },
        )]);
        let d = diff(&changes);
        assert!(
            d.starts_with("--- /dev/null\n+++ b/policies/agents/a.cedar\n"),
            "{d}"
        );
        assert!(d.contains("+permit (principal, action, resource);"));
    }
}
