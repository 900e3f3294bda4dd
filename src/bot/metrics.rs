//! Counters for `GET /metrics`, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::forge::CallCounts;

/// Most nodes given series of their own (the most recently heard); the rest
/// are counted in `shadowdraft_nodes_reporting` only.
pub const MAX_NODE_SERIES: usize = 256;

/// Upper bounds (seconds) of the job latency histogram.
const LATENCY_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
pub struct Metrics {
    calls_ingested: AtomicU64,
    batches_ingested: AtomicU64,
    batches_duplicate: AtomicU64,
    batches_rejected: AtomicU64,
    drafts: AtomicU64,
    prs_opened: AtomicU64,
    prs_updated: AtomicU64,
    comments: AtomicU64,
    jobs_failed: AtomicU64,
    webhooks_rejected: AtomicU64,
    latency: Mutex<Histogram>,
    /// `/v1/traces` spans by what became of them ([`SPAN_OUTCOMES`]).
    otlp_spans: [AtomicU64; SPAN_OUTCOMES.len()],
    /// `/v1/traces` exports by answer ([`EXPORT_OUTCOMES`]).
    otlp_exports: [AtomicU64; EXPORT_OUTCOMES.len()],
}

/// What became of a span posted to `/v1/traces`.
pub const SPAN_OUTCOMES: [&str; 5] = ["call", "without_args", "not_a_tool", "server_side", "rejected"];
/// How an export to `/v1/traces` was answered.
pub const EXPORT_OUTCOMES: [&str; 3] = ["accepted", "duplicate", "rejected"];

/// Spans of one export, by outcome, in the order of [`SPAN_OUTCOMES`].
pub type SpanCounts = [u64; SPAN_OUTCOMES.len()];

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Figures read at scrape time from elsewhere (the store, the forge, the window).
pub struct Gauges {
    pub queue_depth: i64,
    pub shapes_in_window: usize,
    pub github_errors: BTreeMap<u16, u64>,
    pub github_calls: CallCounts,
    /// Enforcement nodes that reported: (node, policy commit, last report, Unix seconds).
    pub nodes: Vec<(String, String, i64)>,
    /// GitHub App installations (from webhooks) that serve the policy repository.
    pub installations: Option<usize>,
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    /// The store answered this scrape.
    pub store_up: bool,
    /// This replica's name in claims (PostgreSQL).
    pub replica: Option<String>,
}

