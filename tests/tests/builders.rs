//! Command builders against real servers (Valkey 9 and Redis 7.0, RESP2 and RESP3, epoll and
//! io_uring): building a command has no side effect. A method called on a pipeline adds exactly
//! one command, which chained options edit in place (in the spec's order, whatever order they
//! are called in); `cmd()` shows a copy and changes nothing; a builder dropped on a client sends
//! nothing; `into_cmd()` on a pipeline takes the command back out. The replies prove that what
//! the server ran is what was built.

mod support;

use ringdis::{cmd, Bytes, Client, Cmd, Commands, Value};
use ringdis_tests::Server;
use support::{client, label, matrix, PROTOCOLS};

/// Every (server, engine, protocol) cell, one server per kind: `f` runs once per cell on a
/// flushed database.
async fn on_every_cell<F, Fut>(mut f: F)
where
    F: FnMut(Client, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut servers: Vec<(ringdis_tests::ServerKind, Server)> = Vec::new();
    for (kind, engine) in matrix() {
        if !servers.iter().any(|(k, _)| *k == kind) {
            servers.push((kind, Server::start(kind)));
        }
        let server = &servers.iter().find(|(k, _)| *k == kind).expect("started").1;
        for protocol in PROTOCOLS {
            let c = client(server, engine, protocol);
            c.call::<()>(cmd!("FLUSHALL")).await.unwrap();
            f(c, label(kind, engine, protocol)).await;
        }
    }
}

fn shown(cmds: &[Cmd]) -> Vec<String> {
    cmds.iter().map(ToString::to_string).collect()
}

/// Statements on a pipeline (`p.get("k");`, `p.set("k", "v").ex(10);`) add one command each,
/// options land in the spec's order, and the replies are the ones those commands give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(unused_must_use)] // a builder on a pipeline is used by the method call itself
async fn pipelines_built_with_options_run_what_was_built() {
    on_every_cell(|c, at| async move {
        let mut p = c.pipeline();
        p.set("a", "1").ex(100);
        p.ttl("a");
        p.set("b", "x").px(50_000).xx();
        p.set("a", "2").get();
        p.eval("return {#KEYS, #ARGV, KEYS[1]}")
            .arg("v")
            .key(["k1", "k2"]);
        p.zadd("z", 1.0, "m").and(2.0, "n").ch();
        p.lpop("nothing").count(2);
        p.get("a");
        assert_eq!(
            shown(p.cmds()),
            [
                "SET a 1 EX 100",
                "TTL a",
                "SET b x XX PX 50000",
                "SET a 2 GET",
                "EVAL return {#KEYS, #ARGV, KEYS[1]} 2 k1 k2 v",
                "ZADD z CH 1.0 m 2.0 n",
                "LPOP nothing 2",
                "GET a",
            ],
            "{at}"
        );
        type Replies = (
            (),
            i64,
            Option<()>,
            Option<String>,
            (i64, i64, String),
            i64,
            Option<Vec<Bytes>>,
            String,
        );
        let (set, ttl, xx, old, eval, added, popped, now): Replies = p.query().await.unwrap();
        assert_eq!(set, (), "{at}");
        assert!((1..=100).contains(&ttl), "{at}: TTL {ttl}");
        assert_eq!(xx, None, "{at}: SET … XX on a missing key sets nothing");
        assert_eq!(
            old.as_deref(),
            Some("1"),
            "{at}: SET … GET gives the old value"
        );
        assert_eq!(eval, (2, 1, "k1".to_string()), "{at}");
        assert_eq!(added, 2, "{at}");
        assert_eq!(popped, None, "{at}");
        assert_eq!(now, "2", "{at}");
        assert_eq!(c.exists("b").await.unwrap(), 0, "{at}");

        // The same on a transaction, ending the chain with the query.
        let mut t = c.transaction();
        t.incr("n");
        let (one, six): (i64, i64) = t.incrby("n", 5).query().await.unwrap();
        assert_eq!((one, six), (1, 6), "{at}");
    })
    .await;
}

/// `cmd()` is a copy with no side effect, a builder dropped on a client sends nothing, and
/// `into_cmd()` on a pipeline takes the command back out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_a_command_has_no_side_effect() {
    on_every_cell(|c, at| async move {
        // On a client: neither cmd(), nor into_cmd(), nor dropping a builder sends anything.
        let b = c.set("dropped", "1").nx();
        assert_eq!(b.cmd().to_string(), "SET dropped 1 NX", "{at}");
        drop(b);
        let built = c.set("built", "1").ex(30).into_cmd();
        assert_eq!(c.exists(["dropped", "built"]).await.unwrap(), 0, "{at}");

        // On a pipeline: the method call adds the command, once.
        let mut p = c.pipeline();
        let shown_get = p.get("built").cmd();
        assert_eq!(shown_get.to_string(), "GET built", "{at}");
        assert_eq!(
            p.len(),
            1,
            "{at}: cmd() neither added nor removed a command"
        );
        let b = p.set("k", "v").ex(5);
        assert_eq!(b.cmd(), b.cmd(), "{at}");
        drop(b);
        assert_eq!(p.len(), 2, "{at}: dropping the builder added nothing more");
        let taken = p.incr("never").into_cmd();
        assert_eq!(taken.to_string(), "INCR never", "{at}");
        assert_eq!(shown(p.cmds()), ["GET built", "SET k v EX 5"], "{at}");

        // The built command, sent by hand, runs as built.
        p.add(built);
        p.ttl("built").send();
        let (missing, (), (), ttl): (Option<String>, (), (), i64) = p.query().await.unwrap();
        assert_eq!(missing, None, "{at}: the GET ran before the SET was added");
        assert!((1..=30).contains(&ttl), "{at}: TTL {ttl}");
        assert_eq!(c.exists(["never", "dropped"]).await.unwrap(), 0, "{at}");
    })
    .await;
}

/// A command whose options were set out of order reports its keys where the server finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_a_command_built_out_of_order_are_the_servers() {
    on_every_cell(|c, at| async move {
        let built = [
            c.eval("return 1")
                .arg("x")
                .key("k1")
                .arg("y")
                .key("k2")
                .into_cmd(),
            c.zunionstore("dst", "s1")
                .aggregate(ringdis::commands::Aggregate::Max)
                .weights(2)
                .into_cmd(),
            c.sort("l")
                .get(["a_*", "b_*"])
                .by("w_*")
                .store("out")
                .into_cmd(),
        ];
        for cmd in built {
            let mut getkeys = Cmd::new("COMMAND GETKEYS");
            for arg in cmd.args().iter().collect::<Vec<_>>() {
                getkeys.push_arg(arg);
            }
            let keys: Vec<Value> = c.call(getkeys).await.unwrap();
            let keys: Vec<Bytes> = keys
                .into_iter()
                .map(|k| Bytes::copy_from_slice(k.as_bytes().expect("a key is text")))
                .collect();
            let ours: Vec<Bytes> = cmd.keys().map(Bytes::copy_from_slice).collect();
            assert_eq!(ours, keys, "{at}: {cmd}");
        }
    })
    .await;
}
