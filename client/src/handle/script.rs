//! [`Script`]: Lua run by hash (`EVALSHA`), loaded on first use; and [`Library`], the same for
//! server-side functions (`FCALL`).

use crate::{Cmd, FromRedis, Redis, Result, ToArg};

/// A Lua script, sent by its SHA1 (`EVALSHA`) and loaded with `EVAL` when the server does not
/// have it yet (`NOSCRIPT`), e.g. after a restart.
///
/// ```no_run
/// use ringdis::{Client, Script};
///
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// let add = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
/// let n: i64 = add.key("counter").arg(5).invoke(&client).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Script {
    code: String,
    sha: String,
}

impl Script {
    /// A script from its source.
    pub fn new(code: impl Into<String>) -> Script {
        let code = code.into();
        let sha = sha1_smol::Sha1::from(code.as_bytes()).digest().to_string();
        Script { code, sha }
    }

    /// The SHA1 the server knows it by.
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// Starts an invocation with a key.
    pub fn key(&self, key: impl ToArg) -> Invocation<'_> {
        self.prepare().key(key)
    }

    /// Starts an invocation with an argument.
    pub fn arg(&self, arg: impl ToArg) -> Invocation<'_> {
        self.prepare().arg(arg)
    }

    /// An invocation with no keys or arguments yet.
    pub fn prepare(&self) -> Invocation<'_> {
        Invocation {
            script: self,
            keys: crate::Args::new(),
            args: crate::Args::new(),
        }
    }

    /// Runs it with no keys or arguments.
    pub async fn invoke<T: FromRedis>(&self, client: &impl Redis) -> Result<T> {
        self.prepare().invoke(client).await
    }
}

/// One run of a [`Script`]: its keys and arguments.
#[derive(Debug)]
pub struct Invocation<'a> {
    script: &'a Script,
    keys: crate::Args,
    args: crate::Args,
}

impl Invocation<'_> {
    /// Adds a key (`KEYS[n]`).
    pub fn key(mut self, key: impl ToArg) -> Self {
        key.write_args(&mut self.keys);
        self
    }

    /// Adds an argument (`ARGV[n]`).
    pub fn arg(mut self, arg: impl ToArg) -> Self {
        arg.write_args(&mut self.args);
        self
    }

    fn cmd(&self, verb: &str, head: &str) -> Cmd {
        let mut cmd = Cmd::new(verb).arg(head).arg(self.keys.len());
        // Marked as keys: a cluster sends the script to their slot's node.
        for k in self.keys.iter() {
            cmd.push_key(k);
        }
        for a in self.args.iter() {
            cmd.push_arg(a);
        }
        cmd
    }

    /// Runs it: `EVALSHA`, then `EVAL` if the server does not know the script.
    pub async fn invoke<T: FromRedis>(&self, client: &impl Redis) -> Result<T> {
        match client.call(self.cmd("EVALSHA", &self.script.sha)).await {
            Err(e) if e.server_kind() == Some("NOSCRIPT") => {
                client.call(self.cmd("EVAL", &self.script.code)).await
            }
            other => other,
        }
    }
}

/// A library of server-side functions (Redis 7+), loaded with `FUNCTION LOAD` when an `FCALL`
/// finds its function missing.
///
/// ```no_run
/// use ringdis::{Client, Library};
///
/// # async fn demo(client: Client) -> ringdis::Result<()> {
/// let lib = Library::new(
///     "#!lua name=counters\n\
///      redis.register_function('bump', function(keys, args) \
///        return redis.call('INCRBY', keys[1], args[1]) end)",
/// );
/// let n: i64 = lib.fcall(&client, "bump", ["counter"], [2]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Library {
    code: String,
}

impl Library {
    /// A library from its source (starting with the `#!lua name=…` shebang).
    pub fn new(code: impl Into<String>) -> Library {
        Library { code: code.into() }
    }

    /// Loads (or replaces) the library on the server.
    pub async fn load(&self, client: &impl Redis) -> Result<String> {
        client
            .call(
                Cmd::new("FUNCTION")
                    .arg("LOAD")
                    .arg("REPLACE")
                    .arg(&self.code),
            )
            .await
    }

    /// Calls a function of the library (`FCALL`), loading the library if the server lacks it.
    pub async fn fcall<T, K, A>(
        &self,
        client: &impl Redis,
        function: &str,
        keys: K,
        args: A,
    ) -> Result<T>
    where
        T: FromRedis,
        K: ToArg,
        A: ToArg,
    {
        let cmd = Cmd::new("FCALL")
            .arg(function)
            .arg(keys.arg_count())
            .key(&keys)
            .arg(&args);
        match client.call(cmd.clone()).await {
            Err(e) if is_missing_function(&e) => {
                self.load(client).await?;
                client.call(cmd).await
            }
            other => other,
        }
    }
}

fn is_missing_function(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Server { message, .. } if message.contains("Function not found"))
}
