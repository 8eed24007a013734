//! Futures that run on their own, with no async runtime: polled where they are woken.
//!
//! A cluster client needs work that no caller awaits (a topology refresh that callers join, an
//! `async_call` whose command was redirected) and may assume no runtime: on the ring engines
//! nothing but the engine's thread exists. A future [`spawn`]ed here is polled once at once on
//! the caller's thread, then each time its waker fires, on the waking thread (an engine's, the
//! timer thread, a runtime's). Its work between two waits must be short and never block, as in
//! a reply callback.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

type Boxed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Nobody polls it; a wake polls it.
const IDLE: u8 = 0;
/// Being polled.
const POLLING: u8 = 1;
/// Being polled, and woken meanwhile: poll it again.
const NOTIFIED: u8 = 2;
/// Finished (or panicked): wakes do nothing.
const DONE: u8 = 3;

struct Task {
    state: AtomicU8,
    future: Mutex<Option<Boxed>>,
}

/// Runs `future` to completion with no runtime (see the module docs). A panic in it ends it
/// (and is reported by the panic hook); it never reaches the thread that woke it.
pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    let task = Arc::new(Task {
        state: AtomicU8::new(IDLE),
        future: Mutex::new(Some(Box::pin(future))),
    });
    task.run();
}

impl Task {
    fn run(self: &Arc<Self>) {
        // Take the right to poll, or leave a note for the thread that has it.
        let mut now = self.state.load(Ordering::Acquire);
        loop {
            let next = match now {
                IDLE => POLLING,
                POLLING => NOTIFIED,
                _ => return,
            };
            match self
                .state
                .compare_exchange(now, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == NOTIFIED => return,
                Ok(_) => break,
                Err(seen) => now = seen,
            }
        }
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            let done = {
                let mut slot = self.future.lock().unwrap_or_else(|p| p.into_inner());
                match slot.as_mut() {
                    None => true,
                    Some(future) => {
                        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            future.as_mut().poll(&mut cx)
                        }));
                        let done = !matches!(polled, Ok(Poll::Pending));
                        if done {
                            *slot = None;
                        }
                        done
                    }
                }
            };
            if done {
                self.state.store(DONE, Ordering::Release);
                return;
            }
            match self
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                // Woken while polled: poll again.
                Err(_) => self.state.store(POLLING, Ordering::Release),
            }
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.run();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A spawned future runs to its end, woken from another thread, with no runtime.
    #[test]
    fn a_spawned_future_runs_where_it_is_woken() {
        let (tx, rx) = mpsc::channel();
        let (wake_tx, wake_rx) = tokio::sync::oneshot::channel::<u32>();
        spawn(async move {
            let n = wake_rx.await.unwrap_or(0);
            let _ = tx.send(n + 1);
        });
        assert!(rx.try_recv().is_err(), "it waits for its wake");
        let _ = std::thread::spawn(move || wake_tx.send(41)).join().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(42));
    }

    /// Many wakes at once from many threads poll it one at a time and lose none.
    #[test]
    fn concurrent_wakes_lose_nothing() {
        let (tx, rx) = mpsc::channel();
        let (items_tx, mut items_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        spawn(async move {
            let mut sum = 0;
            while let Some(n) = items_rx.recv().await {
                sum += n;
            }
            let _ = tx.send(sum);
        });
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let items = items_tx.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let _ = items.send(1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(items_tx);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(8000));
    }
}
