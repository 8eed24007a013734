//! [`Placement`]: which engine a client's connections live on, and where its handles' own timers
//! run. A client's dedicated connections (blocking calls, `watch_transaction`, subscribers it
//! makes) and a pool's members live where the client or pool was placed, whatever thread later
//! asks for one.

use super::{epoll, ring, task, Driver, Link};
use crate::config::{Config, Engine};
use crate::Result;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Where connections are attached.
#[derive(Clone, Debug)]
pub(crate) enum Placement {
    /// Tasks on this tokio runtime.
    Task(tokio::runtime::Handle),
    /// The io_uring engine.
    IoUring,
    /// The epoll engine.
    Epoll,
    /// The io_uring engine where the kernel gives a ring, the epoll engine where it does not
    /// ([`Engine::Auto`] outside a tokio runtime, until the first attach says which).
    RingOrEpoll,
}

/// A sleep that resolves at its instant (or just after).
pub(crate) type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Placement {
    /// Where `choice` places connections made here, after the `RINGDIS_ENGINE` override:
    /// [`Engine::Auto`] is the task engine inside a tokio runtime, a ring engine elsewhere.
    ///
    /// # Errors
    ///
    /// [`Error::Client`](crate::Error::Client) for [`Engine::Task`] outside a tokio runtime, or
    /// a `RINGDIS_ENGINE` that names no engine.
    pub fn here(choice: Engine) -> Result<Placement> {
        let choice = Engine::from_env()?.unwrap_or(choice);
        let runtime = tokio::runtime::Handle::try_current();
        Ok(match (choice, runtime) {
            (Engine::Task | Engine::Auto, Ok(handle)) => Placement::Task(handle),
            (Engine::Task, Err(_)) => {
                return Err(crate::Error::client(
                    "Engine::Task runs connections on the current tokio runtime, and there is \
                     none: create the client inside one, or choose Engine::Auto, \
                     Engine::IoUring or Engine::Epoll",
                ))
            }
            (Engine::IoUring, _) => Placement::IoUring,
            (Engine::Epoll, _) => Placement::Epoll,
            (Engine::Auto, Err(_)) => Placement::RingOrEpoll,
        })
    }

    /// Attaches a new connection for `config`; says which engine took it. A
    /// [`Placement::RingOrEpoll`] becomes the engine that did, so later connections go there too.
    ///
    /// # Errors
    ///
    /// [`Error::Client`](crate::Error::Client) when the engine cannot take it (the kernel refuses
    /// io_uring to [`Placement::IoUring`], an engine thread cannot start).
    pub fn attach(&mut self, config: &Arc<Config>) -> Result<(Arc<Link>, Engine)> {
        let config = config.clone();
        match self {
            Placement::Task(handle) => Ok((
                task::TaskEngine::tokio(handle.clone()).attach(config)?,
                Engine::Task,
            )),
            Placement::IoUring => Ok((ring::RingEngine.attach(config)?, Engine::IoUring)),
            Placement::Epoll => Ok((epoll::Epoll.attach(config)?, Engine::Epoll)),
            // Any ring setup failure (EPERM, ENOSYS, kernel.io_uring_disabled, a seccomp
            // filter) falls back to epoll.
            Placement::RingOrEpoll => match ring::RingEngine.attach(config.clone()) {
                Ok(link) => {
                    *self = Placement::IoUring;
                    Ok((link, Engine::IoUring))
                }
                Err(_) => {
                    *self = Placement::Epoll;
                    Ok((epoll::Epoll.attach(config)?, Engine::Epoll))
                }
            },
        }
    }

    /// A sleep until `at`: a timer of the runtime on the task engine (no thread of its own),
    /// the process's timer thread elsewhere. On the task engine it ends at once once the runtime
    /// has shut down (its timers fire no more).
    pub fn sleep_until(&self, at: Instant) -> Sleep {
        match self {
            Placement::Task(handle) => Box::pin(RuntimeSleep {
                handle: handle.clone(),
                at,
                task: None,
            }),
            _ => {
                let rx = crate::timer::sleep_until(at);
                Box::pin(async move {
                    let _ = rx.await;
                })
            }
        }
    }

    /// Runs `job` at `at` (or just after) unless every `Arc` of `owner` is gone by then: a
    /// task on the runtime on the task engine, the process's timer thread elsewhere (see
    /// `timer::call_at`). It must be short and never block.
    pub fn call_at<T, F>(&self, at: Instant, owner: &Arc<T>, job: F)
    where
        T: Send + Sync + 'static,
        F: FnOnce(Arc<T>) + Send + 'static,
    {
        match self {
            Placement::Task(handle) => {
                let owner = Arc::downgrade(owner);
                // Dropped unrun if the runtime shuts down first.
                handle.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    if let Some(owner) = owner.upgrade() {
                        job(owner);
                    }
                });
            }
            _ => crate::timer::call_at(at, owner, job),
        }
    }
}

/// A sleep on a tokio runtime's timer, awaited from anywhere (that runtime, another one,
/// `block_on`): it runs as a task of that runtime, started at the first poll that finds `at`
/// still ahead and aborted when the sleep is dropped first. Polling a timer of a runtime that
/// has shut down panics; a task of one is dropped instead, and the sleep then ends at once.
struct RuntimeSleep {
    handle: tokio::runtime::Handle,
    at: Instant,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Future for RuntimeSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.at {
            return Poll::Ready(());
        }
        let at = this.at;
        let task = this.task.get_or_insert_with(|| {
            this.handle
                .spawn(async move { tokio::time::sleep_until(at.into()).await })
        });
        // Done at `at`, or cancelled by the runtime's shutdown: either way, over.
        Pin::new(task).poll(cx).map(drop)
    }
}

impl Drop for RuntimeSleep {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
