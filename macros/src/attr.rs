//! `#[redis(...)]` attributes: parsing, checking, and the shape of the type they annotate.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

/// Collects every error so one compile shows them all.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// A `rename_all` rule.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    /// A field name as written in Rust (`snake_case`) under this rule.
    pub fn field(self, name: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => name.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => name.to_ascii_uppercase(),
            RenameRule::Pascal | RenameRule::Camel => {
                let mut out = String::new();
                let mut up = self == RenameRule::Pascal;
                for c in name.chars() {
                    if c == '_' {
                        up = true;
                    } else if up {
                        out.extend(c.to_uppercase());
                        up = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
            RenameRule::Kebab => name.replace('_', "-"),
            RenameRule::ScreamingKebab => name.replace('_', "-").to_ascii_uppercase(),
        }
    }

    /// A variant name as written in Rust (`PascalCase`) under this rule.
    pub fn variant(self, name: &str) -> String {
        let snake = || {
            let mut out = String::new();
            for (i, c) in name.char_indices() {
                if c.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.extend(c.to_lowercase());
            }
            out
        };
        match self {
            RenameRule::Lower => name.to_ascii_lowercase(),
            RenameRule::Upper => name.to_ascii_uppercase(),
            RenameRule::Pascal => name.to_owned(),
            RenameRule::Camel => {
                let mut c = name.chars();
                match c.next() {
                    Some(f) => f.to_lowercase().chain(c).collect(),
                    None => String::new(),
                }
            }
            RenameRule::Snake => snake(),
            RenameRule::ScreamingSnake => snake().to_ascii_uppercase(),
            RenameRule::Kebab => snake().replace('_', "-"),
            RenameRule::ScreamingKebab => snake().replace('_', "-").to_ascii_uppercase(),
        }
    }
}

/// What `#[redis(default)]` fills a missing field with.
pub enum DefaultKind {
    /// `Default::default()`.
    Trait,
    /// `#[redis(default = "path")]`: a function.
    Path(syn::ExprPath),
}

/// One field of a struct, attributes resolved.
pub struct Field {
    /// `self.<member>`.
    pub member: syn::Member,
    /// The Rust name (`age`, or `0` for a tuple field), for error paths.
    pub name: String,
    /// The name on the wire, after `rename`/`rename_all`.
    pub wire: String,
    pub ty: syn::Type,
    pub span: Span,
    pub default: Option<DefaultKind>,
    pub skip: bool,
    pub flatten: bool,
}

/// One fieldless variant.
pub struct Variant {
    pub ident: syn::Ident,
    pub wire: String,
}

/// The shapes the derives accept.
pub enum Shape {
    Named(Vec<Field>),
    /// A tuple struct of one field that is not skipped: transparent.
    Newtype(Box<Field>),
    Tuple(Vec<Field>),
    Unit,
    Enum(Vec<Variant>),
}

/// A parsed input type.
pub struct Input {
    pub ident: syn::Ident,
    pub generics: syn::Generics,
    pub shape: Shape,
    pub deny_unknown_fields: bool,
}

fn lit_str(meta: &syn::meta::ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// Calls `each` for every `key` / `key = value` inside the `#[redis(...)]` attributes.
fn for_each_meta(
    attrs: &[syn::Attribute],
    errors: &mut Errors,
    mut each: impl FnMut(&syn::meta::ParseNestedMeta) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("redis")) {
        if let Err(e) = attr.parse_nested_meta(|meta| each(&meta)) {
            errors.push(e);
        }
    }
}

fn unknown(meta: &syn::meta::ParseNestedMeta, place: &str, known: &str) -> syn::Error {
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    meta.error(format!(
        "unknown redis attribute `{name}` on {place}; expected {known}"
    ))
}

fn duplicate(meta: &syn::meta::ParseNestedMeta, what: &str) -> syn::Error {
    meta.error(format!("duplicate `{what}` attribute"))
}

/// Parses and checks the input of either derive.
pub fn parse(input: &DeriveInput, derive: &str) -> syn::Result<Input> {
    let mut errors = Errors::default();

    // Container attributes.
    let mut rename_all: Option<RenameRule> = None;
    let mut deny: Option<Span> = None;
    let mut seen_rename_all = false;
    for_each_meta(&input.attrs, &mut errors, |meta| {
        if meta.path.is_ident("rename_all") {
            let s = lit_str(meta)?;
            if seen_rename_all {
                return Err(duplicate(meta, "rename_all"));
            }
            seen_rename_all = true;
            match RULES.iter().find(|(n, _)| *n == s.value()) {
                Some((_, r)) => rename_all = Some(*r),
                None => {
                    let names: Vec<String> = RULES.iter().map(|(n, _)| format!("{n:?}")).collect();
                    return Err(syn::Error::new(
                        s.span(),
                        format!(
                            "unknown rename_all rule {:?}; expected one of {}",
                            s.value(),
                            names.join(", ")
                        ),
                    ));
                }
            }
            Ok(())
        } else if meta.path.is_ident("deny_unknown_fields") {
            if deny.is_some() {
                return Err(duplicate(meta, "deny_unknown_fields"));
            }
            deny = Some(meta.path.span());
            Ok(())
        } else {
            Err(unknown(
                meta,
                "a type",
                "`rename_all = \"...\"` or `deny_unknown_fields`",
            ))
        }
    });

    let shape = match &input.data {
        Data::Union(u) => {
            errors.at(
                u.union_token.span,
                format!("#[derive({derive})] does not support unions; use a struct or an enum"),
            );
            Shape::Unit
        }
        Data::Enum(e) => {
            let mut variants = Vec::new();
            for v in &e.variants {
                if !matches!(v.fields, Fields::Unit) {
                    errors.at(
                        v.fields.span(),
                        format!(
                            "#[derive({derive})] supports only enums whose variants have no \
                             fields; `{}` has fields",
                            v.ident
                        ),
                    );
                }
                let mut rename: Option<LitStr> = None;
                for_each_meta(&v.attrs, &mut errors, |meta| {
                    if meta.path.is_ident("rename") {
                        let s = lit_str(meta)?;
                        if rename.is_some() {
                            return Err(duplicate(meta, "rename"));
                        }
                        rename = Some(s);
                        Ok(())
                    } else {
                        Err(unknown(meta, "a variant", "`rename = \"...\"`"))
                    }
                });
                let name = v.ident.unraw().to_string();
                let wire = match (&rename, rename_all) {
                    (Some(s), _) => s.value(),
                    (None, Some(rule)) => rule.variant(&name),
                    (None, None) => name,
                };
                variants.push((
                    Variant {
                        ident: v.ident.clone(),
                        wire,
                    },
                    rename.map_or(v.ident.span(), |s| s.span()),
                ));
            }
            check_unique(
                variants.iter().map(|(v, span)| (v.wire.as_str(), *span)),
                "variant",
                &mut errors,
            );
            if let Some(span) = deny {
                errors.at(
                    span,
                    "`deny_unknown_fields` applies to structs with named fields",
                );
            }
            Shape::Enum(variants.into_iter().map(|(v, _)| v).collect())
        }
        Data::Struct(s) => {
            let named = matches!(s.fields, Fields::Named(_));
            let mut fields = Vec::new();
            for (i, f) in s.fields.iter().enumerate() {
                fields.push(parse_field(f, i, named, rename_all, &mut errors));
            }
            if named {
                check_unique(
                    fields
                        .iter()
                        .filter(|f| !f.skip && !f.flatten)
                        .map(|f| (f.wire.as_str(), f.span)),
                    "field",
                    &mut errors,
                );
                if let Some(span) = deny {
                    if fields.iter().any(|f| f.flatten) {
                        errors.at(
                            span,
                            "`deny_unknown_fields` cannot be combined with `flatten`: the \
                             flattened type takes the fields this one does not know",
                        );
                    }
                }
                Shape::Named(fields)
            } else {
                if let Some(span) = deny {
                    errors.at(
                        span,
                        "`deny_unknown_fields` applies to structs with named fields",
                    );
                }
                if let (Some(_), Fields::Unnamed(u)) = (rename_all, &s.fields) {
                    errors.at(
                        u.span(),
                        "`rename_all` applies to named fields and variants",
                    );
                }
                match s.fields {
                    Fields::Unit => Shape::Unit,
                    _ if fields.len() == 1 && !fields[0].skip => {
                        Shape::Newtype(Box::new(fields.pop().expect("one field")))
                    }
                    _ => Shape::Tuple(fields),
                }
            }
        }
    };
    errors.finish()?;
    Ok(Input {
        ident: input.ident.clone(),
        generics: input.generics.clone(),
        shape,
        deny_unknown_fields: deny.is_some(),
    })
}

fn parse_field(
    f: &syn::Field,
    index: usize,
    named: bool,
    rename_all: Option<RenameRule>,
    errors: &mut Errors,
) -> Field {
    let mut rename: Option<LitStr> = None;
    let mut default: Option<DefaultKind> = None;
    let mut skip = false;
    let mut flatten = false;
    for_each_meta(&f.attrs, errors, |meta| {
        let named_only = |what: &str| {
            meta.error(format!(
                "`{what}` applies to named fields; a tuple field is matched by position"
            ))
        };
        if meta.path.is_ident("rename") {
            let s = lit_str(meta)?;
            if rename.is_some() {
                return Err(duplicate(meta, "rename"));
            }
            if !named {
                return Err(named_only("rename"));
            }
            if s.value().is_empty() {
                return Err(syn::Error::new(s.span(), "a field name cannot be empty"));
            }
            rename = Some(s);
        } else if meta.path.is_ident("default") {
            if default.is_some() {
                return Err(duplicate(meta, "default"));
            }
            default = Some(if meta.input.peek(syn::Token![=]) {
                let s = lit_str(meta)?;
                DefaultKind::Path(s.parse()?)
            } else {
                DefaultKind::Trait
            });
        } else if meta.path.is_ident("skip") {
            if skip {
                return Err(duplicate(meta, "skip"));
            }
            skip = true;
        } else if meta.path.is_ident("flatten") {
            if flatten {
                return Err(duplicate(meta, "flatten"));
            }
            if !named {
                return Err(named_only("flatten"));
            }
            flatten = true;
        } else {
            return Err(unknown(
                meta,
                "a field",
                "`rename = \"...\"`, `default`, `default = \"path\"`, `skip` or `flatten`",
            ));
        }
        Ok(())
    });
    let at = f.ident.as_ref().map_or_else(|| f.ty.span(), |i| i.span());
    if flatten && (skip || default.is_some()) {
        errors.at(
            at,
            "a `flatten` field reads the rest of the map; `skip` and `default` do not apply",
        );
    }
    if flatten && rename.is_some() {
        errors.at(at, "a `flatten` field has no name of its own to `rename`");
    }
    let (member, name) = match &f.ident {
        Some(id) => (syn::Member::Named(id.clone()), id.unraw().to_string()),
        None => (syn::Member::Unnamed(index.into()), index.to_string()),
    };
    let wire = match (&rename, rename_all) {
        (Some(s), _) => s.value(),
        (None, Some(rule)) if named => rule.field(&name),
        _ => name.clone(),
    };
    Field {
        member,
        name,
        wire,
        ty: f.ty.clone(),
        span: rename.as_ref().map_or_else(|| f.span(), |s| s.span()),
        default,
        skip,
        flatten,
    }
}

fn check_unique<'a>(names: impl Iterator<Item = (&'a str, Span)>, what: &str, errors: &mut Errors) {
    let mut seen: Vec<&str> = Vec::new();
    for (name, span) in names {
        if seen.contains(&name) {
            errors.at(
                span,
                format!("duplicate {what} name {name:?}: two {what}s would read the same name"),
            );
        } else {
            seen.push(name);
        }
    }
}

/// True when `ty` names one of the type parameters (such fields get where-clause bounds).
pub fn mentions(ty: &syn::Type, params: &[syn::Ident]) -> bool {
    fn walk(ts: TokenStream, params: &[syn::Ident]) -> bool {
        ts.into_iter().any(|tt| match tt {
            TokenTree::Ident(i) => params.contains(&i),
            TokenTree::Group(g) => walk(g.stream(), params),
            _ => false,
        })
    }
    !params.is_empty() && walk(ty.to_token_stream(), params)
}
