//! Records the fuzz seed corpus from real servers: starts a throwaway Redis 7.0 and Valkey 9,
//! sends a fixed set of commands over a plain `TcpStream` in RESP2 and in RESP3, and saves each
//! raw reply as a seed for the `resp_parse` and `decode_value` fuzz targets (and each session's
//! whole reply stream for `resp_parse`); the `config_url` seeds are the URL forms the docs and tests use.
//!
//! ```text
//! cargo run -p ringdis-tests --example fuzz_seeds   # rewrites fuzz/corpus/*, keeps regression-*
//! ```
//!
//! `resp_parse` seeds start with the target's header byte (see `ringdis::fuzzing::resp_parse`):
//! the replies are spread over three ways of feeding them (one byte at a time, in chunks of 5 and
//! 0, and one byte at a time under tight limits) so the fuzzer starts from each.

use bytes::BytesMut;
use ringdis::Parser;
use ringdis_tests::{Server, ServerKind};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Commands whose replies become seeds, as one whitespace-separated line each (`·` stands for a
/// space inside an argument). The first ones fill the keys the later ones read.
const COMMANDS: &[&str] = &[
    "PING",
    "ECHO hello",
    "SET str hello·world",
    "SET num 42",
    "SET float 3.14",
    "GET str",
    "GET missing",
    "INCR num",
    "INCRBYFLOAT float 0.5",
    "MGET str num missing",
    "HSET user name ada age 36 plan pro born 1815 email ada@example.com",
    "HGETALL user",
    "HMGET user name nope",
    "HRANDFIELD user 2 WITHVALUES",
    "RPUSH list a b c 1 2 3",
    "LRANGE list 0 -1",
    "LPOP list 2",
    "SADD set x y z 1",
    "SMEMBERS set",
    "SMISMEMBER set x q",
    "ZADD z 1 a 2.5 b -inf c 1e300 d inf e",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z d",
    "ZSCORE z c",
    "ZMSCORE z a nope",
    "ZINCRBY z 1.5 a",
    "ZRANDMEMBER z 2 WITHSCORES",
    "ZPOPMIN z",
    "ZRANK z b WITHSCORE",
    "XADD s 1-1 f v",
    "XADD s 2-1 a 1 b 2",
    "XRANGE s - +",
    "XREAD COUNT 2 STREAMS s 0",
    "XGROUP CREATE s g 0",
    "XREADGROUP GROUP g c COUNT 1 STREAMS s >",
    "XPENDING s g",
    "XINFO STREAM s",
    "XINFO STREAM s FULL",
    "XINFO GROUPS s",
    "GEOADD geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEODIST geo Palermo Catania km",
    "GEOPOS geo Palermo nope",
    "GEOSEARCH geo FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHCOORD",
    "PFADD hll a b c",
    "PFCOUNT hll",
    "SCAN 0 COUNT 100",
    "HSCAN user 0",
    "ZSCAN z 0",
    "TYPE z",
    "EXPIRE str 100",
    "TTL str",
    "OBJECT ENCODING z",
    "EXISTS str num nope",
    "MULTI",
    "SET t 1",
    "INCR str",
    "EXEC",
    "GET list",
    "INCR str",
    "NOSUCHCOMMAND x",
    "ZADD z nan x",
    "CLIENT SETNAME fuzz",
    "CLIENT GETNAME",
    "CLIENT INFO",
    "CLIENT TRACKINGINFO",
    "INFO keyspace",
    "CONFIG GET maxmemory*",
    "TIME",
    "ROLE",
    "MEMORY USAGE str",
    "MEMORY DOCTOR",
    "COMMAND COUNT",
    "COMMAND INFO get",
    "COMMAND DOCS get",
    "COMMAND GETKEYS SET a b",
    "ACL WHOAMI",
    "ACL GETUSER default",
    "FUNCTION LIST",
    "EVAL return·{1,2.5,'x',false,{err='E·oops'}} 0",
    "EVAL return·{double=3.5} 0",
    "EVAL return·{big_number='123456789012345678901234567890'} 0",
    "EVAL return·{map={a=1,b={1,2}}} 0",
    "EVAL return·{set={a=true}} 0",
    "EVAL return·{verbatim_string={format='txt',string='hi'}} 0",
    "EVAL redis.setresp(3);·return·redis.call('HGETALL','user') 0",
    "DEBUG PROTOCOL string",
    "DEBUG PROTOCOL integer",
    "DEBUG PROTOCOL double",
    "DEBUG PROTOCOL bignum",
    "DEBUG PROTOCOL null",
    "DEBUG PROTOCOL array",
    "DEBUG PROTOCOL set",
    "DEBUG PROTOCOL map",
    "DEBUG PROTOCOL attrib",
    "DEBUG PROTOCOL push",
    "DEBUG PROTOCOL verbatim",
    "DEBUG PROTOCOL true",
    "DEBUG PROTOCOL false",
];

/// The URL forms of the docs and the URL tests, and near misses, for `config_url`.
const URLS: &[&str] = &[
    "redis://127.0.0.1:6379",
    "redis://127.0.0.1:6379/0",
    "redis://127.0.0.1:6380/3",
    "redis://127.0.0.1",
    "redis://app:s3cret@cache.local:6380/2",
    "redis://u%40x:p%3Aw@host",
    "redis://:pw@[::1]:7000?protocol=resp2",
    "redis://secret@h",
    "redis://user:pass@host:6379/1?protocol=3",
    "redis://h?db=4&username=u&password=p%20w",
    "valkey://localhost",
    "unix:///tmp/r.sock?db=2&password=x",
    "unix:///path/to.sock",
    "unix://:pw@/tmp/x.sock",
    "redis+unix:///tmp/r.sock?protocol=resp3",
    "localhost:6379",
    "redis://h:99999",
    "redis://h/x",
    "rediss://h",
    "valkeys://h:6380",
    "http://h",
    "redis://h?foo=1",
    "unix://",
    "redis://[::1",
    "redis://h:",
    "redis://%ff@h",
    "redis://h?protocol=4",
];

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    parser: Parser,
}

