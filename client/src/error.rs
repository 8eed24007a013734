//! The one error type every ringdis call returns.

use std::borrow::Cow;
use std::fmt;

/// `Result` with [`Error`] as its error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a call.
///
/// Each variant tells a caller what to do next:
///
/// * [`Error::Connection`] — the connection could not be made or was lost while the call was in
///   flight. The command may or may not have run on the server; ringdis never retries it silently.
/// * [`Error::Timeout`] — no reply within the configured time. A reply that arrives later is
///   discarded; the connection stays usable.
/// * [`Error::Protocol`] — the server sent bytes that are not valid RESP (or break the configured
///   limits). The connection is closed, every call in flight on it fails, and the next call
///   reconnects.
/// * [`Error::Server`] — the server answered with an error reply (`WRONGTYPE`, `NOAUTH`, …).
/// * [`Error::Decode`] — the reply arrived but does not fit the requested Rust type.
/// * [`Error::Client`] — the call was refused before it was sent (bad configuration, empty
///   pipeline, client shut down…).
/// * [`Error::Lagged`] — a subscriber's reader fell behind and messages were dropped; the
///   subscriber goes on.
///
/// `Error` is `Clone`, so one connection failure can be handed to every caller it affects.
///
/// ```
/// use ringdis::Error;
/// let e = Error::server_from_line("WRONGTYPE Operation against a key holding the wrong kind of value");
/// assert_eq!(e.server_kind(), Some("WRONGTYPE"));
/// assert!(e.to_string().starts_with("server error WRONGTYPE"));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed, or the connection was lost with the call in flight.
    #[error("connection error: {message}")]
    Connection {
        /// What happened, e.g. `connect to 127.0.0.1:6379: Connection refused`.
        message: String,
    },
    /// The call got no reply within its time limit.
    #[error("timed out waiting for the reply")]
    Timeout,
    /// The server broke the protocol; the connection was closed.
    #[error("protocol error: {message}")]
    Protocol {
        /// What was wrong with the bytes.
        message: String,
    },
    /// The server replied with an error.
    #[error("server error {kind} {message}")]
    Server {
        /// The error code: the first word of the reply (`ERR`, `WRONGTYPE`, `MOVED`, …).
        kind: String,
        /// The rest of the error line.
        message: String,
    },
    /// The reply could not be decoded into the requested type.
    #[error("{}", fmt_decode(path, expected, got))]
    Decode {
        /// Where in the target type it failed, e.g. `User.age` (empty at the top level).
        path: String,
        /// What the target type accepts, e.g. `integer`.
        expected: Cow<'static, str>,
        /// A short description of what arrived, e.g. `bulk string "abc"`.
        got: String,
    },
    /// The call was refused on the client side before anything was sent.
    #[error("client error: {message}")]
    Client {
        /// Why.
        message: String,
    },
    /// A [`Subscriber`](crate::Subscriber)'s reader fell behind: its queue was full
    /// ([`Config::subscriber_queue_limit`](crate::Config::subscriber_queue_limit)) and this
    /// many messages were dropped at this point of the stream. The subscriber goes on.
    #[error("the subscriber fell behind: {dropped} messages dropped because its queue was full")]
    Lagged {
        /// How many messages were dropped.
        dropped: u64,
    },
}

fn fmt_decode(path: &str, expected: &str, got: &str) -> String {
    if got.is_empty() {
        // A message with nothing to compare (a serde `custom` error): `expected` says it all.
        return if path.is_empty() {
            format!("decode error: {expected}")
        } else {
            format!("decode error: {path}: {expected}")
        };
    }
    if path.is_empty() {
        format!("decode error: expected {expected}, got {got}")
    } else {
        format!("decode error: {path}: expected {expected}, got {got}")
    }
}