impl Metrics {
    pub fn batch_ingested(&self, calls: u64) {
        self.batches_ingested.fetch_add(1, Relaxed);
        self.calls_ingested.fetch_add(calls, Relaxed);
    }
    pub fn batch_duplicate(&self) {
        self.batches_duplicate.fetch_add(1, Relaxed);
    }
    pub fn batch_rejected(&self) {
        self.batches_rejected.fetch_add(1, Relaxed);
    }
    pub fn drafted(&self) {
        self.drafts.fetch_add(1, Relaxed);
    }
    pub fn pr_opened(&self) {
        self.prs_opened.fetch_add(1, Relaxed);
    }
    pub fn pr_updated(&self) {
        self.prs_updated.fetch_add(1, Relaxed);
    }
    pub fn commented(&self) {
        self.comments.fetch_add(1, Relaxed);
    }
    pub fn webhook_rejected(&self) {
        self.webhooks_rejected.fetch_add(1, Relaxed);
    }
    pub fn job_failed(&self) {
        self.jobs_failed.fetch_add(1, Relaxed);
    }
    pub fn job_took(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut h = self.latency.lock().expect("metrics lock");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// An export to `/v1/traces` answered with `outcome` (one of [`EXPORT_OUTCOMES`]).
    pub fn otlp_export(&self, outcome: &str, spans: &SpanCounts) {
        if let Some(i) = EXPORT_OUTCOMES.iter().position(|o| *o == outcome) {
            self.otlp_exports[i].fetch_add(1, Relaxed);
        }
        for (counter, n) in self.otlp_spans.iter().zip(spans) {
            counter.fetch_add(*n, Relaxed);
        }
    }

    pub fn calls_ingested(&self) -> u64 {
        self.calls_ingested.load(Relaxed)
    }

    pub fn jobs_failed(&self) -> u64 {
        self.jobs_failed.load(Relaxed)
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let counters = [
            (
                "shadowdraft_calls_ingested_total",
                "Observed calls accepted (counting `count`).",
                &self.calls_ingested,
            ),
            (
                "shadowdraft_batches_ingested_total",
                "Observation batches stored.",
                &self.batches_ingested,
            ),
            (
                "shadowdraft_batches_duplicate_total",
                "Retried batches counted once.",
                &self.batches_duplicate,
            ),
            (
                "shadowdraft_batches_rejected_total",
                "Batches refused as invalid.",
                &self.batches_rejected,
            ),
            ("shadowdraft_drafts_total", "Agent drafts computed.", &self.drafts),
            (
                "shadowdraft_prs_opened_total",
                "Proposals opened.",
                &self.prs_opened,
            ),
            (
                "shadowdraft_prs_updated_total",
                "Proposals updated.",
                &self.prs_updated,
            ),
            (
                "shadowdraft_comments_total",
                "Evidence comments posted.",
                &self.comments,
            ),
            (
                "shadowdraft_webhooks_rejected_total",
                "Webhook deliveries refused because the payload lacks what its event needs.",
                &self.webhooks_rejected,
            ),
            (
                "shadowdraft_jobs_failed_total",
                "Draft jobs that failed and were requeued.",
                &self.jobs_failed,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        let labelled = [
            (
                "shadowdraft_otlp_spans_total",
                "Spans posted to /v1/traces, by what became of them (without_args: tool calls whose arguments were not recorded, counted but never drafted from).",
                &self.otlp_spans[..],
                &SPAN_OUTCOMES[..],
            ),
            (
                "shadowdraft_otlp_exports_total",
                "OTLP exports posted to /v1/traces, by answer.",
                &self.otlp_exports[..],
                &EXPORT_OUTCOMES[..],
            ),
        ];
        for (name, help, values, outcomes) in labelled {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (value, outcome) in values.iter().zip(outcomes) {
                let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {}", value.load(Relaxed));
            }
        }
        let _ = writeln!(
            out,
            "# HELP shadowdraft_queue_depth Agents waiting to be redrafted.\n# TYPE shadowdraft_queue_depth gauge\nshadowdraft_queue_depth {}",
            gauges.queue_depth
        );
        let _ = writeln!(
            out,
            "# HELP shadowdraft_window_shapes Distinct call shapes held for the window.\n# TYPE shadowdraft_window_shapes gauge\nshadowdraft_window_shapes {}",
            gauges.shapes_in_window
        );
        let _ = writeln!(
            out,
            "# HELP shadowdraft_github_errors_total GitHub API error responses by status.\n# TYPE shadowdraft_github_errors_total counter"
        );
        for (status, count) in &gauges.github_errors {
            let _ = writeln!(
                out,
                "shadowdraft_github_errors_total{{status=\"{status}\"}} {count}"
            );
        }
        let calls = [
            (
                "shadowdraft_github_retries_total",
                "GitHub API attempts repeated after a 5xx, a rate limit or a transport error.",
                gauges.github_calls.retries,
            ),
            (
                "shadowdraft_github_transport_errors_total",
                "GitHub API attempts that got no HTTP answer (connection refused or reset, timeout).",
                gauges.github_calls.transport_errors,
            ),
            (
                "shadowdraft_github_gave_up_total",
                "GitHub API calls that still failed on their last attempt (the job or delivery stays queued).",
                gauges.github_calls.gave_up,
            ),
        ];
        for (name, help, value) in calls {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP shadowdraft_nodes_reporting Enforcement nodes that reported in the last 24 hours.\n# TYPE shadowdraft_nodes_reporting gauge\nshadowdraft_nodes_reporting {}",
            gauges.nodes.len()
        );
        let mut nodes: Vec<&(String, String, i64)> = gauges.nodes.iter().collect();
        nodes.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        nodes.truncate(MAX_NODE_SERIES);
        nodes.sort();
        let _ = writeln!(
            out,
            "# HELP shadowdraft_node_policy_commit The policy commit each enforcement node last reported.\n# TYPE shadowdraft_node_policy_commit gauge"
        );
        for (node, commit, _) in &nodes {
            let _ = writeln!(
                out,
                "shadowdraft_node_policy_commit{{node=\"{}\",commit=\"{}\"}} 1",
                label(node),
                label(commit)
            );
        }
        let _ = writeln!(
            out,
            "# HELP shadowdraft_node_last_report_timestamp_seconds When each node last reported.\n# TYPE shadowdraft_node_last_report_timestamp_seconds gauge"
        );
        for (node, _, seen) in &nodes {
            let _ = writeln!(
                out,
                "shadowdraft_node_last_report_timestamp_seconds{{node=\"{}\"}} {seen}",
                label(node)
            );
        }
        if let Some(serving) = gauges.installations {
            let _ = writeln!(
                out,
                "# HELP shadowdraft_installations_serving_repository App installations, as webhooks reported them, that serve the policy repository.\n# TYPE shadowdraft_installations_serving_repository gauge\nshadowdraft_installations_serving_repository {serving}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP shadowdraft_store_up Whether the store answered this scrape.\n# TYPE shadowdraft_store_up gauge\nshadowdraft_store_up{{store=\"{}\",replica=\"{}\"}} {}",
            gauges.store,
            label(gauges.replica.as_deref().unwrap_or("")),
            u8::from(gauges.store_up)
        );
        let h = self.latency.lock().expect("metrics lock");
        let name = "shadowdraft_job_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to draft and propose one agent.\n# TYPE {name} histogram"
        );
        for (bound, count) in LATENCY_BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            h.count, h.sum, h.count
        );
        out
    }
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histogram() {
        let m = Metrics::default();
        m.batch_ingested(1000);
        m.job_took(Duration::from_millis(300));
        let text = m.render(&Gauges {
            queue_depth: 2,
            shapes_in_window: 7,
            github_errors: BTreeMap::from([(502, 1)]),
            github_calls: CallCounts {
                retries: 3,
                transport_errors: 1,
                gave_up: 0,
            },
            nodes: vec![("node \"1\"".into(), "abc".into(), 7)],
            installations: None,
            store: "postgres",
            store_up: false,
            replica: Some("7-ab".into()),
        });
        assert!(
            text.contains("shadowdraft_store_up{store=\"postgres\",replica=\"7-ab\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("shadowdraft_node_policy_commit{node=\"node \\\"1\\\"\",commit=\"abc\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("shadowdraft_calls_ingested_total 1000\n"));
        assert!(text.contains("shadowdraft_queue_depth 2\n"));
        assert!(text.contains("shadowdraft_github_errors_total{status=\"502\"} 1\n"));
        assert!(text.contains("shadowdraft_github_retries_total 3\n"), "{text}");
        assert!(text.contains("shadowdraft_github_transport_errors_total 1\n"));
        assert!(text.contains("shadowdraft_github_gave_up_total 0\n"));
        assert!(text.contains("shadowdraft_job_duration_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(text.contains("shadowdraft_job_duration_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("shadowdraft_job_duration_seconds_count 1\n"));
    }
}
