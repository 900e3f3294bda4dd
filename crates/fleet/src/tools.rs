//! The tool catalogue: every tool the fleet's MCP servers offer, with its effect, its MCP
//! annotations and its arguments. Archetypes (`archetypes.rs`) say which agents call which.

use crate::args::{arg, shape_a_arg, shape_b_arg, ArgKind, ArgSpec, MailDomain, TextKind};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Effect {
    Read,
    Write,
}

/// The MCP tool annotations a tool ships with, besides `readOnlyHint` (which follows the effect).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Hints {
    pub(crate) destructive: bool,
    pub(crate) open_world: bool,
}

impl Hints {
    const CONTAINED: Hints = Hints {
        destructive: false,
        open_world: false,
    };
    const OPEN_WORLD: Hints = Hints {
        destructive: false,
        open_world: true,
    };
    const DESTRUCTIVE: Hints = Hints {
        destructive: true,
        open_world: false,
    };
}

pub(crate) struct ToolSpec {
    pub(crate) name: &'static str,
    pub(crate) server: &'static str,
    pub(crate) description: &'static str,
    pub(crate) effect: Effect,
    /// `None`: shipped without annotations, as about half of real tools are.
    pub(crate) hints: Option<Hints>,
    /// Percentage of calls using argument shape B (see [`crate::args::Shape`]).
    pub(crate) shape_b_pct: u8,
    pub(crate) args: &'static [ArgSpec],
}

const fn tool(
    name: &'static str,
    server: &'static str,
    effect: Effect,
    hints: Option<Hints>,
    description: &'static str,
    args: &'static [ArgSpec],
) -> ToolSpec {
    ToolSpec {
        name,
        server,
        description,
        effect,
        hints,
        shape_b_pct: 0,
        args,
    }
}

impl ToolSpec {
    const fn with_shape_b_pct(self, shape_b_pct: u8) -> ToolSpec {
        ToolSpec { shape_b_pct, ..self }
    }
}

/// Index of a tool in [`TOOLS`]; tools are referred to by index everywhere else.
pub(crate) fn tool_index(name: &str) -> usize {
    TOOLS
        .iter()
        .position(|t| t.name == name)
        .unwrap_or_else(|| panic!("archetype references unknown tool {name}"))
}

pub(crate) const ENVIRONMENTS: &[&str] = &["staging", "production", "dev", "canary"];
const PRIORITIES: &[&str] = &["normal", "high", "low", "urgent"];
const LIFECYCLE_STAGES: &[&str] = &["lead", "mql", "sql", "opportunity", "customer"];
const DEPARTMENTS: &[&str] = &[
    "engineering",
    "sales",
    "support",
    "finance",
    "marketing",
    "people",
];
const MEETING_MINUTES: &[i64] = &[30, 60, 45, 15, 90];
/// Every currency the schemas accept; agents use the first seven.
pub(crate) const CURRENCIES: &[&str] = &["usd", "eur", "gbp", "cad", "aud", "chf", "sek", "jpy"];

