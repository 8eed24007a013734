//! What a connection says before it carries calls: `HELLO`, `AUTH`, `CLIENT SETNAME`, `SELECT`,
//! `READONLY` (a cluster replica's reads), `CLIENT TRACKING`, and `ROLE` on a connection that
//! must reach a primary (one whose address Sentinel gave).
//!
//! With RESP3 the client sends `HELLO 3` (carrying the credentials and the name) and `SELECT`
//! together. A server that does not know `HELLO` (before Redis 6) or refuses RESP3 (`NOPROTO`)
//! gets the RESP2 sequence instead: `AUTH`, `CLIENT SETNAME`, `SELECT`. `READONLY` (a cluster
//! node's connection that may read from a replica) and `CLIENT TRACKING ON …` come last when
//! configured. The same steps run on every reconnect, so credentials, the
//! database and tracking survive a lost connection.

use crate::config::Protocol;
use crate::{Cmd, Error, Result, Value};

/// One handshake command, tagged with the attempt it belongs to (replies to an abandoned
/// attempt are ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    kind: StepKind,
    attempt: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepKind {
    Hello,
    Auth,
    SetName,
    Select,
    ReadOnly,
    Tracking,
    Role,
}

/// What the connection does after a handshake reply.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// More replies are due.
    Continue,
    /// Send these commands too.
    Send(Vec<(Cmd, Step)>),
    /// Ready to carry calls; `true` when RESP3 was agreed.
    Done { resp3: bool },
    /// The server refused: fail the waiting calls with this error and close.
    Fail(Error),
    /// The server is not the node this connection is for (`ROLE` is not `master`): close, and
    /// let the waiting calls wait for another attempt (to a freshly resolved address).
    Retry(Error),
}

/// The parts of the configuration the handshake needs. Its `Debug` hides the password.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    pub protocol: Protocol,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_name: Option<String>,
    pub db: i64,
    /// `READONLY`: the connection may read from a cluster replica (a cluster client's
    /// replica reads).
    pub readonly: bool,
    /// `CLIENT TRACKING ON …`, when configured.
    pub tracking: Option<Cmd>,
    /// `tracking` is the client-side cache's ([`Config::cache`](crate::Config::cache)): it
    /// needs RESP3 (invalidations are pushes on this connection), so a server that will not
    /// speak it fails the attempt.
    pub cache: bool,
    /// Send `ROLE` and accept only a node in this role: a primary ([`Role::Primary`], a
    /// connection to a Sentinel-managed primary) or a replica (its replica reads).
    pub verify_role: Option<Role>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("protocol", &self.protocol)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_name", &self.client_name)
            .field("db", &self.db)
            .field("verify_role", &self.verify_role)
            .field("readonly", &self.readonly)
            .field("tracking", &self.tracking)
            .field("cache", &self.cache)
            .finish()
    }
}

/// The handshake of one connection.
#[derive(Debug)]
pub(crate) struct Handshake {
    attempt: u8,
    outstanding: usize,
    resp3: bool,
}

impl Handshake {
    /// Starts a handshake: the first commands to send (empty when there is nothing to say).
    pub fn start(creds: &Credentials) -> (Handshake, Vec<(Cmd, Step)>) {
        let mut hs = Handshake {
            attempt: 0,
            outstanding: 0,
            resp3: creds.protocol == Protocol::Resp3,
        };
        let cmds = if hs.resp3 {
            hs.hello(creds)
        } else {
            hs.resp2(creds)
        };
        (hs, cmds)
    }

    fn step(&mut self, kind: StepKind, cmd: Cmd) -> (Cmd, Step) {
        self.outstanding += 1;
        (
            cmd,
            Step {
                kind,
                attempt: self.attempt,
            },
        )
    }

