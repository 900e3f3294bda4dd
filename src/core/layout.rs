//! Laying out drafted rules exactly as cedar-policy-formatter does.
//!
//! Running the formatter costs three Cedar parses per rule, most of the time
//! of drafting a fleet. Drafted conditions come in a handful of forms, and for
//! those the formatter's layout is simple: a group stays on one line when it
//! fits in 100 columns, else it breaks in a fixed way. This module reproduces
//! that; where it cannot be sure (an atom too long for any line) it says so
//! and the caller runs the real formatter. Tests check the layouts against
//! the formatter, here and on whole drafted fleets (`tests/formatting.rs`).

/// Line width the formatter is run with.
pub const LINE_WIDTH: usize = 100;

/// One `&&` operand of a drafted condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doc {
    /// Never broken: `context.input has to`, `context.input.n >= 0`.
    Atom(String),
    /// `(a || b)`, or `!(a || b)` when `not`.
    Or { not: bool, items: Vec<String> },
    /// `[a, b].method(arg)`.
    List {
        items: Vec<String>,
        method: &'static str,
        arg: String,
    },
    /// `(if guard then c1 && c2 else true)`.
    If { guard: String, then: Vec<Doc> },
    /// `subject like "pattern"`.
    Like { subject: String, pattern: String },
}

impl Doc {
    /// The one-line form.
    pub fn flat(&self) -> String {
        match self {
            Doc::Atom(text) => text.clone(),
            Doc::Or { not, items } => format!("{}({})", if *not { "!" } else { "" }, items.join(" || ")),
            Doc::List { items, method, arg } => format!("[{}].{method}({arg})", items.join(", ")),
            Doc::If { guard, then } => format!("(if {guard} then {} else true)", join_flat(then)),
            Doc::Like { subject, pattern } => format!("{subject} like {pattern}"),
        }
    }
}

