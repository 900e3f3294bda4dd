//! What a change of policy newly permits, decided without a solver: which
//! (agent, tool, server) scopes changed, the policy set each side *enforces*
//! there, how a counterexample is confirmed, and the answers as data for
//! `diff --json` (DESIGN §10), the pull request and `check --against`.
//! `crate::proof` asks the solver.
//!
//! "Enforces" matters: a call with an argument its side's schema does not
//! declare is denied (DESIGN §2). Both sides are compiled against one schema
//! per tool (the head's when it declares the tool), so the permits of the other
//! side are narrowed with `unless { context.input has <arg> }` for every
//! argument only the query schema declares: an old rule that never mentions
//! `bcc` does not allow `bcc` in the proof when it did not in fact.

use super::check::LoadedRepo;
use super::mapping;
use super::observation::Call;
use super::policies::{Owner, Rule};
use super::replay::authorize;
use super::schema::{Schema, AGENT_TYPE, SERVER_TYPE};
use super::syntax;
use super::tokens::{self, Token};
use super::types::{ArgType, Attr};
use cedar_policy::{Effect, EvalResult, Policy, PolicyId, PolicySet, Request, ResourceConstraint};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Who a scope is about: one named id, or every id except the named ones
/// (rules that name no agent, or no server, apply to those too).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Named(String),
    Others(Vec<String>),
}

impl Target {
    /// The id in reports: the name, or `*` for "any other".
    pub fn label(&self) -> &str {
        match self {
            Target::Named(name) => name,
            Target::Others(_) => "*",
        }
    }

    fn admits(&self, named: Option<&str>) -> bool {
        match (self, named) {
            (_, None) => true,
            (Target::Named(name), Some(n)) => name == n,
            (Target::Others(_), Some(_)) => false,
        }
    }

    fn condition(&self, variable: &str, entity: &str) -> String {
        let eq = |id: &str| format!("{variable} == {entity}::{}", syntax::quote(id));
        match self {
            Target::Named(name) => eq(name),
            Target::Others(named) if named.is_empty() => "true".into(),
            Target::Others(named) => format!(
                "!({})",
                named.iter().map(|n| eq(n)).collect::<Vec<_>>().join(" || ")
            ),
        }
    }
}

/// Which side of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Base,
    Head,
}

/// The two repositories being compared.
#[derive(Clone, Copy)]
pub struct Sides<'a> {
    pub base: &'a LoadedRepo,
    pub head: &'a LoadedRepo,
}

impl<'a> Sides<'a> {
    pub fn repo(&self, side: Side) -> &'a LoadedRepo {
        match side {
            Side::Base => self.base,
            Side::Head => self.head,
        }
    }
}

/// One (agent, tool, server) whose rules or schema differ between the sides.
#[derive(Debug, Clone)]
pub struct Scope {
    pub agent: Target,
    pub tool: String,
    pub server: Target,
    /// Indices into each side's `policies.rules` that can decide calls here.
    pub base_rules: Vec<usize>,
    pub head_rules: Vec<usize>,
}

impl Scope {
    /// `agent calling tool on server`, `*` for any other.
    pub fn label(&self) -> String {
        format!(
            "{} calling {} on {}",
            self.agent.label(),
            self.tool,
            self.server.label()
        )
    }

    pub fn rules(&self, side: Side) -> &[usize] {
        match side {
            Side::Base => &self.base_rules,
            Side::Head => &self.head_rules,
        }
    }

    /// Confines a policy set to this scope: a `forbid` of every other principal and resource.
    fn pin(&self) -> Policy {
        let text = format!(
            "forbid (principal, action, resource) unless {{ {} && {} }};",
            self.agent.condition("principal", AGENT_TYPE),
            self.server.condition("resource", SERVER_TYPE),
        );
        let policy: Policy = text.parse().expect("a scope pin parses");
        policy.new_id(PolicyId::new("shadowdraft:scope"))
    }
}

fn server_of(rule: &Rule) -> Option<String> {
    match rule.policy.resource_constraint() {
        ResourceConstraint::Eq(uid) if uid.type_name().to_string() == SERVER_TYPE => {
            Some(uid.id().unescaped().to_string())
        }
        _ => None,
    }
}

fn names_tool(rule: &Rule, tool: &str) -> bool {
    rule.tools
        .as_ref()
        .is_none_or(|tools| tools.iter().any(|t| t == tool))
}

/// What a rule says, without its annotations: two rules with the same content decide alike.
fn content(rule: &Rule) -> String {
    tokens::fingerprint(&rule.policy.to_string())
}

fn tools_of(repo: &LoadedRepo) -> BTreeSet<String> {
    let mut tools = BTreeSet::new();
    for rule in &repo.policies.rules {
        match &rule.tools {
            Some(named) => tools.extend(named.iter().cloned()),
            None => tools.extend(repo.schema.tools().map(str::to_string)),
        }
    }
    tools
}

