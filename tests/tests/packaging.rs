//! What a user gets from crates.io: the `ringdis` package holds its own files only (the
//! generated code, not the generator; no build script reading `../`), and the examples in
//! `client/examples/` build and do what they print against real servers.
//!
//! (`scripts/test` also runs `cargo publish --workspace --dry-run`, which builds the packaged
//! `ringdis` on its own, and `scripts/msrv`.)

mod support;

use ringdis::{cmd, Client, ClusterClient};
use ringdis_tests::{Cluster, Server, ServerKind};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::pki::Pki;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace());
    command
}

/// Runs `command` to its end, or kills it and fails once `limit` has passed.
fn run_within(mut command: Command, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    // Drained on threads so a full pipe never stalls the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            pipe.read_to_end(&mut out).map(|_| out)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let collect = |h: std::thread::JoinHandle<std::io::Result<Vec<u8>>>| {
        h.join().expect("reader thread").expect("read the pipe")
    };
    Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

/// The example binaries, built now by cargo (so never stale) next to this test's own profile.
fn build_examples() -> PathBuf {
    build_examples_with(&[])
}

/// [`build_examples`] with more arguments for cargo (features).
fn build_examples_with(more: &[&str]) -> PathBuf {
    let mut build = cargo();
    build.args(["build", "--quiet", "-p", "ringdis", "--examples"]);
    build.args(more);
    let out = run_within(build, Duration::from_secs(900));
    assert!(
        out.status.success(),
        "cargo build --examples failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // This test runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>");
    profile.join("examples")
}

/// Each example and lines its output must hold. (The `tls` example needs the `tls` feature and a
/// TLS server: [`the_tls_example_runs_against_a_server_that_wants_a_client_certificate`]; the
/// `cluster` example a cluster: [`the_cluster_example_runs_against_a_cluster`].)
const EXAMPLES: &[(&str, &[&str])] = &[
    ("connect", &["PING -> \"PONG\"", ", protocol 3, engine "]),
    (
        "typed",
        &[
            "GET example:greeting -> Some(b\"hello\")",
            "counter 41 -> 42",
            "SET NX on an existing key -> None",
            "HGETALL example:user -> name=ada born=1815",
            "removed 3 keys",
        ],
    ),
    (
        "derive",
        &[
            "HSET example:user:1 -> 2 fields added",
            "HGETALL example:user:1 -> User { name: \"ada\", born: 1815, last_seen: None }",
            "after HSET born=unknown: decode error: User.born: expected integer (i64), got bulk \
             string \"unknown\"",
        ],
    ),
    (
        "pipeline",
        &[
            "pipeline: SET, INCR -> 2, GET -> \"2\"",
            "  reply 0: Int(3)",
            "  reply 1: error: server error WRONGTYPE",
            "  reply 2: Int(4)",
            "transaction: a=14 b=20",
        ],
    ),
    (
        "pubsub",
        &[
            "received \"hello\" on \"example:news\" (pattern None)",
            "received \"90% full\" on \"example:alerts.disk\" (pattern Some(",
        ],
    ),
    (
        "pool",
        &["16 tasks over at most 4 connections: example:visits = 16"],
    ),
];

#[test]
fn every_example_runs_against_both_servers_and_leaves_no_keys() {
    let dir = build_examples();
    let listed: Vec<String> = std::fs::read_dir(workspace().join("client/examples"))
        .expect("client/examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            p.file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for name in &listed {
        assert!(
            name == "tls" || name == "cluster" || EXAMPLES.iter().any(|(e, _)| e == name),
            "client/examples/{name}.rs is not checked here: add it to EXAMPLES"
        );
    }
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for (name, expected) in EXAMPLES {
            let mut run = Command::new(dir.join(name));
            run.env("REDIS_URL", server.url());
            let out = run_within(run, Duration::from_secs(60));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{name} on {kind}: {}\n{stdout}{stderr}",
                out.status
            );
            for line in *expected {
                assert!(
                    stdout.contains(line),
                    "{name} on {kind}: no {line:?} in\n{stdout}"
                );
            }
            if *name == "connect" {
                let version = format!("server {kind} {}", server.version());
                assert!(stdout.contains(&version), "{name} on {kind}:\n{stdout}");
            }
            // Run against a user's server, an example leaves nothing behind.
            let client = Client::open(&server.url()).expect("the harness URL parses");
            let keys: i64 =
                futures::executor::block_on(client.call(cmd!("DBSIZE"))).expect("DBSIZE answers");
            assert_eq!(keys, 0, "{name} on {kind} left keys behind");
        }
    }
}

