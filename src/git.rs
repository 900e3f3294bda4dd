//! The policy repository, through git2, for the bot and the node alike. Each
//! keeps a bare mirror under `data_dir` and fetches the base branch; the bot
//! also fetches its own `shadowdraft/*` branches, builds commits in memory (no
//! work tree), and pushes only `shadowdraft/*`: it never writes the base branch.

use crate::config::Committer;
use crate::core::draft::FileChange;
use crate::core::names;
use crate::core::plan::ForeignCommit;
use crate::core::policies::{RepoFiles, AGENTS_DIR, SCHEMA_PATH};
use anyhow::{anyhow, bail, Context};
use git2::{
    AutotagOption, Cred, FetchOptions, FetchPrune, IndexEntry, IndexTime, Oid, PushOptions, RemoteCallbacks,
    Repository, Signature,
};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

/// The prefix of every branch the bot owns.
pub const BRANCH_PREFIX: &str = "shadowdraft/";

/// The agent's proposal branch: `shadowdraft/<safe name>` (see [`crate::core::names`]).
pub fn branch_for(agent: &str) -> String {
    format!("{BRANCH_PREFIX}{}", names::safe_name(agent))
}

/// The agent a bot branch proposes for, when its name can be read back
/// (a shortened name cannot: look the agent up by its pull request).
pub fn agent_of_branch(branch: &str) -> Option<String> {
    names::agent_of(branch.strip_prefix(BRANCH_PREFIX)?)
}

/// HTTP Basic credentials for fetch and push (GitHub: `x-access-token` + installation token).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

pub struct PolicyRepo {
    repo: Repository,
    base: String,
    committer: Committer,
}

impl PolicyRepo {
    /// Open (or create) the bare mirror at `dir`, fetching from `url`.
    pub fn open(dir: &Path, url: &str, base: &str, committer: Committer) -> anyhow::Result<PolicyRepo> {
        let repo = match Repository::open_bare(dir) {
            Ok(r) => r,
            Err(_) => {
                Repository::init_bare(dir).with_context(|| format!("cannot create {}", dir.display()))?
            }
        };
        match repo.find_remote("origin") {
            Ok(remote) if remote.url().ok() == Some(url) => {}
            Ok(_) => repo.remote_set_url("origin", url)?,
            Err(_) => {
                repo.remote("origin", url)?;
            }
        }
        Ok(PolicyRepo {
            repo,
            base: base.to_string(),
            committer,
        })
    }

