//! Which commands block their connection, and for how long they may.
//!
//! A blocking command (`BLPOP`, `XREAD … BLOCK`, `WAIT`…) holds its connection until data
//! arrives or its own timeout ends; on the shared connection it would stall every other caller.
//! So the routing gate (`route.rs`) runs it on a dedicated connection, with a reply deadline of
//! the command's own block time plus the usual command timeout (none when it blocks for ever).

use crate::Cmd;
use std::time::Duration;

/// How long `cmd`, which the spec flags as `blocking` when `blocking` is true, may block: `None`
/// if it does not block, `Some(None)` if it may block for ever, `Some(Some(d))` for at most `d`.
/// The routing gate (`route.rs`) calls it for the commands the spec flags.
pub(crate) fn block_time(cmd: &Cmd, blocking: bool) -> Option<Option<Duration>> {
    let mut args = cmd.args().iter();
    let name = args.next()?.to_ascii_uppercase();
    let rest: Vec<&[u8]> = args.collect();
    let secs = |arg: Option<&&[u8]>| -> Option<Duration> {
        let s: f64 = std::str::from_utf8(arg?).ok()?.parse().ok()?;
        // Beyond what a Duration holds (the server refuses it as out of range): for ever.
        let d = Duration::try_from_secs_f64(s).ok()?;
        (!d.is_zero()).then(|| crate::timer::bounded(d))
    };
    let millis = |arg: Option<&&[u8]>| -> Option<Duration> {
        let ms: u64 = std::str::from_utf8(arg?).ok()?.parse().ok()?;
        (ms > 0).then(|| crate::timer::bounded(Duration::from_millis(ms)))
    };
    match &name[..] {
        // The timeout (seconds) is the last argument.
        b"BLPOP" | b"BRPOP" | b"BRPOPLPUSH" | b"BLMOVE" | b"BZPOPMIN" | b"BZPOPMAX" => {
            Some(secs(rest.last()))
        }
        // The timeout (seconds) comes first.
        b"BLMPOP" | b"BZMPOP" => Some(secs(rest.first())),
        // WAIT numreplicas timeout-ms; WAITAOF numlocal numreplicas timeout-ms.
        b"WAIT" | b"WAITAOF" => Some(millis(rest.last())),
        // Only with BLOCK milliseconds (before STREAMS); given twice, the server keeps the last.
        // Options are read as the server reads them: `GROUP group consumer` and `COUNT n` take
        // their values, so a group or consumer named `streams` or `block` is a name.
        b"XREAD" | b"XREADGROUP" => {
            let mut opts = rest.iter();
            let mut block = None;
            while let Some(a) = opts.next() {
                if a.eq_ignore_ascii_case(b"STREAMS") {
                    break;
                } else if a.eq_ignore_ascii_case(b"BLOCK") {
                    block = Some(millis(opts.next()));
                } else if a.eq_ignore_ascii_case(b"COUNT") {
                    opts.next();
                } else if a.eq_ignore_ascii_case(b"GROUP") && name == b"XREADGROUP" {
                    opts.next();
                    opts.next();
                }
            }
            // Without BLOCK they answer at once, whatever the spec's `blocking` flag says.
            block
        }
        _ => blocking.then_some(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    fn bt(cmd: &Cmd) -> Option<Option<Duration>> {
        block_time(cmd, true)
    }

    #[test]
    fn blocking_commands_and_their_timeouts() {
        let s = |n| Some(Some(Duration::from_secs(n)));
        assert_eq!(block_time(&cmd!("GET", "k"), false), None);
        assert_eq!(bt(&cmd!("FUTURE-BLOCKING-COMMAND")), Some(None));
        assert_eq!(bt(&cmd!("blpop", "a", "b", 5)), s(5));
        assert_eq!(bt(&cmd!("BLPOP", "a", 0)), Some(None));
        assert_eq!(
            bt(&cmd!("BZPOPMIN", "z", 0.5)),
            Some(Some(Duration::from_millis(500)))
        );
        assert_eq!(bt(&cmd!("BLMPOP", 2, 1, "l", "LEFT")), s(2));
        assert_eq!(
            bt(&cmd!("WAIT", 1, 100)),
            Some(Some(Duration::from_millis(100)))
        );
        assert_eq!(bt(&cmd!("XREAD", "STREAMS", "s", "$")), None);
        assert_eq!(
            bt(&cmd!(
                "XREAD", "COUNT", 1, "BLOCK", 250, "STREAMS", "s", "$"
            )),
            Some(Some(Duration::from_millis(250)))
        );
        assert_eq!(
            bt(&cmd!(
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                0,
                "STREAMS",
                "s",
                ">"
            )),
            Some(None)
        );
        // Beyond what a Duration holds: for ever (the server refuses it), never a panic.
        assert_eq!(bt(&cmd!("BLPOP", "q", "1e300")), Some(None));
        assert_eq!(
            bt(&cmd!("BLPOP", "q", "1e17")),
            Some(Some(crate::timer::LONGEST_WAIT))
        );
        // A group or consumer named like an option is a name (GROUP takes two values).
        assert_eq!(
            bt(&cmd!(
                "XREADGROUP",
                "GROUP",
                "streams",
                "c",
                "BLOCK",
                0,
                "STREAMS",
                "s",
                ">"
            )),
            Some(None)
        );
        assert_eq!(
            bt(&cmd!(
                "XREADGROUP",
                "GROUP",
                "g",
                "block",
                "STREAMS",
                "s",
                ">"
            )),
            None
        );
        // A stream named BLOCK after STREAMS is not the option.
        assert_eq!(bt(&cmd!("XREAD", "STREAMS", "BLOCK", "0")), None);
        // Given twice, the server keeps the last BLOCK (as it keeps the last COUNT): this one
        // blocks for ever, not for 10 ms.
        assert_eq!(
            bt(&cmd!("XREAD", "BLOCK", 10, "BLOCK", 0, "STREAMS", "s", "$")),
            Some(None)
        );
        assert_eq!(
            bt(&cmd!("XREAD", "BLOCK", 0, "block", 20, "STREAMS", "s", "$")),
            Some(Some(Duration::from_millis(20)))
        );
    }
}
