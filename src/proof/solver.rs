//! The SMT solver: which program, one warm process per worker thread, each
//! query under a time limit. A query that runs out of time kills its process
//! (the next query starts a fresh one) and answers `TimedOut`.

use cedar_policy::{EntityTypeName, PolicySet, Request, RequestEnv};
use cedar_policy_symcc::err::Error as SymccError;
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicySet};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The solver's command line: an interactive SMT-LIB 2 solver on stdin/stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolverCommand {
    pub program: String,
    pub args: Vec<String>,
}

/// Where the README says to get a solver; every "cannot start" error ends with it.
pub const INSTALL_HINT: &str =
    "install cvc5 (Debian/Ubuntu: `apt-get install cvc5`; else a release binary from the cvc5 project) \
     or name a solver with --solver / `proof.solver`";

impl Default for SolverCommand {
    /// cvc5 from `PATH`. `--strings-exp` turns on the string operators
    /// Cedar's `like` compiles to, which cvc5 before 1.1 keeps behind that flag.
    fn default() -> Self {
        SolverCommand {
            program: "cvc5".into(),
            args: ["--lang", "smt", "--strings-exp"].map(String::from).to_vec(),
        }
    }
}

impl SolverCommand {
    /// From a command line split on whitespace (`cvc5 --lang smt --strings-exp`).
    pub fn parse(line: &str) -> Option<SolverCommand> {
        let mut words = line.split_whitespace().map(str::to_string);
        Some(SolverCommand {
            program: words.next()?,
            args: words.collect(),
        })
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args).kill_on_drop(true);
        command
    }

    /// The solver's name and version, asked over SMT-LIB; an error says how to get one.
    /// Synchronous (no runtime), so any caller may ask.
    pub fn version(&self) -> Result<String, String> {
        use std::io::{Read, Write};
        let cannot = |e: std::io::Error| {
            format!(
                "cannot start the SMT solver `{}`: {e}; {INSTALL_HINT}",
                self.program
            )
        };
        let mut child = std::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(cannot)?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let written = stdin.write_all(b"(get-info :name)\n(get-info :version)\n(exit)\n");
        drop(stdin);
        let (sender, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = sender.send(stdout.read_to_string(&mut out).map(|_| out));
        });
        let out = answer.recv_timeout(Duration::from_secs(10));
        let _ = child.kill();
        let _ = child.wait();
        written.map_err(cannot)?;
        let out = match out {
            Ok(read) => read.map_err(cannot)?,
            Err(_) => {
                return Err(format!(
                    "the SMT solver `{}` did not answer (get-info :version)",
                    self.program
                ))
            }
        };
        let quoted = |key: &str| {
            let rest = &out[out.find(key)? + key.len()..];
            let start = rest.find('"')? + 1;
            let end = start + rest[start..].find('"')?;
            Some(rest[start..end].to_string())
        };
        match (quoted(":name"), quoted(":version")) {
            (Some(name), Some(version)) => Ok(format!("{name} {version}")),
            _ => Err(format!(
                "`{}` does not answer as an SMT-LIB solver (asked for its version, got {:?}); {INSTALL_HINT}",
                self.program,
                out.trim()
            )),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the solver")
}

/// What one query came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Done(T),
    TimedOut,
    Failed(String),
}

/// Queries asked and time spent, over all workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub queries: usize,
    pub timed_out: usize,
    /// Compilation and solving, summed over queries.
    pub busy: Duration,
    pub slowest: Duration,
}

/// The request environment of a tool: an agent calls it on an MCP server.
pub fn environment(tool: &str) -> RequestEnv {
    RequestEnv::new(
        EntityTypeName::from_str(crate::core::schema::AGENT_TYPE).expect("valid"),
        crate::core::mapping::action_uid(tool),
        EntityTypeName::from_str(crate::core::schema::SERVER_TYPE).expect("valid"),
    )
}

/// One thread's solver process and the runtime that talks to it.
pub struct Worker<'a> {
    command: &'a SolverCommand,
    timeout: Duration,
    deadline: Option<Instant>,
    runtime: tokio::runtime::Runtime,
    compiler: Option<CedarSymCompiler<LocalSolver>>,
    stats: Stats,
}