/// Every (agent, tool, server) where the two sides may decide differently: the
/// rules that apply differ, or the schema's declaration of the tool does.
/// Rules that name no agent (or no server) also apply to a scope `*` of every
/// agent (server) no rule names.
pub fn changed_scopes(sides: Sides<'_>) -> Vec<Scope> {
    let Sides { base, head } = sides;
    let named_agents: Vec<String> = [base, head]
        .iter()
        .flat_map(|repo| repo.policies.rules.iter().filter_map(|r| r.agent.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut agents: Vec<Target> = named_agents.iter().cloned().map(Target::Named).collect();
    agents.push(Target::Others(named_agents));
    let tools: BTreeSet<String> = tools_of(base).into_iter().chain(tools_of(head)).collect();
    let mut scopes = Vec::new();
    for tool in &tools {
        let schema_changed = base.schema.tool(tool) != head.schema.tool(tool);
        for agent in &agents {
            let candidates = |repo: &LoadedRepo| -> Vec<usize> {
                let indices = match agent {
                    Target::Named(a) => repo.policies.slice_indices(a, tool),
                    Target::Others(_) => (0..repo.policies.rules.len()).collect(),
                };
                indices
                    .into_iter()
                    .filter(|&i| {
                        let rule = &repo.policies.rules[i];
                        agent.admits(rule.agent.as_deref()) && names_tool(rule, tool)
                    })
                    .collect()
            };
            let (base_candidates, head_candidates) = (candidates(base), candidates(head));
            if base_candidates.is_empty() && head_candidates.is_empty() {
                continue;
            }
            let named_servers: Vec<String> = base_candidates
                .iter()
                .filter_map(|&i| server_of(&base.policies.rules[i]))
                .chain(
                    head_candidates
                        .iter()
                        .filter_map(|&i| server_of(&head.policies.rules[i])),
                )
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut servers: Vec<Target> = named_servers.iter().cloned().map(Target::Named).collect();
            servers.push(Target::Others(named_servers));
            for server in servers {
                let pick = |repo: &LoadedRepo, indices: &[usize]| -> Vec<usize> {
                    let admitted = |&i: &usize| server.admits(server_of(&repo.policies.rules[i]).as_deref());
                    indices.iter().copied().filter(admitted).collect()
                };
                let base_rules = pick(base, &base_candidates);
                let head_rules = pick(head, &head_candidates);
                if base_rules.is_empty() && head_rules.is_empty() {
                    continue;
                }
                let contents = |repo: &LoadedRepo, rules: &[usize]| -> Vec<String> {
                    let mut c: Vec<String> =
                        rules.iter().map(|&i| content(&repo.policies.rules[i])).collect();
                    c.sort();
                    c
                };
                if !schema_changed && contents(base, &base_rules) == contents(head, &head_rules) {
                    continue;
                }
                scopes.push(Scope {
                    agent: agent.clone(),
                    tool: tool.clone(),
                    server,
                    base_rules,
                    head_rules,
                });
            }
        }
    }
    scopes
}

/// Argument paths `wider` declares and `narrower` does not; an error names a
/// path whose type the two schemas disagree on.
fn undeclared(
    wider: &BTreeMap<String, Attr>,
    narrower: &BTreeMap<String, Attr>,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> Result<(), String> {
    for (name, attr) in wider {
        prefix.push(name.clone());
        match (narrower.get(name).map(|a| &a.ty), &attr.ty) {
            (None, _) => out.push(prefix.clone()),
            (Some(ArgType::Record(inner)), ArgType::Record(outer)) => undeclared(outer, inner, prefix, out)?,
            (Some(a), b) if a == b => {}
            (Some(a), b) => {
                return Err(format!(
                    "the two schemas disagree on the type of `{}` ({a} and {b})",
                    prefix.join(".")
                ))
            }
        }
        prefix.pop();
    }
    Ok(())
}

/// How one side enforces calls in a scope, expressed against the query schema.
#[derive(Debug, Clone)]
struct Enforcement {
    /// The side's schema does not declare the tool: every call is denied.
    denies_all: bool,
    /// `unless` body narrowing every permit: arguments only the query schema declares.
    narrowing: Option<Value>,
}

/// The schema the queries of one scope compile against.
#[derive(Debug, Clone)]
pub enum QuerySchema {
    /// One side's schema declares the tool as (or more than) the other does.
    Of(Side),
    /// Each side declares arguments the other does not: both, for this tool.
    Union(Box<Schema>),
}

/// One scope made ready for the solver: the schema both sides compile
/// against, and how each side's rules are turned into the sets it enforces.
#[derive(Clone)]
pub struct Frame<'a> {
    pub scope: &'a Scope,
    pub sides: Sides<'a>,
    pub query: QuerySchema,
    base: Enforcement,
    head: Enforcement,
}

/// Every attribute optional, all the way down: what only one side declares
/// may be absent from the other side's calls.
fn optional(attrs: &BTreeMap<String, Attr>) -> BTreeMap<String, Attr> {
    attrs
        .iter()
        .map(|(name, attr)| {
            let ty = match &attr.ty {
                ArgType::Record(inner) => ArgType::Record(optional(inner)),
                other => other.clone(),
            };
            (name.clone(), Attr { ty, required: false })
        })
        .collect()
}

impl<'a> Frame<'a> {
    /// Frame a scope; an error when the two schemas cannot be compared for its tool.
    pub fn new(sides: Sides<'a>, scope: &'a Scope) -> Result<Frame<'a>, String> {
        let tool = scope.tool.as_str();
        let (base_decl, head_decl) = (sides.base.schema.tool(tool), sides.head.schema.tool(tool));
        let query = match (base_decl, head_decl) {
            (None, None) => return Err(format!("neither schema declares the tool `{tool}`")),
            (Some(_), None) => QuerySchema::Of(Side::Base),
            (None, Some(_)) => QuerySchema::Of(Side::Head),
            (Some(b), Some(h)) => {
                let (mut base_only, mut head_only) = (Vec::new(), Vec::new());
                undeclared(b, h, &mut Vec::new(), &mut base_only)?;
                undeclared(h, b, &mut Vec::new(), &mut head_only)?;
                match (base_only.is_empty(), head_only.is_empty()) {
                    (true, _) => QuerySchema::Of(Side::Head),
                    (false, true) => QuerySchema::Of(Side::Base),
                    (false, false) => {
                        let mut union = sides.head.schema.clone();
                        let conflicts = union.add_tool(tool, &optional(b));
                        if let Some(c) = conflicts.first() {
                            return Err(format!(
                                "the two schemas disagree on the type of `{}` ({} and {})",
                                c.path.join("."),
                                c.schema_type,
                                c.observed
                            ));
                        }
                        QuerySchema::Union(Box::new(union))
                    }
                }
            }
        };
        let mut frame = Frame {
            scope,
            sides,
            query,
            base: Enforcement {
                denies_all: true,
                narrowing: None,
            },
            head: Enforcement {
                denies_all: true,
                narrowing: None,
            },
        };
        let wider = frame
            .schema()
            .tool(tool)
            .expect("the query schema declares the tool")
            .clone();
        let enforcement = |own: Option<&BTreeMap<String, Attr>>| -> Result<Enforcement, String> {
            let Some(own) = own else {
                return Ok(Enforcement {
                    denies_all: true,
                    narrowing: None,
                });
            };
            let mut paths = Vec::new();
            undeclared(&wider, own, &mut Vec::new(), &mut paths)?;
            Ok(Enforcement {
                denies_all: false,
                narrowing: (!paths.is_empty()).then(|| unless_any_present(&paths)),
            })
        };
        frame.base = enforcement(base_decl)?;
        frame.head = enforcement(head_decl)?;
        Ok(frame)
    }

    /// The schema the queries compile against.
    pub fn schema(&self) -> &Schema {
        match &self.query {
            QuerySchema::Of(side) => &self.sides.repo(*side).schema,
            QuerySchema::Union(schema) => schema,
        }
    }

    fn enforcement(&self, side: Side) -> &Enforcement {
        match side {
            Side::Base => &self.base,
            Side::Head => &self.head,
        }
    }

    /// The set `side` enforces with only `rules` (indices into its rules), and
    /// `extra` policies (blocks, drafted scopes) added as they are.
    pub fn set(&self, side: Side, rules: &[usize], extra: &[Policy]) -> PolicySet {
        let mut set = PolicySet::new();
        set.add(self.scope.pin()).expect("unique id");
        for policy in extra {
            set.add(policy.clone()).expect("generated ids are unique");
        }
        let enforcement = self.enforcement(side);
        if enforcement.denies_all {
            return set;
        }
        let repo = self.sides.repo(side);
        for &i in rules {
            let policy = &repo.policies.rules[i].policy;
            let policy = match (&enforcement.narrowing, policy.effect()) {
                (Some(unless), Effect::Permit) => narrow(policy, unless),
                _ => policy.clone(),
            };
            set.add(policy).expect("ids are unique");
        }
        set
    }

    /// The whole slice `side` enforces in the scope.
    pub fn all(&self, side: Side, extra: &[Policy]) -> PolicySet {
        self.set(side, self.scope.rules(side), extra)
    }

    /// A rule of `side` together with that side's `forbid`s in the scope: the rule as it acts.
    pub fn acting(&self, side: Side, rule: usize) -> Vec<usize> {
        let repo = self.sides.repo(side);
        let mut rules = vec![rule];
        rules.extend(
            self.scope
                .rules(side)
                .iter()
                .copied()
                .filter(|&i| i != rule && repo.policies.rules[i].policy.effect() == Effect::Forbid),
        );
        rules
    }

    /// Whether `side` allows `call` with only `rules` (`None`: its whole slice)
    /// and `extra`, through the request mapping and the Cedar authorizer, as
    /// enforcement decides: the confirmation every counterexample must pass.
    pub fn allows(&self, side: Side, rules: Option<&[usize]>, extra: &[Policy], call: &Call) -> bool {
        let repo = self.sides.repo(side);
        let Ok(request) = mapping::request(
            &call.agent,
            &call.tool,
            &call.server,
            &call.args,
            call.session.as_ref(),
            &repo.schema,
        ) else {
            return false;
        };
        let mut set = match rules {
            None => repo.policies.slice(&call.agent, &call.tool),
            Some(rules) => {
                let mut set = PolicySet::new();
                for &i in rules {
                    set.add(repo.policies.rules[i].policy.clone())
                        .expect("ids are unique");
                }
                set
            }
        };
        for policy in extra {
            set.add(policy.clone()).expect("generated ids are unique");
        }
        authorize(&set, &request).allowed
    }
}

/// `unless { context.input has a || context.input has b.c }`, as Cedar's JSON expression.
fn unless_any_present(paths: &[Vec<String>]) -> Value {
    let test = paths
        .iter()
        .map(|p| format!("({})", syntax::has_path(p)))
        .collect::<Vec<_>>()
        .join(" || ");
    condition_body(&format!(
        "permit (principal, action, resource) when {{ {test} }};"
    ))
}

fn condition_body(text: &str) -> Value {
    let policy: Policy = text.parse().expect("a generated condition parses");
    policy.to_json().expect("a parsed policy has JSON")["conditions"][0]["body"].clone()
}

/// `policy` with one more `unless` clause.
fn narrow(policy: &Policy, unless: &Value) -> Policy {
    let mut est = policy.to_json().expect("a parsed policy has JSON");
    if let Some(conditions) = est["conditions"].as_array_mut() {
        conditions.push(json!({"kind": "unless", "body": unless}));
    }
    Policy::from_json(Some(policy.id().clone()), est).expect("a narrowed policy is a policy")
}

/// A permit of everything a rule's head names: principal, action and resource, no conditions.
pub fn head_only(policy: &Policy, id: &str) -> Policy {
    let mut est = policy.to_json().expect("a parsed policy has JSON");
    est["effect"] = json!("permit");
    est["conditions"] = json!([]);
    if let Some(obj) = est.as_object_mut() {
        obj.remove("annotations");
    }
    Policy::from_json(Some(PolicyId::new(id)), est).expect("a rule head is a policy")
}

/// A Cedar literal for a value the solver chose.
fn literal(value: &EvalResult) -> String {
    match value {
        EvalResult::Bool(b) => b.to_string(),
        EvalResult::Long(i) => i.to_string(),
        EvalResult::String(s) => syntax::quote(s),
        EvalResult::EntityUid(uid) => uid.to_string(),
        EvalResult::ExtensionValue(text) => text.clone(),
        EvalResult::Set(items) => format!("[{}]", items.iter().map(literal).collect::<Vec<_>>().join(", ")),
        EvalResult::Record(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}: {}", syntax::quote(k), literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One test per value the request carries, each guarded by the `has` tests it needs.
fn leaf_tests(expr: &str, guards: &[String], value: &EvalResult, out: &mut Vec<String>) {
    let guarded = |test: String| {
        let mut all = guards.to_vec();
        all.push(test);
        format!("({})", all.join(" && "))
    };
    match value {
        EvalResult::Record(fields) => {
            for (name, field) in fields.iter() {
                let quoted = syntax::quote(name);
                let mut inner = guards.to_vec();
                inner.push(format!("{expr} has {quoted}"));
                leaf_tests(&format!("{expr}[{quoted}]"), &inner, field, out);
            }
        }
        EvalResult::Set(items) if items.is_empty() => out.push(guarded(format!("{expr}.isEmpty()"))),
        _ => out.push(guarded(format!("{expr} == {}", literal(value)))),
    }
}

/// How much of a counterexample a block rules out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// Every call that shares all its values: the next answer differs somewhere.
    Same,
    /// Every call that shares any of its values: the next answer differs everywhere.
    Overlapping,
}

/// A `forbid` that rules out the counterexample `request` (and calls like it,
/// as `how` says), so the solver's next answer is another call.
pub fn block(request: &Request, n: usize, how: Blocking) -> Option<Policy> {
    let context = request.context()?;
    let mut tests = Vec::new();
    for (key, _) in context.clone() {
        let value = context.get(&key)?;
        let expr = format!("context[{}]", syntax::quote(&key));
        leaf_tests(&expr, &[], &value, &mut tests);
    }
    if tests.is_empty() {
        return None;
    }
    let join = match how {
        Blocking::Same => " && ",
        Blocking::Overlapping => " || ",
    };
    let text = format!(
        "forbid (principal, action, resource) when {{ {} }};",
        tests.join(join)
    );
    let policy: Policy = text.parse().ok()?;
    Some(policy.new_id(PolicyId::new(format!("shadowdraft:seen{n}"))))
}

/// A call as DESIGN §1 writes it.
pub fn call_json(call: &Call) -> Value {
    let mut out = json!({
        "agent": call.agent,
        "tool": call.tool,
        "server": call.server,
        "args": Value::Object(call.args.clone()),
    });
    if let Some(session) = &call.session {
        out["session"] = Value::Object(session.clone());
    }
    out
}

/// A value as JSON, secrets redacted, cut short; `<` escaped so no value can
/// pass for markup (such as the markers around the bot's part of a PR body).
fn short(value: &Value) -> String {
    let text = super::secrets::redact(&value.to_string()).replace('<', "\\u003c");
    if text.chars().count() > 48 {
        format!("{}…", text.chars().take(47).collect::<String>())
    } else {
        text
    }
}

/// Inline code that a backtick in the text cannot close early.
fn code_span(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

fn assignments(map: &Map<String, Value>) -> String {
    map.iter()
        .map(|(name, value)| code_span(&format!("{name} = {}", short(value))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A call as a reviewer reads it: "`send_money` on `bank`: `recipient = "ZZ00…"`".
pub fn call_text(call: &Call) -> String {
    let args = match call.args.is_empty() {
        true => "no arguments".to_string(),
        false => assignments(&call.args),
    };
    let session = match &call.session {
        Some(session) if !session.is_empty() => format!(" (session {})", assignments(session)),
        _ => String::new(),
    };
    let agent = if call.agent.is_empty() {
        "\"\"".to_string()
    } else {
        call.agent.clone()
    };
    format!(
        "{} calls {} on {} with {args}{session}",
        code_span(&agent),
        code_span(&call.tool),
        code_span(&call.server)
    )
}

/// A rule's conditions, short: its `when`/`unless` text with `context.input.` left out.
pub fn conditions_text(policy: &Policy) -> String {
    let text = policy.to_string();
    let tokens = tokens::tokenize(&text);
    // The conditions follow the parenthesis that closes the head after `permit`/`forbid`.
    let effect = tokens
        .iter()
        .position(|t| matches!(t, Token::Ident("permit" | "forbid")))
        .unwrap_or(0);
    let mut depth = 0usize;
    let mut end = tokens.len();
    for (i, token) in tokens.iter().enumerate().skip(effect) {
        match token {
            Token::Punct("(") => depth += 1,
            Token::Punct(")") => {
                depth -= 1;
                if depth == 0 {
                    end = i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let rest = tokens.get(end..).unwrap_or_default();
    let mut out = String::new();
    for token in rest {
        let piece = match *token {
            Token::Ident(t) | Token::Str(t) | Token::Punct(t) => t,
        };
        if matches!(piece, ";" | "{" | "}") {
            continue;
        }
        let glue = matches!(piece, "." | "(" | ")" | "," | "[" | "]") || out.ends_with(['.', '(', '[', '!']);
        if !glue && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    let out = out
        .replace("context.input.", "")
        .replace("context.input has ", "has ");
    let out = out.trim().to_string();
    match out.chars().count() {
        0 => "any arguments".into(),
        n if n > 400 => format!("{}…", out.chars().take(399).collect::<String>()),
        _ => out,
    }
}

/// A call one side allows and the other denies, as data and as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub call: Value,
    pub text: String,
}

impl Example {
    pub fn of(call: &Call) -> Example {
        Example {
            call: call_json(call),
            text: call_text(call),
        }
    }
}

/// Examples as the calls alone: DESIGN §10's `<Call>`.
fn calls_only<S: serde::Serializer>(examples: &[Example], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(examples.iter().map(|e| &e.call))
}

/// One entry of `diff --json` (DESIGN §10). A direction the solver did not
/// decide in time is `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeDiff {
    pub agent: String,
    pub tool: String,
    pub server: String,
    pub head_implies_base: Option<bool>,
    pub base_implies_head: Option<bool>,
    #[serde(serialize_with = "calls_only")]
    pub newly_permitted: Vec<Example>,
    #[serde(serialize_with = "calls_only")]
    pub no_longer_permitted: Vec<Example>,
    pub timed_out: bool,
    /// Why the scope could not be compared (e.g. the schemas disagree on a type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Counterexamples the solver gave that did not replay (a bug: never shown as examples).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<Value>,
}

impl ScopeDiff {
    pub fn new(scope: &Scope) -> ScopeDiff {
        ScopeDiff {
            agent: scope.agent.label().to_string(),
            tool: scope.tool.clone(),
            server: scope.server.label().to_string(),
            head_implies_base: None,
            base_implies_head: None,
            newly_permitted: Vec::new(),
            no_longer_permitted: Vec::new(),
            timed_out: false,
            error: None,
            unconfirmed: Vec::new(),
        }
    }
}

/// How a rule changed between the sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Edited,
    Removed,
}

/// How much of what a new rule allows the base already allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Newness {
    /// The base denies every call the rule allows.
    AllNew,
    /// The base already allows some of them.
    PartlyNew,
    /// The base already allows all of them.
    NothingNew,
    /// The solver did not say in time.
    Unknown,
}

/// One rule added, edited or removed, and what that changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleChange {
    pub id: String,
    pub change: Change,
    pub owner: Owner,
    pub scope: String,
    /// The rule's conditions, short (for a removed rule, as it was).
    pub conditions: String,
    pub newness: Newness,
    /// Calls the change allows that were denied before (for an edit: that the rule as it was denied).
    pub adds: Vec<Example>,
    /// Calls allowed before that the change denies.
    pub removes: Vec<Example>,
    pub timed_out: bool,
}

/// A rule that never allows anything, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Idle {
    pub id: String,
    /// Empty: its own conditions never hold (`always-denies`); else the `forbid`s that shadow it.
    pub shadowed_by: Vec<String>,
}

/// Calls the head newly permits outside the drafted rules' own scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Beyond {
    pub scope: String,
    pub examples: Vec<Example>,
}

/// What the pull request and `check --against` show.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Review {
    pub rules: Vec<RuleChange>,
    pub beyond: Vec<Beyond>,
    pub always_denies: Vec<String>,
    pub shadowed: Vec<Idle>,
    /// What could not be decided within the time limit.
    pub timed_out: Vec<String>,
    /// Scopes or rules that could not be compared, with why.
    pub errors: Vec<String>,
    /// Counterexamples that did not replay: a bug, reported, never shown as examples.
    pub unconfirmed: Vec<String>,
}

impl Review {
    /// Everything newly permitted lies within the drafted rules' scope, proved.
    pub fn nothing_beyond(&self) -> bool {
        self.beyond.is_empty() && self.timed_out.is_empty() && self.errors.is_empty()
    }
}

/// The "What this PR newly permits" section of a proposal, as data.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Section {
    /// The solver that proved it (`cvc5 1.0.3`).
    pub solver: String,
    /// Why nothing was proved (no solver, a side that does not load).
    pub unavailable: Option<String>,
    /// The branch against the base.
    pub review: Review,
    /// Drafted rules a person edited on the branch, against the version the bot drafted.
    pub edits: Vec<RuleChange>,
    /// Everything newly permitted lies within the drafted rules, proved.
    pub nothing_beyond: bool,
    /// The time limit each query had.
    pub timeout_seconds: u64,
}

impl Section {
    /// What `check --against <base>` says of this branch, for the check run:
    /// whether it fails (calls beyond the drafted rules), and a paragraph.
    pub fn check_against(&self, base: &str) -> (bool, String) {
        let failed = !self.review.beyond.is_empty();
        let mut text = if let Some(why) = &self.unavailable {
            format!("\n\n`check --against {base}`: not proved ({why}).")
        } else if failed {
            let scopes: Vec<String> = self
                .review
                .beyond
                .iter()
                .map(|b| format!("`{}`", b.scope))
                .collect();
            format!(
                "\n\n`check --against {base}`: **failed**: the branch permits calls `{base}` denies outside the drafted rules ({}).",
                scopes.join(", ")
            )
        } else if self.nothing_beyond {
            format!(
                "\n\n`check --against {base}`: passed: every call the branch newly permits is allowed by a drafted rule (proved with {}).",
                self.solver
            )
        } else {
            format!(
                "\n\n`check --against {base}`: not decided within {} s per query: {}.",
                self.timeout_seconds,
                self.review
                    .timed_out
                    .iter()
                    .chain(&self.review.errors)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        let idle = self.review.always_denies.len() + self.review.shadowed.len();
        if idle > 0 {
            text.push_str(&format!(
                " {idle} rule(s) never allow anything (always-denies, or shadowed by a `forbid`)."
            ));
        }
        (failed, text)
    }
}

/// The files a draft leaves: `files` with its changes applied.
pub fn applied(
    files: &super::policies::RepoFiles,
    changes: &BTreeMap<String, super::draft::FileChange>,
) -> super::policies::RepoFiles {
    let mut out = files.clone();
    for (path, change) in changes {
        if path == super::policies::SCHEMA_PATH {
            out.schema = Some(change.after.clone());
        } else {
            out.agents.insert(path.clone(), change.after.clone());
        }
    }
    out
}

/// The rules of the head that are new or changed, and of the base that are gone, by `@id`.
pub fn rule_changes(sides: Sides<'_>) -> Vec<(Change, Option<usize>, Option<usize>)> {
    let index = |repo: &LoadedRepo| -> BTreeMap<String, usize> {
        repo.policies
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.to_string(), i))
            .collect()
    };
    let (base, head) = (index(sides.base), index(sides.head));
    let mut out = Vec::new();
    for (id, &h) in &head {
        match base.get(id) {
            None => out.push((Change::Added, None, Some(h))),
            Some(&b) if content(&sides.base.policies.rules[b]) != content(&sides.head.policies.rules[h]) => {
                out.push((Change::Edited, Some(b), Some(h)))
            }
            Some(_) => {}
        }
    }
    for (id, &b) in &base {
        if !head.contains_key(id) {
            out.push((Change::Removed, Some(b), None));
        }
    }
    out
}

/// The policies a scope check adds to the base: each new drafted rule as it
/// is, and for a drafted rule a person edited, everything its head names.
pub fn drafted_scope(sides: Sides<'_>, scope: &Scope) -> Vec<Policy> {
    let base_ids: BTreeSet<String> = sides
        .base
        .policies
        .rules
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    let base_contents: BTreeSet<String> = sides.base.policies.rules.iter().map(content).collect();
    scope
        .head_rules
        .iter()
        .map(|&i| &sides.head.policies.rules[i])
        .filter(|r| r.policy.effect() == Effect::Permit)
        .filter_map(|rule| match rule.owner {
            Owner::Bot if !base_contents.contains(&content(rule)) => Some(
                rule.policy
                    .new_id(PolicyId::new(format!("shadowdraft:drafted:{}", rule.id))),
            ),
            Owner::Edited
                if !base_ids.contains(&rule.id.to_string()) || !base_contents.contains(&content(rule)) =>
            {
                Some(head_only(
                    &rule.policy,
                    &format!("shadowdraft:drafted:{}", rule.id),
                ))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::check::load;
    use crate::core::policies::RepoFiles;

    const SCHEMA: &str = r#"entity Agent; entity McpServer;
        action "pay" appliesTo { principal: [Agent], resource: [McpServer],
          context: { input: { amount: Long, "to"?: String } } };
        action "read" appliesTo { principal: [Agent], resource: [McpServer],
          context: { input: { "path"?: String } } };"#;

    fn repo(schema: &str, rules: &str) -> LoadedRepo {
        load(&RepoFiles {
            schema: Some(schema.to_string()),
            agents: BTreeMap::from([("policies/agents/a.cedar".to_string(), rules.to_string())]),
        })
        .unwrap()
    }

    const PAY: &str = r#"@id("a/pay/1") permit (principal == Agent::"a", action == Action::"pay", resource == McpServer::"bank") when { context.input.amount <= 100 };"#;

    #[test]
    fn only_scopes_whose_rules_differ_are_compared() {
        let base = repo(SCHEMA, PAY);
        let wider = PAY.replace("<= 100", "<= 500");
        let head = repo(SCHEMA, &format!("{wider}\n@id(\"a/read/1\") permit (principal == Agent::\"a\", action == Action::\"read\", resource == McpServer::\"fs\");"));
        let scopes = changed_scopes(Sides {
            base: &base,
            head: &head,
        });
        let labels: Vec<String> = scopes.iter().map(Scope::label).collect();
        assert_eq!(labels, vec!["a calling pay on bank", "a calling read on fs"]);
        assert_eq!(scopes[0].base_rules, vec![0]);
        assert!(scopes[1].base_rules.is_empty());
        let same = changed_scopes(Sides {
            base: &base,
            head: &base,
        });
        assert!(same.is_empty(), "an unchanged repository has nothing to compare");
    }

    #[test]
    fn rules_for_every_agent_get_a_scope_for_the_agents_no_rule_names() {
        let base = repo(SCHEMA, PAY);
        let head = repo(
            SCHEMA,
            &format!("{PAY}\n@id(\"all\") permit (principal, action == Action::\"read\", resource);"),
        );
        let labels: Vec<String> = changed_scopes(Sides {
            base: &base,
            head: &head,
        })
        .iter()
        .map(Scope::label)
        .collect();
        assert_eq!(labels, vec!["a calling read on *", "* calling read on *"]);
    }

    #[test]
    fn a_new_argument_in_the_schema_is_denied_on_the_side_that_does_not_declare_it() {
        let narrow = SCHEMA.replace(r#", "to"?: String"#, "");
        let base = repo(&narrow, PAY);
        let head = repo(SCHEMA, PAY);
        let sides = Sides {
            base: &base,
            head: &head,
        };
        let scopes = changed_scopes(sides);
        assert_eq!(scopes.len(), 1, "the schema changed for pay");
        let frame = Frame::new(sides, &scopes[0]).unwrap();
        assert!(matches!(frame.query, QuerySchema::Of(Side::Head)));
        let base_set = frame.all(Side::Base, &[]).to_string();
        assert!(base_set.contains("unless"), "{base_set}");
        assert!(base_set.contains("has to"), "{base_set}");
        let head_set = frame.all(Side::Head, &[]).to_string();
        assert!(!head_set.contains("has to"), "{head_set}");
        let call = |args: Value| Call {
            agent: "a".into(),
            tool: "pay".into(),
            server: "bank".into(),
            args: args.as_object().unwrap().clone(),
            count: 1,
            first_seen: None,
            last_seen: None,
            decision: None,
            trace_id: None,
            session: None,
        };
        let with_to = call(json!({"amount": 5, "to": "x"}));
        assert!(frame.allows(Side::Head, None, &[], &with_to));
        assert!(
            !frame.allows(Side::Base, None, &[], &with_to),
            "base's schema does not declare `to`"
        );
        assert!(frame.allows(Side::Base, None, &[], &call(json!({"amount": 5}))));
    }

    #[test]
    fn disagreeing_types_cannot_be_compared() {
        let other = SCHEMA.replace(r#""to"?: String"#, r#""to"?: Long"#);
        let base = repo(&other, PAY);
        let head = repo(SCHEMA, PAY);
        let sides = Sides {
            base: &base,
            head: &head,
        };
        let scopes = changed_scopes(sides);
        let Err(e) = Frame::new(sides, &scopes[0]) else {
            panic!("the schemas disagree on a type")
        };
        assert!(e.contains("`to`"), "{e}");
    }

    #[test]
    fn rule_changes_are_found_by_id() {
        let base = repo(SCHEMA, &format!("{PAY}\n@id(\"gone\") permit (principal == Agent::\"a\", action == Action::\"read\", resource);"));
        let edited = PAY.replace("<= 100", "<= 50");
        let head = repo(SCHEMA, &format!("{edited}\n@id(\"new\") permit (principal == Agent::\"b\", action == Action::\"read\", resource);"));
        let changes: Vec<Change> = rule_changes(Sides {
            base: &base,
            head: &head,
        })
        .iter()
        .map(|c| c.0)
        .collect();
        assert_eq!(changes, vec![Change::Edited, Change::Added, Change::Removed]);
    }

    #[test]
    fn conditions_read_short_and_calls_read_as_calls() {
        let p: Policy = PAY.parse().unwrap();
        assert_eq!(conditions_text(&p), "when amount <= 100");
        let bare: Policy = r#"permit (principal, action, resource);"#.parse().unwrap();
        assert_eq!(conditions_text(&bare), "any arguments");
        let call = Call {
            agent: "billing-bot".into(),
            tool: "send_money".into(),
            server: "bank".into(),
            args: json!({"recipient": "ZZ00".repeat(20), "amount": 5})
                .as_object()
                .unwrap()
                .clone(),
            count: 1,
            first_seen: None,
            last_seen: None,
            decision: None,
            trace_id: None,
            session: Some(json!({"user": "u-1"}).as_object().unwrap().clone()),
        };
        let text = call_text(&call);
        assert!(
            text.starts_with("`billing-bot` calls `send_money` on `bank` with "),
            "{text}"
        );
        assert!(
            text.contains("`amount = 5`") && text.contains("`recipient = \"ZZ00"),
            "{text}"
        );
        assert!(text.contains("…`"), "{text}");
        assert!(text.ends_with("(session `user = \"u-1\"`)"), "{text}");
        let mut odd = call.clone();
        odd.session = None;
        odd.args = json!({"q": "a`b <!-- x -->"}).as_object().unwrap().clone();
        assert!(
            call_text(&odd).ends_with(r#"with `` q = "a`b \u003c!-- x -->" ``"#),
            "{}",
            call_text(&odd)
        );
    }

    #[test]
    fn a_block_forbids_the_counterexample() {
        use crate::core::mapping::request;
        let schema = Schema::parse(SCHEMA).unwrap();
        let args = json!({"amount": 7, "to": "q\"z"}).as_object().unwrap().clone();
        let r = request("a", "pay", "bank", &args, None, &schema).unwrap();
        let other = json!({"amount": 8, "to": "q\"z"}).as_object().unwrap().clone();
        let other = request("a", "pay", "bank", &other, None, &schema).unwrap();
        let elsewhere = json!({"amount": 8}).as_object().unwrap().clone();
        let elsewhere = request("a", "pay", "bank", &elsewhere, None, &schema).unwrap();
        for (how, other_allowed) in [(Blocking::Same, true), (Blocking::Overlapping, false)] {
            let mut set = PolicySet::new();
            set.add(r#"permit (principal, action, resource);"#.parse().unwrap())
                .unwrap();
            set.add(block(&r, 1, how).unwrap()).unwrap();
            assert!(!authorize(&set, &r).allowed, "{how:?}");
            assert_eq!(authorize(&set, &other).allowed, other_allowed, "{how:?}");
            assert!(authorize(&set, &elsewhere).allowed, "{how:?}");
        }
    }
}
