//! The policy the node enforces: one commit of the base branch, parsed,
//! strictly validated, and sliced per (agent, tool) at load so a decision
//! evaluates only the handful of rules that can apply to it.
//!
//! [`PolicyState`] holds the current [`Enforced`] behind an `Arc` swapped
//! whole: a decision clones the `Arc` and never sees a half-loaded policy. A
//! commit that does not load leaves the last good one in place.

use super::cache::DecisionCache;
use crate::core::check::{load, LoadedRepo};
use crate::core::native::NativeRule;
use crate::core::policies::{RepoFiles, Rule};
use crate::core::schema::SERVER_TYPE;
use crate::core::types::{ArgType, Attr};
use cedar_policy::{PolicySet, ResourceConstraint, ValidationMode, Validator};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// One loaded commit, ready to decide.
pub struct Enforced {
    pub commit: String,
    pub repo: LoadedRepo,
    /// agent → tool → the rules that can decide it (agent-specific and generic).
    by_agent: HashMap<String, HashMap<String, ToolSlices>>,
    /// Decisions already taken under this commit.
    pub cache: DecisionCache,
    /// By rule index: the rule compiled for the native fast path, if it is in the fragment.
    native: Vec<Option<Arc<NativeRule>>>,
    /// tool → the generic rules (no single agent named), for agents without rules of their own.
    generic: HashMap<String, ToolSlices>,
    pub rules: usize,
}

/// The rules of one (agent, tool), split once more by the server their head
/// names (`resource == McpServer::"…"`), so a decision evaluates only the
/// rules of its server plus those that name none.
#[derive(Default)]
struct ToolSlices {
    by_server: HashMap<String, Slice>,
    any_server: Option<Slice>,
    /// String arguments no rule here reads the value of: a decision cannot
    /// depend on them, so the decision cache leaves them out of its key.
    unread_strings: HashSet<String>,
    /// Every rule of the (agent, tool) in file order, as `why_denied` reads
    /// them; `None` if one is outside the native fragment.
    explain: Option<Vec<Arc<NativeRule>>>,
}

/// The rules of one (agent, tool, server): for Cedar, and natively when
/// all of them are in the fragment.
struct Slice {
    set: PolicySet,
    native: Option<Vec<Arc<NativeRule>>>,
}

impl ToolSlices {
    /// `indices`: the rules of the (agent, tool), in file order.
    fn new(
        indices: &[usize],
        rules: &[Rule],
        native: &[Option<Arc<NativeRule>>],
        attrs: Option<&BTreeMap<String, Attr>>,
    ) -> Option<ToolSlices> {
        let mut named: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut any = Vec::new();
        // `None`: some rule reads input in a way we cannot follow; every value counts.
        let mut read: Option<HashSet<&str>> = Some(HashSet::new());
        for &i in indices {
            let rule = &rules[i];
            match (&mut read, &rule.reads) {
                (Some(names), Some(paths)) => {
                    names.extend(paths.iter().filter_map(|p| p.first()).map(String::as_str))
                }
                _ => read = None,
            }
            match rule.policy.resource_constraint() {
                ResourceConstraint::Eq(uid) if uid.type_name().to_string() == SERVER_TYPE => {
                    named.entry(uid.id().unescaped().to_string()).or_default().push(i)
                }
                _ => any.push(i),
            }
        }
        if named.is_empty() && any.is_empty() {
            return None;
        }
        let natively = |indices: &mut dyn Iterator<Item = &usize>| -> Option<Vec<Arc<NativeRule>>> {
            indices.map(|&i| native[i].clone()).collect()
        };
        let set = |indices: &[&usize]| {
            let mut set = PolicySet::new();
            for &&i in indices {
                set.add(rules[i].policy.clone()).expect("ids are unique");
            }
            Slice {
                set,
                native: natively(&mut indices.iter().copied()),
            }
        };
        let unread_strings = match (read, attrs) {
            (Some(read), Some(attrs)) => attrs
                .iter()
                .filter(|(name, attr)| attr.ty == ArgType::String && !read.contains(name.as_str()))
                .map(|(name, _)| name.clone())
                .collect(),
            _ => HashSet::new(),
        };
        Some(ToolSlices {
            unread_strings,
            by_server: named
                .iter()
                .map(|(server, own)| {
                    (
                        server.clone(),
                        set(&own.iter().chain(any.iter()).collect::<Vec<_>>()),
                    )
                })
                .collect(),
            any_server: (!any.is_empty()).then(|| set(&any.iter().collect::<Vec<_>>())),
            explain: natively(&mut indices.iter()),
        })
    }