impl<'a> Worker<'a> {
    pub fn new(command: &'a SolverCommand, timeout: Duration, deadline: Option<Instant>) -> Worker<'a> {
        Worker {
            command,
            timeout,
            deadline,
            runtime: runtime(),
            compiler: None,
            stats: Stats::default(),
        }
    }

    /// Compile the sets and run one check on them, within the time limit.
    fn ask<T, F>(
        &mut self,
        env: &RequestEnv,
        schema: &cedar_policy::Schema,
        sets: &[&PolicySet],
        check: F,
    ) -> Answer<T>
    where
        F: for<'c> AsyncFnOnce(
            &'c mut CedarSymCompiler<LocalSolver>,
            &'c [CompiledPolicySet],
        ) -> Result<T, SymccError>,
    {
        let started = Instant::now();
        let limit = match self.deadline {
            Some(deadline) if deadline <= started => {
                self.stats.timed_out += 1;
                return Answer::TimedOut;
            }
            Some(deadline) => self.timeout.min(deadline - started),
            None => self.timeout,
        };
        let compiled: Result<Vec<CompiledPolicySet>, String> = sets
            .iter()
            .map(|set| CompiledPolicySet::compile(set, env, schema).map_err(|e| e.to_string()))
            .collect();
        let compiled = match compiled {
            Ok(c) => c,
            Err(e) => return Answer::Failed(format!("the symbolic compiler refused the rules: {e}")),
        };
        if self.compiler.is_none() {
            // The process is spawned onto this worker's runtime, which drives its pipes.
            let _runtime = self.runtime.enter();
            let solver = match LocalSolver::from_command(&mut self.command.command()) {
                Ok(s) => s,
                Err(e) => {
                    return Answer::Failed(format!(
                        "cannot start the SMT solver `{}`: {e}; {INSTALL_HINT}",
                        self.command.program
                    ))
                }
            };
            self.compiler = Some(CedarSymCompiler::new(solver).expect("a compiler over a started solver"));
        }
        let compiler = self.compiler.as_mut().expect("started above");
        let remaining = limit.saturating_sub(started.elapsed());
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(remaining, check(compiler, &compiled)).await });
        let elapsed = started.elapsed();
        self.stats.queries += 1;
        self.stats.busy += elapsed;
        self.stats.slowest = self.stats.slowest.max(elapsed);
        match outcome {
            Ok(Ok(value)) => Answer::Done(value),
            Err(_) | Ok(Err(SymccError::SolverUnknown)) => {
                // The process may still be solving: drop (and kill) it.
                self.compiler = None;
                self.stats.timed_out += 1;
                Answer::TimedOut
            }
            Ok(Err(e)) => {
                self.compiler = None;
                Answer::Failed(format!("the solver failed: {e}"))
            }
        }
    }

    /// `None` when every request `allowing` allows `denying` allows too; else one it does not.
    pub fn implies(
        &mut self,
        env: &RequestEnv,
        schema: &cedar_policy::Schema,
        allowing: &PolicySet,
        denying: &PolicySet,
    ) -> Answer<Option<Request>> {
        self.ask(env, schema, &[allowing, denying], async |compiler, sets| {
            let found = compiler
                .check_implies_with_counterexample_opt(&sets[0], &sets[1])
                .await?;
            Ok(found.map(|env| env.request))
        })
    }

    /// Whether no request is allowed by both sets.
    pub fn disjoint(
        &mut self,
        env: &RequestEnv,
        schema: &cedar_policy::Schema,
        a: &PolicySet,
        b: &PolicySet,
    ) -> Answer<bool> {
        self.ask(env, schema, &[a, b], async |compiler, sets| {
            compiler.check_disjoint_opt(&sets[0], &sets[1]).await
        })
    }

    /// Whether the set allows no request at all.
    pub fn always_denies(
        &mut self,
        env: &RequestEnv,
        schema: &cedar_policy::Schema,
        set: &PolicySet,
    ) -> Answer<bool> {
        self.ask(env, schema, &[set], async |compiler, sets| {
            compiler.check_always_denies_opt(&sets[0]).await
        })
    }

    fn into_stats(self) -> Stats {
        self.stats
    }
}

/// Run `work` over `items` on `limits.workers` threads, each with its own
/// solver; results come back in the order of `items`.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    command: &SolverCommand,
    limits: &super::Limits,
    work: impl Fn(&mut Worker<'_>, &T) -> R + Sync,
) -> (Vec<R>, Stats) {
    let deadline = limits.budget.map(|b| Instant::now() + b);
    let (workers, timeout) = (limits.workers, limits.timeout);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let stats = Mutex::new(Stats::default());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                let mut worker = Worker::new(command, timeout, deadline);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(&mut worker, item);
                    results.lock().expect("results lock")[i] = Some(result);
                }
                let mine = worker.into_stats();
                let mut total = stats.lock().expect("stats lock");
                total.queries += mine.queries;
                total.timed_out += mine.timed_out;
                total.busy += mine.busy;
                total.slowest = total.slowest.max(mine.slowest);
            });
        }
    });
    let results = results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect();
    (results, stats.into_inner().expect("stats lock"))
}
