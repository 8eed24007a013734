//! Cluster redirects: a `MOVED` or `ASK` error reply read into the slot and the node to ask.
//!
//! The server writes `MOVED <slot> <endpoint>:<port>` (and `ASK …` alike), the endpoint being
//! what its `cluster-preferred-endpoint-type` says: an IP (IPv6 without brackets: `::1:7001`),
//! a host name, `?` when the node's endpoint is unknown, or nothing at all (`:7001`) when it is
//! the address the client already reached. Those last two leave the host to the caller: the one
//! it sent the command to.

use crate::route::topology::NodeAddr;
use crate::Error;

/// Which redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// The slot lives elsewhere for good: update the map and resend there.
    Moved,
    /// The slot is being migrated and this key is already on the target: ask it once, with
    /// `ASKING` first, and keep the map.
    Ask,
}

/// Where a redirect points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Redirection {
    pub kind: Redirect,
    pub slot: u16,
    /// The node; its host is `reached`'s when the server gave none (`:port`, `?:port`).
    pub to: NodeAddr,
}

/// The redirect `err` is, if it is one, with `reached` the host the command went to (used when
/// the server names no host). `None` for any other error, and for a `MOVED`/`ASK` whose text
/// cannot be read (then it is the caller's error as it is).
pub(crate) fn redirection(err: &Error, reached: &str) -> Option<Redirection> {
    let Error::Server { kind, message } = err else {
        return None;
    };
    parse(kind, message, reached)
}

/// [`redirection`] from the error's kind and the rest of its line.
pub(crate) fn parse(kind: &str, message: &str, reached: &str) -> Option<Redirection> {
    let kind = if kind.eq_ignore_ascii_case("MOVED") {
        Redirect::Moved
    } else if kind.eq_ignore_ascii_case("ASK") {
        Redirect::Ask
    } else {
        return None;
    };
    let mut words = message.split_ascii_whitespace();
    let slot: u16 = words.next()?.parse().ok()?;
    if slot >= crate::route::topology::SLOTS {
        return None;
    }
    let endpoint = words.next()?;
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = if host.is_empty() || host == "?" {
        reached
    } else {
        host
    };
    Some(Redirection {
        kind,
        slot,
        to: NodeAddr::new(host, port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, port: u16) -> NodeAddr {
        NodeAddr::new(host, port)
    }

    #[test]
    fn moved_and_ask_in_every_endpoint_form() {
        let cases = [
            (
                "MOVED",
                "3999 127.0.0.1:6381",
                Redirect::Moved,
                3999,
                at("127.0.0.1", 6381),
            ),
            (
                "ASK",
                "3999 127.0.0.1:6381",
                Redirect::Ask,
                3999,
                at("127.0.0.1", 6381),
            ),
            ("MOVED", "0 ::1:7001", Redirect::Moved, 0, at("::1", 7001)),
            (
                "MOVED",
                "16383 [fe80::1]:7001",
                Redirect::Moved,
                16383,
                at("fe80::1", 7001),
            ),
            (
                "MOVED",
                "12 redis-2.example:6379",
                Redirect::Moved,
                12,
                at("redis-2.example", 6379),
            ),
            (
                "MOVED",
                "12 :7002",
                Redirect::Moved,
                12,
                at("10.0.0.9", 7002),
            ),
            ("ASK", "12 ?:7002", Redirect::Ask, 12, at("10.0.0.9", 7002)),
        ];
        for (kind, message, want, slot, to) in cases {
            let err = Error::Server {
                kind: kind.into(),
                message: message.into(),
            };
            let r = redirection(&err, "10.0.0.9").unwrap_or_else(|| panic!("{message}"));
            assert_eq!((r.kind, r.slot, r.to), (want, slot, to), "{kind} {message}");
        }
    }

    #[test]
    fn anything_else_is_not_a_redirect() {
        let server = |k: &str, m: &str| Error::Server {
            kind: k.into(),
            message: m.into(),
        };
        for err in [
            server("ERR", "3999 127.0.0.1:6381"),
            server("MOVED", ""),
            server("MOVED", "x 127.0.0.1:6381"),
            server("MOVED", "16384 127.0.0.1:6381"),
            server("MOVED", "12 127.0.0.1"),
            server("MOVED", "12 127.0.0.1:99999"),
            server("TRYAGAIN", "Multiple keys request during rehashing of slot"),
            Error::Timeout,
            Error::client("MOVED 12 h:1"),
        ] {
            assert_eq!(redirection(&err, "h"), None, "{err:?}");
        }
    }
}
