//! The one error type every ringdis call returns.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;

/// `Result` with [`Error`] as its error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a call.
///
/// Each variant tells a caller what to do next:
///
/// * [`Error::Connection`] — the connection could not be made (refused, or not up within the
///   connect timeout: then the request was never sent), or was lost while the call was in
///   flight: then the command may or may not have run on the server; ringdis never retries it
///   silently; its `sent` field tells the two apart. [`Error::io_error`] (and `source()`) give
///   the operating-system error behind it.
/// * [`Error::Timeout`] — the request was sent and no reply came within the command timeout. A
///   reply that arrives later is discarded; the connection stays usable.
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
/// [`Error::is_retryable`] says which errors a call may simply be sent again after.
///
/// `Error` is `Clone` (an operating-system cause is shared behind an `Arc`), so one connection
/// failure can be handed to every caller it affects. Messages never contain a password.
///
/// ```
/// use ringdis::Error;
/// let e = Error::server_from_line("WRONGTYPE Operation against a key holding the wrong kind of value");
/// assert_eq!(e.server_kind(), Some("WRONGTYPE"));
/// assert!(e.to_string().starts_with("server error WRONGTYPE"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// Connecting failed, or the connection was lost with the call in flight.
    Connection {
        /// What happened, e.g. `connect to 127.0.0.1:6379: Connection refused (os error 111)`.
        message: String,
        /// The operating-system error behind it, when there is one (also
        /// [`std::error::Error::source`]). Its text is already part of `message`.
        source: Option<Arc<io::Error>>,
        /// Whether the request may have reached the server: `true` when it had been written to
        /// the connection that failed (it may have run), `false` when it never left the client
        /// (no connection came up, or autoconnect is off), so sending it again cannot run it
        /// twice. `true` when ringdis cannot tell. See [`Error::is_retryable`].
        sent: bool,
    },
    /// A call whose request was sent got no reply within its time limit (or a pool checkout
    /// found no client within the checkout timeout). A call that could not even be sent, because
    /// no connection came up in time, fails with [`Error::Connection`] instead.
    Timeout,
    /// The server broke the protocol; the connection was closed.
    Protocol {
        /// What was wrong with the bytes.
        message: String,
    },
    /// The server replied with an error.
    ///
    /// A `MOVED` or `ASK` reaching a [`Client`](crate::Client) means its server is a Redis
    /// Cluster node and the key lives on another: use a [`ClusterClient`](crate::ClusterClient)
    /// (it follows redirects itself); its text says so.
    ///
    /// ```
    /// let e = ringdis::Error::Server { kind: "MOVED".into(), message: "3999 10.0.0.2:7001".into() };
    /// assert!(e.to_string().starts_with("server error MOVED 3999 10.0.0.2:7001 ("));
    /// assert!(e.to_string().contains("use ClusterClient"));
    /// ```
    Server {
        /// The error code: the first word of the reply (`ERR`, `WRONGTYPE`, `MOVED`, …).
        kind: String,
        /// The rest of the error line.
        message: String,
    },
    /// The reply could not be decoded into the requested type.
    Decode {
        /// Where in the target type it failed, e.g. `User.age` (empty at the top level).
        path: String,
        /// What the target type accepts, e.g. `integer`.
        expected: Cow<'static, str>,
        /// A short description of what arrived, e.g. `bulk string "abc"`.
        got: String,
    },
    /// The call was refused on the client side before anything was sent.
    Client {
        /// Why.
        message: String,
        /// The operating-system error behind it, when there is one (setting up the transport);
        /// also [`std::error::Error::source`]. Its text is already part of `message`.
        source: Option<Arc<io::Error>>,
    },
    /// A [`Subscriber`](crate::Subscriber)'s reader fell behind: its queue was full
    /// ([`Config::subscriber_queue_limit`](crate::Config::subscriber_queue_limit)) and this
    /// many messages were dropped at this point of the stream. The subscriber goes on.
    Lagged {
        /// How many messages were dropped.
        dropped: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connection { message, .. } => write!(f, "connection error: {message}"),
            Error::Timeout => f.write_str("timed out waiting for the reply"),
            Error::Protocol { message } => write!(f, "protocol error: {message}"),
            Error::Server { kind, message } if kind == "MOVED" || kind == "ASK" => write!(
                f,
                "server error {kind} {message} (a Redis Cluster redirect: the slot is served by \
                 another node; a ClusterClient follows redirects, a Client connected to one \
                 node does not: use ClusterClient)"
            ),
            Error::Server { kind, message } => write!(f, "server error {kind} {message}"),
            Error::Decode {
                path,
                expected,
                got,
            } => f.write_str(&fmt_decode(path, expected, got)),
            Error::Client { message, .. } => write!(f, "client error: {message}"),
            Error::Lagged { dropped } => write!(
                f,
                "the subscriber fell behind: {dropped} messages dropped because its queue was full"
            ),
        }
    }
}

