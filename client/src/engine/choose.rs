//! Which engine takes a new connection.

use super::{epoll, ring, task, Driver, Link};
use crate::config::{Config, Engine};
use crate::Result;
use std::sync::Arc;

/// Attaches a new connection for `config` to the engine `choice` names, and says which engine
/// took it ([`Engine::Auto`] resolved: the task engine inside a tokio runtime; elsewhere the
/// io_uring engine where the kernel gives a ring, the epoll engine where it does not).
///
/// # Errors
///
/// [`Error::Client`](crate::Error::Client) when the chosen engine cannot run here:
/// [`Engine::Task`] outside a tokio runtime, [`Engine::IoUring`] where the kernel refuses a ring.
pub(crate) fn attach(choice: Engine, config: &Arc<Config>) -> Result<(Arc<Link>, Engine)> {
    let on_runtime = |handle| task::TaskEngine::tokio(handle).attach(config.clone());
    match choice {
        Engine::Task => match tokio::runtime::Handle::try_current() {
            Ok(handle) => Ok((on_runtime(handle)?, Engine::Task)),
            Err(_) => Err(crate::Error::client(
                "Engine::Task runs connections on the current tokio runtime, and there is none: \
                 create the client inside one, or choose Engine::Auto, Engine::IoUring or \
                 Engine::Epoll",
            )),
        },
        Engine::Epoll => Ok((epoll::Epoll.attach(config.clone())?, Engine::Epoll)),
        Engine::IoUring => Ok((ring::RingEngine.attach(config.clone())?, Engine::IoUring)),
        Engine::Auto => {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                return Ok((on_runtime(handle)?, Engine::Task));
            }
            // Any ring setup failure (EPERM, ENOSYS, kernel.io_uring_disabled, a seccomp
            // filter) falls back to epoll.
            match ring::RingEngine.attach(config.clone()) {
                Ok(link) => Ok((link, Engine::IoUring)),
                Err(_) => Ok((epoll::Epoll.attach(config.clone())?, Engine::Epoll)),
            }
        }
    }
}
