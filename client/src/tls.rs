//! [`Tls`]: how a connection does TLS (`tls` feature): which servers it trusts, the client
//! certificate it shows, the name it checks the server's certificate against.
//!
//! The settings become one rustls `ClientConfig`, built at the first connect and shared by
//! every connection of the [`Config`](crate::Config) (and its clones), so a reconnect resumes
//! the TLS session where the server allows it.

use crate::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// TLS settings for [`Config::tls`](crate::Config::tls) (`tls` feature). A `rediss://` or
/// `valkeys://` URL gives [`Tls::new`].
///
/// The defaults: the server's certificate must chain to one of the Mozilla root certificates
/// (`webpki-roots`) and be valid for the host name connected to (an IP address is checked
/// against the certificate's IP addresses; SNI is sent for a host name); no client certificate;
/// TLS 1.2 or 1.3 through rustls with its `ring` provider.
///
/// ```no_run
/// use ringdis::{Client, Config, Tls};
///
/// // A private CA, and the name the server's certificate has (it is reached by IP address).
/// let tls = Tls::new()
///     .ca_file("/etc/ssl/cache-ca.pem")?
///     .server_name("cache.internal")?;
/// let config = Config::from_url("rediss://10.0.0.7:6380")?.tls(tls);
///
/// // Mutual TLS, for a server with `tls-auth-clients yes`.
/// let mtls = Tls::new()
///     .ca_file("/etc/ssl/cache-ca.pem")?
///     .client_auth_files("/etc/ssl/app.crt", "/etc/ssl/app.key")?;
/// let config = Config::new().host("cache.internal").port(6380).tls(mtls);
/// # Ok::<(), ringdis::Error>(())
/// ```
#[derive(Clone)]
pub struct Tls {
    roots: Roots,
    client_auth: Option<ClientAuth>,
    server_name: Option<ServerName<'static>>,
    insecure: bool,
    /// The rustls config the settings make, built once (at the first connect) and shared by
    /// the clones made after that; a setter starts a new one.
    built: Arc<OnceLock<std::result::Result<Arc<ClientConfig>, Error>>>,
}

/// Which certificate authorities the server's certificate may chain to.
#[derive(Clone)]
enum Roots {
    Webpki,
    Custom(Arc<RootCertStore>),
}

/// A client certificate chain and its private key, for mutual TLS.
struct ClientAuth {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for ClientAuth {
    fn clone(&self) -> ClientAuth {
        ClientAuth {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roots = match &self.roots {
            Roots::Webpki => "webpki-roots".to_owned(),
            Roots::Custom(store) => format!("{} custom", store.len()),
        };
        f.debug_struct("Tls")
            .field("roots", &roots)
            .field("client_cert", &self.client_auth.is_some())
            .field("server_name", &self.server_name)
            .field("danger_accept_invalid_certs", &self.insecure)
            .finish()
    }
}

impl Default for Tls {
    fn default() -> Tls {
        Tls::new()
    }
}

/// The crypto provider: rustls's `ring`.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(what: &str, source: &str, e: impl std::fmt::Display) -> Error {
    Error::client(format!("TLS: cannot read {what} from {source}: {e}"))
}

/// Every certificate in a PEM bundle; at least one.
fn certs_from_pem(pem: &[u8], what: &str, source: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, source, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, source, "no CERTIFICATE section in it"));
    }
    Ok(certs)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::client(format!(
            "TLS: cannot read {what} from {}: {e}",
            path.display()
        ))
    })
}

impl Tls {
    /// TLS with the defaults: the Mozilla root certificates, the host name connected to, no
    /// client certificate.
    pub fn new() -> Tls {
        Tls {
            roots: Roots::Webpki,
            client_auth: None,
            server_name: None,
            insecure: false,
            built: Arc::default(),
        }
    }

    fn changed(mut self) -> Tls {
        self.built = Arc::default();
        self
    }

    /// Trusts only the certificate authorities in this PEM bundle (instead of the Mozilla
    /// roots): a private CA, as managed services and self-hosted servers use.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the bundle holds no certificate or one rustls cannot take.
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Tls> {
        self.roots = Roots::Custom(Arc::new(roots(pem, "the CA bundle")?));
        Ok(self.changed())
    }

