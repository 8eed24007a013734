//! [`Subscriber`]: pub/sub on a connection of its own (tornadis `PubSubClient`).

use crate::conn::{Payload, Request, Sink};
use crate::driver::Msg;
use crate::{Client, Config, Error, Result};
use bytes::Bytes;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub use crate::conn::{Message, SubKind};

/// A pub/sub subscriber on a connection of its own.
///
/// Messages arrive as a [`Stream`](futures_core::Stream) of [`Message`]s, or one at a time from
/// [`Subscriber::next_message`]. After a lost connection the subscriber reconnects by itself and
/// subscribes again to everything it had; messages published while it was away are lost (pub/sub
/// keeps no history).
///
/// ```no_run
/// use ringdis::{cmd, Client};
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
/// # Ok(()) }
/// ```
pub struct Subscriber {
    conn: Client,
    messages: mpsc::UnboundedReceiver<Message>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A subscriber on a new connection with this client's configuration.
    pub fn subscriber(&self) -> Result<Subscriber> {
        Subscriber::new(self.config().clone())
    }
}

impl Subscriber {
    /// A subscriber with the given configuration.
    pub fn new(config: Config) -> Result<Subscriber> {
        let conn = Client::new(config)?;
        let (tx, messages) = mpsc::unbounded_channel();
        conn.send(Msg::MakeSubscriber(tx));
        Ok(Subscriber { conn, messages })
    }

    async fn change(&self, kind: SubKind, subscribe: bool, names: Vec<Bytes>) -> Result<()> {
        if subscribe && names.is_empty() {
            return Err(Error::client(
                "subscribe needs at least one channel or pattern",
            ));
        }
        let (tx, rx) = oneshot::channel();
        let deadline = self
            .conn
            .config()
            .command_timeout
            .map(|t| Instant::now() + t);
        self.conn.send(Msg::Call(Request {
            payload: Payload::Subscribe {
                kind,
                subscribe,
                names,
            },
            sink: Sink::Oneshot(tx),
            deadline,
        }));
        match rx.await {
            Ok(reply) => reply.map(drop),
            Err(_) => Err(Error::connection("the subscriber's driver has stopped")),
        }
    }

    /// `SUBSCRIBE`: resolves once the server confirmed every channel.
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

    /// The next message. With a timeout, `Ok(None)` when none came in time (tornadis
    /// `pubsub_pop_message`); without, it waits as long as it takes. An error means the
    /// subscriber has stopped.
    pub async fn next_message(&mut self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let mut timer = timeout.map(|t| crate::timer::sleep_until(Instant::now() + t));
        poll_fn(|cx| {
            if let Poll::Ready(m) = self.messages.poll_recv(cx) {
                return Poll::Ready(m.map(Some).ok_or_else(stopped));
            }
            match timer.as_mut().map(|t| Pin::new(t).poll(cx)) {
                Some(Poll::Ready(_)) => Poll::Ready(Ok(None)),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// True while the subscriber's connection is up.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    /// The connection, for `PING` and the like. Calls on it pass the same routing gate as any
    /// [`Client`]'s: `SUBSCRIBE` and the rest of its family are refused there (use the methods
    /// above, which the subscriber restores after a reconnect).
    pub fn connection(&self) -> &Client {
        &self.conn
    }
}

fn stopped() -> Error {
    Error::connection("the subscriber's driver has stopped")
}

fn names<I, S>(items: I) -> Vec<Bytes>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    items
        .into_iter()
        .map(|s| Bytes::copy_from_slice(s.as_ref()))
        .collect()
}

impl futures_core::Stream for Subscriber {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.poll_recv(cx)
    }
}