impl std::error::Error for Error {
    /// The [`io::Error`] behind a connection or client error, when there is one.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Two errors are equal when they are the same variant with the same texts; operating-system
/// causes compare by [`io::ErrorKind`] (an `io::Error` itself has no equality).
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        fn same_io(a: &Option<Arc<io::Error>>, b: &Option<Arc<io::Error>>) -> bool {
            a.as_ref().map(|e| e.kind()) == b.as_ref().map(|e| e.kind())
        }
        match (self, other) {
            (
                Error::Connection {
                    message,
                    source,
                    sent,
                },
                Error::Connection {
                    message: m,
                    source: s,
                    sent: t,
                },
            ) => message == m && same_io(source, s) && sent == t,
            (
                Error::Client { message, source },
                Error::Client {
                    message: m,
                    source: s,
                },
            ) => message == m && same_io(source, s),
            (Error::Timeout, Error::Timeout) => true,
            (Error::Protocol { message }, Error::Protocol { message: m }) => message == m,
            (
                Error::Server { kind, message },
                Error::Server {
                    kind: k,
                    message: m,
                },
            ) => kind == k && message == m,
            (
                Error::Decode {
                    path,
                    expected,
                    got,
                },
                Error::Decode {
                    path: p,
                    expected: e,
                    got: g,
                },
            ) => path == p && expected == e && got == g,
            (Error::Lagged { dropped }, Error::Lagged { dropped: d }) => dropped == d,
            _ => false,
        }
    }
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
        crate::value::ServerError::from_line(line).into()
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

    /// True for [`Error::Client`] (the call was refused before it was sent: bad configuration or
    /// arguments, an empty pipeline, a closed pool or client…). Retrying the same call gives the
    /// same error.
    pub fn is_client(&self) -> bool {
        matches!(self, Error::Client { .. })
    }

    /// True when sending the same call again cannot run it twice and may succeed, whatever the
    /// command:
    ///
    /// * [`Error::Connection`] with `sent: false`: the request never left the client (no
    ///   connection came up within the connect timeout, or autoconnect is off and the client is
    ///   not connected);
    /// * [`Error::Server`] whose kind says the server refused to run the command for a passing
    ///   reason, as the server's shared error replies state: `LOADING` (the dataset is being
    ///   loaded), `BUSY` (a script or function is running past its time limit), `TRYAGAIN` (a
    ///   multi-key command during a cluster slot migration), `CLUSTERDOWN`, `MASTERDOWN` (a
    ///   replica that lost its primary and serves no stale data) and `NOREPLICAS` (fewer
    ///   replicas than `min-replicas-to-write`). Wait a little before retrying those.
    ///
    /// Everything else is `false`. In particular [`Error::Timeout`] and a [`Error::Connection`]
    /// with `sent: true`: the request reached (or may have reached) the server, so the command
    /// may have run; retry those only for an idempotent call (a read, a `SET` of a fixed
    /// value, a `DEL`), which the error cannot know. [`Error::Client`], [`Error::Decode`] and
    /// other server errors give the same result again; [`Error::Protocol`] means the server is
    /// broken or not Redis.
    ///
    /// A server error decoded out of a pipeline's replies (into a tuple, a `Vec`, a struct)
    /// speaks for that one command: the pipeline's other commands may have run, so a `true`
    /// here does not make resending the whole pipeline safe. Decode it as
    /// `Vec<Result<Value>>` to see which commands failed. The same holds for the replies
    /// inside a transaction's `EXEC`.
    ///
    /// ringdis never retries by itself (a reconnect resends nothing that was in flight).
    ///
    /// ```
    /// use ringdis::Error;
    /// assert!(Error::server_from_line("LOADING Redis is loading the dataset in memory").is_retryable());
    /// assert!(!Error::server_from_line("WRONGTYPE Operation against a key").is_retryable());
    /// assert!(!Error::Timeout.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connection { sent, .. } => !sent,
            Error::Server { kind, .. } => matches!(
                kind.as_str(),
                "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "NOREPLICAS"
            ),
            _ => false,
        }
    }

    /// True for [`Error::Lagged`] (a subscriber's queue overflowed).
    pub fn is_lagged(&self) -> bool {
        matches!(self, Error::Lagged { .. })
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// The operating-system error behind a connection or client error, if any (the same as
    /// [`std::error::Error::source`], without the downcast).
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let client = ringdis::Client::open("redis://127.0.0.1:1").unwrap();
    /// let err = client.call::<()>(ringdis::cmd!("PING")).await.unwrap_err();
    /// assert_eq!(
    ///     err.io_error().map(|e| e.kind()),
    ///     Some(std::io::ErrorKind::ConnectionRefused)
    /// );
    /// # }
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Connection { source, .. } | Error::Client { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    /// An [`Error::Connection`] whose request may have been sent (the safe assumption).
    pub(crate) fn connection(message: impl Into<String>) -> Error {
        Error::Connection {
            message: message.into(),
            source: None,
            sent: true,
        }
    }

    /// An [`Error::Connection`] caused by `cause`; `message` already says what it is.
    pub(crate) fn connection_io(message: impl Into<String>, cause: io::Error) -> Error {
        Error::Connection {
            message: message.into(),
            source: Some(Arc::new(cause)),
            sent: true,
        }
    }

    /// The same error for a call whose request never left the client: an
    /// [`Error::Connection`] gets `sent: false`; others pass through.
    pub(crate) fn unsent(self) -> Error {
        match self {
            Error::Connection {
                message, source, ..
            } => Error::Connection {
                message,
                source,
                sent: false,
            },
            other => other,
        }
    }

    /// An [`Error::Client`] caused by `cause`; `message` already says what it is.
    pub(crate) fn client_io(message: impl Into<String>, cause: io::Error) -> Error {
        Error::Client {
            message: message.into(),
            source: Some(Arc::new(cause)),
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
            source: None,
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
    fn is_client_and_is_retryable_classify_every_variant() {
        let unsent = Error::connection("refused").unsent();
        let sent = Error::connection("reset");
        let server = |line: &str| Error::server_from_line(line);
        let decode = Error::decode("integer", &crate::Value::Nil);
        for (e, client, retryable) in [
            (Error::client("bad"), true, false),
            (unsent.clone(), false, true),
            (sent.clone(), false, false),
            (Error::Timeout, false, false),
            (Error::protocol("junk"), false, false),
            (decode, false, false),
            (Error::Lagged { dropped: 1 }, false, false),
            (
                server("LOADING Redis is loading the dataset in memory"),
                false,
                true,
            ),
            (server("BUSY Redis is busy running a script."), false, true),
            (
                server("TRYAGAIN Multiple keys request during rehashing of slot"),
                false,
                true,
            ),
            (server("CLUSTERDOWN The cluster is down"), false, true),
            (server("MASTERDOWN Link with MASTER is down"), false, true),
            (
                server("NOREPLICAS Not enough good replicas to write."),
                false,
                true,
            ),
            (
                server("BUSYGROUP Consumer Group name already exists"),
                false,
                false,
            ),
            (server("ERR unknown command"), false, false),
            (
                server("READONLY You can't write against a read only replica."),
                false,
                false,
            ),
        ] {
            assert_eq!(e.is_client(), client, "{e:?}");
            assert_eq!(e.is_retryable(), retryable, "{e:?}");
        }
        assert_ne!(unsent, sent.clone().unsent().clone(), "messages differ");
        assert_eq!(
            Error::connection("x").unsent(),
            Error::connection("x").unsent()
        );
        assert_ne!(Error::connection("x").unsent(), Error::connection("x"));
        assert!(Error::Timeout.unsent() == Error::Timeout);
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
