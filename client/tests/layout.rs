//! The crate's layout rule: no two files import each other.
//!
//! The test reads every `client/src/**/*.rs`, builds the module tree from the `mod` declarations
//! (honouring `#[path]`), and collects, per file, the files whose items it names through
//! `crate::`, `$crate::`, `super::`, `self::` or a child module's name (in `use` trees and in
//! expression/type paths alike; comments and string literals are skipped). A path is followed
//! through `use` re-exports to the file that defines the item, so `crate::Error` counts as a use
//! of `error.rs`, not of `lib.rs`. Any pair of files that name each other fails the test, and
//! the message names both files and the paths each one uses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Pairs that may still import each other, each with the reason. Keep this empty.
/// The test fails when a listed pair no longer imports each other, so the list only shrinks.
const KNOWN_CYCLES: &[(&str, &str, &str)] = &[];

/// The first segment of a binding to another crate's item (`pub use bytes::Bytes`).
const EXTERN: &str = "<extern>";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    PathSep,
    Punct(char),
}

/// Splits Rust source into the few token kinds the scan needs, dropping comments and the
/// contents of char/string literals (strings are kept only for `#[path = "..."]`).
fn tokenize(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && b.get(i + 1) == Some(&'r')))
            && raw_string_start(&b, i).is_some()
        {
            let (hashes, body) = raw_string_start(&b, i).unwrap_or((0, i));
            let mut j = body;
            let mut text = String::new();
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                text.push(b[j]);
                j += 1;
            }
            out.push(Tok::Str(text));
            i = j;
        } else if c == '"' || (c == 'b' && b.get(i + 1) == Some(&'"')) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            let mut text = String::new();
            while j < b.len() && b[j] != '"' {
                if b[j] == '\\' {
                    j += 1;
                }
                if let Some(&ch) = b.get(j) {
                    text.push(ch);
                }
                j += 1;
            }
            out.push(Tok::Str(text));
            i = j + 1;
        } else if c == '\'' || (c == 'b' && b.get(i + 1) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}', b'x') or a lifetime ('a).
            let start = if c == 'b' { i + 1 } else { i };
            if b.get(start + 1) == Some(&'\\') {
                // Past the backslash and the escaped character (which may be a quote).
                let mut j = start + 3;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if b.get(start + 2) == Some(&'\'') {
                i = start + 3;
            } else {
                // A lifetime: skip the quote, the name is read as an identifier next.
                i = start + 1;
            }
        } else if c == '$' || c == '_' || c.is_alphanumeric() {
            let mut j = i + 1;
            while j < b.len() && (b[j] == '_' || b[j].is_alphanumeric()) {
                j += 1;
            }
            let word: String = b[i..j].iter().collect();
            let word = word.strip_prefix("r#").unwrap_or(&word).to_string();
            out.push(Tok::Ident(word));
            i = j;
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push(Tok::PathSep);
            i += 2;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// At `r"`, `r#"`, `br"`, `br#"`: the number of `#` and the index of the body.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (b[i - 1] == '_' || b[i - 1].is_alphanumeric()) {
        return None;
    }
    let mut j = i + if b[i] == 'b' { 2 } else { 1 };
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// One path a file names, absolute from the crate root, with the module it was written in
/// (for the message).
#[derive(Debug, Clone)]
struct Use {
    path: Vec<String>,
    written: String,
}

#[derive(Debug, Default)]
struct Module {
    /// The file this module lives in (inline modules share their file's).
    file: PathBuf,
    /// `use` bindings: name -> absolute path (private ones too: children see them via `super`).
    bindings: HashMap<String, Vec<String>>,
}

struct Crate {
    src: PathBuf,
    modules: BTreeMap<Vec<String>, Module>,
    uses: BTreeMap<PathBuf, Vec<Use>>,
}

impl Crate {
    fn load(src: &Path) -> Crate {
        let mut krate = Crate {
            src: src.to_path_buf(),
            modules: BTreeMap::new(),
            uses: BTreeMap::new(),
        };
        krate.load_file(vec![], &src.join("lib.rs"), true);
        krate
    }

