//! Your own types: `#[derive(ToRedis)]` writes a struct as a hash's fields, `#[derive(FromRedis)]`
//! reads one back.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example derive
//! ```

use ringdis::prelude::*;
use ringdis::{cmd, ToRedis};

#[derive(Debug, FromRedis, ToRedis)]
#[redis(rename_all = "kebab-case")]
struct User {
    name: String,
    born: i64,
    last_seen: Option<i64>,
}

#[tokio::main]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = Client::open(&url)?;

    let ada = User {
        name: "ada".into(),
        born: 1815,
        last_seen: None,
    };
    // One HSET writes every field (`last_seen` is None, so it is left out) ...
    let added: i64 = client.call(cmd!("HSET", "example:user:1", &ada)).await?;
    println!("HSET example:user:1 -> {added} fields added");

    // ... and one HGETALL reads the struct back, whichever protocol the connection speaks.
    let user: User = client.hgetall("example:user:1").decode().await?;
    println!("HGETALL example:user:1 -> {user:?}");

    // A field that does not fit says where.
    client.hset("example:user:1", "born", "unknown").await?;
    match client.hgetall("example:user:1").decode::<User>().await {
        Ok(user) => println!("unexpectedly decoded {user:?}"),
        Err(e) => println!("after HSET born=unknown: {e}"),
    }

    client.del("example:user:1").await?;
    Ok(())
}