pub(crate) static TOOLS: &[ToolSpec] = &[
    // payments
    tool(
        "get_customer",
        "stripe",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Retrieve a customer by id or by e-mail address.",
        &[
            shape_a_arg("customer_id", ArgKind::CustomerId, 100),
            shape_b_arg("email", ArgKind::Email(MailDomain::External), 100),
            arg(
                "expand",
                ArgKind::SubsetOf(&["subscriptions", "default_source", "invoice_settings"]),
                15,
            ),
        ],
    )
    .with_shape_b_pct(30),
    tool(
        "list_invoices",
        "stripe",
        Effect::Read,
        None,
        "List invoices for a customer.",
        &[
            arg("customer_id", ArgKind::CustomerId, 100),
            arg(
                "status",
                ArgKind::Enum(&["open", "paid", "draft", "void", "uncollectible"]),
                80,
            ),
            arg("limit", ArgKind::IntOneOf(&[10, 25, 50, 100]), 40),
            arg("created_after", ArgKind::Date, 30),
        ],
    ),
    tool(
        "create_invoice",
        "stripe",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Create and finalise an invoice for a customer.",
        &[
            arg("customer_id", ArgKind::CustomerId, 100),
            arg("amount", ArgKind::AmountDecimal, 100),
            arg("currency", ArgKind::Currency, 100),
            arg("due_date", ArgKind::Date, 100),
            arg("description", ArgKind::Text(TextKind::Memo), 70),
            arg("metadata", ArgKind::Metadata, 25),
            arg("auto_advance", ArgKind::Bool { true_pct: 70 }, 30),
        ],
    ),
    tool(
        "charge_customer",
        "stripe",
        Effect::Write,
        None,
        "Charge a customer's default payment method.",
        &[
            arg("customer_id", ArgKind::CustomerId, 100),
            arg("amount_cents", ArgKind::AmountCents, 100),
            arg("currency", ArgKind::Currency, 100),
            arg("description", ArgKind::Text(TextKind::Memo), 50),
            arg("idempotency_key", ArgKind::IdempotencyKey, 100),
            arg("capture", ArgKind::Bool { true_pct: 90 }, 20),
        ],
    ),
    tool(
        "refund_payment",
        "stripe",
        Effect::Write,
        Some(Hints::DESTRUCTIVE),
        "Refund a payment in full or in part.",
        &[
            arg("payment_intent", ArgKind::PaymentIntentId, 100),
            arg("amount_cents", ArgKind::AmountCents, 60),
            arg(
                "reason",
                ArgKind::Enum(&["requested_by_customer", "duplicate", "fraudulent"]),
                100,
            ),
        ],
    ),
    tool(
        "transfer_funds",
        "stripe",
        Effect::Write,
        None,
        "Transfer funds to a connected account.",
        &[
            arg("destination_account", ArgKind::AccountId, 100),
            arg("amount", ArgKind::AmountDecimal, 100),
            arg("currency", ArgKind::Currency, 100),
            arg("memo", ArgKind::Text(TextKind::Memo), 60),
            arg("metadata", ArgKind::Metadata, 20),
        ],
    ),
    // support desk
    tool(
        "search_tickets",
        "zendesk",
        Effect::Read,
        None,
        "Search support tickets.",
        &[
            shape_a_arg("query", ArgKind::Text(TextKind::SearchQuery), 100),
            shape_a_arg(
                "status",
                ArgKind::Enum(&["open", "pending", "new", "solved", "closed"]),
                70,
            ),
            shape_b_arg("requester_email", ArgKind::Email(MailDomain::External), 100),
            arg("priority", ArgKind::Enum(PRIORITIES), 30),
            arg("per_page", ArgKind::IntOneOf(&[25, 50, 100]), 20),
        ],
    )
    .with_shape_b_pct(35),
    tool(
        "get_ticket",
        "zendesk",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Fetch one ticket.",
        &[
            arg("ticket_id", ArgKind::TicketId, 100),
            arg("include_comments", ArgKind::Bool { true_pct: 60 }, 50),
        ],
    ),
    tool(
        "update_ticket",
        "zendesk",
        Effect::Write,
        None,
        "Update a ticket's status and add a comment.",
        &[
            arg("ticket_id", ArgKind::TicketId, 100),
            arg(
                "status",
                ArgKind::Enum(&["pending", "solved", "open", "on-hold"]),
                80,
            ),
            arg("priority", ArgKind::Enum(PRIORITIES), 25),
            arg("comment", ArgKind::Text(TextKind::TicketComment), 90),
            arg("public", ArgKind::Bool { true_pct: 65 }, 90),
            arg(
                "tags",
                ArgKind::SubsetOf(&[
                    "billing",
                    "refund",
                    "bug",
                    "how-to",
                    "account",
                    "shipping",
                    "vip",
                    "churn-risk",
                ]),
                30,
            ),
        ],
    ),
    // mail and chat
    tool(
        "send_email",
        "gmail",
        Effect::Write,
        Some(Hints::OPEN_WORLD),
        "Send an e-mail.",
        &[
            arg("to", ArgKind::Recipient, 100),
            arg("subject", ArgKind::Text(TextKind::Subject), 100),
            arg("body", ArgKind::Text(TextKind::Body), 100),
            arg("cc", ArgKind::Recipients(MailDomain::Internal), 12),
            arg("bcc", ArgKind::InjectedBcc, 0),
            arg("reply_to", ArgKind::InjectedReplyTo, 0),
            arg("attachments", ArgKind::InjectedAttachments, 0),
        ],
    ),
    tool(
        "search_email",
        "gmail",
        Effect::Read,
        None,
        "Search the mailbox.",
        &[
            arg("query", ArgKind::Text(TextKind::SearchQuery), 100),
            arg(
                "label",
                ArgKind::Enum(&["INBOX", "SENT", "IMPORTANT", "STARRED"]),
                60,
            ),
            arg("max_results", ArgKind::IntOneOf(&[10, 20, 50]), 50),
            arg("newer_than", ArgKind::Date, 30),
        ],
    ),
    tool(
        "read_email",
        "gmail",
        Effect::Read,
        None,
        "Read one message.",
        &[
            arg("message_id", ArgKind::MessageId, 100),
            arg("format", ArgKind::Enum(&["full", "metadata"]), 40),
        ],
    ),
    tool(
        "post_message",
        "slack",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Post a message to a channel.",
        &[
            arg("channel", ArgKind::SlackChannel, 100),
            arg("text", ArgKind::Text(TextKind::Notes), 100),
            arg("thread_ts", ArgKind::SlackThreadTs, 30),
            arg("unfurl_links", ArgKind::Bool { true_pct: 20 }, 10),
        ],
    ),
    // CRM
    tool(
        "search_contacts",
        "crm",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Find contacts by e-mail or company.",
        &[
            shape_a_arg("email", ArgKind::Email(MailDomain::External), 100),
            shape_b_arg("company", ArgKind::Company, 100),
            shape_b_arg("lifecycle_stage", ArgKind::Enum(LIFECYCLE_STAGES), 50),
            arg("limit", ArgKind::IntOneOf(&[10, 25, 50]), 40),
        ],
    )
    .with_shape_b_pct(40),
    tool(
        "create_contact",
        "crm",
        Effect::Write,
        None,
        "Create a CRM contact.",
        &[
            arg("email", ArgKind::Email(MailDomain::External), 100),
            arg("first_name", ArgKind::FirstName, 100),
            arg("last_name", ArgKind::LastName, 100),
            arg("company", ArgKind::Company, 90),
            arg("lifecycle_stage", ArgKind::Enum(LIFECYCLE_STAGES), 80),
            arg(
                "tags",
                ArgKind::SubsetOf(&["inbound", "outbound", "event", "partner", "webinar", "trial"]),
                35,
            ),
        ],
    ),
    tool(
        "update_deal",
        "crm",
        Effect::Write,
        None,
        "Move a deal through the pipeline.",
        &[
            arg("deal_id", ArgKind::DealId, 100),
            arg(
                "stage",
                ArgKind::Enum(&[
                    "proposal",
                    "negotiation",
                    "qualification",
                    "closed_won",
                    "closed_lost",
                ]),
                90,
            ),
            arg("amount", ArgKind::AmountDecimal, 50),
            arg("close_date", ArgKind::Date, 40),
        ],
    ),
    tool(
        "log_activity",
        "crm",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Log a call, meeting or note against a contact.",
        &[
            arg("contact_id", ArgKind::ContactId, 100),
            arg("type", ArgKind::Enum(&["email", "call", "meeting", "note"]), 100),
            arg("notes", ArgKind::Text(TextKind::Notes), 100),
            arg("metadata", ArgKind::Metadata, 30),
        ],
    ),
    // deploys
    tool(
        "list_deployments",
        "kube",
        Effect::Read,
        None,
        "List recent deployments.",
        &[
            arg("environment", ArgKind::Enum(ENVIRONMENTS), 100),
            arg("service", ArgKind::Service, 50),
            arg("limit", ArgKind::IntOneOf(&[10, 20]), 20),
        ],
    ),
    tool(
        "deploy_service",
        "kube",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Roll out a container image.",
        &[
            arg("service", ArgKind::Service, 100),
            arg("image", ArgKind::ContainerImage, 100),
            arg("environment", ArgKind::Enum(ENVIRONMENTS), 100),
            arg("replicas", ArgKind::IntOneOf(&[2, 3, 1, 4, 6]), 60),
            arg("dry_run", ArgKind::Bool { true_pct: 25 }, 40),
            arg("force", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "get_logs",
        "kube",
        Effect::Read,
        None,
        "Tail service logs.",
        &[
            arg("service", ArgKind::Service, 100),
            arg("environment", ArgKind::Enum(ENVIRONMENTS), 70),
            arg("since", ArgKind::Date, 40),
            arg("tail_lines", ArgKind::IntOneOf(&[100, 500, 1000, 200]), 60),
            arg("grep", ArgKind::Text(TextKind::SearchQuery), 20),
        ],
    ),
    tool(
        "rollback_deployment",
        "kube",
        Effect::Write,
        Some(Hints::DESTRUCTIVE),
        "Roll a service back to an earlier revision.",
        &[
            arg("service", ArgKind::Service, 100),
            arg("environment", ArgKind::Enum(ENVIRONMENTS), 100),
            arg("revision", ArgKind::IntRange(1, 40), 70),
            arg("reason", ArgKind::Text(TextKind::Memo), 50),
        ],
    ),
    tool(
        "run_workflow",
        "github",
        Effect::Write,
        None,
        "Dispatch a GitHub Actions workflow.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg(
                "workflow",
                ArgKind::Enum(&["ci.yml", "deploy.yml", "nightly.yml", "release.yml"]),
                100,
            ),
            arg("ref", ArgKind::Branch, 100),
            arg("inputs", ArgKind::Metadata, 20),
        ],
    ),
    // data and files
    tool(
        "run_query",
        "warehouse",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Run a read-only SQL query.",
        &[
            arg("sql", ArgKind::SqlQuery, 100),
            arg("warehouse", ArgKind::Enum(&["ANALYTICS_WH", "REPORTING_WH"]), 60),
            arg("timeout_seconds", ArgKind::IntOneOf(&[60, 300, 30, 600]), 30),
            arg("dry_run", ArgKind::Bool { true_pct: 10 }, 15),
            arg("allow_writes", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "list_tables",
        "warehouse",
        Effect::Read,
        None,
        "List tables in a schema.",
        &[
            arg(
                "schema",
                ArgKind::Enum(&["analytics", "marts", "staging", "raw"]),
                100,
            ),
            arg("include_views", ArgKind::Bool { true_pct: 50 }, 30),
        ],
    ),
    tool(
        "export_csv",
        "warehouse",
        Effect::Write,
        None,
        "Export a query result to a CSV file.",
        &[
            arg("sql", ArgKind::SqlQuery, 100),
            arg("path", ArgKind::WritePath, 100),
            arg("delimiter", ArgKind::Enum(&[",", ";", "\t"]), 20),
            arg("overwrite", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "read_file",
        "fs",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Read a file.",
        &[
            arg("path", ArgKind::ReadPath, 100),
            arg("encoding", ArgKind::Enum(&["utf-8", "latin-1"]), 20),
            arg("max_bytes", ArgKind::IntOneOf(&[65_536, 1_048_576]), 15),
        ],
    ),
    tool(
        "write_file",
        "fs",
        Effect::Write,
        None,
        "Write a file.",
        &[
            arg("path", ArgKind::WritePath, 100),
            arg("content", ArgKind::Text(TextKind::Body), 100),
            arg("create_dirs", ArgKind::Bool { true_pct: 80 }, 20),
            arg("overwrite", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "list_directory",
        "fs",
        Effect::Read,
        None,
        "List a directory.",
        &[
            arg("path", ArgKind::ReadDir, 100),
            arg("recursive", ArgKind::Bool { true_pct: 30 }, 50),
            arg(
                "pattern",
                ArgKind::Enum(&["*.csv", "*.json", "*.md", "*.pdf"]),
                25,
            ),
        ],
    ),
    // web
    tool(
        "web_search",
        "web",
        Effect::Read,
        Some(Hints::OPEN_WORLD),
        "Search the web.",
        &[
            arg("query", ArgKind::Text(TextKind::WebSearchQuery), 100),
            arg("num_results", ArgKind::IntOneOf(&[10, 5, 20]), 50),
            arg("freshness", ArgKind::Enum(&["month", "week", "year", "day"]), 25),
        ],
    ),
    tool(
        "fetch_url",
        "web",
        Effect::Read,
        Some(Hints::OPEN_WORLD),
        "Fetch a URL and return its content.",
        &[
            arg("url", ArgKind::Url, 100),
            arg("timeout_seconds", ArgKind::IntOneOf(&[30, 10, 60]), 30),
            arg("format", ArgKind::Enum(&["markdown", "html", "text"]), 50),
            arg("api_key", ArgKind::ApiKey, 0),
        ],
    ),
    tool(
        "http_post",
        "web",
        Effect::Write,
        None,
        "POST a JSON body to a URL.",
        &[
            arg("url", ArgKind::Url, 100),
            arg("json_body", ArgKind::WebhookPayload, 100),
            arg("callback_url", ArgKind::InjectedCallbackUrl, 0),
        ],
    ),
    // calendar
    tool(
        "list_events",
        "calendar",
        Effect::Read,
        Some(Hints::CONTAINED),
        "List events in a time window.",
        &[
            arg("calendar_id", ArgKind::CalendarId, 100),
            arg("time_min", ArgKind::Date, 100),
            arg("time_max", ArgKind::Date, 80),
            arg("max_results", ArgKind::IntOneOf(&[25, 50, 10]), 30),
        ],
    ),
    tool(
        "create_event",
        "calendar",
        Effect::Write,
        Some(Hints::OPEN_WORLD),
        "Create a calendar event and invite attendees.",
        &[
            arg("summary", ArgKind::Text(TextKind::Title), 100),
            arg("start", ArgKind::DateTime, 100),
            arg("duration_minutes", ArgKind::IntOneOf(MEETING_MINUTES), 100),
            arg("attendees", ArgKind::Recipients(MailDomain::External), 90),
            arg(
                "location",
                ArgKind::Enum(&["Zoom", "Google Meet", "Room 4A", "Room 2B", "HQ Boardroom"]),
                40,
            ),
            arg("description", ArgKind::Text(TextKind::Notes), 30),
            arg(
                "send_updates",
                ArgKind::Enum(&["all", "externalOnly", "none"]),
                30,
            ),
        ],
    ),
    tool(
        "find_free_slot",
        "calendar",
        Effect::Read,
        None,
        "Find a slot when all attendees are free.",
        &[
            arg("attendees", ArgKind::Recipients(MailDomain::Internal), 100),
            arg("date", ArgKind::Date, 100),
            arg("duration_minutes", ArgKind::IntOneOf(MEETING_MINUTES), 100),
            arg("working_hours_only", ArgKind::Bool { true_pct: 90 }, 25),
        ],
    ),
    tool(
        "cancel_event",
        "calendar",
        Effect::Write,
        Some(Hints::DESTRUCTIVE),
        "Cancel an event.",
        &[
            arg("event_id", ArgKind::EventId, 100),
            arg("notify_attendees", ArgKind::Bool { true_pct: 85 }, 70),
            arg("reason", ArgKind::Text(TextKind::Memo), 30),
        ],
    ),
    // HR
    tool(
        "get_employee",
        "hris",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Look up an employee by id or work e-mail.",
        &[
            shape_a_arg("employee_id", ArgKind::EmployeeId, 100),
            shape_b_arg("email", ArgKind::Email(MailDomain::Internal), 100),
            arg(
                "fields",
                ArgKind::SubsetOf(&["manager", "department", "start_date", "location", "title"]),
                30,
            ),
        ],
    )
    .with_shape_b_pct(40),
    tool(
        "create_employee_record",
        "hris",
        Effect::Write,
        None,
        "Create a new-hire record.",
        &[
            arg("first_name", ArgKind::FirstName, 100),
            arg("last_name", ArgKind::LastName, 100),
            arg("work_email", ArgKind::Email(MailDomain::Internal), 100),
            arg("department", ArgKind::Enum(DEPARTMENTS), 100),
            arg("start_date", ArgKind::Date, 100),
            arg("manager_email", ArgKind::Email(MailDomain::Internal), 80),
            arg(
                "employment_type",
                ArgKind::Enum(&["full_time", "contractor", "part_time", "intern"]),
                100,
            ),
            arg(
                "equipment",
                ArgKind::SubsetOf(&["laptop", "monitor", "headset", "keyboard", "phone"]),
                40,
            ),
        ],
    ),
    tool(
        "provision_account",
        "okta",
        Effect::Write,
        None,
        "Create an SSO account and assign groups.",
        &[
            arg("email", ArgKind::Email(MailDomain::Internal), 100),
            arg("groups", ArgKind::SsoGroups, 100),
            arg("send_activation", ArgKind::Bool { true_pct: 90 }, 60),
            arg("is_admin", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "approve_expense",
        "hris",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Approve an expense claim.",
        &[
            arg("expense_id", ArgKind::ExpenseId, 100),
            arg("amount", ArgKind::AmountDecimal, 100),
            arg("currency", ArgKind::Currency, 100),
            arg("note", ArgKind::Text(TextKind::Memo), 35),
        ],
    ),
    // code review
    tool(
        "get_pull_request",
        "github",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Fetch a pull request.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("pr_number", ArgKind::PrNumber, 100),
        ],
    ),
    tool(
        "list_pull_requests",
        "github",
        Effect::Read,
        None,
        "List pull requests.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("state", ArgKind::Enum(&["open", "closed", "all"]), 80),
            arg(
                "label",
                ArgKind::Enum(&["needs-review", "bug", "dependencies", "breaking-change"]),
                25,
            ),
            arg("per_page", ArgKind::IntOneOf(&[30, 50, 100]), 20),
        ],
    ),
    tool(
        "create_review_comment",
        "github",
        Effect::Write,
        None,
        "Comment on a line of a pull request.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("pr_number", ArgKind::PrNumber, 100),
            arg("path", ArgKind::PathInRepo, 100),
            arg("line", ArgKind::IntRange(1, 800), 100),
            arg("body", ArgKind::Text(TextKind::ReviewComment), 100),
        ],
    ),
    tool(
        "submit_review",
        "github",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Submit a pull-request review.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("pr_number", ArgKind::PrNumber, 100),
            arg(
                "event",
                ArgKind::Enum(&["COMMENT", "APPROVE", "REQUEST_CHANGES"]),
                100,
            ),
            arg("body", ArgKind::Text(TextKind::ReviewComment), 60),
        ],
    ),
    tool(
        "merge_pull_request",
        "github",
        Effect::Write,
        Some(Hints::DESTRUCTIVE),
        "Merge a pull request.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("pr_number", ArgKind::PrNumber, 100),
            arg("merge_method", ArgKind::Enum(&["squash", "merge", "rebase"]), 90),
            arg("delete_branch", ArgKind::Bool { true_pct: 80 }, 60),
            arg("admin_override", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "get_file_contents",
        "github",
        Effect::Read,
        None,
        "Read a file from a repository.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("path", ArgKind::PathInRepo, 100),
            arg("ref", ArgKind::Branch, 40),
        ],
    ),
    // wiki
    tool(
        "search_pages",
        "wiki",
        Effect::Read,
        None,
        "Full-text search over wiki pages.",
        &[
            arg("query", ArgKind::Text(TextKind::SearchQuery), 100),
            arg("space", ArgKind::WikiSpace, 60),
            arg("limit", ArgKind::IntOneOf(&[10, 25]), 30),
        ],
    ),
    tool(
        "get_page",
        "wiki",
        Effect::Read,
        Some(Hints::CONTAINED),
        "Fetch a wiki page.",
        &[
            arg("page_id", ArgKind::PageId, 100),
            arg("body_format", ArgKind::Enum(&["storage", "view"]), 40),
        ],
    ),
    tool(
        "create_page",
        "wiki",
        Effect::Write,
        None,
        "Create a wiki page.",
        &[
            arg("space", ArgKind::WikiSpace, 100),
            arg("title", ArgKind::Text(TextKind::Title), 100),
            arg("body", ArgKind::Text(TextKind::Body), 100),
            arg("parent_id", ArgKind::PageId, 40),
            arg(
                "labels",
                ArgKind::SubsetOf(&["runbook", "how-to", "meeting-notes", "decision", "faq"]),
                35,
            ),
            arg("share_publicly", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "update_page",
        "wiki",
        Effect::Write,
        Some(Hints::CONTAINED),
        "Replace the body of a wiki page.",
        &[
            arg("page_id", ArgKind::PageId, 100),
            arg("body", ArgKind::Text(TextKind::Body), 100),
            arg("version", ArgKind::IntRange(2, 60), 100),
            arg("minor_edit", ArgKind::Bool { true_pct: 60 }, 50),
        ],
    ),
    // In the catalogue, called by nobody: the drafter must not grant them.
    tool(
        "export_all_customers",
        "crm",
        Effect::Read,
        None,
        "Export every customer record.",
        &[
            arg("format", ArgKind::Enum(&["csv", "json"]), 100),
            arg("include_pii", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "delete_repository",
        "github",
        Effect::Write,
        Some(Hints::DESTRUCTIVE),
        "Permanently delete a repository.",
        &[
            arg("repo", ArgKind::Repo, 100),
            arg("confirm", ArgKind::InjectedFlag, 0),
        ],
    ),
    tool(
        "purge_audit_log",
        "fs",
        Effect::Write,
        None,
        "Delete audit-log entries older than a date.",
        &[
            arg("before", ArgKind::Date, 100),
            arg("dry_run", ArgKind::Bool { true_pct: 50 }, 50),
        ],
    ),
];
