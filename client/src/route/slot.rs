//! Cluster slots: which of the 16384 slots a key lives in, and the one slot of a command.
//!
//! A key's slot is CRC16-XMODEM of the key modulo 16384, as the Redis Cluster specification
//! says, except that a key holding a *hash tag* hashes only the tag: the bytes between the first
//! `{` and the first `}` after it, when there is at least one byte between them. So
//! `{user1000}.following` and `{user1000}.followers` share a slot, while `foo{}{bar}` hashes
//! the whole key.

use super::keys::spec_keys;
use super::tips::routing;
use crate::{Cmd, Error, Result};

/// How many slots a cluster has.
pub const SLOTS: u16 = 16384;

/// The cluster slot (`0..16384`) of `key` (a `&str`, `String`, `&[u8]`, `Bytes`…), honouring
/// `{hash tags}`: what `CLUSTER KEYSLOT` answers.
///
/// ```
/// assert_eq!(ringdis::slot(b"foo"), 12182);
/// assert_eq!(ringdis::slot("foo"), 12182);
/// assert_eq!(ringdis::slot(format!("user:{}", 1)), ringdis::slot(b"user:1"));
/// // A hash tag puts related keys in one slot.
/// assert_eq!(ringdis::slot(b"{user1000}.following"), ringdis::slot(b"{user1000}.followers"));
/// assert_eq!(ringdis::slot(b"{user1000}.following"), ringdis::slot(b"user1000"));
/// ```
#[inline]
pub fn slot(key: impl AsRef<[u8]>) -> u16 {
    key_slot(key.as_ref())
}

/// [`slot`] of bytes.
fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hashed(key)) & (SLOTS - 1)
}

/// The part of `key` that is hashed: its hash tag, when it has a non-empty one, else all of it.
fn hashed(key: &[u8]) -> &[u8] {
    let Some(open) = memchr::memchr(b'{', key) else {
        return key;
    };
    let after = &key[open + 1..];
    match memchr::memchr(b'}', after) {
        Some(close) if close > 0 => &after[..close],
        _ => key,
    }
}

/// The slot a command must go to in a cluster.
///
/// * the slot set with [`Cmd::route_slot`] or [`Cmd::route_key`], when there is one (it wins
///   over the command's keys);
/// * else the slot of its marked keys ([`Cmd::keys`]: marked from the spec by the generated
///   methods, by hand with [`Cmd::key`]/[`Cmd::push_key`]), when they all hash to one slot;
/// * else, for a command the spec lists, the slot of the keys (and shard channels: `SPUBLISH`)
///   its key specs find in the arguments, as the server would (`cmd!("GET", "k")` goes to the
///   slot of `k`; see `keys::spec_keys`);
/// * `Ok(None)` when there are none: a keyless command (`PING`, `DBSIZE`, whose tips say where
///   it goes), or a hand-built command the spec does not list, with no key marked and no slot
///   set. The cluster client decides where those go (the tips of a command the spec lists;
///   otherwise any primary, or `COMMAND GETKEYS`).
///
/// A command whose keys are marked (every generated one with keys) is settled without a table
/// search.
///
/// # Errors
///
/// [`Error::Client`] naming `CROSSSLOT` and two keys in different slots, when the keys span
/// slots (a command the tips let us split, like `MGET`, is split by the caller: see
/// `plan::plan`), or when a slot set by hand is not below 16384.
pub(crate) fn cmd_slot(cmd: &Cmd) -> Result<Option<u16>> {
    if let Some(s) = cmd.routed_slot() {
        if s >= SLOTS {
            return Err(Error::client(format!(
                "`{}` was routed to slot {s}: a cluster has slots 0 to {}",
                cmd.name(),
                SLOTS - 1
            )));
        }
        return Ok(Some(s));
    }
    if cmd.key_indices().is_empty() {
        let args: Vec<&[u8]> = cmd.args().iter().collect();
        let found = spec_keys(&args, routing(cmd).keys, true);
        return one_slot(cmd, found.into_iter().map(|i| args[i]));
    }
    one_slot(cmd, cmd.keys())
}

/// The one slot of several commands (a transaction's, which must run on one node): that of
/// every command with a slot ([`cmd_slot`]); `None` when none has one.
///
/// # Errors
///
/// A command's own error ([`cmd_slot`]), or [`Error::Client`] naming `CROSSSLOT` and two
/// commands (with their positions, from 1) whose slots differ.
pub(crate) fn cmds_slot(cmds: &[Cmd]) -> Result<Option<u16>> {
    let mut seen: Option<(usize, u16)> = None;
    for (i, cmd) in cmds.iter().enumerate() {
        let Some(s) = cmd_slot(cmd)? else {
            continue;
        };
        match seen {
            None => seen = Some((i, s)),
            Some((j, t)) if t != s => {
                return Err(Error::client(format!(
                    "CROSSSLOT: command {} ({}, slot {t}) and command {} ({}, slot {s}) are in \
                     different cluster slots: a transaction runs on one node; put its keys in \
                     one slot with a hash tag (`{{user1}}.a`, `{{user1}}.b`)",
                    j + 1,
                    cmds[j].name().to_ascii_uppercase(),
                    i + 1,
                    cmd.name().to_ascii_uppercase(),
                )))
            }
            Some(_) => {}
        }
    }
    Ok(seen.map(|(_, s)| s))
}

/// The one slot of `keys` (`None` without keys), or CROSSSLOT.
fn one_slot<'a>(cmd: &Cmd, mut keys: impl Iterator<Item = &'a [u8]>) -> Result<Option<u16>> {
    let Some(first) = keys.next() else {
        return Ok(None);
    };
    let at = slot(first);
    for key in keys {
        let other = slot(key);
        if other != at {
            return Err(cross_slot(cmd, first, at, key, other));
        }
    }
    Ok(Some(at))
}