    fn get(&self, server: &str) -> Option<&Slice> {
        self.by_server.get(server).or(self.any_server.as_ref())
    }
}

/// Every rule compiled for the native path (`None`: outside the fragment),
/// on all cores: a rule takes Cedar a few policy round trips to explain itself.
fn compile_natively(rules: &[Rule]) -> Vec<Option<Arc<NativeRule>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rules.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = rules
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|r| NativeRule::compile(r.id.as_ref(), &r.policy).map(Arc::new))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("compiling does not panic"))
            .collect()
    })
}

impl Enforced {
    /// Parse and strictly validate `files`; every problem is returned together.
    pub fn build(commit: &str, files: &RepoFiles) -> Result<Enforced, Vec<String>> {
        let repo = load(files)?;
        let schema = repo.schema.to_cedar().map_err(|e| vec![format!("schema: {e}")])?;
        let result = Validator::new(schema).validate(&repo.policies.all(), ValidationMode::Strict);
        let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Enforced::slice(commit, repo))
    }

    /// Prebuild the slices of an already checked repository.
    pub fn slice(commit: &str, repo: LoadedRepo) -> Enforced {
        let rules = &repo.policies.rules;
        let mut tools: BTreeSet<String> = repo.schema.tools().map(str::to_string).collect();
        let mut agents: BTreeSet<&str> = BTreeSet::new();
        for rule in rules {
            if let Some(a) = &rule.agent {
                agents.insert(a);
            }
            if let Some(ts) = &rule.tools {
                tools.extend(ts.iter().cloned());
            }
        }
        let applies_to_tool =
            |rule: &Rule, tool: &str| rule.tools.as_ref().is_none_or(|ts| ts.iter().any(|t| t == tool));
        let native = compile_natively(rules);
        let mut generic = HashMap::new();
        for tool in &tools {
            let indices: Vec<usize> = (0..rules.len())
                .filter(|&i| rules[i].agent.is_none() && applies_to_tool(&rules[i], tool))
                .collect();
            if let Some(slices) = ToolSlices::new(&indices, rules, &native, repo.schema.tool(tool)) {
                generic.insert(tool.clone(), slices);
            }
        }
        let mut by_agent: HashMap<String, HashMap<String, ToolSlices>> = HashMap::new();
        for agent in agents {
            // The tools this agent's own rules name; all of them if one names none.
            let mut named = BTreeSet::new();
            let mut all = false;
            for rule in rules.iter().filter(|r| r.agent.as_deref() == Some(agent)) {
                match &rule.tools {
                    Some(ts) => named.extend(ts.iter().map(String::as_str)),
                    None => all = true,
                }
            }
            let slices = by_agent.entry(agent.to_string()).or_default();
            for tool in tools.iter().filter(|t| all || named.contains(t.as_str())) {
                let indices = repo.policies.slice_indices(agent, tool);
                if let Some(s) = ToolSlices::new(&indices, rules, &native, repo.schema.tool(tool)) {
                    slices.insert(tool.clone(), s);
                }
            }
        }
        Enforced {
            commit: commit.to_string(),
            rules: rules.len(),
            repo,
            by_agent,
            generic,
            native,
            cache: DecisionCache::default(),
        }
    }

    /// The rules that can decide `agent` calling `tool` on `server`; `None`: no rule can allow it.
    pub fn slice_for(&self, agent: &str, tool: &str, server: &str) -> Option<&PolicySet> {
        self.tool_slices(agent, tool)
            .and_then(|slices| slices.get(server))
            .map(|slice| &slice.set)
    }

    /// The same rules compiled for the native path; `None` also when one of
    /// them is outside the fragment (then Cedar decides).
    pub fn native_slice_for(&self, agent: &str, tool: &str, server: &str) -> Option<&[Arc<NativeRule>]> {
        self.tool_slices(agent, tool)
            .and_then(|slices| slices.get(server))
            .and_then(|slice| slice.native.as_deref())
    }

    /// Every rule of `agent` calling `tool` (any server), compiled, as `why_denied` reads them.
    pub fn native_explain_for(&self, agent: &str, tool: &str) -> Option<&[Arc<NativeRule>]> {
        self.tool_slices(agent, tool)
            .and_then(|slices| slices.explain.as_deref())
    }

    /// Rules in the native fragment, of all.
    pub fn native_rules(&self) -> usize {
        self.native.iter().filter(|r| r.is_some()).count()
    }

    /// The string arguments of `tool` that no rule for `agent` reads.
    pub fn unread_strings(&self, agent: &str, tool: &str) -> Option<&HashSet<String>> {
        self.tool_slices(agent, tool).map(|s| &s.unread_strings)
    }

    fn tool_slices(&self, agent: &str, tool: &str) -> Option<&ToolSlices> {
        self.by_agent
            .get(agent)
            .and_then(|tools| tools.get(tool))
            .or_else(|| self.generic.get(tool))
    }
}

