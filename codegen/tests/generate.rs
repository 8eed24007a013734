//! The generator on the real spec (coverage, determinism, reply data) and on small specs
//! (each lowering rule, checked on the emitted Rust).

use ringdis_codegen::generate;
use serde_json::Value as Json;
use std::collections::BTreeSet;

fn root(file: &str) -> String {
    let p = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Eligible commands, computed here from the JSON itself (not through the crate's model).
fn eligible_from_json() -> BTreeSet<String> {
    let spec: Json = serde_json::from_str(&root("commands.json")).unwrap();
    let skip = |c: &Json| {
        c["doc_flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "syscmd" || x == "experimental"))
            || c["group"] == "sentinel"
    };
    let mut out = BTreeSet::new();
    for (name, c) in spec["commands"].as_object().unwrap() {
        if skip(c) {
            continue;
        }
        let subs = c["subcommands"].as_object();
        if subs.is_none_or(|s| s.is_empty()) || c["arity"] == -1 {
            out.insert(name.clone());
        }
        for (sub, s) in subs.into_iter().flatten() {
            if !skip(s) {
                out.insert(sub.clone());
            }
        }
    }
    out
}

/// The method names of `trait Commands` in generated code.
fn trait_methods(code: &str) -> Vec<String> {
    let file = syn::parse_file(code).expect("generated code parses");
    for item in file.items {
        if let syn::Item::Trait(t) = item {
            if t.ident == "Commands" {
                return t
                    .items
                    .iter()
                    .filter_map(|i| match i {
                        syn::TraitItem::Fn(f) if f.sig.ident != "into_target" => {
                            Some(f.sig.ident.to_string())
                        }
                        _ => None,
                    })
                    .collect();
            }
        }
    }
    panic!("no trait Commands")
}

fn rust_name(spec_name: &str) -> String {
    let n = spec_name.replace(['|', '-'], "_");
    match n.as_str() {
        "type" | "move" => format!("{n}_"),
        _ => n,
    }
}

#[test]
fn one_method_per_eligible_command() {
    let code = generate(&root("commands.json"), &root("replies.json")).unwrap();
    let methods = trait_methods(&code);
    let eligible = eligible_from_json();
    // Plus one `<method>_multiple` per `whole_blocks` entry (`hset_multiple`).
    let o: serde_json::Value = serde_json::from_str(ringdis_codegen::OVERRIDES).unwrap();
    let whole: Vec<String> = o["whole_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let command = w["argument"].as_str().unwrap().split(' ').next().unwrap();
            format!("{}_multiple", rust_name(command))
        })
        .collect();
    assert_eq!(whole, ["hset_multiple"]);
    assert_eq!(methods.len(), eligible.len() + whole.len());
    let have: BTreeSet<String> = methods.into_iter().collect();
    let want: BTreeSet<String> = eligible.iter().map(|n| rust_name(n)).chain(whole).collect();
    assert_eq!(have, want);
    // Skipped for good reasons only.
    assert!(!have.contains("replconf") && !have.contains("config"));
    assert!(have.contains("command") && have.contains("config_get") && have.contains("type_"));
}

#[test]
fn reply_data_covers_every_command_with_known_shapes() {
    let replies: serde_json::Map<String, Json> =
        serde_json::from_str(&root("replies.json")).unwrap();
    let names: BTreeSet<String> = replies.keys().cloned().collect();
    assert_eq!(
        names,
        eligible_from_json(),
        "replies.json and commands.json disagree"
    );
    for (name, shape) in &replies {
        let shape = shape.as_str().unwrap();
        assert!(
            ringdis_codegen::model::reply_type(shape).is_some(),
            "{name}: unknown shape {shape}"
        );
    }
    // Typed, not `any`, for the everyday commands.
    for (c, s) in [
        ("get", "bulk_or_nil"),
        ("set", "ok_or_nil"),
        ("incr", "int"),
        ("hgetall", "map"),
        ("mget", "array_bulk_or_nil"),
        ("zscore", "double_or_nil"),
        ("exists", "int"),
        ("sismember", "bool"),
    ] {
        assert_eq!(replies[c], s, "{c}");
    }
}

#[test]
fn output_is_deterministic_and_formatted() {
    let a = generate(&root("commands.json"), &root("replies.json")).unwrap();
    let b = generate(&root("commands.json"), &root("replies.json")).unwrap();
    assert_eq!(a, b);
    let file = syn::parse_file(&a).unwrap();
    let again = prettyplease::unparse(&file);
    // The same, up to the blank lines the generator adds between items.
    let tidy = |s: &str| {
        s.replace(" < ", "<")
            .replace(" >", ">")
            .lines()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        tidy(&a[a.find('\n').unwrap() + 1..]),
        tidy(&again),
        "not prettyplease-formatted"
    );
    assert!(a.contains("}\n\nbuilder!(Get);\n\n"), "items are set apart");
}

fn spec(commands: &str) -> String {
    format!(r#"{{"source": "test", "commands": {{ {commands} }}}}"#)
}

/// The built-in overrides without their `reply_options`: the small specs below leave out most
/// of the options those name (an option that is not there is an error).
fn overrides_without_reply_options() -> String {
    let mut o: serde_json::Value = serde_json::from_str(ringdis_codegen::OVERRIDES).unwrap();
    o.as_object_mut().unwrap().remove("reply_options");
    o.to_string()
}

fn gen(commands: &str, replies: &str) -> String {
    let code = ringdis_codegen::generate_with(
        &spec(commands),
        replies,
        &overrides_without_reply_options(),
    )
    .unwrap();
    // Compare signatures without formatting noise.
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn keywords_get_a_trailing_underscore() {
    let code = gen(
        r#""type": {"arity": 2, "group": "generic", "since": "1.0.0",
            "arguments": [{"name": "key", "type": "key"}]},
           "scan": {"arity": -2, "group": "generic", "since": "2.8.0",
            "arguments": [{"name": "cursor", "type": "integer"},
                          {"name": "pattern", "type": "pattern", "token": "MATCH", "flags": ["optional"]}]}"#,
        r#"{"type": "simple"}"#,
    );
    assert!(code.contains("fn type_(self, key: impl ToArg) -> Type<Self::Target>"));
    assert!(code.contains("pub fn match_(mut self, pattern: impl ToArg) -> Self"));
    // A cursor is unsigned 64-bit: any ToArg, not i64.
    assert!(code.contains("fn scan(self, cursor: impl ToArg)"));
    assert!(code.contains("pub struct Type<T: Dispatch, Reply = String>"));
    assert!(code.contains("pub struct Scan<T: Dispatch, Reply = Value>"));
}

#[test]
fn deprecated_names_the_replacement() {
    let code = gen(
        r#""getset": {"arity": 3, "group": "string", "since": "1.0.0", "summary": "Old.",
            "complexity": "O(1)", "doc_flags": ["deprecated"], "deprecated_since": "6.2.0",
            "replaced_by": "`SET` with the `!GET` argument",
            "arguments": [{"name": "key", "type": "key"}, {"name": "value", "type": "string"}]}"#,
        "{}",
    );
    assert!(code.contains(
        r#"#[deprecated(since = "6.2.0", note = "replaced by SET with the !GET argument")]"#
    ));
    assert!(code.contains("/// `GETSET key value`"));
    assert!(code.contains("/// Old."));
    assert!(code.contains("/// - complexity: O(1)"));
    assert!(code.contains("/// - since: 1.0.0"));
}

#[test]
fn numkeys_is_derived_and_multiples_take_collections() {
    let code = gen(
        r#""zunionstore": {"arity": -4, "group": "sorted-set", "since": "2.0.0", "arguments": [
            {"name": "destination", "type": "key"},
            {"name": "numkeys", "type": "integer"},
            {"name": "key", "type": "key", "flags": ["multiple"]},
            {"name": "weight", "type": "integer", "token": "WEIGHTS", "flags": ["optional", "multiple"]},
            {"name": "aggregate", "type": "oneof", "token": "AGGREGATE", "flags": ["optional"], "arguments": [
                {"name": "sum", "type": "pure-token", "token": "SUM"},
                {"name": "max", "type": "pure-token", "token": "MAX"}]}]}"#,
        "{}",
    );
    assert!(code.contains("fn zunionstore( self, destination: impl ToArg, key: impl ToArg, )"));
    // numkeys is segment 1, rewritten from the items of `key` (segment 2) after each write.
    assert!(code.contains(
        "fn recount(&mut self) { let n = self.layout.items(2); let mut part = self.part(1); part.clear(); part.arg(n); }"
    ));
    assert!(code.contains(
        r#"if self.part(Self::WEIGHT).is_empty() { self.part(Self::WEIGHT).token("WEIGHTS"); }"#
    ));
    assert!(code.contains("pub fn aggregate(mut self, aggregate: Aggregate) -> Self"));
    assert!(code.contains("pub enum Aggregate { /// `SUM` Sum, /// `MAX` Max, }"));
}

