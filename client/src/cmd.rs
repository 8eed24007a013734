//! [`Cmd`] and the [`cmd!`](crate::cmd!) macro: a command built by hand.

use crate::{Args, ToArg};

/// One command: its name and arguments, already encoded.
///
/// The generated methods build `Cmd`s for you; build one by hand for anything the spec does not
/// list (module commands, new server commands):
///
/// ```
/// use ringdis::{cmd, Cmd};
/// let a = Cmd::new("HSET").arg("user:1").arg("name").arg("ada");
/// let b = cmd!("HSET", "user:1", "name", "ada");
/// assert_eq!(a, b);
/// assert_eq!(b.name(), "HSET");
/// assert_eq!(b.to_string(), "HSET user:1 name ada");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    args: Args,
    flags: CmdFlags,
    /// Indices (into `args`, the name being 0) of the arguments that are keys.
    keys: Vec<u32>,
    /// The cluster slot set by hand ([`Cmd::route_slot`], [`Cmd::route_key`]): it fits in the
    /// padding after `flags`, so an unset one costs nothing.
    slot: Option<u16>,
}

/// What a command does, as far as routing cares. The generated methods set these from the spec;
/// a hand-built [`Cmd`] has none unless told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmdFlags {
    /// The command may block the connection until data arrives (BLPOP, XREAD BLOCK, WAIT…).
    pub blocking: bool,
    /// The command only reads.
    pub readonly: bool,
    /// The command may modify data.
    pub write: bool,
}

impl Cmd {
    /// A command with just its name. A name of several words (`"CONFIG GET"`) becomes several
    /// arguments.
    pub fn new(name: &str) -> Cmd {
        // Room for a typical small command (name, key, a short value) in one allocation.
        let mut args = Args::with_capacity(128);
        for word in name.split_ascii_whitespace() {
            args.push_bytes(word.as_bytes());
        }
        Cmd {
            args,
            flags: CmdFlags::default(),
            keys: Vec::new(),
            slot: None,
        }
    }

    /// Adds an argument (or several, for collections), builder style.
    pub fn arg(mut self, arg: impl ToArg) -> Cmd {
        arg.write_args(&mut self.args);
        self
    }

    /// Adds an argument (or several, for collections) in place.
    pub fn push_arg(&mut self, arg: impl ToArg) -> &mut Cmd {
        arg.write_args(&mut self.args);
        self
    }

    /// The encoded arguments, name included.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// The first argument (the command name) as text.
    pub fn name(&self) -> String {
        self.args
            .iter()
            .next()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    }

    /// Adds an argument (or several) that is a key: [`Cmd::keys`] will list it. The generated
    /// methods mark keys from the spec; mark them by hand for cluster routing of a hand-built
    /// command.
    ///
    /// ```
    /// use ringdis::Cmd;
    /// let mut c = Cmd::new("MSET");
    /// c.push_key("a").push_arg(1).push_key("b").push_arg(2);
    /// assert_eq!(c.keys().collect::<Vec<_>>(), [&b"a"[..], b"b"]);
    /// assert_eq!(c.key_indices(), [1, 3]);
    /// ```
    pub fn push_key(&mut self, key: impl ToArg) -> &mut Cmd {
        let from = self.args.len();
        key.write_args(&mut self.args);
        self.keys.extend(from as u32..self.args.len() as u32);
        self
    }

    /// Adds an argument (or several) that is a key, builder style: [`Cmd::push_key`] for a
    /// chain. In a cluster, a command goes to the slot of its keys.
    ///
    /// ```
    /// use ringdis::{cmd, Cmd};
    /// let c = Cmd::new("MODULE.GET").key("user:1").arg("field");
    /// assert_eq!(c.keys().collect::<Vec<_>>(), [&b"user:1"[..]]);
    /// assert_eq!(c.key_indices(), [1]);
    /// assert_eq!(c.to_string(), cmd!("MODULE.GET", "user:1", "field").to_string());
    /// ```
    pub fn key(mut self, key: impl ToArg) -> Cmd {
        self.push_key(key);
        self
    }

