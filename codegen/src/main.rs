//! `ringdis-codegen`: `dump` a live server's command table, or `generate` the typed API.

use std::process::ExitCode;

const USAGE: &str = "usage:
  ringdis-codegen dump --url redis://HOST:PORT [--also redis://HOST:PORT] > commands.json
  ringdis-codegen generate [--spec commands.json] [--replies replies.json]   (Rust to stdout)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let result = match args.first().map(String::as_str) {
        Some("dump") => match opt("--url") {
            Some(url) => ringdis_codegen::dump::dump(url, opt("--also")).map(|t| print!("{t}")),
            None => Err(std::io::Error::other(USAGE)),
        },
        _ => Err(std::io::Error::other(USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringdis-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