    /// Fetch the base branch and the bot's branches; returns the base tip.
    pub fn fetch(&self, credentials: Option<&Credentials>) -> anyhow::Result<Oid> {
        let mut remote = self.repo.find_remote("origin")?;
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks(credentials));
        options.prune(FetchPrune::On);
        options.download_tags(AutotagOption::None);
        let base = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.base);
        let ours = format!("+refs/heads/{BRANCH_PREFIX}*:refs/remotes/origin/{BRANCH_PREFIX}*");
        remote
            .fetch(&[base.as_str(), ours.as_str()], Some(&mut options), None)
            .context("cannot fetch the policy repository")?;
        self.remote_tip(&self.base)?
            .ok_or_else(|| anyhow!("the policy repository has no branch `{}`", self.base))
    }

    /// The fetched tip of a branch, if the remote has it.
    pub fn remote_tip(&self, branch: &str) -> anyhow::Result<Option<Oid>> {
        match self.repo.refname_to_id(&format!("refs/remotes/origin/{branch}")) {
            Ok(oid) => Ok(Some(oid)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The policy files as of `commit`.
    pub fn files(&self, commit: Oid) -> anyhow::Result<RepoFiles> {
        tree_files(&self.repo, &self.repo.find_commit(commit)?.tree()?)
    }

    /// Commits reachable from `tip` but not from `base` that someone else wrote.
    pub fn foreign_commits(&self, tip: Oid, base: Oid) -> anyhow::Result<Vec<ForeignCommit>> {
        let mut walk = self.repo.revwalk()?;
        walk.push(tip)?;
        walk.hide(base)?;
        let mut out = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            let ours = [commit.author(), commit.committer()]
                .iter()
                .all(|who| who.email().ok() == Some(self.committer.email.as_str()));
            if !ours {
                out.push(ForeignCommit {
                    sha: commit.id().to_string(),
                    author: commit.author().name().unwrap_or("someone").to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Does the mirror have this commit?
    pub fn knows(&self, commit: &str) -> bool {
        Oid::from_str(commit).is_ok_and(|oid| self.repo.find_commit(oid).is_ok())
    }

    /// Is `commit` (as the mirror knows it) `ancestor` or a descendant of it?
    pub fn includes(&self, commit: &str, ancestor: &str) -> bool {
        let (Ok(commit), Ok(ancestor)) = (Oid::from_str(commit), Oid::from_str(ancestor)) else {
            return false;
        };
        commit == ancestor || self.repo.graph_descendant_of(commit, ancestor).unwrap_or(false)
    }

    /// Do two commits hold the same files?
    pub fn same_tree(&self, a: Oid, b: Oid) -> anyhow::Result<bool> {
        Ok(self.repo.find_commit(a)?.tree_id() == self.repo.find_commit(b)?.tree_id())
    }

    /// The first parent of a commit.
    pub fn parent(&self, commit: Oid) -> anyhow::Result<Option<Oid>> {
        Ok(self.repo.find_commit(commit)?.parent_ids().next())
    }

    /// A commit on top of `parent` with the changed files, written to the
    /// local branch `branch` (not pushed yet).
    pub fn commit(
        &self,
        parent: Oid,
        branch: &str,
        changes: &BTreeMap<String, FileChange>,
        message: &str,
    ) -> anyhow::Result<Oid> {
        let parent = self.repo.find_commit(parent)?;
        // The bare repository's index is only scratch space for building the tree.
        let mut index = self.repo.index()?;
        index.read_tree(&parent.tree()?)?;
        for (path, change) in changes {
            index.add_frombuffer(&entry(path), change.after.as_bytes())?;
        }
        let tree = self.repo.find_tree(index.write_tree_to(&self.repo)?)?;
        let who = Signature::now(&self.committer.name, &self.committer.email)?;
        let oid = self.repo.commit(None, &who, &who, message, &tree, &[&parent])?;
        self.repo
            .reference(&format!("refs/heads/{branch}"), oid, true, "shadowdraft draft")?;
        Ok(oid)
    }

    /// Push the local `branch` over the remote one (the bot rebuilds its
    /// branches from the base; callers check for foreign commits first).
    pub fn push(&self, branch: &str, credentials: Option<&Credentials>) -> anyhow::Result<()> {
        anyhow::ensure!(
            branch.starts_with(BRANCH_PREFIX),
            "refusing to push `{branch}`: not a bot branch"
        );
        let mut remote = self.repo.find_remote("origin")?;
        let rejected = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
        let mut callbacks = callbacks(credentials);
        let sink = rejected.clone();
        callbacks.push_update_reference(move |name, status| {
            if let Some(status) = status {
                *sink.borrow_mut() = Some(format!("{name}: {status}"));
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        let spec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        remote
            .push(&[spec.as_str()], Some(&mut options))
            .with_context(|| format!("cannot push {branch}"))?;
        if let Some(reason) = rejected.borrow_mut().take() {
            bail!("the policy repository refused the push: {reason}");
        }
        // Keep the remote-tracking ref in step, as a fetch would.
        let oid = self.repo.refname_to_id(&format!("refs/heads/{branch}"))?;
        self.repo
            .reference(&format!("refs/remotes/origin/{branch}"), oid, true, "pushed")?;
        Ok(())
    }

    /// Delete a bot branch on the remote (a closed proposal's).
    pub fn delete_branch(&self, branch: &str, credentials: Option<&Credentials>) -> anyhow::Result<()> {
        anyhow::ensure!(
            branch.starts_with(BRANCH_PREFIX),
            "refusing to delete `{branch}`: not a bot branch"
        );
        let mut remote = self.repo.find_remote("origin")?;
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks(credentials));
        let spec = format!(":refs/heads/{branch}");
        remote
            .push(&[spec.as_str()], Some(&mut options))
            .with_context(|| format!("cannot delete {branch}"))?;
        for name in [
            format!("refs/remotes/origin/{branch}"),
            format!("refs/heads/{branch}"),
        ] {
            if let Ok(mut reference) = self.repo.find_reference(&name) {
                reference.delete()?;
            }
        }
        Ok(())
    }
}

fn entry(path: &str) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: Oid::ZERO_SHA1,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// Answer credential requests once: a second request means they were refused.
fn callbacks(credentials: Option<&Credentials>) -> RemoteCallbacks<'static> {
    let mut callbacks = RemoteCallbacks::new();
    if let Some(c) = credentials.cloned() {
        let asked = Cell::new(false);
        callbacks.credentials(move |_url, _user, _allowed| {
            if asked.replace(true) {
                return Err(git2::Error::from_str(
                    "the policy repository refused the credentials",
                ));
            }
            Cred::userpass_plaintext(&c.user, &c.password)
        });
    }
    callbacks
}

/// The policy files of a tree: the schema and `policies/agents/*.cedar`.
fn tree_files(repo: &Repository, tree: &git2::Tree<'_>) -> anyhow::Result<RepoFiles> {
    let text = |blob: Oid, path: &str| -> anyhow::Result<String> {
        let blob = repo.find_blob(blob)?;
        String::from_utf8(blob.content().to_vec()).map_err(|_| anyhow!("{path} is not UTF-8"))
    };
    let mut files = RepoFiles::default();
    if let Ok(entry) = tree.get_path(Path::new(SCHEMA_PATH)) {
        files.schema = Some(text(entry.id(), SCHEMA_PATH)?);
    }
    if let Ok(entry) = tree.get_path(Path::new(AGENTS_DIR)) {
        let agents = repo
            .find_tree(entry.id())
            .context("policies/agents is not a directory")?;
        for entry in agents.iter() {
            let Ok(name) = entry.name() else { continue };
            if name.ends_with(".cedar") && entry.kind() == Some(git2::ObjectType::Blob) {
                let path = format!("{AGENTS_DIR}/{name}");
                files.agents.insert(path.clone(), text(entry.id(), &path)?);
            }
        }
    }
    Ok(files)
}

/// The policy files of the policy repository in `dir` (a git work tree, or a
/// folder inside one) as of `rev` (a branch, tag or commit), and that commit's id.
pub fn files_at_revision(dir: &Path, rev: &str) -> anyhow::Result<(String, RepoFiles)> {
    let repo =
        Repository::discover(dir).with_context(|| format!("{} is not in a git repository", dir.display()))?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .with_context(|| format!("`{rev}` is not a commit of {}", dir.display()))?;
    let mut tree = commit.tree()?;
    let root = repo.workdir().map(Path::to_path_buf);
    let inside = match (root, dir.canonicalize()) {
        (Some(root), Ok(dir)) => root
            .canonicalize()
            .ok()
            .and_then(|root| dir.strip_prefix(root).ok().map(Path::to_path_buf)),
        _ => None,
    };
    if let Some(prefix) = inside.filter(|p| !p.as_os_str().is_empty()) {
        let entry = tree
            .get_path(&prefix)
            .with_context(|| format!("{} is not in `{rev}`", prefix.display()))?;
        tree = repo.find_tree(entry.id())?;
    }
    Ok((commit.id().to_string(), tree_files(&repo, &tree)?))
}

/// Create a bare repository whose base branch holds `files`: the embedded
/// default's policy repository. Does nothing if it exists.
pub fn init_bare(
    dir: &Path,
    base: &str,
    files: &[(&str, &str)],
    committer: &Committer,
) -> anyhow::Result<()> {
    if Repository::open_bare(dir).is_ok() {
        return Ok(());
    }
    let repo = Repository::init_bare(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut index = repo.index()?;
    for (path, text) in files {
        index.add_frombuffer(&entry(path), text.as_bytes())?;
    }
    let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
    let who = Signature::now(&committer.name, &committer.email)?;
    let head = format!("refs/heads/{base}");
    repo.commit(Some(&head), &who, &who, "Policy repository layout", &tree, &[])?;
    repo.set_head(&head)?;
    Ok(())
}
