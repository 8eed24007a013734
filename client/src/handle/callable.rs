//! [`Callable`]: what [`Client::call`](crate::Client::call) and
//! [`Client::async_call`](crate::Client::async_call) take, and what the routing gate makes of
//! it ([`Prepared`]).

use crate::conn::Payload;
use crate::route::Route;
use crate::{Cmd, Result, Value};

/// What [`Client::call`](crate::Client::call) and
/// [`Client::async_call`](crate::Client::async_call) send: a [`Cmd`] or a
/// [`Pipeline`](crate::Pipeline) (by value or by reference).
///
/// ```no_run
/// use ringdis::{cmd, Client};
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// let n: i64 = client.call(cmd!("INCR", "n")).await?;
/// let mut p = client.pipeline();
/// p.add(cmd!("INCR", "n")).add(cmd!("INCR", "n"));
/// let (a, b): (i64, i64) = client.call(&p).await?;
/// # Ok(()) }
/// ```
pub trait Callable: sealed::Sealed {
    /// What to send and where, as the routing gate decides; or why not.
    #[doc(hidden)]
    fn prepare(self) -> Result<Prepared>;

    /// The commands themselves, for a cluster client to route each to its node.
    #[doc(hidden)]
    fn into_request(self) -> Request;

    /// The commands it holds, in order (a transaction's without `MULTI` and `EXEC`): a
    /// caching client drops the entries of the keys its writes name before sending it.
    #[doc(hidden)]
    fn cmds(&self) -> &[Cmd];
}

/// What a [`Callable`] holds, as a cluster client routes it: one command, or the commands of a
/// pipeline or transaction.
#[doc(hidden)]
#[derive(Debug)]
pub enum Request {
    /// One command.
    One(Cmd),
    /// A pipeline's commands, in order; `transaction` for `MULTI` … `EXEC`.
    Many {
        /// The commands.
        cmds: Vec<Cmd>,
        /// Whether they run as a transaction.
        transaction: bool,
    },
}

/// What a [`Callable`] puts on the wire, where the gate sends it, and what turns its replies
/// into the caller's value.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct Prepared {
    pub(crate) payload: Payload,
    pub(crate) finish: Finish,
    pub(crate) route: Route,
}

/// What turns a call's reply into the value the caller decodes (a transaction's reply is
/// `EXEC`'s).
pub(crate) type Finish = fn(Value) -> Result<Value>;

/// Only this crate's types are [`Callable`] (the pipeline's impls are in `pipeline.rs`).
pub(crate) mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Cmd {}
}

impl Callable for Cmd {
    fn prepare(self) -> Result<Prepared> {
        let route = crate::route::route(&self)?;
        Ok(Prepared {
            payload: Payload::One(self),
            finish: Ok,
            route,
        })
    }

    fn into_request(self) -> Request {
        Request::One(self)
    }

    fn cmds(&self) -> &[Cmd] {
        std::slice::from_ref(self)
    }
}
