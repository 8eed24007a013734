//! The server the benchmarks run against: a throwaway `redis-server` on a free loopback port
//! (the integration-test harness starts it and waits for "Ready to accept connections").

use ringdis_tests::{Server, ServerKind, ServerTls};
use std::path::PathBuf;

/// A running benchmark server, killed on drop.
pub struct BenchServer {
    server: Server,
    /// With TLS: the directory of its certificates (removed on drop) and the CA's PEM file.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some((dir, _)) = &self.tls {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl BenchServer {
    /// Starts Redis (Debian's 7.0) with no persistence.
    pub fn start() -> BenchServer {
        BenchServer {
            server: Server::start(ServerKind::Redis),
            tls: None,
        }
    }

    /// Starts Redis serving TLS only (`--tls-port`), its certificate (for `127.0.0.1`) signed
    /// by a CA made for this run; [`BenchServer::ca`] is the CA's PEM file.
    pub fn start_tls() -> BenchServer {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = std::env::temp_dir().join(format!("ringdis-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let write = |name: &str, pem: String| {
            std::fs::write(dir.join(name), pem).expect("write a certificate");
            dir.join(name)
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "ringdis bench CA");
        let ca_path = write("ca.pem", ca.self_signed(&ca_key).expect("CA").pem());
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
        let tls = ServerTls {
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
            ca: ca_path.clone(),
            auth_clients: false,
        };
        BenchServer {
            server: Server::builder(ServerKind::Redis).tls(tls).start(),
            tls: Some((dir, ca_path)),
        }
    }

    /// The CA that signed a TLS server's certificate.
    pub fn ca(&self) -> Option<&PathBuf> {
        self.tls.as_ref().map(|(_, ca)| ca)
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` with TLS).
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
