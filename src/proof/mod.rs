//! Proofs about a change of policy: what the head newly permits over the base
//! and what it no longer permits, with counterexample calls, decided by Cedar's
//! symbolic compiler (`cedar-policy-symcc`) and an SMT solver. This is an edge:
//! it spawns the solver. What to ask and what the answers mean is
//! [`crate::core::permits`]; every counterexample is read back through the
//! request mapping and replayed through the Cedar authorizer before it is shown.

pub mod solver;

use crate::config::ProofSettings;
use crate::core::check::load;
use crate::core::observation::Call;
use crate::core::permits::{
    block, changed_scopes, drafted_scope, rule_changes, Beyond, Blocking, Change, Example, Frame, Idle,
    Newness, QuerySchema, Review, RuleChange, Scope, ScopeDiff, Section, Side, Sides,
};
use crate::core::policies::RepoFiles;
use cedar_policy::{Policy, RequestEnv};
use solver::{environment, parallel, Answer, Worker};
pub use solver::{SolverCommand, Stats, INSTALL_HINT};
use std::time::Duration;

/// How much a proof may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Per query (compilation and solving); past it the query says "timed out".
    pub timeout: Duration,
    /// Counterexample calls per failing direction.
    pub max_examples: usize,
    /// Queries in parallel, one solver process each.
    pub workers: usize,
    /// All queries of one call together; past it the rest answer "timed out" at once.
    pub budget: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            max_examples: 2,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            budget: None,
        }
    }
}

/// A solver and the limits to use it within.
#[derive(Debug, Clone, Default)]
pub struct Prover {
    pub solver: SolverCommand,
    pub limits: Limits,
}

/// An answer, and what it cost.
#[derive(Debug, Clone)]
pub struct Proved<T> {
    pub value: T,
    pub stats: Stats,
}

/// What the solver is asked for one scope: the schema and environment to
/// compile against.
struct Target {
    env: RequestEnv,
    schema: cedar_policy::Schema,
}

/// One side of a question: some of its rules (`None`: all in the scope) and policies added to them.
#[derive(Clone)]
struct Party {
    side: Side,
    rules: Option<Vec<usize>>,
    extra: Vec<Policy>,
}

impl Party {
    fn all(side: Side) -> Party {
        Party {
            side,
            rules: None,
            extra: Vec::new(),
        }
    }

    fn rules(side: Side, rules: Vec<usize>) -> Party {
        Party {
            side,
            rules: Some(rules),
            extra: Vec::new(),
        }
    }

    fn set(&self, frame: &Frame<'_>, blocks: &[Policy]) -> cedar_policy::PolicySet {
        let extra: Vec<Policy> = self.extra.iter().chain(blocks).cloned().collect();
        match &self.rules {
            None => frame.all(self.side, &extra),
            Some(rules) => frame.set(self.side, rules, &extra),
        }
    }

    fn allows(&self, frame: &Frame<'_>, call: &Call) -> bool {
        frame.allows(self.side, self.rules.as_deref(), &self.extra, call)
    }
}

/// The answer to "does everything `allowing` allows, `denying` allow too?".
struct Found {
    /// `Done(true)`: it does (no counterexample exists).
    implies: Answer<bool>,
    examples: Vec<Call>,
    /// Counterexamples that did not replay, or do not read as a call: a bug,
    /// reported (as JSON), never shown as examples.
    unconfirmed: Vec<serde_json::Value>,
}