/// What the last sync attempt found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncStatus {
    /// The commit being enforced, if any loaded.
    pub commit: Option<String>,
    /// The tip of the base branch at the last fetch.
    pub fetched: Option<String>,
    /// Why the tip (or the fetch) failed, while it does.
    pub error: Option<String>,
    pub loaded_at: Option<i64>,
}

/// The current policy, swapped atomically, and the sync bookkeeping.
#[derive(Default)]
pub struct PolicyState {
    current: RwLock<Option<Arc<Enforced>>>,
    status: Mutex<SyncStatus>,
    /// The tip that last failed to load: not re-validated until the branch moves.
    failed_tip: Mutex<Option<String>>,
}

impl PolicyState {
    pub fn current(&self) -> Option<Arc<Enforced>> {
        self.current.read().expect("policy lock").clone()
    }

    pub fn status(&self) -> SyncStatus {
        self.status.lock().expect("status lock").clone()
    }

    pub fn install(&self, enforced: Enforced) {
        let commit = enforced.commit.clone();
        *self.current.write().expect("policy lock") = Some(Arc::new(enforced));
        let mut status = self.status.lock().expect("status lock");
        status.commit = Some(commit.clone());
        status.fetched = Some(commit);
        status.error = None;
        status.loaded_at = Some(crate::clock::now());
    }

    /// The fetch works again and its tip is the policy in force.
    pub fn install_status_ok(&self, tip: &str) {
        let mut status = self.status.lock().expect("status lock");
        status.fetched = Some(tip.to_string());
        status.error = None;
    }

    /// Record a fetch or load failure; the current policy stays.
    pub fn failed(&self, fetched: Option<String>, error: String) {
        let mut status = self.status.lock().expect("status lock");
        if fetched.is_some() {
            status.fetched = fetched;
        }
        status.error = Some(error);
    }

    pub(crate) fn failed_tip(&self) -> Option<String> {
        self.failed_tip.lock().expect("lock").clone()
    }

