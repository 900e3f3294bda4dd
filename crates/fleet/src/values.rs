//! Argument values of legitimate calls: each argument is filled from the habit its kind ties it
//! to (Zipf enums, stable-prefix ids, log-normal-ish amounts, fresh free text, optional
//! arguments at fixed rates).

use crate::agent::Agent;
use crate::args::{ArgKind, MailDomain, Shape, TextKind};
use crate::attacks::exfil_url;
use crate::calendar::{iso_date, year_month, DAY_ZERO_UNIX_SECONDS};
use crate::fleet::Fleet;
use crate::rng::{Rng, ALPHANUMERIC, HEX_DIGITS, LOWER_ALPHANUMERIC};
use crate::secrets::api_key;
use crate::text::free_text;
use crate::tools::TOOLS;
use crate::words::{
    capitalise, FILE_EXTENSIONS, FILE_WORDS, FIRST_NAMES, LAST_NAMES, ROLE_MAILBOXES, TOPICS,
};
use serde_json::{Map, Value};
use std::fmt::Write as _;

impl Fleet {
    /// Arguments of a legitimate call of a tool. `forced` is sent whatever its rate or shape:
    /// a novelty or an attack is about to overwrite it.
    pub(crate) fn legit_args(
        &self,
        agent: &Agent,
        tool_ix: usize,
        day: i64,
        forced: Option<usize>,
        rng: &mut Rng,
    ) -> Map<String, Value> {
        let tool = &TOOLS[tool_ix];
        let mut shape = if tool.shape_b_pct > 0 && rng.chance_pct(tool.shape_b_pct) {
            Shape::B
        } else {
            Shape::A
        };
        if let Some(forced_shape) = forced.and_then(|arg_ix| tool.args[arg_ix].only_in) {
            shape = forced_shape;
        }
        let mut args = Map::with_capacity(tool.args.len());
        for (arg_ix, arg) in tool.args.iter().enumerate() {
            if forced != Some(arg_ix) {
                if !arg.is_sent() || arg.only_in.is_some_and(|only| only != shape) {
                    continue;
                }
                if arg.sent_pct < 100 && !rng.chance_pct(arg.sent_pct) {
                    continue;
                }
            }
            let value = match (arg.kind, args.get("service").and_then(Value::as_str)) {
                // An image for the very service being deployed, not a random one.
                (ArgKind::ContainerImage, Some(service)) => Value::from(self.container_image(service, rng)),
                _ => self.arg_value(agent, tool_ix, arg_ix, day, rng),
            };
            args.insert(arg.name.into(), value);
        }
        args
    }

    fn container_image(&self, service: &str, rng: &mut Rng) -> String {
        let (major, minor, patch) = (rng.inclusive(1, 3), rng.inclusive(0, 30), rng.inclusive(0, 99));
        format!("ghcr.io/{}/{service}:v{major}.{minor}.{patch}", self.org)
    }

