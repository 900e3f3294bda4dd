//! Deciding rules of the drafted fragment without Cedar: the node's fast path
//! for a call no cache has seen. Cedar stays the reference: a rule compiles
//! here only if every part of it is in the fragment below (else the node
//! asks Cedar for every slice it is in), and any evaluation error sends the
//! whole call to Cedar, so error texts and odd cases are Cedar's own.
//! `tests/enforce.rs` decides every held-out and attack call of the
//! synthetic fleet both ways and requires the same answers.
//!
//! The fragment: scopes `==` or unconstrained; conditions over `context`
//! with `.`, `has`, `&&`, `||`, `!`, `if`, `==`, `!=`, `<`/`<=`/`>`/`>=` on
//! longs, `like`, `contains`, `containsAll`, `containsAny`, `isEmpty`, set
//! literals, and `decimal` literals with their comparison methods.

use super::schema::{AGENT_TYPE, SERVER_TYPE};
use cedar_policy::Policy;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A value of the request's context, typed as the mapping types it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Val {
    Bool(bool),
    Long(i64),
    /// Scaled by 10^4, as Cedar keeps it.
    Decimal(i64),
    String(String),
    /// Sorted, without duplicates: Cedar's set equality is this `==`.
    Set(Vec<Val>),
    Record(BTreeMap<String, Val>),
}

impl Val {
    pub fn set(mut items: Vec<Val>) -> Val {
        items.sort_unstable();
        items.dedup();
        Val::Set(items)
    }

    /// `None`: a name twice (Cedar refuses such a record too).
    pub fn record(fields: Vec<(String, Val)>) -> Option<Val> {
        let n = fields.len();
        let map: BTreeMap<String, Val> = fields.into_iter().collect();
        (map.len() == n).then_some(Val::Record(map))
    }
}

/// Why an expression has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Cedar would fail here too (a missing attribute, a type error).
    Cedar,
    /// Outside what this evaluator decides for sure: ask Cedar.
    Unsupported,
}

#[derive(Debug, Clone, Copy)]
enum Order {
    Less,
    LessEq,
    Greater,
    GreaterEq,
}

