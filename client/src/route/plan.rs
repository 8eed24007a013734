//! Where a command goes in a cluster, from its keys and the spec's tips: the one decision the
//! cluster client makes per command before sending it.

use super::slot::cmd_slot;
use super::split::{split, Split};
use super::tips::{routing, Tips};
use crate::{Cmd, Result};

/// Where a command goes in a cluster.
#[derive(Debug)]
pub(crate) enum Plan {
    /// To the node owning this slot: the command's keys are all in it, or it was routed there
    /// by hand ([`Cmd::route_slot`], [`Cmd::route_key`]).
    Slot(u16),
    /// Split: each part to its slot, the replies made one by [`Split::merge`].
    Split(Split),
    /// No key: where its tips say (`request`: `Default` is any primary, `AllShards` every
    /// primary, `AllNodes` every node, `Special` by name), the replies made one by
    /// `aggregate(tips.response, …)`. A hand-built command the spec does not list and with no
    /// key marked ([`Cmd::key`]) or slot set lands here with the default tips.
    Keyless(Tips),
}

/// Where `cmd` goes. A command whose keys are marked (every generated one) and in one slot is
/// settled without a table search.
///
/// # Errors
///
/// [`Error::Client`](crate::Error::Client) naming `CROSSSLOT` when the keys span slots and the
/// command cannot be split (see `slot::cmd_slot`), or the arguments of a split command do not
/// fit its layout (see `split::split`).
pub(crate) fn plan(cmd: &Cmd) -> Result<Plan> {
    let cross = match cmd_slot(cmd) {
        Ok(Some(slot)) => return Ok(Plan::Slot(slot)),
        Ok(None) => None,
        Err(e) => Some(e),
    };
    let r = routing(cmd);
    match (split(cmd, r)?, cross) {
        (Some(s), _) if s.parts.len() == 1 => Ok(Plan::Slot(s.parts[0].0)),
        (Some(s), _) => Ok(Plan::Split(s)),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(Plan::Keyless(Tips {
            request: r.request,
            response: r.response,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tips::{RequestPolicy, ResponsePolicy};
    use super::*;
    use crate::{cmd, slot, Error};

    fn slot_of(p: Result<Plan>) -> Option<u16> {
        match p {
            Ok(Plan::Slot(s)) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn plans() {
        // Marked keys; an explicit slot; a hand-built MGET in one slot (keys from the spec).
        assert_eq!(slot_of(plan(&Cmd::new("GET").key("foo"))), Some(12182));
        assert_eq!(
            slot_of(plan(&cmd!("MODULE.X", "a").route_key("bar"))),
            Some(5061)
        );
        assert_eq!(
            slot_of(plan(&cmd!("MGET", "{u}1", "{u}2"))),
            Some(slot(b"u"))
        );
        // Split, marked or not.
        for c in [
            cmd!("MGET", "foo", "bar"),
            Cmd::new("MGET").key("foo").key("bar"),
        ] {
            match plan(&c) {
                Ok(Plan::Split(s)) => assert_eq!(s.parts.len(), 2),
                other => panic!("{other:?}"),
            }
        }
        // Not splittable across slots: CROSSSLOT.
        match plan(&Cmd::new("MSETNX").key("foo").arg(1).key("bar").arg(2)) {
            Err(Error::Client { message, .. }) => assert!(message.starts_with("CROSSSLOT")),
            other => panic!("{other:?}"),
        }
        // Keyless: the tips.
        match plan(&cmd!("DBSIZE")) {
            Ok(Plan::Keyless(t)) => {
                assert_eq!(t.request, RequestPolicy::AllShards);
                assert_eq!(t.response, ResponsePolicy::AggSum);
            }
            other => panic!("{other:?}"),
        }
        match plan(&cmd!("MODULE.X", "a")) {
            Ok(Plan::Keyless(t)) => assert_eq!(t, Tips::default()),
            other => panic!("{other:?}"),
        }
        // Bad arguments of a split command.
        assert!(plan(&cmd!("MSET", "a", 1, "b")).is_err());
    }
}
