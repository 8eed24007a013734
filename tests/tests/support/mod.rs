//! What every integration test file shares: the matrix of servers × engines a behaviour must
//! hold for, clients configured for one cell of it, and the runtimes a test runs its futures on.
#![allow(dead_code)] // each test file uses a different part

pub mod capture;
pub mod pki;
pub mod process;

use ringdis::{cmd, Client, ClusterClient, Config, Engine, Error, Protocol};
use ringdis_tests::{Cluster, Server, ServerKind};
use std::future::Future;
use std::time::{Duration, Instant};

/// The engines every behaviour is tested on: the task engine (a task on the test's tokio
/// runtime), the io_uring ring engine and its epoll twin.
///
/// A client on [`Engine::Task`] must be made inside a tokio runtime and lives on it: a test that
/// makes clients on a plain thread (or drives them with `block_on`) uses [`ring_engines`].
pub fn engines() -> Vec<Engine> {
    vec![Engine::Task, Engine::IoUring, Engine::Epoll]
}

/// The engines that need no runtime: for clients made or driven outside tokio.
pub fn ring_engines() -> Vec<Engine> {
    vec![Engine::IoUring, Engine::Epoll]
}

/// Both protocols.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Resp2, Protocol::Resp3];

/// Every (server kind, engine) pair.
pub fn matrix() -> Vec<(ServerKind, Engine)> {
    ServerKind::ALL
        .into_iter()
        .flat_map(|k| engines().into_iter().map(move |e| (k, e)))
        .collect()
}

/// Every (engine, protocol) cell.
pub fn cells() -> Vec<(Engine, Protocol)> {
    engines()
        .into_iter()
        .flat_map(|e| PROTOCOLS.into_iter().map(move |p| (e, p)))
        .collect()
}

/// A client of the throwaway `cluster` on `engine` speaking `protocol`, every node a seed, with
/// `timeout` as its command timeout (and a 1 s connect timeout).
pub fn cluster_client(
    cluster: &ringdis_tests::Cluster,
    engine: Engine,
    protocol: Protocol,
    timeout: Duration,
) -> ClusterClient {
    let seeds = cluster.seed_urls();
    let config = Config::from_url(&seeds[0])
        .expect("seed URL")
        .engine(engine)
        .protocol(protocol)
        .command_timeout(Some(timeout))
        .connect_timeout(Duration::from_secs(1));
    ClusterClient::builder(config)
        .seeds(&seeds)
        .build()
        .expect("cluster client")
}

/// A configuration for `server` on `engine`.
pub fn config(server: &Server, engine: Engine) -> Config {
    Config::from_url(&server.url())
        .expect("harness URLs parse")
        .engine(engine)
}

/// A client for `server` on `engine`, speaking `protocol`.
pub fn client(server: &Server, engine: Engine, protocol: Protocol) -> Client {
    let c = Client::new(config(server, engine).protocol(protocol)).expect("client");
    assert_eq!(c.engine(), engine);
    c
}

/// A label for assertion messages.
pub fn label(kind: ServerKind, engine: Engine, protocol: Protocol) -> String {
    format!("{kind}/{engine:?}/{protocol:?}")
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
        yield_now().await;
    }
}

/// The variable that tells a child process of a test binary which ignored test it runs.
const CHILD: &str = "RINGDIS_TEST_CHILD";

/// Runs the ignored test `name` in a fresh process of this test binary, with `env` set and the
/// parent's engine overrides cleared; fails unless exactly that test ran and passed.
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
    child_passed(&out, &format!("child {name} with {env:?}"));
}

/// Fails unless the child test process that gave `out` ran exactly one test and passed.
#[track_caller]
pub fn child_passed(out: &std::process::Output, what: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{what} failed:\n{text}"
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

/// How a test drives its futures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// tokio's current-thread runtime: the task engine's connections run on the test's thread.
    CurrentThread,
    /// tokio's multi-thread runtime (2 workers).
    MultiThread,
    /// `futures::executor::block_on` on a plain thread: no runtime at all.
    BlockOn,
}

/// Every way of driving a client, with the engines it takes: the task engine on tokio's
/// current-thread and multi-thread runtimes, each ring engine under `block_on`. (The ring
/// engines under tokio are what the rest of the suite runs.)
pub const RUNTIMES: [(Runtime, Engine); 4] = [
    (Runtime::CurrentThread, Engine::Task),
    (Runtime::MultiThread, Engine::Task),
    (Runtime::BlockOn, Engine::IoUring),
    (Runtime::BlockOn, Engine::Epoll),
];

/// Runs `f` to completion on `runtime`, from a plain thread (a `#[test]`, not a
/// `#[tokio::test]`).
pub fn run_on<T>(runtime: Runtime, f: impl Future<Output = T>) -> T {
    match runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
            .block_on(f),
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a multi-thread runtime")
            .block_on(f),
        Runtime::BlockOn => futures::executor::block_on(f),
    }
}

/// One cell [`each_runtime`] runs a test in.
#[derive(Clone, Debug)]
pub struct Cell {
    /// For the cell's server, engine and protocol.
    pub config: Config,
    pub engine: Engine,
    pub protocol: Protocol,
    pub runtime: Runtime,
    /// Names the cell, for assertion messages.
    pub at: String,
}

/// Runs `test(cell)` once per cell of servers × protocols × [`RUNTIMES`], each on its runtime
/// with its engine. Call it from a plain `#[test]`.
///
/// The body makes its own clients (a task-engine client belongs to the runtime it was made on)
/// and uses nothing of one runtime: no `tokio::spawn`, no `tokio::time`, no blocking wait (a
/// blocking `recv` would stall the current-thread runtime the connection runs on); callbacks
/// answer through `futures::channel`, concurrency is `futures::join!`.
pub fn each_runtime<F, Fut>(servers: &[Server], mut test: F)
where
    F: FnMut(Cell) -> Fut,
    Fut: Future<Output = ()>,
{
    for (runtime, engine) in RUNTIMES {
        for server in servers {
            for protocol in PROTOCOLS {
                let cell = Cell {
                    config: config(server, engine).protocol(protocol),
                    engine,
                    protocol,
                    runtime,
                    at: format!("{}/{engine:?}/{protocol:?} on {runtime:?}", server.kind()),
                };
                run_on(runtime, test(cell));
            }
        }
    }
}

/// One server of each kind.
pub fn servers() -> Vec<Server> {
    ServerKind::ALL.into_iter().map(Server::start).collect()
}

/// Awaits `f`, which must end within `limit` (it must never hang); panics naming `what`
/// otherwise. Needs a tokio runtime (its timer).
pub async fn bounded<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still pending after {limit:?}"))
}

/// Yields to whatever runs the current future (tokio, or `block_on`), so a bounded polling loop
/// lets the connections it waits for make progress.
pub async fn yield_now() {
    tokio::task::yield_now().await;
    std::thread::yield_now();
}

/// A two-worker multi-thread runtime for one cell of a test: a task-engine client lives on the
/// runtime it was made on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A cluster for tests that fail over only when told: a longer `cluster-node-timeout` than the
/// harness's default, so a loaded machine (a busy CI runner) never fails a primary over by
/// mistake.
pub fn steady(kind: ServerKind) -> Cluster {
    Cluster::builder(kind)
        .node_timeout(Duration::from_secs(5))
        .start()
}