#[test]
fn oneofs_become_one_method_per_alternative() {
    let code = gen(
        r#""set": {"arity": -3, "group": "string", "since": "1.0.0", "arguments": [
            {"name": "key", "type": "key"}, {"name": "value", "type": "string"},
            {"name": "condition", "type": "oneof", "flags": ["optional"], "arguments": [
                {"name": "nx", "type": "pure-token", "token": "NX"},
                {"name": "xx", "type": "pure-token", "token": "XX"}]},
            {"name": "expiration", "type": "oneof", "flags": ["optional"], "arguments": [
                {"name": "seconds", "type": "integer", "token": "EX"},
                {"name": "unix-time-seconds", "type": "unix-time", "token": "EXAT"}]}]}"#,
        r#"{"set": "ok_or_nil"}"#,
    );
    for sig in [
        "pub fn nx(mut self) -> Self { self.part(Self::CONDITION).clear(); self.part(Self::CONDITION).token(\"NX\"); self }",
        "pub fn ex(mut self, seconds: i64) -> Self",
        "pub fn exat(mut self, unix_time_seconds: impl UnixTime) -> Self { let unix_time_seconds = unix_time_seconds.unix_seconds();",
    ] {
        assert!(code.contains(sig), "{sig}");
    }
    // Wire order comes from the segments, not from the call order: each field writes into its
    // own segment of the one command buffer.
    assert!(code.contains(
        "const KEY: usize = 0; /// The segment of `value`. const VALUE: usize = 1; /// The segment of `condition`. const CONDITION: usize = 2; /// The segment of `expiration`. const EXPIRATION: usize = 3;"
    ));
    assert!(code.contains("layout: Layout<4>,"));
    assert!(code.contains("pub struct Set<T: Dispatch, Reply = Option<()>>"));
}

