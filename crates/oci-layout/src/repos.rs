//! The repositories: which exist (found by scanning the root at open), a
//! lock per repository around its state (read from disk the first time it
//! is needed), and the group commit of its `index.json`.
//!
//! A change is made in memory under the repository's lock, and queued as
//! a journal line; the lock is released and the change is then made
//! durable. Writers that change the repository while one write is under
//! way are all covered by the next one: a burst of pushes costs a few
//! writes, not one each. A caller returns only once a write holding its
//! change is on disk.
//!
//! A small repository (under [`JOURNAL_FROM`] index entries) is made
//! durable by rewriting `index.json`, as layout tools expect. A large one
//! appends its changes to the layout's `.journal` and syncs that, a cost
//! that does not grow with the number of tags; `index.json` is rewritten
//! (and the journal emptied) once the journal holds [`COMPACT_AT`] changes,
//! or [`COMPACT_AFTER`] after the last change, so tools reading the
//! directory see a change within that time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oci_core::{Algorithm, Error, ListOptions, RepoName, Result};
use tokio::sync::OwnedMutexGuard;

use crate::durable::{self, Durable};
use crate::error::{LayoutError, join_err};
use crate::fence::{self, Fence};
use crate::index::{Change, JOURNAL, LAYOUT_FILE, RepoState, empty_index};
use crate::paths::{Paths, component_of};

/// The number of index entries from which a repository's changes go to
/// its journal rather than each rewriting `index.json`.
pub(crate) const JOURNAL_FROM: usize = 1_024;

/// How many journal lines make the next write rewrite `index.json`.
const COMPACT_AT: u64 = 1_024;

/// How long after its last change a journal is folded into `index.json`.
const COMPACT_AFTER: Duration = Duration::from_millis(500);

/// One repository: its state behind its lock, and its index writes.
#[derive(Debug, Default)]
struct SlotInner {
    /// The state, once read from disk; `None` again after a failed write.
    state: Arc<tokio::sync::Mutex<Option<RepoState>>>,
    /// Counts the changes made in memory (never reset).
    changes: AtomicU64,
    /// The changes not yet written, in the order they were made.
    pending: Mutex<Vec<Change>>,
    /// Serializes writes; what the disk has.
    durable: tokio::sync::Mutex<OnDisk>,
    /// Whether a fold of the journal into `index.json` is scheduled.
    compaction: AtomicBool,
    /// Whether the layout's `blobs/` directories were synced since the
    /// last manifest file was linked into them (false at first, so the
    /// first write after opening syncs them whatever a crash left).
    dirs_synced: AtomicBool,
}

/// What a repository's files hold.
#[derive(Debug, Default)]
struct OnDisk {
    /// How many changes (of [`SlotInner::changes`]) are durable.
    changes: u64,
    /// Lines in the journal since `index.json` was last written.
    journal: u64,
}

/// A shared handle on one repository.
type Slot = Arc<SlotInner>;

/// The repositories of a store.
#[derive(Debug)]
pub(crate) struct Repos {
    paths: Paths,
    slots: Mutex<BTreeMap<RepoName, Slot>>,
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
        let slot = slot.ok_or_else(|| Error::name_unknown(repo))?;
        self.guard(repo, slot)
            .await
            .ok_or_else(|| Error::name_unknown(repo))
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
        let guard = slot.state.clone().lock_owned().await;
        let current = self
            .slots()
            .get(repo)
            .is_some_and(|s| Arc::ptr_eq(s, &slot));
        current.then(|| RepoGuard {
            repo: repo.clone(),
            paths: self.paths.clone(),
            slot,
            guard,
        })
    }
}

/// An exclusive hold on one repository.
pub(crate) struct RepoGuard {
    repo: RepoName,
    paths: Paths,
    slot: Slot,
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

