//! Connection URLs: `redis://…`, `valkey://…`, `rediss://…` and `unix://…`.
//!
//! Every form keeps every credential it carries, or is refused with [`Error::Client`]; where
//! the forms overlap with redis-rs (its `parse_redis_url`, `url_to_tcp_connection_info` and
//! `url_to_unix_connection_info`), they mean what they mean there. Error messages show the URL
//! with its password replaced by `***`.
//!
//! | form | address | also read |
//! | --- | --- | --- |
//! | `redis://[[user]:password@]host[:port][/db]` | TCP, port 6379 by default; no host is `127.0.0.1` | `?db=`, `?user=`, `?password=`/`?pass=`, `?protocol=` |
//! | `valkey://…` | the same as `redis://` | the same |
//! | `redis://[::1]:6379` | an IPv6 host, in brackets | |
//! | `rediss://…`, `valkeys://…` | TCP with TLS (needs the `tls` feature; refused without it, never sent in plain text) | `#insecure`: skip certificate checks, as in redis-rs |
//! | `unix:///path/to.sock` (also `redis+unix://`, `valkey+unix://`, `unix://localhost/path`) | a Unix socket | user info `unix://user:pw@/path`, or redis-rs's `?db=`, `?user=`, `?pass=` |
//! | `redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]…]/master[/db]` (also `valkey+sentinel://`; `rediss+sentinel://`, `valkeys+sentinel://` with TLS to every node) | a primary managed by Sentinel ([`Config::sentinel`]): the sentinels are listed, port 26379 by default; the path names the master, then the database | `?sentinel_username=`, `?sentinel_password=` (the sentinels' credentials; the user info is the data nodes'), and the rest as for `redis://` |
//!
//! * `?protocol=resp2` / `resp3` (or `2` / `3`, any case), as redis-rs spells it; without it,
//!   RESP3 (redis-rs's default is RESP2).
//! * The database goes in the path (`redis://h/2`, trailing `/` allowed) or in `?db=`, not both.
//! * A lone `redis://secret@host` is a password, as redis-cli reads it; `user:` with an empty
//!   password is kept (a `nopass` ACL user).
//! * An unknown query parameter is ignored with a `tracing` warning (redis-rs ignores them
//!   silently), so a URL written for another client still connects.
//! * A setting given twice (`redis://:a@h?password=b`) is refused rather than one silently
//!   dropped.
//! * The Sentinel form is the one the Python packages `Redis-Sentinel-Url` and redis-vl (Python
//!   and Java) define, and Prefect accepts: `redis+sentinel://` with a comma-separated list of
//!   sentinels, the master (service) name as the first path segment and the database as the
//!   second, sentinel credentials as `sentinel_`-prefixed parameters, and a `rediss+` scheme
//!   for TLS to the sentinels and the data nodes alike. (Lettuce's `redis-sentinel://…#master`
//!   and go-redis's `FailoverOptions` carry the same settings in other places.)

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
/// not a plain `host:port`, the value of every query parameter but `db`, `protocol`, `user` and
/// `username`, and every query word without a value.
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
                    // A bare `?word` may be a misplaced password.
                    None if !pair.is_empty() && !is_plain_key(pair) => "***".to_owned(),
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
    // A Sentinel URL lists several `host:port`s.
    let plain = authority.split(',').all(|one| {
        let host = match one.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => one,
        };
        host_port(host).is_ok()
    });
    if plain {
        rest.to_owned()
    } else {
        format!("***{tail}")
    }
}

