//! [`Cached`]: a read built with `.cached()`, to be served from the client's cache.

use crate::{Call, Cmd, FromRedis, Redis, Result};
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::time::Duration;

/// A read served from the client's cache when it can be: what `.cached()` and
/// `.cached_for(ttl)` make of a command built on a client. Await it for the reply, typed as
/// awaiting the command itself would give it.
///
/// ```no_run
/// use ringdis::{Client, Commands, FromRedis};
/// use std::time::Duration;
///
/// #[derive(FromRedis)]
/// struct User { name: String, born: i64 }
///
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// // A client made with `Config::cache(Cache::new())`; without it, these are plain reads.
/// let greeting = client.get("greeting").cached().await?;          // Option<Bytes>
/// let user: User = client.hgetall("user:1").cached().decode().await?;
/// let top = client.zrange("board", 0, 9).withscores().cached().await?; // Vec<(Bytes, f64)>
/// let members = client.smembers("tags").cached_for(Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
///
/// **What it does.** On a client with a cache (`Config::cache`, with a
/// [`Cache`](crate::Cache)), the first read of a command asks the server to track its keys
/// (`CLIENT TRACKING`) and keeps the reply; later reads of the very same command (same
/// arguments, same database) are answered from memory, with no round trip, until the server
/// says one of its keys changed (or the entry expires, or the cache flushes: a nil
/// invalidation, the connection lost, every reconnect). A write sent through the same client
/// (or any connection of the same pool, `Spread` or cluster client: they share one cache)
/// invalidates the keys it names at once, so a client always reads its own writes. Reads of
/// the same command in flight at once share one round trip. A read whose key is invalidated
/// while it is in flight is answered but not kept. The reply is the one the server sends to
/// the command, and decodes the same way (`.decode::<T>()` re-types it, derives included).
///
/// **Lifetime.** An entry lives at most the call's `ttl` (`.cached_for(ttl)`), else the
/// cache's ([`Cache::ttl`](crate::Cache::ttl), 60 s by default), and never past the expiry of
/// any of its keys: the read fetches each key's `PTTL` in the same round trip, and the entry
/// ends when the first of them expires (a key without expiry, or missing, sets no limit; a
/// missing key is tracked too, so its creation invalidates the entry). The cache's byte budget
/// may evict it sooner ([`Cache::max_bytes`](crate::Cache::max_bytes), least recently used
/// first). The `ttl` is the one of the read that fills the entry: a read that finds it, or joins
/// the read in flight, takes it as it is (`cached_for` bounds how long an entry it stores
/// lives, not the age of one it finds).
///
/// **Not seen:** the server sends no invalidation for `SWAPDB` (Redis 7.0, Valkey 9): an entry
/// read before another client swaps databases stays until it expires. Do not cache reads of a
/// database that `SWAPDB` replaces.
///
/// **Without a cache** (the default [`Config`](crate::Config), and on the mock) a cached read
/// is simply sent, as the command would be: code written with `.cached()` runs the same
/// everywhere. So is a read the cache cannot keep (with `BCAST` tracking, a key outside every
/// prefix).
///
/// **Where.** Only the builders of cacheable commands have `.cached()`: commands the spec marks
/// read-only with keys, not blocking, whose reply depends on their keys' data alone (no
/// `nondeterministic_output` tip; no script; not `MEMORY USAGE`, `TOUCH`, `SORT_RO`, `HTTL`,
/// `HPTTL`, nor `XINFO GROUPS`/`XINFO STREAM`, which consumer groups change without an
/// invalidation). The list is in [`Commands`](crate::Commands) and
/// [`CACHEABLE_COMMANDS`](crate::commands::CACHEABLE_COMMANDS); each such method's docs say
/// "cacheable". It is on commands built on a client ([`Client`](crate::Client), a
/// [`Pool`](crate::Pool), a [`Spread`](crate::Spread), a
/// [`ClusterClient`](crate::ClusterClient): any [`Redis`]), never in a pipeline. A command
/// built by hand (`call(cmd!(…))`, a module's read) is never cached; put `.cached()` before
/// `.decode::<T>()`, not after.
///
/// **Cancel safety.** Building it sends nothing; dropping it, or the future awaiting it gives,
/// before the reply is fine: a read already sent is finished all the same (its reply kept as
/// any other, and handed to the cached reads that joined its round trip), so no other read is
/// left waiting for it; nothing half-read is kept.
///
/// # Errors
///
/// Those of the command itself ([`Client::call`](crate::Client::call)): a server error, a
/// connection error, a timeout, [`Error::Decode`](crate::Error::Decode) for a reply that does
/// not decode as the type asked for. A reply served from memory is decoded the same way, so
/// it fails the same way.
///
/// A command that is not cacheable has no `.cached()`, nor has a pipeline's builder:
///
/// ```compile_fail
/// use ringdis::{Client, Commands};
///
/// let client = Client::open("redis://127.0.0.1:1").unwrap();
/// let _ = client.set("k", "v").cached(); // SET writes
/// ```
///
/// ```compile_fail
/// use ringdis::{Client, Commands};
///
/// let client = Client::open("redis://127.0.0.1:1").unwrap();
/// let _ = client.srandmember("s").cached(); // a random reply each time
/// ```
///
/// ```compile_fail
/// use ringdis::{Client, Commands};
///
/// let client = Client::open("redis://127.0.0.1:1").unwrap();
/// let mut p = client.pipeline();
/// let _ = p.get("k").cached(); // pipelines are not cached
/// ```
///
/// The same reads on a client build (nothing is sent until awaited):
///
/// ```
/// use ringdis::{Client, Commands};
/// use std::time::Duration;
///
/// let client = Client::open("redis://127.0.0.1:1")?; // nothing connects until a call is awaited
/// let read = client.get("k").cached();
/// assert_eq!(read.cmd().to_string(), "GET k");
/// assert_eq!(read.ttl(), None);
/// let read = client.zrange("z", 0, -1).withscores().cached_for(Duration::from_secs(5));
/// assert_eq!(read.cmd().to_string(), "ZRANGE z 0 -1 WITHSCORES");
/// assert_eq!(read.ttl(), Some(Duration::from_secs(5)));
/// let read = client.hgetall("u:1").cached().decode::<Vec<(String, String)>>();
/// assert!(read.cmd().flags().readonly);
/// # Ok::<(), ringdis::Error>(())
/// ```
#[must_use = "a cached read does nothing until it is awaited"]
pub struct Cached<'a, C: ?Sized, Reply> {
    target: &'a C,
    cmd: Cmd,
    ttl: Option<Duration>,
    reply: PhantomData<fn() -> Reply>,
}

