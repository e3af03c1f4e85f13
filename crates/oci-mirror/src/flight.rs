//! Single flight: the first request for a key does the work, the others
//! wait for its outcome instead of repeating it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use oci_core::{Error, Result};
use tokio::sync::watch;

/// The outcome of a flight, once it has one.
type Outcome = Option<Result<()>>;

/// The flights in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    running: Arc<Mutex<HashMap<String, watch::Receiver<Outcome>>>>,
}

/// What a caller of [`Flights::join`] is to do.
pub(crate) enum Role {
    /// Do the work and [`Landing::finish`] with its outcome.
    Leader(Landing),
    /// Wait for the leader with [`Waiting::outcome`].
    Follower(Waiting),
}

/// The leader's handle: reports the outcome to the followers. Dropped
/// without a report, the followers get an error.
pub(crate) struct Landing {
    key: String,
    running: Arc<Mutex<HashMap<String, watch::Receiver<Outcome>>>>,
    tx: watch::Sender<Outcome>,
    done: bool,
}

/// A follower's handle.
pub(crate) struct Waiting(watch::Receiver<Outcome>);

impl Flights {
    /// Joins the flight for `key`, starting it if there is none.
    pub(crate) fn join(&self, key: String) -> Role {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = running.get(&key) {
            return Role::Follower(Waiting(rx.clone()));
        }
        let (tx, rx) = watch::channel(None);
        running.insert(key.clone(), rx);
        Role::Leader(Landing {
            key,
            running: self.running.clone(),
            tx,
            done: false,
        })
    }

    /// How many flights are in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Landing {
    /// A handle to wait for this flight's outcome, as a follower would.
    pub(crate) fn watch(&self) -> Waiting {
        Waiting(self.tx.subscribe())
    }

    /// Does the leader's `work` and ends the flight with its outcome.
    pub(crate) async fn run<T>(self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let done = work.await;
        self.finish(done.as_ref().map(|_| ()).map_err(Clone::clone));
        done
    }

    /// Ends the flight: later requests start afresh; the followers get
    /// `outcome`.
    pub(crate) fn finish(mut self, outcome: Result<()>) {
        self.land(outcome);
    }

    fn land(&mut self, outcome: Result<()>) {
        if self.done {
            return;
        }
        self.done = true;
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        self.tx.send_replace(Some(outcome));
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.land(Err(Error::internal(
            "the request fetching this from the upstream was abandoned",
        )));
    }
}

impl Waiting {
    /// The leader's outcome.
    pub(crate) async fn outcome(mut self) -> Result<()> {
        match self.0.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Ok(())),
            Err(_) => Err(Error::internal(
                "the request fetching this from the upstream was abandoned",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::ErrorCode;

    #[tokio::test]
    async fn followers_get_the_leaders_outcome_and_the_key_frees() {
        let flights = Flights::default();
        let Role::Leader(landing) = flights.join("k".into()) else {
            panic!("the first caller leads");
        };
        let Role::Follower(waiting) = flights.join("k".into()) else {
            panic!("the second caller follows");
        };
        landing.finish(Err(Error::new(ErrorCode::BlobUnknown, "gone")));
        assert!(
            waiting
                .outcome()
                .await
                .unwrap_err()
                .is(ErrorCode::BlobUnknown)
        );
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join("k".into()), Role::Leader(_)));
    }

    #[tokio::test]
    async fn an_abandoned_flight_fails_its_followers() {
        let flights = Flights::default();
        let leader = flights.join("k".into());
        let Role::Follower(waiting) = flights.join("k".into()) else {
            panic!("the second caller follows");
        };
        drop(leader);
        assert!(waiting.outcome().await.is_err());
        assert_eq!(flights.len(), 0);
    }
}
