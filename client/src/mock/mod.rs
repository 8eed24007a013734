//! [`Mock`]: a scripted stand-in for a server, so code written against [`Redis`](crate::Redis)
//! is unit-tested without one (the `mock` feature).
//!
//! A mock hands out real [`Client`]s (and [`Pool`](crate::Pool)s) whose connection is an
//! in-memory server answering from a script: every typed method, `call`, pipeline and
//! transaction goes through the real routing gate, encoder, parser and decoding, so what works
//! against the mock works against Redis, and a reply that does not decode fails the same way.
//!
//! ```
//! use ringdis::{cmd, mock::Mock, Commands, Redis};
//!
//! // The code under test takes any `Redis`: a Client or a Pool in production, the mock here.
//! async fn visit(db: &impl Redis, page: &str) -> ringdis::Result<i64> {
//!     let n = db.incr(format!("visits:{page}")).await?;
//!     db.set("last-page", page).ex(3600).await?;
//!     Ok(n)
//! }
//!
//! # futures::executor::block_on(async {
//! let mock = Mock::new();
//! mock.expect(cmd!("INCR", "visits:home")).returns(7)
//!     .expect(cmd!("SET", "last-page", "home", "EX", 3600)).returns_ok();
//! assert_eq!(visit(&mock.client(), "home").await?, 7);
//! mock.verify()?; // every expected command came, and nothing else
//! # Ok::<(), ringdis::Error>(()) }).unwrap();
//! ```
//!
//! The script is a queue: each command the code sends must be the next one expected (the
//! command name in any case, the arguments byte for byte), and gets its answer: a reply
//! ([`Expect::returns`], any [`Value`], typed replies included: a [`Value::Map`] for a
//! `#[derive(FromRedis)]` struct), an error reply ([`Expect::fails`]), or a lost connection
//! ([`Expect::disconnects`]). A command the script does not expect goes to the
//! [`Mock::otherwise`] closure if one is set, and otherwise gets an error reply
//! (`Error::Server`, kind `MOCK`, saying what was expected) and is recorded:
//! [`Mock::verify`] reports it, with every expected command that never came.
//!
//! The mock answers for the server where the library talks, not the user's code: the handshake
//! (`HELLO`, or RESP2's `AUTH`/`SELECT`/`CLIENT SETNAME` with [`Mock::client_with`] and a
//! [`Config`] asking for them), and transactions' framing: `MULTI` is `OK`, each command in it
//! is answered from the script then `QUEUED`, and `EXEC` gives the queued answers as its array
//! (or `EXECABORT` when one was refused; script `EXEC` itself to make it nil, as when a
//! watched key changed). `PING`, `WATCH` and `UNWATCH` are answered as a server would unless
//! the script expects them next. Replies are sent in the protocol the client speaks: RESP3 by
//! default, RESP2 with `Config::protocol(Protocol::Resp2)` (maps flattened, doubles as text…).
//!
//! Everything runs on the caller's thread as the call is made: no runtime, no thread, no
//! socket. A mock client works under any executor and outside one. [`Client::engine`] says
//! [`Engine::Task`](crate::Engine::Task) for it (its connection moves on the callers' own
//! thread). Pub/sub ([`Client::subscriber`]) is not scripted.

mod encode;
pub(crate) mod server;

use crate::engine::placement::Placement;
use crate::{
    Args, Bytes, Client, Cmd, Config, Error, FieldValues, PoolBuilder, Result, ServerError, Value,
};
use server::{Answer, Expected, Server};

/// A scripted server: the commands it expects, in order, and their answers. Clones share the
/// script. See the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Mock {
    server: Server,
}

/// One expected command, waiting for its answer: call [`returns`](Expect::returns),
/// [`fails`](Expect::fails) or another answer, or nothing is added to the script.
#[must_use = "an expectation is added to the script only once its answer is given"]
#[derive(Debug)]
pub struct Expect<'a> {
    mock: &'a Mock,
    cmd: Cmd,
}