    /// Reads one file as module `path`. `owns_dir` is true for lib.rs and mod.rs, whose
    /// children live next to them; a `foo.rs`'s children live in `foo/`.
    fn load_file(&mut self, path: Vec<String>, file: &Path, owns_dir: bool) {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let toks = tokenize(&text);
        let dir = file.parent().expect("a file has a parent").to_path_buf();
        let child_dir = if owns_dir {
            dir.clone()
        } else {
            dir.join(file.file_stem().expect("a .rs file has a stem"))
        };
        // First pass: module declarations (so relative paths know the child names).
        let mut scope = vec![path.clone()];
        let mut depth_of_scope = vec![0usize];
        let mut depth = 0usize;
        let mut children = Vec::new();
        let mut pending_path: Option<String> = None;
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                Tok::Punct('#') => {
                    // #[path = "x"]
                    if let (
                        Some(Tok::Punct('[')),
                        Some(Tok::Ident(a)),
                        Some(Tok::Punct('=')),
                        Some(Tok::Str(s)),
                    ) = (
                        toks.get(i + 1),
                        toks.get(i + 2),
                        toks.get(i + 3),
                        toks.get(i + 4),
                    ) {
                        if a == "path" {
                            pending_path = Some(s.clone());
                        }
                    }
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let Some(Tok::Ident(name)) = toks.get(i + 1) {
                        let mut m = scope.last().expect("scope is never empty").clone();
                        m.push(name.clone());
                        match toks.get(i + 2) {
                            Some(Tok::Punct(';')) if scope.len() == 1 => {
                                let child = match pending_path.take() {
                                    Some(p) => (dir.join(p), true),
                                    None if child_dir.join(format!("{name}.rs")).exists() => {
                                        (child_dir.join(format!("{name}.rs")), false)
                                    }
                                    None => (child_dir.join(name).join("mod.rs"), true),
                                };
                                children.push((m, child));
                            }
                            Some(Tok::Punct('{')) => {
                                self.modules.insert(
                                    m.clone(),
                                    Module {
                                        file: file.to_path_buf(),
                                        ..Module::default()
                                    },
                                );
                                depth += 1;
                                scope.push(m);
                                depth_of_scope.push(depth);
                                i += 3;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    pending_path = None;
                }
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    if depth_of_scope.last() == Some(&depth) && scope.len() > 1 {
                        scope.pop();
                        depth_of_scope.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                Tok::Punct(';') => pending_path = None,
                _ => {}
            }
            i += 1;
        }
        self.modules.insert(
            path.clone(),
            Module {
                file: file.to_path_buf(),
                ..Module::default()
            },
        );
        let child_names: BTreeSet<String> = children
            .iter()
            .map(|(m, _)| m.last().expect("a child has a name").clone())
            .collect();

        // Second pass: paths, with the module each one is written in.
        let mut uses = Vec::new();
        let mut scope = vec![path.clone()];
        let mut depth_of_scope = vec![0usize];
        let mut depth = 0usize;
        let mut i = 0;
        while i < toks.len() {
            let here = scope.last().expect("scope is never empty").clone();
            match &toks[i] {
                Tok::Ident(kw) if kw == "mod" => {
                    if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                        (toks.get(i + 1), toks.get(i + 2))
                    {
                        let mut m = here.clone();
                        m.push(name.clone());
                        depth += 1;
                        scope.push(m);
                        depth_of_scope.push(depth);
                        i += 3;
                        continue;
                    }
                }
                Tok::Ident(kw) if kw == "use" => {
                    let mut leaves = Vec::new();
                    i = parse_use_tree(&toks, i + 1, Vec::new(), &mut leaves);
                    for (rel, alias) in leaves {
                        let at_file_level = here == path;
                        let abs = absolute(&here, &rel, at_file_level.then_some(&child_names));
                        if let (None, Some(name)) = (&abs, &alias) {
                            // A name from another crate: no file of this one defines it.
                            self.modules
                                .get_mut(&here)
                                .expect("the module being read is registered")
                                .bindings
                                .insert(name.clone(), vec![EXTERN.to_string()]);
                        }
                        if let Some(abs) = abs {
                            if let Some(name) = alias {
                                self.modules
                                    .get_mut(&here)
                                    .expect("the module being read is registered")
                                    .bindings
                                    .insert(name, abs.clone());
                            }
                            uses.push(Use {
                                path: abs,
                                written: rel.join("::"),
                            });
                        }
                    }
                    continue;
                }
                Tok::Ident(first)
                    if matches!(first.as_str(), "crate" | "$crate" | "super" | "self")
                        || (scope.len() == 1 && child_names.contains(first)) =>
                {
                    let preceded_by_sep = i > 0 && toks[i - 1] == Tok::PathSep;
                    if !preceded_by_sep && toks.get(i + 1) == Some(&Tok::PathSep) {
                        let mut rel = vec![first.clone()];
                        let mut j = i + 1;
                        while toks.get(j) == Some(&Tok::PathSep) {
                            match toks.get(j + 1) {
                                Some(Tok::Ident(seg)) => rel.push(seg.clone()),
                                _ => break,
                            }
                            j += 2;
                        }
                        let at_file_level = scope.len() == 1;
                        if let Some(abs) =
                            absolute(&here, &rel, at_file_level.then_some(&child_names))
                        {
                            uses.push(Use {
                                path: abs,
                                written: rel.join("::"),
                            });
                        }
                        i = j;
                        continue;
                    }
                }
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    if depth_of_scope.last() == Some(&depth) && scope.len() > 1 {
                        scope.pop();
                        depth_of_scope.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            i += 1;
        }
        self.uses.insert(file.to_path_buf(), uses);
        for (m, (child, owns)) in children {
            self.load_file(m, &child, owns);
        }
    }

    /// The file that defines what `path` names: the deepest module on it, followed through
    /// `use` bindings; a glob or an unknown name stops at the module that holds it.
    fn resolve(&self, path: &[String], hops: usize) -> Option<PathBuf> {
        if path.first().map(String::as_str) == Some(EXTERN) {
            return None;
        }
        let mut module: Vec<String> = Vec::new();
        for (k, seg) in path.iter().enumerate() {
            let mut next = module.clone();
            next.push(seg.clone());
            if self.modules.contains_key(&next) {
                module = next;
                continue;
            }
            let m = self.modules.get(&module)?;
            if hops < 16 {
                if let Some(target) = m.bindings.get(seg) {
                    let mut rest = target.clone();
                    rest.extend(path[k + 1..].iter().cloned());
                    if rest != path {
                        return self.resolve(&rest, hops + 1);
                    }
                }
            }
            return Some(m.file.clone());
        }
        self.modules.get(&module).map(|m| m.file.clone())
    }

    fn name(&self, file: &Path) -> String {
        file.strip_prefix(&self.src)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// file -> (file it uses -> the paths, as written, that lead there).
    fn graph(&self) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
        let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (file, uses) in &self.uses {
            let from = self.name(file);
            let entry = graph.entry(from.clone()).or_default();
            for u in uses {
                if let Some(target) = self.resolve(&u.path, 0) {
                    let to = self.name(&target);
                    if to != from {
                        entry.entry(to).or_default().insert(u.written.clone());
                    }
                }
            }
        }
        graph
    }
}

/// Reads a use tree starting at `i`; pushes each leaf as (path, bound name). Returns the index
/// after the tree (after the `;` at the top level).
fn parse_use_tree(
    toks: &[Tok],
    mut i: usize,
    prefix: Vec<String>,
    leaves: &mut Vec<(Vec<String>, Option<String>)>,
) -> usize {
    let mut path = prefix;
    loop {
        match toks.get(i) {
            Some(Tok::PathSep) => i += 1,
            Some(Tok::Ident(s)) if s == "as" => {
                if let Some(Tok::Ident(alias)) = toks.get(i + 1) {
                    let alias = (alias != "_").then(|| alias.clone());
                    leaves.push((path.clone(), alias));
                    path.clear();
                }
                i += 2;
            }
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Punct('*')) => {
                leaves.push((path.clone(), None));
                path.clear();
                i += 1;
            }
            Some(Tok::Punct('{')) => {
                let base = path.clone();
                path.clear();
                i += 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        _ => i = parse_use_tree(toks, i, base.clone(), leaves),
                    }
                }
            }
            Some(Tok::Punct(',')) | Some(Tok::Punct('}')) | Some(Tok::Punct(';')) | None => {
                if !path.is_empty() {
                    let name = path.last().cloned().filter(|n| n != "self");
                    let mut p = path.clone();
                    if p.last().map(String::as_str) == Some("self") {
                        p.pop();
                    }
                    let name = name.or_else(|| p.last().cloned());
                    leaves.push((p, name));
                }
                if toks.get(i) == Some(&Tok::Punct(';')) {
                    i += 1;
                }
                return i;
            }
            Some(_) => i += 1,
        }
    }
}

/// Makes `rel`, written in module `here`, absolute. Paths into other crates give `None`.
fn absolute(
    here: &[String],
    rel: &[String],
    children: Option<&BTreeSet<String>>,
) -> Option<Vec<String>> {
    let mut base = here.to_vec();
    let mut k = 0;
    match rel.first().map(String::as_str) {
        Some("crate") | Some("$crate") => {
            base.clear();
            k = 1;
        }
        Some("self") => k = 1,
        Some("super") => {
            while rel.get(k).map(String::as_str) == Some("super") {
                base.pop()?;
                k += 1;
            }
        }
        Some(first) if children.is_some_and(|c| c.contains(first)) => {}
        _ => return None,
    }
    base.extend(rel[k..].iter().cloned());
    Some(base)
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("client/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_source_file_is_in_the_module_tree() {
    let krate = Crate::load(&src_dir());
    let mut on_disk = Vec::new();
    rs_files(&src_dir(), &mut on_disk);
    // The checked-in generated code (scripts/generate) is not a module: commands.rs and
    // route/mod.rs `include!` it, so it is part of those files, as it was from OUT_DIR.
    let generated = src_dir().join("generated");
    let unread: Vec<String> = on_disk
        .iter()
        .filter(|f| !f.starts_with(&generated))
        .filter(|f| !krate.uses.contains_key(*f))
        .map(|f| krate.name(f))
        .collect();
    assert!(
        unread.is_empty(),
        "files the layout scan did not reach from lib.rs: {unread:?}"
    );
}

#[test]
fn no_two_files_import_each_other() {
    let krate = Crate::load(&src_dir());
    let graph = krate.graph();
    let known = |a: &str, b: &str| {
        KNOWN_CYCLES
            .iter()
            .any(|(x, y, _)| (*x == a && *y == b) || (*x == b && *y == a))
    };
    let mut report = String::new();
    let mut seen_known = BTreeSet::new();
    for (a, targets) in &graph {
        for (b, a_paths) in targets {
            if a >= b {
                continue;
            }
            let Some(b_paths) = graph.get(b).and_then(|t| t.get(a)) else {
                continue;
            };
            if known(a, b) {
                seen_known.insert((a.clone(), b.clone()));
                continue;
            }
            let _ = writeln!(
                report,
                "{a} <-> {b}\n  {a} uses {a_paths:?}\n  {b} uses {b_paths:?}"
            );
        }
    }
    assert!(report.is_empty(), "files that import each other:\n{report}");
    // An exception that no longer applies must go, so the list never hides a new cycle.
    for (a, b, why) in KNOWN_CYCLES {
        let pair = if a < b { (a, b) } else { (b, a) };
        assert!(
            seen_known.contains(&(pair.0.to_string(), pair.1.to_string())),
            "{a} <-> {b} no longer import each other ({why}): delete it from KNOWN_CYCLES"
        );
    }
}

#[test]
fn the_scan_sees_a_cycle_and_follows_reexports() {
    let dir = std::env::temp_dir().join(format!("ringdis-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("m")).expect("temp dir");
    let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).expect("temp file");
    write(
        "lib.rs",
        "mod a;\nmod b;\nmod m;\npub use a::A;\npub use bytes::Bytes;\n#[path = \"c_file.rs\"]\nmod c;\n",
    );
    write(
        "a.rs",
        "pub struct A;\nfn f<'a>(_: &'a str) { let _ = ('\\'', '\"', crate::m::Leaf); }\n",
    );
    write(
        "b.rs",
        "/* crate::a::A */ use crate::A as _; // crate::c\nconst S: &str = \"crate::c::X\";\n",
    );
    write("m/mod.rs", "mod leaf;\npub use leaf::Leaf;\n");
    write(
        "m/leaf.rs",
        "pub struct Leaf;\nfn g() -> crate::A { crate::A }\n",
    );
    write("c_file.rs", "use super::b;\nfn h(_: crate::Bytes) {}\n");
    let krate = Crate::load(&dir);
    let graph = krate.graph();
    let _ = std::fs::remove_dir_all(&dir);
    let targets = |f: &str| -> Vec<String> {
        graph
            .get(f)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    // crate::A goes through lib.rs's re-export to a.rs; comments and strings are not uses.
    assert_eq!(targets("b.rs"), vec!["a.rs".to_string()]);
    // crate::m::Leaf goes through m/mod.rs's re-export to m/leaf.rs.
    assert_eq!(targets("a.rs"), vec!["m/leaf.rs".to_string()]);
    assert_eq!(targets("m/leaf.rs"), vec!["a.rs".to_string()]);
    assert_eq!(targets("c_file.rs"), vec!["b.rs".to_string()]);
    assert_eq!(targets("m/mod.rs"), vec!["m/leaf.rs".to_string()]);
}
