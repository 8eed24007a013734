//! Host name lookups for the ring engine: the shared off-thread lookup
//! ([`engine::resolve`](crate::engine::resolve)), whose result comes back to the link's slot
//! through the hub, so a slow resolver stalls no other link.

use super::hub::{Hub, SlotId};
use super::sock::Target;
use crate::config::Addr;
use crate::engine::resolve;
use std::io;
use std::sync::Arc;

/// Looks `addr` up on a new thread and posts the result for `id`, tagged with `ticket` (the
/// engine ignores a result whose ticket is no longer the slot's current one). A unix path needs
/// no lookup: it is posted at once.
///
/// # Errors
///
/// The thread could not be started.
pub(super) fn spawn(hub: Arc<Hub>, id: SlotId, ticket: u64, addr: &Addr) -> io::Result<()> {
    match addr {
        Addr::Tcp { host, port } => resolve::spawn(host.clone(), *port, move |found| {
            let found = found.map(|all| all.into_iter().map(Target::Ip).collect());
            hub.post(|inbox| inbox.resolved.push((id, ticket, found)));
        }),
        Addr::Unix(path) => {
            let found = Ok(vec![Target::Unix(path.clone())]);
            hub.post(|inbox| inbox.resolved.push((id, ticket, found)));
            Ok(())
        }
    }
}
