//! TCP keepalive on a connected socket, for every engine ([`Config::tcp_keepalive`]), through
//! socket2, which spells the options per target (`TCP_KEEPIDLE` on Linux and the BSDs,
//! `TCP_KEEPALIVE` on macOS; OpenBSD has only the system-wide settings).
//!
//! [`Config::tcp_keepalive`]: crate::Config::tcp_keepalive

use socket2::{SockRef, TcpKeepalive};
use std::os::fd::AsFd;
use std::time::Duration;

/// Unanswered probes after which the kernel gives the connection up (as `redis-server` does).
const PROBES: u32 = 3;

/// Turns keepalive on with `idle` before the first probe, `idle / 3` between probes (both at
/// least 1 s: the kernel counts whole seconds) and [`PROBES`] probes, where the target lets a
/// socket set them; or leaves it off with `None`. Best effort: a failure leaves the kernel's
/// defaults.
pub(crate) fn apply(socket: &impl AsFd, idle: Option<Duration>) {
    let Some(idle) = idle else { return };
    let secs = |d: Duration| Duration::from_secs(d.as_secs().max(1));
    let params = TcpKeepalive::new().with_time(secs(idle));
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "dragonfly",
        target_os = "illumos",
    ))]
    let params = params.with_interval(secs(idle / 3)).with_retries(PROBES);
    let _ = SockRef::from(socket).set_tcp_keepalive(&params);
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let sock = SockRef::from(&s);
        assert!(!sock.keepalive().unwrap());
        apply(&s, None);
        assert!(!sock.keepalive().unwrap());
        apply(&s, Some(Duration::from_secs(45)));
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(45));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(15)
        );
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), PROBES);
        apply(&s, Some(Duration::from_millis(10)));
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(1));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(1)
        );
    }
}