#[test]
fn multiple_token_repeats_and_pairs_read_well() {
    let code = gen(
        r#""sort": {"arity": -2, "group": "generic", "since": "1.0.0", "arguments": [
            {"name": "key", "type": "key"},
            {"name": "get-pattern", "type": "pattern", "token": "GET", "flags": ["optional", "multiple", "multiple_token"]}]},
           "mset": {"arity": -3, "group": "string", "since": "1.0.1", "arguments": [
            {"name": "data", "type": "block", "flags": ["multiple"], "arguments": [
                {"name": "key", "type": "key"}, {"name": "value", "type": "string"}]}]},
           "hset": {"arity": -4, "group": "hash", "since": "2.0.0", "arguments": [
            {"name": "key", "type": "key"},
            {"name": "data", "type": "block", "flags": ["multiple"], "arguments": [
                {"name": "field", "type": "string"}, {"name": "value", "type": "string"}]}]}"#,
        "{}",
    );
    assert!(code.contains(r#"self.part(Self::GET_PATTERN).many_each("GET", get_pattern, false);"#));
    assert!(code.contains(
        "fn mset( self, data: impl IntoIterator<Item = (impl ToArg, impl ToArg)>, ) -> Mset<Self::Target>"
    ));
    assert!(code.contains(
        "fn hset( self, key: impl ToArg, field: impl ToArg, value: impl ToArg, ) -> Hset<Self::Target>"
    ));
    assert!(code.contains("pub fn and(mut self, field: impl ToArg, value: impl ToArg) -> Self"));
    // `whole_blocks`: HSET's pairs also taken whole, each pair one item of the block.
    assert!(code.contains(
        "fn hset_multiple( self, key: impl ToArg, fields: impl FieldValues, ) -> Hset<Self::Target> { Hset::new_hset_multiple(self.into_target(), key, fields) }"
    ));
    assert!(code.contains("this.part(Self::DATA).grouped(fields, 2);"));
    assert!(!code.contains("fn mset_multiple"), "only the listed blocks");
}

/// A `whole_blocks` entry must name a required multiple block after other parameters.
#[test]
fn whole_blocks_name_a_block_after_other_parameters() {
    let cmds = spec(
        r#""mset": {"arity": -3, "group": "string", "since": "1.0.1", "arguments": [
            {"name": "data", "type": "block", "flags": ["multiple"], "arguments": [
                {"name": "key", "type": "key"}, {"name": "value", "type": "string"}]}]},
           "hset": {"arity": -4, "group": "hash", "since": "2.0.0", "arguments": [
            {"name": "key", "type": "key"},
            {"name": "data", "type": "block", "flags": ["multiple"], "arguments": [
                {"name": "field", "type": "string"}, {"name": "value", "type": "string"}]}]}"#,
    );
    let with = |argument: &str| {
        format!(r#"{{"whole_blocks": [{{"argument": "{argument}", "reason": "r"}}]}}"#)
    };
    assert!(ringdis_codegen::generate_with(&cmds, "{}", &with("hset data")).is_ok());
    // Absent from the spec: skipped.
    assert!(ringdis_codegen::generate_with(&cmds, "{}", &with("xadd data")).is_ok());
    for bad in ["hset nope", "mset data"] {
        let e = ringdis_codegen::generate_with(&cmds, "{}", &with(bad)).unwrap_err();
        assert!(e.contains("whole_blocks") && e.contains(bad), "{e}");
    }
    let e = ringdis_codegen::generate_with(
        &cmds,
        "{}",
        r#"{"whole_blocks": [{"argument": "hset data"}]}"#,
    )
    .unwrap_err();
    assert!(e.contains("reason"), "{e}");
}

