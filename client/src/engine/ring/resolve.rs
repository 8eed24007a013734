//! Host name lookups off the engine thread: one short-lived thread per lookup, whose result
//! comes back to the link's slot through the hub, so a slow resolver stalls no other link.

use super::hub::{Hub, SlotId};
use super::sock;
use crate::config::Addr;
use std::io;
use std::sync::Arc;

/// Looks `addr` up on a new thread and posts the result for `id`, tagged with `ticket` (the
/// engine ignores a result whose ticket is no longer the slot's current one).
///
/// # Errors
///
/// The thread could not be started.
pub(super) fn spawn(hub: Arc<Hub>, id: SlotId, ticket: u64, addr: Addr) -> io::Result<()> {
    std::thread::Builder::new()
        .name("ringdis-resolve".to_owned())
        .spawn(move || {
            let found = sock::resolve(&addr);
            hub.post(|inbox| inbox.resolved.push((id, ticket, found)));
        })
        .map(drop)
}
