//! Lowering: a command's argument tree becomes a builder plan (fields in wire order, positional
//! parameters, chained methods). See README.md for the rules.

use crate::model::{Arg, Command};
use std::collections::{BTreeMap, BTreeSet};

/// How one builder is laid out.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `config|get`-style name.
    pub name: String,
    /// The name on the wire, `CONFIG GET`.
    pub wire: String,
    /// The method, `config_get`.
    pub method: String,
    /// The builder type, `ConfigGet`.
    pub builder: String,
    /// Private `Part` fields, in declaration order.
    pub fields: Vec<String>,
    /// What `cmd()` writes after the name, in wire order.
    pub segs: Vec<Seg>,
    /// Positional parameters of the command method.
    pub params: Vec<Param>,
    /// What the constructor writes.
    pub ctor: Vec<Write>,
    /// Chained methods.
    pub methods: Vec<Method>,
    /// A second method for the command whose required `multiple` block is taken whole
    /// (`whole_blocks` in `codegen/overrides.json`): `hset_multiple(key, &user)`.
    pub whole: Option<Whole>,
}

/// The command method that takes a required `multiple` block of pairs whole, as one
/// `impl FieldValues` (a `#[derive(ToRedis)]` struct, a map, a collection of pairs), beside the
/// method taking its first element positionally.
#[derive(Debug, Clone)]
pub struct Whole {
    /// `hset_multiple`.
    pub method: String,
    /// The block's name in the spec (`data`).
    pub block: String,
    pub params: Vec<Param>,
    pub ctor: Vec<Write>,
}

/// Where the positional element of a block that may be taken whole was lowered.
#[derive(Debug, Clone)]
struct WholeMark {
    block: String,
    field: usize,
    width: usize,
    params: std::ops::Range<usize>,
    ctor: std::ops::Range<usize>,
}

/// One piece of the wire form.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    /// A field's arguments.
    Field(usize),
    /// A fixed token.
    Token(String),
    /// The number of items in a field (`numkeys`), derived.
    Count(usize),
}

/// A parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
}

/// A parameter's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// `impl ToArg` (one value, or for a `multiple`, one or many).
    Arg,
    /// `i64`.
    Int,
    /// `f64`.
    Float,
    /// `impl UnixTime` (an integer, or a `SystemTime`), sent in seconds or milliseconds.
    Time { millis: bool },
    /// A generated enum of tokens.
    Enum(String),
    /// `impl IntoIterator<Item = (impl ToArg, …)>` of this many elements.
    Tuples(usize),
    /// `bool` (an optional token inside a block).
    Flag,
    /// `Option<i64>`, `Option<f64>`, `Option<&str>`, `Option<Enum>`.
    Opt(Box<Ty>),
    /// `impl FieldValues`: a whole block of `field value` pairs.
    Fields,
}

/// One step of writing arguments into a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Clear(usize),
    Token(usize, String),
    /// The token, unless the field already has arguments (`WEIGHTS` once for many calls).
    TokenIfEmpty(usize, String),
    /// An empty-string argument.
    Empty(usize),
    /// One value.
    One {
        field: usize,
        param: String,
        key: bool,
    },
    /// One or many values, counted as items; with `token_each`, the token before each.
    Many {
        field: usize,
        param: String,
        key: bool,
        token_each: Option<String>,
    },
    /// An iterator of tuples; `keys` marks which tuple members are keys; `counted` writes the
    /// number of tuples first.
    Tuples {
        field: usize,
        param: String,
        keys: Vec<bool>,
        token_each: Option<String>,
        counted: bool,
    },
    /// An optional parameter: the token (if any) and value when `Some` / `true`.
    Opt {
        field: usize,
        param: String,
        token: Option<String>,
        /// A `bool` parameter: just the token when `true`.
        flag: bool,
    },
    /// One more item in the field.
    Item(usize),
    /// Values that come in groups of `width` arguments (`field value` pairs): each group is one
    /// item.
    Grouped {
        field: usize,
        param: String,
        width: usize,
    },
}

/// A chained method.
#[derive(Debug, Clone)]
pub struct Method {
    pub name: String,
    pub doc: String,
    pub params: Vec<Param>,
    pub writes: Vec<Write>,
}

