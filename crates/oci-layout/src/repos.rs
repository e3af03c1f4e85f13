//! The repositories: which exist (found by scanning the root at open), a
//! lock per repository around its `index.json`, and its state, read from
//! disk the first time it is needed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use oci_core::{Error, ErrorCode, ListOptions, RepoName, Result};
use tokio::sync::OwnedMutexGuard;

use crate::durable::{self, Durable};
use crate::error::{LayoutError, join_err};
use crate::index::{LAYOUT_FILE, RepoState, empty_index};
use crate::paths::{Paths, component_of};

/// One repository's lock and (once read) state.
type Slot = Arc<tokio::sync::Mutex<Option<RepoState>>>;

/// The repositories of a store.
#[derive(Debug)]
pub(crate) struct Repos {
    paths: Paths,
    slots: Mutex<BTreeMap<RepoName, Slot>>,
}

/// `NAME_UNKNOWN` for a repository that does not exist.
pub(crate) fn name_unknown(repo: &RepoName) -> Error {
    Error::new(
        ErrorCode::NameUnknown,
        format!("repository {repo} is not known"),
    )
}

impl Repos {
    /// The repositories found under the root (blocking): every directory
    /// holding an `oci-layout` file.
    pub(crate) fn scan(paths: Paths) -> Durable<Repos> {
        let mut found = BTreeMap::new();
        scan_dir(paths.root(), "", &mut found)?;
        tracing::debug!(root = %paths.root().display(), repositories = found.len(), "store opened");
        Ok(Repos {
            paths,
            slots: Mutex::new(found),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<RepoName, Slot>> {
        // No code path panics while holding this lock with the map half-changed.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The repository names, paginated.
    pub(crate) fn names(&self, options: &ListOptions) -> Vec<RepoName> {
        options.apply(self.slots().keys().cloned())
    }

    /// Locks an existing repository; `NAME_UNKNOWN` if there is none.
    pub(crate) async fn lock(&self, repo: &RepoName) -> Result<RepoGuard> {
        let slot = self.slots().get(repo).cloned();
        let slot = slot.ok_or_else(|| name_unknown(repo))?;
        self.guard(repo, slot)
            .await
            .ok_or_else(|| name_unknown(repo))
    }

    /// Locks a repository, creating its layout on disk first if need be.
    pub(crate) async fn lock_or_create(&self, repo: &RepoName) -> Result<RepoGuard> {
        loop {
            let existing = self.slots().get(repo).cloned();
            if let Some(slot) = existing {
                match self.guard(repo, slot).await {
                    Some(guard) => return Ok(guard),
                    // Removed by garbage collection while we waited.
                    None => continue,
                }
            }
            let dir = self.paths.repo_dir(repo);
            let tmp = (self.paths.tmp_file(), self.paths.tmp_file());
            tokio::task::spawn_blocking(move || create_layout(&dir, &tmp.0, &tmp.1))
                .await
                .map_err(join_err)??;
            self.slots().entry(repo.clone()).or_default();
            tracing::debug!(%repo, "repository created");
        }
    }

    /// Forgets a repository whose directory was removed.
    pub(crate) fn forget(&self, repo: &RepoName) {
        self.slots().remove(repo);
    }

    /// Locks `slot`, unless the repository was removed meanwhile.
    async fn guard(&self, repo: &RepoName, slot: Slot) -> Option<RepoGuard> {
        let guard = slot.clone().lock_owned().await;
        let current = self
            .slots()
            .get(repo)
            .is_some_and(|s| Arc::ptr_eq(s, &slot));
        current.then(|| RepoGuard {
            repo: repo.clone(),
            paths: self.paths.clone(),
            guard,
        })
    }
}

/// An exclusive hold on one repository.
pub(crate) struct RepoGuard {
    repo: RepoName,
    paths: Paths,
    guard: OwnedMutexGuard<Option<RepoState>>,
}

impl RepoGuard {
    /// The repository's state, read from disk if not yet in memory.
    pub(crate) async fn state(&mut self) -> Result<&mut RepoState> {
        if self.guard.is_none() {
            let dir = self.paths.repo_dir(&self.repo);
            let state = tokio::task::spawn_blocking(move || RepoState::load(&dir))
                .await
                .map_err(join_err)??;
            *self.guard = Some(state);
        }
        match self.guard.as_mut() {
            Some(state) => Ok(state),
            None => Err(Error::internal("repository state vanished")),
        }
    }

    /// Writes the state's `index.json` atomically. On failure the memory
    /// copy is dropped, so the next use reads what the disk holds.
    pub(crate) async fn save(&mut self) -> Result<()> {
        let Some(state) = self.guard.as_ref() else {
            return Ok(());
        };
        let bytes = state.to_json();
        let target = self.paths.repo_dir(&self.repo).join("index.json");
        let tmp = self.paths.tmp_file();
        let written =
            tokio::task::spawn_blocking(move || durable::write_atomic(&tmp, &target, &bytes))
                .await
                .map_err(join_err)
                .and_then(|r| r.map_err(Error::from));
        if written.is_err() {
            *self.guard = None;
        }
        written
    }

    /// Drops the in-memory state (after the repository was removed).
    pub(crate) fn clear(&mut self) {
        *self.guard = None;
    }
}

/// Creates a layout directory with an empty index (blocking); the
/// `oci-layout` file, which marks it as a repository, comes last.
fn create_layout(dir: &Path, tmp_index: &Path, tmp_layout: &Path) -> Durable {
    durable::ensure_dir(&dir.join("blobs"))?;
    let index = dir.join("index.json");
    if !index.exists() {
        durable::write_atomic(tmp_index, &index, &empty_index())?;
    }
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        durable::write_atomic(tmp_layout, &layout, LAYOUT_FILE)?;
    }
    Ok(())
}

/// Finds layout directories under `dir`, whose repository name is `prefix`.
fn scan_dir(dir: &Path, prefix: &str, found: &mut BTreeMap<RepoName, Slot>) -> Durable {
    let entries = std::fs::read_dir(dir).map_err(|e| LayoutError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LayoutError::io("list", dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(component) = component_of(&name) else {
            continue;
        };
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let full = if prefix.is_empty() {
            component.to_owned()
        } else {
            format!("{prefix}/{component}")
        };
        if path.join("oci-layout").is_file() {
            match full.parse::<RepoName>() {
                Ok(repo) => {
                    found.insert(repo, Slot::default());
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "not a repository name")
                }
            }
        }
        scan_dir(&path, &full, found)?;
    }
    Ok(())
}