/// Query parameters whose values are never secret.
fn is_plain_key(k: &str) -> bool {
    matches!(
        k.to_ascii_lowercase().as_str(),
        "db" | "protocol" | "user" | "username" | "sentinel_username" | "sentinel_user"
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
    /// `rediss://`/`valkeys://`: what the URL asks of TLS.
    tls: Option<UrlTls>,
    /// `redis+sentinel://`: the master name and the sentinels.
    sentinel: Option<(String, Vec<Addr>)>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

/// TLS as a `rediss://` or `valkeys://` URL asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlTls {
    /// `#insecure` (redis-rs's spelling): accept any certificate, for development only.
    pub(crate) insecure: bool,
}

/// Hands the URL's TLS request to the configuration: [`crate::Tls::new`]'s defaults, without
/// certificate checks for `#insecure`.
#[cfg(feature = "tls")]
fn apply_tls(config: &mut Config, tls: UrlTls, _url: &str) -> Result<()> {
    let mut settings = crate::Tls::new();
    if tls.insecure {
        settings = settings.danger_accept_invalid_certs();
    }
    config.tls = Some(settings);
    Ok(())
}

/// Without TLS support the URL is refused: a `rediss://` URL must never connect in plain text.
#[cfg(not(feature = "tls"))]
fn apply_tls(_config: &mut Config, _tls: UrlTls, url: &str) -> Result<()> {
    Err(bad(
        url,
        "TLS (rediss://, valkeys://) needs ringdis's `tls` feature \
         (ringdis = { features = [\"tls\"] })",
    ))
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
                "sentinel_username" | "sentinel_user" => {
                    let what = "the sentinel user";
                    Parts::set(url, &mut self.sentinel_username, v, what)?
                }
                "sentinel_password" => {
                    let what = "the sentinel password";
                    Parts::set(url, &mut self.sentinel_password, v, what)?
                }
                "protocol" => {
                    let p = match v.to_ascii_lowercase().as_str() {
                        "2" | "resp2" => Protocol::Resp2,
                        "3" | "resp3" => Protocol::Resp3,
                        _ => return Err(bad(url, "protocol must be resp2 or resp3")),
                    };
                    Parts::set(url, &mut self.protocol, p, "the protocol")?;
                }
                other => warn_unknown(url, other, pair.contains('=')),
            }
        }
        Ok(())
    }

    fn into_config(self, url: &str, addr: Addr) -> Result<Config> {
        let tls = self.tls;
        if self.username.is_some() && self.password.is_none() {
            // It would never be sent: a user name goes out only with AUTH.
            return Err(bad(
                url,
                "a user name needs a password (user:password@ or &password=)",
            ));
        }
        let mut config = Config::new();
        match self.sentinel {
            Some((master, sentinels)) => {
                if self.sentinel_username.is_some() && self.sentinel_password.is_none() {
                    return Err(bad(url, "sentinel_username needs sentinel_password"));
                }
                config = config.with_sentinels(master, sentinels);
                if let Some(s) = &mut config.sentinel {
                    s.username = self.sentinel_username;
                    s.password = self.sentinel_password;
                }
            }
            None if self.sentinel_username.is_some() || self.sentinel_password.is_some() => {
                return Err(bad(
                    url,
                    "sentinel_username and sentinel_password are for redis+sentinel:// URLs",
                ));
            }
            None => config.addr = addr,
        }
        config.username = self.username;
        config.password = self.password;
        config.db = self.db.unwrap_or(0);
        if let Some(p) = self.protocol {
            config.protocol = p;
        }
        if let Some(tls) = tls {
            apply_tls(&mut config, tls, url)?;
        }
        Ok(config)
    }
}

/// An unknown query parameter is ignored, as redis-rs ignores it, but said (with the `tracing`
/// feature): a typo (`?protocl=resp2`) would otherwise go unseen. Only its name is shown, and
/// only when it has a value (a bare `?word` may be a misplaced password).
#[cfg(feature = "tracing")]
fn warn_unknown(url: &str, name: &str, has_value: bool) {
    let name = if has_value {
        name
    } else {
        "(a parameter without =)"
    };
    crate::trace::warning!(url = %redact(url), parameter = name, "ignoring an unknown URL parameter");
}

#[cfg(not(feature = "tracing"))]
fn warn_unknown(_url: &str, _name: &str, _has_value: bool) {}

