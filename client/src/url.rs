//! Connection URLs: `redis://…` and `unix://…`.

use crate::config::{Addr, Config, Protocol};
use crate::{Error, Result};
use percent_encoding::percent_decode_str;

fn bad(url: &str, why: &str) -> Error {
    Error::client(format!("invalid URL {url:?}: {why}"))
}

fn decode(url: &str, s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad(url, "user or password is not UTF-8 after percent-decoding"))
}

pub(crate) fn parse(url: &str) -> Result<Config> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad(url, "expected redis://host:port or unix:///path"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let mut config = Config::new();
    match scheme {
        "redis" | "valkey" => {
            let (userinfo, hostpart) = match rest.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, rest),
            };
            if let Some(userinfo) = userinfo {
                let (user, pass) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                match pass {
                    Some(p) => {
                        if !user.is_empty() {
                            config.username = Some(decode(url, user)?);
                        }
                        config.password = Some(decode(url, p)?);
                    }
                    // `redis://secret@host`: a lone userinfo is the password, as redis-cli reads it.
                    None if !user.is_empty() => config.password = Some(decode(url, user)?),
                    None => {}
                }
            }
            let (hostport, path) = match hostpart.split_once('/') {
                Some((h, p)) => (h, p),
                None => (hostpart, ""),
            };
            let (host, port) = split_host_port(url, hostport)?;
            config.addr = Addr::Tcp {
                host: if host.is_empty() {
                    "127.0.0.1".to_owned()
                } else {
                    host
                },
                port,
            };
            if !path.is_empty() {
                config.db = path
                    .parse()
                    .map_err(|_| bad(url, "the path must be a database number"))?;
            }
        }
        "unix" | "redis+unix" => {
            let path = rest.rsplit_once('@').map_or(rest, |(_, p)| p);
            if path.is_empty() {
                return Err(bad(url, "no socket path"));
            }
            config.addr = Addr::Unix(path.into());
        }
        "rediss" | "valkeys" => return Err(bad(url, "TLS is not supported yet")),
        other => return Err(bad(url, &format!("unknown scheme {other:?}"))),
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "db" => config.db = v.parse().map_err(|_| bad(url, "db must be a number"))?,
            "user" | "username" => config.username = Some(decode(url, v)?),
            "password" => config.password = Some(decode(url, v)?),
            "protocol" => {
                config.protocol = match v {
                    "2" | "resp2" => Protocol::Resp2,
                    "3" | "resp3" => Protocol::Resp3,
                    _ => return Err(bad(url, "protocol must be resp2 or resp3")),
                }
            }
            other => return Err(bad(url, &format!("unknown parameter {other:?}"))),
        }
    }
    Ok(config)
}

fn split_host_port(url: &str, s: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(url, "unclosed [ in host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None | Some("") => 6379,
        Some(p) => p
            .parse()
            .map_err(|_| bad(url, "port must be a number from 0 to 65535"))?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_urls() {
        let c = parse("redis://127.0.0.1:6380/3").unwrap();
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "127.0.0.1".into(),
                port: 6380
            }
        );
        assert_eq!(c.db, 3);
        let c = parse("redis://u%40x:p%3Aw@host").unwrap();
        assert_eq!(c.username.as_deref(), Some("u@x"));
        assert_eq!(c.password.as_deref(), Some("p:w"));
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "host".into(),
                port: 6379
            }
        );
        let c = parse("redis://:pw@[::1]:7000?protocol=resp2").unwrap();
        assert_eq!(c.username, None);
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "::1".into(),
                port: 7000
            }
        );
        assert_eq!(c.protocol, Protocol::Resp2);
        assert_eq!(
            parse("redis://secret@h").unwrap().password.as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn unix_urls() {
        let c = parse("unix:///tmp/r.sock?db=2&password=x").unwrap();
        assert_eq!(c.addr, Addr::Unix("/tmp/r.sock".into()));
        assert_eq!(c.db, 2);
        assert_eq!(c.password.as_deref(), Some("x"));
    }

    #[test]
    fn bad_urls_say_why() {
        for (u, why) in [
            ("localhost:6379", "expected redis://"),
            ("redis://h:99999", "port"),
            ("redis://h/x", "database number"),
            ("rediss://h", "TLS"),
            ("http://h", "unknown scheme"),
            ("redis://h?foo=1", "unknown parameter"),
            ("unix://", "no socket path"),
        ] {
            let e = parse(u).unwrap_err();
            assert!(matches!(e, Error::Client { .. }));
            assert!(e.to_string().contains(why), "{u}: {e}");
        }
    }
}