#[test]
fn the_ringdis_package_holds_its_own_files_and_no_generator() {
    let mut list = cargo();
    list.args(["package", "--list", "--allow-dirty", "-p", "ringdis"]);
    let out = run_within(list, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "cargo package --list failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for needed in [
        "Cargo.toml",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "src/lib.rs",
        "src/generated/commands.rs",
        "src/generated/spec_flags.rs",
        "examples/connect.rs",
    ] {
        assert!(
            files.iter().any(|f| f == needed),
            "{needed} not packaged: {files:?}"
        );
    }
    for file in &files {
        assert!(!file.starts_with(".."), "{file} is outside the crate");
        assert_ne!(file, "build.rs", "a build script is packaged");
        // Files cargo writes itself are not on disk under these names.
        if file.starts_with('.') || file == "Cargo.toml.orig" || file == "Cargo.lock" {
            continue;
        }
        let size = std::fs::metadata(workspace().join("client").join(file))
            .unwrap_or_else(|e| panic!("client/{file}: {e}"))
            .len();
        assert!(
            size < 1 << 20,
            "client/{file} is {size} bytes: packaged by mistake?"
        );
    }
    let manifest = std::fs::read_to_string(workspace().join("client/Cargo.toml")).expect("read");
    assert!(
        !manifest.contains("ringdis-codegen") && !manifest.contains("build-dependencies"),
        "ringdis depends on the generator again: users would compile it"
    );
}

/// The `tls` example, as its doc says to run it: a `rediss://` URL, the CA and a client
/// certificate from the environment, against a Redis that requires the certificate.
#[test]
fn the_tls_example_runs_against_a_server_that_wants_a_client_certificate() {
    let dir = build_examples_with(&["--features", "tls"]);
    let pki = Pki::new();
    let server = pki.server(true);
    let mut run = Command::new(dir.join("tls"));
    run.env("REDIS_URL", server.url())
        .env("REDIS_CA", pki.path("ca.pem"))
        .env("REDIS_CLIENT_CERT", pki.path("client.pem"))
        .env("REDIS_CLIENT_KEY", pki.path("client.key"));
    let out = run_within(run, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tls: {}\n{stdout}{stderr}",
        out.status
    );
    for line in ["GET example:tls -> \"hello over TLS\"", "removed 1 key"] {
        assert!(stdout.contains(line), "tls: no {line:?} in\n{stdout}");
    }
    // Without the client certificate the server refuses, and the example says so.
    let mut run = Command::new(dir.join("tls"));
    run.env("REDIS_URL", server.url())
        .env("REDIS_CA", pki.path("ca.pem"));
    let out = run_within(run, Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "connected without a client certificate"
    );
}

/// The `cluster` example, as its doc says to run it (`REDIS_CLUSTER_URLS`, comma-separated),
/// against a throwaway cluster of each server kind: it does what it prints and leaves no key.
#[test]
fn the_cluster_example_runs_against_a_cluster() {
    let dir = build_examples();
    for kind in ServerKind::ALL {
        let cluster = Cluster::start(kind);
        let mut run = Command::new(dir.join("cluster"));
        run.env("REDIS_CLUSTER_URLS", cluster.seed_urls().join(","));
        let out = run_within(run, Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "cluster on {kind}: {}\n{stdout}{stderr}",
            out.status
        );
        for line in [
            "GET example:greeting -> Some(\"hello\")",
            "HGETALL example:user:1 -> User { name: \"ada\", born: 1815 }",
            "MGET over 3 slots -> [Some(1), Some(2), Some(3)]",
            "pipeline INCR a, b, c -> 2, 3, 4",
            "-> items=1 total=42",
            "SUNION across slots: client error: CROSSSLOT",
            "SCAN example:* -> 7 keys",
            "removed 7 keys",
        ] {
            assert!(
                stdout.contains(line),
                "cluster on {kind}: no {line:?} in\n{stdout}"
            );
        }
        let client = ClusterClient::open(cluster.seed_urls()).expect("the harness URLs parse");
        let keys: i64 =
            futures::executor::block_on(client.call(cmd!("DBSIZE"))).expect("DBSIZE answers");
        assert_eq!(keys, 0, "cluster on {kind} left keys behind");
    }
}