impl Order {
    fn holds(self, l: i64, r: i64) -> bool {
        match self {
            Order::Less => l < r,
            Order::LessEq => l <= r,
            Order::Greater => l > r,
            Order::GreaterEq => l >= r,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Wildcard,
    Char(char),
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Val),
    Context,
    Attr(Box<Expr>, String),
    Has(Box<Expr>, String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    NotEq(Box<Expr>, Box<Expr>),
    Long(Order, Box<Expr>, Box<Expr>),
    Decimal(Order, Box<Expr>, Box<Expr>),
    Like(Box<Expr>, Vec<Pattern>),
    Contains(Box<Expr>, Box<Expr>),
    ContainsAll(Box<Expr>, Box<Expr>),
    ContainsAny(Box<Expr>, Box<Expr>),
    IsEmpty(Box<Expr>),
    Set(Vec<Expr>),
}

/// Cedar's `decimal("…")`: digits, a point, one to four digits.
fn decimal_literal(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = whole.strip_prefix('-').unwrap_or(whole);
    if !digits(unsigned) || !digits(fraction) || fraction.len() > 4 {
        return None;
    }
    let l = whole.parse::<i64>().ok()?.checked_mul(10_000)?;
    let r = fraction
        .parse::<i64>()
        .ok()?
        .checked_mul(10i64.pow(4 - fraction.len() as u32))?;
    if whole.starts_with('-') {
        l.checked_sub(r)
    } else {
        l.checked_add(r)
    }
}

/// A literal of the EST (`{"Value": …}`).
fn literal(v: &Value) -> Option<Val> {
    Some(match v {
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Long(n.as_i64()?),
        Value::String(s) => Val::String(s.clone()),
        Value::Array(items) => Val::set(items.iter().map(literal).collect::<Option<_>>()?),
        Value::Object(o) => {
            let extn = o.get("__extn")?;
            if o.len() != 1 || extn["fn"] != "decimal" {
                return None;
            }
            Val::Decimal(decimal_literal(extn["arg"].as_str()?)?)
        }
        Value::Null => return None,
    })
}

fn boxed(v: &Value) -> Option<Box<Expr>> {
    compile(v).map(Box::new)
}

/// An expression of the EST (`Policy::to_json`), if it is in the fragment.
fn compile(v: &Value) -> Option<Expr> {
    let object = v.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let (op, body) = object.iter().next()?;
    let lr = || Some((boxed(&body["left"])?, boxed(&body["right"])?));
    let args = || match body.as_array().map(Vec::as_slice) {
        Some([l, r]) => Some((boxed(l)?, boxed(r)?)),
        _ => None,
    };
    Some(match op.as_str() {
        "Value" => Expr::Lit(literal(body)?),
        "Var" if body == "context" => Expr::Context,
        "!" => Expr::Not(boxed(&body["arg"])?),
        "isEmpty" => Expr::IsEmpty(boxed(&body["arg"])?),
        "&&" => lr().map(|(l, r)| Expr::And(l, r))?,
        "||" => lr().map(|(l, r)| Expr::Or(l, r))?,
        "==" => lr().map(|(l, r)| Expr::Eq(l, r))?,
        "!=" => lr().map(|(l, r)| Expr::NotEq(l, r))?,
        "<" => lr().map(|(l, r)| Expr::Long(Order::Less, l, r))?,
        "<=" => lr().map(|(l, r)| Expr::Long(Order::LessEq, l, r))?,
        ">" => lr().map(|(l, r)| Expr::Long(Order::Greater, l, r))?,
        ">=" => lr().map(|(l, r)| Expr::Long(Order::GreaterEq, l, r))?,
        "contains" => lr().map(|(l, r)| Expr::Contains(l, r))?,
        "containsAll" => lr().map(|(l, r)| Expr::ContainsAll(l, r))?,
        "containsAny" => lr().map(|(l, r)| Expr::ContainsAny(l, r))?,
        "lessThan" => args().map(|(l, r)| Expr::Decimal(Order::Less, l, r))?,
        "lessThanOrEqual" => args().map(|(l, r)| Expr::Decimal(Order::LessEq, l, r))?,
        "greaterThan" => args().map(|(l, r)| Expr::Decimal(Order::Greater, l, r))?,
        "greaterThanOrEqual" => args().map(|(l, r)| Expr::Decimal(Order::GreaterEq, l, r))?,
        "decimal" => match body.as_array().map(Vec::as_slice) {
            Some([arg]) => Expr::Lit(Val::Decimal(decimal_literal(arg.get("Value")?.as_str()?)?)),
            _ => return None,
        },
        "." => Expr::Attr(boxed(&body["left"])?, body["attr"].as_str()?.to_string()),
        "has" => {
            let left = boxed(&body["left"])?;
            match &body["attr"] {
                Value::String(attr) => Expr::Has(left, attr.clone()),
                // `e has a.b` is `e has a && e.a has b`.
                Value::Array(path) => {
                    let names: Vec<&str> = path.iter().map(Value::as_str).collect::<Option<_>>()?;
                    let mut test: Option<Expr> = None;
                    let mut at = left;
                    for name in names {
                        let has = Expr::Has(at.clone(), name.to_string());
                        test = Some(match test {
                            None => has,
                            Some(t) => Expr::And(Box::new(t), Box::new(has)),
                        });
                        at = Box::new(Expr::Attr(at, name.to_string()));
                    }
                    test?
                }
                _ => return None,
            }
        }
        "like" => {
            let mut pattern = Vec::new();
            for part in body["pattern"].as_array()? {
                match part {
                    Value::String(w) if w == "Wildcard" => pattern.push(Pattern::Wildcard),
                    Value::Object(o) if o.len() == 1 => {
                        pattern.extend(o.get("Literal")?.as_str()?.chars().map(Pattern::Char))
                    }
                    _ => return None,
                }
            }
            Expr::Like(boxed(&body["left"])?, pattern)
        }
        "if-then-else" => Expr::If(boxed(&body["if"])?, boxed(&body["then"])?, boxed(&body["else"])?),
        "Set" => {
            let items: Vec<Expr> = body.as_array()?.iter().map(compile).collect::<Option<_>>()?;
            // A set of literals (`["eur", "sek"].contains(…)`) is built once, here.
            let literals: Option<Vec<Val>> = items
                .iter()
                .map(|i| match i {
                    Expr::Lit(v) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            match literals {
                Some(values) => Expr::Lit(Val::set(values)),
                None => Expr::Set(items),
            }
        }
        _ => return None,
    })
}

/// Cedar's `like`: `*` matches any run of characters, everything else itself.
fn like(text: &str, pattern: &[Pattern]) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Pattern::Wildcard) => {
                back = Some((p, t));
                p += 1;
            }
            Some(Pattern::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match back {
                Some((bp, bt)) => {
                    back = Some((bp, bt + 1));
                    p = bp + 1;
                    t = bt + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|x| *x == Pattern::Wildcard)
}

type Out<'a> = Result<Cow<'a, Val>, Fault>;

fn boolean(v: Out<'_>) -> Result<bool, Fault> {
    match v?.as_ref() {
        Val::Bool(b) => Ok(*b),
        _ => Err(Fault::Cedar),
    }
}

fn set(v: &Val) -> Result<&[Val], Fault> {
    match v {
        Val::Set(items) => Ok(items),
        _ => Err(Fault::Cedar),
    }
}

fn eval<'a>(e: &'a Expr, context: &'a Val) -> Out<'a> {
    let yes = |b: bool| Ok(Cow::Owned(Val::Bool(b)));
    match e {
        Expr::Lit(v) => Ok(Cow::Borrowed(v)),
        Expr::Context => Ok(Cow::Borrowed(context)),
        Expr::Attr(inner, name) => match eval(inner, context)? {
            Cow::Borrowed(Val::Record(fields)) => fields.get(name).map(Cow::Borrowed).ok_or(Fault::Cedar),
            Cow::Owned(Val::Record(mut fields)) => fields.remove(name).map(Cow::Owned).ok_or(Fault::Cedar),
            _ => Err(Fault::Cedar),
        },
        Expr::Has(inner, name) => match eval(inner, context)?.as_ref() {
            Val::Record(fields) => yes(fields.contains_key(name)),
            _ => Err(Fault::Cedar),
        },
        Expr::And(l, r) => yes(boolean(eval(l, context))? && boolean(eval(r, context))?),
        Expr::Or(l, r) => yes(boolean(eval(l, context))? || boolean(eval(r, context))?),
        Expr::Not(inner) => yes(!boolean(eval(inner, context))?),
        Expr::If(c, then, otherwise) => {
            if boolean(eval(c, context))? {
                eval(then, context)
            } else {
                eval(otherwise, context)
            }
        }
        Expr::Eq(l, r) => yes(eval(l, context)? == eval(r, context)?),
        Expr::NotEq(l, r) => yes(eval(l, context)? != eval(r, context)?),
        Expr::Long(order, l, r) => match (eval(l, context)?.as_ref(), eval(r, context)?.as_ref()) {
            (Val::Long(l), Val::Long(r)) => yes(order.holds(*l, *r)),
            _ => Err(Fault::Unsupported),
        },
        Expr::Decimal(order, l, r) => match (eval(l, context)?.as_ref(), eval(r, context)?.as_ref()) {
            (Val::Decimal(l), Val::Decimal(r)) => yes(order.holds(*l, *r)),
            _ => Err(Fault::Unsupported),
        },
        Expr::Like(inner, pattern) => match eval(inner, context)?.as_ref() {
            Val::String(s) => yes(like(s, pattern)),
            _ => Err(Fault::Cedar),
        },
        Expr::Contains(s, x) => {
            let (s, x) = (eval(s, context)?, eval(x, context)?);
            yes(set(&s)?.binary_search(&x).is_ok())
        }
        Expr::ContainsAll(a, b) => {
            let (a, b) = (eval(a, context)?, eval(b, context)?);
            let a = set(&a)?;
            yes(set(&b)?.iter().all(|x| a.binary_search(x).is_ok()))
        }
        Expr::ContainsAny(a, b) => {
            let (a, b) = (eval(a, context)?, eval(b, context)?);
            let a = set(&a)?;
            yes(set(&b)?.iter().any(|x| a.binary_search(x).is_ok()))
        }
        Expr::IsEmpty(inner) => yes(set(&*eval(inner, context)?)?.is_empty()),
        Expr::Set(items) => Ok(Cow::Owned(Val::set(
            items
                .iter()
                .map(|i| eval(i, context).map(Cow::into_owned))
                .collect::<Result<_, _>>()?,
        ))),
    }
}

/// A scope constraint: unconstrained, or `== Type::"id"`.
#[derive(Debug, Clone)]
enum Scope {
    Any,
    Eq { ty: String, id: String },
}

impl Scope {
    fn compile(v: &Value) -> Option<Scope> {
        match v["op"].as_str()? {
            "All" => Some(Scope::Any),
            "==" => Some(Scope::Eq {
                ty: v["entity"]["type"].as_str()?.to_string(),
                id: v["entity"]["id"].as_str()?.to_string(),
            }),
            _ => None,
        }
    }

    fn admits(&self, ty: &str, id: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Eq { ty: t, id: i } => t == ty && i == id,
        }
    }
}

/// One `when` conjunct or whole `unless` of a rule, as `explain` tests it,
/// with the text `explain` names it by.
#[derive(Debug, Clone)]
struct Part {
    when: bool,
    expr: Expr,
    text: String,
}

/// A rule of the fragment, ready to decide and to explain itself.
#[derive(Debug, Clone)]
pub struct NativeRule {
    id: String,
    forbid: bool,
    principal: Scope,
    action: Scope,
    resource: Scope,
    /// `(when, body)`: a `when` body must hold, an `unless` body must not.
    conditions: Vec<(bool, Expr)>,
    parts: Vec<Part>,
}

/// The call a request stands for, as the scopes see it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub agent: &'a str,
    pub tool: &'a str,
    pub server: &'a str,
}

impl NativeRule {
    /// `None`: some part of the rule is outside the fragment; Cedar decides it.
    pub fn compile(id: &str, policy: &Policy) -> Option<NativeRule> {
        let mut est = policy.to_json().ok()?;
        est.as_object_mut()?.remove("annotations");
        let forbid = match est["effect"].as_str()? {
            "permit" => false,
            "forbid" => true,
            _ => return None,
        };
        let mut conditions = Vec::new();
        for condition in est["conditions"].as_array()? {
            let when = match condition["kind"].as_str()? {
                "when" => true,
                "unless" => false,
                _ => return None,
            };
            conditions.push((when, compile(&condition["body"])?));
        }
        let parts = super::replay::explained_parts(&est)?
            .into_iter()
            .map(|(when, body, text)| {
                Some(Part {
                    when,
                    expr: compile(&body)?,
                    text,
                })
            })
            .collect::<Option<_>>()?;
        Some(NativeRule {
            id: id.to_string(),
            forbid,
            principal: Scope::compile(&est["principal"])?,
            action: Scope::compile(&est["action"])?,
            resource: Scope::compile(&est["resource"])?,
            conditions,
            parts,
        })
    }

    fn in_scope(&self, call: Call<'_>) -> bool {
        self.principal.admits(AGENT_TYPE, call.agent)
            && self.action.admits("Action", call.tool)
            && self.resource.admits(SERVER_TYPE, call.server)
    }

    /// Whether the rule applies, as Cedar evaluates it (scope, then each
    /// condition in order, stopping at the first that fails).
    fn applies(&self, call: Call<'_>, context: &Val) -> Result<bool, Fault> {
        if !self.in_scope(call) {
            return Ok(false);
        }
        for (when, body) in &self.conditions {
            if boolean(eval(body, context))? != *when {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Cedar's answer for `rules` (a slice): allowed, and the determining rules,
/// sorted. `None`: some rule did not evaluate; ask Cedar (it names the error).
pub fn decide(
    rules: &[std::sync::Arc<NativeRule>],
    call: Call<'_>,
    context: &Val,
) -> Option<(bool, Vec<String>)> {
    let (mut permits, mut forbids) = (Vec::new(), Vec::new());
    for rule in rules {
        if rule.applies(call, context).ok()? {
            if rule.forbid {
                forbids.push(rule.id.clone());
            } else {
                permits.push(rule.id.clone());
            }
        }
    }
    let (allowed, mut determining) = if forbids.is_empty() {
        (!permits.is_empty(), permits)
    } else {
        (false, forbids)
    };
    determining.sort();
    Some((allowed, determining))
}

/// `check::why_denied` for the rules of the call's (agent, tool), in file
/// order: the same words. `None`: a part is outside the fragment; ask Cedar.
pub fn why_denied(rules: &[std::sync::Arc<NativeRule>], call: Call<'_>, context: &Val) -> Option<String> {
    let (agent, tool) = (call.agent, call.tool);
    if rules.is_empty() {
        return Some(format!("no rule covers agent {agent:?} calling {tool:?}"));
    }
    let mut best: Option<(usize, &str, Vec<String>)> = None;
    for rule in rules {
        if !rule.in_scope(call) {
            continue;
        }
        let mut failing = Vec::new();
        for part in &rule.parts {
            let holds = match eval(&part.expr, context) {
                Ok(v) => *v == Val::Bool(part.when),
                Err(Fault::Cedar) => false,
                Err(Fault::Unsupported) => return None,
            };
            if !holds {
                failing.push(if part.when {
                    part.text.clone()
                } else {
                    format!("unless {}", part.text)
                });
            }
        }
        if rule.forbid && failing.is_empty() {
            return Some(format!("forbidden by {}", rule.id));
        }
        if best.as_ref().is_none_or(|b| failing.len() < b.0) {
            best = Some((failing.len(), &rule.id, failing));
        }
    }
    Some(match best {
        Some((_, id, failing)) => format!("closest rule {id}: {} did not hold", failing.join("; ")),
        None => format!("no rule for agent {agent:?} and tool {tool:?} matches this server"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &str) -> Vec<Pattern> {
        parts
            .chars()
            .map(|c| {
                if c == '*' {
                    Pattern::Wildcard
                } else {
                    Pattern::Char(c)
                }
            })
            .collect()
    }

    #[test]
    fn like_matches_as_cedar_does() {
        assert!(like("cust_XP1", &p("cust_XP*")));
        assert!(like("a/b/c", &p("*/*")));
        assert!(!like("abc", &p("*..*")));
        assert!(like("", &p("*")));
        assert!(like("x@acme.com", &p("*@acme.com")));
        assert!(!like("x@acme.com.evil", &p("*@acme.com")));
        assert!(like("aaa", &p("a*a*a")));
        assert!(!like("aa", &p("a*a*a")));
        assert!(like("é-ü", &p("é*ü")));
    }

    #[test]
    fn decimal_literals_parse_as_cedar_parses_them() {
        assert_eq!(decimal_literal("0.0"), Some(0));
        assert_eq!(decimal_literal("-0.5"), Some(-5_000));
        assert_eq!(decimal_literal("149.99"), Some(1_499_900));
        assert_eq!(decimal_literal("1.23456"), None);
        assert_eq!(decimal_literal("1"), None);
        assert_eq!(decimal_literal("922337203685477.5807"), Some(i64::MAX));
        assert_eq!(decimal_literal("922337203685478.0"), None);
    }
}
