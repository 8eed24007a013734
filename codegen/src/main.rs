//! `ringdis-codegen`: `dump` a live server's command table, or `generate` the typed API.

use std::process::ExitCode;

const USAGE: &str = "usage:
  ringdis-codegen refresh      (starts Valkey 9 and Redis 7.0, rewrites commands.json)
  ringdis-codegen dump --url redis://HOST:PORT [--also redis://HOST:PORT] > commands.json
  ringdis-codegen generate [--spec commands.json] [--replies replies.json]   (Rust to stdout)
  ringdis-codegen write        (rewrites client/src/generated/ from commands.json, replies.json)";

fn out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::io::stdout().lock().write_all(text.as_bytes())
}

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
            Some(url) => ringdis_codegen::dump::dump(url, opt("--also")).and_then(|t| out(&t)),
            None => Err(std::io::Error::other(USAGE)),
        },
        Some("refresh") => {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../commands.json");
            ringdis_codegen::servers::refresh().and_then(|text| std::fs::write(&path, text))
        }
        Some("generate") => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let spec = opt("--spec").map_or(root.join("commands.json"), Into::into);
            let replies = opt("--replies").map_or(root.join("replies.json"), Into::into);
            std::fs::read_to_string(&spec)
                .and_then(|s| Ok((s, std::fs::read_to_string(&replies)?)))
                .and_then(|(s, r)| ringdis_codegen::generate(&s, &r).map_err(std::io::Error::other))
                .and_then(|code| out(&code))
        }
        Some("write") => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let read = |name: &str| std::fs::read_to_string(root.join(name));
            read("commands.json")
                .and_then(|s| Ok((s, read("replies.json")?)))
                .and_then(|(s, r)| {
                    ringdis_codegen::generated_files(&s, &r).map_err(std::io::Error::other)
                })
                .and_then(|files| {
                    let dir = root.join("client/src/generated");
                    files
                        .iter()
                        .try_for_each(|(name, text)| std::fs::write(dir.join(name), text))
                })
        }
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
