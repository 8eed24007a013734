//! A checkout pool: each task takes a connection of its own and gives it back when done.
//! (A single `Client` is already shared by any number of tasks; a pool is for commands that
//! hold a connection, or to spread load over several.)
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example pool
//! ```

use ringdis::prelude::*;
use ringdis::Pool;
use std::time::Duration;

#[tokio::main]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let pool = Pool::builder(Config::from_url(&url)?)
        .max_size(4)
        .checkout_timeout(Some(Duration::from_secs(5)))
        .build();

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await?; // back in the pool when dropped
                conn.incr("example:visits").await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("the task does not panic")?;
    }

    let conn = pool.get().await?;
    let visits: i64 = conn.get("example:visits").decode().await?;
    println!("16 tasks over at most 4 connections: example:visits = {visits}");
    println!("connections now idle in the pool: {}", pool.idle_count());
    conn.del("example:visits").await?;
    Ok(())
}
