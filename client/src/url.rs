//! Connection URLs: `redis://…`, `valkey://…` and `unix://…`.
//!
//! Every form keeps every credential it carries, or is refused with [`Error::Client`]; where
//! the forms overlap with redis-rs, they mean what they mean there. Error messages show the URL
//! with its password replaced by `***`.

use crate::config::{Addr, Config, Protocol};
use crate::{Error, Result};
use percent_encoding::percent_decode;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fn bad(url: &str, why: &str) -> Error {
    Error::client(format!("invalid URL {:?}: {why}", redact(url)))
}

/// `url` with everything that may be a secret replaced by `***`: the user info (all of it, up
/// to the last `@`, so a password with an unescaped delimiter cannot leak), an authority that is
/// not a plain `host:port`, and the value of every query parameter but `db`, `protocol`, `user` and `username`.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = match rest.rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => mask_odd_authority(rest),
    };
    let rest = match rest.split_once('?') {
        Some((head, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if !is_plain_key(k) => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{head}?{}", pairs.join("&"))
        }
        None => rest,
    };
    match scheme {
        Some(s) => format!("{s}://{rest}"),
        None => rest,
    }
}

/// An authority that is not a plain `host:port` may be a password that lost its `@`
/// (`redis://:secret`): all of it is hidden.
fn mask_odd_authority(rest: &str) -> String {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // A numeric port is shown even when out of range: that is the mistake to see.
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    if host_port(host).is_ok() {
        rest.to_owned()
    } else {
        format!("***{tail}")
    }
}

/// Query parameters whose values are never secret.
fn is_plain_key(k: &str) -> bool {
    matches!(
        k.to_ascii_lowercase().as_str(),
        "db" | "protocol" | "user" | "username"
    )
}

/// Percent-decodes user info (`+` is a plus sign there).
fn decode_userinfo(url: &str, s: &str) -> Result<String> {
    percent_decode(s.as_bytes())
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad(url, "user or password is not UTF-8 after percent-decoding"))
}

/// Decodes a query value as a form does (`+` is a space, as redis-rs reads it; write `%2B` for
/// a plus sign).
fn decode_query(url: &str, s: &str) -> Result<String> {
    let spaced = s.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad(url, "a query value is not UTF-8 after percent-decoding"))
}

/// What the URL says, before it becomes a [`Config`]: each setting at most once.
#[derive(Default)]
struct Parts {
    username: Option<String>,
    password: Option<String>,
    db: Option<i64>,
    protocol: Option<Protocol>,
}

impl Parts {
    fn set<T>(url: &str, slot: &mut Option<T>, value: T, what: &str) -> Result<()> {
        if slot.is_some() {
            return Err(bad(url, &format!("{what} is given twice")));
        }
        *slot = Some(value);
        Ok(())
    }

    /// `user:password`, `:password`, or a lone `password` (as redis-cli reads it).
    fn userinfo(&mut self, url: &str, userinfo: &str) -> Result<()> {
        match userinfo.split_once(':') {
            Some((user, pass)) => {
                if !user.is_empty() {
                    self.username = Some(decode_userinfo(url, user)?);
                }
                // `redis://:@host` carries nothing; `redis://app:@host` is user `app` with an
                // empty password (what a `nopass` ACL user accepts).
                if !user.is_empty() || !pass.is_empty() {
                    self.password = Some(decode_userinfo(url, pass)?);
                }
            }
            None if !userinfo.is_empty() => {
                self.password = Some(decode_userinfo(url, userinfo)?);
            }
            None => {}
        }
        Ok(())
    }

