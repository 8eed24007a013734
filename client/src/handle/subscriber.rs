//! [`Subscriber`]: pub/sub on a connection of its own (tornadis `PubSubClient`).

use crate::conn::Payload;
use crate::inbox::{inbox, InboxRx, InboxTx};
use crate::{Client, Config, Error, Result, Stats};
use bytes::Bytes;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use crate::conn::{Message, SubKind, INVALIDATE_CHANNEL};

/// A pub/sub subscriber on a connection of its own.
///
/// Messages arrive as a [`Stream`](futures_core::Stream) of `Result<Message>`, or one at a time
/// from [`Subscriber::next_message`]. Both read the same queue, in the order things happened:
///
/// * `Ok(message)`: a message. Its payload is a bulk string for `PUBLISH`; messages the server
///   sends itself may carry other shapes (see [`Message`]).
/// * `Err(`[`Error::Connection`]`)`, once per lost connection: the subscriber is down. It
///   reconnects by itself, with capped exponential backoff (see
///   [`Config::reconnect_backoff`]), for as long as it lives and whatever the timeouts, each
///   attempt given [`Config::connect_timeout`]; then it subscribes again to everything it had,
///   and the messages after that follow. Messages published while it was down are lost (pub/sub
///   keeps no history). [`Subscriber::is_connected`] says whether it is up.
/// * `Err(`[`Error::Lagged`]` { dropped })`: the reader fell behind, the queue was full
///   ([`Config::subscriber_queue_limit`], 32 MiB by default) and `dropped` messages were
///   dropped here. The subscriber goes on.
/// * `Err(`[`Error::Server`]`)`: after a reconnect the server refused to restore some
///   subscriptions (its ACL changed; a cluster node whose slot moved answers `MOVED`); the
///   error names them, and they are no longer held. Also, on a cluster node, when the server
///   unsubscribes shard channels itself because their slot moved to another node (kind
///   `MOVED`, naming the channel): subscribe there, or use
///   [`ClusterClient::subscriber`](crate::ClusterClient::subscriber), which follows them.
/// * The end of the stream (or `Err(Error::Connection)` from `next_message`, every time): the
///   engine driving the subscriber has stopped (on [`Engine::Task`](crate::Engine::Task): the
///   runtime the client was made on has shut down); nothing more will come.
///
/// While the subscriber is down, [`Subscriber::next_message`] with a timeout answers
/// `Err(Error::Connection)` rather than `Ok(None)` when the timeout passes, and
/// (un)subscribe calls wait for the reconnect until their command timeout.
///
/// The connection reads as fast as the server sends, so the replies to (un)subscribes and
/// `PING`s are never held up by unread messages; only messages go into the bounded queue.
///
/// ```no_run
/// use futures::StreamExt;
/// use ringdis::{cmd, Client, Error};
/// use std::time::Duration;
///
/// # async fn demo() -> ringdis::Result<()> {
/// let client = Client::open("redis://127.0.0.1:6379")?;
/// let mut sub = client.subscriber()?;
/// sub.subscribe(["news"]).await?;
/// sub.psubscribe(["alerts.*"]).await?;
/// client.call::<i64>(cmd!("PUBLISH", "news", "hello")).await?;
/// if let Some(msg) = sub.next_message(Some(Duration::from_secs(1))).await? {
///     println!("{:?} on {:?}", msg.payload_str(), msg.channel_str());
/// }
/// while let Some(item) = sub.next().await {
///     match item {
///         Ok(msg) => println!("{:?}", msg.payload_str()),
///         Err(Error::Lagged { dropped }) => eprintln!("{dropped} messages dropped"),
///         Err(e) => eprintln!("{e}"), // lost, reconnecting: refresh what the messages cache
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Subscriber {
    conn: Client,
    inbox: InboxRx,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A subscriber on a new connection with this client's configuration, on this client's
    /// engine.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] when the engine cannot take another connection.
    pub fn subscriber(&self) -> Result<Subscriber> {
        let config = self.config().clone();
        let (tx, rx) = inbox(config.subscriber_queue_limit);
        Subscriber::on(self.sibling(config)?, tx, rx)
    }

    /// A subscriber on a new connection whose messages go to a queue shared with other
    /// connections (a cluster's sharded subscriber: one per node, one reader).
    pub(crate) fn subscriber_into(&self, tx: InboxTx, rx: InboxRx) -> Result<Subscriber> {
        Subscriber::on(self.sibling(self.config().clone())?, tx, rx)
    }
}

impl Subscriber {
    /// A subscriber with the given configuration.
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn new(config: Config) -> Result<Subscriber> {
        let (tx, rx) = inbox(config.subscriber_queue_limit);
        Subscriber::on(Client::new(config)?, tx, rx)
    }

    /// A subscriber on `conn`, a connection nothing else uses.
    fn on(conn: Client, tx: InboxTx, rx: InboxRx) -> Result<Subscriber> {
        conn.link().make_subscriber(tx);
        Ok(Subscriber { conn, inbox: rx })
    }

    async fn change(&self, kind: SubKind, subscribe: bool, names: Vec<Bytes>) -> Result<()> {
        if subscribe && names.is_empty() {
            return Err(Error::client(
                "subscribe needs at least one channel or pattern",
            ));
        }
        let deadline = self
            .conn
            .config()
            .command_timeout
            .map(|t| Instant::now() + t);
        let payload = Payload::Subscribe {
            kind,
            subscribe,
            names,
        };
        self.conn.link().reply(payload, deadline).await.map(drop)
    }

