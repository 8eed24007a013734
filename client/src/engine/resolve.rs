//! Host name resolution off a many-link engine's thread (epoll, ring): `getaddrinfo` may wait
//! seconds on a DNS server, and every other link on the engine would wait with it. IP literals
//! need none.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The address of `host`, when it is an IP literal (IPv6 without brackets, as [`Addr`] holds it).
///
/// [`Addr`]: crate::Addr
pub(crate) fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

/// Resolves `host` on a short-lived thread of its own and hands the addresses (in the resolver's
/// order) to `done`, which runs on that thread.
///
/// # Errors
///
/// The thread could not be spawned (`done` is not called then).
pub(crate) fn spawn(
    host: String,
    port: u16,
    done: impl FnOnce(io::Result<Vec<SocketAddr>>) + Send + 'static,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("ringdis-resolve".to_owned())
        .spawn(move || {
            #[cfg(test)]
            held::wait();
            let addrs = std::panic::catch_unwind(|| {
                (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<_>>())
            })
            .unwrap_or_else(|_| Err(io::Error::other("the name resolver panicked")));
            let addrs = match addrs {
                Ok(a) if a.is_empty() => Err(io::Error::other("host resolved to no address")),
                other => other,
            };
            done(addrs);
        })
        .map(drop)
}

/// Test-only: while held, resolutions wait, so a test can show that the engine does not.
#[cfg(test)]
pub(crate) mod held {
    use std::sync::{Condvar, Mutex};

    static HELD: Mutex<bool> = Mutex::new(false);
    static RELEASED: Condvar = Condvar::new();

    pub fn set(on: bool) {
        *HELD.lock().unwrap_or_else(|p| p.into_inner()) = on;
        RELEASED.notify_all();
    }

    pub(super) fn wait() {
        let held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        drop(RELEASED.wait_while(held, |h| *h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_need_no_resolution() {
        assert_eq!(
            literal("127.0.0.1", 6379),
            Some("127.0.0.1:6379".parse().unwrap())
        );
        assert_eq!(literal("::1", 1), Some("[::1]:1".parse().unwrap()));
        assert_eq!(literal("localhost", 6379), None);
    }

    #[test]
    fn names_resolve_on_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let me = std::thread::current().id();
        spawn("localhost".to_owned(), 7, move |r| {
            let _ = tx.send((std::thread::current().id(), r));
        })
        .unwrap();
        let (on, addrs) = rx.recv().unwrap();
        assert_ne!(on, me);
        let addrs = addrs.unwrap();
        assert!(addrs.iter().all(|a| a.port() == 7 && a.ip().is_loopback()));
    }
}
