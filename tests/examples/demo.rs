//! The ringdis demo: connects to `REDIS_URL`, or to a throwaway server it starts itself, runs a
//! few commands and prints what it did.
//!
//! ```text
//! cargo run -p ringdis-tests --example demo
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis-tests --example demo
//! ```

use ringdis::{cmd, Client, Error, Value};
use ringdis_tests::{Server, ServerKind};
use std::collections::HashMap;

fn main() -> Result<(), Error> {
    // Keep the throwaway server (if any) alive until the end of main.
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = Server::start(ServerKind::Redis);
            println!(
                "started a throwaway redis-server {} on {}",
                server.version(),
                server.url()
            );
            (server.url(), Some(server))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    rt.block_on(run(&url))
}

async fn run(url: &str) -> Result<(), Error> {
    let client = Client::open(url)?;
    println!("client on {url}, transport {:?}", client.transport());

    let hello: HashMap<String, Value> = client.call(cmd!("HELLO")).await?;
    println!(
        "HELLO -> server {:?} {:?}, protocol {:?}",
        hello.get("server"),
        hello.get("version"),
        hello.get("proto")
    );

    client
        .call::<()>(cmd!("HSET", "user:1", "name", "ada", "born", 1815))
        .await?;
    println!("HSET user:1 name ada born 1815");
    let user: HashMap<String, String> = client.call(cmd!("HGETALL", "user:1")).await?;
    println!("HGETALL user:1 -> {user:?}");
    let born: i64 = client.call(cmd!("HGET", "user:1", "born")).await?;
    println!("HGET user:1 born -> {born} (decoded as an integer)");

    // Many tasks share the one connection; their calls are written together.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<i64>(cmd!("INCR", "demo:hits"))
                    .await
                    .map(|n| (i, n))
            })
        })
        .collect();
    let mut last = 0;
    for t in tasks {
        let (_, n) = t.await.expect("task")?;
        last = last.max(n);
    }
    println!("100 concurrent INCRs on one client -> demo:hits = {last}");

    match client.call::<i64>(cmd!("HGET", "user:1", "name")).await {
        Err(e) => println!("HGET user:1 name as an integer -> {e}"),
        Ok(n) => println!("unexpected: {n}"),
    }
    match client.call::<()>(cmd!("LPUSH", "user:1", "x")).await {
        Err(e) => println!("LPUSH on a hash -> {e} (kind {:?})", e.server_kind()),
        Ok(()) => println!("unexpected success"),
    }
    client
        .call::<()>(cmd!("DEL", "user:1", "demo:hits"))
        .await?;
    println!("cleaned up; done");
    Ok(())
}