impl Error {
    /// Builds an [`Error::Server`] from an error line as the server sends it
    /// (`"WRONGTYPE Operation against…"`): the first word is the kind.
    pub fn server_from_line(line: &str) -> Error {
        let (kind, message) = split_error_line(line);
        Error::Server {
            kind: kind.to_owned(),
            message: message.to_owned(),
        }
    }

    /// The server error code (`WRONGTYPE`, `NOAUTH`…) if this is an [`Error::Server`].
    pub fn server_kind(&self) -> Option<&str> {
        match self {
            Error::Server { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// True for [`Error::Connection`] (the connection failed or was lost).
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connection { .. })
    }

    /// True for [`Error::Lagged`] (a subscriber's queue overflowed).
    pub fn is_lagged(&self) -> bool {
        matches!(self, Error::Lagged { .. })
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    pub(crate) fn connection(message: impl Into<String>) -> Error {
        Error::Connection {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        Error::Protocol {
            message: message.into(),
        }
    }

    /// Builds an [`Error::Client`].
    pub fn client(message: impl Into<String>) -> Error {
        Error::Client {
            message: message.into(),
        }
    }

    /// Builds an [`Error::Decode`] at the top level: `expected` names what the target type
    /// accepts, `got` is the value that arrived.
    pub fn decode(expected: impl Into<Cow<'static, str>>, got: &crate::Value) -> Error {
        Error::Decode {
            path: String::new(),
            expected: expected.into(),
            got: got.describe(),
        }
    }

    /// Prefixes the path of an [`Error::Decode`] with a field or type name, so nested failures
    /// read `User.address.zip: expected integer, got …`. Other errors pass through unchanged.
    ///
    /// ```
    /// use ringdis::{Error, Value};
    /// let e = Error::decode("integer", &Value::Bulk("abc".into())).in_field("User.age");
    /// assert_eq!(e.to_string(), r#"decode error: User.age: expected integer, got bulk string "abc""#);
    /// ```
    pub fn in_field(self, name: impl fmt::Display) -> Error {
        match self {
            Error::Decode {
                path,
                expected,
                got,
            } => {
                let path = if path.is_empty() {
                    name.to_string()
                } else if path.starts_with('[') {
                    format!("{name}{path}")
                } else {
                    format!("{name}.{path}")
                };
                Error::Decode {
                    path,
                    expected,
                    got,
                }
            }
            other => other,
        }
    }
}

/// Splits `"KIND rest of message"` into its code and message. A line whose first word is not an
/// upper-case code is kind `ERR`-less: the kind is empty and the message the whole line.
pub(crate) fn split_error_line(line: &str) -> (&str, &str) {
    match line.split_once(' ') {
        Some((kind, rest)) if is_code(kind) => (kind, rest),
        None if is_code(line) => (line, ""),
        _ => ("", line),
    }
}

fn is_code(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl From<crate::value::ServerError> for Error {
    fn from(e: crate::value::ServerError) -> Self {
        Error::Server {
            kind: e.kind,
            message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_split_into_code_and_message() {
        assert_eq!(
            split_error_line("ERR unknown command"),
            ("ERR", "unknown command")
        );
        assert_eq!(split_error_line("NOAUTH"), ("NOAUTH", ""));
        assert_eq!(
            split_error_line("MOVED 3999 127.0.0.1:6381"),
            ("MOVED", "3999 127.0.0.1:6381")
        );
        assert_eq!(split_error_line("lowercase text"), ("", "lowercase text"));
    }

    #[test]
    fn nested_decode_paths_join() {
        let e = Error::decode("integer", &crate::Value::Nil)
            .in_field("zip")
            .in_field("User.address");
        assert_eq!(
            e.to_string(),
            "decode error: User.address.zip: expected integer, got nil"
        );
        let e = Error::decode("integer", &crate::Value::Nil)
            .in_field("[2]")
            .in_field("Vec");
        assert_eq!(
            e.to_string(),
            "decode error: Vec[2]: expected integer, got nil"
        );
    }
}
