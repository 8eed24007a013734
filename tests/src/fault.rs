//! A scripted fake server for faults a real one cannot produce: garbage bytes, truncated frames,
//! stalls. Each accepted connection is handed to the script in turn, on one thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A listening fake server. Its script runs once per accepted connection, one at a time.
#[derive(Debug)]
pub struct FaultServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultServer {
    /// Listens on a free loopback port and runs `script` for every connection, in order.
    pub fn start<F>(mut script: F) -> FaultServer
    where
        F: FnMut(FaultConn) + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let number = count.fetch_add(1, Ordering::AcqRel);
                let _ = stream.set_nodelay(true);
                let Ok(reader) = stream.try_clone() else {
                    continue;
                };
                script(FaultConn {
                    number,
                    reader: BufReader::new(reader),
                    stream,
                });
            }
        });
        FaultServer {
            port,
            accepted,
            stop,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag (it may be busy with a stalled script: then it
        // stops when that connection ends).
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One accepted connection, as the script sees it.
#[derive(Debug)]
pub struct FaultConn {
    number: usize,
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl FaultConn {
    /// 0 for the first connection the server accepted, 1 for the next…
    pub fn number(&self) -> usize {
        self.number
    }

    /// Reads one command (a RESP array of bulk strings, or an inline command); `None` when the
    /// client closed the connection or sent something else.
    pub fn read_command(&mut self) -> Option<Vec<Vec<u8>>> {
        let line = self.line()?;
        let Some(count) = line.strip_prefix(b"*") else {
            // Inline command.
            let text = String::from_utf8(line).ok()?;
            return Some(
                text.split_whitespace()
                    .map(|w| w.as_bytes().to_vec())
                    .collect(),
            );
        };
        let count: usize = std::str::from_utf8(count).ok()?.parse().ok()?;
        let mut args = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let header = self.line()?;
            let len: usize = std::str::from_utf8(header.strip_prefix(b"$")?)
                .ok()?
                .parse()
                .ok()?;
            let mut arg = vec![0; len + 2];
            self.reader.read_exact(&mut arg).ok()?;
            arg.truncate(len);
            args.push(arg);
        }
        Some(args)
    }

    /// Answers the client's handshake the way a RESP2-only server with no password would (HELLO
    /// is an unknown command; AUTH, SELECT and CLIENT succeed), and returns the first
    /// command that is not part of it.
    pub fn handshake_resp2(&mut self) -> Option<Vec<Vec<u8>>> {
        loop {
            let cmd = self.read_command()?;
            let name = cmd.first()?.to_ascii_uppercase();
            match &name[..] {
                b"HELLO" => self.write(b"-ERR unknown command 'HELLO'\r\n"),
                b"AUTH" | b"SELECT" | b"CLIENT" => self.reply_ok(),
                _ => return Some(cmd),
            }
        }
    }

    /// Writes raw bytes (ignoring errors: the client may be gone, which a script expects).
    pub fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Writes `+OK`.
    pub fn reply_ok(&mut self) {
        self.write(b"+OK\r\n");
    }

    /// Reads and ignores everything until the client closes the connection.
    pub fn stall(mut self) {
        let mut sink = [0u8; 4096];
        while matches!(self.reader.read(&mut sink), Ok(n) if n > 0) {}
    }

    /// Closes the connection now.
    pub fn close(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn line(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).ok()?;
        if !line.ends_with(b"\r\n") {
            return None;
        }
        line.truncate(line.len() - 2);
        Some(line)
    }
}