#[test]
fn skipped_commands() {
    let code = gen(
        r#""replconf": {"arity": -1, "group": "server", "since": "3.0.0", "doc_flags": ["syscmd"]},
           "config": {"arity": -2, "group": "server", "since": "2.0.0", "subcommands": {
               "config|get": {"arity": -3, "group": "server", "since": "2.0.0", "arguments": [
                   {"name": "parameter", "type": "string", "flags": ["multiple"]}]}}}"#,
        "{}",
    );
    assert!(!code.contains("fn replconf"));
    assert!(!code.contains("fn config("));
    assert!(code.contains("fn config_get(self, parameter: impl ToArg)"));
    assert!(code.contains(r#"Cmd::new("CONFIG GET")"#));
}

/// `codegen/overrides.json` against the real spec: every correction applies (none stale), each
/// has a reason, and every command whose default reply stays `any` says why.
#[test]
fn overrides_apply_and_untyped_replies_have_reasons() {
    use ringdis_codegen::model::{Overrides, Spec};
    let overrides = Overrides::parse(ringdis_codegen::OVERRIDES).unwrap();
    let mut spec = Spec::parse(&root("commands.json")).unwrap();
    let applied = spec.apply(&overrides).unwrap();
    assert_eq!(
        applied,
        overrides.arguments.len(),
        "an override matches no command"
    );
    assert!(overrides
        .arguments
        .iter()
        .all(|o| o.reason.contains("valkey.io/commands/")));

    let replies: serde_json::Map<String, Json> =
        serde_json::from_str(&root("replies.json")).unwrap();
    let untyped: BTreeSet<String> = replies
        .iter()
        .filter(|(_, s)| *s == "any")
        .map(|(n, _)| n.clone())
        .collect();
    let explained: BTreeSet<String> = overrides.untyped_replies.keys().cloned().collect();
    assert_eq!(
        untyped, explained,
        "each `any` in replies.json needs a reason in overrides.json, and only those"
    );
    assert!(untyped.len() <= 25, "{} untyped replies", untyped.len());
}

/// The corrections and typed defaults show in the generated API.
#[test]
fn corrected_types_in_the_real_api() {
    let code = generate(&root("commands.json"), &root("replies.json")).unwrap();
    let code = code.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "fn zincrby( self, key: impl ToArg, increment: f64, member: impl ToArg, )",
        "fn hexpireat( self, key: impl ToArg, unix_time_seconds: impl UnixTime,",
        "fn zrangebyscore( self, key: impl ToArg, min: impl ToArg, max: impl ToArg, )",
        "fn scan(self, cursor: impl ToArg) -> Scan<Self::Target>",
        "pub struct Geodist<T: Dispatch, Reply = Option<f64>>",
        "pub struct Geopos<T: Dispatch, Reply = Vec<Option<(f64, f64)>>>",
        "pub struct Scan<T: Dispatch, Reply = (u64, Vec<Bytes>)>",
        "pub struct Sscan<T: Dispatch, Reply = (u64, Vec<Bytes>)>",
        "pub struct Hscan<T: Dispatch, Reply = (u64, Vec<(Bytes, Bytes)>)>",
        "pub struct Zscan<T: Dispatch, Reply = (u64, Vec<(Bytes, f64)>)>",
        "pub struct Blpop<T: Dispatch, Reply = Option<(Bytes, Bytes)>>",
        "pub struct Bzpopmin<T: Dispatch, Reply = Option<(Bytes, Bytes, f64)>>",
        "pub struct Zpopmin<T: Dispatch, Reply = Vec<(Bytes, f64)>>",
        "pub struct Zscore<T: Dispatch, Reply = Option<f64>>",
        "pub struct Zrank<T: Dispatch, Reply = Option<i64>>",
        "/// - why untyped: valkey.io/commands/eval: the reply is whatever the script returns",
    ] {
        assert!(code.contains(want), "missing: {want}");
    }
    // BITFIELD offsets take `#1` as well as numbers.
    assert!(code.contains("pub fn get(mut self, encoding: impl ToArg, offset: impl ToArg) -> Self"));
}

/// An override that no longer matches the spec fails the build instead of going stale.
#[test]
fn stale_or_unknown_overrides_are_errors() {
    let zincrby = |ty: &str| {
        spec(&format!(
            r#""zincrby": {{"arity": 4, "group": "sorted-set", "since": "1.2.0", "arguments": [
                {{"name": "key", "type": "key"}}, {{"name": "increment", "type": "{ty}"}},
                {{"name": "member", "type": "string"}}]}}"#
        ))
    };
    let code = generate(&zincrby("integer"), "{}").unwrap();
    assert!(code.contains("increment: f64"));
    let e = generate(&zincrby("double"), "{}").unwrap_err();
    assert!(
        e.contains("zincrby increment") && e.contains("review"),
        "{e}"
    );
    let bad = r#"{"arguments": [{"argument": "zincrby nope", "spec": "integer", "type": "double", "reason": "r"}]}"#;
    let e = ringdis_codegen::generate_with(&zincrby("integer"), "{}", bad).unwrap_err();
    assert!(e.contains("no such argument"), "{e}");
    let bad = r#"{"arguments": [{"argument": "zincrby increment", "spec": "integer", "type": "float", "reason": "r"}]}"#;
    let e = ringdis_codegen::generate_with(&zincrby("integer"), "{}", bad).unwrap_err();
    assert!(e.contains("unknown type"), "{e}");
}

