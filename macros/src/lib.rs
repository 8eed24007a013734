//! Derive macros for [ringdis](https://docs.rs/ringdis): `#[derive(FromRedis)]` and
//! `#[derive(ToRedis)]`. Use them through `ringdis` (`use ringdis::{FromRedis, ToRedis};`),
//! whose documentation describes the attributes with examples.

mod attr;

use attr::{DefaultKind, Field, Input, Shape};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, DeriveInput};

/// Derives `ringdis::FromRedis`. See the documentation of `ringdis::FromRedis`.
#[proc_macro_derive(FromRedis, attributes(redis))]
pub fn derive_from_redis(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    attr::parse(&input, "FromRedis")
        .map(|i| from_redis(&i))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `ringdis::ToArg` (struct fields as `name value` pairs). See the documentation of
/// `ringdis::ToRedis`.
#[proc_macro_derive(ToRedis, attributes(redis))]
pub fn derive_to_redis(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    attr::parse(&input, "ToRedis")
        .map(|i| to_redis(&i))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn type_params(input: &Input) -> Vec<syn::Ident> {
    input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect()
}

/// The impl's generics with `bounds` added to its where clause.
fn with_bounds(input: &Input, bounds: Vec<TokenStream>) -> syn::Generics {
    let mut g = input.generics.clone();
    if !bounds.is_empty() {
        let wc = g.make_where_clause();
        for b in bounds {
            wc.predicates.push(syn::parse_quote!(#b));
        }
    }
    g
}

fn default_expr(d: Option<&DefaultKind>) -> TokenStream {
    match d {
        Some(DefaultKind::Path(p)) => quote!(#p()),
        _ => quote!(__p::Default::default()),
    }
}

fn from_redis(input: &Input) -> TokenStream {
    let ident = &input.ident;
    let type_name = ident.to_string();
    let params = type_params(input);
    let mut bounds = Vec::new();
    let mut bound = |f: &Field| {
        if attr::mentions(&f.ty, &params) {
            let ty = &f.ty;
            if f.skip || (f.default.is_some() && !f.flatten) {
                bounds.push(quote!(#ty: __p::Default));
            }
            if !f.skip {
                bounds.push(quote!(#ty: ::ringdis::FromRedis));
            }
        }
    };
    let mut extra = TokenStream::new();
    let body = match &input.shape {
        Shape::Named(fields) => {
            fields.iter().for_each(&mut bound);
            named_body(input, fields)
        }
        Shape::Newtype(f) => {
            bound(f);
            let ty = &f.ty;
            extra = quote! {
                // Rows as the inner type cuts them, each decoded through this type, so an
                // error reads `[2].Wrapper…` as at the top.
                const ROWS: usize = <#ty as ::ringdis::FromRedis>::ROWS;
                fn from_redis_items(items: __p::Vec<::ringdis::Value>) -> ::ringdis::Result<__p::Vec<Self>> {
                    __p::rows::<Self>(items, <Self as ::ringdis::FromRedis>::ROWS)
                }
                fn from_redis_pairs(
                    pairs: __p::Vec<(::ringdis::Value, ::ringdis::Value)>,
                ) -> ::ringdis::Result<__p::Vec<Self>> {
                    if <Self as ::ringdis::FromRedis>::ROWS == 2 {
                        __p::pair_rows::<Self>(pairs)
                    } else {
                        <#ty as ::ringdis::FromRedis>::from_redis_pairs(pairs)
                            .map(|v| v.into_iter().map(#ident).collect())
                    }
                }
                fn from_redis_missing() -> __p::Option<Self> {
                    <#ty as ::ringdis::FromRedis>::from_redis_missing().map(#ident)
                }
            };
            quote!(<#ty as ::ringdis::FromRedis>::from_redis_field(__value).map(#ident))
        }
        Shape::Tuple(fields) => {
            fields.iter().for_each(&mut bound);
            extra = tuple_items(ident, fields);
            tuple_body(fields)
        }
        Shape::Unit => quote!(__p::unit(__value).map(|()| #ident)),
        Shape::Enum(variants) => {
            let arms = variants.iter().map(|v| {
                let lit = Literal::byte_string(v.wire.as_bytes());
                let vi = &v.ident;
                quote!(#lit => __p::Ok(Self::#vi),)
            });
            let names: Vec<String> = variants.iter().map(|v| format!("{:?}", v.wire)).collect();
            let expected = if names.is_empty() {
                "nothing (the enum has no variants)".to_owned()
            } else {
                format!("one of {}", names.join(", "))
            };
            quote! {
                let __value = __p::variant(__value)?;
                match __p::key(&__value) {
                    #(#arms)*
                    _ => __p::Err(::ringdis::Error::decode(#expected, &__value)),
                }
            }
        }
    };
    let generics = with_bounds(input, bounds);
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    hidden_impl(quote! {
            impl #impl_g ::ringdis::FromRedis for #ident #ty_g #where_c {
                fn from_redis(__value: ::ringdis::Value) -> ::ringdis::Result<Self> {
                    <Self as ::ringdis::FromRedis>::from_redis_field(__value)
                        .map_err(|e| e.in_field(#type_name))
                }
                #[inline]
                fn from_redis_field(__value: ::ringdis::Value) -> ::ringdis::Result<Self> {
                    #body
                }
                #extra
            }
    })
}

fn named_body(input: &Input, fields: &[Field]) -> TokenStream {
    let slot = |i: usize| format_ident!("__f{}", i);
    let mut slots = Vec::new();
    let mut arms = Vec::new();
    let mut build = Vec::new();
    let flattened: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].flatten).collect();
    for (i, f) in fields.iter().enumerate() {
        let (member, ty, name) = (&f.member, &f.ty, &f.name);
        if f.skip {
            let d = default_expr(f.default.as_ref());
            build.push(quote!(#member: #d));
        } else if f.flatten {
            let last = flattened.last() == Some(&i);
            let rest = if last {
                quote!(::core::mem::take(&mut __rest))
            } else {
                quote!(__rest.clone())
            };
            build.push(quote_spanned! {f.span=>
                #member: __p::field::<#ty>(::ringdis::Value::Map(#rest), #name)?
            });
        } else {
            let s = slot(i);
            let lit = Literal::byte_string(f.wire.as_bytes());
            let wire = &f.wire;
            slots.push(quote!(let mut #s: __p::Option<#ty> = __p::None;));
            arms.push(quote!(#lit => #s = __p::Some(__p::field::<#ty>(__v, #name)?),));
            let missing = match &f.default {
                Some(d) => default_expr(Some(d)),
                None => quote!(__p::missing::<#ty>(#name, #wire)?),
            };
            build.push(quote! {
                #member: match #s {
                    __p::Some(v) => v,
                    __p::None => #missing,
                }
            });
        }
    }
    let (rest_decl, unknown) = if !flattened.is_empty() {
        (
            quote!(let mut __rest: __p::Vec<(::ringdis::Value, ::ringdis::Value)> = __p::Vec::new();),
            quote!(_ => __rest.push((__k, __v)),),
        )
    } else if input.deny_unknown_fields {
        let names: Vec<String> = fields
            .iter()
            .filter(|f| !f.skip)
            .map(|f| format!("{:?}", f.wire))
            .collect();
        let expected = format!("one of the fields {}", names.join(", "));
        (
            quote!(),
            quote!(_ => return __p::Err(__p::unknown_field(&__k, #expected)),),
        )
    } else {
        (quote!(), quote!(_ => {}))
    };
    quote! {
        #(#slots)*
        #rest_decl
        for (__k, __v) in __p::pairs(__value)? {
            match __p::key(&__k) {
                #(#arms)*
                #unknown
            }
        }
        __p::Ok(Self { #(#build,)* })
    }
}

fn tuple_body(fields: &[Field]) -> TokenStream {
    let decoded: Vec<&Field> = fields.iter().filter(|f| !f.skip).collect();
    let max = decoded.len();
    // Trailing fields with `default` may be absent from a shorter array.
    let min = max
        - decoded
            .iter()
            .rev()
            .take_while(|f| f.default.is_some())
            .count();
    let expected = if min == max {
        format!("array of {max}")
    } else {
        format!("array of {min} to {max}")
    };
    let mut index = 0usize;
    let build = fields.iter().map(|f| {
        let ty = &f.ty;
        if f.skip {
            default_expr(f.default.as_ref())
        } else {
            let at = format!("[{index}]");
            index += 1;
            match &f.default {
                Some(d) => {
                    let d = default_expr(Some(d));
                    quote! {
                        match __it.next() {
                            __p::Some(v) => __p::field::<#ty>(v, #at)?,
                            __p::None => #d,
                        }
                    }
                }
                None => quote!(__p::element::<#ty>(&mut __it, #at)?),
            }
        }
    });
    quote! {
        let mut __it = __p::elements(__value, #min, #max, #expected)?;
        __p::Ok(Self(#(#build),*))
    }
}

/// For a tuple struct of 2 to 12 plain fields: a `Vec` of them decodes like a `Vec` of tuples,
/// so RESP2 flat arrays (`ZRANGE … WITHSCORES`) work as well as nested ones.
/// A tuple struct in a list decodes like the tuple of its fields (a flat RESP2 list is cut
/// into rows, a RESP3 map gives one row per pair), each row through the type's own
/// `from_redis`, so an error in row 2 reads `[2].Entry[1].temp`, as for one `Entry`.
fn tuple_items(_ident: &syn::Ident, fields: &[Field]) -> TokenStream {
    if !(2..=12).contains(&fields.len()) || fields.iter().any(|f| f.skip || f.default.is_some()) {
        return quote!();
    }
    let n = Literal::usize_unsuffixed(fields.len());
    quote! {
        const ROWS: usize = #n;
        fn from_redis_items(items: __p::Vec<::ringdis::Value>) -> ::ringdis::Result<__p::Vec<Self>> {
            __p::rows::<Self>(items, #n)
        }
        fn from_redis_pairs(
            pairs: __p::Vec<(::ringdis::Value, ::ringdis::Value)>,
        ) -> ::ringdis::Result<__p::Vec<Self>> {
            __p::pair_rows::<Self>(pairs)
        }
    }
}

fn to_redis(input: &Input) -> TokenStream {
    let ident = &input.ident;
    let owner = ident.to_string();
    let params = type_params(input);
    let mut bounds = Vec::new();
    let mut bound = |f: &Field| {
        if !f.skip && attr::mentions(&f.ty, &params) {
            let ty = &f.ty;
            bounds.push(if f.flatten {
                quote!(#ty: ::ringdis::ToArg)
            } else {
                quote!(#ty: __p::FieldArg)
            });
        }
    };
    let (write, count) = match &input.shape {
        Shape::Named(fields) => {
            fields.iter().for_each(&mut bound);
            let mut write = Vec::new();
            let mut count = Vec::new();
            for f in fields.iter().filter(|f| !f.skip) {
                let m = &f.member;
                if f.flatten {
                    write.push(quote!(::ringdis::ToArg::write_args(&self.#m, out);));
                    count.push(quote!(::ringdis::ToArg::arg_count(&self.#m)));
                } else {
                    let lit = Literal::byte_string(f.wire.as_bytes());
                    let owner = format!("{owner}.{}", f.name);
                    // Spanned at the field's type, so a type that cannot be written is
                    // reported there.
                    let sp = f.ty.span();
                    write.push(quote_spanned!(sp=> __p::write_named(&self.#m, #lit, #owner, out);));
                    count.push(quote_spanned!(sp=> __p::count_named(&self.#m)));
                }
            }
            (quote!(#(#write)*), quote!(0 #(+ #count)*))
        }
        Shape::Newtype(f) => {
            bound(f);
            let m = &f.member;
            (
                quote!(__p::FieldArg::write_field(&self.#m, out);),
                quote!(__p::FieldArg::field_arg_count(&self.#m)),
            )
        }
        Shape::Tuple(fields) => {
            fields.iter().for_each(&mut bound);
            let ms: Vec<&syn::Member> = fields
                .iter()
                .filter(|f| !f.skip)
                .map(|f| &f.member)
                .collect();
            (
                quote!(#(__p::FieldArg::write_field(&self.#ms, out);)*),
                quote!(0 #(+ __p::FieldArg::field_arg_count(&self.#ms))*),
            )
        }
        Shape::Unit => (quote!(), quote!(0)),
        Shape::Enum(variants) => {
            let arms = variants.iter().map(|v| {
                let lit = Literal::byte_string(v.wire.as_bytes());
                let vi = &v.ident;
                quote!(Self::#vi => out.push_bytes(#lit),)
            });
            let count = if variants.is_empty() {
                quote!(0)
            } else {
                quote!(1)
            };
            (quote!(match *self { #(#arms)* }), count)
        }
    };
    let generics = with_bounds(input, bounds);
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    // A struct with named fields is written as `field value` pairs: a whole HSET block.
    let pairs = matches!(input.shape, Shape::Named(_))
        .then(|| quote!(impl #impl_g ::ringdis::FieldValues for #ident #ty_g #where_c {}));
    hidden_impl(quote! {
            impl #impl_g ::ringdis::ToArg for #ident #ty_g #where_c {
                fn write_args(&self, out: &mut ::ringdis::Args) {
                    #write
                }
                fn arg_count(&self) -> usize {
                    #count
                }
            }
            #pairs
    })
}

/// Wraps a generated impl in an anonymous const, with the lints generated code must not trip
/// and `__p` naming ringdis's private support module.
fn hidden_impl(item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, unused_variables, private_bounds, clippy::all)]
        const _: () = {
            use ::ringdis::__private as __p;
            #[automatically_derived]
            #item
        };
    }
}
