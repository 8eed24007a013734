//! The typed model of `commands.json` (and `replies.json`), and which commands get a method.

use serde_json::Value as Json;
use std::collections::BTreeMap;

/// The whole of `commands.json`.
#[derive(Debug)]
pub struct Spec {
    /// Where it was dumped from, e.g. `valkey 9.1.2`.
    pub source: String,
    /// The server probed for presence, e.g. `redis 7.0.15`.
    pub probe: Option<String>,
    /// Top-level commands by lower-case name.
    pub commands: BTreeMap<String, Command>,
}

/// One command or subcommand.
#[derive(Debug, Default)]
pub struct Command {
    pub arity: i64,
    pub flags: Vec<String>,
    pub group: String,
    pub since: String,
    pub summary: String,
    pub complexity: String,
    pub doc_flags: Vec<String>,
    pub deprecated_since: Option<String>,
    pub replaced_by: Option<String>,
    pub arguments: Vec<Arg>,
    pub redis_7_0: Option<bool>,
    pub subcommands: BTreeMap<String, Command>,
    pub key_specs: Vec<serde_json::Value>,
    pub tips: Vec<String>,
}

/// One argument of a command, as `COMMAND DOCS` describes it.
#[derive(Debug, Default, Clone)]
pub struct Arg {
    pub name: String,
    /// The spec's `type`.
    pub kind: String,
    pub token: Option<String>,
    pub flags: Vec<String>,
    pub arguments: Vec<Arg>,
    pub display_text: Option<String>,
    pub key_spec_index: Option<usize>,
}

impl Arg {
    pub fn optional(&self) -> bool {
        self.flags.iter().any(|f| f == "optional")
    }
    pub fn multiple(&self) -> bool {
        self.flags.iter().any(|f| f == "multiple")
    }
    pub fn multiple_token(&self) -> bool {
        self.flags.iter().any(|f| f == "multiple_token")
    }
    /// A single value: key, string, pattern, integer, double or unix-time.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "key" | "string" | "pattern" | "integer" | "double" | "unix-time"
        )
    }
    /// A oneof whose alternatives are all bare tokens (becomes an enum).
    pub fn is_token_choice(&self) -> bool {
        self.kind == "oneof"
            && !self.arguments.is_empty()
            && self
                .arguments
                .iter()
                .all(|a| a.kind == "pure-token" && a.token.is_some() && !a.optional())
    }
}