    fn email(&self, agent: &Agent, whose: MailDomain, rng: &mut Rng) -> String {
        let domain = match whose {
            MailDomain::Internal => self.domain,
            MailDomain::External => rng.pick_zipf(&agent.partners).0,
        };
        let (first, last) = (rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
        match rng.below(10) {
            0..=3 => format!("{first}.{last}@{domain}"),
            4..=5 => format!("{}{last}@{domain}", &first[..1]),
            6..=7 => format!("{first}.{last}{}@{domain}", rng.inclusive(1, 99)),
            8 if whose == MailDomain::External => format!("{}@{domain}", rng.pick(ROLE_MAILBOXES)),
            _ => format!("{first}@{domain}"),
        }
    }

    /// A value for argument `arg_ix` of tool `tool_ix`, as this agent would send it on `day`.
    pub(crate) fn arg_value(
        &self,
        agent: &Agent,
        tool_ix: usize,
        arg_ix: usize,
        day: i64,
        rng: &mut Rng,
    ) -> Value {
        let kind = TOOLS[tool_ix].args[arg_ix].kind;
        let s: String = match kind {
            ArgKind::Enum(values) => {
                let in_use = agent.enum_values_in_use(tool_ix, arg_ix, values.len());
                return Value::from(values[rng.zipf_rank(in_use)]);
            }
            ArgKind::IntOneOf(values) => return Value::from(*rng.pick_zipf(values)),
            ArgKind::IntRange(lo, hi) => return Value::from(rng.inclusive(lo, hi)),
            ArgKind::Bool { true_pct } => return Value::from(rng.chance_pct(true_pct)),
            ArgKind::AmountCents | ArgKind::AmountDecimal => {
                return amount_json(kind, agent.draw_amount(rng))
            }
            ArgKind::PrNumber => return Value::from(agent.first_pr_number + day * 3 + rng.inclusive(0, 60)),
            ArgKind::Currency => {
                let currency = if agent.currencies.len() > 1 && rng.chance_pct(15) {
                    agent.currencies[1]
                } else {
                    agent.currencies[0]
                };
                return Value::from(currency);
            }
            ArgKind::SubsetOf(values) => {
                let n = 1 + rng.zipf_rank(3);
                return distinct_values(rng, values, n);
            }
            ArgKind::SsoGroups => {
                let n = 1 + rng.zipf_rank(3);
                return distinct_values(rng, &agent.sso_groups, n);
            }
            ArgKind::Recipients(whose) => {
                let n = 1 + rng.zipf_rank(4);
                let addresses = (0..n)
                    .map(|i| {
                        let internal = whose == MailDomain::Internal || i == 0 || rng.chance_pct(40);
                        let whose = if internal {
                            MailDomain::Internal
                        } else {
                            MailDomain::External
                        };
                        Value::from(self.email(agent, whose, rng))
                    })
                    .collect();
                return Value::Array(addresses);
            }
            ArgKind::Metadata => {
                let mut m = Map::new();
                let source = rng.pick_zipf(&["agent", "api", "import", "webhook", "manual"]);
                m.insert("source".into(), Value::from(*source));
                m.insert("priority".into(), Value::from(1 + rng.zipf_rank(3) as i64));
                return Value::Object(m);
            }
            ArgKind::WebhookPayload => {
                let mut m = Map::new();
                let event = rng.pick_zipf(&[
                    "deploy.finished",
                    "report.ready",
                    "deploy.started",
                    "incident.opened",
                ]);
                m.insert("event".into(), Value::from(*event));
                m.insert(
                    "summary".into(),
                    Value::from(free_text(agent, TextKind::Notes, day, rng)),
                );
                m.insert("severity".into(), Value::from(1 + rng.zipf_rank(4) as i64));
                return Value::Object(m);
            }
            ArgKind::InjectedBcc => return Value::Array(vec![Value::from(self.hostile_email(rng))]),
            ArgKind::InjectedAttachments => {
                let path = *rng.pick(&[
                    "/etc/passwd",
                    "/home/ubuntu/.aws/credentials",
                    "/root/.ssh/id_rsa",
                    "/var/run/secrets/kubernetes.io/serviceaccount/token",
                ]);
                return Value::Array(vec![Value::from(path)]);
            }
            ArgKind::InjectedFlag => return Value::Bool(true),
            ArgKind::CustomerId => customer_id(&agent.customer_prefix, rng),
            ArgKind::AccountId => rng.pick_zipf(&agent.accounts).clone(),
            ArgKind::PaymentIntentId => {
                let mut s = String::from("pi_3");
                rng.push_chars(&mut s, 23, ALPHANUMERIC);
                s
            }
            ArgKind::TicketId => format!("TKT-{}", 40_000 + day * 150 + rng.inclusive(0, 2_000)),
            ArgKind::DealId => format!("deal_{:08}", rng.below(100_000_000)),
            ArgKind::ContactId => {
                let mut s = String::from("ct_");
                rng.push_chars(&mut s, 10, LOWER_ALPHANUMERIC);
                s
            }
            ArgKind::EmployeeId => format!("EMP-{:05}", rng.inclusive(1_000, 30_000)),
            ArgKind::ExpenseId => format!("EXP-2026-{:05}", rng.below(100_000)),
            ArgKind::PageId => format!("{}{:07}", agent.page_id_prefix, rng.below(10_000_000)),
            ArgKind::EventId => {
                let mut s = String::new();
                rng.push_chars(&mut s, 26, LOWER_ALPHANUMERIC);
                s
            }
            ArgKind::MessageId => {
                let mut s = String::from("18");
                rng.push_chars(&mut s, 14, HEX_DIGITS);
                s
            }
            ArgKind::IdempotencyKey => uuid(rng),
            ArgKind::Email(whose) => self.email(agent, whose, rng),
            ArgKind::Recipient => {
                let whose = if rng.chance_pct(20) {
                    MailDomain::Internal
                } else {
                    MailDomain::External
                };
                self.email(agent, whose, rng)
            }
            ArgKind::Url => {
                let (host, prefix) = rng.pick_zipf(&agent.api_hosts);
                api_url(host, prefix, rng)
            }
            ArgKind::ReadPath => {
                let dir = if rng.chance_pct(20) {
                    agent.write_dir
                } else {
                    *rng.pick_zipf(&agent.read_dirs)
                };
                file_path(dir, day, rng)
            }
            ArgKind::WritePath => file_path(agent.write_dir, day, rng),
            ArgKind::ReadDir => {
                let dir = *rng.pick_zipf(&agent.read_dirs);
                if rng.chance_pct(30) {
                    let (y, m) = year_month(day);
                    format!("{dir}/{y}-{m:02}")
                } else {
                    dir.to_string()
                }
            }
            ArgKind::PathInRepo => format!(
                "{}/{}/{}.{}",
                rng.pick_zipf(&["src", "lib", "pkg", "app"]),
                rng.pick(&["api", "billing", "auth", "db", "handlers", "utils", "models", "jobs"]),
                rng.pick(&[
                    "client", "server", "invoice", "retry", "config", "schema", "routes", "cache", "worker"
                ]),
                rng.pick_zipf(&["rs", "py", "ts", "go"])
            ),
            ArgKind::Date => iso_date(day + rng.inclusive(-3, 7)),
            ArgKind::DateTime => format!(
                "{}T{:02}:{:02}:00Z",
                iso_date(day + rng.inclusive(0, 7)),
                rng.inclusive(8, 17),
                rng.pick(&[0, 15, 30, 45])
            ),
            ArgKind::Text(text_kind) => free_text(agent, text_kind, day, rng),
            ArgKind::SlackChannel => rng.pick_zipf(&agent.channels).to_string(),
            ArgKind::SlackThreadTs => format!(
                "{}.{:06}",
                DAY_ZERO_UNIX_SECONDS + day * 86_400 + rng.inclusive(28_800, 64_800),
                rng.below(1_000_000)
            ),
            ArgKind::Repo => rng.pick_zipf(&agent.repos).clone(),
            ArgKind::Branch => {
                if rng.chance_pct(45) {
                    "main".into()
                } else {
                    format!(
                        "{}/{}-{}",
                        rng.pick_zipf(&["feature", "fix", "chore"]),
                        rng.pick(FILE_WORDS),
                        rng.inclusive(100, 9999)
                    )
                }
            }
            ArgKind::Service => rng.pick_zipf(&agent.services).to_string(),
            ArgKind::ContainerImage => {
                let service = *rng.pick_zipf(&agent.services);
                self.container_image(service, rng)
            }
            ArgKind::WikiSpace => rng.pick_zipf(&agent.wiki_spaces).to_string(),
            ArgKind::CalendarId => rng.pick_zipf(&agent.calendars).clone(),
            ArgKind::FirstName => capitalise(rng.pick::<&str>(FIRST_NAMES)),
            ArgKind::LastName => capitalise(rng.pick::<&str>(LAST_NAMES)),
            ArgKind::Company => rng.pick_zipf(&agent.partners).1.to_string(),
            ArgKind::SqlQuery => {
                let table = rng.pick_zipf(&agent.tables);
                let dimension = rng.pick(&["region", "plan", "channel", "country", "cohort_week"]);
                let aggregate = rng.pick(&[
                    "COUNT(*)",
                    "SUM(revenue)",
                    "AVG(duration_s)",
                    "COUNT(DISTINCT user_id)",
                ]);
                let since = iso_date(day - rng.inclusive(1, 30));
                let limit = rng.pick(&[10, 50, 100, 1000]);
                format!(
                    "SELECT {dimension}, {aggregate} FROM {table} WHERE event_date >= '{since}' \
                     GROUP BY 1 ORDER BY 2 DESC LIMIT {limit}"
                )
            }
            ArgKind::InjectedReplyTo => self.hostile_email(rng),
            ArgKind::InjectedCallbackUrl => exfil_url(agent, rng),
            ArgKind::ApiKey => api_key(rng),
        };
        Value::from(s)
    }
}

/// Under an agent's customer-id prefix.
pub(crate) fn customer_id(prefix: &str, rng: &mut Rng) -> String {
    format!("{prefix}{:06}", rng.below(1_000_000))
}

/// An amount in cents as the argument kind sends it: integer cents or a decimal in major units.
pub(crate) fn amount_json(kind: ArgKind, cents: i64) -> Value {
    let mut c = cents.max(1);
    if kind == ArgKind::AmountCents {
        // Integer cents, often round figures.
        if c % 7 < 3 {
            c = (c / 100).max(1) * 100;
        }
        return Value::from(c);
    }
    // Prices end in .99/.50 often; never a whole number, so the value is a genuine non-integer.
    match c % 10 {
        0..=3 => c = c / 100 * 100 + 99,
        4 => c = c / 100 * 100 + 50,
        _ => {}
    }
    if c % 100 == 0 {
        c += 25;
    }
    // Division is correctly rounded, and serde_json prints the shortest round-trip form: "149.99".
    Value::from(c as f64 / 100.0)
}

/// Up to `n` distinct values by Zipf rank; fewer if the draws keep repeating.
fn distinct_values(rng: &mut Rng, values: &[&str], n: usize) -> Value {
    let mut out: Vec<Value> = Vec::with_capacity(n);
    for _ in 0..n * 3 {
        if out.len() == n {
            break;
        }
        let v = *rng.pick_zipf(values);
        if !out.iter().any(|x| x == v) {
            out.push(Value::from(v));
        }
    }
    Value::Array(out)
}

/// A version-4 UUID.
fn uuid(rng: &mut Rng) -> String {
    let (x, y) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff,
        0x8000 | ((y >> 48) & 0x3fff),
        y & 0xffff_ffff_ffff
    )
}