fn counterexamples(
    worker: &mut Worker<'_>,
    target: &Target,
    frame: &Frame<'_>,
    allowing: &Party,
    denying: &Party,
    max: usize,
) -> Found {
    let mut found = Found {
        implies: Answer::TimedOut,
        examples: Vec::new(),
        unconfirmed: Vec::new(),
    };
    let denying_set = denying.set(frame, &[]);
    // Blocks of the examples found so far; each next example is first sought
    // unlike all of them in every value, then unlike them in some value.
    let (mut unlike, mut other) = (Vec::new(), Vec::new());
    loop {
        let mut answer = worker.implies(
            &target.env,
            &target.schema,
            &allowing.set(frame, &unlike),
            &denying_set,
        );
        if !unlike.is_empty() && answer == Answer::Done(None) {
            answer = worker.implies(
                &target.env,
                &target.schema,
                &allowing.set(frame, &other),
                &denying_set,
            );
        }
        let first = unlike.is_empty();
        let request = match answer {
            Answer::Done(None) if first => {
                found.implies = Answer::Done(true);
                return found;
            }
            Answer::Done(Some(request)) => {
                if first {
                    found.implies = Answer::Done(false);
                }
                request
            }
            Answer::Failed(e) if first => {
                found.implies = Answer::Failed(e);
                return found;
            }
            // Out of time, or no further example: the verdict stands.
            _ => return found,
        };
        let call = match crate::core::mapping::call_from_request(&request) {
            Ok(call) => call,
            Err(e) => {
                tracing::error!(scope = %frame.scope.label(), error = %e, "a counterexample is not a call");
                found
                    .unconfirmed
                    .push(serde_json::json!({"request": request.to_string(), "why": e.to_string()}));
                return found;
            }
        };
        if allowing.allows(frame, &call) && !denying.allows(frame, &call) {
            found.examples.push(call);
        } else {
            let json = crate::core::permits::call_json(&call);
            tracing::error!(scope = %frame.scope.label(), call = %json, "a counterexample did not replay through the Cedar authorizer");
            found.unconfirmed.push(json);
            return found;
        }
        if found.examples.len() >= max {
            return found;
        }
        let n = found.examples.len();
        match (
            block(&request, n, Blocking::Overlapping),
            block(&request, n, Blocking::Same),
        ) {
            (Some(u), Some(o)) => {
                unlike.push(u);
                other.push(o);
            }
            _ => return found,
        }
    }
}

fn verdict(answer: &Answer<bool>) -> Option<bool> {
    match answer {
        Answer::Done(v) => Some(*v),
        _ => None,
    }
}

/// The compiled schemas of both sides; a side whose schema Cedar refuses makes every scope an error.
struct Schemas {
    base: Result<cedar_policy::Schema, String>,
    head: Result<cedar_policy::Schema, String>,
}

impl Schemas {
    fn of(sides: Sides<'_>) -> Schemas {
        Schemas {
            base: sides.base.schema.to_cedar().map_err(|e| e.to_string()),
            head: sides.head.schema.to_cedar().map_err(|e| e.to_string()),
        }
    }

    fn target(&self, frame: &Frame<'_>) -> Result<Target, String> {
        let schema = match &frame.query {
            QuerySchema::Of(Side::Base) => self.base.clone()?,
            QuerySchema::Of(Side::Head) => self.head.clone()?,
            QuerySchema::Union(union) => union.to_cedar().map_err(|e| e.to_string())?,
        };
        Ok(Target {
            env: environment(&frame.scope.tool),
            schema,
        })
    }
}

impl Prover {
    /// The bot's prover, from `proof:` in its settings.
    pub fn of(settings: &ProofSettings) -> Prover {
        Prover {
            solver: match settings.solver.as_deref() {
                Some([program, args @ ..]) => SolverCommand {
                    program: program.clone(),
                    args: args.to_vec(),
                },
                _ => SolverCommand::default(),
            },
            limits: Limits {
                timeout: settings.timeout,
                max_examples: settings.max_examples,
                budget: Some(settings.budget),
                ..Limits::default()
            },
        }
    }

