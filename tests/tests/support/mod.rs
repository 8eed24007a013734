//! What every integration test file shares: the matrix of servers × transports a behaviour must
//! hold for, and clients configured for one cell of it.
#![allow(dead_code)] // each test file uses a different part

use ringdis::{cmd, Client, Config, Engine, Error, Protocol};
use ringdis_tests::{Server, ServerKind};
use std::time::{Duration, Instant};

/// The transports every behaviour is tested on.
pub fn transports() -> Vec<Engine> {
    vec![Engine::Epoll, Engine::IoUring]
}

/// Both protocols.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Resp2, Protocol::Resp3];

/// Every (server kind, transport) pair.
pub fn matrix() -> Vec<(ServerKind, Engine)> {
    ServerKind::ALL
        .into_iter()
        .flat_map(|k| transports().into_iter().map(move |t| (k, t)))
        .collect()
}

/// A configuration for `server` on `transport`.
pub fn config(server: &Server, transport: Engine) -> Config {
    Config::from_url(&server.url())
        .expect("harness URLs parse")
        .engine(transport)
}

/// A client for `server` on `transport`, speaking `protocol`.
pub fn client(server: &Server, transport: Engine, protocol: Protocol) -> Client {
    let c = Client::new(config(server, transport).protocol(protocol)).expect("client");
    assert_eq!(c.engine(), transport);
    c
}

/// A label for assertion messages.
pub fn label(kind: ServerKind, transport: Engine, protocol: Protocol) -> String {
    format!("{kind}/{transport:?}/{protocol:?}")
}

/// `r` is a refusal before sending ([`Error::Client`]) whose message contains `needle`.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(r: ringdis::Result<T>, needle: &str, at: &str) {
    match r {
        Err(Error::Client { message, .. }) => {
            assert!(
                message.contains(needle),
                "{at}: {message:?} lacks {needle:?}"
            )
        }
        other => panic!("{at}: expected a refusal naming {needle:?}, got {other:?}"),
    }
}

/// Waits until the server reports `n` blocked clients: a real condition, polled with a bounded
/// deadline (10 s), never a sleep.
pub async fn until_blocked(watcher: &Client, n: usize, at: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = watcher.call(cmd!("INFO", "clients")).await.unwrap();
        if info.contains(&format!("blocked_clients:{n}\r")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{at}: never saw {n} blocked clients: {info}"
        );
        tokio::task::yield_now().await;
    }
}

/// The variable that tells a child process of a test binary which ignored test it runs.
const CHILD: &str = "RINGDIS_TEST_CHILD";

/// Runs the ignored test `name` in a fresh process of this test binary, with `env` set and the
/// parent's transport overrides cleared; fails unless exactly that test ran and passed.
pub fn run_child(name: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, name)
    .env_remove("RINGDIS_ENGINE")
    .env_remove("RINGDIS_URING_FAIL_SETUP")
    .env_remove("RINGDIS_URING_NO_BUFRING");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child {name} with {env:?} failed:\n{text}"
    );
}

/// True in the child process meant to run `name` (child tests do nothing elsewhere).
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == name)
}

/// A client for `config` whose push handler (`on_push`) forwards every push to the receiver.
pub fn with_pushes(config: Config) -> (Client, std::sync::mpsc::Receiver<ringdis::Value>) {
    let c = Client::new(config).expect("client");
    let (tx, rx) = std::sync::mpsc::channel();
    c.on_push(move |p| {
        let _ = tx.send(p);
    });
    (c, rx)
}