    /// `SUBSCRIBE`: resolves once the server confirmed every channel.
    ///
    /// The subscriber connects on the first (un)subscribe. While it is down and reconnecting
    /// (it holds subscriptions), a call waits for the reconnect until the command timeout.
    /// Subscriptions are kept by the subscriber, not only by the server: one whose call failed
    /// with [`Error::Connection`] because the connection was lost meanwhile is still restored on
    /// the reconnect (unsubscribe to drop it). A subscribe the server refuses (an ACL `NOPERM`)
    /// fails with its error and adds nothing; if restoring subscriptions after a reconnect is
    /// refused, the reader gets that error ([`Error::Server`]) in order with the messages, and
    /// those subscriptions are no longer held.
    ///
    /// # Errors
    /// [`Error::Timeout`] when it is not confirmed (or the subscriber not reconnected) within the
    /// command timeout; [`Error::Connection`] when the connection is lost with the call in flight,
    /// or when a first connection cannot be made within the connect timeout; [`Error::Client`]
    /// for an empty list.
    pub async fn subscribe<I, S>(&self, channels: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.change(SubKind::Channel, true, names(channels)).await
    }

    /// `PSUBSCRIBE`: subscribes to every channel matching the glob patterns.
    pub async fn psubscribe<I, S>(&self, patterns: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.change(SubKind::Pattern, true, names(patterns)).await
    }

    /// `SSUBSCRIBE`: shard channels (Redis 7+).
    pub async fn ssubscribe<I, S>(&self, channels: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.change(SubKind::Shard, true, names(channels)).await
    }

    /// `UNSUBSCRIBE`: from the given channels, or from all with an empty list.
    pub async fn unsubscribe<I, S>(&self, channels: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.change(SubKind::Channel, false, names(channels)).await
    }

    /// `PUNSUBSCRIBE`: from the given patterns, or from all with an empty list.
    pub async fn punsubscribe<I, S>(&self, patterns: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.change(SubKind::Pattern, false, names(patterns)).await
    }

    /// `SUNSUBSCRIBE`: from the given shard channels, or from all with an empty list.
    pub async fn sunsubscribe<I, S>(&self, channels: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.change(SubKind::Shard, false, names(channels)).await
    }

    /// The next message, or the next report (see [`Subscriber`]): `Ok(Some(message))`, or
    /// `Err` once for a lost connection ([`Error::Connection`]) and once for each run of dropped
    /// messages ([`Error::Lagged`]).
    ///
    /// With a timeout, when none came in time: `Ok(None)` while the subscriber is connected (or
    /// holds no subscriptions), but `Err(Error::Connection)`, saying why, while it is down and
    /// reconnecting, so a down subscriber never looks idle (tornadis `pubsub_pop_message`).
    /// Without a timeout it waits as long as it takes.
    ///
    /// # Errors
    /// As above; and `Err(Error::Connection)` every time once the engine driving the
    /// subscriber's connection has stopped (on the task engine: its runtime shut down).
    pub async fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let mut timer = timeout.map(|t| {
            let at = Instant::now() + crate::timer::bounded(t);
            self.conn.placement().sleep_until(at)
        });
        poll_fn(|cx| {
            if let Poll::Ready(item) = self.inbox.poll_next(cx) {
                return Poll::Ready(item.ok_or_else(stopped)?.map(Some));
            }
            match timer.as_mut().map(|t| Pin::new(t).poll(cx)) {
                Some(Poll::Ready(_)) => Poll::Ready(match self.inbox.down() {
                    Some(down) => Err(down),
                    None => Ok(None),
                }),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// True while the subscriber's connection is up.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    /// The subscriber connection's counters (see [`Stats`]): its `(UN)SUBSCRIBE` calls, the
    /// bytes of the messages it received, its reconnects.
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }

    /// How many messages are queued, unread.
    pub fn queued(&self) -> usize {
        self.inbox.queued().0
    }

    /// How many messages were dropped so far because the queue was full (each run of them is
    /// also reported once as [`Error::Lagged`]).
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped()
    }

    /// The connection, for `PING` and the like. Calls on it pass the same routing gate as any
    /// [`Client`]'s: `SUBSCRIBE` and the rest of its family are refused there (use the methods
    /// above, which the subscriber restores after a reconnect).
    pub fn connection(&self) -> &Client {
        &self.conn
    }
}

fn stopped() -> Error {
    Error::connection(
        "the engine driving this subscriber's connection has stopped: on Engine::Task, the \
         tokio runtime it was made on has shut down (a subscriber cannot outlive it) or cannot \
         run connections (it needs its IO and time drivers: Builder::enable_all); make a new \
         subscriber",
    )
}

/// Channel or pattern names as owned bytes.
pub(crate) fn names<I, S>(items: I) -> Vec<Bytes>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    items
        .into_iter()
        .map(|s| Bytes::copy_from_slice(s.as_ref()))
        .collect()
}

/// Messages and reports in order (see [`Subscriber`]); the stream ends when the engine driving
/// the subscriber's connection has stopped (on the task engine: its runtime shut down).
impl futures_core::Stream for Subscriber {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        self.inbox.poll_next(cx)
    }
}