/// A generated token enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumDef {
    pub name: String,
    /// (variant name, token)
    pub variants: Vec<(String, String)>,
    pub token: Option<String>,
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Builder methods every builder has; chained methods never take these names.
const RESERVED: &[&str] = &[
    "new",
    "cmd",
    "decode",
    "send",
    "into_cmd",
    "and",
    "into_target",
];

/// `snake_case` identifier for a spec name or token; Rust keywords get a trailing `_`
/// (`type` → `type_`, `move` → `move_`). `None` if nothing identifier-like is left (`~`, `*`).
pub fn snake(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.is_empty() {
        return None;
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        return Some(format!("_{out}"));
    }
    if KEYWORDS.contains(&out.as_str()) {
        return Some(format!("{out}_"));
    }
    Some(out)
}

/// `CamelCase` for a spec name.
pub fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if up {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c.to_ascii_lowercase());
            }
            up = false;
        } else {
            up = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    out
}

/// The method name of a command: `config|get` → `config_get`.
pub fn method_name(name: &str) -> String {
    snake(&name.replace('|', "_")).expect("command names are words")
}

/// The builder type of a command: `config|get` → `ConfigGet`.
pub fn builder_name(name: &str) -> String {
    camel(name)
}

fn token_name(a: &Arg) -> Option<String> {
    a.token.as_deref().and_then(snake)
}

/// The name a chained method for `a` gets: its token, else its name.
fn chain_name(a: &Arg) -> String {
    token_name(a)
        .or_else(|| snake(a.name.trim_end_matches("-block")))
        .unwrap_or_else(|| "arg".into())
}

/// Is `args[i]` a count the server needs for the multiple argument after it (`numkeys`)?
pub fn is_count(args: &[Arg], i: usize) -> bool {
    let a = &args[i];
    a.kind == "integer"
        && a.name.starts_with("num")
        && !a.multiple()
        && args.get(i + 1).is_some_and(|n| n.multiple())
}

/// Enum definitions shared by all commands, named by arg name; see `finish_enums`.
#[derive(Default, Debug)]
pub struct Enums {
    /// (command builder, arg name) → proposed def
    pub wanted: Vec<(String, EnumDef)>,
}

struct Lower<'e> {
    builder: String,
    fields: Vec<String>,
    segs: Vec<Seg>,
    params: Vec<Param>,
    ctor: Vec<Write>,
    methods: Vec<Method>,
    method_names: BTreeSet<String>,
    enums: &'e mut Enums,
    /// Blocks to also take whole (`whole_blocks`), and where the one found was lowered.
    whole_blocks: &'e [String],
    whole: Option<WholeMark>,
}

/// A method being built (for forks across a oneof's alternatives).
#[derive(Clone, Default)]
struct Partial {
    name: Option<String>,
    params: Vec<Param>,
    writes: Vec<Write>,
}

/// The parameter type of a scalar argument, from its (corrected: `codegen/overrides.json`)
/// spec type.
fn scalar_ty(a: &Arg) -> Ty {
    match a.kind.as_str() {
        "integer" => Ty::Int,
        "unix-time" => Ty::Time {
            millis: a.name.contains("milli"),
        },
        "double" => Ty::Float,
        _ => Ty::Arg,
    }
}

fn unique(name: String, taken: &[Param]) -> String {
    if !taken.iter().any(|p| p.name == name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}_{n}"))
        .find(|n| !taken.iter().any(|p| &p.name == n))
        .expect("some suffix is free")
}

