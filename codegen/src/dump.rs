//! `dump`: reads a live server's command table into `commands.json`.
//!
//! `COMMAND INFO` gives arity, flags, key specs and tips; `COMMAND DOCS` gives the summary,
//! `since`, group, complexity, deprecation and the argument tree. Both are merged per command
//! (subcommands nested under their parent), each command is marked with whether the probe
//! server (Redis 7.0) has it too, and the result is written with sorted keys so that a refresh
//! is a readable diff. Reply types are not in here: they live in `replies.json` beside it.

use crate::resp::Conn;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeSet;
use std::io;

/// Fields of `COMMAND DOCS` kept in the dump (`history` is left out: long, and no use here).
const DOC_FIELDS: &[&str] = &[
    "summary",
    "since",
    "group",
    "complexity",
    "doc_flags",
    "deprecated_since",
    "replaced_by",
    "arguments",
];

fn info_entry(info: &Json) -> io::Result<(String, Map<String, Json>)> {
    let a = info
        .as_array()
        .filter(|a| a.len() >= 10)
        .ok_or_else(|| io::Error::other(format!("unexpected COMMAND INFO entry {info}")))?;
    let name = a[0].as_str().unwrap_or_default().to_ascii_lowercase();
    let mut m = Map::new();
    m.insert("arity".into(), a[1].clone());
    m.insert("flags".into(), a[2].clone());
    m.insert("tips".into(), a[7].clone());
    m.insert("key_specs".into(), a[8].clone());
    let mut subs = Map::new();
    for sub in a[9].as_array().into_iter().flatten() {
        let (n, e) = info_entry(sub)?;
        subs.insert(n, Json::Object(e));
    }
    if !subs.is_empty() {
        m.insert("subcommands".into(), Json::Object(subs));
    }
    Ok((name, m))
}

fn merge_docs(entry: &mut Map<String, Json>, docs: Option<&Json>) {
    let Some(docs) = docs.and_then(Json::as_object) else {
        return;
    };
    for f in DOC_FIELDS {
        if let Some(v) = docs.get(*f) {
            entry.insert((*f).into(), v.clone());
        }
    }
    let sub_docs = docs.get("subcommands");
    if let Some(Json::Object(subs)) = entry.get_mut("subcommands") {
        for (name, sub) in subs.iter_mut() {
            if let Json::Object(sub) = sub {
                merge_docs(sub, sub_docs.and_then(|d| d.get(name)));
            }
        }
    }
}

fn mark(entry: &mut Map<String, Json>, name: &str, probe: &BTreeSet<String>) {
    entry.insert("redis_7_0".into(), Json::Bool(probe.contains(name)));
    if let Some(Json::Object(subs)) = entry.get_mut("subcommands") {
        for (n, sub) in subs.iter_mut() {
            if let Json::Object(sub) = sub {
                mark(sub, n, probe);
            }
        }
    }
}

fn names(info: &Json, out: &mut BTreeSet<String>) {
    for c in info.as_array().into_iter().flatten() {
        if let Some(n) = c.get(0).and_then(Json::as_str) {
            out.insert(n.to_ascii_lowercase());
        }
        if let Some(subs) = c.get(9) {
            names(subs, out);
        }
    }
}

fn server_version(conn: &mut Conn) -> io::Result<String> {
    let info = conn.call(&["INFO", "server"])?;
    let text = info.as_str().unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    Ok(match field("valkey_version:") {
        Some(v) => format!("valkey {v}"),
        None => format!("redis {}", field("redis_version:").unwrap_or_default()),
    })
}

/// Dumps `url`'s command table, marking what `probe` (if any) has too, as pretty JSON.
pub fn dump(url: &str, probe: Option<&str>) -> io::Result<String> {
    let mut conn = Conn::open(url)?;
    let info = conn.call(&["COMMAND", "INFO"])?;
    let docs = conn.call(&["COMMAND", "DOCS"])?;
    let source = server_version(&mut conn)?;
    let (probe_names, probe_version) = match probe {
        Some(p) => {
            let mut c = Conn::open(p)?;
            let mut n = BTreeSet::new();
            names(&c.call(&["COMMAND", "INFO"])?, &mut n);
            (Some(n), Some(server_version(&mut c)?))
        }
        None => (None, None),
    };
    let mut commands = Map::new();
    for c in info.as_array().into_iter().flatten() {
        let (name, mut entry) = info_entry(c)?;
        merge_docs(&mut entry, docs.get(&name));
        if let Some(p) = &probe_names {
            mark(&mut entry, &name, p);
        }
        commands.insert(name, Json::Object(entry));
    }
    let doc = json!({
        "source": source,
        "probe": probe_version,
        "commands": commands,
    });
    let mut text = serde_json::to_string_pretty(&doc).map_err(io::Error::other)?;
    text.push('\n');
    Ok(text)
}
