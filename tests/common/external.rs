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
