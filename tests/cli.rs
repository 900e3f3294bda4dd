//! The real binary, driven in temporary directories: `fleet`, `draft`, `check`
//! and `explain`, their output and their exit codes (0 yes, 1 no, 2 bad input).

use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_shadowdraft");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |s: &str| s.chars().take(3000).collect::<String>();
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn run(args: &[&str]) -> Run {
    finish(Command::new(BIN).args(args).output().expect("binary runs"))
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("binary finishes");
    writer.join().expect("writer").expect("stdin written");
    finish(output)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A fleet written by `fleet` and a repository drafted from its training calls.
struct Fixture {
    _dir: TempDir,
    fleet: PathBuf,
    repo: PathBuf,
    first_draft: Run,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let fleet = dir.path().join("fleet");
        let r = run(&[
            "fleet",
            "--out",
            s(&fleet),
            "--agents",
            "6",
            "--calls-per-agent",
            "200",
            "--seed",
            "5",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        // A directory that does not exist yet: a new repository.
        let repo = dir.path().join("not").join("yet").join("repo");
        let first_draft = run(&[
            "draft",
            "--observations",
            s(&fleet.join("train.jsonl")),
            "--catalogue",
            s(&fleet.join("catalogue.json")),
            "--repo",
            s(&repo),
            "--write",
        ]);
        assert_eq!(first_draft.code, 0, "{first_draft:?}");
        Fixture {
            _dir: dir,
            fleet,
            repo,
            first_draft,
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.fleet.join(name)
    }

    fn lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.file(name))
            .expect("readable")
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn agent_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.repo.join("policies/agents"))
            .expect("agents dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
    }
}

#[test]
fn fleet_writes_four_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f");
    let r = run(&[
        "fleet",
        "--out",
        s(&out),
        "--agents",
        "3",
        "--calls-per-agent",
        "40",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["attacks.jsonl", "catalogue.json", "heldout.jsonl", "train.jsonl"]
    );
    let catalogue: Value =
        serde_json::from_str(&fs::read_to_string(out.join("catalogue.json")).unwrap()).unwrap();
    assert!(catalogue["tools"].as_array().is_some_and(|t| !t.is_empty()));
    let count = |name: &str| {
        let text = fs::read_to_string(out.join(name)).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            assert!(v["agent"].is_string() && v["tool"].is_string() && v["args"].is_object());
        }
        text.lines().count()
    };
    assert_eq!(count("train.jsonl"), 120);
    assert_eq!(count("heldout.jsonl"), 24);
    assert_eq!(count("attacks.jsonl"), 12);
    let attacks = fs::read_to_string(out.join("attacks.jsonl")).unwrap();
    assert!(attacks
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["attack"].is_string()));
    // Same seed, same bytes.
    let again = dir.path().join("g");
    let r = run(&[
        "fleet",
        "--out",
        s(&again),
        "--agents",
        "3",
        "--calls-per-agent",
        "40",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    for name in &names {
        assert_eq!(
            fs::read(out.join(name)).unwrap(),
            fs::read(again.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn draft_writes_a_new_repository_and_prints_its_diff() {
    let f = Fixture::new();
    let r = &f.first_draft;
    assert!(f.repo.join("policies/schema.cedarschema").is_file());
    let agents = f.agent_files();
    assert_eq!(agents.len(), 6, "{agents:?}");
    assert!(agents.iter().all(|p| p.extension().is_some_and(|e| e == "cedar")));
    assert!(
        r.stdout.starts_with("--- /dev/null\n+++ b/policies/agents/"),
        "{r:?}"
    );
    // Every file is new, so every file diffs from /dev/null.
    let headers: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("--- ")).collect();
    assert_eq!(headers.len(), 7, "{headers:?}");
    assert!(headers.iter().all(|h| *h == "--- /dev/null"), "{headers:?}");
    assert!(r.stdout.contains("+++ b/policies/schema.cedarschema"));
    assert!(
        r.stdout.contains("## shadowdraft evidence"),
        "evidence follows the diff"
    );
    // What was printed is what was written.
    for path in &agents {
        let text = fs::read_to_string(path).unwrap();
        let first_rule = text.lines().find(|l| l.starts_with("@id(")).expect("a rule");
        assert!(r.stdout.contains(&format!("+{first_rule}")), "{first_rule}");
    }
    assert!(r.stderr.contains("wrote 7 file(s)"), "{r:?}");
    // Nothing is left behind from writing through temporary files.
    assert!(!fs::read_dir(f.repo.join("policies/agents")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("shadowdraft-tmp")));
}

#[test]
fn draft_without_write_writes_nothing() {
    let f = Fixture::new();
    let other = f.repo.parent().unwrap().join("dry");
    let r = run(&[
        "draft",
        "-o",
        s(&f.file("train.jsonl")),
        "--repo",
        s(&other),
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("--- /dev/null"), "{r:?}");
    assert!(
        !r.stdout.contains("## shadowdraft evidence"),
        "--quiet prints only the diff"
    );
    assert!(r.stderr.contains("dry run"), "{r:?}");
    assert!(!other.exists());
}

#[test]
fn check_passes_on_training_calls_and_denies_attacks() {
    let f = Fixture::new();
    let r = run(&["check", s(&f.repo), "--observations", s(&f.file("train.jsonl"))]);
    assert_eq!(r.code, 0, "{r:?}");
    let last = r.stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("ok: "), "{r:?}");
    assert!(last.contains("1200 calls) replayed, 0 denied"), "{last}");
    assert!(!r.stdout.contains("denied:"));

    let r = run(&["check", s(&f.repo), "--observations", s(&f.file("attacks.jsonl"))]);
    assert_eq!(r.code, 1, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let denied: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("denied: "))
        .collect();
    assert!(denied.len() >= 60, "most of the 120 attacks are denied: {r:?}");
    for &i in &denied {
        let why = lines.get(i + 1).copied().unwrap_or("");
        assert!(
            why.starts_with("  why: ") && why.len() > "  why: ".len(),
            "denied line without a why: {}\n{why}",
            lines[i]
        );
    }
    assert!(lines.last().unwrap().starts_with("failed: "), "{r:?}");
    // A denial names the closest rule or says no rule covers the call.
    assert!(r
        .stdout
        .lines()
        .any(|l| l.starts_with("  why: closest rule ") && l.contains("did not hold")));
    assert!(r
        .stdout
        .lines()
        .any(|l| l.starts_with("  why: no rule covers agent")));

    // Without observations, check validates only.
    let r = run(&["check", s(&f.repo)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("ok: "), "{r:?}");
}

#[test]
fn a_corpus_with_sessions_drafts_a_binding_that_explain_shows_denying_another_customer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corpus = dir.path().join("corpus");
    let r = run(&["fleet", "--corpus", "customer-service", "--out", s(&corpus)]);
    assert_eq!(r.code, 0, "{r:?}");
    let repo = dir.path().join("repo");
    let r = run(&[
        "draft",
        "--observations",
        s(&corpus.join("train.jsonl")),
        "--catalogue",
        s(&corpus.join("catalogue.json")),
        "--repo",
        s(&repo),
        "--write",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("bound to the session"), "{}", r.stdout);
    let attacks = fs::read_to_string(corpus.join("attacks.jsonl")).unwrap();
    let other_user = attacks
        .lines()
        .find(|l| l.contains("other_customer_user_id") && l.contains("get_user_details"))
        .expect("an attack with another customer's user id");
    let r = run(&["explain", s(&repo), "--call", other_user]);
    assert_eq!(r.code, 1, "denied: {r:?}");
    assert!(r.stdout.contains("context.session.user"), "{}", r.stdout);
    let r = run(&[
        "check",
        s(&repo),
        "--observations",
        s(&corpus.join("train.jsonl")),
    ]);
    assert_eq!(r.code, 0, "every training call, sessions included: {r:?}");
}

#[test]
fn explain_allows_training_calls_and_denies_attacks_naming_rules() {
    let f = Fixture::new();
    let train = f.lines("train.jsonl");
    let call: Value = serde_json::from_str(&train[0]).unwrap();
    let prefix = format!(
        "{}/{}/",
        call["agent"].as_str().unwrap(),
        call["tool"].as_str().unwrap()
    );
    let r = run(&["explain", s(&f.repo), "--call", &train[0]]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with(&format!("ALLOW by {prefix}")), "{r:?}");

    // An attack on a tool the agent does use: the rule for it is named with what failed.
    let attack = f
        .lines("attacks.jsonl")
        .into_iter()
        .find(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            matches!(
                v["attack"].as_str(),
                Some("amount_out_of_range" | "path_traversal")
            )
        })
        .expect("an amount or path attack");
    let v: Value = serde_json::from_str(&attack).unwrap();
    let prefix = format!(
        "{}/{}/",
        v["agent"].as_str().unwrap(),
        v["tool"].as_str().unwrap()
    );
    let r = run(&["explain", s(&f.repo), "--call", &attack]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("DENY"), "{r:?}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with(&format!("  {prefix}")) && l.contains("did not hold")),
        "no rule named: {r:?}"
    );

    // A call that does not fit the schema is denied too (fail closed).
    let mut odd = call.clone();
    odd["args"]["zz_not_in_schema"] = Value::from(1);
    let r = run(&["explain", s(&f.repo), "--call", &odd.to_string()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("does not fit the schema"), "{r:?}");

    // A malformed --call is bad input.
    let r = run(&["explain", s(&f.repo), "--call", r#"{"agent":"a","args":{}}"#]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--call") && r.stderr.contains("`tool`"),
        "{r:?}"
    );
}

#[test]
fn observations_from_standard_input() {
    let f = Fixture::new();
    let train = fs::read(f.file("train.jsonl")).unwrap();
    let from_file = run(&["check", s(&f.repo), "--observations", s(&f.file("train.jsonl"))]);
    let from_stdin = run_with_stdin(&["check", s(&f.repo), "--observations", "-"], &train);
    assert_eq!(from_stdin.code, 0, "{from_stdin:?}");
    assert_eq!(from_stdin.stdout, from_file.stdout);

    // draft reads standard input too, and drafts the same as from the file.
    let dir = f.repo.parent().unwrap();
    let r = run_with_stdin(
        &[
            "draft",
            "-o",
            "-",
            "--catalogue",
            s(&f.file("catalogue.json")),
            "--repo",
            s(&dir.join("from-stdin")),
        ],
        &train,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, f.first_draft.stdout);

    // Errors in standard input are named `-`.
    let r = run_with_stdin(
        &["check", s(&f.repo), "-o", "-"],
        b"{\"agent\":\"a\",\"tool\":\"t\"}\n",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("-:1: field `args`"), "{r:?}");
}

#[test]
fn drafting_twice_with_write_is_idempotent() {
    let f = Fixture::new();
    let before: Vec<(PathBuf, Vec<u8>)> = f
        .agent_files()
        .into_iter()
        .chain([f.repo.join("policies/schema.cedarschema")])
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    let r = run(&[
        "draft",
        "--observations",
        s(&f.file("train.jsonl")),
        "--catalogue",
        s(&f.file("catalogue.json")),
        "--repo",
        s(&f.repo),
        "--write",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("+++ b/policies/agents/")),
        "agent files changed on the second run: {r:?}"
    );
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.starts_with("--- ") || l.starts_with("+++ ")),
        "something changed on the second run: {r:?}"
    );
    assert!(
        r.stdout.contains("already allowed by the repository | 1200 |"),
        "{r:?}"
    );
    for (path, bytes) in before {
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{} was rewritten",
            path.display()
        );
    }
    assert_eq!(f.agent_files().len(), 6);
}

#[test]
fn malformed_observations_exit_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    fs::write(
        &path,
        "{\"agent\":\"a\",\"tool\":\"t\",\"args\":{}}\n\n{\"agent\":\"a\",\"tool\":5,\"args\":{}}\n",
    )
    .unwrap();
    let repo = dir.path().join("repo");
    let r = run(&["draft", "--observations", s(&path), "--repo", s(&repo), "--write"]);
    assert_eq!(r.code, 2, "{r:?}");
    let expected = format!("{}:3: field `tool`", path.display());
    assert!(r.stderr.contains(&expected), "expected {expected:?} in {r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(!repo.exists(), "nothing is written on bad input");

    // `check` reads observations the same way.
    let r = run(&["check", s(&repo), "--observations", s(&path)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&expected), "{r:?}");

    // A nested field is named by its path, a bad count by its name.
    for (line, field) in [
        (r#"{"agent":"a","tool":"t","args":{"x":1},"count":0}"#, "count"),
        (
            r#"{"agent":"a","tool":"t","args":{},"first_seen":"yesterday"}"#,
            "first_seen",
        ),
        (
            r#"{"source":"n","calls":[{"agent":"a","tool":"t","args":{}},{"agent":"a","tool":"t","args":{},"decision":"maybe"}]}"#,
            "calls[1].decision",
        ),
    ] {
        fs::write(&path, format!("{line}\n")).unwrap();
        let r = run(&["draft", "--observations", s(&path), "--repo", s(&repo)]);
        assert_eq!(r.code, 2, "{r:?}");
        let expected = format!("{}:1: field `{field}`", path.display());
        assert!(r.stderr.contains(&expected), "expected {expected:?} in {r:?}");
    }

    // A file that does not exist is bad input too.
    let r = run(&["check", s(&repo), "-o", s(&dir.path().join("missing.jsonl"))]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.jsonl"), "{r:?}");
}

#[test]
fn a_policy_file_that_does_not_parse_fails_check_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("policies/agents");
    fs::create_dir_all(&agents).unwrap();
    fs::write(
        dir.path().join("policies/schema.cedarschema"),
        "entity Agent;\nentity McpServer;\naction \"t\" appliesTo { principal: [Agent], resource: [McpServer], context: { input: { x?: Long } } };\n",
    )
    .unwrap();
    fs::write(
        agents.join("good.cedar"),
        "@id(\"good/t/1\")\npermit (principal == Agent::\"good\", action == Action::\"t\", resource);\n",
    )
    .unwrap();
    fs::write(
        agents.join("broken.cedar"),
        "// a comment\n@id(\"broken/t/1\")\npermit (principal, action, resource)\nwhen { context.input.x == };\n",
    )
    .unwrap();
    let r = run(&["check", s(dir.path())]);
    assert_eq!(r.code, 1, "{r:?}");
    let error = r
        .stdout
        .lines()
        .find(|l| l.starts_with("error: policies/agents/broken.cedar: "))
        .unwrap_or_else(|| panic!("no error naming the file: {r:?}"));
    assert!(error.contains("line 4"), "{error}");
    assert!(!r.stdout.contains("good.cedar"), "{r:?}");
    assert!(r.stdout.lines().last().unwrap().starts_with("failed: "), "{r:?}");

    // A schema that does not parse is named too.
    fs::write(agents.join("broken.cedar"), "").unwrap();
    fs::write(dir.path().join("policies/schema.cedarschema"), "entity Agent\n").unwrap();
    let r = run(&["check", s(dir.path())]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("error: policies/schema.cedarschema: "), "{r:?}");

    // draft refuses a repository that does not parse: bad input.
    fs::write(
        dir.path().join("policies/schema.cedarschema"),
        "entity Agent;\nentity McpServer;\n",
    )
    .unwrap();
    fs::write(
        agents.join("broken.cedar"),
        "permit (principal, action, resource) when { };\n",
    )
    .unwrap();
    let calls = dir.path().join("calls.jsonl");
    fs::write(&calls, "{\"agent\":\"a\",\"tool\":\"t\",\"args\":{}}\n").unwrap();
    let r = run(&["draft", "-o", s(&calls), "--repo", s(dir.path())]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("policies/agents/broken.cedar") && r.stderr.contains("line 1"),
        "{r:?}"
    );
}

#[test]
fn every_command_explains_itself_and_bad_flags_exit_2() {
    for command in ["draft", "check", "explain", "fleet"] {
        let r = run(&[command, "--help"]);
        assert_eq!(r.code, 0, "{command}: {r:?}");
        assert!(r.stdout.contains("Usage: shadowdraft"), "{command}: {r:?}");
        assert!(r.stdout.lines().count() > 5, "{command}: {r:?}");
    }
    let r = run(&["draft", "--no-such-flag"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&["draft"]);
    assert_eq!(r.code, 2, "--observations is required: {r:?}");
}

#[test]
fn init_writes_a_policy_repository_that_passes_check() {
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("shadowdraft.yaml");
    fs::write(
        &config,
        "review:\n  security_team: \"@acme/security\"\n  agents:\n    billing-bot: {owners: [\"@acme/payments\"]}\n",
    )
    .unwrap();
    let repo = dir.path().join("policies-repo");
    let init = run(&[
        "init",
        repo.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(init.code, 0, "{init:?}");
    for file in [
        "policies/schema.cedarschema",
        ".github/CODEOWNERS",
        ".github/workflows/policy-check.yml",
        "REVIEWING.md",
    ] {
        assert!(repo.join(file).exists(), "{file} missing: {init:?}");
    }
    let owners = fs::read_to_string(repo.join(".github/CODEOWNERS")).unwrap();
    assert!(owners.contains("/policies/agents/billing-bot.cedar @acme/payments @acme/security"));
    let check = run(&["check", repo.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{check:?}");

    // A second init keeps what is there.
    fs::write(repo.join("REVIEWING.md"), "ours").unwrap();
    let again = run(&[
        "init",
        repo.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(again.stdout.contains("kept     REVIEWING.md"), "{again:?}");
    assert_eq!(fs::read_to_string(repo.join("REVIEWING.md")).unwrap(), "ours");
}