impl Config {
    /// Parses a connection URL; where a form is also redis-rs's, it means the same there:
    ///
    /// * `redis://[[user]:password@]host[:port][/db]` (also `valkey://`); an IPv6 host goes in
    ///   brackets (`redis://[::1]:6379`); no host means `127.0.0.1`.
    /// * `rediss://…` and `valkeys://…`: as `redis://`, over TLS with `Tls::new()`'s defaults
    ///   (the Mozilla roots; `#insecure` skips certificate checks, as in redis-rs). They need
    ///   the `tls` feature: without it they are refused, naming the feature, never sent in plain
    ///   text. For a private CA or a client certificate, set `Config::tls` after parsing:
    ///   `Config::from_url("rediss://cache:6380")?.tls(Tls::new().ca_file("ca.pem")?)`.
    /// * `unix://[[user]:password@]/path/to.sock` (also `redis+unix://`, `valkey+unix://`,
    ///   `unix://localhost/path`).
    /// * `redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]…]/master[/db]` (also
    ///   `valkey+sentinel://`; `rediss+sentinel://` and `valkeys+sentinel://` use TLS for the
    ///   sentinels and the data nodes): a primary managed by Sentinel ([`Config::sentinel`]).
    ///   Sentinels default to port 26379; the user info is the data nodes' credentials, and
    ///   `?sentinel_username=`/`?sentinel_password=` the sentinels'.
    ///
    /// A lone `redis://secret@host` is a password, as redis-cli reads it. User and password are
    /// percent-decoded (write `@` as `%40`, `:` as `%3A`, `/` as `%2F`, `#` as `%23`).
    ///
    /// Query parameters, on every form: `db`, `user` (or `username`), `password` (or `pass`,
    /// as redis-rs names it for unix sockets) and `protocol` (`resp2`/`resp3` or `2`/`3`). Their
    /// values are form-decoded: `+` is a space, `%2B` a plus sign. Any other parameter is
    /// ignored (with a warning through `tracing`, with the `tracing` feature), so a URL written
    /// for another client still connects. Client-side caching has no parameter: set
    /// [`Config::cache`] in code.
    ///
    /// ```
    /// use ringdis::{Addr, Config};
    /// let c = Config::from_url("redis://app:s3cret@[::1]:6380/2?protocol=resp2&client_name=x")?;
    /// assert_eq!(c.addr(), &Addr::Tcp { host: "::1".into(), port: 6380 });
    /// assert_eq!(c.db_index(), 2);
    /// let c = Config::from_url("unix:///run/redis.sock?db=1&user=app&pass=s3cret")?;
    /// assert_eq!(c.addr(), &Addr::Unix("/run/redis.sock".into()));
    /// assert_eq!(c.db_index(), 1);
    /// let c = Config::from_url("redis+sentinel://:pw@s1,s2:26380/mymaster/3?sentinel_password=x")?;
    /// assert_eq!(c.sentinel_master(), Some("mymaster"));
    /// assert_eq!(c.sentinels()[1], Addr::Tcp { host: "s2".into(), port: 26380 });
    /// assert_eq!(c.db_index(), 3);
    /// # Ok::<(), ringdis::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Client`] for anything it cannot keep whole: an unknown scheme, a setting given
    /// twice (`redis://:a@h?password=b`, `redis://h/1?db=2`), a user name without a password (it
    /// would never be sent), `rediss://`/`valkeys://` without TLS support, a fragment other than
    /// `#insecure` on those, a relative socket path, a bad port, protocol or database number.
    /// The message shows the URL with its password replaced by `***` (and the whole authority
    /// when it is not a plain `host:port`: `redis://h:pw/2` may be a password that lost its
    /// `@`).
    pub fn from_url(url: &str) -> Result<Config> {
        parse(url)
    }
}

fn parse(url: &str) -> Result<Config> {
    let (parts, addr) = parse_parts(url)?;
    parts.into_config(url, addr)
}