    fn query(&mut self, url: &str, query: &str) -> Result<()> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode_query(url, v)?;
            match k.to_ascii_lowercase().as_str() {
                "db" => {
                    let db = v.parse().map_err(|_| bad(url, "db must be a number"))?;
                    Parts::set(url, &mut self.db, db, "the database")?;
                }
                "user" | "username" => Parts::set(url, &mut self.username, v, "the user")?,
                "password" | "pass" => Parts::set(url, &mut self.password, v, "the password")?,
                "protocol" => {
                    let p = match v.to_ascii_lowercase().as_str() {
                        "2" | "resp2" => Protocol::Resp2,
                        "3" | "resp3" => Protocol::Resp3,
                        _ => return Err(bad(url, "protocol must be resp2 or resp3")),
                    };
                    Parts::set(url, &mut self.protocol, p, "the protocol")?;
                }
                other => return Err(bad(url, &format!("unknown parameter {other:?}"))),
            }
        }
        Ok(())
    }

    fn into_config(self, url: &str, addr: Addr) -> Result<Config> {
        if self.username.is_some() && self.password.is_none() {
            // It would never be sent: a user name goes out only with AUTH.
            return Err(bad(
                url,
                "a user name needs a password (user:password@ or &password=)",
            ));
        }
        let mut config = Config::new();
        config.addr = addr;
        config.username = self.username;
        config.password = self.password;
        config.db = self.db.unwrap_or(0);
        if let Some(p) = self.protocol {
            config.protocol = p;
        }
        Ok(config)
    }
}

impl Config {
    /// Parses a connection URL:
    ///
    /// * `redis://[[user]:password@]host[:port][/db]` (also `valkey://`); an IPv6 host goes in
    ///   brackets (`redis://[::1]:6379`); no host means `127.0.0.1`.
    /// * `unix://[[user]:password@]/path/to.sock` (also `redis+unix://`, `valkey+unix://`).
    /// * `rediss://…` and `valkeys://…`: as `redis://`, over TLS with `Tls::new()`'s defaults
    ///   (`tls` feature; without it they are refused, naming the feature). For a private CA or
    ///   a client certificate, set `Config::tls` after parsing.
    ///
    /// A lone `redis://secret@host` is a password, as redis-cli reads it. User and password are
    /// percent-decoded (write `@` as `%40`, `:` as `%3A`, `/` as `%2F`, `#` as `%23`).
    ///
    /// Query parameters, on every form: `db`, `user` (or `username`), `password` (or `pass`,
    /// as redis-rs names it for unix sockets) and `protocol` (`resp2`/`resp3` or `2`/`3`). Their
    /// values are form-decoded: `+` is a space, `%2B` a plus sign.
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for anything it cannot keep whole: an unknown scheme or parameter, a
    /// setting given twice (`redis://:a@h?password=b`, `redis://h/1?db=2`), a user name without a
    /// password (it would never be sent), `rediss://`/`valkeys://` without the `tls` feature, a
    /// relative socket path, a bad port or database number. The message shows the URL with its
    /// password replaced by `***`.
    pub fn from_url(url: &str) -> Result<Config> {
        parse(url)
    }
}

fn parse(url: &str) -> Result<Config> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad(url, "expected redis://host:port or unix:///path"))?;
    if let Some((_, fragment)) = rest.split_once('#') {
        let why = if fragment.contains('@') {
            "a # in the user info must be written %23"
        } else {
            "a URL fragment (#…) means nothing here"
        };
        return Err(bad(url, why));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    // The authority ends at the first `/`; its last `@` ends the user info.
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut parts = Parts::default();
    if let Some(userinfo) = userinfo {
        parts.userinfo(url, userinfo)?;
    }
    let scheme = scheme.to_ascii_lowercase();
    let tls = matches!(scheme.as_str(), "rediss" | "valkeys");
    let addr = match scheme.as_str() {
        "redis" | "valkey" | "rediss" | "valkeys" => {
            let (host, port) = host_port(host).map_err(|why| bad(url, why))?;
            if let Some(db) = path.strip_prefix('/').filter(|p| !p.is_empty()) {
                let db = db
                    .parse()
                    .map_err(|_| bad(url, "the path must be a database number"))?;
                parts.db = Some(db);
            }
            Addr::Tcp {
                host: if host.is_empty() {
                    "127.0.0.1".to_owned()
                } else {
                    host
                },
                port,
            }
        }
        "unix" | "redis+unix" | "valkey+unix" => {
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                return Err(bad(
                    url,
                    "the socket path must be absolute: unix:///path/to.sock",
                ));
            }
            if path.len() <= 1 {
                return Err(bad(url, "no socket path"));
            }
            let bytes: Vec<u8> = percent_decode(path.as_bytes()).collect();
            Addr::Unix(OsString::from_vec(bytes).into())
        }
        "rediss+unix" | "valkeys+unix" => {
            return Err(bad(
                url,
                "no TLS URL for unix sockets: Config::unix_socket(..).tls(..) with \
                 Tls::server_name",
            ));
        }
        other => return Err(bad(url, &format!("unknown scheme {other:?}"))),
    };
    parts.query(url, query)?;
    let config = parts.into_config(url, addr)?;
    if tls {
        return with_tls(url, config);
    }
    Ok(config)
}

