//! Adversarial review of client-side caching (#15): each test pins down a bug found in review
//! (it failed before its fix).
//!
//! The fake server here (unlike `FaultServer`, which serves one connection at a time) serves
//! every connection at once from one shared store, and holds every `SET` until the test lets
//! writes through: so a write submitted first can be executed after a read submitted later on
//! another connection, as a real server may do, and its invalidation push (which a real server
//! sends the reading connection when the write runs) is never sent: the window between the
//! write's reply and that push, which a real server leaves open for an unbounded moment, is
//! held open.

mod support;

use ringdis::prelude::*;
use ringdis::{Cache, Spread};
use std::collections::HashMap;
use std::future::IntoFuture;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::engines;

/// How long a test waits for the fake server to see something.
const WAIT: Duration = Duration::from_secs(10);

/// The fake server's state, shared by its connections and the test.
#[derive(Default)]
struct Store {
    data: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    /// `SET`s wait while this is true.
    hold: Mutex<bool>,
    released: Condvar,
    /// `SET`s received (held or not).
    sets: AtomicUsize,
}

struct FakeServer {
    port: u16,
    store: Arc<Store>,
}

impl FakeServer {
    fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let store = Arc::new(Store::default());
        let shared = store.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let store = shared.clone();
                std::thread::spawn(move || serve(stream, &store));
            }
        });
        FakeServer { port, store }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn hold_writes(&self, hold: bool) {
        *self.store.hold.lock().unwrap() = hold;
        self.store.released.notify_all();
    }
}

fn read_command(reader: &mut BufReader<TcpStream>) -> Option<Vec<Vec<u8>>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let count: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0; len + 2];
        reader.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        args.push(arg);
    }
    Some(args)
}

fn serve(stream: TcpStream, store: &Store) {
    let _ = stream.set_nodelay(true);
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut out = stream;
    while let Some(cmd) = read_command(&mut reader) {
        let name = cmd[0].to_ascii_uppercase();
        let reply: Vec<u8> = match (&name[..], &cmd[1..]) {
            (b"HELLO", _) => b"%2\r\n+server\r\n+fake\r\n+proto\r\n:3\r\n".to_vec(),
            (b"GET", [key]) => match store.data.lock().unwrap().get(key) {
                Some(v) => {
                    let mut r = format!("${}\r\n", v.len()).into_bytes();
                    r.extend_from_slice(v);
                    r.extend_from_slice(b"\r\n");
                    r
                }
                None => b"_\r\n".to_vec(),
            },
            (b"PTTL", [key]) => match store.data.lock().unwrap().contains_key(key) {
                true => b":-1\r\n".to_vec(),
                false => b":-2\r\n".to_vec(),
            },
            // A script as the test sends it: `EVAL <script> 1 key value` sets key to value.
            (b"SET", [key, value]) | (b"EVAL", [_, _, key, value]) => {
                store.sets.fetch_add(1, Ordering::SeqCst);
                let mut held = store.hold.lock().unwrap();
                while *held {
                    held = store.released.wait(held).unwrap();
                }
                drop(held);
                store
                    .data
                    .lock()
                    .unwrap()
                    .insert(key.clone(), value.clone());
                b"+OK\r\n".to_vec()
            }
            (b"PING", _) => b"+PONG\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        };
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Waits until `cond` holds, within [`WAIT`]; a polling loop on a real condition, no sleep.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        support::yield_now().await;
    }
}

/// Read-your-own-writes across the connections that share one cache: a write sent on one
/// member of a spread, a cached read of its key on another member planned after the write's
/// local invalidation but run by the server before the write (the connections are not
/// ordered with each other). That read's reply predates the write and was stored; once the
/// write's reply is handed over, the next cached read must not be answered with it, whatever
/// the other connection's invalidation push is doing (here: it never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reply_is_not_followed_by_a_read_older_than_the_write() {
    for engine in engines() {
        let at = format!("{engine:?}");
        let server = FakeServer::start();
        server
            .store
            .data
            .lock()
            .unwrap()
            .insert(b"k".to_vec(), b"v1".to_vec());
        let config = Config::from_url(&server.url())
            .unwrap()
            .engine(engine)
            .cache(Cache::new());
        let spread = Spread::new(config, 2).unwrap();
        let (a, b) = (spread.clients()[0].clone(), spread.clients()[1].clone());
        a.connect().await.unwrap();
        b.connect().await.unwrap();

        server.hold_writes(true);
        // Sent now (a call is queued at once), held by the server.
        let write = a.set("k", "v2").decode::<Value>().into_future();
        until("the server got the SET", || {
            server.store.sets.load(Ordering::SeqCst) == 1
        })
        .await;
        // Planned after the write's local invalidation, run before the write: the old value,
        // rightly, and stored.
        let read: Option<String> = b.get("k").cached().decode().await.unwrap();
        assert_eq!(read.as_deref(), Some("v1"), "{at}");
        server.hold_writes(false);
        assert_eq!(
            write.await.unwrap(),
            Value::Simple("OK".into()),
            "{at}: the write's reply"
        );
        for (member, c) in [("a", &a), ("b", &b)] {
            let read: Option<String> = c.get("k").cached().decode().await.unwrap();
            assert_eq!(
                read.as_deref(),
                Some("v2"),
                "{at}: a cached read through {member} after the write's reply"
            );
        }
    }
}

