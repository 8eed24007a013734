//! Which arguments of a command are secrets, so that `Debug` and `Display` of a [`Cmd`] or its
//! [`Args`] show `***` for them: the arguments the server itself hides from `SLOWLOG` and
//! `MONITOR`, namely the password (and user) of `AUTH`, `HELLO … AUTH` and
//! `MIGRATE … AUTH|AUTH2`, every rule of `ACL SETUSER` (they may hold passwords), and the value
//! of `CONFIG SET requirepass|masterauth`.
//!
//! [`Cmd`]: crate::Cmd
//! [`Args`]: crate::Args

/// What a secret argument is shown as.
pub(crate) const HIDDEN: &str = "***";

/// For each of `args` (the name first), whether it is a secret.
pub(crate) fn secrets(args: &[&[u8]]) -> Vec<bool> {
    let mut hide = vec![false; args.len()];
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    let mut from = |start: usize, n: usize| {
        for h in hide.iter_mut().skip(start).take(n) {
            *h = true;
        }
    };
    if is(0, "auth") {
        from(1, usize::MAX);
    } else if is(0, "acl") && is(1, "setuser") {
        from(3, usize::MAX);
    } else if is(0, "hello") || is(0, "migrate") {
        for i in 1..args.len() {
            if is(i, "auth") {
                // HELLO: AUTH user password; MIGRATE: AUTH password.
                from(i + 1, if is(0, "hello") { 2 } else { 1 });
            } else if is(0, "migrate") && is(i, "auth2") {
                from(i + 1, 2);
            }
        }
    } else if is(0, "config") && is(1, "set") {
        let mut i = 2;
        while i + 1 < args.len() {
            if is(i, "requirepass") || is(i, "masterauth") {
                from(i + 1, 1);
            }
            i += 2;
        }
    }
    hide
}