impl Lower<'_> {
    fn field(&mut self, name: &str) -> usize {
        let base = snake(name).unwrap_or_else(|| "arg".into());
        let mut n = base.clone();
        let mut i = 2;
        while self.fields.contains(&n) || n == "target" || n == "reply" {
            n = format!("{base}_{i}");
            i += 1;
        }
        self.fields.push(n);
        self.fields.len() - 1
    }

    fn param(&mut self, a: &Arg, ty: Ty) -> String {
        let name = unique(snake(&a.name).unwrap_or_else(|| "arg".into()), &self.params);
        self.params.push(Param {
            name: name.clone(),
            ty,
        });
        name
    }

    fn enum_for(&mut self, a: &Arg) -> String {
        let def = EnumDef {
            name: camel(&a.name),
            variants: a
                .arguments
                .iter()
                .map(|v| (camel(&v.name), v.token.clone().unwrap_or_default()))
                .collect(),
            token: None,
        };
        let key = format!("{}::{}", self.builder, a.name);
        self.enums.wanted.push((key.clone(), def));
        // Resolved to the final name in `finish_enums`.
        format!("@{key}")
    }

    fn method(&mut self, name: String, prefix: &str, p: Partial, doc: String) {
        let mut n = name.clone();
        if self.method_names.contains(&n) || RESERVED.contains(&n.as_str()) {
            n = format!("{}_{name}", snake(prefix).unwrap_or_default());
        }
        let base = n.clone();
        let mut i = 2;
        while self.method_names.contains(&n) || RESERVED.contains(&n.as_str()) {
            n = format!("{base}_{i}");
            i += 1;
        }
        self.method_names.insert(n.clone());
        self.methods.push(Method {
            name: n,
            doc,
            params: p.params,
            writes: p.writes,
        });
    }

    /// A list of sibling arguments, required ones positional.
    fn list(&mut self, args: &[Arg]) {
        let mut pre = None;
        for (i, a) in args.iter().enumerate() {
            if is_count(args, i) {
                let f = self.field(&args[i + 1].name);
                self.segs.push(Seg::Count(f));
                pre = Some(f);
                continue;
            }
            let field = pre.take();
            if a.optional() {
                self.optional(a, field, "");
            } else {
                self.positional(a, field);
            }
        }
    }

    fn positional(&mut self, a: &Arg, pre: Option<usize>) {
        let key = a.kind == "key";
        let multi = a.multiple();
        match a.kind.as_str() {
            "pure-token" => self
                .segs
                .push(Seg::Token(a.token.clone().unwrap_or_default())),
            _ if a.is_scalar() => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                let each = multi && a.multiple_token();
                if let (Some(t), false) = (&a.token, each) {
                    self.ctor.push(Write::Token(f, t.clone()));
                }
                if multi {
                    let p = self.param(a, Ty::Arg);
                    self.ctor.push(Write::Many {
                        field: f,
                        param: p,
                        key,
                        token_each: a.token.clone().filter(|_| each),
                    });
                } else {
                    let p = self.param(a, scalar_ty(a));
                    self.ctor.push(Write::One {
                        field: f,
                        param: p,
                        key,
                    });
                }
            }
            "oneof" if a.is_token_choice() && !multi => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                if let Some(t) = &a.token {
                    self.ctor.push(Write::Token(f, t.clone()));
                }
                let e = self.enum_for(a);
                let p = self.param(a, Ty::Enum(e));
                self.ctor.push(Write::One {
                    field: f,
                    param: p,
                    key: false,
                });
            }
            "block" if !multi => {
                if let Some(t) = &a.token {
                    self.segs.push(Seg::Token(t.clone()));
                }
                self.list(&a.arguments);
            }
            "block" => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                self.required_multiple_block(a, f);
            }
            _ => {
                // A oneof with values: one chained method per alternative, into one field.
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                self.alternatives(a, f, multi, &a.name);
            }
        }
    }

    fn simple_children(a: &Arg) -> bool {
        a.arguments
            .iter()
            .all(|c| c.is_scalar() && !c.optional() && !c.multiple())
    }

    /// A required `multiple` block: as the command's first parameter, an iterator of tuples;
    /// after other parameters, its first element positionally. Either way `.and(…)` adds more.
    fn required_multiple_block(&mut self, a: &Arg, f: usize) {
        let each = a.multiple_token();
        let tok = a.token.clone();
        if !Self::simple_children(a) {
            if let Some(t) = &tok {
                self.ctor.push(Write::Token(f, t.clone()));
            }
            let p = self.param(a, Ty::Arg);
            self.ctor.push(Write::Many {
                field: f,
                param: p,
                key: false,
                token_each: None,
            });
            return;
        }
        if let (Some(t), false) = (&tok, each) {
            self.ctor.push(Write::Token(f, t.clone()));
        }
        let keys: Vec<bool> = a.arguments.iter().map(|c| c.kind == "key").collect();
        let element = |taken: &[Param]| -> (Vec<Param>, Vec<Write>) {
            let mut params: Vec<Param> = Vec::new();
            let mut w = Vec::new();
            if let (Some(t), true) = (&tok, each) {
                w.push(Write::Token(f, t.clone()));
            }
            for c in &a.arguments {
                let mut name = snake(&c.name).unwrap_or_else(|| "arg".into());
                while taken.iter().chain(&params).any(|p| p.name == name) {
                    name.push('_');
                }
                params.push(Param {
                    name: name.clone(),
                    ty: scalar_ty(c),
                });
                w.push(Write::One {
                    field: f,
                    param: name,
                    key: c.kind == "key",
                });
            }
            w.push(Write::Item(f));
            (params, w)
        };
        if self.params.is_empty() {
            let p = self.param(a, Ty::Tuples(a.arguments.len()));
            self.ctor.push(Write::Tuples {
                field: f,
                param: p,
                keys,
                token_each: tok.clone().filter(|_| each),
                counted: false,
            });
        } else {
            let (params, w) = element(&self.params);
            if self.whole_blocks.contains(&a.name) && !each {
                self.whole = Some(WholeMark {
                    block: a.name.clone(),
                    field: f,
                    width: a.arguments.len(),
                    params: self.params.len()..self.params.len() + params.len(),
                    ctor: self.ctor.len()..self.ctor.len() + w.len(),
                });
            }
            self.params.extend(params);
            self.ctor.extend(w);
        }
        let (params, writes) = element(&[]);
        let doc = format!(
            "Adds one more `{}`.",
            a.arguments
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        self.method_names.insert("and".into());
        self.methods.push(Method {
            name: "and".into(),
            doc,
            params,
            writes,
        });
    }

    /// An optional argument: chained method(s) writing its own field(s).
    fn optional(&mut self, a: &Arg, pre: Option<usize>, prefix: &str) {
        let key = a.kind == "key";
        let multi = a.multiple();
        let each = multi && a.multiple_token();
        let doc = synopsis_arg(a, true);
        match a.kind.as_str() {
            "pure-token" => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                let t = a.token.clone().unwrap_or_default();
                let p = Partial {
                    writes: vec![Write::Clear(f), Write::Token(f, t)],
                    ..Partial::default()
                };
                self.method(chain_name(a), prefix, p, format!("Adds `{doc}`."));
            }
            _ if a.is_scalar() => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                let mut p = Partial::default();
                let name = unique(snake(&a.name).unwrap_or_else(|| "arg".into()), &[]);
                if multi {
                    p.params.push(Param {
                        name: name.clone(),
                        ty: Ty::Arg,
                    });
                    if let (Some(t), false) = (&a.token, each) {
                        p.writes.push(Write::TokenIfEmpty(f, t.clone()));
                    }
                    p.writes.push(Write::Many {
                        field: f,
                        param: name,
                        key,
                        token_each: a.token.clone().filter(|_| each),
                    });
                    self.method(
                        chain_name(a),
                        prefix,
                        p,
                        format!("Adds `{doc}`: one value or a collection; calls add up."),
                    );
                } else {
                    p.params.push(Param {
                        name: name.clone(),
                        ty: scalar_ty(a),
                    });
                    p.writes.push(Write::Clear(f));
                    if let Some(t) = &a.token {
                        p.writes.push(Write::Token(f, t.clone()));
                    }
                    p.writes.push(Write::One {
                        field: f,
                        param: name,
                        key,
                    });
                    self.method(chain_name(a), prefix, p, format!("Sets `{doc}`."));
                }
            }
            "oneof" if a.is_token_choice() && a.token.is_some() && !multi => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                let e = self.enum_for(a);
                let name = snake(&a.name).unwrap_or_else(|| "arg".into());
                let p = Partial {
                    name: None,
                    params: vec![Param {
                        name: name.clone(),
                        ty: Ty::Enum(e),
                    }],
                    writes: vec![
                        Write::Clear(f),
                        Write::Token(f, a.token.clone().unwrap_or_default()),
                        Write::One {
                            field: f,
                            param: name,
                            key: false,
                        },
                    ],
                };
                self.method(chain_name(a), prefix, p, format!("Sets `{doc}`."));
            }
            "oneof" => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                self.alternatives(a, f, multi, &a.name);
            }
            "block" if multi => {
                let f = pre.unwrap_or_else(|| self.field(&a.name));
                self.segs.push(Seg::Field(f));
                let mut p = Partial::default();
                if let Some(t) = &a.token {
                    if each {
                        p.writes.push(Write::Token(f, t.clone()));
                    } else {
                        p.writes.push(Write::TokenIfEmpty(f, t.clone()));
                    }
                }
                let fields = vec![f; a.arguments.len()];
                let forks = self.core(&a.arguments, &fields, false, p);
                for mut fork in forks {
                    fork.writes.push(Write::Item(f));
                    let name = fork.name.take().unwrap_or_else(|| chain_name(a));
                    self.method(
                        name,
                        prefix,
                        fork,
                        format!("Adds one `{doc}`; calls add up."),
                    );
                }
            }
            _ => self.decompose(a, prefix),
        }
    }

    /// An optional block: each child its own field; the required children are set together by
    /// one method (one per alternative when the first is a choice of tokens), the optional
    /// ones by their own methods.
    fn decompose(&mut self, a: &Arg, prefix: &str) {
        let required: Vec<&Arg> = a.arguments.iter().filter(|c| !c.optional()).collect();
        let doc = synopsis_arg(a, true);
        if required.is_empty() {
            let f = self.field(&a.name);
            self.segs.push(Seg::Field(f));
            let mut p = Partial {
                writes: vec![Write::Clear(f)],
                ..Partial::default()
            };
            if let Some(t) = &a.token {
                p.writes.push(Write::Token(f, t.clone()));
            }
            let fields = vec![f; a.arguments.len()];
            for fork in self.core(&a.arguments, &fields, false, p) {
                self.method(chain_name(a), prefix, fork, format!("Sets `{doc}`."));
            }
            return;
        }
        // Fields in wire order; optional children lowered in place.
        let mut fields = vec![usize::MAX; a.arguments.len()];
        let mut first_required = None;
        let mut skip_next = false;
        for (i, c) in a.arguments.iter().enumerate() {
            if skip_next {
                skip_next = false;
                continue;
            }
            if c.optional() {
                let name = prefix_join(prefix, &a.name);
                self.optional(c, None, &name);
            } else {
                let f = self.field(&c.name);
                self.segs.push(Seg::Field(f));
                fields[i] = f;
                if is_count(&a.arguments, i) {
                    // The counted sibling is written by the same core method, right after.
                    fields[i + 1] = f;
                    skip_next = true;
                }
                first_required.get_or_insert(f);
            }
        }
        let f0 = first_required.expect("has required children");
        let mut p = Partial::default();
        for f in fields.iter().filter(|f| **f != usize::MAX) {
            if !p.writes.contains(&Write::Clear(*f)) {
                p.writes.push(Write::Clear(*f));
            }
        }
        if let Some(t) = &a.token {
            p.writes.push(Write::Token(f0, t.clone()));
        }
        let single = required.len() == 1 && a.token.is_none();
        let lead_choice = required[0].is_token_choice() && required[0].token.is_none();
        let forks = self.core_with(&a.arguments, &fields, true, p, lead_choice);
        for mut fork in forks {
            let name = fork.name.take().unwrap_or_else(|| {
                if a.token.is_some() {
                    chain_name(a)
                } else if single {
                    chain_name(required[0])
                } else {
                    required
                        .iter()
                        .find_map(|c| token_name(c))
                        .unwrap_or_else(|| chain_name(a))
                }
            });
            self.method(name, prefix, fork, format!("Sets `{doc}`."));
        }
    }

    fn core(
        &mut self,
        args: &[Arg],
        fields: &[usize],
        skip_optional: bool,
        p: Partial,
    ) -> Vec<Partial> {
        self.core_with(args, fields, skip_optional, p, false)
    }

    /// The children of a block written by one method: required ones as parameters, optional
    /// ones as `Option`/`bool` parameters (unless `skip_optional`), a oneof with values forks
    /// the method into one per alternative.
    fn core_with(
        &mut self,
        args: &[Arg],
        fields: &[usize],
        skip_optional: bool,
        start: Partial,
        lead_choice: bool,
    ) -> Vec<Partial> {
        let mut forks = vec![start];
        let mut counted = false;
        for (i, c) in args.iter().enumerate() {
            let f = fields[i];
            if c.optional() && skip_optional {
                continue;
            }
            if is_count(args, i) {
                counted = true;
                if let Some(t) = &c.token {
                    for p in &mut forks {
                        p.writes.push(Write::Token(f, t.clone()));
                    }
                }
                continue;
            }
            let was_counted = std::mem::take(&mut counted);
            let key = c.kind == "key";
            let pname = snake(&c.name).unwrap_or_else(|| "arg".into());
            if i == 0 && lead_choice {
                let mut out = Vec::new();
                for p in &forks {
                    for alt in &c.arguments {
                        let mut q = p.clone();
                        q.name = token_name(alt).or_else(|| snake(&alt.name));
                        q.writes
                            .push(Write::Token(f, alt.token.clone().unwrap_or_default()));
                        out.push(q);
                    }
                }
                forks = out;
                continue;
            }
            match c.kind.as_str() {
                "pure-token" if c.optional() => {
                    for p in &mut forks {
                        let n = unique(pname.clone(), &p.params);
                        p.params.push(Param {
                            name: n.clone(),
                            ty: Ty::Flag,
                        });
                        p.writes.push(Write::Opt {
                            field: f,
                            param: n,
                            token: c.token.clone(),
                            flag: true,
                        });
                    }
                }
                "pure-token" => {
                    for p in &mut forks {
                        p.writes.push(match &c.token {
                            Some(t) => Write::Token(f, t.clone()),
                            None => Write::Empty(f),
                        });
                    }
                }
                _ if c.is_scalar() && c.optional() && !c.multiple() => {
                    let inner = match scalar_ty(c) {
                        Ty::Time { .. } => Ty::Opt(Box::new(Ty::Int)),
                        t => Ty::Opt(Box::new(t)),
                    };
                    for p in &mut forks {
                        let n = unique(pname.clone(), &p.params);
                        p.params.push(Param {
                            name: n.clone(),
                            ty: inner.clone(),
                        });
                        p.writes.push(Write::Opt {
                            field: f,
                            param: n,
                            token: c.token.clone(),
                            flag: false,
                        });
                    }
                }
                _ if c.is_scalar() => {
                    for p in &mut forks {
                        let n = unique(pname.clone(), &p.params);
                        let multi = c.multiple();
                        p.params.push(Param {
                            name: n.clone(),
                            ty: if multi { Ty::Arg } else { scalar_ty(c) },
                        });
                        let each = multi && c.multiple_token();
                        if let (Some(t), false) = (&c.token, each) {
                            p.writes.push(Write::Token(f, t.clone()));
                        }
                        if was_counted {
                            // numkeys right before a multiple: count the values first.
                            p.writes.push(Write::Tuples {
                                field: f,
                                param: n,
                                keys: vec![key],
                                token_each: None,
                                counted: true,
                            });
                            let last = p.params.len() - 1;
                            p.params[last].ty = Ty::Tuples(1);
                        } else if multi {
                            p.writes.push(Write::Many {
                                field: f,
                                param: n,
                                key,
                                token_each: c.token.clone().filter(|_| each),
                            });
                        } else {
                            p.writes.push(Write::One {
                                field: f,
                                param: n,
                                key,
                            });
                        }
                    }
                }
                "oneof" if c.is_token_choice() && !c.multiple() => {
                    let e = self.enum_for(c);
                    for p in &mut forks {
                        let n = unique(pname.clone(), &p.params);
                        if c.optional() {
                            p.params.push(Param {
                                name: n.clone(),
                                ty: Ty::Opt(Box::new(Ty::Enum(e.clone()))),
                            });
                            p.writes.push(Write::Opt {
                                field: f,
                                param: n,
                                token: c.token.clone(),
                                flag: false,
                            });
                        } else {
                            p.params.push(Param {
                                name: n.clone(),
                                ty: Ty::Enum(e.clone()),
                            });
                            if let Some(t) = &c.token {
                                p.writes.push(Write::Token(f, t.clone()));
                            }
                            p.writes.push(Write::One {
                                field: f,
                                param: n,
                                key: false,
                            });
                        }
                    }
                }
                "oneof" if !c.optional() && !c.multiple() => {
                    let mut out = Vec::new();
                    for p in &forks {
                        for alt in &c.arguments {
                            let mut q = p.clone();
                            q.name = q.name.clone().or_else(|| Some(chain_name(alt)));
                            if let Some(t) = &c.token {
                                q.writes.push(Write::Token(f, t.clone()));
                            }
                            let sub =
                                self.core_with(std::slice::from_ref(alt), &[f], false, q, false);
                            out.extend(sub);
                        }
                    }
                    forks = out;
                }
                "block" if !c.multiple() && !c.optional() => {
                    let mut out = Vec::new();
                    for mut p in forks {
                        if let Some(t) = &c.token {
                            p.writes.push(Write::Token(f, t.clone()));
                        }
                        let fs = vec![f; c.arguments.len()];
                        out.extend(self.core_with(&c.arguments, &fs, false, p, false));
                    }
                    forks = out;
                }
                "block" if Self::simple_children(c) && !c.optional() => {
                    for p in &mut forks {
                        let n = unique(pname.clone(), &p.params);
                        p.params.push(Param {
                            name: n.clone(),
                            ty: Ty::Tuples(c.arguments.len()),
                        });
                        p.writes.push(Write::Tuples {
                            field: f,
                            param: n,
                            keys: c.arguments.iter().map(|x| x.kind == "key").collect(),
                            token_each: c.token.clone().filter(|_| c.multiple_token()),
                            counted: was_counted,
                        });
                    }
                }
                _ => {
                    // Anything stranger: the arguments as the server expects them.
                    for p in &mut forks {
                        let n = unique(pname.clone(), &p.params);
                        p.params.push(Param {
                            name: n.clone(),
                            ty: Ty::Arg,
                        });
                        p.writes.push(Write::Many {
                            field: f,
                            param: n,
                            key: false,
                            token_each: None,
                        });
                    }
                }
            }
        }
        forks
    }

    /// One chained method per alternative of a oneof, all writing field `f`: the last one
    /// called wins, or with `append` (a `multiple` oneof) they add up.
    fn alternatives(&mut self, a: &Arg, f: usize, append: bool, prefix: &str) {
        for alt in &a.arguments {
            let mut p = Partial::default();
            if !append {
                p.writes.push(Write::Clear(f));
            }
            if let Some(t) = &a.token {
                if append {
                    p.writes.push(Write::TokenIfEmpty(f, t.clone()));
                } else {
                    p.writes.push(Write::Token(f, t.clone()));
                }
            }
            let doc = synopsis_arg(alt, true);
            match alt.kind.as_str() {
                "oneof" if !(alt.is_token_choice() && alt.token.is_some()) => {
                    // A nested oneof flattens into this one's methods.
                    self.alternatives(alt, f, append || alt.multiple(), prefix);
                }
                "pure-token" => {
                    p.writes.push(match &alt.token {
                        Some(t) => Write::Token(f, t.clone()),
                        None => Write::Empty(f),
                    });
                    self.method(chain_name(alt), prefix, p, format!("Chooses `{doc}`."));
                }
                _ => {
                    let mut alt2 = alt.clone();
                    alt2.flags.retain(|x| x != "optional");
                    for mut fork in self.core(std::slice::from_ref(&alt2), &[f], false, p) {
                        let name = if alt.kind == "block" {
                            fork.name.take().unwrap_or_else(|| block_name(alt))
                        } else {
                            chain_name(alt)
                        };
                        self.method(name, prefix, fork, format!("Chooses `{doc}`."));
                    }
                }
            }
        }
    }
}