impl<'a> Expect<'a> {
    /// Answers with `reply`: any [`Value`] (`1`, `"text"`, `Value::Nil`, `vec![…]`,
    /// `Value::Map(…)`…), decoded by the caller as a server's reply would be. A
    /// [`Value::Error`] is an error reply; a [`Value::Push`] is sent as an array (a push is
    /// never a reply).
    pub fn returns(self, reply: impl Into<Value>) -> &'a Mock {
        self.answer(Answer::Reply(reply.into()))
    }

    /// Answers with a hash, as `HGETALL` replies: the `field value` pairs `fields` writes (a
    /// `#[derive(ToRedis)]` struct, `[("name", "ada")]`, a `HashMap`…) as a [`Value::Map`],
    /// which the caller decodes into its `#[derive(FromRedis)]` struct or a map (from RESP2's
    /// flat array too, with a RESP2 client).
    ///
    /// ```
    /// use ringdis::{cmd, mock::Mock, Commands, FromRedis, ToRedis};
    ///
    /// #[derive(Debug, PartialEq, FromRedis, ToRedis)]
    /// struct User { name: String, born: i64 }
    ///
    /// # futures::executor::block_on(async {
    /// let ada = User { name: "ada".into(), born: 1815 };
    /// let mock = Mock::new();
    /// mock.expect(cmd!("HGETALL", "user:1")).returns_hash(&ada);
    /// let user: User = mock.client().hgetall("user:1").decode().await?;
    /// assert_eq!(user, ada);
    /// # Ok::<(), ringdis::Error>(()) }).unwrap();
    /// ```
    pub fn returns_hash(self, fields: impl FieldValues) -> &'a Mock {
        let mut args = Args::new();
        fields.write_args(&mut args);
        let mut args = args.iter().map(|a| Value::Bulk(Bytes::copy_from_slice(a)));
        let mut pairs = Vec::new();
        while let (Some(field), Some(value)) = (args.next(), args.next()) {
            pairs.push((field, value));
        }
        self.returns(Value::Map(pairs))
    }

    /// Answers `+OK`, what `SET`, `MSET` and most writes reply.
    pub fn returns_ok(self) -> &'a Mock {
        self.returns(Value::Simple("OK".into()))
    }

    /// Answers with an error reply, written as a server writes it: `"WRONGTYPE Operation
    /// against a key holding the wrong kind of value"`. The call fails with
    /// [`Error::Server`] (kind `WRONGTYPE`); inside a pipeline it is that command's error.
    pub fn fails(self, error_line: &str) -> &'a Mock {
        let (kind, message) = crate::value::split_error_line(error_line);
        let e = ServerError {
            kind: kind.to_owned(),
            message: message.to_owned(),
        };
        self.returns(Value::Error(e))
    }

    /// Closes the connection instead of answering: the call (and every other in flight on
    /// that connection) fails with [`Error::Connection`], and the next call reconnects, as
    /// with a server that went away.
    pub fn disconnects(self) -> &'a Mock {
        self.answer(Answer::Disconnect)
    }

    fn answer(self, answer: Answer) -> &'a Mock {
        let mock = self.mock;
        mock.server.lock().expected.push_back(Expected {
            cmd: self.cmd,
            answer,
        });
        mock
    }
}

impl Mock {
    /// A mock expecting nothing yet.
    pub fn new() -> Mock {
        Mock::default()
    }

