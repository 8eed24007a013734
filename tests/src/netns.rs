//! A network namespace joined to this one by a veth pair, for tests that cut the network
//! between a client and a server: [`NetNs::partition`] drops every packet inside the namespace
//! (nftables), [`NetNs::heal`] lets them through again. Needs root (CI runs as root) and `ip`
//! and `nft` (`bash scripts/setup` installs nftables). Everything it makes is removed on drop.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The nftables table a partition lives in (inside the namespace only).
const TABLE: &str = "ringdis_partition";

/// A network namespace with a server-side address reachable from this namespace.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_addr: String,
    ns_addr: String,
}

/// Runs a command; panics with its output when it fails.
fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    /// Makes a namespace and a veth pair with a /30 of their own (in 10.200.0.0/16, picked from
    /// the process id and a counter), both ends up.
    ///
    /// # Panics
    /// Loudly, with the failing command's output, when the machine cannot make them (not root,
    /// no `ip`): a test that needs a partition must not pass without one.
    pub fn create() -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let idx = (std::process::id().wrapping_mul(16).wrapping_add(n)) % 16384;
        let (third, base) = (idx / 64, (idx % 64) * 4);
        let ns = NetNs {
            name: format!("ringdis-{}-{n}", std::process::id()),
            host_if: format!("rd{idx}h"),
            host_addr: format!("10.200.{third}.{}", base + 1),
            ns_addr: format!("10.200.{third}.{}", base + 2),
        };
        let peer_if = format!("rd{idx}n");
        run(&["ip", "netns", "add", &ns.name]);
        // From here on, Drop removes whatever was made.
        run(&[
            "ip",
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer_if,
        ]);
        run(&["ip", "link", "set", &peer_if, "netns", &ns.name]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", ns.host_addr),
            "dev",
            &ns.host_if,
        ]);
        run(&["ip", "link", "set", &ns.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", ns.name.as_str()];
            all.extend_from_slice(args);
            run(&all);
        };
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", ns.ns_addr),
            "dev",
            &peer_if,
        ]);
        inside(&["ip", "link", "set", &peer_if, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address inside the namespace (a server there binds to it).
    pub fn addr(&self) -> &str {
        &self.ns_addr
    }

    /// The command prefix that runs a program inside the namespace, for
    /// [`ServerBuilder::command_prefix`](crate::ServerBuilder::command_prefix).
    pub fn exec_prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Cuts the network: every packet into or out of the namespace is dropped silently, as in
    /// a partition (no reset, no ICMP), until [`NetNs::heal`].
    pub fn partition(&self) {
        let script = format!(
            "table inet {TABLE} {{\n\
             chain input {{ type filter hook input priority -300; policy drop; }}\n\
             chain output {{ type filter hook output priority -300; policy drop; }}\n\
             }}\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nft in {}: {e}", self.name));
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(script.as_bytes())
            .expect("write the nft script");
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft partition failed ({}): {} (is nftables installed? bash scripts/setup)",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Lets packets through again.
    pub fn heal(&self) {
        run(&[
            "ip", "netns", "exec", &self.name, "nft", "delete", "table", "inet", TABLE,
        ]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end of the pair deletes both; the namespace goes with its rules. Errors
        // are ignored here (a half-made namespace), never on the way in.
        let quiet = |args: &[&str]| {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["ip", "link", "del", &self.host_if]);
        quiet(&["ip", "netns", "del", &self.name]);
    }
}