    /// Records `change` (already made to the state), releases the lock and
    /// returns once the change is on disk. If a write fails, the memory
    /// copy is dropped so the next use reads what the disk holds, and
    /// every caller whose change it carried gets the error.
    pub(crate) async fn save(self, change: Change) -> Result<()> {
        let RepoGuard {
            repo,
            paths,
            slot,
            guard,
        } = self;
        let entries = guard.as_ref().map_or(0, RepoState::entries);
        slot.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(change);
        let mine = slot.changes.fetch_add(1, Ordering::SeqCst) + 1;
        drop(guard);
        let mut disk = slot.durable.lock().await;
        if disk.changes >= mine {
            return Ok(());
        }
        let changes =
            std::mem::take(&mut *slot.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let covers = disk.changes + changes.len() as u64;
        let journal = entries >= JOURNAL_FROM && disk.journal + (changes.len() as u64) < COMPACT_AT;
        let written = if journal {
            append_journal(&paths.repo_dir(&repo), &slot, &changes).await
        } else {
            write_index(&repo, &paths, &slot).await
        };
        match written {
            Ok(()) => {
                disk.changes = covers;
                if journal {
                    disk.journal += changes.len() as u64;
                    schedule_compaction(&repo, &paths, &slot);
                } else {
                    disk.journal = 0;
                }
                Ok(())
            }
            Err(err) => {
                *slot.state.lock().await = None;
                Err(err)
            }
        }
    }

    /// Notes that a manifest file was linked into the layout: the next
    /// write syncs the directories before listing it.
    pub(crate) fn linked(&self) {
        self.slot.dirs_synced.store(false, Ordering::SeqCst);
    }

    /// A shared hold on the repository's directory against garbage
    /// collection in any process (see [`crate::fence`]): take it before a
    /// change that links a blob or lists a manifest, keep it until the
    /// change is durable.
    pub(crate) async fn fence(&self) -> Result<Fence> {
        fence::shared(self.paths.repo_dir(&self.repo)).await
    }

    /// Drops the in-memory state (after the repository was removed).
    pub(crate) fn clear(&mut self) {
        *self.guard = None;
    }
}

/// Writes the state as `index.json` and empties the journal: the manifest
/// files it lists are synced first (they were linked without a directory
/// sync), then the index replaced atomically, then the journal cut (a
/// crash between the two replays changes the index already has, which
/// leaves it as it is).
async fn write_index(repo: &RepoName, paths: &Paths, slot: &SlotInner) -> Result<()> {
    let bytes = {
        let state = slot.state.lock().await;
        let Some(state) = state.as_ref() else {
            return Err(Error::internal(format!(
                "the index of {repo} could not be written; the change was not kept"
            )));
        };
        state.to_json()
    };
    // Every manifest the snapshot lists was linked (and marked) before it
    // entered the state, so before this.
    let sync_dirs = !slot.dirs_synced.swap(true, Ordering::SeqCst);
    let dir = paths.repo_dir(repo);
    let tmp = paths.tmp_file();
    tokio::task::spawn_blocking(move || {
        if sync_dirs {
            sync_manifest_dirs(&dir)?;
        }
        durable::write_atomic(&tmp, &dir.join("index.json"), &bytes)?;
        let journal = dir.join(JOURNAL);
        match std::fs::OpenOptions::new().write(true).open(&journal) {
            Ok(file) => file
                .set_len(0)
                .and_then(|()| file.sync_all())
                .map_err(|e| LayoutError::io("truncate", &journal, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LayoutError::io("open", &journal, e)),
        }
    })
    .await
    .map_err(join_err)
    .and_then(|r| r.map_err(Error::from))
    .inspect_err(|_| {
        if sync_dirs {
            slot.dirs_synced.store(false, Ordering::SeqCst);
        }
    })
}

/// Syncs the directories manifest files are linked into (blocking).
fn sync_manifest_dirs(dir: &Path) -> Durable {
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        let blobs = dir.join("blobs").join(alg.as_str());
        if blobs.is_dir() {
            durable::sync_dir(&blobs)?;
        }
    }
    Ok(())
}

/// Appends changes to the layout's journal and syncs it.
async fn append_journal(dir: &Path, slot: &SlotInner, changes: &[Change]) -> Result<()> {
    let mut lines = Vec::new();
    for change in changes {
        serde_json::to_writer(&mut lines, change).map_err(|e| {
            Error::internal(format!("cannot serialize a journal line: {e}")).with_source(e)
        })?;
        lines.push(b'\n');
    }
    // Every manifest file these changes list was linked (and marked)
    // before its change was queued, so before this.
    let sync_dirs = !slot.dirs_synced.swap(true, Ordering::SeqCst);
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || -> Durable {
        if sync_dirs {
            sync_manifest_dirs(&dir)?;
        }
        let path = dir.join(JOURNAL);
        let created = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LayoutError::io("open", &path, e))?;
        std::io::Write::write_all(&mut file, &lines)
            .and_then(|()| file.sync_data())
            .map_err(|e| LayoutError::io("append", &path, e))?;
        if created {
            durable::sync_dir(&dir)?;
        }
        Ok(())
    })
    .await
    .map_err(join_err)
    .and_then(|r| r.map_err(Error::from))
    .inspect_err(|_| {
        if sync_dirs {
            slot.dirs_synced.store(false, Ordering::SeqCst);
        }
    })
}

/// Folds the journal into `index.json` a while after the last change,
/// unless a fold is already due.
fn schedule_compaction(repo: &RepoName, paths: &Paths, slot: &Slot) {
    if slot.compaction.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        slot.compaction.store(false, Ordering::SeqCst);
        return;
    };
    // Weak: a store closed meanwhile is not written to by this task (its
    // journal is replayed by whoever opens it next).
    let (repo, paths, weak) = (repo.clone(), paths.clone(), Arc::downgrade(slot));
    runtime.spawn(async move {
        tokio::time::sleep(COMPACT_AFTER).await;
        let Some(slot) = weak.upgrade() else {
            return;
        };
        slot.compaction.store(false, Ordering::SeqCst);
        let mut disk = slot.durable.lock().await;
        if disk.journal == 0 {
            return;
        }
        match write_index(&repo, &paths, &slot).await {
            Ok(()) => disk.journal = 0,
            // The journal still holds the changes; the next write retries.
            Err(err) => {
                tracing::warn!(%repo, error = %err, "cannot fold the journal into index.json");
            }
        }
    });
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
