//! The state one client keeps across calls, beside its connections and
//! tokens: where it left the upload sessions it closed ([`crate::writer`])
//! and the locks that serialise its referrers fallback tag updates
//! ([`crate::fallback`]). A low module: it imports nothing of the crate,
//! so the modules that use the state do not import each other.

use std::hash::{DefaultHasher, Hash, Hasher};

use oci_core::{Digest, RepoName};

/// The per-client state shared by every clone of a client.
#[derive(Debug, Default)]
pub(crate) struct ClientState {
    /// Upload offsets this client left sessions at, by upload id.
    pub(crate) upload_offsets: UploadOffsets,
    /// Serialises this client's updates of referrers fallback tags.
    pub(crate) fallback_locks: FallbackLocks,
}

/// The offsets this client closed upload sessions at, by upload id;
/// bounded, forgetting everything when full.
#[derive(Debug, Default)]
pub(crate) struct UploadOffsets(std::sync::Mutex<std::collections::HashMap<String, u64>>);

/// How many closed sessions are remembered.
const REMEMBERED_UPLOADS: usize = 4096;

impl UploadOffsets {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn remember(&self, id: &str, offset: u64) {
        let mut map = self.lock();
        if map.len() >= REMEMBERED_UPLOADS {
            map.clear();
        }
        map.insert(id.to_owned(), offset);
    }

    pub(crate) fn take(&self, id: &str) -> Option<u64> {
        self.lock().remove(id)
    }
}

/// Locks for fallback-tag updates, striped by repository and subject.
#[derive(Debug)]
pub(crate) struct FallbackLocks([tokio::sync::Mutex<()>; 16]);

impl Default for FallbackLocks {
    fn default() -> Self {
        FallbackLocks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl FallbackLocks {
    pub(crate) fn of(&self, repo: &RepoName, subject: &Digest) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        (repo.as_str(), subject.to_string()).hash(&mut hasher);
        &self.0[(hasher.finish() % self.0.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_taken_once_and_bounded() {
        let offsets = UploadOffsets::default();
        offsets.remember("u1", 1);
        assert_eq!(offsets.take("u1"), Some(1));
        assert_eq!(offsets.take("u1"), None, "taken once");
        for i in 0..=REMEMBERED_UPLOADS {
            offsets.remember(&i.to_string(), i as u64);
        }
        assert!(offsets.lock().len() <= REMEMBERED_UPLOADS);
    }

    #[test]
    fn a_subject_always_gets_the_same_lock() {
        let locks = FallbackLocks::default();
        let repo: RepoName = "a/b".parse().unwrap();
        let subject = Digest::sha256(b"subject");
        assert!(std::ptr::eq(
            locks.of(&repo, &subject),
            locks.of(&repo, &subject)
        ));
    }
}