    /// Per (agent, tool, server) whose rules differ: whether head ⇒ base and
    /// base ⇒ head, with up to `max_examples` confirmed counterexample calls per
    /// failing direction (DESIGN §10).
    pub fn diff(&self, sides: Sides<'_>) -> Proved<Vec<ScopeDiff>> {
        let scopes = changed_scopes(sides);
        let schemas = Schemas::of(sides);
        let max = self.limits.max_examples.max(1);
        let (value, stats) = parallel(&scopes, &self.solver, &self.limits, |worker, scope| {
            let mut out = ScopeDiff::new(scope);
            let framed = Frame::new(sides, scope).and_then(|frame| Ok((schemas.target(&frame)?, frame)));
            let (target, frame) = match framed {
                Ok(f) => f,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            };
            let (head, base) = (Party::all(Side::Head), Party::all(Side::Base));
            for (allowing, denying, forward) in [(&head, &base, true), (&base, &head, false)] {
                let found = counterexamples(worker, &target, &frame, allowing, denying, max);
                let calls: Vec<Example> = found.examples.iter().map(Example::of).collect();
                out.unconfirmed.extend(found.unconfirmed.iter().cloned());
                match &found.implies {
                    Answer::TimedOut => out.timed_out = true,
                    Answer::Failed(e) => out.error = Some(e.clone()),
                    Answer::Done(_) => {}
                }
                if forward {
                    out.head_implies_base = verdict(&found.implies);
                    out.newly_permitted = calls;
                } else {
                    out.base_implies_head = verdict(&found.implies);
                    out.no_longer_permitted = calls;
                }
            }
            out
        });
        Proved { value, stats }
    }

    /// What a pull request shows and `check --against` decides: per added,
    /// edited or removed rule what it adds and removes; calls newly permitted
    /// outside the drafted rules' own scope; rules that never allow anything.
    pub fn review(&self, sides: Sides<'_>) -> Proved<Review> {
        let scopes = changed_scopes(sides);
        let schemas = Schemas::of(sides);
        let changes = rule_changes(sides);
        let mut work: Vec<Work> = (0..scopes.len()).map(Work::Beyond).collect();
        for (i, (change, base, head)) in changes.iter().enumerate() {
            // A rule is judged in the first changed scope it applies to.
            let home = scopes.iter().position(|s| {
                base.is_some_and(|b| s.base_rules.contains(&b))
                    || head.is_some_and(|h| s.head_rules.contains(&h))
            });
            if let Some(scope) = home {
                work.push(Work::Rule(i, scope));
                if *change != Change::Removed
                    && head.is_some_and(|h| {
                        sides.head.policies.rules[h].policy.effect() == cedar_policy::Effect::Permit
                    })
                {
                    work.push(Work::Idle(i, scope));
                }
            }
        }
        let max = self.limits.max_examples.max(1);
        let (parts, stats) = parallel(&work, &self.solver, &self.limits, |worker, item| {
            let scope = &scopes[item.scope()];
            let framed = Frame::new(sides, scope).and_then(|frame| Ok((schemas.target(&frame)?, frame)));
            let (target, frame) = match framed {
                Ok(f) => f,
                Err(e) => return Part::Error(format!("{}: {e}", scope.label())),
            };
            match *item {
                Work::Beyond(_) => beyond(worker, &target, &frame, sides, scope, max),
                Work::Rule(i, _) => rule(worker, &target, &frame, sides, changes[i], max),
                Work::Idle(i, _) => idle(worker, &target, &frame, sides, changes[i].2.expect("a head rule")),
            }
        });
        let mut review = Review::default();
        for part in parts {
            match part {
                Part::Beyond(b) => review.beyond.push(b),
                Part::Rule(r) => review.rules.push(r),
                Part::AlwaysDenies(id) => review.always_denies.push(id),
                Part::Shadowed(idle) => review.shadowed.push(idle),
                Part::TimedOut(what) => review.timed_out.push(what),
                Part::Error(e) => review.errors.push(e),
                Part::Nothing => {}
                Part::Unconfirmed(what) => review.unconfirmed.push(what),
            }
        }
        for rule in &review.rules {
            if rule.timed_out {
                review.timed_out.push(format!("rule {}", rule.id));
            }
        }
        review.errors.dedup();
        Proved { value: review, stats }
    }