    fn hello(&mut self, creds: &Credentials) -> Vec<(Cmd, Step)> {
        let mut hello = Cmd::new("HELLO").arg(3);
        if let Some(pass) = &creds.password {
            hello = hello
                .arg("AUTH")
                .arg(creds.username.as_deref().unwrap_or("default"))
                .arg(pass);
        }
        if let Some(name) = &creds.client_name {
            hello = hello.arg("SETNAME").arg(name);
        }
        let mut out = vec![self.step(StepKind::Hello, hello)];
        if creds.db != 0 {
            out.push(self.step(StepKind::Select, Cmd::new("SELECT").arg(creds.db)));
        }
        if creds.verify_role.is_some() {
            out.push(self.step(StepKind::Role, Cmd::new("ROLE")));
        }
        if creds.readonly {
            out.push(self.step(StepKind::ReadOnly, Cmd::new("READONLY")));
        }
        if let Some(tracking) = &creds.tracking {
            out.push(self.step(StepKind::Tracking, tracking.clone()));
        }
        out
    }

    fn resp2(&mut self, creds: &Credentials) -> Vec<(Cmd, Step)> {
        let mut out = Vec::new();
        if let Some(pass) = &creds.password {
            let auth = Cmd::new("AUTH").arg(creds.username.as_deref()).arg(pass);
            out.push(self.step(StepKind::Auth, auth));
        }
        if let Some(name) = &creds.client_name {
            let setname = Cmd::new("CLIENT").arg("SETNAME").arg(name);
            out.push(self.step(StepKind::SetName, setname));
        }
        if creds.db != 0 {
            out.push(self.step(StepKind::Select, Cmd::new("SELECT").arg(creds.db)));
        }
        if creds.verify_role.is_some() {
            out.push(self.step(StepKind::Role, Cmd::new("ROLE")));
        }
        if creds.readonly {
            out.push(self.step(StepKind::ReadOnly, Cmd::new("READONLY")));
        }
        if let Some(tracking) = &creds.tracking {
            out.push(self.step(StepKind::Tracking, tracking.clone()));
        }
        out
    }

    /// True when no reply is due (a handshake that had nothing to send is done at once).
    pub fn is_done(&self) -> bool {
        self.outstanding == 0
    }

    /// True when the connection speaks RESP3.
    pub fn resp3(&self) -> bool {
        self.resp3
    }

    /// Takes the reply to `step`.
    pub fn on_reply(&mut self, step: Step, reply: Result<Value>, creds: &Credentials) -> Outcome {
        self.outstanding = self.outstanding.saturating_sub(1);
        if step.attempt != self.attempt {
            // A reply to the RESP3 attempt that was abandoned for RESP2.
            return self.progress();
        }
        match reply {
            Err(Error::Server { kind, message })
                if step.kind == StepKind::Hello && hello_unsupported(&kind, &message) =>
            {
                if creds.cache {
                    return Outcome::Fail(needs_resp3(&message));
                }
                self.attempt += 1;
                self.resp3 = false;
                let cmds = self.resp2(creds);
                if cmds.is_empty() {
                    self.progress()
                } else {
                    Outcome::Send(cmds)
                }
            }
            Err(e) => Outcome::Fail(refused(step.kind, e, creds)),
            Ok(role) if step.kind == StepKind::Role => {
                let wanted = creds.verify_role.unwrap_or(Role::Primary);
                match role_name(&role) {
                    Some(name) if wanted.is(name) => self.progress(),
                    other => Outcome::Retry(Error::connection(format!(
                        "the server is not {} (ROLE says {}): the address Sentinel gave is \
                         stale, or a failover is under way",
                        wanted.describe(),
                        other.unwrap_or("something unexpected")
                    ))),
                }
            }
            Ok(_) => self.progress(),
        }
    }

    fn progress(&self) -> Outcome {
        if self.outstanding == 0 {
            Outcome::Done { resp3: self.resp3 }
        } else {
            Outcome::Continue
        }
    }
}

