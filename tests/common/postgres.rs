//! A throwaway PostgreSQL cluster for tests and benches: `initdb` and
//! `pg_ctl` from Debian's `postgresql` package (installed by
//! `.ci/install-test-deps`), on a free loopback port, in a temporary
//! directory that goes with it. PostgreSQL refuses to run as root, and CI runs
//! as root: the cluster then runs as the unprivileged `postgres` user the
//! package creates (or `nobody`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Superuser of the cluster; loopback connections are trusted.
pub const USER: &str = "shadowdraft";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Who runs the server when the tests run as root.
    runs_as: Option<String>,
    pub port: u16,
}

impl Cluster {
    /// A cluster for tests: fsync off (replicas die in the tests, PostgreSQL does not).
    pub fn start() -> Cluster {
        Cluster::start_with(&["-c", "fsync=off", "-c", "synchronous_commit=off"])
    }

    /// A cluster as it would run in production (every commit flushed), for benches.
    pub fn start_durable() -> Cluster {
        Cluster::start_with(&[])
    }

    fn start_with(settings: &[&str]) -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("shadowdraft-pg-")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        let runs_as = is_root().then(unprivileged_user);
        if let Some(user) = &runs_as {
            run(Command::new("chmod").arg("0755").arg(dir.path()), "chmod");
            run(
                Command::new("chown").arg(format!("{user}:")).arg(dir.path()),
                "chown",
            );
        }
        let port = free_port();
        let cluster = Cluster {
            dir,
            bin,
            runs_as,
            port,
        };
        let data = cluster.data();
        cluster.server(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c max_connections=200",
            cluster.dir.path().display()
        );
        for pair in settings.chunks(2) {
            options.push_str(&format!(" {} {}", pair[0], pair[1]));
        }
        std::fs::write(cluster.dir.path().join("options"), options).unwrap();
        cluster.start_again();
        cluster
    }

    /// `postgres://` URL of `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Create `name` and return its URL.
    pub fn create_database(&self, name: &str) -> String {
        let out = self.client("createdb", &[name]);
        assert!(out.status.success(), "createdb {name}: {}", text(&out));
        self.url(name)
    }

    /// Run one SQL statement; its rows, one per line, fields split by `|`.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self.client("psql", &["-At", "-d", database, "-c", sql]);
        assert!(out.status.success(), "psql {sql}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stop the server (clients are disconnected); [`Cluster::start_again`] brings it back.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Start the server on the same port and data.
    pub fn start_again(&self) {
        let options = std::fs::read_to_string(self.dir.path().join("options")).unwrap();
        let log = self.dir.path().join("server.log");
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
        ]);
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        self.server("pg_ctl", &all);
    }

    /// A server program, as the unprivileged user when we are root.
    fn server(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = match &self.runs_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command.args(args).current_dir(self.dir.path());
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\nserver log:\n{}",
            text(&out),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// A client program, over loopback TCP.
    fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new(self.bin.join(program))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "stop", "-m", "immediate", "-w"];
        let _ = match &self.runs_as {
            Some(user) => Command::new("runuser")
                .arg("-u")
                .arg(user)
                .arg("--")
                .arg(&path)
                .args(args)
                .output(),
            None => Command::new(&path).args(args).output(),
        };
    }
}

/// Debian keeps the server programs in /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|bin| bin.join("initdb").exists());
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(bin) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb and pg_ctl are missing: run .ci/install-test-deps (it installs Debian's `postgresql` package)"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn unprivileged_user() -> String {
    let exists = |user: &str| {
        Command::new("id")
            .arg(user)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ["postgres", "nobody"]
        .into_iter()
        .find(|u| exists(u))
        .expect("an unprivileged user (postgres or nobody) to run PostgreSQL as")
        .to_string()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(out.status.success(), "{what}: {}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