    /// The "What this PR newly permits" section: `head` against `base`, and,
    /// given the bot's own version of the branch (`drafted`), each drafted rule
    /// a person edited against the version the bot drafted ("this edit removes …").
    pub fn section(&self, base: &RepoFiles, head: &RepoFiles, drafted: Option<&RepoFiles>) -> Section {
        let mut section = Section {
            timeout_seconds: self.limits.timeout.as_secs(),
            ..Section::default()
        };
        let loaded = |files: &RepoFiles, what: &str| {
            load(files).map_err(|problems| format!("the {what} does not load ({})", problems.join("; ")))
        };
        let solver = self.solver.version();
        let sides = (loaded(base, "base"), loaded(head, "branch"), solver);
        let (base, head) = match sides {
            (Ok(base), Ok(head), Ok(solver)) => {
                section.solver = solver;
                (base, head)
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                section.unavailable = Some(e);
                return section;
            }
        };
        section.review = self
            .review(Sides {
                base: &base,
                head: &head,
            })
            .value;
        if let Some(Ok(drafted)) = drafted.map(|d| loaded(d, "drafted branch")) {
            let edits = self
                .review(Sides {
                    base: &drafted,
                    head: &head,
                })
                .value;
            section.edits = edits
                .rules
                .into_iter()
                .filter(|r| r.change == Change::Edited)
                .collect();
        }
        section.nothing_beyond = section.review.nothing_beyond();
        section
    }
}

/// One unit of a review, run on some worker.
enum Work {
    Beyond(usize),
    Rule(usize, usize),
    Idle(usize, usize),
}

impl Work {
    fn scope(&self) -> usize {
        match *self {
            Work::Beyond(s) | Work::Rule(_, s) | Work::Idle(_, s) => s,
        }
    }
}

enum Part {
    Beyond(Beyond),
    Rule(RuleChange),
    AlwaysDenies(String),
    Shadowed(Idle),
    TimedOut(String),
    Error(String),
    Unconfirmed(String),
    Nothing,
}

fn unconfirmed_text(scope: &Scope, calls: &[serde_json::Value]) -> String {
    let calls: Vec<String> = calls.iter().map(ToString::to_string).collect();
    format!("{}: {}", scope.label(), calls.join(", "))
}

fn beyond(
    worker: &mut Worker<'_>,
    target: &Target,
    frame: &Frame<'_>,
    sides: Sides<'_>,
    scope: &Scope,
    max: usize,
) -> Part {
    let scope_of_drafts = Party {
        side: Side::Base,
        rules: None,
        extra: drafted_scope(sides, scope),
    };
    let found = counterexamples(
        worker,
        target,
        frame,
        &Party::all(Side::Head),
        &scope_of_drafts,
        max,
    );
    if !found.unconfirmed.is_empty() {
        return Part::Unconfirmed(unconfirmed_text(scope, &found.unconfirmed));
    }
    match found.implies {
        Answer::Done(true) => Part::Nothing,
        Answer::Done(false) => Part::Beyond(Beyond {
            scope: scope.label(),
            examples: found.examples.iter().map(Example::of).collect(),
        }),
        Answer::TimedOut => Part::TimedOut(format!("what {} newly permits", scope.label())),
        Answer::Failed(e) => Part::Error(format!("{}: {e}", scope.label())),
    }
}

