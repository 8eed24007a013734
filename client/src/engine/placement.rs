//! [`Placement`]: which engine a client's connections live on, and where its handles' own timers
//! run. A client's dedicated connections (blocking calls, `watch_transaction`, subscribers it
//! makes) and a pool's members live where the client or pool was placed, whatever thread later
//! asks for one.

#[cfg(all(feature = "io-uring", target_os = "linux"))]
use super::ring;
use super::{epoll, task, Driver, Link};
use crate::config::{Config, Engine};
use crate::Result;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Where connections are attached.
#[derive(Clone, Debug)]
pub(crate) enum Placement {
    /// Tasks on this tokio runtime.
    Task(tokio::runtime::Handle),
    /// The io_uring engine.
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    IoUring,
    /// The epoll engine (mio: epoll on Linux, kqueue elsewhere).
    Epoll,
    /// The io_uring engine where the kernel gives a ring, the epoll engine where it does not
    /// ([`Engine::Auto`] outside a tokio runtime, until the first attach says which).
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    RingOrEpoll,
    /// The scripted in-memory server of a [`Mock`](crate::mock::Mock).
    #[cfg(feature = "mock")]
    Mock(crate::mock::server::Server),
}

/// A sleep that resolves at its instant (or just after).
pub(crate) type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Placement {
    /// Where `choice` places connections made here, after the `RINGDIS_ENGINE` override:
    /// [`Engine::Auto`] is the task engine on a current-thread tokio runtime, and a ring engine
    /// on a multi-thread runtime and outside any (see [`Engine`] for the measurements behind it);
    /// without the io_uring engine (the `io-uring` feature off, or not Linux) that ring engine
    /// is the epoll one.
    ///
    /// # Errors
    ///
    /// [`Error::Client`](crate::Error::Client) for [`Engine::Task`] outside a tokio runtime,
    /// [`Engine::IoUring`] in a build without the io_uring engine, or a `RINGDIS_ENGINE` that
    /// names no engine.
    pub fn here(choice: Engine) -> Result<Placement> {
        let forced = Engine::from_env()?.filter(|e| *e != choice);
        let choice = forced.unwrap_or(choice);
        let runtime = tokio::runtime::Handle::try_current();
        Ok(match (choice, runtime) {
            (Engine::Task, Ok(handle)) => Placement::Task(handle),
            (Engine::Auto, Ok(handle))
                if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread =>
            {
                Placement::Task(handle)
            }
            (Engine::Task, Err(_)) => {
                let why = if forced.is_some() {
                    "RINGDIS_ENGINE=task asks for Engine::Task, which runs connections on the \
                     current tokio runtime, and there is none: create the client inside one, or \
                     unset RINGDIS_ENGINE"
                } else {
                    "Engine::Task runs connections on the current tokio runtime, and there is \
                     none: create the client inside one, or choose Engine::Auto, \
                     Engine::IoUring or Engine::Epoll"
                };
                return Err(crate::Error::client(why));
            }
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            (Engine::IoUring, _) => Placement::IoUring,
            #[cfg(not(all(feature = "io-uring", target_os = "linux")))]
            (Engine::IoUring, _) => return Err(no_io_uring(forced.is_some())),
            (Engine::Epoll, _) => Placement::Epoll,
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            (Engine::Auto, _) => Placement::RingOrEpoll,
            #[cfg(not(all(feature = "io-uring", target_os = "linux")))]
            (Engine::Auto, _) => Placement::Epoll,
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
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Placement::IoUring => Ok((ring::RingEngine.attach(config)?, Engine::IoUring)),
            Placement::Epoll => Ok((epoll::Epoll.attach(config)?, Engine::Epoll)),
            // Driven on the callers' own threads, as the task engine's fast path is.
            #[cfg(feature = "mock")]
            Placement::Mock(server) => Ok((server.attach(config)?, Engine::Task)),
            // Any ring setup failure (EPERM, ENOSYS, kernel.io_uring_disabled, a seccomp
            // filter) falls back to epoll.
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
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
    /// the process's timer thread elsewhere. On the task engine it never panics, whatever
    /// thread polls it and even once that runtime has shut down (see [`RuntimeSleep`]).
    pub fn sleep_until(&self, at: Instant) -> Sleep {
        match self {
            Placement::Task(handle) => Box::pin(RuntimeSleep {
                handle: handle.clone(),
                at,
                state: SleepState::Unstarted,
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

/// The error for [`Engine::IoUring`] (or `RINGDIS_ENGINE=io_uring`, when `forced`) in a build
/// without the io_uring engine: it is never silently replaced by another engine.
#[cfg(not(all(feature = "io-uring", target_os = "linux")))]
fn no_io_uring(forced: bool) -> crate::Error {
    let asked = if forced {
        "RINGDIS_ENGINE=io_uring asks for Engine::IoUring"
    } else {
        "Engine::IoUring was asked for"
    };
    let why = if cfg!(target_os = "linux") {
        "this build of ringdis has no io_uring engine: it was compiled without its `io-uring` \
         feature (on by default; `default-features = false` turns it off)"
    } else {
        "this build of ringdis has no io_uring engine: io_uring exists only on Linux (the \
         `io-uring` feature does nothing elsewhere)"
    };
    let fix = if forced {
        "unset RINGDIS_ENGINE or set it to auto or epoll"
    } else {
        "choose Engine::Auto or Engine::Epoll"
    };
    crate::Error::client(format!("{asked}, but {why}; {fix}"))
}

/// A sleep on a tokio runtime's timer, run by a task of that runtime: spawned on the first poll
/// (a sleep dropped unpolled, as when a checkout or a message is there at once, costs nothing)
/// and aborted when the sleep is dropped.
///
/// A tokio `Sleep` polled outside its runtime panics once that runtime has shut down, and the
/// handles that sleep (a pool's checkout, a subscriber's `next_message`) may be kept, in a
/// `static` or across `#[tokio::test]`s, past the runtime they were made on. A task is just
/// dropped by a runtime that shuts down; the process's timer thread then keeps the time.
struct RuntimeSleep {
    handle: tokio::runtime::Handle,
    at: Instant,
    state: SleepState,
}

enum SleepState {
    Unstarted,
    OnRuntime(tokio::task::JoinHandle<()>),
    /// The runtime is gone.
    OnTimerThread(Sleep),
    /// Over: polled again, it stays ready (as a tokio `Sleep` does).
    Done,
}

impl Future for RuntimeSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            match &mut this.state {
                SleepState::Unstarted => {
                    let at = this.at;
                    // Made inside the task: `sleep_until` needs the runtime's context.
                    let task = this.handle.spawn(async move {
                        tokio::time::sleep_until(at.into()).await;
                    });
                    this.state = SleepState::OnRuntime(task);
                }
                SleepState::OnRuntime(task) => match Pin::new(task).poll(cx) {
                    Poll::Ready(Ok(())) => this.state = SleepState::Done,
                    // Cancelled: the runtime shut down (or was already down when spawned).
                    Poll::Ready(Err(_)) => {
                        let rest = Placement::Epoll.sleep_until(this.at);
                        this.state = SleepState::OnTimerThread(rest);
                    }
                    Poll::Pending => return Poll::Pending,
                },
                SleepState::OnTimerThread(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.state = SleepState::Done;
                }
                SleepState::Done => return Poll::Ready(()),
            }
        }
    }
}

impl Drop for RuntimeSleep {
    fn drop(&mut self) {
        if let SleepState::OnRuntime(task) = &self.state {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A sleep of a runtime that has shut down still lasts until its instant, polled from
    /// anywhere, without a panic; one of a live runtime works from a plain thread.
    #[test]
    fn a_task_sleep_outlives_its_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let placement = Placement::Task(rt.handle().clone());
        drop(rt);
        let at = Instant::now() + Duration::from_millis(20);
        let mut sleep = placement.sleep_until(at);
        futures::executor::block_on(&mut sleep);
        assert!(Instant::now() >= at);
        futures::executor::block_on(&mut sleep); // ready again, no panic

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let placement = Placement::Task(rt.handle().clone());
        let at = Instant::now() + Duration::from_millis(20);
        let mut sleep = placement.sleep_until(at);
        futures::executor::block_on(&mut sleep);
        assert!(Instant::now() >= at);
        futures::executor::block_on(&mut sleep);
    }

    fn runtime(multi: bool) -> tokio::runtime::Runtime {
        let mut b = if multi {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(1);
            b
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        b.enable_all().build().unwrap()
    }

    /// With the io_uring engine built: `Engine::Auto` outside a runtime and on a multi-thread
    /// one tries the ring first, and `Engine::IoUring` is placed on it.
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    #[test]
    fn with_io_uring_auto_tries_the_ring_first() {
        assert!(matches!(
            Placement::here(Engine::Auto),
            Ok(Placement::RingOrEpoll)
        ));
        let multi = runtime(true).block_on(async { Placement::here(Engine::Auto) });
        assert!(matches!(multi, Ok(Placement::RingOrEpoll)), "{multi:?}");
        assert!(matches!(
            Placement::here(Engine::IoUring),
            Ok(Placement::IoUring)
        ));
    }

    /// Without the io_uring engine (the `io-uring` feature off, or not Linux): `Engine::Auto`
    /// is the epoll (mio) engine wherever it would have tried the ring, still the task engine on
    /// a current-thread runtime; and `Engine::IoUring` is refused with an error that names the
    /// feature, never replaced by another engine.
    #[cfg(not(all(feature = "io-uring", target_os = "linux")))]
    #[test]
    fn without_io_uring_auto_is_epoll_and_io_uring_is_refused() {
        assert!(matches!(
            Placement::here(Engine::Auto),
            Ok(Placement::Epoll)
        ));
        let multi = runtime(true).block_on(async { Placement::here(Engine::Auto) });
        assert!(matches!(multi, Ok(Placement::Epoll)), "{multi:?}");
        let current = runtime(false).block_on(async { Placement::here(Engine::Auto) });
        assert!(matches!(current, Ok(Placement::Task(_))), "{current:?}");

        let refused = |e: crate::Result<crate::Client>| match e {
            Err(crate::Error::Client { message, .. }) => message,
            Err(e) => panic!("not a client error: {e:?}"),
            Ok(c) => panic!("Engine::IoUring gave a client on {:?}", c.engine()),
        };
        let io_uring = || crate::Client::new(crate::Config::new().engine(Engine::IoUring));
        let outside = refused(io_uring());
        let inside = refused(runtime(false).block_on(async { io_uring() }));
        for message in [outside, inside] {
            assert!(message.contains("Engine::IoUring"), "{message}");
            assert!(message.contains("`io-uring` feature"), "{message}");
            assert!(message.contains("Engine::Epoll"), "{message}");
        }
        // Forced from the environment, the error says where the ask came from.
        let forced = no_io_uring(true).to_string();
        assert!(forced.contains("RINGDIS_ENGINE=io_uring"), "{forced}");
        assert!(forced.contains("`io-uring` feature"), "{forced}");
    }
}
