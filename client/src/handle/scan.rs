//! [`ScanStream`]: the SCAN family (`SCAN`, `HSCAN`, `SSCAN`, `ZSCAN`) as a stream that
//! follows the cursor.

use crate::handle::cluster::scan::NodeWalk;
use crate::{Args, Call, Client, ClusterClient, Cmd, CmdFlags, FromRedis, Result, Spread, ToArg};
use bytes::Bytes;
use futures_core::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The items of a `SCAN`, `HSCAN`, `SSCAN` or `ZSCAN`, one at a time: a
/// [`Stream`](futures_core::Stream) of `Result<T>` that sends the command with cursor 0, yields
/// the page's items, sends the next cursor, and so on until the server answers cursor 0.
///
/// Made by [`Client::scan_iter`] (keys, as [`Bytes`]), [`Client::hscan_iter`] (`(field,
/// value)`), [`Client::sscan_iter`] (members) and [`Client::zscan_iter`] (`(member, score)`);
/// the same on a [`Pooled`](crate::Pooled) client (through `Deref`), on a [`Spread`], where
/// the whole run stays on one connection, and on a [`ClusterClient`] (see *On a cluster*
/// below). Nothing is sent until the stream is first polled; one page is held at a time.
///
/// What SCAN guarantees, and so what this stream gives: every element present for the whole
/// run is returned at least once, **but an element may be returned more than once** (the
/// table may be rehashed between calls), so collect into a set or tolerate duplicates.
/// Elements added or removed during the run may or may not appear. `MATCH` filters after the
/// fact, so a page may be empty while the run goes on; `COUNT` is a hint for the work per call.
///
/// After an error (connection lost, a server error such as `WRONGTYPE`, a reply that does not
/// decode) the stream yields that error and ends.
///
/// # On a cluster
///
/// [`ClusterClient::hscan_iter`] and kin go to the node of their key (redirects followed, as
/// every call). [`ClusterClient::scan_iter`] walks **every primary** of the map known when the
/// stream is first polled (the cluster is discovered first if no map is known yet), one after
/// another, each one's cursor followed to 0, so each key is returned by the primary holding it
/// (with SCAN's own guarantee on that node: at least once, and more than once only if that
/// node's table shrank meanwhile). A map refreshed mid-scan changes nothing: the walk stays on
/// the primaries it started with. What the servers do not guarantee: a slot that moves to
/// another primary mid-scan (resharding) may have its keys returned twice (once by each node)
/// or missed (moved from a node not scanned yet to one already scanned); a primary replaced by
/// its replica mid-scan (failover) cannot be resumed there (a cursor means nothing on another
/// node). A primary that fails (its connection lost, an error reply) gives one error item,
/// naming the node, and **the stream goes on with the next primary**;
/// [`collect_all`](ScanStream::collect_all) stops at the first error.
///
/// ```no_run
/// use ringdis::{Bytes, Client};
/// use std::collections::HashSet;
///
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// let mut keys = client.scan_iter().match_("user:*").count(500);
/// while let Some(key) = keys.next_item().await {
///     println!("{:?}", key?);
/// }
/// let fields: Vec<(Bytes, Bytes)> = client.hscan_iter("user:1").collect_all().await?;
/// let members: HashSet<Bytes> = client.sscan_iter("tags").collect_all().await?;
/// # Ok(()) }
/// ```
#[must_use = "a scan does nothing until it is polled"]
pub struct ScanStream<'a, T> {
    source: Source<'a>,
    name: &'static str,
    /// The key (`HSCAN`, `SSCAN`, `ZSCAN`), encoded.
    key: Option<Args>,
    /// Each option's encoded arguments (token and value), empty when not set.
    pattern: Args,
    count: Args,
    type_: Args,
    cursor: u64,
    done: bool,
    page: std::vec::IntoIter<T>,
    call: Option<Call<(u64, Vec<T>)>>,
}