fn prefix_join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

/// A block alternative's method name: its token, else its first child's, else its name.
fn block_name(a: &Arg) -> String {
    token_name(a)
        .or_else(|| a.arguments.first().and_then(token_name))
        .unwrap_or_else(|| chain_name(a))
}

/// The Redis-docs style synopsis of one argument.
pub fn synopsis_arg(a: &Arg, top: bool) -> String {
    let mut s = String::new();
    if let Some(t) = &a.token {
        s.push_str(t);
    }
    let body = match a.kind.as_str() {
        "pure-token" => String::new(),
        "oneof" => {
            let alts: Vec<String> = a.arguments.iter().map(|x| synopsis_arg(x, false)).collect();
            let inner = alts.join(" | ");
            if a.optional() {
                inner
            } else {
                format!("<{inner}>")
            }
        }
        "block" => a
            .arguments
            .iter()
            .map(|x| synopsis_arg(x, false))
            .collect::<Vec<_>>()
            .join(" "),
        _ => a.display_text.clone().unwrap_or_else(|| a.name.clone()),
    };
    if !body.is_empty() {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&body);
    }
    if a.multiple() {
        let again = if a.multiple_token() {
            s.clone()
        } else {
            body.clone()
        };
        s = format!("{s} [{again} ...]");
    }
    if a.optional() && !top {
        s = format!("[{s}]");
    }
    s
}

