//! [`ReadKey`]: what a cached read is known by (its database and its exact encoded command) and
//! where its keys are in that command; [`View`]: the same, borrowed, for a lookup that copies
//! nothing.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A database and an encoded command, owned or borrowed: what the entry and join tables are
/// searched by. An owned [`ReadKey`] and a borrowed [`View`] of the same read hash and compare
/// alike, so a lookup hashes the caller's bytes in place.
pub(super) trait Lookup {
    fn db(&self) -> i64;
    fn cmd(&self) -> &[u8];
}

impl Hash for dyn Lookup + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.db().hash(state);
        self.cmd().hash(state);
    }
}

impl PartialEq for dyn Lookup + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.db() == other.db() && self.cmd() == other.cmd()
    }
}

impl Eq for dyn Lookup + '_ {}

/// A read as the caller holds it: no copy.
pub(super) struct View<'a> {
    pub(super) db: i64,
    pub(super) cmd: &'a [u8],
}

impl Lookup for View<'_> {
    fn db(&self) -> i64 {
        self.db
    }
    fn cmd(&self) -> &[u8] {
        self.cmd
    }
}

struct Read {
    db: i64,
    cmd: Box<[u8]>,
    /// Each key's place in `cmd`: (start, length), in the command's order (repeats kept).
    keys: Box<[(u32, u32)]>,
}

/// A read as the cache keeps it (an entry's or a flight's key): cheap to clone (one `Arc`),
/// shared by the entry table and the key index.
#[derive(Clone)]
pub(super) struct ReadKey(Arc<Read>);

impl ReadKey {
    /// Copies `cmd` (encoded arguments) and finds its `keys` in it; `None` when a key is not a
    /// slice of `cmd` (never, for a `Cmd`'s own `keys()`), or the command is over 4 GiB.
    pub(super) fn new<'a>(
        db: i64,
        cmd: &[u8],
        keys: impl Iterator<Item = &'a [u8]>,
    ) -> Option<ReadKey> {
        let base = cmd.as_ptr() as usize;
        let keys = keys
            .map(|k| {
                let start = (k.as_ptr() as usize).checked_sub(base)?;
                let end = start.checked_add(k.len())?;
                (cmd.get(start..end) == Some(k)).then_some(())?;
                Some((u32::try_from(start).ok()?, u32::try_from(k.len()).ok()?))
            })
            .collect::<Option<Box<[_]>>>()?;
        Some(ReadKey(Arc::new(Read {
            db,
            cmd: cmd.into(),
            keys,
        })))
    }

    /// The keys the command reads, in order (a key named twice comes twice).
    pub(super) fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let cmd = &self.0.cmd;
        self.0
            .keys
            .iter()
            .map(move |&(at, len)| &cmd[at as usize..at as usize + len as usize])
    }

    pub(super) fn key_count(&self) -> usize {
        self.0.keys.len()
    }

    /// The bytes the command and its key list take.
    pub(super) fn byte_len(&self) -> usize {
        self.0.cmd.len()
            + self
                .0
                .keys
                .iter()
                .map(|&(_, len)| len as usize)
                .sum::<usize>()
    }

    /// The same key object (not merely an equal one).
    pub(super) fn same(&self, other: &ReadKey) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Lookup for ReadKey {
    fn db(&self) -> i64 {
        self.0.db
    }
    fn cmd(&self) -> &[u8] {
        &self.0.cmd
    }
}

impl Hash for ReadKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn Lookup).hash(state)
    }
}

impl PartialEq for ReadKey {
    fn eq(&self, other: &ReadKey) -> bool {
        (self as &dyn Lookup) == (other as &dyn Lookup)
    }
}

impl Eq for ReadKey {}

impl<'a> Borrow<dyn Lookup + 'a> for ReadKey {
    fn borrow(&self) -> &(dyn Lookup + 'a) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cmd;
    use std::collections::HashMap;

    #[test]
    fn keys_are_found_in_the_encoded_command() {
        let cmd = Cmd::new("MGET").key("a").arg("x").key("bb").key("a");
        let key = ReadKey::new(3, cmd.args().encoded(), cmd.keys()).expect("keys are slices");
        assert_eq!(key.keys().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"a"]);
        assert_eq!(key.key_count(), 3);
        assert_eq!(key.byte_len(), cmd.args().encoded().len() + 4);
    }

    #[test]
    fn a_key_from_elsewhere_is_refused() {
        let cmd = Cmd::new("GET").key("a");
        let other = b"a".to_vec();
        assert!(ReadKey::new(0, cmd.args().encoded(), [&other[..]].into_iter()).is_none());
    }

    #[test]
    fn owned_and_borrowed_find_each_other() {
        let cmd = Cmd::new("GET").key("a");
        let key = ReadKey::new(1, cmd.args().encoded(), cmd.keys()).expect("key");
        let mut map = HashMap::new();
        map.insert(key.clone(), 7);
        let view = View {
            db: 1,
            cmd: cmd.args().encoded(),
        };
        assert_eq!(map.get(&view as &dyn Lookup), Some(&7));
        let other_db = View {
            db: 2,
            cmd: cmd.args().encoded(),
        };
        assert_eq!(map.get(&other_db as &dyn Lookup), None);
        assert!(key.same(&key.clone()));
        let twin = ReadKey::new(1, cmd.args().encoded(), cmd.keys()).expect("key");
        assert!(twin == key && !twin.same(&key));
    }
}