/// As above, the write being a script (`EVAL`, which the spec does not flag `write`: it
/// declares the keys it may write): its keys drop from the cache when it is sent and when its
/// reply comes, as a write's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_reply_is_not_followed_by_a_read_older_than_the_script() {
    for engine in engines() {
        let at = format!("{engine:?}");
        let server = FakeServer::start();
        server
            .store
            .data
            .lock()
            .unwrap()
            .insert(b"k".to_vec(), b"v1".to_vec());
        let config = Config::from_url(&server.url())
            .unwrap()
            .engine(engine)
            .cache(Cache::new());
        let spread = Spread::new(config, 2).unwrap();
        let (a, b) = (spread.clients()[0].clone(), spread.clients()[1].clone());
        // Cached before the script.
        let read: Option<String> = a.get("k").cached().decode().await.unwrap();
        assert_eq!(read.as_deref(), Some("v1"), "{at}");
        server.hold_writes(true);
        let script = "return redis.call('SET', KEYS[1], ARGV[1])";
        let write = a
            .eval(script)
            .key("k")
            .arg("v2")
            .decode::<Value>()
            .into_future();
        until("the server got the EVAL", || {
            server.store.sets.load(Ordering::SeqCst) == 1
        })
        .await;
        let read: Option<String> = b.get("k").cached().decode().await.unwrap();
        assert_eq!(
            read.as_deref(),
            Some("v1"),
            "{at}: read before the script ran"
        );
        server.hold_writes(false);
        write.await.unwrap();
        for (member, c) in [("a", &a), ("b", &b)] {
            let read: Option<String> = c.get("k").cached().decode().await.unwrap();
            assert_eq!(
                read.as_deref(),
                Some("v2"),
                "{at}: a cached read through {member} after the script's reply"
            );
        }
    }
}

/// A cluster's cached read that leads (the first read of its command) but is held unpolled
/// (made, not awaited yet): a read of the same command joins it, and must not wait for the
/// leader's caller to get round to polling it (on a `Client` the bundle goes out at once; on a
/// cluster it was sent only when the leader was first polled, so the joined read hung, past
/// its command timeout).
#[test]
fn a_cluster_read_joined_to_an_unpolled_leader_does_not_hang() {
    let cluster = ringdis_tests::Cluster::builder(ringdis_tests::ServerKind::Redis)
        .node_timeout(Duration::from_secs(5))
        .start();
    for engine in engines() {
        let at = format!("{engine:?}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let seeds = cluster.seed_urls();
            let config = Config::from_url(&seeds[0])
                .unwrap()
                .engine(engine)
                .command_timeout(Some(Duration::from_secs(2)))
                .connect_timeout(Duration::from_secs(1))
                .cache(Cache::new());
            let db = ringdis::ClusterClient::builder(config)
                .seeds(&seeds)
                .build()
                .unwrap();
            let key = ringdis_tests::unique("unpolled");
            db.set(&key, "v").decode::<Value>().await.unwrap();
            // Planned now, polled only at the end.
            let leader = db
                .get(&key)
                .cached()
                .decode::<Option<String>>()
                .into_future();
            let joined = support::bounded(
                Duration::from_secs(5),
                &format!("{at}: a read joined to an unpolled leader"),
                db.get(&key)
                    .cached()
                    .decode::<Option<String>>()
                    .into_future(),
            )
            .await;
            assert_eq!(joined.unwrap().as_deref(), Some("v"), "{at}");
            assert_eq!(leader.await.unwrap().as_deref(), Some("v"), "{at}");
            let stats = db.cache_stats().unwrap();
            // Joined, or (the leader's bundle going out at once) a hit if it was that quick.
            assert_eq!(
                (stats.misses, stats.joined + stats.hits),
                (1, 1),
                "{at}: {stats:?}"
            );
        });
    }
}

/// `SWAPDB` through a caching client: the server sends no invalidation for it (Redis 7.0 and
/// Valkey 9 alike: tracking names keys, not databases), so the entries of the swapped
/// databases stayed, answering for another database's data until their TTL. A flush (and a
/// swap) sent through the client now flushes its cache at once, and again at the reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapdb_through_the_client_flushes_its_cache() {
    for server in support::servers() {
        for engine in engines() {
            let at = format!("{}/{engine:?}", server.kind());
            let c = Client::new(support::config(&server, engine).cache(Cache::new())).unwrap();
            let db0 = Client::new(support::config(&server, engine)).unwrap();
            let db1 = Client::new(support::config(&server, engine).db(1)).unwrap();
            let key = ringdis_tests::unique("swapped");
            db0.set(&key, "in0").decode::<Value>().await.unwrap();
            db1.set(&key, "in1").decode::<Value>().await.unwrap();
            for _ in 0..2 {
                let got: Option<String> = c.get(&key).cached().decode().await.unwrap();
                assert_eq!(got.as_deref(), Some("in0"), "{at}");
            }
            assert_eq!(c.cache_stats().unwrap().hits, 1, "{at}");
            c.swapdb(0, 1).decode::<Value>().await.unwrap();
            let got: Option<String> = c.get(&key).cached().decode().await.unwrap();
            assert_eq!(
                got.as_deref(),
                Some("in1"),
                "{at}: database 0 after SWAPDB 0 1"
            );
            db0.swapdb(0, 1).decode::<Value>().await.unwrap();
        }
    }
}
