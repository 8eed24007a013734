//! The process's running engine of one kind (epoll, ring): started by the first attach that
//! finds none, given up by its thread as it exits. Both happen under one lock, so an attach
//! never hands a link to a thread that has left.

use crate::Result;
use std::sync::{Arc, Mutex, MutexGuard};

/// The engine now running, as its hub `H` (`None` while none runs).
pub(crate) struct Current<H> {
    hub: Mutex<Option<Arc<H>>>,
}

impl<H> Current<H> {
    pub const fn new() -> Self {
        Current {
            hub: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<H>>> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the running engine's hub (one `usable` accepts), starting one with `start`
    /// if there is none. The lock is held while `f` runs, so the engine does not leave meanwhile
    /// and whatever `f` hands it is taken by a live thread.
    ///
    /// # Errors
    ///
    /// Those of `start` and `f`.
    pub fn with<R>(
        &self,
        usable: impl Fn(&H) -> bool,
        start: impl FnOnce() -> Result<Arc<H>>,
        f: impl FnOnce(&Arc<H>) -> Result<R>,
    ) -> Result<R> {
        let mut current = self.lock();
        let hub = match current.as_ref().filter(|h| usable(h)) {
            Some(hub) => hub.clone(),
            None => {
                let hub = start()?;
                *current = Some(hub.clone());
                hub
            }
        };
        f(&hub)
    }

    /// The engine of `hub` asks to leave: `leave` runs under the lock and grants it (`Some`) or
    /// not (`None`, e.g. a link was attached meanwhile). Once granted, `hub` is no longer the
    /// running engine (if it still was).
    pub fn leave<R>(&self, hub: &Arc<H>, leave: impl FnOnce() -> Option<R>) -> Option<R> {
        let mut current = self.lock();
        let left = leave()?;
        if current.as_ref().is_some_and(|h| Arc::ptr_eq(h, hub)) {
            *current = None;
        }
        Some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_engine_runs_until_it_leaves() {
        let current: Current<u8> = Current::new();
        let first = current.with(|_| true, || Ok(Arc::new(1)), |h| Ok(h.clone()));
        let first = first.unwrap();
        let again = current.with(|_| true, || Ok(Arc::new(2)), |h| Ok(h.clone()));
        assert!(Arc::ptr_eq(&first, &again.unwrap()), "no second start");
        // A refused leave keeps it running.
        assert_eq!(current.leave(&first, || None::<()>), None);
        let still = current.with(|_| true, || Ok(Arc::new(3)), |h| Ok(**h));
        assert_eq!(still.unwrap(), 1);
        // A granted one makes the next attach start a new engine.
        assert_eq!(current.leave(&first, || Some(())), Some(()));
        let next = current.with(|_| true, || Ok(Arc::new(4)), |h| Ok(**h));
        assert_eq!(next.unwrap(), 4);
    }

    #[test]
    fn an_unusable_engine_is_replaced_and_an_old_one_leaving_clears_nothing() {
        let current: Current<u8> = Current::new();
        let old = current.with(|_| true, || Ok(Arc::new(1)), |h| Ok(h.clone()));
        let old = old.unwrap();
        let new = current.with(|h| *h != 1, || Ok(Arc::new(2)), |h| Ok(h.clone()));
        let new = new.unwrap();
        assert_eq!(*new, 2);
        assert_eq!(current.leave(&old, || Some(())), Some(()));
        let still = current.with(|_| true, || Ok(Arc::new(3)), |h| Ok(**h));
        assert_eq!(still.unwrap(), 2, "the newer engine still runs");
    }

    #[test]
    fn a_failed_start_leaves_none_running() {
        let current: Current<u8> = Current::new();
        let err = current.with(|_| true, || Err(crate::Error::client("no")), |h| Ok(**h));
        assert!(err.is_err());
        let next = current.with(|_| true, || Ok(Arc::new(5)), |h| Ok(**h));
        assert_eq!(next.unwrap(), 5);
    }
}