    /// Sends the command, in a cluster, to the slot that owns `key`, without adding an
    /// argument: for a hand-built command whose keys are not marked (a module's, or arguments
    /// already added with [`Cmd::arg`]). It wins over the command's marked keys; a client
    /// connected to one server ignores it.
    ///
    /// ```
    /// use ringdis::{cmd, slot};
    /// let c = cmd!("MODULE.ADD", "user:1", 5).route_key("user:1");
    /// assert_eq!(c.routed_slot(), Some(slot(b"user:1")));
    /// assert_eq!(c.args().len(), 3);
    /// ```
    pub fn route_key(mut self, key: impl AsRef<[u8]>) -> Cmd {
        self.slot = Some(crate::slot(key.as_ref()));
        self
    }

    /// Sends the command, in a cluster, to the node owning `slot` (`0..16384`; see
    /// [`slot`](crate::slot)), whatever its keys. A slot out of range fails the call with
    /// [`Error::Client`](crate::Error::Client) on a cluster; a client connected to one server
    /// ignores it.
    pub fn route_slot(mut self, slot: u16) -> Cmd {
        self.slot = Some(slot);
        self
    }

    /// Forgets a slot set with [`Cmd::route_slot`] or [`Cmd::route_key`]: the command goes
    /// where its keys say.
    pub fn route_none(mut self) -> Cmd {
        self.slot = None;
        self
    }

    /// The slot set with [`Cmd::route_slot`] or [`Cmd::route_key`], if any.
    pub fn routed_slot(&self) -> Option<u16> {
        self.slot
    }

    /// A command with no name and no arguments, allocating nothing: the placeholder a builder
    /// keeps while its command lives in a pipeline.
    pub(crate) fn empty() -> Cmd {
        Cmd {
            args: Args::new(),
            flags: CmdFlags::default(),
            keys: Vec::new(),
            slot: None,
        }
    }

    /// Appends encoded arguments (none of them keys).
    pub(crate) fn push_args(&mut self, args: &Args) -> &mut Cmd {
        self.args.extend_from(args);
        self
    }

    /// Lets `write` add arguments at argument position `at_arg` (byte `at_byte` of the encoded
    /// arguments, the same boundary), marking them as keys when `key`: the keys after them move
    /// along. Returns how many arguments and bytes were added.
    pub(crate) fn insert_with(
        &mut self,
        at_arg: u32,
        at_byte: usize,
        key: bool,
        write: impl FnOnce(&mut Args),
    ) -> (u32, usize) {
        let (count, bytes) = (self.args.len(), self.args.byte_len());
        self.args.insert_with(at_byte, write);
        let added = (self.args.len() - count) as u32;
        for k in &mut self.keys {
            if *k >= at_arg {
                *k += added;
            }
        }
        if key {
            let pos = self.keys.partition_point(|k| *k < at_arg);
            if pos == self.keys.len() {
                // The usual case (a builder adds its key arguments in order): appended.
                self.keys.extend(at_arg..at_arg + added);
            } else {
                self.keys.splice(pos..pos, at_arg..at_arg + added);
            }
        }
        (added, self.args.byte_len() - bytes)
    }

    /// Removes the `count` arguments from position `at_arg`, which take the bytes `bytes`; the
    /// keys after them move back.
    pub(crate) fn remove_args(&mut self, at_arg: u32, count: u32, bytes: std::ops::Range<usize>) {
        if count == 0 {
            return;
        }
        self.args.remove(bytes, count as usize);
        let end = at_arg + count;
        self.keys.retain(|k| !(at_arg..end).contains(k));
        for k in &mut self.keys {
            if *k >= end {
                *k -= count;
            }
        }
    }

    /// The arguments that are keys, in order (what `COMMAND GETKEYS` would answer).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        // The arguments are read up to the last key only (a SET's value is never parsed).
        let mut want = self.keys.iter();
        let mut args = self.args.iter().enumerate();
        std::iter::from_fn(move || {
            let &k = want.next()?;
            args.find(|&(i, _)| i == k as usize).map(|(_, a)| a)
        })
    }

    /// The positions of the key arguments (the name is position 0).
    pub fn key_indices(&self) -> &[u32] {
        &self.keys
    }

    /// Routing flags.
    pub fn flags(&self) -> CmdFlags {
        self.flags
    }

    /// Sets the routing flags.
    pub fn with_flags(mut self, flags: CmdFlags) -> Cmd {
        self.flags = flags;
        self
    }
}

