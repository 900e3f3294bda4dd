//! `/shadowdraft` commands in pull request comments and reviews. A command is
//! a line of its own; text in code blocks and quotes is never a command.

/// What a reviewer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Draft again, forgetting what reviewers turned down.
    Redraft,
    /// Never propose this rule (an id like `agent/tool/2`) or tool again.
    Ignore(String),
    /// Show the evidence behind one rule.
    Explain(String),
    Help,
    /// Not a command shadowdraft knows: the whole line, for the reply.
    Unknown(String),
}

pub const PREFIX: &str = "/shadowdraft";

/// The commands, one of each, in the order `help` lists them.
const EVERY: [Command; 5] = [
    Command::Redraft,
    Command::Ignore(String::new()),
    Command::Explain(String::new()),
    Command::Help,
    Command::Unknown(String::new()),
];

impl Command {
    /// How the command is written and what it does. The match is exhaustive:
    /// a new command does not compile until it is documented here.
    fn usage(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Command::Redraft => &[(
                "/shadowdraft redraft",
                "draft again from the current evidence, proposing rules turned down before",
            )],
            Command::Ignore(_) => &[
                (
                    "/shadowdraft ignore <rule-id>",
                    "never propose this rule again (e.g. `support-bot/send_email/2`)",
                ),
                (
                    "/shadowdraft ignore <tool>",
                    "never propose rules for this tool of this agent again",
                ),
            ],
            Command::Explain(_) => &[(
                "/shadowdraft explain <rule-id>",
                "show the evidence behind one rule",
            )],
            Command::Help => &[("/shadowdraft help", "this list")],
            Command::Unknown(_) => &[],
        }
    }
}

/// The reply to `help` and to anything not understood.
pub fn help() -> String {
    let mut out = String::from("| command | what it does |\n|---|---|\n");
    for (written, what) in EVERY.iter().flat_map(Command::usage) {
        out.push_str(&format!("| `{written}` | {what} |\n"));
    }
    out.push_str("\nCommands are accepted from people with write access to the repository, one per line.");
    out
}

/// The commands in a comment, in order.
pub fn parse(body: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for line in body.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let text = line.trim();
        if let Some(open) = &fence {
            if text.starts_with(open.as_str()) {
                fence = None;
            }
            continue;
        }
        if text.starts_with("```") || text.starts_with("~~~") {
            let marker: String = text
                .chars()
                .take_while(|c| *c == text.as_bytes()[0] as char)
                .collect();
            fence = Some(marker);
            continue;
        }
        // Indented code blocks and quotes are someone else's words.
        if indent >= 4 || line.starts_with('\t') || text.starts_with('>') {
            continue;
        }
        let Some(rest) = text.strip_prefix(PREFIX) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        out.push(match words.as_slice() {
            ["redraft"] => Command::Redraft,
            ["ignore", target] => Command::Ignore((*target).to_string()),
            ["explain", rule] => Command::Explain((*rule).to_string()),
            ["help"] | [] => Command::Help,
            _ => Command::Unknown(text.to_string()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_and_each_line_of_it_parses_back() {
        let help = help();
        for (written, _) in EVERY.iter().flat_map(Command::usage) {
            assert!(help.contains(written), "{written}");
            let example = written
                .replace("<rule-id>", "a/t/1")
                .replace("<tool>", "send_email");
            assert!(!matches!(parse(&example)[..], [Command::Unknown(_)]), "{example}");
        }
    }

    #[test]
    fn commands_are_lines_of_their_own() {
        let body = "Thanks!\n/shadowdraft redraft\n  /shadowdraft ignore support-bot/send_email/2\n/shadowdraft explain a/b/1\n";
        assert_eq!(
            parse(body),
            vec![
                Command::Redraft,
                Command::Ignore("support-bot/send_email/2".into()),
                Command::Explain("a/b/1".into())
            ]
        );
        assert_eq!(parse("/shadowdraft"), vec![Command::Help]);
        assert_eq!(parse("/shadowdraft help"), vec![Command::Help]);
        assert_eq!(
            parse("/shadowdraft frobnicate now"),
            vec![Command::Unknown("/shadowdraft frobnicate now".into())]
        );
        assert_eq!(parse("/shadowdraftredraft"), vec![]);
        assert_eq!(parse("please run /shadowdraft redraft"), vec![]);
    }

    #[test]
    fn code_blocks_and_quotes_are_not_commands() {
        let body = "```\n/shadowdraft redraft\n```\n~~~~\n/shadowdraft help\n~~~~\n> /shadowdraft redraft\n    /shadowdraft redraft\n\t/shadowdraft redraft\n";
        assert_eq!(parse(body), vec![]);
        assert_eq!(parse("```\nunclosed\n/shadowdraft redraft"), vec![]);
    }
}
