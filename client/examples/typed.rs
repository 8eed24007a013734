//! Typed calls: every command of the spec is a method whose reply has the spec's type.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example typed
//! ```

use ringdis::prelude::*;
use std::collections::HashMap;

#[tokio::main]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = Client::open(&url)?;

    // Required arguments are positional, options are chained; awaiting gives the reply type.
    client.set("example:greeting", "hello").ex(60).await?; // ()
    let greeting = client.get("example:greeting").await?; // Option<Bytes>
    println!("GET example:greeting -> {greeting:?}");

    // `.decode::<T>()` asks for another type, here the value "41" as an integer.
    client.set("example:counter", 41).await?;
    let before: i64 = client.get("example:counter").decode().await?;
    let after = client.incr("example:counter").await?; // i64
    println!("counter {before} -> {after}");

    // Options that change the reply change its type: NX gives None when the key exists.
    let set_again = client.set("example:counter", 0).nx().await?; // Option<()>
    println!("SET NX on an existing key -> {set_again:?}");

    client
        .hset("example:user", "name", "ada")
        .and("born", 1815)
        .await?;
    let user: HashMap<String, String> = client.hgetall("example:user").decode().await?;
    println!(
        "HGETALL example:user -> name={} born={}",
        user["name"], user["born"]
    );

    // A multiple argument takes any collection.
    let removed = client
        .del(["example:greeting", "example:counter", "example:user"])
        .await?;
    println!("removed {removed} keys");
    Ok(())
}