fn join_flat(docs: &[Doc]) -> String {
    docs.iter().map(Doc::flat).collect::<Vec<_>>().join(" && ")
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Lays out text, remembering whether any decision was too close to call.
struct Printer {
    out: String,
    sure: bool,
}

impl Printer {
    /// Does `len` columns starting at `column` fit? The formatter counts the
    /// whole line, trailing ` &&`, `)` or `;` included, against the width.
    fn fits(&self, column: usize, len: usize) -> bool {
        column + len <= LINE_WIDTH
    }

    fn line(&mut self, indent: usize, text: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out.extend(std::iter::repeat_n(' ', indent));
        self.out.push_str(text);
        if indent + width(text) > LINE_WIDTH {
            self.sure = false;
        }
    }

    /// Print `doc` starting a new line at `indent`, followed by `trailing` on its last line.
    fn doc(&mut self, doc: &Doc, indent: usize, trailing: &str) {
        let flat = doc.flat();
        if self.fits(indent, width(&flat) + width(trailing)) {
            self.line(indent, &format!("{flat}{trailing}"));
            return;
        }
        match doc {
            Doc::Atom(_) => {
                self.sure = false;
                self.line(indent, &format!("{flat}{trailing}"));
            }
            Doc::Like { subject, pattern } => {
                self.line(indent, subject);
                self.line(indent, "like");
                self.line(indent, &format!("{pattern}{trailing}"));
            }
            Doc::Or { not, items } => {
                let open = if *not { "!(" } else { "(" };
                for (i, item) in items.iter().enumerate() {
                    let (lead, pad) = if i == 0 { (open, indent) } else { ("", indent + 1) };
                    let tail = if i + 1 == items.len() {
                        format!("){trailing}")
                    } else {
                        " ||".to_string()
                    };
                    self.line(pad, &format!("{lead}{item}{tail}"));
                }
            }
            Doc::List { items, method, arg } => {
                for (i, item) in items.iter().enumerate() {
                    let (lead, pad) = if i == 0 { ("[", indent) } else { ("", indent + 1) };
                    let tail = if i + 1 == items.len() {
                        format!("].{method}(")
                    } else {
                        ",".to_string()
                    };
                    self.line(pad, &format!("{lead}{item}{tail}"));
                }
                self.line(indent + 4, arg);
                self.line(indent + 2, &format!("){trailing}"));
            }
            Doc::If { guard, then } => {
                self.line(indent, "(if");
                self.line(indent + 3, guard);
                self.line(indent + 1, "then");
                // A broken `if` always puts each `&&` operand of `then` on its own line.
                for (i, part) in then.iter().enumerate() {
                    let tail = if i + 1 == then.len() { "" } else { " &&" };
                    self.doc(part, indent + 3, tail);
                }
                self.line(indent + 1, "else");
                self.line(indent + 3, &format!("true){trailing}"));
            }
        }
    }
}

/// A rule's head and conditions laid out; `true` when certainly the formatter's layout.
pub fn rule(head: &str, conditions: &[Doc]) -> (String, bool) {
    if conditions.is_empty() {
        return (format!("{head};"), true);
    }
    let mut p = Printer {
        out: String::new(),
        sure: true,
    };
    // `when { … };` on one line; else the braced body alone on the next line;
    // else the conjunction alone on a line inside the braces; else one operand per line.
    let body = format!("{{ {} }};", join_flat(conditions));
    if p.fits(0, width(&body) + "when ".len()) {
        return (format!("{head}\nwhen {body}"), true);
    }
    if p.fits(0, width(&body)) {
        return (format!("{head}\nwhen\n{body}"), true);
    }
    let conjunction = join_flat(conditions);
    if p.fits(2, width(&conjunction)) {
        return (format!("{head}\nwhen\n{{\n  {conjunction}\n}};"), true);
    }
    for (i, condition) in conditions.iter().enumerate() {
        let tail = if i + 1 == conditions.len() { "" } else { " &&" };
        p.doc(condition, 2, tail);
    }
    (format!("{head}\nwhen\n{{\n{}\n}};", p.out), p.sure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(text: &str) -> String {
        let config = cedar_policy_formatter::Config {
            line_width: LINE_WIDTH,
            indent_width: 2,
        };
        cedar_policy_formatter::policies_str_to_pretty(text, &config).unwrap()
    }

    const HEAD: &str = "permit (\n  principal == Agent::\"billing-bot-001\",\n  action == Action::\"send_email\",\n  resource == McpServer::\"gmail\"\n)";

    fn input(name: &str) -> String {
        format!("context.input.{name}")
    }

    #[test]
    fn layouts_are_fixed_points_of_the_formatter() {
        let emails: Vec<String> = (0..6)
            .map(|i| format!("\"someone.number{i}@example-corp.com\""))
            .collect();
        let cases = vec![
            vec![Doc::Atom("context.input has to".into())],
            // The conjunction fits on a line inside the braces.
            vec![
                Doc::Atom("context.input has channel".into()),
                Doc::Atom(format!("{} == \"#pipeline-review-and-more\"", input("channel"))),
                Doc::Atom("context.input has text".into()),
            ],
            // Too long after `when `, short enough on a line of its own.
            vec![
                Doc::Atom("context.input has schema".into()),
                Doc::List {
                    items: vec!["\"analytics\"".into(), "\"marts\"".into(), "\"staging\"".into()],
                    method: "contains",
                    arg: input("schema_name_x"),
                },
            ],
            vec![
                Doc::Atom("context.input has to".into()),
                Doc::Or {
                    not: false,
                    items: ["a.com", "b-longer-domain.com", "c.example.org"]
                        .iter()
                        .map(|d| format!("{} like \"*@{d}\"", input("to")))
                        .collect(),
                },
                Doc::Or {
                    not: true,
                    items: ["*@*@*", "*,*", "*;*"]
                        .iter()
                        .map(|g| format!("{} like \"{g}\"", input("to")))
                        .collect(),
                },
                Doc::List {
                    items: emails.clone(),
                    method: "containsAll",
                    arg: input("cc"),
                },
                Doc::If {
                    guard: "context.input has bcc".into(),
                    then: vec![Doc::List {
                        items: emails.clone(),
                        method: "containsAll",
                        arg: input("bcc"),
                    }],
                },
                Doc::If {
                    guard: "context.input has amount_in_cents".into(),
                    then: vec![
                        Doc::Atom(format!("{} >= 0", input("amount_in_cents"))),
                        Doc::Atom(format!("{} <= 5000000", input("amount_in_cents"))),
                    ],
                },
                Doc::If {
                    guard: "context.input has n".into(),
                    then: vec![Doc::List {
                        items: vec!["1".into(), "2".into()],
                        method: "contains",
                        arg: input("n"),
                    }],
                },
            ],
        ];
        for conditions in cases {
            let (text, sure) = rule(HEAD, &conditions);
            let text = format!("@id(\"a/b/1\")\n{text}\n");
            assert!(sure, "expected a certain layout for:\n{text}");
            assert_eq!(format(&text), text, "layout differs from the formatter's");
        }
    }
}