/// The synopsis of a command: `SET key value [NX | XX] …`.
pub fn synopsis(wire: &str, c: &Command) -> String {
    let mut s = wire.to_string();
    for a in &c.arguments {
        s.push(' ');
        s.push_str(&synopsis_arg(a, false));
    }
    s
}

/// Lowers one command.
///
/// `whole_blocks`: the names of this command's required `multiple` blocks of pairs to also
/// take whole (`codegen/overrides.json`); one that is not lowered as a positional element
/// (the command's first parameter, a token before each element, not found) is left out of
/// [`Plan::whole`], which the caller checks.
pub fn plan(name: &str, c: &Command, enums: &mut Enums, whole_blocks: &[String]) -> Plan {
    let builder = builder_name(name);
    let mut l = Lower {
        builder: builder.clone(),
        fields: vec![],
        segs: vec![],
        params: vec![],
        ctor: vec![],
        methods: vec![],
        method_names: BTreeSet::new(),
        enums,
        whole_blocks,
        whole: None,
    };
    l.list(&c.arguments);
    let whole = l.whole.as_ref().map(|m| {
        let data = Param {
            name: unique("fields".into(), &l.params),
            ty: Ty::Fields,
        };
        let mut params = l.params[..m.params.start].to_vec();
        params.push(data.clone());
        params.extend_from_slice(&l.params[m.params.end..]);
        let mut ctor = l.ctor[..m.ctor.start].to_vec();
        ctor.push(Write::Grouped {
            field: m.field,
            param: data.name,
            width: m.width,
        });
        ctor.extend_from_slice(&l.ctor[m.ctor.end..]);
        Whole {
            method: format!("{}_multiple", method_name(name)),
            block: m.block.clone(),
            params,
            ctor,
        }
    });
    Plan {
        name: name.to_string(),
        wire: name.replace('|', " ").to_ascii_uppercase(),
        method: method_name(name),
        builder,
        fields: l.fields,
        segs: l.segs,
        params: l.params,
        ctor: l.ctor,
        methods: l.methods,
        whole,
    }
}