impl std::fmt::Display for Cmd {
    /// The command as `redis-cli` would show it (binary bytes shown lossily), with its secrets
    /// (the password of `AUTH`, `HELLO … AUTH`, `MIGRATE … AUTH`, the rules of `ACL SETUSER`,
    /// `CONFIG SET requirepass`) shown as `***`, as the server's `SLOWLOG` does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.args.shown().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&a)?;
        }
        Ok(())
    }
}

/// Builds a [`Cmd`] from a name and any number of [`ToArg`] arguments.
///
/// ```
/// use ringdis::cmd;
/// let c = cmd!("ZADD", "board", 1.5, "ada", 2, "bob");
/// assert_eq!(c.args().len(), 6);
/// let c = cmd!("PING");
/// assert_eq!(c.to_string(), "PING");
/// ```
#[macro_export]
macro_rules! cmd {
    ($name:expr $(, $arg:expr)* $(,)?) => {
        $crate::Cmd::new($name)$(.arg($arg))*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The explicit slot costs no room: it fits in the padding after the flags.
    #[test]
    fn an_explicit_slot_costs_no_room() {
        #[allow(dead_code)]
        struct Before {
            args: Args,
            flags: CmdFlags,
            keys: Vec<u32>,
        }
        assert_eq!(std::mem::size_of::<Cmd>(), std::mem::size_of::<Before>());
    }

    /// The keys, in order, wherever they are among the arguments (the first, the last,
    /// adjacent ones, several arguments from one `push_key`), and none for no marked key.
    #[test]
    fn keys_are_the_marked_arguments() {
        let mut c = Cmd::new("X");
        c.push_key("a")
            .push_arg("v")
            .push_key(["b", "c"])
            .push_arg(1)
            .push_key("d");
        assert_eq!(c.key_indices(), [1, 3, 4, 6]);
        assert_eq!(c.keys().collect::<Vec<_>>(), [&b"a"[..], b"b", b"c", b"d"]);
        assert_eq!(cmd!("GET", "k").keys().count(), 0);
        let mut first = Cmd::new("SET");
        first.push_key("k").push_arg("v");
        assert_eq!(first.keys().collect::<Vec<_>>(), [&b"k"[..]]);
    }

    #[test]
    fn secrets_are_hidden_from_debug_and_display() {
        let shown = [
            (cmd!("AUTH", "pw1"), "AUTH ***"),
            (cmd!("auth", "user", "pw2"), "auth *** ***"),
            (
                cmd!("HELLO", 3, "AUTH", "u", "pw3", "SETNAME", "n"),
                "HELLO 3 AUTH *** *** SETNAME n",
            ),
            (
                cmd!("MIGRATE", "h", 1, "", 0, 5, "AUTH", "pw4", "KEYS", "a"),
                "MIGRATE h 1  0 5 AUTH *** KEYS a",
            ),
            (
                cmd!("MIGRATE", "h", 1, "k", 0, 5, "AUTH2", "u", "pw5"),
                "MIGRATE h 1 k 0 5 AUTH2 *** ***",
            ),
            (
                cmd!("ACL", "SETUSER", "bob", "on", ">pw6"),
                "ACL SETUSER bob *** ***",
            ),
            (
                cmd!("CONFIG", "SET", "maxmemory", 1, "requirepass", "pw7"),
                "CONFIG SET maxmemory 1 requirepass ***",
            ),
            (
                cmd!("config", "set", "masterauth", "pw8"),
                "config set masterauth ***",
            ),
            (cmd!("SET", "auth", "x"), "SET auth x"),
        ];
        for (i, (cmd, want)) in shown.iter().enumerate() {
            assert_eq!(cmd.to_string(), *want);
            let debug = format!("{cmd:?} {:?}", cmd.args());
            assert!(!debug.contains(&format!("pw{}", i + 1)), "{debug}");
        }
    }
}
