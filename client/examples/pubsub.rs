//! Pub/sub: a subscriber on a connection of its own (subscribed again after every reconnect),
//! and a client publishing to it.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis --example pubsub
//! ```

use ringdis::prelude::*;
use std::time::Duration;

#[tokio::main]
async fn main() -> ringdis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = Client::open(&url)?;

    let mut sub = client.subscriber()?;
    sub.subscribe(["example:news"]).await?;
    sub.psubscribe(["example:alerts.*"]).await?;

    let receivers = client.publish("example:news", "hello").await?;
    client.publish("example:alerts.disk", "90% full").await?;
    println!("published to example:news ({receivers} receiver) and example:alerts.disk");

    // Or as a `Stream` (`futures::StreamExt::next`), with the same items.
    for _ in 0..2 {
        match sub.next_message(Some(Duration::from_secs(5))).await? {
            Some(msg) => println!(
                "received {:?} on {:?} (pattern {:?})",
                msg.payload_str().unwrap_or_default(),
                msg.channel_str().unwrap_or_default(),
                msg.pattern,
            ),
            None => println!("no message within 5 s"),
        }
    }
    Ok(())
}
