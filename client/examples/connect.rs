//! Connect to Redis (or Valkey) and run a first command.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example connect
//! ```

use ringdis::cmd;
use ringdis::prelude::*;
use std::collections::HashMap;

#[tokio::main]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // Nothing connects yet: the first call does (and a lost connection is made again).
    let client = Client::open(&url)?;

    let pong = client.ping().await?;
    println!("connected to {url}: PING -> {pong:?}");

    // Anything the spec lacks (module commands...) goes through `call(cmd!(...))`, decoded into
    // any `FromRedis` type.
    let hello: HashMap<String, Value> = client.call(cmd!("HELLO")).await?;
    let field = |name: &str| match hello.get(name) {
        Some(Value::Int(n)) => n.to_string(),
        Some(v) => String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned(),
        None => "?".into(),
    };
    println!(
        "server {} {}, protocol {}, engine {:?}",
        field("server"),
        field("version"),
        field("proto"),
        client.engine()
    );
    Ok(())
}