/// Options that change the reply's shape re-type the builder (issue #11, kind 11): the method
/// returns the builder with the new reply type, callable only where `from` allows.
#[test]
fn reply_options_retype_the_builder() {
    let code = generate(&root("commands.json"), &root("replies.json")).unwrap();
    let code = code.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "impl<T: Dispatch> Lpop<T, Option<Bytes>> { /// Sets `count`. /// /// Changes the reply: awaiting the command gives `Option<Vec<Bytes>>`. pub fn count(mut self, count: i64) -> Lpop<T, Option<Vec<Bytes>>> {",
        "pub fn count(mut self, count: i64) -> Lpop<T, Option<Vec<Bytes>>> { self.part(Self::COUNT).clear(); self.part(Self::COUNT).arg(count); self.retype() }",
        "pub fn withscores(mut self) -> Zrange<T, Vec<(Bytes, f64)>>",
        "pub fn get(mut self) -> Set<T, Option<Bytes>>",
        "pub fn withdist(mut self) -> Geosearch<T, Vec<GeoMatch>>",
        "pub fn incr(mut self) -> Zadd<T, Option<f64>>",
        "/// - with `.count(..)`: `Option<Vec<Bytes>>` (valkey.io/commands/lpop:",
        "/// - with `.withcoord(..)` or `.withdist(..)` or `.withhash(..)`: `Vec<GeoMatch>`",
        // WITHVALUES only after a count.
        "impl<T: Dispatch> Hrandfield<T, Vec<Bytes>> { /// Adds `WITHVALUES`. /// /// Changes the reply: awaiting the command gives `Vec<(Bytes, Bytes)>`.",
    ] {
        assert!(code.contains(want), "missing: {want}");
    }
    assert!(
        !code.contains("impl<T: Dispatch> Hrandfield<T, Option<Bytes>> { /// Adds `WITHVALUES`.")
    );

    let lpop = spec(
        r#""lpop": {"arity": -2, "group": "list", "since": "1.0.0", "arguments": [
            {"name": "key", "type": "key"},
            {"name": "count", "type": "integer", "flags": ["optional"]}]}"#,
    );
    let with = |entry: &str| format!(r#"{{"reply_options": [{entry}]}}"#);
    let replies = r#"{"lpop": "bulk_or_nil"}"#;
    let ok = with(
        r#"{"command": "lpop", "options": ["count"], "reply": "opt_array_bulk", "reason": "r"}"#,
    );
    assert!(ringdis_codegen::generate_with(&lpop, replies, &ok).is_ok());
    for (entry, says) in [
        (
            r#"{"command": "lpop", "options": ["nope"], "reply": "array_bulk", "reason": "r"}"#,
            "no method `nope`",
        ),
        (
            r#"{"command": "lpop", "options": ["count"], "reply": "bulk_or_nil", "reason": "r"}"#,
            "already the default",
        ),
        (
            r#"{"command": "lpop", "options": ["count"], "reply": "vec", "reason": "r"}"#,
            "unknown shape",
        ),
        (
            r#"{"command": "lpop", "options": ["count"], "from": ["nope"], "reply": "array_bulk", "reason": "r"}"#,
            "not an option",
        ),
        (
            r#"{"command": "lpop", "options": ["count"], "reply": "array_bulk"}"#,
            "reason",
        ),
    ] {
        let e = ringdis_codegen::generate_with(&lpop, replies, &with(entry)).unwrap_err();
        assert!(e.contains(says), "{entry}: {e}");
    }
}