fn rule(
    worker: &mut Worker<'_>,
    target: &Target,
    frame: &Frame<'_>,
    sides: Sides<'_>,
    (change, base, head): (Change, Option<usize>, Option<usize>),
    max: usize,
) -> Part {
    let acting = |side: Side, i: usize| Party::rules(side, frame.acting(side, i));
    let (side, index) = match (head, base) {
        (Some(h), _) => (Side::Head, h),
        (None, Some(b)) => (Side::Base, b),
        (None, None) => return Part::Nothing,
    };
    let rule = &sides.repo(side).policies.rules[index];
    let mut out = RuleChange {
        id: rule.id.to_string(),
        change,
        owner: rule.owner,
        scope: frame.scope.label(),
        conditions: crate::core::permits::conditions_text(&rule.policy),
        newness: Newness::Unknown,
        adds: Vec::new(),
        removes: Vec::new(),
        timed_out: false,
    };
    let (adds, removes) = match (change, base, head) {
        (Change::Added, _, Some(h)) => (Some((acting(Side::Head, h), Party::all(Side::Base))), None),
        (Change::Edited, Some(b), Some(h)) => (
            Some((acting(Side::Head, h), acting(Side::Base, b))),
            Some((acting(Side::Base, b), acting(Side::Head, h))),
        ),
        (Change::Removed, Some(b), _) => (None, Some((acting(Side::Base, b), Party::all(Side::Head)))),
        _ => return Part::Nothing,
    };
    let mut unconfirmed = Vec::new();
    if let Some((allowing, denying)) = &adds {
        let found = counterexamples(worker, target, frame, allowing, denying, max);
        unconfirmed.extend(found.unconfirmed.iter().cloned());
        out.adds = found.examples.iter().map(Example::of).collect();
        out.newness = match found.implies {
            Answer::Done(true) => Newness::NothingNew,
            Answer::Done(false) if change == Change::Added => {
                let (a, d) = (allowing.set(frame, &[]), denying.set(frame, &[]));
                match worker.disjoint(&target.env, &target.schema, &a, &d) {
                    Answer::Done(true) => Newness::AllNew,
                    Answer::Done(false) => Newness::PartlyNew,
                    _ => Newness::Unknown,
                }
            }
            Answer::Done(false) => Newness::PartlyNew,
            _ => {
                out.timed_out = true;
                Newness::Unknown
            }
        };
    } else {
        out.newness = Newness::NothingNew;
    }
    if let Some((allowing, denying)) = &removes {
        let found = counterexamples(worker, target, frame, allowing, denying, max);
        unconfirmed.extend(found.unconfirmed.iter().cloned());
        out.removes = found.examples.iter().map(Example::of).collect();
        out.timed_out |= !matches!(found.implies, Answer::Done(_));
    }
    if !unconfirmed.is_empty() {
        return Part::Unconfirmed(unconfirmed_text(frame.scope, &unconfirmed));
    }
    Part::Rule(out)
}

fn idle(worker: &mut Worker<'_>, target: &Target, frame: &Frame<'_>, sides: Sides<'_>, head: usize) -> Part {
    let rule = &sides.head.policies.rules[head];
    let id = rule.id.to_string();
    let alone = frame.set(Side::Head, &[head], &[]);
    match worker.always_denies(&target.env, &target.schema, &alone) {
        Answer::Done(true) => return Part::AlwaysDenies(id),
        Answer::Done(false) => {}
        Answer::TimedOut => return Part::TimedOut(format!("whether {id} ever allows anything")),
        Answer::Failed(e) => return Part::Error(format!("{id}: {e}")),
    }
    let acting = frame.acting(Side::Head, head);
    if acting.len() == 1 {
        return Part::Nothing;
    }
    match worker.always_denies(&target.env, &target.schema, &frame.set(Side::Head, &acting, &[])) {
        Answer::Done(true) => Part::Shadowed(Idle {
            id,
            shadowed_by: acting[1..]
                .iter()
                .map(|&i| sides.head.policies.rules[i].id.to_string())
                .collect(),
        }),
        Answer::Done(false) => Part::Nothing,
        Answer::TimedOut => Part::TimedOut(format!("whether a forbid shadows {id}")),
        Answer::Failed(e) => Part::Error(format!("{id}: {e}")),
    }
}
