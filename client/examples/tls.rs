//! Connects over TLS and makes a few calls.
//!
//! ```sh
//! REDIS_URL=rediss://127.0.0.1:6380 REDIS_CA=/path/to/ca.pem \
//!     cargo run -p ringdis --features tls --example tls
//! ```
//!
//! - `REDIS_URL`: a `rediss://` (or `valkeys://`) URL (default `rediss://127.0.0.1:6380`).
//! - `REDIS_CA`: a PEM bundle of the CAs to trust (default: the Mozilla roots, as for a managed
//!   service with a public certificate).
//! - `REDIS_CLIENT_CERT` and `REDIS_CLIENT_KEY`: a client certificate and its key, for a
//!   server that requires one (`tls-auth-clients yes`).

use ringdis::{cmd, Client, Config, Tls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "rediss://127.0.0.1:6380".into());
    let mut tls = Tls::new();
    if let Ok(ca) = std::env::var("REDIS_CA") {
        tls = tls.ca_file(ca)?;
    }
    if let (Ok(cert), Ok(key)) = (
        std::env::var("REDIS_CLIENT_CERT"),
        std::env::var("REDIS_CLIENT_KEY"),
    ) {
        tls = tls.client_auth_files(cert, key)?;
    }
    let client = Client::new(Config::from_url(&url)?.tls(tls))?;
    client
        .call::<()>(cmd!("SET", "example:tls", "hello over TLS"))
        .await?;
    let back: String = client.call(cmd!("GET", "example:tls")).await?;
    println!("GET example:tls -> {back:?}");
    let removed: i64 = client.call(cmd!("DEL", "example:tls")).await?;
    println!("removed {removed} key");
    Ok(())
}
