//! Word lists that make generated values look like a real company's: organisations and partners,
//! people, repositories, services, topics, file names, web and review vocabulary.

/// The fleet's own organisation: (slug for repositories and images, e-mail domain).
pub(crate) const ORGANISATIONS: &[(&str, &str)] = &[
    ("northwind", "northwind-labs.com"),
    ("acme", "acme-corp.com"),
    ("globex", "globex.io"),
    ("initech", "initech.com"),
    ("hooli", "hooli.xyz"),
    ("umbrella", "umbrella-health.com"),
    ("vandelay", "vandelay-imports.com"),
];

/// Partner/customer domains with the company name used in CRM records.
pub(crate) const PARTNERS: &[(&str, &str)] = &[
    ("contoso.com", "Contoso"),
    ("fabrikam.com", "Fabrikam"),
    ("tailspintoys.com", "Tailspin Toys"),
    ("wingtiptoys.com", "Wingtip Toys"),
    ("adventure-works.com", "Adventure Works"),
    ("litwareinc.com", "Litware"),
    ("proseware.com", "Proseware"),
    ("woodgrovebank.com", "Woodgrove Bank"),
    ("alpineskihouse.com", "Alpine Ski House"),
    ("blueyonderairlines.com", "Blue Yonder Airlines"),
    ("cohowinery.com", "Coho Winery"),
    ("fourthcoffee.com", "Fourth Coffee"),
    ("margiestravel.com", "Margie's Travel"),
    ("northwindtraders.com", "Northwind Traders"),
    ("treyresearch.net", "Trey Research"),
    ("wideworldimporters.com", "Wide World Importers"),
    ("lucernepublishing.com", "Lucerne Publishing"),
    ("humongousinsurance.com", "Humongous Insurance"),
    ("relecloud.com", "Relecloud"),
    ("adatum.com", "A. Datum"),
    ("consolidatedmessenger.com", "Consolidated Messenger"),
    ("southridgevideo.com", "Southridge Video"),
    ("graphicdesigninstitute.com", "Graphic Design Institute"),
    ("bellowscollege.com", "Bellows College"),
    ("fineartschool.net", "Fine Art School"),
    ("thephone-company.com", "The Phone Company"),
    ("cpandl.com", "City Power & Light"),
    ("lamnahealthcare.com", "Lamna Healthcare"),
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "alice", "bruno", "chen", "dana", "emeka", "fatima", "george", "hana", "ivan", "jules", "kofi", "lena",
    "marco", "nadia", "oscar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "victor", "wen", "ximena",
    "yusuf", "zoe",
];
pub(crate) const LAST_NAMES: &[&str] = &[
    "adams", "becker", "costa", "dubois", "eriksen", "fischer", "garcia", "haddad", "ito", "jensen",
    "kowalski", "larsen", "moreau", "nakamura", "okafor", "petrov", "quispe", "rossi", "singh", "tanaka",
    "ueda", "varga", "walsh", "yilmaz", "zhang",
];
/// Local parts of shared partner mailboxes: billing@, ap@...
pub(crate) const ROLE_MAILBOXES: &[&str] =
    &["billing", "accounts", "ap", "support", "ops", "finance", "hello"];
pub(crate) const REPOS: &[&str] = &[
    "payments-api",
    "web-frontend",
    "mobile-app",
    "infra-terraform",
    "data-pipelines",
    "auth-service",
    "docs-site",
    "billing-engine",
    "search-indexer",
    "ml-platform",
    "notification-svc",
    "admin-console",
];
pub(crate) const SERVICES: &[&str] = &[
    "checkout-api",
    "auth-service",
    "search",
    "notifications",
    "billing-worker",
    "web-frontend",
    "ledger",
    "inventory",
    "recommendations",
    "gateway",
];
pub(crate) const WIKI_SPACES: &[&str] = &["ENG", "OPS", "SUPPORT", "SALES", "HR", "FIN", "PLAT", "SEC"];
pub(crate) const WAREHOUSE_TABLES: &[&str] = &[
    "analytics.daily_active_users",
    "marts.revenue_by_region",
    "marts.churn_cohorts",
    "staging.orders",
    "analytics.sessions",
    "marts.ltv",
    "raw.events",
    "analytics.funnel_steps",
    "marts.support_sla",
];
pub(crate) const SSO_GROUPS: &[&str] = &[
    "all-staff",
    "engineering",
    "vpn-users",
    "github-org",
    "jira-users",
    "sales-tools",
    "finance-ro",
    "oncall",
    "design",
    "support-agents",
];
pub(crate) const TOPICS: &[&str] = &[
    "renewal",
    "invoice",
    "refund",
    "onboarding",
    "migration",
    "outage",
    "pricing",
    "contract",
    "shipment",
    "login issue",
    "API quota",
    "data export",
    "SSO setup",
    "billing address",
    "webhook failures",
    "latency spike",
    "quarterly review",
    "roadmap",
    "security review",
    "access request",
];
pub(crate) const FILE_WORDS: &[&str] = &[
    "report",
    "summary",
    "invoice",
    "export",
    "notes",
    "draft",
    "manifest",
    "snapshot",
    "metrics",
    "roster",
    "checklist",
    "minutes",
    "leads",
    "transcript",
];
pub(crate) const FILE_EXTENSIONS: &[&str] = &["csv", "json", "md", "txt", "pdf", "yaml", "log"];
/// Web searches are a lead, a subject and a qualifier: "comparison of vector databases 2024".
pub(crate) const WEB_QUERY_LEADS: &[&str] = &[
    "latest",
    "best practices for",
    "open source",
    "benchmark",
    "comparison of",
    "history of",
    "regulation of",
    "market size",
    "risks of",
    "how to evaluate",
];
pub(crate) const WEB_QUERY_SUBJECTS: &[&str] = &[
    "vector databases",
    "EU AI Act",
    "carbon capture",
    "solid-state batteries",
    "LLM evaluation",
    "zero trust networking",
    "supply chain finance",
    "quantum error correction",
    "CRISPR therapies",
    "lithium prices",
    "satellite broadband",
    "heat pumps",
];
/// Review comments are about one of these, and suggest one of [`REFACTORINGS`].
pub(crate) const CODE_CONSTRUCTS: &[&str] = &[
    "match arm",
    "unwrap",
    "retry loop",
    "SQL builder",
    "error type",
    "config parser",
    "cache key",
    "lock guard",
    "timeout",
    "serializer",
];
pub(crate) const REFACTORINGS: &[&str] = &[
    "an early return",
    "a helper",
    "the ? operator",
    "a const",
    "a table-driven test",
    "iterators",
];

/// First letter upper-cased: names in the word lists are lower case.
pub(crate) fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
