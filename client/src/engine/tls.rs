//! [`TlsSession`]: one connection's TLS (rustls's sans-IO `ClientConnection`), a byte
//! transform between the socket and the [`Core`], owned by the link's session. Engines move
//! ciphertext and never know; the core reads and writes plaintext and never knows either.
//!
//! The core hears the socket is open ([`Core::handle_open`], which sends its `HELLO`/`AUTH`)
//! only once the TLS handshake is done, so the connect timeout covers the TLS handshake. A TLS
//! failure before the first byte of plaintext arrived (a certificate that does not verify, an
//! alert from a server that refuses the client, a peer that does not speak TLS) is the server
//! refusing the connection: calls waiting for it fail at once with an
//! [`Error::Connection`] naming the cause, as when it refuses `AUTH`. Later, a TLS error breaks
//! the stream like a protocol error does.

use crate::config::Addr;
use crate::conn::Core;
use crate::tls::Tls;
use crate::{Error, Result};
use bytes::{BufMut, Bytes, BytesMut};
use rustls::{AlertDescription, CertificateError, ClientConnection};
use std::io::{self, BufRead, Write};
use std::time::Instant;

/// One connection's TLS session.
pub(crate) struct TlsSession {
    conn: ClientConnection,
    /// The handshake is done and the core was told the connection is open.
    open: bool,
    /// Plaintext arrived: from now on a TLS failure is a broken stream, not a refusal.
    spoken: bool,
    /// The server's address, for messages.
    addr: String,
    /// Ciphertext to hand to the engine.
    out: BytesMut,
    /// Plaintext the core handed over that is not encrypted yet: a big request goes into
    /// rustls [`CHUNK`] bytes at a time, as the engine takes the ciphertext, rather than copied
    /// whole into rustls's buffers (twice its size held at once).
    pending: Bytes,
    /// Why rustls last refused plaintext, for the link to report once its lock is released.
    refused: Option<io::Error>,
}

/// At most this much plaintext is encrypted per [`TlsSession::poll_transmit`].
const CHUNK: usize = 256 * 1024;

impl TlsSession {
    /// A session for a connection to `addr`, its `ClientHello` ready to go.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the settings cannot make a session (no server name for a unix
    /// socket, a host name that is not a valid server name).
    pub fn new(tls: &Tls, addr: &Addr) -> Result<TlsSession> {
        let name = match addr {
            Addr::Tcp { host, .. } => tls.name_for(host)?,
            Addr::Unix(_) => tls.name_for("").map_err(|_| {
                Error::client(
                    "TLS over a unix socket needs the name to check the server's certificate \
                     against: Tls::server_name",
                )
            })?,
        };
        let mut conn = ClientConnection::new(tls.client_config()?, name)
            .map_err(|e| Error::client(format!("TLS: {e}")))?;
        // The core bounds what it hands over; rustls takes all of it, to be written at once.
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn,
            open: false,
            spoken: false,
            addr: addr.to_string(),
            out: BytesMut::new(),
            pending: Bytes::new(),
            refused: None,
        })
    }

    /// Ciphertext read from the socket: decrypted, its plaintext handed to `core`; the core is
    /// told the connection is open once the handshake completes.
    ///
    /// # Errors
    ///
    /// The [`Error::Connection`] that broke the stream (a refusal has already been reported to
    /// the core), or the core's own error.
    pub fn handle_input(&mut self, core: &mut Core, mut bytes: &[u8], now: Instant) -> Result<()> {
        while !bytes.is_empty() {
            match self.conn.read_tls(&mut bytes) {
                Ok(0) => return Err(closed(&self.addr)),
                Ok(_) => {}
                Err(e) => {
                    let message = format!("TLS from {}: {e}", self.addr);
                    return Err(Error::connection_io(message, e));
                }
            }
            if let Err(e) = self.conn.process_new_packets() {
                let err = self.failed(&e);
                if !self.spoken {
                    core.handle_refused(err.clone());
                }
                return Err(err);
            }
            if !self.open && !self.conn.is_handshaking() {
                self.open = true;
                core.handle_open(now);
            }
            let mut reader = self.conn.reader();
            loop {
                let n = match reader.fill_buf() {
                    Ok([]) => return Err(closed(&self.addr)),
                    Ok(plain) => {
                        self.spoken = true;
                        core.handle_input(plain, now)?;
                        plain.len()
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        let message = format!("TLS from {}: {e}", self.addr);
                        return Err(Error::connection_io(message, e));
                    }
                };
                reader.consume(n);
            }
        }
        Ok(())
    }

    /// The ciphertext to write next: the handshake's, then what the core has to send,
    /// encrypted, about [`CHUNK`] bytes of it per call (call again until `None`).
    pub fn poll_transmit(&mut self, core: &mut Core, now: Instant) -> Option<Bytes> {
        self.drain_tls();
        if self.open {
            while self.out.len() < CHUNK {
                if self.pending.is_empty() {
                    match core.poll_transmit_at(now) {
                        Some(plain) => self.pending = plain,
                        None => break,
                    }
                }
                let plain = self.pending.split_to(self.pending.len().min(CHUNK));
                // Without a buffer limit rustls's writer takes everything it is given.
                if let Err(e) = self.conn.writer().write_all(&plain) {
                    self.refused = Some(e);
                }
                self.drain_tls();
            }
        }
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Why rustls refused plaintext since this was last asked, if it did.
    pub fn take_refused(&mut self) -> Option<io::Error> {
        self.refused.take()
    }

    /// Moves the ciphertext rustls has ready into `out`.
    fn drain_tls(&mut self) {
        while self.conn.wants_write() {
            // Writing into memory cannot fail.
            if self.conn.write_tls(&mut (&mut self.out).writer()).is_err() {
                break;
            }
        }
    }

    /// The error for a TLS failure, naming its cause.
    fn failed(&self, e: &rustls::Error) -> Error {
        let client_cert = "; if it requires a client certificate (tls-auth-clients yes), give \
                           one with Tls::client_auth_files";
        let cause = match e {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                "the server's certificate is not signed by a trusted CA (unknown issuer; add \
                 its CA with Tls::ca_file)"
                    .to_owned()
            }
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate does not match the name connected to (name \
                 mismatch; connect by a name the certificate has, or set Tls::server_name): {e}"
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => format!("the server's certificate has expired: {e}"),
            rustls::Error::InvalidCertificate(_) => {
                format!("the server's certificate was refused: {e}")
            }
            rustls::Error::AlertReceived(
                alert @ (AlertDescription::CertificateRequired
                | AlertDescription::HandshakeFailure
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA),
            ) => format!("the server refused the client (TLS alert {alert:?}){client_cert}"),
            rustls::Error::AlertReceived(alert) => {
                format!("the server ended the handshake with TLS alert {alert:?}")
            }
            rustls::Error::InvalidMessage(_) if !self.spoken => {
                format!("the server does not speak TLS on this port? ({e})")
            }
            _ => e.to_string(),
        };
        let stage = if self.spoken {
            "TLS failed on the connection to"
        } else {
            "TLS handshake failed with"
        };
        Error::connection(format!("{stage} {}: {cause}", self.addr))
    }
}

/// The server at `addr` ended the TLS session (`close_notify`).
fn closed(addr: &str) -> Error {
    Error::connection(format!(
        "connection closed: the server at {addr} ended the TLS session"
    ))
}
