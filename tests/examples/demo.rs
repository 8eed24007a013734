//! The ringdis demo: connects to `REDIS_URL`, or to a throwaway server it starts itself, runs a
//! few commands and prints what it did.
//!
//! ```text
//! cargo run -p ringdis-tests --example demo
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p ringdis-tests --example demo
//! ```

use ringdis::prelude::*;
use ringdis::{cmd, Error, FromRedis, ToRedis, Value};
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

/// A user as a hash: written with one HSET, read back with one HGETALL.
#[derive(Debug, FromRedis, ToRedis)]
struct User {
    name: String,
    born: i64,
    email: Option<String>,
}

async fn run(url: &str) -> Result<(), Error> {
    let client = Client::open(url)?;
    println!("client on {url}, engine {:?}", client.engine());

    // Anything the spec lacks (module commands…) goes through call(cmd!(…)).
    let hello: HashMap<String, Value> = client.call(cmd!("HELLO")).await?;
    println!(
        "HELLO -> server {:?} {:?}, protocol {:?}",
        hello.get("server"),
        hello.get("version"),
        hello.get("proto")
    );

    // Generated, typed methods: the default reply type comes from the spec.
    let added: i64 = client
        .hset("user:1", "name", "ada")
        .and("born", 1815)
        .await?;
    println!("hset user:1 name ada born 1815 -> {added} fields added");
    let born: i64 = client.hget("user:1", "born").decode().await?;
    println!("hget user:1 born -> {born} (decoded as an integer)");
    let set = client.set("demo:lock", "me").nx().ex(10).await?;
    let again = client.set("demo:lock", "me").nx().ex(10).await?;
    println!("set demo:lock NX EX 10 -> {set:?}, then {again:?}");

    // Derived types: a struct in, the same struct out.
    let grace = User {
        name: "grace".into(),
        born: 1906,
        email: None,
    };
    client.call::<()>(cmd!("HSET", "user:2", &grace)).await?;
    let back: User = client.hgetall("user:2").decode().await?;
    println!("HSET user:2 {grace:?}; hgetall -> {back:?}");

    // Many tasks share the one connection; their calls are written together.
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.incr("demo:hits").await })
        })
        .collect();
    let mut last = 0;
    for t in tasks {
        last = last.max(t.await.expect("task")?);
    }
    println!("100 concurrent INCRs on one client -> demo:hits = {last}");

    // A pipeline and a transaction take the same methods.
    let (hits, name): (i64, String) = client
        .pipeline()
        .get("demo:hits")
        .hget("user:1", "name")
        .query()
        .await?;
    println!("pipeline get + hget -> {hits}, {name}");
    let (a, b): (i64, i64) = client
        .transaction()
        .incr("demo:tx")
        .incr("demo:tx")
        .query()
        .await?;
    println!("MULTI incr incr EXEC -> {a}, {b}");

    // Errors are typed and say what happened.
    match client.hget("user:1", "name").decode::<i64>().await {
        Err(e) => println!("hget user:1 name as an integer -> {e}"),
        Ok(n) => println!("unexpected: {n}"),
    }
    match client.lpush("user:1", "x").await {
        Err(e) => println!("lpush on a hash -> {e} (kind {:?})", e.server_kind()),
        Ok(n) => println!("unexpected success: {n}"),
    }
    let removed = client
        .del(["user:1", "user:2", "demo:hits", "demo:lock", "demo:tx"])
        .await?;
    println!("cleaned up {removed} keys; done");
    Ok(())
}
