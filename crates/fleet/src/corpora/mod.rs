//! Task corpora modelled on two public agent benchmarks, for what the fleet's agents do not
//! exercise: tasks (a user's request and the tool calls that serve it) rather than a stream of
//! calls, held out by task, and attacks that reuse the same tools and argument shapes.
//!
//! * [`Corpus::assistant`]: four personal-assistant suites (workspace, travel, banking, chat).
//!   Read-only tools look things up by free-text queries and by *lists of names* (hotels,
//!   restaurants, rental companies); held-out tasks look up names never seen in training.
//!   Injection tasks send mail, money, files, invitations or fetches to an attacker.
//! * [`Corpus::customer_service`]: a retail and an airline support agent. Every call carries a
//!   session whose `user` is the customer being served; held-out tasks belong to customers never
//!   seen in training, so their user, order, item, reservation and payment ids are all new.
//!   Attacks are made in one customer's session with *another* customer's ids: those that change
//!   a user id can be told apart only by relating the id to the session.
//!
//! Both are small (tens of tasks) and deterministic per seed, like the corpora they model.

mod assistant;
mod customer_service;

use crate::rng::Rng;
use crate::Split;
use serde_json::{json, Map, Value};

/// A set of tasks over one tool catalogue.
pub struct Corpus {
    pub name: &'static str,
    /// MCP `tools/list` result.
    pub catalogue: Value,
    pub tasks: Vec<Task>,
}

/// One task: the calls an agent made to serve one request, in order.
pub struct Task {
    pub split: Split,
    /// `legit` for train and held-out tasks; the attack kind for attack tasks.
    pub label: &'static str,
    /// The agent (suite) it belongs to.
    pub agent: &'static str,
    /// Observed calls as the CLI reads them; for attacks, only the hostile calls.
    pub calls: Vec<Value>,
}

impl Corpus {
    /// Four assistant suites; see the module documentation.
    pub fn assistant(seed: u64) -> Corpus {
        assistant::corpus(seed)
    }

    /// A retail and an airline support agent with sessions; see the module documentation.
    pub fn customer_service(seed: u64) -> Corpus {
        customer_service::corpus(seed)
    }

    /// The tasks of one split.
    pub fn tasks(&self, split: Split) -> impl Iterator<Item = &Task> + '_ {
        self.tasks.iter().filter(move |t| t.split == split)
    }

    /// Every call of one split, task after task.
    pub fn calls(&self, split: Split) -> impl Iterator<Item = &Value> + '_ {
        self.tasks(split).flat_map(|t| t.calls.iter())
    }
}

/// JSON-schema type of one tool parameter.
#[derive(Clone, Copy)]
pub(crate) enum Param {
    Str,
    /// A string with a closed set of values.
    OneOf(&'static [&'static str]),
    Int,
    Number,
    Bool,
    Strings,
    /// An array of objects with these string-or-number fields.
    Records(&'static [(&'static str, Param)]),
}

fn param_schema(param: Param) -> Value {
    match param {
        Param::Str => json!({"type": "string"}),
        Param::OneOf(values) => json!({"type": "string", "enum": values}),
        Param::Int => json!({"type": "integer"}),
        Param::Number => json!({"type": "number"}),
        Param::Bool => json!({"type": "boolean"}),
        Param::Strings => json!({"type": "array", "items": {"type": "string"}}),
        Param::Records(fields) => {
            let props: Map<String, Value> = fields
                .iter()
                .map(|(name, p)| (name.to_string(), param_schema(*p)))
                .collect();
            json!({"type": "array", "items": {"type": "object", "properties": props}})
        }
    }
}

/// A catalogue tool: name, description, parameters with `true` for required ones. Like the
/// benchmarks' tools, none carries MCP annotations: risk comes from the names.
pub(crate) struct ToolDef {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) params: &'static [(&'static str, Param, bool)],
}

pub(crate) fn catalogue(tools: &[ToolDef]) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| {
            let props: Map<String, Value> = t
                .params
                .iter()
                .map(|(name, p, _)| (name.to_string(), param_schema(*p)))
                .collect();
            let required: Vec<&str> = t.params.iter().filter(|p| p.2).map(|p| p.0).collect();
            json!({"name": t.name, "description": t.description,
                   "inputSchema": {"type": "object", "properties": props, "required": required}})
        })
        .collect();
    json!({ "tools": tools })
}

/// One observed call; `session` only when the agent serves someone.
pub(crate) fn call(agent: &str, server: &str, tool: &str, args: Value, session: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("agent".into(), Value::from(agent));
    m.insert("tool".into(), Value::from(tool));
    m.insert("server".into(), Value::from(server));
    m.insert("args".into(), args);
    if let Some(session) = session {
        m.insert("session".into(), session.clone());
    }
    Value::Object(m)
}

/// `n` digits, the first not zero.
pub(crate) fn digits(rng: &mut Rng, n: usize) -> String {
    let mut s = rng.inclusive(1, 9).to_string();
    rng.push_chars(&mut s, n - 1, b"0123456789");
    s
}

/// Between `lo` and `hi` distinct elements of `xs`, in random order.
pub(crate) fn some<X: Clone>(rng: &mut Rng, xs: &[X], lo: usize, hi: usize) -> Vec<X> {
    let k = rng.inclusive(lo as i64, hi as i64) as usize;
    rng.sample_distinct(xs, k)
}