/// Where the pages come from.
enum Source<'a> {
    /// One client (one server).
    Client(&'a Client),
    /// A cluster, the node of the key (`HSCAN`, `SSCAN`, `ZSCAN`).
    Keyed(&'a ClusterClient),
    /// A cluster, every primary in turn (`SCAN`).
    Primaries(Box<NodeWalk<'a>>),
}

impl<'a, T> ScanStream<'a, T> {
    fn new(client: &'a Client, name: &'static str, key: Option<Args>) -> Self {
        Self::from(Source::Client(client), name, key)
    }

    fn from(source: Source<'a>, name: &'static str, key: Option<Args>) -> Self {
        ScanStream {
            source,
            name,
            key,
            pattern: Args::new(),
            count: Args::new(),
            type_: Args::new(),
            cursor: 0,
            done: false,
            page: Vec::new().into_iter(),
            call: None,
        }
    }

    /// `MATCH pattern`: only elements (keys, fields, members) matching the glob-style pattern.
    pub fn match_(mut self, pattern: impl ToArg) -> Self {
        self.pattern.clear();
        self.pattern.push_bytes(b"MATCH");
        pattern.write_args(&mut self.pattern);
        self
    }

    /// `COUNT count`: how much work each call does (a hint; the server's default is 10).
    pub fn count(mut self, count: u64) -> Self {
        self.count.clear();
        self.count.push_bytes(b"COUNT");
        count.write_args(&mut self.count);
        self
    }

    /// The command for the current cursor.
    fn page_cmd(&self) -> Cmd {
        let mut cmd = Cmd::new(self.name).with_flags(CmdFlags {
            readonly: true,
            ..CmdFlags::default()
        });
        if let Some(key) = &self.key {
            for k in key.iter() {
                cmd.push_key(k);
            }
            if let Some(why) = key.invalid() {
                cmd.push_args(&invalid(why));
            }
        }
        cmd.push_arg(self.cursor);
        cmd.push_args(&self.pattern);
        cmd.push_args(&self.count);
        cmd.push_args(&self.type_);
        cmd
    }
}

impl<'a> ScanStream<'a, Bytes> {
    /// `TYPE type` (SCAN only): only keys of this type (`"string"`, `"hash"`, `"zset"`…).
    /// On `SSCAN` the stream fails with [`Error::Client`](crate::Error::Client).
    pub fn type_(mut self, type_: impl ToArg) -> Self {
        self.type_.clear();
        self.type_.push_bytes(b"TYPE");
        type_.write_args(&mut self.type_);
        if self.name != "SCAN" {
            self.type_.set_invalid("TYPE is an option of SCAN only");
        }
        self
    }
}

/// No arguments, marked unsendable for `why`.
fn invalid(why: &str) -> Args {
    let mut args = Args::new();
    args.set_invalid(why);
    args
}

/// A key, encoded.
fn key_args(key: impl ToArg) -> Args {
    let mut args = Args::new();
    key.write_args(&mut args);
    args
}

impl<T: FromRedis + Unpin> ScanStream<'_, T> {
    /// The next item, or `None` when the cursor came back to 0: [`Stream::poll_next`] as an
    /// `async fn`, for code without `futures::StreamExt`.
    pub async fn next_item(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Every remaining item, into any collection (a `HashSet` removes the duplicates SCAN may
    /// return); the first error instead, if any.
    pub async fn collect_all<C: Default + Extend<T>>(mut self) -> Result<C> {
        let mut out = C::default();
        while let Some(item) = self.next_item().await {
            out.extend(Some(item?));
        }
        Ok(out)
    }
}

impl<T: FromRedis + Unpin> Stream for ScanStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.page.next() {
                return Poll::Ready(Some(Ok(item)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let call = match &mut this.call {
                Some(call) => call,
                None => {
                    let cmd = this.page_cmd();
                    let call = match &mut this.source {
                        Source::Client(client) => client.call(cmd),
                        Source::Keyed(cluster) => cluster.call(cmd),
                        Source::Primaries(walk) => match walk.poll_node(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(Some(node))) => walk.page(&node, cmd),
                            Poll::Ready(Ok(None)) => {
                                this.done = true;
                                continue;
                            }
                            Poll::Ready(Err(e)) => {
                                this.done = true;
                                return Poll::Ready(Some(Err(e)));
                            }
                        },
                    };
                    this.call.insert(call)
                }
            };
            let reply = match Pin::new(call).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(reply) => reply,
            };
            this.call = None;
            match (reply, &mut this.source) {
                // A primary done: on to the next (the walk says when there is none).
                (Ok((0, items)), Source::Primaries(walk)) => {
                    walk.next_node();
                    this.cursor = 0;
                    this.page = items.into_iter();
                }
                (Ok((cursor, items)), _) => {
                    this.cursor = cursor;
                    this.done = cursor == 0;
                    this.page = items.into_iter();
                }
                (Err(e), Source::Primaries(walk)) => {
                    walk.next_node();
                    this.cursor = 0;
                    return Poll::Ready(Some(Err(e)));
                }
                (Err(e), _) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (n, _) = self.page.size_hint();
        (n, if self.done { Some(n) } else { None })
    }
}

impl<T> std::fmt::Debug for ScanStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanStream")
            .field("command", &self.name)
            .field("cursor", &self.cursor)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Every key of the current database, by `SCAN` (see [`ScanStream`]: keys may come more
    /// than once). Options: [`match_`](ScanStream::match_), [`count`](ScanStream::count),
    /// [`type_`](ScanStream::type_).
    pub fn scan_iter(&self) -> ScanStream<'_, Bytes> {
        ScanStream::new(self, "SCAN", None)
    }

    /// Every `(field, value)` of the hash at `key`, by `HSCAN` (see [`ScanStream`]: fields may
    /// come more than once). A missing key gives nothing; a key of another type, a
    /// `WRONGTYPE` error.
    pub fn hscan_iter(&self, key: impl ToArg) -> ScanStream<'_, (Bytes, Bytes)> {
        ScanStream::new(self, "HSCAN", Some(key_args(key)))
    }

    /// Every member of the set at `key`, by `SSCAN` (see [`ScanStream`]: members may come more
    /// than once).
    pub fn sscan_iter(&self, key: impl ToArg) -> ScanStream<'_, Bytes> {
        ScanStream::new(self, "SSCAN", Some(key_args(key)))
    }

    /// Every `(member, score)` of the sorted set at `key`, by `ZSCAN` (see [`ScanStream`]:
    /// members may come more than once).
    pub fn zscan_iter(&self, key: impl ToArg) -> ScanStream<'_, (Bytes, f64)> {
        ScanStream::new(self, "ZSCAN", Some(key_args(key)))
    }
}