impl<'a, C: Redis + ?Sized, Reply> Cached<'a, C, Reply> {
    /// `cmd`, to be read through `target`'s cache, its entry kept at most `ttl` (else the
    /// cache's own).
    pub(crate) fn new(target: &'a C, cmd: Cmd, ttl: Option<Duration>) -> Self {
        Cached {
            target,
            cmd,
            ttl,
            reply: PhantomData,
        }
    }

    /// The same read, its reply decoded as `T` when awaited (any [`FromRedis`] type, a
    /// `#[derive(FromRedis)]` struct included).
    pub fn decode<T: FromRedis>(self) -> Cached<'a, C, T> {
        Cached::new(self.target, self.cmd, self.ttl)
    }

    /// The command it reads: arguments, keys, flags. The cache keys its entry by these exact
    /// arguments (and the database).
    pub fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    /// The call's own limit on the entry's lifetime (`.cached_for(ttl)`), `None` for the
    /// cache's ([`Cache::ttl`](crate::Cache::ttl)).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The command, not sent.
    pub fn into_cmd(self) -> Cmd {
        self.cmd
    }
}

impl<'a, C: Redis + ?Sized, Reply: FromRedis> IntoFuture for Cached<'a, C, Reply> {
    type Output = Result<Reply>;
    type IntoFuture = Call<Reply>;

    /// Reads through the cache (`Redis::call_cached`): a [`Call`], ready at once on a hit.
    fn into_future(self) -> Call<Reply> {
        self.target.call_cached(self.cmd, self.ttl)
    }
}

impl<C: ?Sized, Reply> std::fmt::Debug for Cached<'_, C, Reply> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("cmd", &self.cmd.to_string())
            .field("ttl", &self.ttl)
            .finish()
    }
}

#[cfg(all(test, feature = "mock"))]
mod tests {
    use crate::mock::Mock;
    use crate::{cmd, Bytes, Commands, FromRedis, Redis, ToRedis, Value};
    use std::time::Duration;

    #[derive(Debug, PartialEq, FromRedis, ToRedis)]
    struct User {
        name: String,
        born: i64,
    }

    /// Generic code over any `Redis` reads through `.cached()` with the command's own reply
    /// type.
    async fn greeting(db: &impl Redis) -> crate::Result<Option<Bytes>> {
        db.get("greeting").cached().await
    }

    /// Without a cache a cached read is the command, sent: the same bytes on the wire, the
    /// same typed reply (the default, a re-typed one, a derived struct), the same errors.
    #[test]
    fn a_cached_read_without_a_cache_is_the_command_sent() {
        let ada = User {
            name: "ada".into(),
            born: 1815,
        };
        let mock = Mock::new();
        mock.expect(cmd!("GET", "greeting"))
            .returns("hi")
            .expect(cmd!("HGETALL", "user:1"))
            .returns_hash(&ada)
            .expect(cmd!("ZRANGE", "board", 0, -1, "WITHSCORES"))
            .returns(Value::Array(vec![
                Value::Array(vec!["a".into(), 1.5.into()]),
                Value::Array(vec!["b".into(), 2.0.into()]),
            ]))
            .expect(cmd!("SMEMBERS", "tags"))
            .returns(Value::Set(vec!["x".into()]))
            .expect(cmd!("HGET", "user:1", "born"))
            .fails("WRONGTYPE Operation against a key holding the wrong kind of value")
            .expect(cmd!("GET", "greeting"))
            .returns("hi");
        let client = mock.client();
        futures::executor::block_on(async {
            let g: Option<Bytes> = client.get("greeting").cached().await.unwrap();
            assert_eq!(g.as_deref(), Some(&b"hi"[..]));
            let user = client
                .hgetall("user:1")
                .cached()
                .decode::<User>()
                .await
                .unwrap();
            assert_eq!(user, ada);
            let top: Vec<(Bytes, f64)> = client
                .zrange("board", 0, -1)
                .withscores()
                .cached()
                .await
                .unwrap();
            assert_eq!(top, [(Bytes::from("a"), 1.5), (Bytes::from("b"), 2.0)]);
            let tags = client
                .smembers("tags")
                .cached_for(Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(tags, [Bytes::from("x")]);
            let err = client.hget("user:1", "born").cached().await.unwrap_err();
            assert!(
                matches!(&err, crate::Error::Server { kind, .. } if kind == "WRONGTYPE"),
                "{err:?}"
            );
            assert_eq!(
                greeting(&client).await.unwrap().as_deref(),
                Some(&b"hi"[..])
            );
        });
        mock.verify().unwrap();
    }
}
