//! What every integration test file shares: the matrix of servers × transports a behaviour must
//! hold for, and clients configured for one cell of it.
#![allow(dead_code)] // each test file uses a different part

use ringdis::{Client, Config, Error, Protocol, Transport};
use ringdis_tests::{Server, ServerKind};

/// The transports every behaviour is tested on.
pub fn transports() -> Vec<Transport> {
    vec![Transport::Epoll, Transport::IoUring]
}

/// Both protocols.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Resp2, Protocol::Resp3];

/// Every (server kind, transport) pair.
pub fn matrix() -> Vec<(ServerKind, Transport)> {
    ServerKind::ALL
        .into_iter()
        .flat_map(|k| transports().into_iter().map(move |t| (k, t)))
        .collect()
}

/// A configuration for `server` on `transport`.
pub fn config(server: &Server, transport: Transport) -> Config {
    Config::from_url(&server.url())
        .expect("harness URLs parse")
        .transport(transport)
}

/// A client for `server` on `transport`, speaking `protocol`.
pub fn client(server: &Server, transport: Transport, protocol: Protocol) -> Client {
    let c = Client::new(config(server, transport).protocol(protocol)).expect("client");
    assert_eq!(c.transport(), transport);
    c
}

/// A label for assertion messages.
pub fn label(kind: ServerKind, transport: Transport, protocol: Protocol) -> String {
    format!("{kind}/{transport:?}/{protocol:?}")
}

/// `r` is a refusal before sending ([`Error::Client`]) whose message contains `needle`.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(r: ringdis::Result<T>, needle: &str, at: &str) {
    match r {
        Err(Error::Client { message, .. }) => {
            assert!(
                message.contains(needle),
                "{at}: {message:?} lacks {needle:?}"
            )
        }
        other => panic!("{at}: expected a refusal naming {needle:?}, got {other:?}"),
    }
}