    pub(crate) fn set_failed_tip(&self, tip: Option<String>) {
        *self.failed_tip.lock().expect("lock") = tip;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn files(rules: &str) -> RepoFiles {
        RepoFiles {
            schema: Some(
                r#"entity Agent; entity McpServer;
                action "send" appliesTo { principal: [Agent], resource: [McpServer],
                  context: { input: { to: String } } };
                action "read" appliesTo { principal: [Agent], resource: [McpServer],
                  context: { input: { } } };"#
                    .into(),
            ),
            agents: BTreeMap::from([("policies/agents/a.cedar".to_string(), rules.to_string())]),
        }
    }

    #[test]
    fn slices_hold_agent_and_generic_rules() {
        let text = r#"@id("a/send/1") permit (principal == Agent::"a", action == Action::"send", resource)
              when { context.input.to like "*@acme.com" };
            @id("all/read") permit (principal, action == Action::"read", resource);"#;
        let e = Enforced::build("c1", &files(text)).unwrap();
        assert_eq!(e.slice_for("a", "send", "m").unwrap().policies().count(), 1);
        assert_eq!(e.slice_for("b", "read", "m").unwrap().policies().count(), 1);
        assert_eq!(e.slice_for("a", "read", "m").unwrap().policies().count(), 1);
        assert!(e.slice_for("b", "send", "m").is_none());
    }

    #[test]
    fn slices_split_by_server() {
        let text = r#"@id("a/send/1") permit (principal == Agent::"a", action == Action::"send", resource == McpServer::"gmail");
            @id("a/send/2") permit (principal == Agent::"a", action == Action::"send", resource == McpServer::"outlook");
            @id("a/send/3") permit (principal == Agent::"a", action == Action::"send", resource);"#;
        let e = Enforced::build("c1", &files(text)).unwrap();
        let ids = |server: &str| -> Vec<String> {
            let mut ids: Vec<String> = e
                .slice_for("a", "send", server)
                .unwrap()
                .policies()
                .map(|p| p.id().to_string())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids("gmail"), vec!["a/send/1", "a/send/3"]);
        assert_eq!(ids("other"), vec!["a/send/3"]);
        let text = r#"@id("a/send/1") permit (principal == Agent::"a", action == Action::"send", resource == McpServer::"gmail");"#;
        let e = Enforced::build("c1", &files(text)).unwrap();
        assert!(e.slice_for("a", "send", "other").is_none());
    }

    #[test]
    fn rules_outside_the_native_fragment_go_to_cedar() {
        let text = r#"@id("a/send/1") permit (principal == Agent::"a", action == Action::"send", resource)
              when { context.input.to like "*@acme.com" };
            @id("a/read/1") permit (principal is Agent, action == Action::"read", resource);"#;
        let e = Enforced::build("c1", &files(text)).unwrap();
        assert_eq!(e.native_rules(), 1);
        assert!(e.native_slice_for("a", "send", "m").is_some());
        assert!(e.native_explain_for("a", "send").is_some());
        assert!(e.native_slice_for("a", "read", "m").is_none(), "`is` is Cedar's");
        let query = |tool: &str, args: serde_json::Value| super::super::authzen::Query {
            agent: "a".into(),
            tool: tool.into(),
            server: "m".into(),
            args: args.as_object().unwrap().clone(),
            session: None,
        };
        let read = query("read", serde_json::json!({}));
        assert!(super::super::decide_natively(&e, &read).is_none());
        assert!(super::super::decide(Some(&e), &read).allowed, "Cedar decides it");
        for (to, allowed) in [("x@acme.com", true), ("x@evil.com", false)] {
            let send = query("send", serde_json::json!({ "to": to }));
            let fast = super::super::decide_natively(&e, &send).unwrap();
            assert_eq!(fast, super::super::decide_by_cedar(&e, &send));
            assert_eq!(fast.allowed, allowed);
        }
    }

    #[test]
    fn strict_validation_refuses_a_bad_policy() {
        let text = r#"@id("x") permit (principal == Agent::"a", action == Action::"send", resource)
              when { context.input.cc == "x" };"#;
        let errors = Enforced::build("c1", &files(text)).err().unwrap();
        assert!(errors.iter().any(|e| e.contains("cc")), "{errors:?}");
    }
}