/// A handshake step's error reply, saying which step failed and which setting sent it: the
/// call that hears it (a `PING`, say) never sent that command. The code (`kind`) is the
/// server's, unchanged.
fn refused(step: StepKind, err: Error, creds: &Credentials) -> Error {
    let Error::Server { kind, message } = err else {
        return err;
    };
    let what = match step {
        StepKind::Hello => "HELLO 3, with Config::username/password/client_name".to_owned(),
        StepKind::Auth => "AUTH, with Config::username/password".to_owned(),
        StepKind::SetName => "CLIENT SETNAME, with Config::client_name".to_owned(),
        StepKind::Select => format!("SELECT {}, from Config::db or the URL", creds.db),
        StepKind::ReadOnly => {
            "READONLY, for ClusterBuilder::read_from_replicas (a cluster node)".to_owned()
        }
        StepKind::Tracking if creds.cache => "CLIENT TRACKING, for Config::cache".to_owned(),
        StepKind::Tracking => "CLIENT TRACKING, from Config::tracking".to_owned(),
        StepKind::Role => "ROLE, checking that Sentinel's address is the primary's".to_owned(),
    };
    Error::Server {
        kind,
        message: format!("{message} (the connection's handshake: {what})"),
    }
}

/// Why a caching connection's attempt fails when the server will not speak RESP3 (`why`: its
/// answer to `HELLO 3`).
fn needs_resp3(why: &str) -> Error {
    Error::client(format!(
        "Config::cache needs RESP3, and the server will not speak it (HELLO 3 answered: {why}): \
         its invalidations would never arrive (use Redis 6 or later, or a client without \
         Config::cache)"
    ))
}

/// The role a connection's `ROLE` check accepts ([`Credentials::verify_role`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Primary,
    Replica,
}

impl Role {
    /// True when `ROLE`'s first element names this role.
    fn is(self, name: &str) -> bool {
        match self {
            Role::Primary => name == "master",
            Role::Replica => name == "slave" || name == "replica",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Role::Primary => "the primary",
            Role::Replica => "a replica",
        }
    }
}

