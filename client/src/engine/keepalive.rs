//! TCP keepalive on a connected socket, for both transports ([`Config::tcp_keepalive`]).
//!
//! [`Config::tcp_keepalive`]: crate::Config::tcp_keepalive

use std::os::fd::RawFd;
use std::time::Duration;

/// Unanswered probes after which the kernel gives the connection up (as `redis-server` does).
const PROBES: libc::c_int = 3;

fn set(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `&value`, which outlives the call;
    // `fd` is a socket the caller owns. Best effort: a failure leaves the kernel's defaults.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Turns keepalive on with `idle` before the first probe, `idle / 3` (at least 1 s) between
/// probes and [`PROBES`] probes; or leaves it off with `None`.
pub(crate) fn apply(fd: RawFd, idle: Option<Duration>) {
    let Some(idle) = idle else { return };
    let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle));
    set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(idle / 3));
    set(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, PROBES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn get(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`, which outlives the call.
        let r = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v
    }

    #[test]
    fn keepalive_and_the_liveness_rule_are_on_by_default() {
        let c = crate::Config::new();
        assert_eq!(c.tcp_keepalive, Some(Duration::from_secs(60)));
        assert_eq!(c.max_silent_timeouts, Some(3));
        let c = c.tcp_keepalive(None).max_silent_timeouts(Some(0));
        assert_eq!(c.tcp_keepalive, None);
        assert_eq!(c.max_silent_timeouts, Some(1));
    }

    #[test]
    fn keepalive_idle_interval_and_probes_are_set() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = s.as_raw_fd();
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        apply(fd, None);
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        apply(fd, Some(Duration::from_secs(45)));
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 45);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 15);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        apply(fd, Some(Duration::from_millis(10)));
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 1);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 1);
    }
}