    /// Expects `cmd` next (after those expected before it): give its answer on what this
    /// returns. Build it with [`cmd!`](crate::cmd!), or with a typed method's
    /// [`into_cmd`](crate::commands) on a mock client (`db.set("k", 1).ex(60).into_cmd()`).
    pub fn expect(&self, cmd: Cmd) -> Expect<'_> {
        Expect { mock: self, cmd }
    }

    /// Answers the commands the script does not expect (fred's mocks, redis-rs's
    /// `MockRedisConnection` with a closure): `Some(reply)` answers, `None` leaves the command
    /// unexpected. It runs on the thread of the call it answers, one command at a time (a
    /// command on another connection waits for it), and may call the mock's methods (not
    /// await its clients' calls: the call it answers waits for it; a command it sends itself
    /// is not answered by it). A panic in it
    /// is caught: the command gets a `MOCK` error reply and [`Mock::verify`] reports it.
    ///
    /// ```
    /// use ringdis::mock::Mock;
    /// use ringdis::{Commands, Value};
    ///
    /// # futures::executor::block_on(async {
    /// let mock = Mock::new();
    /// mock.otherwise(|cmd| (cmd.name() == "GET").then(|| Value::from("cached")));
    /// let client = mock.client();
    /// let v: String = client.get("any").decode().await?;
    /// assert_eq!(v, "cached");
    /// # Ok::<(), ringdis::Error>(()) }).unwrap();
    /// ```
    pub fn otherwise<F>(&self, answer: F) -> &Mock
    where
        F: FnMut(&Cmd) -> Option<Value> + Send + 'static,
    {
        let answer: server::Fallback = Box::new(answer);
        self.server.lock().fallback = Some(std::sync::Arc::new(std::sync::Mutex::new(answer)));
        self
    }

    /// A client whose connection is this mock (RESP3, database 0, autoconnect). Make as many as
    /// needed: they share the script. Its dedicated connections (blocking commands,
    /// `watch_transaction`) are this mock too.
    pub fn client(&self) -> Client {
        self.client_placed(Config::new())
            .unwrap_or_else(|_| unreachable!("the default configuration is valid"))
    }

    /// A client with `config` (its address is ignored): to test with RESP2, a database,
    /// credentials or a command timeout. Its [`Config::cache`](crate::Config::cache) is not
    /// applied: a mock caches nothing, so a cached read (`.cached()`) is sent, and scripted, as
    /// the plain read it is, and `cache_stats()` is `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for a configuration [`Client::new`] refuses.
    pub fn client_with(&self, config: Config) -> Result<Client> {
        self.client_placed(config)
    }

    fn client_placed(&self, config: Config) -> Result<Client> {
        Client::placed(config, &Placement::Mock(self.server.clone()))
    }

    /// The pool `builder` describes (its address ignored), whose clients are this mock. As for
    /// [`Mock::client_with`], its configuration's cache is not applied.
    pub fn pool(&self, builder: PoolBuilder) -> crate::Pool {
        builder
            .without_cache()
            .build_at(Ok(Placement::Mock(self.server.clone())))
    }

    /// Every command the code sent so far, in order (the handshake's left out; `MULTI`, `EXEC`
    /// and `PING` in). They are kept for as long as the mock lives: a mock is for tests, not
    /// for a long-running process.
    pub fn received(&self) -> Vec<Cmd> {
        self.server.lock().received.clone()
    }

    /// `Ok` when every expected command came and nothing unexpected did.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] listing each command nothing answered (with what the script expected
    /// instead) and each expected command that never came.
    pub fn verify(&self) -> Result<()> {
        let script = self.server.lock();
        let mut problems: Vec<String> = script.unexpected.clone();
        problems.extend(
            script
                .expected
                .iter()
                .map(|e| format!("expected `{}`, which never came", e.cmd)),
        );
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::client(format!(
            "the mock's script was not followed: {}",
            problems.join("; ")
        )))
    }

    /// [`Mock::verify`], as a test assertion.
    ///
    /// # Panics
    ///
    /// With `verify`'s report, when the script was not followed.
    #[track_caller]
    pub fn assert_all_consumed(&self) {
        if let Err(e) = self.verify() {
            panic!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cmd, Commands, FromRedis, Protocol, Redis, ToRedis};
    use bytes::Bytes;
    use futures::executor::block_on;

    #[derive(Debug, PartialEq, FromRedis, ToRedis)]
    struct User {
        name: String,
        born: i64,
    }

    fn ada() -> Value {
        Value::Map(vec![
            ("name".into(), "ada".into()),
            ("born".into(), 1815.into()),
        ])
    }

    /// Typed methods, `call`, a derived struct and nil decode from scripted replies, in both
    /// protocols; every expected command came and nothing else.
    #[test]
    fn typed_replies_decode_in_both_protocols() {
        for protocol in [Protocol::Resp3, Protocol::Resp2] {
            let mock = Mock::new();
            mock.expect(cmd!("incr", "n"))
                .returns(3)
                .expect(cmd!("GET", "k"))
                .returns(Value::Nil)
                .expect(cmd!("HGETALL", "user:1"))
                .returns(ada())
                .expect(cmd!("ZSCORE", "z", "m"))
                .returns(1.5)
                .expect(cmd!("CUSTOM.CMD", "x"))
                .returns(vec!["a", "b"]);
            let db = mock.client_with(Config::new().protocol(protocol)).unwrap();
            block_on(async {
                assert_eq!(db.incr("n").await.unwrap(), 3);
                assert_eq!(db.get("k").await.unwrap(), None);
                let user: User = db.hgetall("user:1").decode().await.unwrap();
                assert_eq!(
                    user,
                    User {
                        name: "ada".into(),
                        born: 1815
                    }
                );
                assert_eq!(db.zscore("z", "m").await.unwrap(), Some(1.5));
                let v: Vec<String> = db.call(cmd!("CUSTOM.CMD", "x")).await.unwrap();
                assert_eq!(v, ["a", "b"]);
            });
            mock.verify().unwrap();
            assert_eq!(mock.received().len(), 5, "{protocol:?}");
        }
    }

    /// A configuration made for TLS (`rediss://`) works with the mock, whose address is
    /// ignored: it was refused with a TLS handshake error.
    #[cfg(feature = "tls")]
    #[test]
    fn a_tls_configuration_is_served_in_plain_text() {
        let mock = Mock::new();
        mock.expect(cmd!("GET", "k")).returns("v");
        let config = Config::from_url("rediss://cache.example:6380/0").unwrap();
        let db = mock.client_with(config).unwrap();
        let v = block_on(db.get("k").send()).unwrap();
        assert_eq!(v.as_deref(), Some(&b"v"[..]));
        mock.verify().unwrap();
    }

    /// `returns_hash` answers the pairs a struct or a list of pairs writes, as a map of bulk
    /// strings, which decodes back into the struct in both protocols.
    #[test]
    fn returns_hash_answers_what_hgetall_would() {
        let ada = User {
            name: "ada".into(),
            born: 1815,
        };
        for protocol in [Protocol::Resp3, Protocol::Resp2] {
            let mock = Mock::new();
            mock.expect(cmd!("HGETALL", "user:1"))
                .returns_hash(&ada)
                .expect(cmd!("HGETALL", "user:2"))
                .returns_hash([("name", "bob"), ("born", "1900")]);
            let db = mock.client_with(Config::new().protocol(protocol)).unwrap();
            block_on(async {
                let user: User = db.hgetall("user:1").decode().await.unwrap();
                assert_eq!(user, ada);
                let raw: Value = db.hgetall("user:2").decode().await.unwrap();
                let bulk = |s: &'static str| Value::Bulk(Bytes::from_static(s.as_bytes()));
                let pairs = [("name", "bob"), ("born", "1900")];
                match protocol {
                    Protocol::Resp3 => assert_eq!(
                        raw,
                        Value::Map(pairs.iter().map(|&(f, v)| (bulk(f), bulk(v))).collect())
                    ),
                    _ => assert_eq!(
                        raw,
                        Value::Array(
                            pairs
                                .iter()
                                .flat_map(|&(f, v)| [bulk(f), bulk(v)])
                                .collect()
                        )
                    ),
                }
            });
            mock.verify().unwrap();
        }
    }

    /// An unexpected command gets a `MOCK` error naming what was expected; the expected one
    /// that never came is reported too, and the connection carries on.
    #[test]
    fn a_command_out_of_script_fails_and_is_reported() {
        let mock = Mock::new();
        mock.expect(cmd!("SET", "k", "v")).returns_ok();
        let db = mock.client();
        let err = block_on(db.del("k").send()).unwrap_err();
        assert_eq!(err.server_kind(), Some("MOCK"), "{err}");
        assert!(err.to_string().contains("`DEL k`"), "{err}");
        assert!(err.to_string().contains("expected `SET k v`"), "{err}");
        let report = mock.verify().unwrap_err().to_string();
        assert!(report.contains("unexpected command `DEL k`"), "{report}");
        assert!(
            report.contains("expected `SET k v`, which never came"),
            "{report}"
        );
        // Still in step: the expected command is answered now.
        block_on(db.set("k", "v").send()).unwrap();
        let report = mock.verify().unwrap_err().to_string();
        assert!(!report.contains("never came"), "{report}");
        let panic = std::panic::catch_unwind(|| mock.assert_all_consumed()).unwrap_err();
        assert!(panic.downcast_ref::<String>().unwrap().contains("DEL k"));
    }

    /// Scripted errors are server errors: on their own, in a pipeline (the others kept) and in
    /// a transaction (EXEC's array).
    #[test]
    fn pipelines_and_transactions_take_their_replies_from_the_script() {
        let mock = Mock::new();
        mock.expect(cmd!("INCR", "a"))
            .returns(1)
            .expect(cmd!("LPUSH", "a", "x"))
            .fails("WRONGTYPE Operation against a key holding the wrong kind of value")
            .expect(cmd!("GET", "a"))
            .returns("1")
            .expect(cmd!("INCR", "a"))
            .returns(2)
            .expect(cmd!("INCR", "b"))
            .returns(5);
        let db = mock.client();
        block_on(async {
            let each: Vec<Result<Value>> = db
                .pipeline()
                .incr("a")
                .lpush("a", "x")
                .get("a")
                .query()
                .await
                .unwrap();
            assert_eq!(each[0].as_ref().unwrap(), &Value::Int(1));
            assert_eq!(
                each[1].as_ref().unwrap_err().server_kind(),
                Some("WRONGTYPE")
            );
            assert_eq!(each[2].as_ref().unwrap(), &Value::Bulk(Bytes::from("1")));
            let (a, b): (i64, i64) = db.transaction().incr("a").incr("b").query().await.unwrap();
            assert_eq!((a, b), (2, 5));
        });
        mock.verify().unwrap();
        let names: Vec<String> = mock.received().iter().map(Cmd::name).collect();
        assert_eq!(
            names,
            ["INCR", "LPUSH", "GET", "MULTI", "INCR", "INCR", "EXEC"]
        );
    }

    /// A command the script refuses inside a transaction aborts it, as a server does, and
    /// the error names that command.
    #[test]
    fn an_unexpected_command_in_a_transaction_aborts_it() {
        let mock = Mock::new();
        mock.expect(cmd!("INCR", "a")).returns(1);
        let db = mock.client();
        let err = block_on(db.transaction().incr("a").incr("zzz").query::<Value>()).unwrap_err();
        assert_eq!(err.server_kind(), Some("EXECABORT"), "{err}");
        assert!(err.to_string().contains("INCR zzz"), "{err}");
        assert!(mock.verify().is_err());
    }

    /// A scripted disconnect fails the call with a connection error; the next call reconnects
    /// (handshake again) and is answered.
    #[test]
    fn a_scripted_disconnect_is_a_lost_connection() {
        let mock = Mock::new();
        mock.expect(cmd!("GET", "k"))
            .disconnects()
            .expect(cmd!("GET", "k"))
            .returns("back");
        let db = mock.client();
        let err = block_on(db.get("k").send()).unwrap_err();
        assert!(err.is_connection(), "{err}");
        assert_eq!(
            block_on(db.get("k").send()).unwrap(),
            Some(Bytes::from("back"))
        );
        mock.verify().unwrap();
    }

    /// The fallback answers what the script does not; `None` leaves it unexpected.
    #[test]
    fn the_fallback_answers_what_the_script_does_not() {
        let mock = Mock::new();
        mock.expect(cmd!("GET", "first")).returns("scripted");
        mock.otherwise(|cmd| {
            let key = cmd.args().iter().nth(1)?;
            (cmd.name() == "GET").then(|| Value::Bulk(Bytes::copy_from_slice(key)))
        });
        let db = mock.client();
        block_on(async {
            assert_eq!(db.get("other").await.unwrap(), Some(Bytes::from("other")));
            assert_eq!(
                db.get("first").await.unwrap(),
                Some(Bytes::from("scripted"))
            );
            assert!(db.incr("n").await.is_err());
        });
        let report = mock.verify().unwrap_err().to_string();
        assert!(
            report.contains("INCR n") && !report.contains("GET"),
            "{report}"
        );
    }

    /// Two connections of one mock (two clients, a pool's members, a blocking call's) used
    /// from two threads: a command that comes while the `otherwise` closure answers another
    /// waits for it, rather than finding no closure and failing as unexpected.
    #[test]
    fn the_fallback_answers_commands_of_two_connections_at_once() {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};
        let mock = Mock::new();
        let (entered_tx, entered) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        mock.otherwise(move |cmd| {
            let key = cmd.args().iter().nth(1)?;
            if key[..] == b"slow"[..] {
                let _ = entered_tx.send(());
                // Bounded: the test lets it go once the other command came.
                let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
            }
            Some(Value::Bulk(Bytes::copy_from_slice(key)))
        });
        let (a, b) = (mock.client(), mock.client());
        let slow = std::thread::spawn(move || block_on(a.get("slow").send()));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        let fast = std::thread::spawn(move || block_on(b.get("fast").send()));
        // Once the mock has the second command, the first may finish.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mock.received().iter().any(|c| c.to_string() == "GET fast") {
            assert!(Instant::now() < deadline, "the second command never came");
            std::thread::yield_now();
        }
        go.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap(), Some(Bytes::from("slow")));
        assert_eq!(fast.join().unwrap().unwrap(), Some(Bytes::from("fast")));
        mock.verify().unwrap();
    }

    /// A pool of mock clients, a blocking command (on a dedicated connection) and an
    /// `async_call` callback all reach the same script.
    #[test]
    fn pools_blocking_calls_and_callbacks_share_the_script() {
        let mock = Mock::new();
        mock.expect(cmd!("BLPOP", "q", "0.0"))
            .returns(vec!["q", "job"])
            .expect(cmd!("INCR", "n"))
            .returns(1)
            .expect(cmd!("INCR", "n"))
            .returns(2);
        let db = mock.client();
        let pool = mock.pool(crate::Pool::builder(Config::new()).max_size(2));
        block_on(async {
            let job = db.blpop("q", 0.0).await.unwrap();
            assert_eq!(job, Some((Bytes::from("q"), Bytes::from("job"))));
            assert_eq!(
                Redis::call::<i64>(&pool, cmd!("INCR", "n")).await.unwrap(),
                1
            );
        });
        let (tx, rx) = std::sync::mpsc::channel();
        db.async_call(cmd!("INCR", "n"), move |r: Result<Value>| {
            let _ = tx.send(r);
        });
        // Answered on this thread, before async_call returned.
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Int(2));
        mock.verify().unwrap();
    }

    /// Calls from many threads at once each get their own reply.
    #[test]
    fn concurrent_callers_get_their_own_replies() {
        let mock = Mock::new();
        mock.otherwise(|cmd| {
            let key = cmd.args().iter().nth(1)?;
            Some(Value::Bulk(Bytes::copy_from_slice(key)))
        });
        let db = mock.client();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let db = db.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let key = format!("{t}:{i}");
                        let got = block_on(db.get(key.as_str()).send()).unwrap();
                        assert_eq!(got, Some(Bytes::from(key)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(mock.received().len(), 800);
    }

    /// A script falls back to EVAL on NOSCRIPT, on any `Redis`: the mock scripts both.
    #[test]
    fn scripts_fall_back_to_eval_on_the_mock() {
        let script = crate::Script::new("return 1");
        let sha = script.sha().to_owned();
        let mock = Mock::new();
        mock.expect(cmd!("EVALSHA", &sha, 1, "k"))
            .fails("NOSCRIPT No matching script. Please use EVAL.")
            .expect(cmd!("EVAL", "return 1", 1, "k"))
            .returns(1);
        let n: i64 = block_on(script.key("k").invoke(&mock.client())).unwrap();
        assert_eq!(n, 1);
        mock.verify().unwrap();
    }

    /// `watch_transaction` runs on a dedicated mock connection: WATCH is answered, an EXEC
    /// scripted nil (a watched key changed) makes it run again.
    #[test]
    fn a_watch_transaction_retries_when_exec_is_scripted_nil() {
        let mock = Mock::new();
        for (n, exec) in [
            (1, Value::Nil),
            (2, Value::Array(vec![Value::Simple("OK".into())])),
        ] {
            mock.expect(cmd!("GET", "c"))
                .returns(n.to_string())
                .expect(cmd!("SET", "c", n * 2))
                .returns_ok()
                .expect(cmd!("EXEC"))
                .returns(exec);
        }
        let db = mock.client();
        let done: ((),) = block_on(db.watch_transaction("c", |conn| async move {
            let n: i64 = conn.get("c").decode().await?;
            let mut tx = conn.transaction();
            let _ = tx.set("c", n * 2);
            Ok(tx)
        }))
        .unwrap();
        assert_eq!(done, ((),));
        mock.verify().unwrap();
        let watches = mock
            .received()
            .iter()
            .filter(|c| c.name() == "WATCH")
            .count();
        assert_eq!(watches, 2);
    }

    /// A panicking `otherwise` closure answers its command with an error, reported by
    /// `verify`; the next command is answered again.
    #[test]
    fn a_panicking_fallback_is_an_error_not_a_hang() {
        let mock = Mock::new();
        mock.otherwise(|cmd| match cmd.name().as_str() {
            "GET" => panic!("boom"),
            _ => Some(Value::Int(1)),
        });
        let db = mock.client();
        let err = block_on(db.get("k").send()).unwrap_err();
        assert_eq!(err.server_kind(), Some("MOCK"), "{err}");
        assert_eq!(block_on(db.incr("n").send()).unwrap(), 1);
        let report = mock.verify().unwrap_err().to_string();
        assert!(report.contains("panicked on `GET k`"), "{report}");
    }
}