/// What the URL says, not yet checked as a whole.
fn parse_parts(url: &str) -> Result<(Parts, Addr)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad(url, "expected redis://host:port or unix:///path"))?;
    let scheme = scheme.to_ascii_lowercase();
    let is_tls = matches!(
        scheme.as_str(),
        "rediss" | "valkeys" | "rediss+sentinel" | "valkeys+sentinel"
    );
    let mut insecure = false;
    let rest = match rest.split_once('#') {
        // redis-rs's `rediss://host/#insecure`.
        Some((before, "insecure")) if is_tls => {
            insecure = true;
            before
        }
        Some((_, fragment)) => {
            let why = if fragment.contains('@') {
                "a # in the user info must be written %23"
            } else if is_tls {
                "the only fragment is #insecure"
            } else {
                "a URL fragment (#…) means nothing here"
            };
            return Err(bad(url, why));
        }
        None => rest,
    };
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
    if is_tls {
        parts.tls = Some(UrlTls { insecure });
    }
    let addr = match scheme.as_str() {
        "redis" | "valkey" | "rediss" | "valkeys" => {
            let (host, port) = host_port(host).map_err(|why| bad(url, why))?;
            // One trailing `/` is allowed (`redis://h/2/`), as redis-rs trims it.
            let db = path.strip_prefix('/').unwrap_or(path);
            let db = db.strip_suffix('/').unwrap_or(db);
            if !db.is_empty() {
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
        "redis+sentinel" | "valkey+sentinel" | "rediss+sentinel" | "valkeys+sentinel" => {
            let sentinels = sentinel_list(host).map_err(|why| bad(url, why))?;
            let path = path.strip_prefix('/').unwrap_or(path);
            let path = path.strip_suffix('/').unwrap_or(path);
            let (master, db) = match path.split_once('/') {
                Some((m, db)) => (m, Some(db)),
                None => (path, None),
            };
            if master.is_empty() {
                return Err(bad(
                    url,
                    "the master name goes in the path: redis+sentinel://host:26379/mymaster",
                ));
            }
            let master = decode_userinfo(url, master)?;
            if let Some(db) = db {
                let db = db.parse().map_err(|_| {
                    bad(
                        url,
                        "the path after the master name must be a database number",
                    )
                })?;
                parts.db = Some(db);
            }
            let first = sentinels[0].clone();
            parts.sentinel = Some((master, sentinels));
            first
        }
        "rediss+unix" | "valkeys+unix" => {
            return Err(bad(
                url,
                "no TLS URL for unix sockets: Config::unix_socket(..).tls(..) with \
                 Tls::server_name",
            ));
        }
        "redis-cluster" | "rediss-cluster" | "valkey-cluster" | "valkeys-cluster" => {
            return Err(bad(
                url,
                "no cluster scheme: give ClusterClient::open the redis:// (or rediss://) URL of \
                 one or more of the cluster's nodes",
            ));
        }
        other => return Err(bad(url, &format!("unknown scheme {other:?}"))),
    };
    parts.query(url, query)?;
    Ok((parts, addr))
}

/// The sentinels of a `redis+sentinel://` URL: `host[:port]` (port 26379 by default), separated
/// by commas.
fn sentinel_list(s: &str) -> std::result::Result<Vec<Addr>, &'static str> {
    s.split(',')
        .map(|one| {
            if one.is_empty() {
                return Err("an empty sentinel address (list them as host1:26379,host2:26379)");
            }
            let (host, port) = host_port_or(one, 26379)?;
            if host.is_empty() {
                return Err("a sentinel address without a host");
            }
            Ok(Addr::Tcp { host, port })
        })
        .collect()
}

/// `host[:port]` or `[v6]:port`; no port means 6379. The error says what is wrong.
fn host_port(s: &str) -> std::result::Result<(String, u16), &'static str> {
    host_port_or(s, 6379)
}

