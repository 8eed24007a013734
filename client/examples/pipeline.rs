//! Pipelines (many commands in one write, replies in order) and transactions (MULTI ... EXEC).
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example pipeline
//! ```

use ringdis::prelude::*;
use ringdis::{cmd, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = Client::open(&url)?;

    // The typed methods add their command to the pipeline; `query` sends it as one write and
    // decodes every reply at once.
    let mut p = client.pipeline();
    let _ = p.set("example:a", 1);
    let _ = p.incr("example:a");
    let _ = p.get("example:a");
    let ((), a, text): ((), i64, String) = p.query().await?;
    println!("pipeline: SET, INCR -> {a}, GET -> {text:?}");

    // One failing command loses nothing: ask for a `Result` per reply.
    let mut p = client.pipeline();
    p.add(cmd!("INCR", "example:a"))
        .add(cmd!("HGET", "example:a", "field")) // the wrong type for this key
        .add(cmd!("INCR", "example:a"));
    let each: Vec<Result<Value>> = p.query().await?;
    for (i, reply) in each.iter().enumerate() {
        match reply {
            Ok(value) => println!("  reply {i}: {value:?}"),
            Err(e) => println!("  reply {i}: error: {e}"),
        }
    }

    // A transaction: MULTI ... EXEC, all or nothing.
    let mut t = client.transaction();
    t.add(cmd!("INCRBY", "example:a", 10))
        .add(cmd!("INCRBY", "example:b", 20));
    let (a, b): (i64, i64) = t.query().await?;
    println!("transaction: a={a} b={b}");

    client.del(["example:a", "example:b"]).await?;
    Ok(())
}