impl Spec {
    /// Reads `commands.json` (read by hand from `serde_json::Value`: no derive macros in the
    /// build of ringdis).
    pub fn parse(json: &str) -> Result<Spec, serde_json::Error> {
        let j: Json = serde_json::from_str(json)?;
        let commands = j["commands"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Command::from_json(v)))
            .collect();
        Ok(Spec {
            source: string(&j["source"]),
            probe: j["probe"].as_str().map(str::to_string),
            commands,
        })
    }

    /// Every command that gets a method, as (`"config|get"`-style name, command), sorted.
    ///
    /// Left out: `syscmd` (replication-internal) and experimental commands, the `sentinel`
    /// group, and container commands that cannot run without a subcommand (`CONFIG`, but not
    /// `COMMAND`, whose arity is -1).
    pub fn eligible(&self) -> Vec<(String, &Command)> {
        let mut out = Vec::new();
        for (name, c) in &self.commands {
            if (c.subcommands.is_empty() || c.arity == -1) && c.is_eligible() {
                out.push((name.clone(), c));
            }
            if !c.is_eligible() {
                continue;
            }
            for (sub, s) in &c.subcommands {
                if s.is_eligible() {
                    out.push((sub.clone(), s));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn string(j: &Json) -> String {
    j.as_str().unwrap_or_default().to_string()
}

fn strings(j: &Json) -> Vec<String> {
    j.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn args(j: &Json) -> Vec<Arg> {
    j.as_array()
        .into_iter()
        .flatten()
        .map(Arg::from_json)
        .collect()
}

impl Arg {
    fn from_json(j: &Json) -> Arg {
        Arg {
            name: string(&j["name"]),
            kind: string(&j["type"]),
            token: j["token"].as_str().map(str::to_string),
            flags: strings(&j["flags"]),
            arguments: args(&j["arguments"]),
            display_text: j["display_text"].as_str().map(str::to_string),
            key_spec_index: j["key_spec_index"].as_u64().map(|i| i as usize),
        }
    }
}

impl Command {
    fn from_json(j: &Json) -> Command {
        Command {
            arity: j["arity"].as_i64().unwrap_or_default(),
            flags: strings(&j["flags"]),
            group: string(&j["group"]),
            since: string(&j["since"]),
            summary: string(&j["summary"]),
            complexity: string(&j["complexity"]),
            doc_flags: strings(&j["doc_flags"]),
            deprecated_since: j["deprecated_since"].as_str().map(str::to_string),
            replaced_by: j["replaced_by"].as_str().map(str::to_string),
            arguments: args(&j["arguments"]),
            redis_7_0: j["redis_7_0"].as_bool(),
            subcommands: j["subcommands"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Command::from_json(v)))
                .collect(),
            key_specs: j["key_specs"].as_array().cloned().unwrap_or_default(),
            tips: strings(&j["tips"]),
        }
    }

    fn is_eligible(&self) -> bool {
        !self
            .doc_flags
            .iter()
            .any(|f| f == "syscmd" || f == "experimental")
            && self.group != "sentinel"
    }
    pub fn deprecated(&self) -> bool {
        self.doc_flags.iter().any(|f| f == "deprecated")
    }
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
}

/// `replies.json`: the default reply shape of each command, by `"config|get"`-style name.
pub type Replies = BTreeMap<String, String>;

/// The Rust type for a reply shape (as tokens of a type path inside ringdis), or `None` for an
/// unknown shape.
pub fn reply_type(shape: &str) -> Option<&'static str> {
    Some(match shape {
        "ok" => "()",
        "ok_or_nil" => "Option<()>",
        "simple" => "String",
        "text" => "String",
        "int" => "i64",
        "int_or_nil" => "Option<i64>",
        "bool" => "bool",
        "bulk" => "Bytes",
        "bulk_or_nil" => "Option<Bytes>",
        "double" => "f64",
        "double_or_nil" => "Option<f64>",
        "array_bulk" => "Vec<Bytes>",
        "array_bulk_or_nil" => "Vec<Option<Bytes>>",
        "array_int" => "Vec<i64>",
        "array_bool" => "Vec<bool>",
        "array_double_or_nil" => "Vec<Option<f64>>",
        "array_any" => "Vec<Value>",
        "map" => "HashMap<Bytes, Bytes>",
        "any" => "Value",
        // Typed defaults for replies that used to be `any` or doubtful (issue #11, kind 11).
        "string" => "String",
        "pair_int" => "(i64, i64)",
        "array_int_or_nil" => "Vec<Option<i64>>",
        "array_any_or_nil" => "Option<Vec<Value>>",
        "map_int" => "HashMap<Bytes, i64>",
        "map_any" => "HashMap<String, Value>",
        "map_any_or_nil" => "Option<HashMap<String, Value>>",
        "array_map_any" => "Vec<HashMap<String, Value>>",
        "scan" => "(u64, Vec<Bytes>)",
        "scan_pairs" => "(u64, Vec<(Bytes, Bytes)>)",
        "scan_scores" => "(u64, Vec<(Bytes, f64)>)",
        "geo_positions" => "Vec<Option<(f64, f64)>>",
        "members_scores" => "Vec<(Bytes, f64)>",
        "key_member_or_nil" => "Option<(Bytes, Bytes)>",
        "key_member_score_or_nil" => "Option<(Bytes, Bytes, f64)>",
        "key_members_or_nil" => "Option<(Bytes, Vec<Bytes>)>",
        "key_members_scores_or_nil" => "Option<(Bytes, Vec<(Bytes, f64)>)>",
        "keys_flags" => "Vec<(Bytes, Vec<Bytes>)>",
        "stream_entries" => "Vec<(Bytes, Vec<(Bytes, Bytes)>)>",
        "streams" => "Vec<(Bytes, Vec<(Bytes, Vec<(Bytes, Bytes)>)>)>",
        "stream_autoclaim" => "(Bytes, Vec<(Bytes, Vec<(Bytes, Bytes)>)>, Vec<Bytes>)",
        "stream_pending" => "(i64, Option<Bytes>, Option<Bytes>, Vec<(Bytes, i64)>)",
        // Replies of options that change the shape (`reply_options` in overrides.json).
        "opt_array_bulk" => "Option<Vec<Bytes>>",
        "pairs" => "Vec<(Bytes, Bytes)>",
        "geo_matches" => "Vec<GeoMatch>",
        "rank_score_or_nil" => "Option<(i64, f64)>",
        "stream_autoclaim_ids" => "(Bytes, Vec<Bytes>, Vec<Bytes>)",
        "stream_pending_entries" => "Vec<(Bytes, Bytes, i64, i64)>",
        _ => return None,
    })
}

/// All shapes, for docs and checks.
pub const SHAPES: &[&str] = &[
    "ok",
    "ok_or_nil",
    "simple",
    "text",
    "int",
    "int_or_nil",
    "bool",
    "bulk",
    "bulk_or_nil",
    "double",
    "double_or_nil",
    "array_bulk",
    "array_bulk_or_nil",
    "array_int",
    "array_bool",
    "array_double_or_nil",
    "array_any",
    "map",
    "any",
    "string",
    "pair_int",
    "array_int_or_nil",
    "array_any_or_nil",
    "map_int",
    "map_any",
    "map_any_or_nil",
    "array_map_any",
    "scan",
    "scan_pairs",
    "scan_scores",
    "geo_positions",
    "members_scores",
    "key_member_or_nil",
    "key_member_score_or_nil",
    "key_members_or_nil",
    "key_members_scores_or_nil",
    "keys_flags",
    "stream_entries",
    "streams",
    "stream_autoclaim",
    "stream_pending",
    "opt_array_bulk",
    "pairs",
    "geo_matches",
    "rank_score_or_nil",
    "stream_autoclaim_ids",
    "stream_pending_entries",
];

/// `codegen/overrides.json`: reviewed corrections to the spec's declared argument types, and the
/// reason each command whose default reply stays `any` keeps it. See the file's `about`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub arguments: Vec<ArgOverride>,
    /// Command (`client|kill`-style) → why its default reply is a raw `Value`.
    pub untyped_replies: BTreeMap<String, String>,
    /// Options that change the shape of a command's reply.
    pub reply_options: Vec<ReplyOption>,
    /// Required `multiple` blocks of pairs that also get a method taking them whole.
    pub whole_blocks: Vec<WholeBlock>,
}

/// A required `multiple` block of pairs (`HSET key field value [field value ...]`) that, beside
/// the method taking its first element positionally (`hset(key, field, value)`), gets a
/// `<method>_multiple` taking the whole block as one `impl FieldValues`
/// (`hset_multiple(key, &user)` with a `#[derive(ToRedis)]` struct).
#[derive(Debug, Clone)]
pub struct WholeBlock {
    /// `hset data`: the command and the block's name.
    pub argument: String,
    pub reason: String,
}

/// Options of one command that change its reply's shape (`LPOP … COUNT`, `ZRANGE …
/// WITHSCORES`): calling one re-types the builder, so awaiting it decodes the new shape.
#[derive(Debug, Clone)]
pub struct ReplyOption {
    /// `lpop`, `client|kill`.
    pub command: String,
    /// The chained methods (generated names: `count`, `withscores`, `type_`) that set it.
    pub options: Vec<String>,
    /// Where the methods may be called: `default` (the option-less builder) and/or options of
    /// other entries of the command, whose reply they follow (`WITHVALUES` after `COUNT`).
    /// Always also after themselves. Default: `["default"]`.
    pub from: Vec<String>,
    /// The reply shape once set (a `replies.json` shape).
    pub reply: String,
    pub reason: String,
}

/// One corrected argument type.
#[derive(Debug, Clone)]
pub struct ArgOverride {
    /// `zincrby increment`, `bitfield operation/get-block/offset`.
    pub argument: String,
    /// The type the spec declares (checked).
    pub spec: String,
    /// The type to use instead.
    pub kind: String,
    pub reason: String,
}

/// The argument types an override may give.
pub const ARG_TYPES: &[&str] = &["integer", "double", "unix-time", "string"];

impl Overrides {
    /// Reads `overrides.json`; every entry must have a known type and a reason.
    pub fn parse(json: &str) -> Result<Overrides, String> {
        let j: Json = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut out = Overrides::default();
        for a in j["arguments"].as_array().into_iter().flatten() {
            let o = ArgOverride {
                argument: string(&a["argument"]),
                spec: string(&a["spec"]),
                kind: string(&a["type"]),
                reason: string(&a["reason"]),
            };
            if !o.argument.contains(' ') || o.spec.is_empty() || o.reason.is_empty() {
                return Err(format!(
                    "{:?}: needs `argument` (\"command path\"), `spec`, `type` and `reason`",
                    o.argument
                ));
            }
            if !ARG_TYPES.contains(&o.kind.as_str()) {
                return Err(format!("{}: unknown type {:?}", o.argument, o.kind));
            }
            out.arguments.push(o);
        }
        for (name, why) in j["untyped_replies"].as_object().into_iter().flatten() {
            let why = why.as_str().unwrap_or_default();
            if why.is_empty() {
                return Err(format!("untyped_replies: {name}: no reason"));
            }
            out.untyped_replies.insert(name.clone(), why.to_string());
        }
        for r in j["reply_options"].as_array().into_iter().flatten() {
            let mut from = strings(&r["from"]);
            if from.is_empty() {
                from.push("default".into());
            }
            let o = ReplyOption {
                command: string(&r["command"]),
                options: strings(&r["options"]),
                from,
                reply: string(&r["reply"]),
                reason: string(&r["reason"]),
            };
            if o.command.is_empty() || o.options.is_empty() || o.reason.is_empty() {
                return Err(format!(
                    "reply_options: {:?}: needs `command`, `options`, `reply` and `reason`",
                    o.command
                ));
            }
            if reply_type(&o.reply).is_none() {
                return Err(format!(
                    "reply_options: {} {:?}: unknown shape {:?}",
                    o.command, o.options, o.reply
                ));
            }
            out.reply_options.push(o);
        }
        for w in j["whole_blocks"].as_array().into_iter().flatten() {
            let o = WholeBlock {
                argument: string(&w["argument"]),
                reason: string(&w["reason"]),
            };
            if !o.argument.contains(' ') || o.reason.is_empty() {
                return Err(format!(
                    "whole_blocks: {:?}: needs `argument` (\"command block\") and `reason`",
                    o.argument
                ));
            }
            out.whole_blocks.push(o);
        }
        Ok(out)
    }
}

impl Spec {
    /// A command or subcommand (`config|get`) by name.
    pub fn command_mut(&mut self, name: &str) -> Option<&mut Command> {
        match name.split_once('|') {
            Some((parent, _)) => self.commands.get_mut(parent)?.subcommands.get_mut(name),
            None => self.commands.get_mut(name),
        }
    }

    /// Applies the argument corrections; returns how many applied. An override for a command
    /// the spec does not have is skipped; one whose argument is missing or whose declared type
    /// is no longer `spec` (a refresh changed it) is an error, so it cannot go stale unseen.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<usize, String> {
        let mut applied = 0;
        for o in &overrides.arguments {
            let (command, path) = o.argument.split_once(' ').unwrap_or_default();
            let Some(c) = self.command_mut(command) else {
                continue;
            };
            let mut args = &mut c.arguments;
            let mut steps = path.split('/').peekable();
            let found = loop {
                let Some(step) = steps.next() else {
                    break None;
                };
                let Some(a) = args.iter_mut().find(|a| a.name == step) else {
                    break None;
                };
                if steps.peek().is_none() {
                    break Some(a);
                }
                args = &mut a.arguments;
            };
            let Some(a) = found else {
                return Err(format!("{}: no such argument in the spec", o.argument));
            };
            if a.kind != o.spec {
                return Err(format!(
                    "{}: the spec now declares {:?}, not {:?}: review the override",
                    o.argument, a.kind, o.spec
                ));
            }
            a.kind = o.kind.clone();
            applied += 1;
        }
        Ok(applied)
    }
}
