//! Not a public API (`ringdis::__route`, `#[doc(hidden)]`): the crate-internal routing
//! decisions, for the integration tests that check them against a real cluster node
//! (tests/tests/cluster_spec.rs). May change with any release.

use crate::{Cmd, Result};

/// [`cmd_slot`](super::slot::cmd_slot): the slot of a command, `None` without keys, CROSSSLOT
/// across slots.
///
/// # Errors
///
/// As `cmd_slot`.
pub fn cmd_slot(cmd: &Cmd) -> Result<Option<u16>> {
    super::slot::cmd_slot(cmd)
}
