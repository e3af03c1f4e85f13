//! The hot manifests: the verified bytes of recently read manifest files,
//! kept in memory (at most [`HOT_MANIFEST_BYTES`] in all) so that a GET of
//! a popular tag costs one `stat` rather than a blocking-pool round trip,
//! a read and a hash.
//!
//! The file stays the truth: an entry is served only while its file is
//! the same file (device and inode) with the same size, modification and
//! status-change times as when its bytes were read and checked against
//! the digest, the rule [`crate::verified`] applies to blobs. A file
//! removed, replaced, rewritten or relinked (by this process, by garbage
//! collection in another, by hand) fails that check and is read again. A
//! manifest's bytes are fixed by its digest, so an entry can never hold
//! the wrong bytes for the file it names; which manifest a tag names is
//! the repository's index state (see [`crate::repos`]), looked up before
//! this cache on every read. With [`crate::VerifyReads::Always`] nothing
//! is kept: every read hashes the file.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use crate::verified::Stamp;

/// The most manifest bytes kept in memory.
pub(crate) const HOT_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// One kept manifest.
#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    stamp: Stamp,
    /// When it was last served, in [`Entries::clock`] ticks.
    used: u64,
}

#[derive(Debug, Default)]
struct Entries {
    by_path: HashMap<PathBuf, Entry>,
    /// The bytes held by every entry.
    held: usize,
    /// Counts lookups and insertions: the age of an entry.
    clock: u64,
}

/// Verified manifest bytes by file path, bounded by their total size.
#[derive(Debug)]
pub(crate) struct HotManifests {
    budget: usize,
    entries: Mutex<Entries>,
}

impl HotManifests {
    /// An empty cache holding at most `budget` bytes (0: keeps nothing).
    pub(crate) fn new(budget: usize) -> HotManifests {
        HotManifests {
            budget,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Whether the cache keeps anything at all.
    pub(crate) fn enabled(&self) -> bool {
        self.budget > 0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every change under the lock leaves the map and its count consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes kept for the file at `path`, if its current metadata
    /// `meta` shows it unchanged since they were read.
    pub(crate) fn get(&self, path: &Path, meta: &Metadata) -> Option<Bytes> {
        let mut entries = self.entries();
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_path.get_mut(path)?;
        if entry.stamp != Stamp::of(meta) {
            return None;
        }
        entry.used = now;
        Some(entry.bytes.clone())
    }

    /// Keeps `bytes`, checked against the manifest's digest, as the
    /// content of the file at `path` whose metadata, taken before reading
    /// it, was `meta`. The least recently served entries make room; a
    /// manifest larger than a quarter of the budget is not kept.
    pub(crate) fn insert(&self, path: PathBuf, meta: &Metadata, bytes: Bytes) {
        let size = bytes.len();
        if size > self.budget / 4 {
            return;
        }
        let mut entries = self.entries();
        entries.clock += 1;
        let entry = Entry {
            bytes,
            stamp: Stamp::of(meta),
            used: entries.clock,
        };
        if let Some(old) = entries.by_path.insert(path, entry) {
            entries.held -= old.bytes.len();
        }
        entries.held += size;
        if entries.held > self.budget {
            evict(&mut entries, self.budget / 4 * 3);
        }
    }

    /// Forgets the file at `path` (a manifest deleted).
    pub(crate) fn remove(&self, path: &Path) {
        let mut entries = self.entries();
        if let Some(old) = entries.by_path.remove(path) {
            entries.held -= old.bytes.len();
        }
    }

    /// The bytes kept now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.entries().held
    }
}

/// Drops the least recently served entries until at most `target` bytes
/// are held: one sort per eviction round, which frees a quarter of the
/// budget, so an insertion costs O(log n) on average.
fn evict(entries: &mut Entries, target: usize) {
    let mut ages: Vec<(u64, PathBuf)> = entries
        .by_path
        .iter()
        .map(|(path, entry)| (entry.used, path.clone()))
        .collect();
    ages.sort_unstable_by_key(|(used, _)| *used);
    for (_, path) in ages {
        if entries.held <= target {
            break;
        }
        if let Some(old) = entries.by_path.remove(&path) {
            entries.held -= old.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, size: usize) -> (PathBuf, Metadata, Bytes) {
        let path = dir.join(name);
        let bytes = Bytes::from(vec![b'x'; size]);
        std::fs::write(&path, &bytes).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        (path, meta, bytes)
    }

    #[test]
    fn stays_within_its_budget_keeping_the_recently_served() {
        let dir = tempfile::tempdir().unwrap();
        let hot = HotManifests::new(64 * 1024);
        let (hot_path, hot_meta, hot_bytes) = file(dir.path(), "hot", 1000);
        hot.insert(hot_path.clone(), &hot_meta, hot_bytes.clone());
        for n in 0..500 {
            let (path, meta, bytes) = file(dir.path(), &format!("m{n}"), 1000);
            hot.insert(path, &meta, bytes);
            assert!(hot.held() <= 64 * 1024, "{} bytes held", hot.held());
            // Served all along, the hot one stays.
            assert_eq!(hot.get(&hot_path, &hot_meta), Some(hot_bytes.clone()));
        }
        let (path, meta, _) = file(dir.path(), "m0", 1000);
        assert_eq!(hot.get(&path, &meta), None, "the oldest went");
        let (path, meta, bytes) = file(dir.path(), "big", 17 * 1024);
        hot.insert(path.clone(), &meta, bytes);
        assert_eq!(hot.get(&path, &meta), None, "over a quarter of the budget");
    }

    #[test]
    fn a_changed_file_is_not_served_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let hot = HotManifests::new(64 * 1024);
        let (path, meta, bytes) = file(dir.path(), "m", 100);
        hot.insert(path.clone(), &meta, bytes.clone());
        assert_eq!(hot.get(&path, &meta), Some(bytes));
        // Replaced by another file (a new inode) of the same size.
        let (new, _, _) = file(dir.path(), "m.new", 100);
        std::fs::rename(&new, &path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(hot.get(&path, &meta), None);
        hot.remove(&path);
        assert_eq!(hot.held(), 0);
    }
}
