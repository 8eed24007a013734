//! Certificates made fresh by `rcgen` for a TLS test, and a Redis serving TLS with them.

use ringdis::Tls;
use ringdis_tests::{Server, ServerKind, ServerTls};
use std::path::PathBuf;

/// Certificates for one test, in their own temporary directory (removed on drop): a CA, a
/// server certificate it signs for `localhost` and `127.0.0.1`, a client certificate it signs,
/// a cluster node's certificate (`node.pem`/`node.key`: `127.0.0.1`, for server and client
/// authentication, since a node is both on the cluster bus), and another CA that signs nothing
/// here.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        let dir = std::env::temp_dir().join(ringdis_tests::unique("ringdis-tls").replace(':', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.join(name), pem).unwrap();
        let ca = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.self_signed(&key).unwrap();
            (Issuer::new(params, key), cert)
        };
        let (issuer, ca_cert) = ca("ringdis test CA");
        write("ca.pem", ca_cert.pem());
        let (_, other) = ca("some other CA");
        write("other-ca.pem", other.pem());
        let leaf = |names: Vec<String>, usage: Vec<ExtendedKeyUsagePurpose>, stem: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, stem);
            params.extended_key_usages = usage;
            let cert = params.signed_by(&key, &issuer).unwrap();
            write(&format!("{stem}.pem"), cert.pem());
            write(&format!("{stem}.key"), key.serialize_pem());
        };
        leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            "server",
        );
        leaf(vec![], vec![ExtendedKeyUsagePurpose::ClientAuth], "client");
        leaf(
            vec!["127.0.0.1".into()],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            "node",
        );
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A Redis serving TLS with these certificates; `auth_clients` requires a client one.
    pub fn server(&self, auth_clients: bool) -> Server {
        Server::builder(ServerKind::Redis)
            .tls(ServerTls {
                cert: self.path("server.pem"),
                key: self.path("server.key"),
                ca: self.path("ca.pem"),
                auth_clients,
            })
            .start()
    }

    /// The TLS of a cluster's nodes: `node.pem`, the test CA, `auth_clients` as given.
    pub fn node_tls(&self, auth_clients: bool) -> ServerTls {
        ServerTls {
            cert: self.path("node.pem"),
            key: self.path("node.key"),
            ca: self.path("ca.pem"),
            auth_clients,
        }
    }

    /// TLS trusting the test CA.
    pub fn tls(&self) -> Tls {
        Tls::new().ca_file(self.path("ca.pem")).unwrap()
    }

    /// [`Pki::tls`] with the client certificate.
    pub fn mtls(&self) -> Tls {
        self.tls()
            .client_auth_files(self.path("client.pem"), self.path("client.key"))
            .unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
