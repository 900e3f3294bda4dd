//! Free text: e-mail subjects and bodies, searches, ticket and review comments, titles, memos and
//! notes. Fresh in every call, but about the agent's own partners, amounts and currency.

use crate::agent::Agent;
use crate::args::TextKind;
use crate::calendar::iso_date;
use crate::rng::Rng;
use crate::tools::ENVIRONMENTS;
use crate::words::{
    capitalise, CODE_CONSTRUCTS, FIRST_NAMES, REFACTORINGS, SERVICES, TOPICS, WEB_QUERY_LEADS,
    WEB_QUERY_SUBJECTS,
};
use std::fmt::Write as _;

/// Free text of this kind, as this agent would write it around `day`.
pub(crate) fn free_text(agent: &Agent, kind: TextKind, day: i64, rng: &mut Rng) -> String {
    let topic = rng.pick(TOPICS);
    let company = rng.pick_zipf(&agent.partners).1;
    let first = capitalise(rng.pick::<&str>(FIRST_NAMES));
    let date = iso_date(day + rng.inclusive(0, 10));
    match kind {
        TextKind::Subject => {
            let lead = rng.pick(&[
                "Following up on",
                "Question about",
                "Update on",
                "Action required:",
                "Reminder:",
                "Re:",
                "Next steps for",
                "Confirming",
            ]);
            match rng.below(3) {
                0 => format!("{lead} your {topic} (ref {})", rng.inclusive(10_000, 99_999)),
                1 => format!("{lead} invoice INV-2026-{:05}", rng.below(100_000)),
                _ => format!("{lead} {topic} for {company} - {date}"),
            }
        }
        TextKind::Body => {
            let mut s = format!("Hi {first},\n\n");
            let n = rng.inclusive(1, 3) as usize;
            for sentence in rng.sample_distinct(&[0, 1, 2, 3, 4, 5], n) {
                let _ = match sentence {
                    0 => write!(s, "Thanks for reaching out about the {topic}. "),
                    1 => write!(
                        s,
                        "We processed order #{} on {date}; the total came to {}.{:02} {}. ",
                        rng.inclusive(100_000, 999_999),
                        agent.draw_amount(rng) / 100,
                        rng.below(100),
                        agent.currencies[0].to_uppercase()
                    ),
                    2 => write!(s, "Could you confirm the {topic} for {company} by {date}? "),
                    3 => write!(
                        s,
                        "We will look into the {topic} and reply within {} business days. ",
                        rng.inclusive(1, 5)
                    ),
                    4 => {
                        let open = rng.inclusive(2, 14);
                        write!(s, "Notes from our call on {date}: {open} items still open. ")
                    }
                    _ => write!(
                        s,
                        "Reference {}-{} has been updated. ",
                        rng.pick(&["case", "req", "ord"]),
                        rng.inclusive(1_000, 99_999)
                    ),
                };
            }
            let _ = write!(
                s,
                "\n\n{}",
                rng.pick(&["Best,", "Thanks!", "Regards,", "Cheers,"])
            );
            s
        }
        TextKind::SearchQuery => match rng.below(4) {
            0 => format!("{topic} {company}"),
            1 => format!("from:{} {topic}", rng.pick(FIRST_NAMES)),
            2 => format!(
                "\"{}-{}\"",
                rng.pick(&["order", "case", "INV"]),
                rng.inclusive(1_000, 99_999)
            ),
            _ => format!(
                "{topic} {} after:{date}",
                rng.pick(&["error", "failed", "pending", "urgent", "refund"])
            ),
        },
        TextKind::WebSearchQuery => {
            let lead = rng.pick(WEB_QUERY_LEADS);
            let subj = rng.pick(WEB_QUERY_SUBJECTS);
            match rng.below(4) {
                0 => format!("{lead} {subj} {}", rng.inclusive(2019, 2026)),
                1 => format!("{lead} {subj} {company}"),
                2 => format!(
                    "{subj} {topic} Q{} {}",
                    rng.inclusive(1, 4),
                    rng.inclusive(2023, 2026)
                ),
                _ => format!("{lead} {subj} top {}", rng.inclusive(3, 25)),
            }
        }
        TextKind::TicketComment => match rng.below(4) {
            0 => format!(
                "Customer confirmed the {topic} is resolved after {} retries.",
                rng.inclusive(1, 6)
            ),
            1 => format!(
                "Escalating: {topic} affects {} users at {company} since {date}.",
                rng.inclusive(2, 400)
            ),
            2 => format!(
                "Hi {first}, we have applied the fix for your {topic}; case {}.",
                rng.inclusive(10_000, 99_999)
            ),
            _ => format!("Waiting on {company} to send the {topic} details ({date})."),
        },
        TextKind::ReviewComment => {
            let thing = rng.pick(CODE_CONSTRUCTS);
            match rng.below(4) {
                0 => format!(
                    "Nit: this {thing} could be simplified with {}.",
                    rng.pick(REFACTORINGS)
                ),
                1 => {
                    let line = rng.inclusive(1, 800);
                    format!("This {thing} can panic on empty input (line {line}); return an error.")
                }
                2 => {
                    let pct = rng.inclusive(1, 60);
                    format!("LGTM once the {thing} has a test. Benchmarks show {pct}% improvement.")
                }
                _ => {
                    let (fix, issue) = (rng.pick(REFACTORINGS), rng.inclusive(100, 9_999));
                    format!("Consider moving the {thing} into {fix} - see #{issue}.")
                }
            }
        }
        TextKind::Title => match rng.below(3) {
            0 => format!("{} - {company} ({date})", capitalise(topic)),
            1 => format!("Sync: {first} / {}", capitalise(rng.pick::<&str>(FIRST_NAMES))),
            _ => format!(
                "Runbook: {} {topic} #{}",
                rng.pick(SERVICES),
                rng.inclusive(1, 999)
            ),
        },
        TextKind::Memo => match rng.below(3) {
            0 => format!("Refund for order #{}", rng.inclusive(100_000, 999_999)),
            1 => format!("Invoice INV-2026-{:05} adjustment", rng.below(100_000)),
            _ => format!("{} {topic} batch {}", capitalise(company), rng.inclusive(1, 500)),
        },
        TextKind::Notes => match rng.below(4) {
            0 => format!(
                "Deployed {} v{}.{}.{} to {}",
                rng.pick(SERVICES),
                rng.inclusive(1, 3),
                rng.inclusive(0, 30),
                rng.inclusive(0, 99),
                rng.pick(ENVIRONMENTS)
            ),
            1 => format!(
                "Daily summary {date}: {} closed, {} pending",
                rng.inclusive(3, 90),
                rng.inclusive(0, 40)
            ),
            2 => format!("Called {first} at {company}: interested in the {topic}"),
            _ => format!(
                "Heads up: {topic} for {company} needs a look (ref {})",
                rng.inclusive(1_000, 99_999)
            ),
        },
    }
}
