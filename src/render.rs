//! Turning drafts into what people read: the evidence (from `templates/`) and
//! unified diffs of the files a draft changes.

use crate::core::draft::FileChange;
use crate::core::evidence::Evidence;
use minijinja::{Environment, Value};
use similar::TextDiff;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Templates are compiled into the binary so it renders the same anywhere.
const TEMPLATES: &[(&str, &str)] = &[("evidence.md.j2", include_str!("../templates/evidence.md.j2"))];

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

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.add_filter("cell", cell);
    env.add_filter("code", code);
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

#[cfg(test)]
mod tests {
    use super::*;

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