/// Gives every wanted enum its final name: its arg name in CamelCase when that is unambiguous
/// (same tokens wherever the name is used, no clash with a builder or ringdis type), else its
/// tokens joined with `Or` (`LeftOrRight`) when short, else prefixed by the command
/// (`ClientKillClientType`). Returns the defs, and `@builder::arg` → final name.
pub fn finish_enums(
    enums: &Enums,
    builders: &BTreeSet<String>,
) -> (Vec<EnumDef>, BTreeMap<String, String>) {
    const TAKEN: &[&str] = &[
        "Args",
        "Cmd",
        "CmdFlags",
        "Value",
        "Client",
        "Pipeline",
        "Call",
        "Part",
        "Bytes",
        "Result",
        "Option",
        "Vec",
        "String",
        "Dispatch",
        "Commands",
        "HashMap",
        "ToArg",
        "FromRedis",
        "Error",
        "Self",
        "GeoMatch",
        "PhantomData",
        "Reply",
    ];
    let mut by_name: BTreeMap<String, Vec<&EnumDef>> = BTreeMap::new();
    for (_, d) in &enums.wanted {
        by_name.entry(d.name.clone()).or_default().push(d);
    }
    let mut names = BTreeMap::new();
    let mut defs: BTreeMap<String, EnumDef> = BTreeMap::new();
    for (key, d) in &enums.wanted {
        let same = by_name[&d.name].iter().all(|o| o.variants == d.variants);
        let clash = builders.contains(&d.name) || TAKEN.contains(&d.name.as_str());
        let name = if same && !clash {
            d.name.clone()
        } else if d.variants.len() <= 3 {
            d.variants
                .iter()
                .map(|v| v.0.clone())
                .collect::<Vec<_>>()
                .join("Or")
        } else {
            format!("{}{}", key.split("::").next().unwrap_or_default(), d.name)
        };
        let mut def = d.clone();
        def.name = name.clone();
        if let Some(old) = defs.get(&name) {
            assert_eq!(old.variants, def.variants, "enum {name} named twice");
        }
        defs.insert(name.clone(), def);
        names.insert(format!("@{key}"), name);
    }
    (defs.into_values().collect(), names)
}
