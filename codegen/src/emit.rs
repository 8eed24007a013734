//! Emitting Rust for the plans, with `quote` and `prettyplease`.

use crate::cacheable::is_cacheable;
use crate::model::{reply_type, Command, Overrides, Replies, ReplyOption, Spec};
use crate::plan::{self, Enums, Param, Plan, Seg, Ty, Write};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::{BTreeMap, BTreeSet};

fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

fn docs(text: &str) -> TokenStream {
    let lines = text.lines().map(|l| {
        let l = if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        };
        quote!(#[doc = #l])
    });
    quote!(#(#lines)*)
}

fn ty(t: &Ty, names: &BTreeMap<String, String>) -> TokenStream {
    match t {
        Ty::Arg => quote!(impl ToArg),
        Ty::Int => quote!(i64),
        Ty::Float => quote!(f64),
        Ty::Time { .. } => quote!(impl UnixTime),
        Ty::Flag => quote!(bool),
        Ty::Enum(e) => {
            let n = ident(names.get(e).map_or(e.as_str(), String::as_str));
            quote!(#n)
        }
        Ty::Tuples(1) => quote!(impl IntoIterator<Item = impl ToArg>),
        Ty::Tuples(n) => {
            let items = (0..*n).map(|_| quote!(impl ToArg));
            quote!(impl IntoIterator<Item = (#(#items),*)>)
        }
        Ty::Fields => quote!(impl FieldValues),
        Ty::Opt(inner) => match &**inner {
            Ty::Arg => quote!(Option<&str>),
            other => {
                let i = ty(other, names);
                quote!(Option<#i>)
            }
        },
    }
}

/// Timestamps become integers (seconds or milliseconds, as the argument wants) first.
fn time_lets(params: &[plan::Param]) -> TokenStream {
    let lets = params.iter().filter_map(|p| match p.ty {
        Ty::Time { millis } => {
            let n = ident(&p.name);
            Some(if millis {
                quote!(let #n = #n.unix_millis();)
            } else {
                quote!(let #n = #n.unix_seconds();)
            })
        }
        _ => None,
    });
    quote!(#(#lets)*)
}

/// The name of the associated constant holding a field's segment index: `condition` →
/// `CONDITION`.
fn seg_const(field: &str) -> Ident {
    format_ident!("{}", field.to_uppercase())
}

fn writes(ws: &[Write], fields: &[String], recv: &TokenStream) -> TokenStream {
    let f = |i: &usize| {
        let c = seg_const(&fields[*i]);
        quote!(#recv.part(Self::#c))
    };
    let out = ws.iter().map(|w| match w {
        Write::Clear(i) => {
            let f = f(i);
            quote!(#f.clear();)
        }
        Write::Token(i, t) => {
            let f = f(i);
            quote!(#f.token(#t);)
        }
        Write::TokenIfEmpty(i, t) => {
            let f = f(i);
            quote!(if #f.is_empty() { #f.token(#t); })
        }
        Write::Empty(i) => {
            let f = f(i);
            quote!(#f.arg("");)
        }
        Write::One { field, param, key } => {
            let f = f(field);
            let p = ident(param);
            if *key {
                quote!(#f.key(#p);)
            } else {
                quote!(#f.arg(#p);)
            }
        }
        Write::Grouped {
            field,
            param,
            width,
        } => {
            let f = f(field);
            let p = ident(param);
            let w = Literal::usize_unsuffixed(*width);
            quote!(#f.grouped(#p, #w);)
        }
        Write::Many {
            field,
            param,
            key,
            token_each,
        } => {
            let f = f(field);
            let p = ident(param);
            match token_each {
                Some(t) => quote!(#f.many_each(#t, #p, #key);),
                None => quote!(#f.many(#p, #key);),
            }
        }
        Write::Tuples {
            field,
            param,
            keys,
            token_each,
            counted,
        } => {
            let f = f(field);
            let p = ident(param);
            let vars: Vec<Ident> = (0..keys.len())
                .map(|i| {
                    format_ident!(
                        "{}{}",
                        param,
                        if keys.len() == 1 {
                            String::new()
                        } else {
                            format!("_{i}")
                        }
                    )
                })
                .map(|i| {
                    if keys.len() == 1 {
                        format_ident!("item")
                    } else {
                        i
                    }
                })
                .collect();
            let pat = if vars.len() == 1 {
                let v = &vars[0];
                quote!(#v)
            } else {
                quote!((#(#vars),*))
            };
            let tok = token_each.as_ref().map(|t| quote!(#f.token(#t);));
            let each = vars.iter().zip(keys).map(|(v, k)| {
                if *k {
                    quote!(#f.key(#v);)
                } else {
                    quote!(#f.arg(#v);)
                }
            });
            let body = quote!(#tok #(#each)* #f.item(););
            if *counted {
                quote! {
                    let items: Vec<_> = #p.into_iter().collect();
                    #f.arg(items.len());
                    for #pat in items { #body }
                }
            } else {
                quote!(for #pat in #p { #body })
            }
        }
        Write::Opt {
            field,
            param,
            token,
            flag,
        } => {
            let f = f(field);
            let p = ident(param);
            let tok = token.as_ref().map(|t| quote!(#f.token(#t);));
            if *flag {
                quote!(if #p { #tok })
            } else {
                quote!(if let Some(value) = #p { #tok #f.arg(value); })
            }
        }
        Write::Item(i) => {
            let f = f(i);
            quote!(#f.item();)
        }
    });
    quote!(#(#out)*)
}

/// The doc text of a command method.
pub fn command_doc(
    p: &Plan,
    c: &Command,
    reply: &str,
    shape: &str,
    probe: bool,
    untyped: Option<&str>,
    changes: &[(Vec<String>, String, String)],
) -> String {
    let mut d = format!("`{}`\n\n", plan::synopsis(&p.wire, c));
    if !c.summary.is_empty() {
        d.push_str(&format!("{}\n\n", c.summary.trim()));
    }
    d.push_str(&format!("- group: {}\n", c.group));
    d.push_str(&format!("- since: {}\n", c.since));
    if !c.complexity.is_empty() {
        d.push_str(&format!("- complexity: {}\n", c.complexity.trim()));
    }
    if probe {
        match c.redis_7_0 {
            Some(true) => d.push_str("- in Redis 7.0: yes\n"),
            Some(false) => d.push_str("- in Redis 7.0: no (Valkey, or newer Redis)\n"),
            None => {}
        }
    }
    d.push_str(&format!(
        "- default reply: `{reply}` ({shape}); `.decode::<T>()` for another type\n"
    ));
    if let Some(why) = untyped {
        d.push_str(&format!("- why untyped: {why}\n"));
    }
    for (methods, ty, why) in changes {
        let methods: Vec<String> = methods.iter().map(|m| format!("`.{m}(..)`")).collect();
        d.push_str(&format!(
            "- with {}: `{ty}` ({why})\n",
            methods.join(" or ")
        ));
    }
    d
}

/// The line a cacheable command's method docs end with.
const CACHEABLE_DOC: &str = "- cacheable: `.cached()` / `.cached_for(ttl)` read it through the \
                             client's cache ([`Cached`])\n";

/// How the options of one builder that change the reply re-type it.
struct Retype {
    /// Method → the reply type it gives.
    target: BTreeMap<String, String>,
    /// Reply type (a state of the builder) → the re-typing methods callable in it.
    states: BTreeMap<String, Vec<String>>,
    /// For the docs: (methods, type, reason), in the order of `overrides.json`.
    docs: Vec<(Vec<String>, String, String)>,
}

/// Reads the `reply_options` of one command against its plan: every option must be a chained
/// method of the builder, named once, and change the reply; `from` must name `default` or an
/// option of another entry.
fn retype(p: &Plan, default: &str, entries: &[&ReplyOption]) -> Result<Retype, String> {
    let at = |e: &ReplyOption| {
        format!(
            "overrides.json: reply_options: {} {:?}",
            e.command, e.options
        )
    };
    let mut target = BTreeMap::new();
    let mut docs = Vec::new();
    for e in entries {
        let ty = reply_type(&e.reply).ok_or_else(|| format!("{}: unknown shape", at(e)))?;
        if ty == default {
            return Err(format!("{}: `{ty}` is already the default reply", at(e)));
        }
        for o in &e.options {
            if !p.methods.iter().any(|m| &m.name == o) {
                return Err(format!("{}: the builder has no method `{o}`", at(e)));
            }
            if target.insert(o.clone(), ty.to_string()).is_some() {
                return Err(format!("{}: `{o}` is listed twice", at(e)));
            }
        }
        docs.push((e.options.clone(), ty.to_string(), e.reason.clone()));
    }
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in entries {
        let ty = reply_type(&e.reply).unwrap_or_default().to_string();
        let mut from: BTreeSet<String> = BTreeSet::from([ty]);
        for f in &e.from {
            if f == "default" {
                from.insert(default.to_string());
            } else {
                let t = target
                    .get(f)
                    .ok_or_else(|| format!("{}: `from` names {f:?}, not an option", at(e)))?;
                from.insert(t.clone());
            }
        }
        for state in from {
            states
                .entry(state)
                .or_default()
                .extend(e.options.iter().cloned());
        }
    }
    Ok(Retype {
        target,
        states,
        docs,
    })
}

/// Generates the whole file for `spec` with `replies`.
///
/// # Errors
/// A `reply_options` entry of `overrides` that does not fit its command's builder.
pub fn generate(spec: &Spec, replies: &Replies, overrides: &Overrides) -> Result<String, String> {
    let eligible = spec.eligible();
    let mut enums = Enums::default();
    let plans: Vec<(Plan, &Command)> = eligible
        .iter()
        .map(|(n, c)| {
            let whole: Vec<String> = overrides
                .whole_blocks
                .iter()
                .filter_map(|w| w.argument.split_once(' '))
                .filter(|(command, _)| command == n)
                .map(|(_, block)| block.to_string())
                .collect();
            (plan::plan(n, c, &mut enums, &whole), *c)
        })
        .collect();
    // Every `whole_blocks` entry must name a block its command's plan took whole (one for a
    // command the spec lacks is skipped, as argument corrections are).
    for w in &overrides.whole_blocks {
        let (command, block) = w.argument.split_once(' ').unwrap_or_default();
        let Some((p, _)) = plans.iter().find(|(p, _)| p.name == command) else {
            continue;
        };
        if p.whole.as_ref().map(|x| x.block.as_str()) != Some(block) {
            return Err(format!(
                "overrides.json: whole_blocks: {}: not a required multiple block after other \
                 parameters, without a token before each element",
                w.argument
            ));
        }
    }
    let builders: BTreeSet<String> = plans.iter().map(|(p, _)| p.builder.clone()).collect();
    let (defs, names) = plan::finish_enums(&enums, &builders);

    let mut trait_methods = Vec::new();
    let mut items = Vec::new();
    // The cacheable commands, by wire name, for the docs and `CACHEABLE_COMMANDS`.
    let mut cached_wire = Vec::new();
    for (p, c) in &plans {
        let cacheable = is_cacheable(&p.name, c);
        if cacheable {
            cached_wire.push(p.wire.clone());
        }
        let shape = replies.get(&p.name).map_or("any", String::as_str);
        let reply_src = reply_type(shape).unwrap_or("Value");
        let reply: TokenStream = reply_src.parse().expect("reply types parse");
        let untyped = overrides
            .untyped_replies
            .get(&p.name)
            .filter(|_| shape == "any")
            .map(String::as_str);
        let entries: Vec<&ReplyOption> = overrides
            .reply_options
            .iter()
            .filter(|e| e.command == p.name)
            .collect();
        let re = retype(p, reply_src, &entries)?;
        let mut doc = command_doc(
            p,
            c,
            reply_src,
            shape,
            spec.probe.is_some(),
            untyped,
            &re.docs,
        );
        if cacheable {
            doc.push_str(CACHEABLE_DOC);
        }
        let doc = docs(&doc);
        let b = ident(&p.builder);
        let m = ident(&p.method);
        let wire = &p.wire;
        // `name: Type` for each parameter, and the names alone.
        let typed = |params: &[Param]| -> (Vec<TokenStream>, Vec<Ident>) {
            params
                .iter()
                .map(|q| {
                    let (n, t) = (ident(&q.name), ty(&q.ty, &names));
                    (quote!(#n: #t), n)
                })
                .unzip()
        };
        let (params, pnames) = typed(&p.params);
        let deprecated = c.deprecated().then(|| {
            let since = c.deprecated_since.clone().unwrap_or_default();
            let note = match &c.replaced_by {
                Some(r) => format!("replaced by {}", r.replace('`', "")),
                None => "deprecated by the server".to_string(),
            };
            quote!(#[deprecated(since = #since, note = #note)])
        });
        trait_methods.push(quote! {
            #doc
            #deprecated
            fn #m(self, #(#params),*) -> #b<Self::Target> {
                #b::new(self.into_target(), #(#pnames),*)
            }
        });
        // The same command with its block of pairs taken whole (`whole_blocks`).
        let whole_ctor = p.whole.as_ref().map(|w| {
            let wm = ident(&w.method);
            let (wparams, wnames) = typed(&w.params);
            let reason = overrides
                .whole_blocks
                .iter()
                .find(|x| x.argument == format!("{} {}", p.name, w.block))
                .map_or("", |x| x.reason.as_str());
            let wdoc = docs(&format!(
                "`{wire}` with every `{block}` element from one value: [`Commands::{m}`] with \
                 the `{block}` block taken whole. `fields` is a [`FieldValues`]: a \
                 `#[derive(ToRedis)]` struct (its `field value` pairs), a map, or a collection \
                 of pairs. One that writes no pair is refused by the server (`ERR wrong number \
                 of arguments`).\n\nWhy: {reason}",
                block = w.block,
                m = p.method,
            ));
            let wlets = time_lets(&w.params);
            let wctor = writes(&w.ctor, &p.fields, &quote!(this));
            let new_whole = format_ident!("new_{}", w.method);
            trait_methods.push(quote! {
                #wdoc
                #deprecated
                fn #wm(self, #(#wparams),*) -> #b<Self::Target> {
                    #b::#new_whole(self.into_target(), #(#wnames),*)
                }
            });
            (new_whole, wparams, wlets, wctor)
        });
        // Each field is one segment of the command; its constant names its index.
        let seg_consts: Vec<TokenStream> = p
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let at = p
                    .segs
                    .iter()
                    .position(|s| matches!(s, Seg::Field(j) if *j == i))
                    .ok_or_else(|| format!("{}: field {f} is in no segment", p.name))?;
                let c = seg_const(f);
                let d = format!(" The segment of `{f}`.");
                let at = Literal::usize_unsuffixed(at);
                Ok(quote!(#[doc = #d] const #c: usize = #at;))
            })
            .collect::<Result<_, String>>()?;
        // Derived counts (`numkeys`): (count segment, counted segment), rewritten after writes.
        let counts: Vec<(usize, usize)> = p
            .segs
            .iter()
            .enumerate()
            .filter_map(|(at, s)| match s {
                Seg::Count(i) => p
                    .segs
                    .iter()
                    .position(|s| matches!(s, Seg::Field(j) if j == i))
                    .map(|of| (at, of)),
                _ => None,
            })
            .collect();
        let recount = (!counts.is_empty()).then(|| quote!(self.recount();));
        let recount_fn = (!counts.is_empty()).then(|| {
            let each = counts.iter().map(|(at, of)| {
                let (at, of) = (
                    Literal::usize_unsuffixed(*at),
                    Literal::usize_unsuffixed(*of),
                );
                quote! {
                    let n = self.layout.items(#of);
                    let mut part = self.part(#at);
                    part.clear();
                    part.arg(n);
                }
            });
            quote! {
                /// Rewrites the derived counts from the items they count.
                fn recount(&mut self) {
                    #(#each)*
                }
            }
        });
        let init_segs: Vec<TokenStream> = p
            .segs
            .iter()
            .enumerate()
            .filter_map(|(at, s)| match s {
                Seg::Token(t) => {
                    let at = Literal::usize_unsuffixed(at);
                    Some(quote!(this.part(#at).token(#t);))
                }
                _ => None,
            })
            .collect();
        let ctor = writes(&p.ctor, &p.fields, &quote!(this));
        let method = |mm: &plan::Method, to: Option<&String>| {
            let n = ident(&mm.name);
            let ps = mm.params.iter().map(|q| {
                let n = ident(&q.name);
                let t = ty(&q.ty, &names);
                quote!(#n: #t)
            });
            let body = writes(&mm.writes, &p.fields, &quote!(self));
            let body = quote!(#body #recount);
            let lets = time_lets(&mm.params);
            match to {
                None => {
                    let d = docs(&mm.doc);
                    quote! {
                        #d
                        pub fn #n(mut self, #(#ps),*) -> Self {
                            #lets
                            #body
                            self
                        }
                    }
                }
                Some(to) => {
                    let d = docs(&format!(
                        "{}\n\nChanges the reply: awaiting the command gives `{to}`.",
                        mm.doc
                    ));
                    let t: TokenStream = to.parse().expect("reply types parse");
                    quote! {
                        #d
                        pub fn #n(mut self, #(#ps),*) -> #b<T, #t> {
                            #lets
                            #body
                            self.retype()
                        }
                    }
                }
            }
        };
        let methods = p
            .methods
            .iter()
            .filter(|mm| !re.target.contains_key(&mm.name))
            .map(|mm| method(mm, None));
        let state_impls = re.states.iter().map(|(state, names)| {
            let st: TokenStream = state.parse().expect("reply types parse");
            let ms = p
                .methods
                .iter()
                .filter(|mm| names.contains(&mm.name))
                .map(|mm| method(mm, re.target.get(&mm.name)));
            quote! {
                impl<T: Dispatch> #b<T, #st> {
                    #(#ms)*
                }
            }
        });
        let (blocking, readonly, write) = (
            c.has_flag("blocking"),
            c.has_flag("readonly"),
            c.has_flag("write"),
        );
        let bdoc = docs(&format!(
            "The `{wire}` command being built: see [`Commands::{}`].\n\n`Reply` is what awaiting it gives: `{reply_src}`, unless an option that changes the \
             reply's shape re-typed it.",
            p.method
        ));
        let head = quote! {
            Cmd::new(#wire).with_flags(CmdFlags {
                blocking: #blocking,
                readonly: #readonly,
                write: #write,
            })
        };
        let lets = time_lets(&p.params);
        let nsegs = Literal::usize_unsuffixed(p.segs.len());
        let whole_fn = whole_ctor.map(|(name, wparams, wlets, wctor)| {
            let this_recount = (!counts.is_empty()).then(|| quote!(this.recount();));
            quote! {
                fn #name(target: T, #(#wparams),*) -> Self {
                    #wlets
                    let mut this = Self::begin(target, #head);
                    #(#init_segs)*
                    #wctor
                    #this_recount
                    this
                }
            }
        });
        let new_body = if init_segs.is_empty() && p.ctor.is_empty() && counts.is_empty() {
            quote!(#lets Self::begin(target, #head))
        } else {
            let this_recount = (!counts.is_empty()).then(|| quote!(this.recount();));
            quote! {
                #lets
                let mut this = Self::begin(target, #head);
                #(#init_segs)*
                #ctor
                #this_recount
                this
            }
        };
        items.push(quote! {
            #bdoc
            #[must_use = "a command built on a client does nothing until it is awaited; on a pipeline it is already added: end the statement with `.send()`"]
            pub struct #b<T: Dispatch, Reply = #reply> {
                target: T,
                kept: Cmd,
                layout: Layout<#nsegs>,
                reply: PhantomData<fn() -> Reply>,
            }
            impl<T: Dispatch, Reply> #b<T, Reply> {
                #(#seg_consts)*
                fn new(target: T, #(#params),*) -> Self {
                    #new_body
                }
                #whole_fn
                #(#methods)*
                #recount_fn
            }
            #(#state_impls)*
            builder!(#b);
        });
        if cacheable {
            items.push(quote!(cacheable!(#b);));
        }
    }
    for d in &defs {
        let n = ident(&d.name);
        let vs: Vec<Ident> = d.variants.iter().map(|v| ident(&v.0)).collect();
        let toks: Vec<&String> = d.variants.iter().map(|v| &v.1).collect();
        let vdocs = toks.iter().map(|t| {
            let s = format!(" `{t}`");
            quote!(#[doc = #s])
        });
        let edoc = docs(&format!(
            "A choice of tokens: {}.",
            toks.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        items.push(quote! {
            #edoc
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
            pub enum #n { #(#vdocs #vs,)* }
            impl ToArg for #n {
                fn write_args(&self, out: &mut Args) {
                    out.push_bytes(match self { #(#n::#vs => #toks,)* }.as_bytes());
                }
            }
        });
    }
    let count = plans.len();
    let header = format!(
        "One method per command of the spec ({count} commands, from {}).",
        spec.source
    );
    let cached_doc = format!(
        " The builders of the cacheable commands ({}) also have `.cached()` and `.cached_for(ttl)`, on \
         a client (not a pipeline): see [`Cached`] for the rule and what a \
         cached read does: {}.",
        cached_wire.len(),
        cached_wire
            .iter()
            .map(|w| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let cached_list = &cached_wire;
    let file = quote! {
        /// Every command of the spec, as a method: see the [module docs](self).
        ///
        #[doc = #header]
        ///
        #[doc = #cached_doc]
        pub trait Commands: Sized {
            /// Where the built commands go.
            type Target: Dispatch;
            #[doc(hidden)]
            fn into_target(self) -> Self::Target;
            #(#trait_methods)*
        }
        /// How many methods [`Commands`] has: one per command of the spec.
        pub const COMMAND_COUNT: usize = #count;
        /// The commands whose builders have `.cached()` (see [`Cached`]), as
        /// their names are sent (`"GET"`, `"XINFO STREAM"`), sorted by spec name.
        pub const CACHEABLE_COMMANDS: &[&str] = &[#(#cached_list),*];
        #(#items)*
    };
    let syntax: syn::File = syn::parse2(file).map_err(|e| format!("generated code: {e}"))?;
    let mut out = String::from(
        "// @generated by ringdis-codegen from commands.json and replies.json: do not edit; run scripts/generate.\n",
    );
    // prettyplease leaves no blank lines: put one after each item (and each trait method) ends.
    let mut previous = "";
    for line in prettyplease::unparse(&syntax).lines() {
        if ends_item(previous) && !line.trim_start().starts_with('}') {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
        previous = line;
    }
    Ok(out)
}

/// Whether `line` closes a top-level item or an item one level in (a method).
fn ends_item(line: &str) -> bool {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    indent <= 4 && (rest == "}" || (indent == 0 && rest.ends_with(';')))
}