/// The first element of a `ROLE` reply (`master`, `slave`, `sentinel`), if it has that shape.
fn role_name(reply: &Value) -> Option<&str> {
    match reply {
        Value::Array(items) | Value::Push(items) => match items.first()? {
            Value::Bulk(b) => std::str::from_utf8(b).ok(),
            Value::Simple(s) => Some(s.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

/// The server does not know `HELLO` (Redis < 6) or will not speak RESP3.
fn hello_unsupported(kind: &str, message: &str) -> bool {
    kind == "NOPROTO" || (kind == "ERR" && message.to_ascii_lowercase().contains("unknown command"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn creds() -> Credentials {
        Credentials {
            protocol: Protocol::Resp3,
            username: Some("app".into()),
            password: Some("pw".into()),
            client_name: Some("svc".into()),
            db: 3,
            readonly: false,
            tracking: None,
            cache: false,
            verify_role: None,
        }
    }

    fn names(cmds: &[(Cmd, Step)]) -> Vec<String> {
        // The bytes sent, secrets included (`Display` hides them).
        cmds.iter()
            .map(|(c, _)| {
                let args: Vec<_> = c.args().iter().map(String::from_utf8_lossy).collect();
                args.join(" ")
            })
            .collect()
    }

    #[test]
    fn resp3_sends_hello_with_credentials_then_select() {
        let c = creds();
        let (mut hs, cmds) = Handshake::start(&c);
        assert_eq!(
            names(&cmds),
            ["HELLO 3 AUTH app pw SETNAME svc", "SELECT 3"]
        );
        assert!(matches!(
            hs.on_reply(cmds[0].1, Ok(Value::Map(vec![])), &c),
            Outcome::Continue
        ));
        assert!(matches!(
            hs.on_reply(cmds[1].1, Ok(Value::Simple("OK".into())), &c),
            Outcome::Done { resp3: true }
        ));
    }

    #[test]
    fn unknown_hello_falls_back_to_resp2_and_ignores_the_old_attempt() {
        let c = creds();
        let (mut hs, cmds) = Handshake::start(&c);
        let unknown = Err(Error::server_from_line("ERR unknown command 'HELLO'"));
        let Outcome::Send(resp2) = hs.on_reply(cmds[0].1, unknown, &c) else {
            panic!()
        };
        assert_eq!(
            names(&resp2),
            ["AUTH app pw", "CLIENT SETNAME svc", "SELECT 3"]
        );
        // The SELECT sent with HELLO fails (NOAUTH) but belongs to the abandoned attempt.
        let noauth = Err(Error::server_from_line("NOAUTH Authentication required."));
        assert!(matches!(
            hs.on_reply(cmds[1].1, noauth, &c),
            Outcome::Continue
        ));
        let ok = || Ok(Value::Simple("OK".into()));
        assert!(matches!(
            hs.on_reply(resp2[0].1, ok(), &c),
            Outcome::Continue
        ));
        assert!(matches!(
            hs.on_reply(resp2[1].1, ok(), &c),
            Outcome::Continue
        ));
        assert!(matches!(
            hs.on_reply(resp2[2].1, ok(), &c),
            Outcome::Done { resp3: false }
        ));
    }

    #[test]
    fn refused_credentials_fail() {
        let c = creds();
        let (mut hs, cmds) = Handshake::start(&c);
        let wrong = Err(Error::server_from_line(
            "WRONGPASS invalid username-password pair",
        ));
        let Outcome::Fail(e) = hs.on_reply(cmds[0].1, wrong, &c) else {
            panic!()
        };
        assert_eq!(e.server_kind(), Some("WRONGPASS"));
        assert!(
            e.to_string().contains("HELLO 3, with Config::username"),
            "{e}"
        );
    }

    /// A database the server does not have fails the connection with the server's code and
    /// says where the `SELECT` came from.
    #[test]
    fn a_refused_select_names_the_database_setting() {
        let c = creds();
        let (mut hs, cmds) = Handshake::start(&c);
        assert!(matches!(
            hs.on_reply(cmds[0].1, Ok(Value::Map(vec![])), &c),
            Outcome::Continue
        ));
        let out_of_range = Err(Error::server_from_line("ERR DB index is out of range"));
        let Outcome::Fail(e) = hs.on_reply(cmds[1].1, out_of_range, &c) else {
            panic!()
        };
        assert_eq!(e.server_kind(), Some("ERR"));
        assert_eq!(
            e.to_string(),
            "server error ERR DB index is out of range (the connection's handshake: SELECT 3, \
             from Config::db or the URL)"
        );
    }

    #[test]
    fn resp2_with_nothing_to_say_is_done_at_once() {
        let c = Credentials {
            protocol: Protocol::Resp2,
            ..Default::default()
        };
        let (hs, cmds) = Handshake::start(&c);
        assert!(cmds.is_empty());
        assert!(hs.is_done());
        let c = Credentials {
            protocol: Protocol::Resp2,
            password: Some("p".into()),
            ..Default::default()
        };
        let (_, cmds) = Handshake::start(&c);
        assert_eq!(names(&cmds), ["AUTH p"]);
    }

    /// `READONLY` (replica reads on a cluster) is connection state: sent by the handshake, so
    /// every reconnect sends it again, in both protocols, before tracking.
    #[test]
    fn readonly_is_part_of_the_handshake_in_both_protocols() {
        let c = Credentials {
            readonly: true,
            tracking: Some(Cmd::new("CLIENT").arg("TRACKING").arg("ON")),
            ..creds()
        };
        let (mut hs, cmds) = Handshake::start(&c);
        assert_eq!(
            names(&cmds),
            [
                "HELLO 3 AUTH app pw SETNAME svc",
                "SELECT 3",
                "READONLY",
                "CLIENT TRACKING ON"
            ]
        );
        let unknown = Err(Error::server_from_line("ERR unknown command 'HELLO'"));
        let Outcome::Send(resp2) = hs.on_reply(cmds[0].1, unknown, &c) else {
            panic!()
        };
        assert_eq!(
            names(&resp2),
            [
                "AUTH app pw",
                "CLIENT SETNAME svc",
                "SELECT 3",
                "READONLY",
                "CLIENT TRACKING ON"
            ]
        );
        // A server that refuses it (not in cluster mode) fails the connection, saying why.
        let (mut hs, cmds) = Handshake::start(&Credentials {
            readonly: true,
            ..Default::default()
        });
        assert_eq!(names(&cmds), ["HELLO 3", "READONLY"]);
        assert!(matches!(
            hs.on_reply(cmds[0].1, Ok(Value::Map(vec![])), &c),
            Outcome::Continue
        ));
        let refused = Err(Error::server_from_line(
            "ERR This instance has cluster support disabled",
        ));
        let Outcome::Fail(e) = hs.on_reply(cmds[1].1, refused, &c) else {
            panic!()
        };
        assert!(e.to_string().contains("read_from_replicas"), "{e}");
    }

    #[test]
    fn tracking_comes_last_in_both_protocols() {
        let tracking = crate::Config::new()
            .tracking(crate::Tracking::new().bcast().prefix("u:").noloop())
            .tracking
            .map(|t| t.cmd());
        let c = Credentials {
            tracking,
            ..creds()
        };
        let (mut hs, cmds) = Handshake::start(&c);
        assert_eq!(
            names(&cmds),
            [
                "HELLO 3 AUTH app pw SETNAME svc",
                "SELECT 3",
                "CLIENT TRACKING ON PREFIX u: BCAST NOLOOP"
            ]
        );
        let unknown = Err(Error::server_from_line("ERR unknown command 'HELLO'"));
        let Outcome::Send(resp2) = hs.on_reply(cmds[0].1, unknown, &c) else {
            panic!()
        };
        assert_eq!(
            names(&resp2),
            [
                "AUTH app pw",
                "CLIENT SETNAME svc",
                "SELECT 3",
                "CLIENT TRACKING ON PREFIX u: BCAST NOLOOP"
            ]
        );
    }

    /// A caching connection's handshake turns tracking on last, in the cache's mode (never
    /// `NOLOOP`: a write this connection sends must invalidate too), after everything else.
    #[test]
    fn the_cache_tracks_last_in_its_mode() {
        let cases = [
            (crate::Cache::new(), "CLIENT TRACKING ON"),
            (crate::Cache::new().optin(), "CLIENT TRACKING ON OPTIN"),
            (
                crate::Cache::new().bcast(["u:", "s:"]),
                "CLIENT TRACKING ON BCAST PREFIX u: PREFIX s:",
            ),
        ];
        for (cache, tracking) in cases {
            let c = Credentials {
                readonly: true,
                verify_role: Some(Role::Primary),
                tracking: Some(cache.tracking_cmd()),
                cache: true,
                ..creds()
            };
            let (_, cmds) = Handshake::start(&c);
            assert_eq!(
                names(&cmds),
                [
                    "HELLO 3 AUTH app pw SETNAME svc",
                    "SELECT 3",
                    "ROLE",
                    "READONLY",
                    tracking
                ]
            );
        }
    }

    /// A server that will not speak RESP3 fails a caching connection's attempt with a client
    /// error saying why (its invalidations could never arrive), instead of a connection that
    /// would cache without ever hearing of a change; without the cache it falls back to RESP2.
    #[test]
    fn a_caching_connection_refuses_resp2() {
        for answer in [
            "ERR unknown command 'HELLO'",
            "NOPROTO sorry, this protocol version is not supported",
        ] {
            let c = Credentials {
                tracking: Some(crate::Cache::new().tracking_cmd()),
                cache: true,
                ..creds()
            };
            let (mut hs, cmds) = Handshake::start(&c);
            let refused = Err(Error::server_from_line(answer));
            let Outcome::Fail(e) = hs.on_reply(cmds[0].1, refused, &c) else {
                panic!("{answer}")
            };
            assert!(e.is_client(), "{e:?}");
            assert!(e.to_string().contains("Config::cache needs RESP3"), "{e}");
            // The same server, no cache: RESP2.
            let c = Credentials { cache: false, ..c };
            let (mut hs, cmds) = Handshake::start(&c);
            let refused = Err(Error::server_from_line(answer));
            assert!(matches!(
                hs.on_reply(cmds[0].1, refused, &c),
                Outcome::Send(_)
            ));
        }
    }

    /// A caching connection whose `CLIENT TRACKING` the server refuses says the cache sent it.
    #[test]
    fn a_refused_cache_tracking_names_the_cache() {
        let c = Credentials {
            tracking: Some(crate::Cache::new().tracking_cmd()),
            cache: true,
            ..creds()
        };
        let (mut hs, cmds) = Handshake::start(&c);
        assert!(matches!(
            hs.on_reply(cmds[0].1, Ok(Value::Map(vec![])), &c),
            Outcome::Continue
        ));
        assert!(matches!(
            hs.on_reply(cmds[1].1, Ok(Value::Simple("OK".into())), &c),
            Outcome::Continue
        ));
        let refused = Err(Error::server_from_line("ERR some reason"));
        let Outcome::Fail(e) = hs.on_reply(cmds[2].1, refused, &c) else {
            panic!()
        };
        assert!(e.to_string().contains("for Config::cache"), "{e}");
    }

    /// A connection to a Sentinel-managed primary checks `ROLE` after the credentials, in both
    /// protocols; a replica's answer is a retry (another attempt, re-resolved), not a refusal.
    #[test]
    fn role_is_checked_and_a_replica_is_a_retry() {
        let c = Credentials {
            verify_role: Some(Role::Primary),
            ..creds()
        };
        let (mut hs, cmds) = Handshake::start(&c);
        assert_eq!(
            names(&cmds),
            ["HELLO 3 AUTH app pw SETNAME svc", "SELECT 3", "ROLE"]
        );
        let ok = || Ok(Value::Simple("OK".into()));
        assert!(matches!(
            hs.on_reply(cmds[0].1, Ok(Value::Map(vec![])), &c),
            Outcome::Continue
        ));
        assert!(matches!(
            hs.on_reply(cmds[1].1, ok(), &c),
            Outcome::Continue
        ));
        let replica = Value::Array(vec![
            Value::Bulk(Bytes::from_static(b"slave")),
            Value::Bulk(Bytes::from_static(b"127.0.0.1")),
            Value::Int(6379),
        ]);
        let Outcome::Retry(e) = hs.on_reply(cmds[2].1, Ok(replica), &c) else {
            panic!()
        };
        assert!(e.is_connection(), "{e:?}");
        assert!(e.to_string().contains("ROLE says slave"), "{e}");

        let (mut hs, cmds) = Handshake::start(&c);
        let primary = Value::Array(vec![
            Value::Bulk(Bytes::from_static(b"master")),
            Value::Int(0),
            Value::Array(vec![]),
        ]);
        hs.on_reply(cmds[0].1, Ok(Value::Map(vec![])), &c);
        hs.on_reply(cmds[1].1, ok(), &c);
        assert!(matches!(
            hs.on_reply(cmds[2].1, Ok(primary), &c),
            Outcome::Done { resp3: true }
        ));

        let r2 = Credentials {
            protocol: Protocol::Resp2,
            password: None,
            username: None,
            ..c
        };
        let (_, cmds) = Handshake::start(&r2);
        assert_eq!(names(&cmds), ["CLIENT SETNAME svc", "SELECT 3", "ROLE"]);
    }

    /// A connection for replica reads accepts a replica and retries on a primary.
    #[test]
    fn a_replica_connection_wants_a_replica() {
        let c = Credentials {
            verify_role: Some(Role::Replica),
            protocol: Protocol::Resp2,
            ..Default::default()
        };
        let (mut hs, cmds) = Handshake::start(&c);
        assert_eq!(names(&cmds), ["ROLE"]);
        let role = |r: &'static str| {
            Ok(Value::Array(vec![Value::Bulk(Bytes::from_static(
                r.as_bytes(),
            ))]))
        };
        let Outcome::Retry(e) = hs.on_reply(cmds[0].1, role("master"), &c) else {
            panic!()
        };
        assert!(
            e.to_string().contains("not a replica (ROLE says master)"),
            "{e}"
        );
        let (mut hs, cmds) = Handshake::start(&c);
        assert!(matches!(
            hs.on_reply(cmds[0].1, role("slave"), &c),
            Outcome::Done { resp3: false }
        ));
    }
}