#[test]
fn cacheable_commands_get_cached_methods_and_a_doc_line() {
    let code = gen(
        r#""get": {"arity": 2, "group": "string", "since": "1.0.0", "flags": ["readonly", "fast"],
            "key_specs": [{"flags": ["RO", "access"]}],
            "arguments": [{"name": "key", "type": "key", "key_spec_index": 0}]},
           "set": {"arity": -3, "group": "string", "since": "1.0.0", "flags": ["write"],
            "key_specs": [{"flags": ["RW"]}],
            "arguments": [{"name": "key", "type": "key", "key_spec_index": 0},
                          {"name": "value", "type": "string"}]},
           "ttl": {"arity": 2, "group": "generic", "since": "1.0.0", "flags": ["readonly"],
            "tips": ["nondeterministic_output"], "key_specs": [{"flags": ["RO"]}],
            "arguments": [{"name": "key", "type": "key", "key_spec_index": 0}]}"#,
        r#"{"get": "bulk_or_nil", "set": "ok_or_nil", "ttl": "int"}"#,
    );
    assert!(code.contains("builder!(Get); cacheable!(Get);"), "{code}");
    assert!(code.contains("builder!(Set);") && !code.contains("cacheable!(Set);"));
    assert!(code.contains("builder!(Ttl);") && !code.contains("cacheable!(Ttl);"));
    assert!(code.contains(
        "/// - cacheable: `.cached()` / `.cached_for(ttl)` read it through the client's cache \
         ([`Cached`]) fn get(self"
    ));
    assert_eq!(code.matches("/// - cacheable:").count(), 1);
    assert!(code.contains(r#"pub const CACHEABLE_COMMANDS: &[&str] = &["GET"];"#));
    assert!(code.contains("The builders of the cacheable commands (1) also have"));
}
