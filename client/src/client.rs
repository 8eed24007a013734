//! [`Client`]: the handle users call commands through.

use crate::config::{Config, Transport};
use crate::conn::{Callback, Payload, Request, Sink};
use crate::driver::{self, Msg, Shared};
use crate::{Cmd, Error, FromRedis, Result, Value};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A Redis client: one multiplexed connection, shared by every clone.
///
/// `Client` is `Clone + Send + Sync` and cheap to clone. Calls from any number of tasks or
/// threads go out together: whatever was queued while the previous write was in progress leaves
/// in the next single write, and replies are matched to callers in order. The futures it returns
/// need no particular runtime: they work under tokio (either flavour), inside `tokio_uring`, or
/// with `futures::executor::block_on`.
///
/// Connection handling follows tornadis: with autoconnect (the default) the first call connects
/// and a call after a lost connection reconnects, retrying with capped exponential backoff until
/// the connect timeout. `AUTH`, `HELLO` and `SELECT` are sent again on every reconnect. A call in
/// flight when the connection is lost fails with [`Error::Connection`]; it is never retried
/// silently and its reply can never reach another caller.
///
/// ```no_run
/// use ringdis::{cmd, Client};
///
/// # async fn demo() -> ringdis::Result<()> {
/// let client = Client::open("redis://127.0.0.1:6379")?;
/// client.call::<()>(cmd!("SET", "greeting", "hello")).await?;
/// let greeting: String = client.call(cmd!("GET", "greeting")).await?;
/// assert_eq!(greeting, "hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    transport: Transport,
    command_timeout: Option<Duration>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.inner.transport)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// A client for a connection URL (see [`Config::from_url`]). Nothing is connected yet: with
    /// autoconnect the first call connects.
    pub fn open(url: &str) -> Result<Client> {
        Client::new(Config::from_url(url)?)
    }

    /// A client with the given configuration.
    pub fn new(config: Config) -> Result<Client> {
        let choice = Transport::from_env()?.unwrap_or(config.transport);
        let command_timeout = config.command_timeout;
        let config = Arc::new(config);
        let (shared, transport) = match choice {
            Transport::Auto | Transport::Epoll => (driver::epoll::spawn(config)?, Transport::Epoll),
            Transport::IoUring => {
                return Err(Error::client(
                    "the io_uring transport is not available in this build",
                ))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                transport,
                command_timeout,
            }),
        })
    }

    /// Sends a command and decodes its reply into `T`.
    ///
    /// The command is queued at once; the returned future resolves to the reply. Dropping the
    /// future abandons the reply (it is still read and discarded) and affects no other call.
    pub fn call<T: FromRedis>(&self, cmd: Cmd) -> Call<T> {
        self.submit_call(Payload::One(cmd), self.inner.command_timeout)
    }

    pub(crate) fn submit_call<T: FromRedis>(
        &self,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> Call<T> {
        let (tx, rx) = oneshot::channel();
        self.submit(payload, Sink::Oneshot(tx), timeout);
        Call {
            rx,
            _type: PhantomData,
        }
    }

    fn submit(&self, payload: Payload, sink: Sink, timeout: Option<Duration>) {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.inner.shared.send(Msg::Call(Request {
            payload,
            sink,
            deadline,
        }));
    }

    /// Sends a command without waiting; `callback`, if any, gets the reply.
    ///
    /// The callback runs on the client's driver thread: keep it short and never block in it (a
    /// panic in it is caught). With no callback the reply is still read, then dropped, so the
    /// stream stays in step.
    ///
    /// ```no_run
    /// # let client = ringdis::Client::open("redis://127.0.0.1:6379").unwrap();
    /// use ringdis::cmd;
    /// client.async_call(cmd!("HSET", "key", "field", "val"), Some(|reply: ringdis::Result<ringdis::Value>| {
    ///     println!("HSET answered {reply:?}");
    /// }));
    /// client.async_call(cmd!("INCR", "hits"), None::<fn(_)>);
    /// ```
    pub fn async_call<F>(&self, cmd: Cmd, callback: Option<F>)
    where
        F: FnOnce(Result<Value>) + Send + 'static,
    {
        let sink = match callback {
            Some(cb) => Sink::Callback(Box::new(cb) as Callback),
            None => Sink::Discard,
        };
        self.submit(Payload::One(cmd), sink, self.inner.command_timeout);
    }

    /// Connects now (and runs the handshake). `Ok(true)` once ready; safe to call when already
    /// connected. Needed only with autoconnect off.
    pub async fn connect(&self) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        self.inner.shared.send(Msg::Connect(tx));
        rx.await.unwrap_or_else(|_| Err(driver_gone()))
    }

    /// Closes the connection. Calls in flight fail with [`Error::Connection`]. Safe to call
    /// when not connected. With autoconnect, the next call connects again.
    pub async fn disconnect(&self) {
        let (tx, rx) = oneshot::channel();
        self.inner.shared.send(Msg::Disconnect(tx));
        let _ = rx.await;
    }

    /// Sets the handler for RESP3 push frames that are not replies, such as `CLIENT TRACKING`
    /// invalidations. Pushes never disturb reply matching; with no handler they are dropped.
    /// The handler runs on the driver thread: keep it short (send the value to a channel).
    ///
    /// ```no_run
    /// # let client = ringdis::Client::open("redis://127.0.0.1:6379").unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// client.on_push(move |push| {
    ///     let _ = tx.send(push);
    /// });
    /// ```
    pub fn on_push<F>(&self, handler: F)
    where
        F: FnMut(Value) + Send + 'static,
    {
        self.inner
            .shared
            .send(Msg::SetPushHandler(Some(Box::new(handler))));
    }

    /// True while the connection is up and ready for calls.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.is_connected()
    }

    /// The transport carrying this client's connection: [`Transport::IoUring`] or
    /// [`Transport::Epoll`] (never `Auto`).
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }
}

fn driver_gone() -> Error {
    Error::connection("the client's driver has stopped")
}

/// The future of one call: resolves to the reply decoded as `T`.
///
/// It is `Send`, `Unpin` and `'static`, holds no reference to the client, and needs no
/// particular async runtime.
#[must_use = "a call does nothing useful unless awaited (use async_call to fire and forget)"]
pub struct Call<T> {
    rx: oneshot::Receiver<Result<Value>>,
    _type: PhantomData<fn() -> T>,
}

impl<T: FromRedis> Future for Call<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(value))) => Poll::Ready(T::from_redis(value)),
            Poll::Ready(Ok(Err(e))) => Poll::Ready(Err(e)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(driver_gone())),
        }
    }
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}
