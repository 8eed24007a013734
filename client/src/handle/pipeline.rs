//! [`Pipeline`]: several commands in one write, replies in order (tornadis `Pipeline`); and
//! transactions, which wrap a pipeline in `MULTI` … `EXEC`.

use crate::callable::{Callable, Finish, Prepared, Request};
use crate::client::Call;
use crate::conn::Payload;
use crate::{Client, ClusterClient, Cmd, Error, FromRedis, Pool, Result, Value};

/// Commands sent together in one write; their replies come back together, in order, even while
/// other callers share the connection.
///
/// `query::<T>()` decodes the replies as one array: into a tuple, a `Vec`, or
/// `Vec<Result<Value>>` to see an error in the middle without losing the replies around it.
/// A transaction ([`Client::transaction`]) sends the same commands inside `MULTI` … `EXEC`, as
/// one unit on the wire: no other caller's command can land inside it.
///
/// ```no_run
/// use ringdis::{cmd, Client, Result, Value};
///
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// let mut p = client.pipeline();
/// p.add(cmd!("SET", "a", 1)).add(cmd!("INCR", "a")).add(cmd!("GET", "a"));
/// let ((), n, a): ((), i64, String) = p.query().await?;
/// assert_eq!((n, a.as_str()), (2, "2"));
///
/// // See each reply, errors included.
/// let mut p = client.pipeline();
/// p.add(cmd!("INCR", "a")).add(cmd!("LPUSH", "a", "x")).add(cmd!("GET", "a"));
/// let each: Vec<Result<Value>> = p.query().await?;
/// assert!(each[1].is_err());
///
/// // A transaction: its replies are EXEC's.
/// let mut t = client.transaction();
/// t.add(cmd!("INCR", "a")).add(cmd!("INCR", "a"));
/// let (x, y): (i64, i64) = t.query().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Pipeline {
    via: Via,
    cmds: Vec<Cmd>,
    transaction: bool,
}

/// Where a pipeline is sent.
#[derive(Clone, Debug)]
enum Via {
    Client(Client),
    /// A client checked out of the pool for the one call.
    Pool(Pool),
    /// A cluster: each command goes to the node of its slot (a transaction's, all in one).
    Cluster(ClusterClient),
}

impl Client {
    /// An empty pipeline on this client's connection.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::via(Via::Client(self.clone()))
    }

    /// An empty transaction (`MULTI` … `EXEC`) on this client's connection.
    pub fn transaction(&self) -> Pipeline {
        Pipeline {
            transaction: true,
            ..self.pipeline()
        }
    }
}

impl Pool {
    /// An empty pipeline, sent on a client checked out for it alone (see [`Pool::call`]).
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::via(Via::Pool(self.clone()))
    }

    /// An empty transaction (`MULTI` … `EXEC`), sent on a client checked out for it alone.
    pub fn transaction(&self) -> Pipeline {
        Pipeline {
            transaction: true,
            ..self.pipeline()
        }
    }
}

impl ClusterClient {
    /// An empty pipeline: its commands go to their slots' nodes, one batch per node, all at
    /// once, and their replies come back in the order they were added (see
    /// [`ClusterClient::call`]).
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::via(Via::Cluster(self.clone()))
    }

    /// An empty transaction (`MULTI` … `EXEC`): every key of its commands must be in one slot
    /// (else [`Error::Client`] naming `CROSSSLOT`, before anything is sent); it runs on the
    /// node owning that slot.
    pub fn transaction(&self) -> Pipeline {
        Pipeline {
            transaction: true,
            ..self.pipeline()
        }
    }
}

impl Pipeline {
    fn via(via: Via) -> Pipeline {
        Pipeline {
            via,
            cmds: Vec::new(),
            transaction: false,
        }
    }

    /// Adds a command.
    pub fn add(&mut self, cmd: Cmd) -> &mut Pipeline {
        self.cmds.push(cmd);
        self
    }

    /// How many commands it holds.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// True for a transaction.
    pub fn is_transaction(&self) -> bool {
        self.transaction
    }

    /// The commands, in order.
    pub fn cmds(&self) -> &[Cmd] {
        &self.cmds
    }

    /// The last command, for the command builder editing it in place.
    pub(crate) fn last_cmd_mut(&mut self) -> Option<&mut Cmd> {
        self.cmds.last_mut()
    }