/// A `rediss://`/`valkeys://` URL: TLS with the defaults ([`crate::Tls::new`]).
#[cfg(feature = "tls")]
fn with_tls(_url: &str, config: Config) -> Result<Config> {
    Ok(config.tls(crate::Tls::new()))
}

#[cfg(not(feature = "tls"))]
fn with_tls(url: &str, _config: Config) -> Result<Config> {
    Err(bad(
        url,
        "TLS needs ringdis's `tls` feature (ringdis = { features = [\"tls\"] })",
    ))
}

/// `host[:port]` or `[v6]:port`; no port means 6379. The error says what is wrong.
fn host_port(s: &str) -> std::result::Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not an IPv6 address in [ ]");
        }
        match after {
            "" => (h, None),
            _ => (
                h,
                Some(after.strip_prefix(':').ok_or("expected :port after ]")?),
            ),
        }
    } else {
        match s.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err("an IPv6 host goes in brackets: [::1]:6379")
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.contains(['@', ' ', '[', ']', '%', '&', '=', '#', '?']) {
        return Err("the host name has characters a host name cannot have");
    }
    let port = match port {
        None | Some("") => 6379,
        Some(p) => p
            .parse()
            .map_err(|_| "port must be a number from 0 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Addr {
        Addr::Tcp {
            host: host.into(),
            port,
        }
    }

    /// Every accepted form, with what it must give: address, user, password, db, protocol.
    #[test]
    fn every_accepted_form_keeps_every_credential() {
        type Row = (
            &'static str,
            Addr,
            Option<&'static str>,
            Option<&'static str>,
            i64,
            Protocol,
        );
        let r3 = Protocol::Resp3;
        let r2 = Protocol::Resp2;
        let sock = || Addr::Unix("/tmp/x.sock".into());
        let rows: Vec<Row> = vec![
            ("redis://", tcp("127.0.0.1", 6379), None, None, 0, r3),
            ("redis://h", tcp("h", 6379), None, None, 0, r3),
            ("redis://h:6380/3", tcp("h", 6380), None, None, 3, r3),
            ("redis://h/", tcp("h", 6379), None, None, 0, r3),
            ("REDIS://h", tcp("h", 6379), None, None, 0, r3),
            ("valkey://h:7000", tcp("h", 7000), None, None, 0, r3),
            ("redis://u:p@h", tcp("h", 6379), Some("u"), Some("p"), 0, r3),
            ("redis://:p@h", tcp("h", 6379), None, Some("p"), 0, r3),
            // A lone user info is the password, as redis-cli reads it.
            (
                "redis://secret@h",
                tcp("h", 6379),
                None,
                Some("secret"),
                0,
                r3,
            ),
            ("redis://u:@h", tcp("h", 6379), Some("u"), Some(""), 0, r3),
            ("redis://:@h", tcp("h", 6379), None, None, 0, r3),
            (
                "redis://u%40x:p%3Aw%2F%3F%23%40+@h",
                tcp("h", 6379),
                Some("u@x"),
                Some("p:w/?#@+"),
                0,
                r3,
            ),
            // The last @ of the authority ends the user info.
            ("redis://:p@ss@h", tcp("h", 6379), None, Some("p@ss"), 0, r3),
            (
                "redis://:pw@[::1]:7000",
                tcp("::1", 7000),
                None,
                Some("pw"),
                0,
                r3,
            ),
            ("redis://[::1]", tcp("::1", 6379), None, None, 0, r3),
            ("redis://h?db=4", tcp("h", 6379), None, None, 4, r3),
            (
                "redis://h?password=a%2Bb+c",
                tcp("h", 6379),
                None,
                Some("a+b c"),
                0,
                r3,
            ),
            ("redis://h?pass=x", tcp("h", 6379), None, Some("x"), 0, r3),
            (
                "redis://h?user=u&password=x",
                tcp("h", 6379),
                Some("u"),
                Some("x"),
                0,
                r3,
            ),
            (
                "redis://u:x@h?protocol=resp2",
                tcp("h", 6379),
                Some("u"),
                Some("x"),
                0,
                r2,
            ),
            (
                "redis://h?protocol=2&db=1",
                tcp("h", 6379),
                None,
                None,
                1,
                r2,
            ),
            (
                "redis://h?protocol=RESP3",
                tcp("h", 6379),
                None,
                None,
                0,
                r3,
            ),
            ("unix:///tmp/x.sock", sock(), None, None, 0, r3),
            ("unix://localhost/tmp/x.sock", sock(), None, None, 0, r3),
            ("unix://:pw@/tmp/x.sock", sock(), None, Some("pw"), 0, r3),
            (
                "unix://u:pw@/tmp/x.sock?db=2",
                sock(),
                Some("u"),
                Some("pw"),
                2,
                r3,
            ),
            ("unix://pw@/tmp/x.sock", sock(), None, Some("pw"), 0, r3),
            (
                "redis+unix:///tmp/x.sock?pass=pw",
                sock(),
                None,
                Some("pw"),
                0,
                r3,
            ),
            (
                "valkey+unix:///tmp/x.sock?user=u&password=pw&protocol=resp2",
                sock(),
                Some("u"),
                Some("pw"),
                0,
                r2,
            ),
            ("unix:///tmp/x%2Esock", sock(), None, None, 0, r3),
            (
                "unix:///tmp/a@b",
                Addr::Unix("/tmp/a@b".into()),
                None,
                None,
                0,
                r3,
            ),
        ];
        for (url, addr, user, pass, db, protocol) in rows {
            let c = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(c.addr, addr, "{url}");
            assert_eq!(c.username.as_deref(), user, "{url}");
            assert_eq!(c.password.as_deref(), pass, "{url}");
            assert_eq!(c.db, db, "{url}");
            assert_eq!(c.protocol, protocol, "{url}");
        }
    }

    #[test]
    fn tls_urls_turn_tls_on_or_name_the_feature() {
        for url in ["rediss://:hunter2@h:6380/2", "valkeys://h"] {
            #[cfg(feature = "tls")]
            {
                let c = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
                assert!(c.tls.is_some(), "{url}");
                assert!(
                    matches!(c.addr, Addr::Tcp { ref host, .. } if host == "h"),
                    "{url}"
                );
            }
            #[cfg(not(feature = "tls"))]
            {
                let e = parse(url).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(e.contains("`tls` feature"), "{url}: {e}");
                assert!(!e.contains("hunter2"), "{url}: {e}");
            }
        }
    }

    #[test]
    fn refused_forms_say_why_and_never_show_the_password() {
        for (u, why) in [
            ("localhost:6379", "expected redis://"),
            ("redis://h:99999", "port"),
            ("redis://h/x", "database number"),
            ("redis://h/1/2", "database number"),
            ("rediss://:hunter2@h/x", "database number"),
            ("rediss+unix://:hunter2@/tmp/x.sock", "unix sockets"),
            ("valkeys://h:x", "port"),
            ("http://h", "unknown scheme"),
            ("redis://h?foo=1", "unknown parameter"),
            ("redis://h?protocol=4", "protocol"),
            ("redis://h?db=x", "db must be a number"),
            ("unix://", "no socket path"),
            ("unix:///", "no socket path"),
            ("unix://host/tmp/x.sock", "absolute"),
            ("unix://tmp/x.sock", "absolute"),
            ("redis://::1:6379", "brackets"),
            ("redis://[::1", "unclosed"),
            ("redis://[nope]:1", "IPv6"),
            ("redis://[::1]x", "port after ]"),
            // Conflicting settings are refused rather than one silently dropped.
            (
                "redis://:hunter2@h?password=other",
                "password is given twice",
            ),
            (
                "redis://h?pass=hunter2&password=hunter2",
                "password is given twice",
            ),
            ("redis://u:hunter2@h?user=v", "user is given twice"),
            ("redis://h/1?db=2", "database is given twice"),
            (
                "unix://:hunter2@/tmp/x.sock?pass=x",
                "password is given twice",
            ),
            // A user name that would never be sent.
            ("redis://h?user=app", "needs a password"),
            ("unix:///tmp/x.sock?user=app", "needs a password"),
            // Unescaped delimiters in a password.
            ("redis://:hun#ter2@h", "%23"),
            ("redis://:hunter2/x@h", "port"),
            ("redis://h#frag", "fragment"),
            ("redis://:%FFhunter2@h", "UTF-8"),
            ("redis://:hunter2", "port"),
        ] {
            let e = parse(u).unwrap_err();
            assert!(matches!(e, Error::Client { .. }), "{u}: {e:?}");
            let text = e.to_string();
            assert!(text.contains(why), "{u}: {text}");
            for secret in ["hunter2", "hun", "ter2"] {
                assert!(!text.contains(secret), "{u}: the password leaks: {text}");
                assert!(!format!("{e:?}").contains(secret), "{u}: {e:?}");
            }
        }
    }

    proptest::proptest! {
        /// Whatever follows a password, the URL either parses with that password (the rows
        /// above pin which) or is refused with a message that does not contain it.
        #[test]
        fn a_refused_url_never_shows_the_password(
            pw in "Pw[a-z0-9]{6,10}",
            sep in proptest::sample::select(vec!["@", "/", "?", "#", ":", "%", "[", "]", "&", "="]),
            tail in "[a-z0-9@/?#:%=&+\\[\\]]{0,10}",
            scheme in proptest::sample::select(vec!["redis", "unix", "rediss", "valkey+unix", "x"]),
            head in proptest::sample::select(vec![":", "u:", "", "h?password=", "/s?pass+w=", "h:"]),
        ) {
            let url = format!("{scheme}://{head}{pw}{sep}{tail}");
            // With nothing before it and no @ after it, it is a host name, not a password.
            let is_host = head.is_empty() && !format!("{sep}{tail}").contains('@');
            if let (Err(e), false) = (parse(&url), is_host) {
                let text = format!("{e} {e:?}");
                proptest::prop_assert!(!text.contains(&pw), "{}: {}", url, text);
            }
        }

        #[test]
        fn nothing_panics(url in "\\PC{0,40}", tail in "[a-z0-9@/?#:%=&+\\[\\]]{0,20}") {
            let _ = parse(&url);
            let _ = redact(&url);
            let _ = parse(&format!("redis://{tail}"));
            let _ = parse(&format!("unix://{tail}"));
        }
    }

    #[test]
    fn redaction_hides_user_info_and_password_parameters() {
        assert_eq!(redact("redis://u:pw@h:1/2"), "redis://***@h:1/2");
        assert_eq!(
            redact("unix:///s?user=u&password=pw&db=1&PASS=x"),
            "unix:///s?user=u&password=***&db=1&PASS=***"
        );
        assert_eq!(redact("u:pw@h"), "***@h");
        assert_eq!(redact("redis://h"), "redis://h");
        assert_eq!(redact("redis://h:99999/1"), "redis://h:99999/1");
        assert_eq!(redact("redis://[::1]:7/1"), "redis://[::1]:7/1");
        // A password that lost its @ looks like a port.
        assert_eq!(redact("redis://:pw"), "redis://***");
        assert_eq!(redact("redis://h:pw/2?db=1"), "redis://***/2?db=1");
        assert_eq!(redact("redis://:pw]"), "redis://***");
        assert_eq!(
            redact("redis://h?pass+word=pw&db=1"),
            "redis://h?pass+word=***&db=1"
        );
    }
}
