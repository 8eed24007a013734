//! [`RawConn`]: a plain RESP connection outside the client, for what a test needs a connection
//! to do that the client refuses on purpose (`CLIENT TRACKING … REDIRECT`, `SELECT`, `WAIT`
//! alone) or to read a reply exactly as the server sends it.

use bytes::BytesMut;
use ringdis::{Cmd, Parser, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One blocking TCP connection to a server on loopback, one command at a time.
pub struct RawConn {
    sock: TcpStream,
    parser: Parser,
    input: BytesMut,
}

impl RawConn {
    /// Connects to `127.0.0.1:port`; with `resp3`, sends `HELLO 3` first. Reads time out after
    /// 10 s, failing the test rather than hanging it.
    pub fn connect(port: u16, resp3: bool) -> RawConn {
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("raw connection");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut conn = RawConn {
            sock,
            parser: Parser::default(),
            input: BytesMut::new(),
        };
        if resp3 {
            conn.call(&ringdis::cmd!("HELLO", 3));
        }
        conn
    }

    /// Sends `cmd` and reads its reply.
    pub fn call(&mut self, cmd: &Cmd) -> Value {
        let mut out = BytesMut::new();
        ringdis::resp::write_command(&mut out, cmd.args().len(), cmd.args().encoded());
        self.sock.write_all(&out).expect("raw write");
        loop {
            if let Some(v) = self.parser.parse(&mut self.input).expect("valid RESP") {
                return v;
            }
            let mut chunk = [0u8; 4096];
            let n = self.sock.read(&mut chunk).expect("raw read");
            assert!(n > 0, "the server closed the raw connection");
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}
