//! The server the benchmarks run against: a throwaway `redis-server` on a free loopback port
//! (the integration-test harness starts it and waits for "Ready to accept connections").

use ringdis_tests::{Server, ServerKind};

/// A running benchmark server, killed on drop.
pub struct BenchServer {
    server: Server,
}

impl BenchServer {
    /// Starts Redis (Debian's 7.0) with no persistence.
    pub fn start() -> BenchServer {
        BenchServer {
            server: Server::start(ServerKind::Redis),
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        let url = self.server.url();
        url.rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("server URL ends with its port")
    }

    /// What it is, for the report header.
    pub fn describe(&self) -> String {
        format!(
            "{} {} on {}",
            self.server.kind(),
            self.server.version(),
            self.server.url()
        )
    }
}