/// A URL under `host` and `prefix`: an id or slug after a prefix ending in `/`, otherwise an
/// `id` query.
pub(crate) fn api_url(host: &str, prefix: &str, rng: &mut Rng) -> String {
    let mut u = format!("https://{host}{prefix}");
    if !prefix.ends_with('/') {
        let _ = write!(u, "?id={}", rng.inclusive(1_000_000, 45_000_000));
        return u;
    }
    match rng.below(3) {
        0 => {
            let _ = write!(u, "{}", rng.inclusive(10_000, 9_999_999));
        }
        1 => {
            let _ = write!(
                u,
                "{}-{}",
                rng.pick(FILE_WORDS),
                rng.pick(TOPICS).replace(' ', "-")
            );
        }
        _ => rng.push_chars(&mut u, 12, LOWER_ALPHANUMERIC),
    }
    if rng.chance_pct(35) {
        let _ = match rng.below(3) {
            0 => write!(u, "?page={}", rng.inclusive(1, 20)),
            1 => write!(u, "?format=json&limit={}", rng.pick(&[10, 50, 100])),
            _ => write!(u, "?q={}", rng.pick(FILE_WORDS)),
        };
    }
    u
}

fn file_path(dir: &str, day: i64, rng: &mut Rng) -> String {
    let word = rng.pick(FILE_WORDS);
    let ext = rng.pick_zipf(FILE_EXTENSIONS);
    let (y, m) = year_month(day);
    match rng.below(4) {
        0 => format!("{dir}/{word}_{}.{ext}", iso_date(day)),
        1 => format!("{dir}/{y}-{m:02}/{word}-{}.{ext}", rng.inclusive(1, 9_999)),
        _ => format!("{dir}/{word}-{}.{ext}", rng.inclusive(1, 99_999)),
    }
}