impl Spread {
    /// [`Client::scan_iter`] on one of the connections, which serves the whole run.
    pub fn scan_iter(&self) -> ScanStream<'_, Bytes> {
        self.client().scan_iter()
    }

    /// [`Client::hscan_iter`] on one of the connections, which serves the whole run.
    pub fn hscan_iter(&self, key: impl ToArg) -> ScanStream<'_, (Bytes, Bytes)> {
        self.client().hscan_iter(key)
    }

    /// [`Client::sscan_iter`] on one of the connections, which serves the whole run.
    pub fn sscan_iter(&self, key: impl ToArg) -> ScanStream<'_, Bytes> {
        self.client().sscan_iter(key)
    }

    /// [`Client::zscan_iter`] on one of the connections, which serves the whole run.
    pub fn zscan_iter(&self, key: impl ToArg) -> ScanStream<'_, (Bytes, f64)> {
        self.client().zscan_iter(key)
    }
}

impl ClusterClient {
    /// Every key of the cluster, by `SCAN` on every primary in turn (see [`ScanStream`], *On
    /// a cluster*: what a resharding or a failover mid-scan does). Options:
    /// [`match_`](ScanStream::match_), [`count`](ScanStream::count) (per call, so per node),
    /// [`type_`](ScanStream::type_).
    ///
    /// ```no_run
    /// use ringdis::{Bytes, ClusterClient};
    /// use std::collections::HashSet;
    ///
    /// # async fn demo(cluster: ClusterClient) -> ringdis::Result<()> {
    /// let users: HashSet<Bytes> = cluster.scan_iter().match_("user:*").count(1000).collect_all().await?;
    /// # Ok(()) }
    /// ```
    pub fn scan_iter(&self) -> ScanStream<'_, Bytes> {
        ScanStream::from(
            Source::Primaries(Box::new(NodeWalk::new(self))),
            "SCAN",
            None,
        )
    }

    /// Every `(field, value)` of the hash at `key`, by `HSCAN` on the node of its slot (see
    /// [`Client::hscan_iter`]).
    pub fn hscan_iter(&self, key: impl ToArg) -> ScanStream<'_, (Bytes, Bytes)> {
        ScanStream::from(Source::Keyed(self), "HSCAN", Some(key_args(key)))
    }

    /// Every member of the set at `key`, by `SSCAN` on the node of its slot (see
    /// [`Client::sscan_iter`]).
    pub fn sscan_iter(&self, key: impl ToArg) -> ScanStream<'_, Bytes> {
        ScanStream::from(Source::Keyed(self), "SSCAN", Some(key_args(key)))
    }

    /// Every `(member, score)` of the sorted set at `key`, by `ZSCAN` on the node of its slot
    /// (see [`Client::zscan_iter`]).
    pub fn zscan_iter(&self, key: impl ToArg) -> ScanStream<'_, (Bytes, f64)> {
        ScanStream::from(Source::Keyed(self), "ZSCAN", Some(key_args(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream may move to another task or thread, whatever its source.
    #[test]
    fn streams_are_send_and_sync() {
        fn movable<T: Send + Sync + Unpin>() {}
        movable::<ScanStream<'static, Bytes>>();
        movable::<ScanStream<'static, (Bytes, f64)>>();
    }

    #[test]
    fn page_commands_carry_cursor_key_and_options_in_order() {
        let client = Client::open("redis://127.0.0.1:1").unwrap();
        let mut s = client.scan_iter().type_("hash").count(100).match_("u:*");
        assert_eq!(
            s.page_cmd().to_string(),
            "SCAN 0 MATCH u:* COUNT 100 TYPE hash"
        );
        s.cursor = u64::MAX;
        assert_eq!(
            s.page_cmd().to_string(),
            format!("SCAN {} MATCH u:* COUNT 100 TYPE hash", u64::MAX)
        );
        let h = client.hscan_iter("h").count(5);
        let cmd = h.page_cmd();
        assert_eq!(cmd.to_string(), "HSCAN h 0 COUNT 5");
        assert_eq!(cmd.keys().collect::<Vec<_>>(), [b"h"]);
        assert!(cmd.flags().readonly);
        let z = client.zscan_iter("z");
        assert_eq!(z.page_cmd().to_string(), "ZSCAN z 0");
        let s = client.sscan_iter("s").type_("x");
        assert_eq!(
            s.page_cmd().args().invalid(),
            Some("TYPE is an option of SCAN only")
        );
    }
}