    /// Takes the last command back out (a builder's `into_cmd`).
    pub(crate) fn pop_cmd(&mut self) -> Option<Cmd> {
        self.cmds.pop()
    }

    /// Sends the pipeline and decodes the replies (for a transaction, `EXEC`'s reply) as `T`.
    /// An empty pipeline is an [`Error::Client`].
    pub fn query<T: FromRedis>(&self) -> Call<T> {
        match &self.via {
            Via::Client(client) => client.call(self),
            Via::Pool(pool) => pool.call(self),
            Via::Cluster(cluster) => cluster.call(self),
        }
    }

    /// The payload to send and where the routing gate sends it, or why it may not be sent.
    pub(crate) fn payload(&self) -> Result<(Payload, Finish, crate::route::Route)> {
        let route = crate::route::route_pipeline(&self.cmds, self.transaction)?;
        if !self.transaction {
            return Ok((Payload::batch(&self.cmds), Ok, route));
        }
        let (multi, exec) = (Cmd::new("MULTI"), Cmd::new("EXEC"));
        let all = std::iter::once(&multi)
            .chain(&self.cmds)
            .chain(std::iter::once(&exec));
        Ok((Payload::batch(all), exec_reply, route))
    }
}

impl crate::callable::sealed::Sealed for Pipeline {}
impl crate::callable::sealed::Sealed for &Pipeline {}
impl crate::callable::sealed::Sealed for &mut Pipeline {}

impl Callable for &Pipeline {
    fn prepare(self) -> Result<Prepared> {
        let (payload, finish, route) = Pipeline::payload(self)?;
        Ok(Prepared {
            payload,
            finish,
            route,
        })
    }

    fn into_request(self) -> Request {
        Request::Many {
            cmds: self.cmds.clone(),
            transaction: self.transaction,
        }
    }
    fn cmds(&self) -> &[Cmd] {
        &self.cmds
    }
}

impl Callable for &mut Pipeline {
    fn prepare(self) -> Result<Prepared> {
        (&*self).prepare()
    }

    fn into_request(self) -> Request {
        (&*self).into_request()
    }
    fn cmds(&self) -> &[Cmd] {
        &self.cmds
    }
}

impl Callable for Pipeline {
    fn prepare(self) -> Result<Prepared> {
        (&self).prepare()
    }

    fn into_request(self) -> Request {
        Request::Many {
            cmds: self.cmds,
            transaction: self.transaction,
        }
    }
    fn cmds(&self) -> &[Cmd] {
        &self.cmds
    }
}

/// A transaction's replies are `OK`, `QUEUED`…, then `EXEC`'s: an array of the commands'
/// replies, nil when a watched key changed, or an `EXECABORT` error when a command was refused.
pub(crate) fn exec_reply(replies: Value) -> Result<Value> {
    let Value::Array(mut replies) = replies else {
        return Err(Error::protocol("a transaction's replies are not an array"));
    };
    match replies.pop() {
        Some(Value::Error(e)) => {
            // EXECABORT says little; the refused command's own error says why.
            let why = replies.into_iter().find_map(|r| match r {
                Value::Error(e) => Some(e),
                _ => None,
            });
            Err(match why {
                Some(cause) => Error::Server {
                    kind: e.kind,
                    message: format!("{} (first refused command: {cause})", e.message),
                },
                None => e.into(),
            })
        }
        Some(exec) => Ok(exec),
        None => Err(Error::protocol("a transaction got no replies")),
    }
}

impl FromRedis for Result<Value> {
    /// Keeps an error reply as an `Err` item instead of failing the whole decode, so
    /// `Vec<Result<Value>>` shows each reply of a pipeline.
    fn from_redis(value: Value) -> Result<Self> {
        match value {
            Value::Error(e) => Ok(Err(e.into())),
            v => Ok(Ok(v)),
        }
    }
}

/// How many times [`Client::watch_transaction`] runs the transaction before giving up.
pub const WATCH_ATTEMPTS: usize = 16;

