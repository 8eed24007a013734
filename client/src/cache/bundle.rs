//! The bundle a cached read is sent as (`[CLIENT CACHING YES]`, the read, `PTTL k` per key, in
//! one write), and the split of its collected replies.

use crate::{Cmd, CmdFlags, Error, Result, Value};
use std::time::Duration;

/// The commands to send for a cached read of `cmd`: with `optin`, `CLIENT CACHING YES` first
/// (it tracks the next command only), then `cmd`, then `PTTL` of each of its keys (repeats
/// kept), so the entry's lifetime comes in the same round trip.
pub(super) fn build(cmd: Cmd, optin: bool) -> Vec<Cmd> {
    let keys = cmd.key_indices().len();
    let mut bundle = Vec::with_capacity(usize::from(optin) + 1 + keys);
    if optin {
        bundle.push(Cmd::new("CLIENT CACHING").arg("YES"));
    }
    let pttls: Vec<Cmd> = cmd
        .keys()
        .map(|k| {
            Cmd::new("PTTL").key(k).with_flags(CmdFlags {
                readonly: true,
                ..CmdFlags::default()
            })
        })
        .collect();
    bundle.push(cmd);
    bundle.extend(pttls);
    bundle
}

/// The bundle's replies, split.
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    /// The read's own reply (an error reply as [`Error::Server`]).
    pub(super) read: Result<Value>,
    /// Whether the reply may be stored: the read succeeded, it was tracked (`CLIENT CACHING`
    /// said OK) and every key's PTTL came.
    pub(super) storable: bool,
    /// The smallest PTTL of the keys that expire (`None`: none does; a missing key, `-2`, and
    /// a key without expiry, `-1`, do not limit the entry).
    pub(super) pttl: Option<Duration>,
}

/// Splits the collected replies of a bundle built by [`build`] for a read of `keys` keys.
///
/// # Errors
/// [`Error::Protocol`] when the reply is not an array of the bundle's length, or `CLIENT
/// CACHING` or a `PTTL` replied with something that is neither its reply nor an error.
pub(super) fn split(reply: Value, optin: bool, keys: usize) -> Result<Split> {
    let expected = usize::from(optin) + 1 + keys;
    let Value::Array(replies) = reply else {
        return Err(Error::protocol(format!(
            "a cached read's replies: expected an array of {expected}, got {}",
            reply.describe()
        )));
    };
    if replies.len() != expected {
        return Err(Error::protocol(format!(
            "a cached read's replies: expected {expected}, got {}",
            replies.len()
        )));
    }
    let mut replies = replies.into_iter();
    let mut storable = true;
    if optin {
        match replies.next() {
            Some(Value::Simple(ok)) if ok == "OK" => {}
            // Not tracked (tracking was off, say): the read stands, but is not kept.
            Some(Value::Error(_)) => storable = false,
            other => return Err(unexpected("CLIENT CACHING YES", other.as_ref())),
        }
    }
    let read = match replies.next() {
        Some(Value::Error(e)) => {
            storable = false;
            Err(Error::from(e))
        }
        Some(v) => Ok(v),
        None => return Err(unexpected("the read", None)),
    };
    let mut pttl: Option<Duration> = None;
    for reply in replies {
        match reply {
            Value::Int(ms) => {
                if let Ok(ms) = u64::try_from(ms) {
                    let d = Duration::from_millis(ms);
                    pttl = Some(pttl.map_or(d, |p| p.min(d)));
                }
            }
            // The key's lifetime is unknown (a redirect between the read and its PTTL): the
            // read stands, but is not kept.
            Value::Error(_) => storable = false,
            other => return Err(unexpected("PTTL", Some(&other))),
        }
    }
    Ok(Split {
        read,
        storable,
        pttl,
    })
}

fn unexpected(what: &str, got: Option<&Value>) -> Error {
    Error::protocol(format!(
        "a cached read's replies: unexpected reply to {what}: {}",
        got.map_or_else(|| "nothing".to_owned(), Value::describe)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optin_bundle_shape() {
        let cmd = Cmd::new("MGET").key("a").key("b");
        let bundle = build(cmd.clone(), true);
        let shown: Vec<String> = bundle.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            ["CLIENT CACHING YES", "MGET a b", "PTTL a", "PTTL b"]
        );
        assert_eq!(bundle[1], cmd);
        assert_eq!(bundle[2].keys().collect::<Vec<_>>(), [&b"a"[..]]);
        assert!(bundle[2].flags().readonly);
        let plain: Vec<String> = build(cmd, false).iter().map(|c| c.to_string()).collect();
        assert_eq!(plain, ["MGET a b", "PTTL a", "PTTL b"]);
    }

    fn ok() -> Value {
        Value::Simple("OK".into())
    }

    #[test]
    fn split_takes_the_smallest_pttl_that_expires() {
        let reply = Value::Array(vec![
            ok(),
            Value::Bulk("v".into()),
            Value::Int(-1),
            Value::Int(1500),
            Value::Int(-2),
            Value::Int(700),
        ]);
        let split = split(reply, true, 4).expect("well formed");
        assert_eq!(split.read, Ok(Value::Bulk("v".into())));
        assert!(split.storable);
        assert_eq!(split.pttl, Some(Duration::from_millis(700)));
        let none = super::split(Value::Array(vec![Value::Nil, Value::Int(-2)]), false, 1)
            .expect("well formed");
        assert_eq!(
            (none.read, none.storable, none.pttl),
            (Ok(Value::Nil), true, None)
        );
    }

    #[test]
    fn an_error_reply_is_returned_not_stored() {
        let wrongtype = crate::value::ServerError::from_line("WRONGTYPE no");
        let reply = Value::Array(vec![Value::Error(wrongtype.clone()), Value::Int(-1)]);
        let split = split(reply, false, 1).expect("well formed");
        assert_eq!(split.read, Err(Error::from(wrongtype)));
        assert!(!split.storable);
        // Not tracked: the read stands, not stored.
        let untracked = Value::Array(vec![
            Value::Error(crate::value::ServerError::from_line("ERR no tracking")),
            Value::Int(5),
            Value::Int(-1),
        ]);
        let split = super::split(untracked, true, 1).expect("well formed");
        assert_eq!((split.read, split.storable), (Ok(Value::Int(5)), false));
        let moved = Value::Array(vec![
            Value::Int(5),
            Value::Error(crate::value::ServerError::from_line("MOVED 1 x:1")),
        ]);
        let split = super::split(moved, false, 1).expect("well formed");
        assert_eq!((split.read, split.storable), (Ok(Value::Int(5)), false));
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        let cases = [
            (Value::Int(1), false, 1),
            (Value::Array(vec![Value::Nil]), false, 1),
            (
                Value::Array(vec![Value::Nil, Value::Int(1), Value::Int(1)]),
                false,
                1,
            ),
            (
                Value::Array(vec![Value::Nil, Value::Bulk("1".into())]),
                false,
                1,
            ),
            (Value::Array(vec![Value::Nil, Value::Nil]), true, 0),
            (Value::Array(vec![]), false, 0),
        ];
        for (reply, optin, keys) in cases {
            let shown = format!("{reply:?}");
            let err = split(reply, optin, keys).expect_err(&shown);
            assert!(matches!(err, Error::Protocol { .. }), "{shown}: {err}");
        }
    }
}
