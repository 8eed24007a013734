//! A tiny blocking RESP2/RESP3 client, just enough for `COMMAND DOCS` and `COMMAND INFO`.
//!
//! The generator is a build-dependency of `ringdis`, so it cannot use `ringdis` itself.

use serde_json::{Map, Number, Value as Json};
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;

/// A connection speaking RESP3 (after `HELLO 3`).
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    /// Connects to `redis://host:port` (or `host:port`) and switches to RESP3.
    pub fn open(url: &str) -> io::Result<Conn> {
        let addr = url.strip_prefix("redis://").unwrap_or(url);
        let addr = addr.split('/').next().unwrap_or(addr);
        let stream = TcpStream::connect(addr)?;
        let mut conn = Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        conn.call(&["HELLO", "3"])?;
        Ok(conn)
    }

    /// Sends one command and reads its reply as JSON (maps become objects, sets sorted arrays).
    pub fn call(&mut self, args: &[&str]) -> io::Result<Json> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer.write_all(out.as_bytes())?;
        self.read()
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed"));
        }
        if !line.ends_with("\r\n") {
            return Err(bad("truncated line"));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read(&mut self) -> io::Result<Json> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1);
        let num = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| bad(format!("bad number {s:?}")))
        };
        Ok(match kind {
            "+" => Json::String(rest.into()),
            "-" | "!" => return Err(bad(format!("server error: {rest}"))),
            ":" => Json::Number(num(rest)?.into()),
            "," => Number::from_f64(rest.parse().map_err(|_| bad("bad double"))?)
                .map_or(Json::Null, Json::Number),
            "#" => Json::Bool(rest == "t"),
            "_" => Json::Null,
            "$" | "=" | "(" => {
                let n = num(rest)?;
                if n < 0 {
                    return Ok(Json::Null);
                }
                let mut buf = vec![0; n as usize + 2];
                io::Read::read_exact(&mut self.reader, &mut buf)?;
                buf.truncate(n as usize);
                let mut s = String::from_utf8(buf).map_err(|_| bad("non-UTF-8 string"))?;
                if kind == "=" {
                    s = s.get(4..).unwrap_or_default().to_string();
                }
                Json::String(s)
            }
            "*" | "~" | ">" => {
                let n = num(rest)?;
                if n < 0 {
                    return Ok(Json::Null);
                }
                let mut items = (0..n)
                    .map(|_| self.read())
                    .collect::<io::Result<Vec<_>>>()?;
                if kind == "~" {
                    items.sort_by_key(|v| v.to_string());
                }
                Json::Array(items)
            }
            "%" | "|" => {
                let n = num(rest)?;
                let mut map = Map::new();
                for _ in 0..n {
                    let k = match self.read()? {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    map.insert(k, self.read()?);
                }
                if kind == "|" {
                    // An attribute precedes the real reply.
                    return self.read();
                }
                Json::Object(map)
            }
            _ => return Err(bad(format!("unknown RESP type {kind:?}"))),
        })
    }
}
