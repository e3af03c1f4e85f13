//! Upload session accounting: the sessions this server opened and has not
//! seen committed, cancelled or expired, counted per repository and in
//! total against [`crate::Limits`].
//!
//! The count is the server's own, kept in memory: after a restart it starts
//! at zero even if the store still holds sessions opened before, which the
//! store's `expire_uploads` sweeps in time. A session the store no longer
//! knows (`BLOB_UPLOAD_UNKNOWN`) stops being counted when a client next
//! names it, and every session stops being counted when it has been idle
//! for the upload expiry.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use oci_core::{Error, ErrorCode, RepoName};

use crate::limits::Limits;

/// How long a client refused a session is asked to wait.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The open sessions and their counts.
#[derive(Debug)]
pub(crate) struct Sessions {
    max_total: usize,
    max_per_repo: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Open sessions by id: their repository and when they were last used.
    open: HashMap<String, (RepoName, Instant)>,
    /// Open and reserved sessions per repository.
    per_repo: HashMap<RepoName, usize>,
    /// Open and reserved sessions in total.
    total: usize,
}

impl State {
    fn release(&mut self, repo: &RepoName) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_repo.get_mut(repo) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_repo.remove(repo);
            }
        }
    }
}

/// A place for a session about to be opened; given back when dropped
/// unless [`Reservation::opened`] records the session.
pub(crate) struct Reservation<'a> {
    sessions: &'a Sessions,
    repo: RepoName,
    kept: bool,
}

impl Reservation<'_> {
    /// Records the opened session `id`.
    pub(crate) fn opened(mut self, id: &str) {
        let mut state = self.sessions.lock();
        state
            .open
            .insert(id.to_owned(), (self.repo.clone(), Instant::now()));
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.sessions.lock().release(&self.repo);
        }
    }
}

impl Sessions {
    /// Accounting against the limits' session caps.
    pub(crate) fn new(limits: &Limits) -> Sessions {
        Sessions {
            max_total: limits.max_uploads,
            max_per_repo: limits.max_uploads_per_repo,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a place for a new session in `repo`, or `TOOMANYREQUESTS`.
    pub(crate) fn reserve(&self, repo: &RepoName) -> Result<Reservation<'_>, Error> {
        let mut state = self.lock();
        let in_repo = state.per_repo.get(repo).copied().unwrap_or_default();
        if state.total >= self.max_total || in_repo >= self.max_per_repo {
            let (scope, max) = if in_repo >= self.max_per_repo {
                (format!("repository {repo}"), self.max_per_repo)
            } else {
                ("this registry".to_owned(), self.max_total)
            };
            return Err(Error::new(
                ErrorCode::TooManyRequests,
                format!(
                    "{scope} has {max} open upload sessions, the most it allows; finish or cancel one"
                ),
            ));
        }
        state.total += 1;
        *state.per_repo.entry(repo.clone()).or_default() += 1;
        Ok(Reservation {
            sessions: self,
            repo: repo.clone(),
            kept: false,
        })
    }

    /// Notes that session `id` was used.
    pub(crate) fn touch(&self, id: &str) {
        if let Some((_, used)) = self.lock().open.get_mut(id) {
            *used = Instant::now();
        }
    }

    /// Stops counting session `id` (committed, cancelled, or unknown to
    /// the store).
    pub(crate) fn ended(&self, id: &str) {
        let mut state = self.lock();
        if let Some((repo, _)) = state.open.remove(id) {
            state.release(&repo);
        }
    }

    /// Stops counting the sessions unused for `idle` or longer; returns how
    /// many.
    pub(crate) fn expire(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut state = self.lock();
        let stale: Vec<String> = state
            .open
            .iter()
            .filter(|(_, (_, used))| now.saturating_duration_since(*used) >= idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            if let Some((repo, _)) = state.open.remove(id) {
                state.release(&repo);
            }
        }
        stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_until_they_end_or_expire() {
        let sessions = Sessions::new(&Limits::new().max_uploads(3).max_uploads_per_repo(2));
        let a: RepoName = "a".parse().unwrap();
        let b: RepoName = "b".parse().unwrap();
        sessions.reserve(&a).unwrap().opened("1");
        sessions.reserve(&a).unwrap().opened("2");
        let err = sessions.reserve(&a).err().unwrap();
        assert!(err.is(ErrorCode::TooManyRequests), "{err}");
        // A reservation given back without a session frees its place.
        drop(sessions.reserve(&b).unwrap());
        sessions.reserve(&b).unwrap().opened("3");
        assert!(sessions.reserve(&b).is_err(), "the total is reached");
        sessions.ended("1");
        sessions.ended("1");
        sessions.reserve(&a).unwrap().opened("4");
        assert_eq!(sessions.expire(Duration::from_secs(3600)), 0);
        assert_eq!(sessions.expire(Duration::ZERO), 3);
        sessions.reserve(&a).unwrap().opened("5");
        sessions.reserve(&a).unwrap().opened("6");
    }
}