impl Conn {
    fn open(server: &Server) -> Conn {
        let stream = TcpStream::connect((server.host(), server.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        Conn {
            stream,
            buf: BytesMut::new(),
            parser: Parser::default(),
        }
    }

    fn send(&mut self, line: &str) {
        let args: Vec<String> = line.split(' ').map(|a| a.replace('·', " ")).collect();
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.stream.write_all(&out).expect("send");
    }

    /// The raw bytes of the next reply, as the server sent them.
    fn reply(&mut self) -> Vec<u8> {
        loop {
            let before = self.buf.to_vec();
            match self.parser.parse(&mut self.buf) {
                Ok(Some(_)) => return before[..before.len() - self.buf.len()].to_vec(),
                Ok(None) => {
                    let mut chunk = [0u8; 16 * 1024];
                    let n = self.stream.read(&mut chunk).expect("read a reply");
                    assert!(n > 0, "the server closed the connection");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => panic!("the server sent something the parser refuses: {e}"),
            }
        }
    }

    fn call(&mut self, line: &str) -> Vec<u8> {
        self.send(line);
        self.reply()
    }
}

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    /// Saves one reply (or stream of replies) under `name` for both RESP targets.
    fn save(&mut self, name: &str, reply: &[u8]) {
        let header: &[u8] = match self.count % 3 {
            0 => &[0x00],
            1 => &[0x02, 5, 0],
            _ => &[0x80],
        };
        self.count += 1;
        let parse = [header, reply].concat();
        write(&self.dir.join("resp_parse").join(name), &parse);
        write(&self.dir.join("decode_value").join(name), reply);
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn slug(line: &str) -> String {
    let s: String = line
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.chars().take(40).collect()
}

fn record(server: &Server, protocol: u8, seeds: &mut Seeds) {
    let tag = format!("{}-resp{protocol}", server.kind());
    let mut conn = Conn::open(server);
    let mut session = Vec::new();
    let mut n = 0;
    let mut save = |seeds: &mut Seeds, what: &str, reply: Vec<u8>| {
        seeds.save(&format!("{tag}-{n:03}-{}", slug(what)), &reply);
        session.extend_from_slice(&reply);
        n += 1;
    };
    let hello = conn.call(&format!("HELLO {protocol}"));
    save(seeds, "hello", hello);
    conn.call("FLUSHALL");
    for line in COMMANDS {
        let mut reply = conn.call(line);
        if protocol == 3 && *line == "DEBUG PROTOCOL push" {
            // A push frame, then the command's real reply: one seed with both.
            reply.extend(conn.reply());
        }
        save(seeds, line, reply);
    }

    // Pub/sub: subscribe, a message published from another connection, a pattern message.
    let mut publisher = Conn::open(server);
    for line in ["SUBSCRIBE news", "PSUBSCRIBE n*"] {
        let reply = conn.call(line);
        save(seeds, line, reply);
    }
    publisher.call("PUBLISH news hi·there");
    for what in ["message", "pmessage"] {
        let reply = conn.reply();
        save(seeds, what, reply);
    }
    for line in ["UNSUBSCRIBE", "PUNSUBSCRIBE"] {
        let reply = conn.call(line);
        save(seeds, line, reply);
    }

    // Client-side caching: RESP3 sends the invalidation as a push on the same connection.
    if protocol == 3 {
        conn.call("CLIENT TRACKING on");
        conn.call("GET str");
        publisher.call("SET str changed");
        let reply = conn.reply();
        save(seeds, "invalidate", reply);
    }
    // The whole session as one stream, for the parser only (decoding it is the per-reply seeds
    // again, only slower).
    let name = format!("{tag}-session");
    write(
        &seeds.dir.join("resp_parse").join(name),
        &[&[0x00], &session[..]].concat(),
    );
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    // Replace the recorded seeds; keep the regression seeds (`regression-*`, fuzzer finds).
    for target in ["resp_parse", "decode_value", "config_url"] {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).expect("create the corpus folder");
        for entry in std::fs::read_dir(&d).expect("list the corpus folder") {
            let path = entry.expect("list the corpus folder").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !name.starts_with("regression-") {
                std::fs::remove_file(&path).expect("remove an old seed");
            }
        }
    }
    let mut seeds = Seeds {
        dir: dir.clone(),
        count: 0,
    };
    for kind in ServerKind::ALL {
        let server = Server::builder(kind)
            .arg("enable-debug-command", "yes")
            .start();
        println!("recording {kind} {}", server.version());
        for protocol in [2, 3] {
            record(&server, protocol, &mut seeds);
        }
    }
    for (i, url) in URLS.iter().enumerate() {
        write(
            &dir.join("config_url").join(format!("url-{i:02}")),
            url.as_bytes(),
        );
    }
    println!(
        "wrote {} reply seeds and {} URL seeds under {}",
        seeds.count,
        URLS.len(),
        dir.display()
    );
}