/// [`host_port`] with `default` for the port.
fn host_port_or(s: &str, default: u16) -> std::result::Result<(String, u16), &'static str> {
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
            _ if s.contains(',') => {
                return Err("one URL names one server: several hosts go in a \
                            redis+sentinel:// URL (sentinels) or one URL each to \
                            ClusterClient::open (a cluster's nodes)")
            }
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
        None | Some("") => default,
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
            ("redis://[::1]:6379/2/", tcp("::1", 6379), None, None, 2, r3),
            (
                "valkey://u:p@[fe80::1]/5",
                tcp("fe80::1", 6379),
                Some("u"),
                Some("p"),
                5,
                r3,
            ),
            // Unknown parameters are ignored (with a warning), as redis-rs ignores them.
            (
                "redis://h?foo=1&db=3&client_name=x&protocol=resp2",
                tcp("h", 6379),
                None,
                None,
                3,
                r2,
            ),
            ("redis://h?bare", tcp("h", 6379), None, None, 0, r3),
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

    /// `rediss://`/`valkeys://` parse like `redis://` and carry the TLS request (with redis-rs's
    /// `#insecure`); without TLS support the URL is refused, never used in plain text (the
    /// next test).
    #[test]
    fn tls_schemes_carry_the_tls_request() {
        for (url, insecure, host, port, db) in [
            ("rediss://h", false, "h", 6379, 0),
            ("rediss://u:p@h:6380/2", false, "h", 6380, 2),
            ("valkeys://[::1]:7000", false, "::1", 7000, 0),
            ("rediss://h/#insecure", true, "h", 6379, 0),
            ("REDISS://h:1/3#insecure", true, "h", 1, 3),
            ("valkeys://h?protocol=resp2#insecure", true, "h", 6379, 0),
        ] {
            let (parts, addr) = parse_parts(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parts.tls, Some(UrlTls { insecure }), "{url}");
            assert_eq!(addr, tcp(host, port), "{url}");
            assert_eq!(parts.db.unwrap_or(0), db, "{url}");
        }
        for url in ["redis://h", "valkey://h", "unix:///tmp/x.sock"] {
            assert_eq!(parse_parts(url).unwrap().0.tls, None, "{url}");
        }
    }

    /// An unknown parameter is ignored but reported through `tracing`, by name, never its value.
    #[cfg(feature = "tracing")]
    #[test]
    fn an_unknown_parameter_is_ignored_with_a_warning() {
        use std::fmt::Write as _;
        use std::sync::{Arc, Mutex};
        use tracing::field::{Field, Visit};
        /// Records each event as `LEVEL field=value …`.
        #[derive(Default)]
        struct Record(Arc<Mutex<String>>);
        struct Line<'a>(&'a mut String);
        impl Visit for Line<'_> {
            fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
                let _ = write!(self.0, " {}={v:?}", f.name());
            }
        }
        impl tracing::Subscriber for Record {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                let mut out = self.0.lock().unwrap();
                let _ = write!(out, "{}", event.metadata().level());
                event.record(&mut Line(&mut out));
                out.push('\n');
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let record = Record::default();
        let logged = record.0.clone();
        let config = tracing::subscriber::with_default(record, || {
            parse("redis://h?protocl=resp2&password=hunter2&hunter3")
        })
        .unwrap();
        let logged = logged.lock().unwrap().clone();
        assert_eq!(config.protocol, Protocol::Resp3, "the typo is not read");
        assert_eq!(config.password.as_deref(), Some("hunter2"));
        assert!(logged.contains("WARN"), "{logged}");
        assert!(
            logged.contains("ignoring an unknown URL parameter"),
            "{logged}"
        );
        assert!(logged.contains("protocl"), "{logged}");
        assert_eq!(logged.matches("ignoring").count(), 2, "{logged}");
        assert!(!logged.contains("hunter"), "a value leaks: {logged}");
    }

    #[test]
    fn tls_urls_turn_tls_on_or_name_the_feature() {
        for url in ["rediss://:hunter2@h:6380/2", "valkeys://h"] {
            #[cfg(feature = "tls")]
            {
                let c = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
                assert!(c.tls.is_some(), "{url}");
                let checked = format!("{:?}", c.tls);
                assert!(
                    checked.contains("danger_accept_invalid_certs: false"),
                    "{checked}"
                );
                let insecure = parse(&format!("{url}#insecure")).unwrap();
                let unchecked = format!("{:?}", insecure.tls);
                assert!(
                    unchecked.contains("danger_accept_invalid_certs: true"),
                    "{unchecked}"
                );
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
            // What other clients accept for a cluster says what to write instead.
            ("redis-cluster://h:7000", "ClusterClient::open"),
            ("redis://h1:7000,h2:7001", "ClusterClient::open"),
            ("redis://h1,h2", "redis+sentinel://"),
            ("rediss://h#other", "#insecure"),
            ("redis://h#insecure", "fragment"),
            ("rediss+unix:///tmp/x.sock", "unix sockets"),
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
        assert_eq!(redact("redis://h?hunter2&db=1"), "redis://h?***&db=1");
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

    /// The Sentinel form: the sentinels listed (port 26379 by default), the master and the
    /// database in the path, the user info for the data nodes, `sentinel_` parameters for the
    /// sentinels, TLS for both with the `rediss+`/`valkeys+` schemes.
    #[test]
    fn sentinel_urls_list_the_sentinels_and_name_the_master() {
        let c = parse("redis+sentinel://u:pw@s1,s2:26380,[::1]:7/mymaster/2?sentinel_password=sp")
            .unwrap();
        let s = c.sentinel.as_ref().unwrap();
        assert_eq!(s.master, "mymaster");
        assert_eq!(
            s.sentinels,
            [tcp("s1", 26379), tcp("s2", 26380), tcp("::1", 7)]
        );
        assert_eq!(s.username, None);
        assert_eq!(s.password.as_deref(), Some("sp"));
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.db, 2);
        assert_eq!(c.addr, tcp("s1", 26379), "addr() is the first sentinel");

        let c = parse(
            "valkey+sentinel://h/my%20master/?protocol=resp2&sentinel_username=su&sentinel_password=sp&db=1",
        )
        .unwrap();
        let s = c.sentinel.as_ref().unwrap();
        assert_eq!(s.master, "my master");
        assert_eq!(s.sentinels, [tcp("h", 26379)]);
        assert_eq!(s.username.as_deref(), Some("su"));
        assert_eq!(
            (c.db, c.protocol, c.password.as_ref()),
            (1, Protocol::Resp2, None)
        );

        for url in ["rediss+sentinel://h/m", "valkeys+sentinel://h/m#insecure"] {
            let (parts, _) = parse_parts(url).unwrap();
            assert!(parts.tls.is_some(), "{url}");
            assert!(parts.sentinel.is_some(), "{url}");
        }
        assert!(parse("redis://h").unwrap().sentinel.is_none());
        // The sentinel password is hidden from errors like any other.
        assert_eq!(
            redact("redis+sentinel://:pw@a:1,b:2/m?sentinel_password=x&sentinel_username=u"),
            "redis+sentinel://***@a:1,b:2/m?sentinel_password=***&sentinel_username=u"
        );
        assert_eq!(
            redact("redis+sentinel://a:1,b:2/m"),
            "redis+sentinel://a:1,b:2/m"
        );
    }

    #[test]
    fn refused_sentinel_urls_say_why() {
        for (u, why) in [
            ("redis+sentinel://h", "master name"),
            ("redis+sentinel://h/", "master name"),
            ("redis+sentinel://h:1,,h:2/m", "empty sentinel"),
            ("redis+sentinel://h:1,/m", "empty sentinel"),
            ("redis+sentinel://:1/m", "without a host"),
            ("redis+sentinel://h:x/m", "port"),
            ("redis+sentinel://h/m/x", "database number"),
            ("redis+sentinel://h/m/1?db=2", "database is given twice"),
            (
                "redis+sentinel://h/m?sentinel_password=hunter2&sentinel_password=b",
                "sentinel password is given twice",
            ),
            (
                "redis+sentinel://h/m?sentinel_username=u",
                "needs sentinel_password",
            ),
            ("redis://h?sentinel_password=hunter2", "redis+sentinel://"),
            ("redis+sentinel://h/m#insecure", "fragment"),
        ] {
            let e = parse(u).unwrap_err();
            assert!(matches!(e, Error::Client { .. }), "{u}: {e:?}");
            let text = e.to_string();
            assert!(text.contains(why), "{u}: {text}");
            assert!(!text.contains("hunter2"), "{u}: {text}");
        }
    }
}