/// The CROSSSLOT error for `cmd`, whose keys `a` and `b` are in slots `sa` and `sb`.
pub(crate) fn cross_slot(cmd: &Cmd, a: &[u8], sa: u16, b: &[u8], sb: u16) -> Error {
    Error::client(format!(
        "CROSSSLOT: the keys of {} are in different cluster slots: `{}` (slot {sa}) and `{}` \
         (slot {sb}); put keys used together in one slot with a hash tag (`{{user1}}.a`, \
         `{{user1}}.b`)",
        cmd.name().to_ascii_uppercase(),
        String::from_utf8_lossy(a),
        String::from_utf8_lossy(b),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    #[test]
    fn crc16_xmodem_is_the_checksum() {
        // The CRC catalogue's check value for CRC-16/XMODEM over "123456789".
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
        assert_eq!(slot(b"123456789"), 0x31C3 & 16383);
        assert_eq!(slot(b"123456789"), 12739);
    }

    #[test]
    fn known_slots() {
        // What `CLUSTER KEYSLOT` answers (also checked against a server in
        // tests/tests/cluster_spec.rs).
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"somekey"), 11058);
        assert_eq!(slot(b""), 0);
        assert!((0..1000).all(|i| slot(format!("key:{i}").as_bytes()) < SLOTS));
    }

    #[test]
    fn hash_tags() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag: the whole key.
        assert_eq!(hashed(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(
            slot(b"foo{}{bar}"),
            crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") & 16383
        );
        // The first `{`, then the first `}` after it.
        assert_eq!(hashed(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(hashed(b"foo{bar}{zap}"), b"bar");
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
        // No closing brace, or a `}` only before the `{`: the whole key.
        assert_eq!(hashed(b"foo{bar"), b"foo{bar");
        assert_eq!(hashed(b"foo}bar{"), b"foo}bar{");
        assert_eq!(hashed(b"}{a}"), b"a");
        assert_eq!(hashed(b"{}"), b"{}");
        // Binary keys.
        assert_eq!(hashed(b"\xff{\x00\x01}"), b"\x00\x01");
    }

    #[test]
    fn the_slot_of_a_command() {
        // No keys: no slot.
        assert_eq!(cmd_slot(&cmd!("PING")), Ok(None));
        // Keys marked by hand, or found from the spec.
        assert_eq!(cmd_slot(&Cmd::new("GET").key("foo")), Ok(Some(12182)));
        assert_eq!(cmd_slot(&cmd!("GET", "foo")), Ok(Some(12182)));
        assert_eq!(cmd_slot(&cmd!("SPUBLISH", "bar", "m")), Ok(Some(5061)));
        assert!(cmd_slot(&cmd!("RENAME", "foo", "bar")).is_err());
        assert_eq!(cmd_slot(&cmd!("EVAL", "s", 0, "foo")), Ok(None));
        // Not in the spec, nothing marked: no slot.
        assert_eq!(cmd_slot(&cmd!("MODULE.X", "foo")), Ok(None));
        // Marked keys win over the spec's (here: only the first of RENAME's).
        assert_eq!(
            cmd_slot(&Cmd::new("RENAME").key("foo").arg("bar")),
            Ok(Some(12182))
        );
        let same = Cmd::new("MGET").key("{u}a").key("{u}b");
        assert_eq!(cmd_slot(&same), Ok(Some(slot(b"u"))));
        match cmd_slot(&Cmd::new("MGET").key("foo").key("foo").key("bar")) {
            Err(Error::Client { message, .. }) => {
                assert!(message.starts_with("CROSSSLOT"), "{message}");
                assert!(message.contains("MGET"), "{message}");
                assert!(message.contains("`foo` (slot 12182)"), "{message}");
                assert!(message.contains("`bar` (slot 5061)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // An explicit slot wins over the keys.
        let routed = Cmd::new("MODULE.X").key("foo").route_slot(7);
        assert_eq!(cmd_slot(&routed), Ok(Some(7)));
        let routed = cmd!("MODULE.X", "a", "b").route_key("bar");
        assert_eq!(cmd_slot(&routed), Ok(Some(5061)));
        assert_eq!(routed.args().len(), 3);
        assert!(cmd_slot(&cmd!("MODULE.X").route_slot(16384)).is_err());
        assert_eq!(
            cmd_slot(&cmd!("MODULE.X").route_slot(16383)),
            Ok(Some(16383))
        );
    }

    #[test]
    fn the_slot_of_a_transaction() {
        let (foo, bar) = (cmd!("INCR", "foo"), cmd!("GET", "bar"));
        assert_eq!(cmds_slot(&[]), Ok(None));
        assert_eq!(cmds_slot(&[cmd!("PING"), cmd!("TIME")]), Ok(None));
        assert_eq!(
            cmds_slot(&[cmd!("PING"), foo.clone(), cmd!("GET", "{foo}x")]),
            Ok(Some(12182))
        );
        match cmds_slot(&[foo.clone(), cmd!("PING"), bar]) {
            Err(Error::Client { message, .. }) => {
                assert!(message.starts_with("CROSSSLOT"), "{message}");
                assert!(
                    message.contains("command 1 (INCR, slot 12182)"),
                    "{message}"
                );
                assert!(message.contains("command 3 (GET, slot 5061)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A command's own CROSSSLOT.
        assert!(cmds_slot(&[foo, cmd!("MSETNX", "foo", 1, "bar", 2)]).is_err());
    }
}