impl Client {
    /// An optimistic transaction: `WATCH keys`, let `build` read what it needs and return the
    /// transaction to run, then `EXEC`. When a watched key changed in between (`EXEC` answers
    /// nil) it all runs again, up to [`WATCH_ATTEMPTS`] times; after that the error is an
    /// [`Error::Client`] saying so.
    ///
    /// `WATCH` is connection state, so this runs on a connection of its own, which `build` gets
    /// to read with and to build the transaction on. That connection never reconnects by itself
    /// (a reconnect would drop the `WATCH` and let `EXEC` run unwatched): once it is lost, every
    /// call on it fails with [`Error::Connection`], and when that happens before `EXEC` was sent
    /// the attempt runs again, `build` included, on a new connection (counted in
    /// [`WATCH_ATTEMPTS`]). It uses this client's configuration (database, credentials, name).
    ///
    /// # Errors
    ///
    /// What `build` returns; [`Error::Connection`] when the connection is lost while `EXEC`
    /// is in flight (it may or may not have run) or could not be made; an [`Error::Client`] after
    /// [`WATCH_ATTEMPTS`] attempts.
    ///
    /// ```no_run
    /// use ringdis::{cmd, Client};
    ///
    /// # async fn demo(client: Client) -> ringdis::Result<()> {
    /// // Double a counter atomically, without a script.
    /// let (doubled,): (i64,) = client
    ///     .watch_transaction("counter", |conn| async move {
    ///         let n: Option<i64> = conn.call(cmd!("GET", "counter")).await?;
    ///         let mut tx = conn.transaction();
    ///         tx.add(cmd!("SET", "counter", n.unwrap_or(1) * 2)).add(cmd!("GET", "counter"));
    ///         Ok(tx)
    ///     })
    ///     .await
    ///     .map(|((), n): ((), i64)| (n,))?;
    /// # Ok(()) }
    /// ```
    pub async fn watch_transaction<K, F, Fut, T>(&self, keys: K, mut build: F) -> Result<T>
    where
        K: crate::ToArg,
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<Pipeline>>,
        T: FromRedis,
    {
        let watch = Cmd::new("WATCH").arg(&keys);
        let mut conn: Option<Client> = None;
        let mut lost_last: Option<Error> = None;
        for _ in 0..WATCH_ATTEMPTS {
            let conn = match conn.as_ref().filter(|c| c.is_connected()) {
                Some(c) => c.clone(),
                None => {
                    let c = self.watching()?;
                    // With `Config::tracking` it tracks what `build` reads: the invalidations
                    // (and the flush when it closes) are this client's, as for every dedicated
                    // connection.
                    self.share_pushes_with(&c);
                    c.connect_now().await?;
                    conn.insert(c).clone()
                }
            };
            // Lost: the connection went away, with its WATCH; nothing of this attempt ran.
            let lost = |e: &Error| e.is_connection() && !conn.is_connected();
            if let Err(e) = conn.call_unchecked::<()>(watch.clone()).await {
                if lost(&e) {
                    lost_last = Some(e);
                    continue;
                }
                return Err(e);
            }
            let mut tx = match build(conn.clone()).await {
                Ok(tx) => tx,
                Err(e) if lost(&e) => {
                    lost_last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            tx.transaction = true;
            tx.via = Via::Client(conn.clone());
            // The watching connection caches nothing: this client's cache drops what the
            // transaction writes, as if it went through this client.
            let written = self.invalidate_writes(&tx.cmds);
            if !conn.is_connected() {
                lost_last = Some(Error::connection(
                    "the watching connection was lost before EXEC",
                ));
                continue;
            }
            let exec = tx.query::<Value>().await;
            // What a read on this client's connection stored while EXEC was on its way may
            // predate it: dropped again before the reply is handed over.
            if let Some(written) = written {
                written.replied();
            }
            let exec = exec?;
            if !exec.is_nil() {
                return T::from_redis(exec);
            }
            lost_last = None;
        }
        if let Some(e) = lost_last {
            return Err(e);
        }
        Err(Error::client(format!(
            "transaction aborted {WATCH_ATTEMPTS} times: a watched key kept changing"
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::{cmd, Client, Config};

    #[test]
    fn a_pipeline_hides_its_commands_secrets() {
        // A pipeline (and so a transaction) shows its commands as `Cmd` does.
        let client = Client::new(Config::new()).unwrap();
        let mut p = client.pipeline();
        p.add(cmd!("AUTH", "pw9"));
        assert!(!format!("{p:?}").contains("pw9"));
        let mut t = client.transaction();
        t.add(cmd!("AUTH", "user", "pw10"));
        assert!(!format!("{t:?}").contains("pw10"));
    }
}
