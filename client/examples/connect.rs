//! Connect to Redis (or Valkey) and run a first command.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example connect
//! ```

use ringdis::prelude::*;

/// The fields of `HELLO`'s reply this example prints (the others are ignored).
#[derive(FromRedis)]
struct Hello {
    server: String,
    version: String,
    proto: i64,
}

#[tokio::main]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // Nothing connects yet: the first call does (and a lost connection is made again).
    let client = Client::open(&url)?;

    let pong = client.ping().await?;
    println!("connected to {url}: PING -> {pong:?}");

    // `.decode::<T>()` reads a reply into any `FromRedis` type, here a derived struct.
    let hello: Hello = client.hello().decode().await?;
    println!(
        "server {} {}, protocol {}, engine {:?}",
        hello.server,
        hello.version,
        hello.proto,
        client.engine()
    );
    Ok(())
}
