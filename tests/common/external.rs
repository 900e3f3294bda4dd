//! Programs the tests run that this project did not write (MCP servers and
//! clients, the OpenTelemetry SDK, PostgreSQL, an SMT solver). `.ci/run`
//! installs them with `.ci/install-test-deps`; a test that needs one that is
//! missing fails and says how to get it (it is never skipped).

use std::path::PathBuf;

/// Where `.ci/install-test-deps` puts what it installs.
pub fn deps_dir() -> PathBuf {
    match std::env::var_os("SHADOWDRAFT_TEST_DEPS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/shadowdraft-ci/deps")
        }
    }
}

/// A file under the deps directory, which must exist.
pub fn installed(relative: &str) -> PathBuf {
    let path = deps_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run .ci/install-test-deps (or .ci/run) first",
        path.display()
    );
    path
}

/// The Python of the virtualenv that holds the OpenTelemetry SDK and its OTLP/HTTP exporter.
pub fn otel_python() -> PathBuf {
    installed("otel-python/bin/python")
}

/// The SMT solver the proofs use: cvc5 on `PATH` (Debian's, installed by
/// `.ci/install-test-deps`). Fails with instructions when it is missing.
pub fn cvc5() -> shadowdraft::proof::SolverCommand {
    let solver = shadowdraft::proof::SolverCommand::default();
    if let Err(e) = solver.version() {
        panic!("{e}\nrun .ci/install-test-deps (or .ci/run) first");
    }
    solver
}

/// An npm package installed under `deps/npm/node_modules`.
pub fn npm_package(name: &str) -> PathBuf {
    installed(&format!("npm/node_modules/{name}"))
}

/// `node` itself, which must be on PATH (`.ci/install-test-deps` installs it).
pub fn node() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("node"))
            .find(|p| p.is_file())
    });
    found.expect("node is not on PATH: run .ci/install-test-deps (or .ci/run) first")
}

/// The command line of an upstream MCP server from npm: `node <its entry point> ARGS…`.
pub fn mcp_server(package: &str, entry: &str, args: &[&str]) -> Vec<String> {
    let script = npm_package(package).join(entry);
    assert!(
        script.exists(),
        "{} is missing: run .ci/install-test-deps",
        script.display()
    );
    let mut argv = vec![node().display().to_string(), script.display().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// `@modelcontextprotocol/server-filesystem` serving `dirs`.
pub fn filesystem_server(dirs: &[&str]) -> Vec<String> {
    mcp_server("@modelcontextprotocol/server-filesystem", "dist/index.js", dirs)
}

/// `@modelcontextprotocol/server-everything` over stdio.
pub fn everything_server() -> Vec<String> {
    mcp_server(
        "@modelcontextprotocol/server-everything",
        "dist/index.js",
        &["stdio"],
    )
}