    /// [`Tls::ca_pem`] with the bundle read from a file.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the file cannot be read, or as [`Tls::ca_pem`].
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Result<Tls> {
        let path = path.as_ref();
        let pem = read(path, "the CA bundle")?;
        let source = format!("the CA bundle {}", path.display());
        self.roots = Roots::Custom(Arc::new(roots(&pem, &source)?));
        Ok(self.changed())
    }

    /// Mutual TLS: the client shows this certificate chain (PEM, the leaf first) and proves it
    /// holds `key` (PEM: PKCS#8, PKCS#1 or SEC1), as servers with `tls-auth-clients yes` ask.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when either holds nothing usable, or the key's type is not supported.
    pub fn client_auth_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Tls> {
        self.client_auth = Some(client_auth(
            cert_chain,
            key,
            "the client certificate",
            "the client key",
        )?);
        Ok(self.changed())
    }

    /// [`Tls::client_auth_pem`] with the chain and key read from files.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when a file cannot be read, or as [`Tls::client_auth_pem`].
    pub fn client_auth_files(
        mut self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Tls> {
        let (cert_path, key_path) = (cert_chain.as_ref(), key.as_ref());
        let cert = read(cert_path, "the client certificate")?;
        let key = read(key_path, "the client key")?;
        self.client_auth = Some(client_auth(
            &cert,
            &key,
            &format!("the client certificate {}", cert_path.display()),
            &format!("the client key {}", key_path.display()),
        )?);
        Ok(self.changed())
    }

    /// The name sent as SNI and checked against the server's certificate, instead of the host
    /// connected to: for a server reached by IP address or through a tunnel whose certificate
    /// names it otherwise. An IP address here is checked against the certificate's IP
    /// addresses.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when `name` is neither a DNS name nor an IP address.
    pub fn server_name(mut self, name: &str) -> Result<Tls> {
        let parsed = ServerName::try_from(name.to_owned()).map_err(|_| {
            Error::client(format!(
                "TLS: {name:?} is not a valid server name (a DNS name or an IP address)"
            ))
        })?;
        self.server_name = Some(parsed);
        Ok(self.changed())
    }

    /// Accepts any server certificate: expired, self-signed, for another name, from any
    /// issuer. The connection is encrypted but the server is not authenticated, so anyone on
    /// the path can impersonate it. For development only.
    pub fn danger_accept_invalid_certs(mut self) -> Tls {
        self.insecure = true;
        self.changed()
    }

    /// The server name for a connection to `host`: the override, or `host` itself.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        ServerName::try_from(host.to_owned()).map_err(|_| {
            Error::client(format!(
                "TLS: the host {host:?} is not a valid server name; set one with \
                 Tls::server_name"
            ))
        })
    }

    /// The rustls config, built at the first call.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>> {
        self.built.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<Arc<ClientConfig>> {
        let refused = |e: rustls::Error| Error::client(format!("TLS: {e}"));
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(refused)?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
        } else {
            let store = match &self.roots {
                Roots::Webpki => Arc::new(RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                }),
                Roots::Custom(store) => store.clone(),
            };
            builder.with_root_certificates(store)
        };
        let config = match &self.client_auth {
            Some(auth) => builder
                .with_client_auth_cert(auth.chain.clone(), auth.key.clone_key())
                .map_err(refused)?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// A trust store of every certificate in `pem`.
fn roots(pem: &[u8], source: &str) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in certs_from_pem(pem, "CA certificates", source)? {
        store
            .add(cert)
            .map_err(|e| pem_error("a CA certificate", source, e))?;
    }
    Ok(store)
}

fn client_auth(cert: &[u8], key: &[u8], cert_source: &str, key_source: &str) -> Result<ClientAuth> {
    let chain = certs_from_pem(cert, "a certificate", cert_source)?;
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| pem_error("a private key", key_source, e))?;
    // Refused now rather than at the first connect.
    provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| pem_error("a usable private key", key_source, e))?;
    Ok(ClientAuth { chain, key })
}

/// [`Tls::danger_accept_invalid_certs`]: any certificate passes; the handshake's signatures are
/// still checked (the server must hold the key of the certificate it shows).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
