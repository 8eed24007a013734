//! `#[derive(FromRedis)]` and `#[derive(ToRedis)]` on hand-made replies (no server).

use ringdis::{cmd, Args, Error, FromRedis, ToArg, ToRedis, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::marker::PhantomData;

fn bulk(s: &str) -> Value {
    Value::Bulk(s.to_owned().into())
}

/// A RESP3 map and the RESP2 flat array of the same pairs.
fn both(pairs: &[(&str, &str)]) -> [Value; 2] {
    let map = Value::Map(pairs.iter().map(|(k, v)| (bulk(k), bulk(v))).collect());
    let flat = Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect());
    [map, flat]
}

fn args(v: &impl ToArg) -> Vec<String> {
    let mut a = Args::new();
    v.write_args(&mut a);
    assert_eq!(a.len(), v.arg_count(), "arg_count agrees with write_args");
    a.iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

#[derive(FromRedis, ToRedis, Debug, PartialEq, Clone)]
struct User {
    name: String,
    age: u32,
    email: Option<String>,
    #[redis(rename = "born")]
    birth_year: i64,
    #[redis(default)]
    visits: u64,
    #[redis(skip)]
    cached: Option<Vec<u8>>,
    admin: bool,
    r#type: Role,
}

#[derive(FromRedis, ToRedis, Debug, PartialEq, Clone, Copy)]
#[redis(rename_all = "lowercase")]
enum Role {
    Admin,
    Member,
    #[redis(rename = "read-only")]
    ReadOnly,
}

#[test]
fn named_struct_from_map_and_flat_array() {
    for v in both(&[
        ("age", "36"),
        ("name", "ada"),
        ("born", "1815"),
        ("unknown", "ignored"),
        ("admin", "1"),
        ("type", "read-only"),
    ]) {
        let u = User::from_redis(v).unwrap();
        assert_eq!(
            u,
            User {
                name: "ada".into(),
                age: 36,
                email: None,
                birth_year: 1815,
                visits: 0,
                cached: None,
                admin: true,
                r#type: Role::ReadOnly,
            }
        );
    }
    // RESP3 replies may carry typed values.
    let v = Value::Map(vec![
        (bulk("name"), Value::Simple("bob".into())),
        (bulk("age"), Value::Int(7)),
        (bulk("born"), Value::Double(2000.0)),
        (bulk("admin"), Value::Boolean(false)),
        (bulk("email"), Value::Nil),
        (bulk("visits"), Value::Int(3)),
        (bulk("type"), Value::Simple("admin".into())),
    ]);
    let u = User::from_redis(v).unwrap();
    assert_eq!(
        (u.age, u.visits, u.admin, u.r#type),
        (7, 3, false, Role::Admin)
    );
}

#[test]
fn errors_name_the_type_and_field() {
    let [map, _] = both(&[
        ("name", "ada"),
        ("age", "abc"),
        ("born", "1"),
        ("admin", "0"),
        ("type", "admin"),
    ]);
    let e = User::from_redis(map).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: User.age: expected integer (u32), got bulk string "abc""#
    );
    match e {
        Error::Decode { path, .. } => assert_eq!(path, "User.age"),
        e => panic!("{e}"),
    }

    let [map, _] = both(&[
        ("name", "ada"),
        ("age", "1"),
        ("admin", "0"),
        ("type", "admin"),
    ]);
    let e = User::from_redis(map).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: User.birth_year: expected field "born", got no such field"#
    );

    let [map, _] = both(&[
        ("name", "ada"),
        ("age", "1"),
        ("born", "1"),
        ("admin", "0"),
        ("type", "boss"),
    ]);
    let e = User::from_redis(map).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: User.type: expected one of "admin", "member", "read-only", got bulk string "boss""#
    );

    let e = User::from_redis(Value::Int(3)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "decode error: User: expected map (or array of [key, value] pairs, or flat array of keys and values), got integer 3"
    );
    let e = User::from_redis(Value::Array(vec![bulk("name")])).unwrap_err();
    assert!(e.to_string().contains("array of 1"), "{e}");

    // A nested error reply is a server error, not a decode error.
    let v = Value::Map(vec![(
        bulk("name"),
        Value::Error(ringdis::ServerError {
            kind: "WRONGTYPE".into(),
            message: "no".into(),
        }),
    )]);
    assert_eq!(
        User::from_redis(v).unwrap_err().server_kind(),
        Some("WRONGTYPE")
    );
}

#[derive(FromRedis, Debug, PartialEq)]
struct Address {
    city: String,
    zip: u32,
}

#[derive(FromRedis, Debug, PartialEq)]
struct Customer {
    id: u64,
    address: Address,
    previous: Option<Address>,
    tags: Vec<String>,
}

#[test]
fn nested_structs_have_nested_paths() {
    let addr = |zip: &str| {
        Value::Map(vec![
            (bulk("city"), bulk("Paris")),
            (bulk("zip"), bulk(zip)),
        ])
    };
    let v = Value::Map(vec![
        (bulk("id"), Value::Int(1)),
        (bulk("address"), addr("75001")),
        (bulk("tags"), Value::Set(vec![bulk("a"), bulk("b")])),
    ]);
    let c = Customer::from_redis(v).unwrap();
    assert_eq!(c.address.zip, 75001);
    assert_eq!(c.previous, None);
    assert_eq!(c.tags, ["a", "b"]);

    let v = Value::Map(vec![
        (bulk("id"), Value::Int(1)),
        (bulk("address"), addr("75001")),
        (bulk("previous"), addr("x")),
        (bulk("tags"), Value::Nil),
    ]);
    let e = Customer::from_redis(v).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Customer.previous.zip: expected integer (u32), got bulk string "x""#
    );
    // On its own, the inner type names itself.
    let e = Address::from_redis(addr("x")).unwrap_err();
    assert!(
        e.to_string().starts_with("decode error: Address.zip:"),
        "{e}"
    );
}

#[derive(FromRedis, Debug, PartialEq)]
#[redis(deny_unknown_fields, rename_all = "kebab-case")]
struct Strict {
    max_memory: u64,
    #[redis(default = "default_policy")]
    eviction_policy: String,
}

fn default_policy() -> String {
    "noeviction".into()
}

#[test]
fn deny_unknown_fields_and_default_paths() {
    let [map, flat] = both(&[("max-memory", "100")]);
    let s = Strict::from_redis(map).unwrap();
    assert_eq!(s.eviction_policy, "noeviction");
    assert_eq!(Strict::from_redis(flat).unwrap().max_memory, 100);
    let [map, _] = both(&[("max-memory", "100"), ("max_memory", "1")]);
    let e = Strict::from_redis(map).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Strict: expected one of the fields "max-memory", "eviction-policy", got unknown field "max_memory""#
    );
}

#[test]
fn rename_all_rules() {
    #[derive(FromRedis, ToRedis, Debug, PartialEq)]
    #[redis(rename_all = "camelCase")]
    struct Camel {
        used_memory_peak: u64,
    }
    #[derive(FromRedis, ToRedis, Debug, PartialEq)]
    #[redis(rename_all = "SCREAMING_SNAKE_CASE")]
    struct Screaming {
        used_memory: u64,
    }
    #[derive(FromRedis, ToRedis, Debug, PartialEq)]
    #[redis(rename_all = "PascalCase")]
    struct Pascal {
        used_memory: u64,
    }
    #[derive(FromRedis, ToRedis, Debug, PartialEq)]
    #[redis(rename_all = "snake_case")]
    enum State {
        WaitingForSync,
        Connected,
    }
    #[derive(FromRedis, ToRedis, Debug, PartialEq)]
    #[redis(rename_all = "SCREAMING-KEBAB-CASE")]
    enum Loud {
        WaitingForSync,
    }
    assert_eq!(
        args(&Camel {
            used_memory_peak: 1
        }),
        ["usedMemoryPeak", "1"]
    );
    assert_eq!(args(&Screaming { used_memory: 1 }), ["USED_MEMORY", "1"]);
    assert_eq!(args(&Pascal { used_memory: 1 }), ["UsedMemory", "1"]);
    assert_eq!(args(&State::WaitingForSync), ["waiting_for_sync"]);
    assert_eq!(args(&Loud::WaitingForSync), ["WAITING-FOR-SYNC"]);
    let [map, _] = both(&[("usedMemoryPeak", "5")]);
    assert_eq!(
        Camel::from_redis(map).unwrap(),
        Camel {
            used_memory_peak: 5
        }
    );
    assert_eq!(
        State::from_redis(Value::Simple("connected".into())).unwrap(),
        State::Connected
    );
    // Enums match the exact case when no rule is given.
    #[derive(FromRedis, Debug, PartialEq)]
    enum Exact {
        Up,
    }
    assert_eq!(Exact::from_redis(bulk("Up")).unwrap(), Exact::Up);
    let e = Exact::from_redis(bulk("up")).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Exact: expected one of "Up", got bulk string "up""#
    );
}

#[derive(FromRedis, ToRedis, Debug, PartialEq)]
struct Meta {
    created: i64,
    owner: String,
}

#[derive(FromRedis, ToRedis, Debug, PartialEq)]
struct Document {
    title: String,
    #[redis(flatten)]
    meta: Meta,
    #[redis(flatten)]
    extra: HashMap<String, String>,
}

#[test]
fn flatten_reads_and_writes_the_same_map() {
    for v in both(&[
        ("title", "t"),
        ("created", "17"),
        ("owner", "ada"),
        ("color", "red"),
    ]) {
        let d = Document::from_redis(v).unwrap();
        assert_eq!(d.title, "t");
        assert_eq!(
            d.meta,
            Meta {
                created: 17,
                owner: "ada".into()
            }
        );
        // Every field the outer type does not know reaches each flattened field.
        assert_eq!(d.extra.len(), 3);
        assert_eq!(d.extra["color"], "red");
    }
    let [map, _] = both(&[("title", "t"), ("owner", "ada")]);
    let e = Document::from_redis(map).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Document.meta.created: expected field "created", got no such field"#
    );
    let d = Document {
        title: "t".into(),
        meta: Meta {
            created: 1,
            owner: "o".into(),
        },
        extra: [("k".to_owned(), "v".to_owned())].into(),
    };
    assert_eq!(
        args(&d),
        ["title", "t", "created", "1", "owner", "o", "k", "v"]
    );
}

#[derive(FromRedis, ToRedis, Debug, PartialEq)]
struct Scored(String, f64);

#[derive(FromRedis, Debug, PartialEq)]
struct Entry(String, HashMap<String, String>);

#[derive(FromRedis, ToRedis, Debug, PartialEq, Eq, Hash, Clone, Copy)]
struct UserId(u64);

#[derive(FromRedis, Debug, PartialEq)]
struct WithTail(
    i64,
    #[redis(default)] Option<String>,
    #[redis(skip)] PhantomData<()>,
);

/// Named like the prelude's `Ok` on purpose: the generated code must not care.
#[derive(FromRedis, ToRedis, Debug, PartialEq)]
struct Ok;

#[test]
fn tuple_structs_newtypes_and_units() {
    let s = Scored::from_redis(Value::Array(vec![bulk("m"), Value::Double(1.5)])).unwrap();
    assert_eq!(s, Scored("m".into(), 1.5));
    // RESP2 `ZRANGE … WITHSCORES` is flat; RESP3 nests the pairs: both decode.
    let flat = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2.5")]);
    let nested = Value::Array(vec![
        Value::Array(vec![bulk("a"), Value::Double(1.0)]),
        Value::Array(vec![bulk("b"), Value::Double(2.5)]),
    ]);
    for v in [flat, nested] {
        let z: Vec<Scored> = FromRedis::from_redis(v).unwrap();
        assert_eq!(z, [Scored("a".into(), 1.0), Scored("b".into(), 2.5)]);
    }
    let e = Scored::from_redis(Value::Array(vec![bulk("m"), bulk("x")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Scored[1]: expected float (f64), got bulk string "x""#
    );
    let e = Scored::from_redis(Value::Array(vec![bulk("m")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "decode error: Scored: expected array of 2, got array of 1"
    );
    assert_eq!(args(&Scored("m".into(), 2.5)), ["m", "2.5"]);

    // An XRANGE entry: id and a flat field list.
    let entry = Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("f"), bulk("v")])]);
    let e = Entry::from_redis(entry).unwrap();
    assert_eq!((e.0.as_str(), e.1["f"].as_str()), ("1-0", "v"));

    assert_eq!(UserId::from_redis(bulk("42")).unwrap(), UserId(42));
    let ids: Vec<UserId> = FromRedis::from_redis(Value::Array(vec![Value::Int(1)])).unwrap();
    assert_eq!(ids, [UserId(1)]);
    let e = UserId::from_redis(bulk("x")).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: UserId: expected integer (u64), got bulk string "x""#
    );
    assert_eq!(args(&UserId(7)), ["7"]);

    let t = WithTail::from_redis(Value::Array(vec![Value::Int(1)])).unwrap();
    assert_eq!(t, WithTail(1, None, PhantomData));
    let t = WithTail::from_redis(Value::Array(vec![Value::Int(1), bulk("x")])).unwrap();
    assert_eq!(t.1.as_deref(), Some("x"));
    let e = WithTail::from_redis(Value::Array(vec![])).unwrap_err();
    assert!(e.to_string().contains("expected array of 1 to 2"), "{e}");

    assert_eq!(Ok::from_redis(Value::Simple("OK".into())).unwrap(), Ok);
    assert!(args(&Ok).is_empty());
}

#[derive(FromRedis, ToRedis, Debug, PartialEq)]
struct Page<T> {
    items: Vec<T>,
    next: Option<u64>,
}

#[derive(FromRedis, ToRedis, Debug, PartialEq)]
struct Profile<'a, M: Clone> {
    name: Cow<'a, str>,
    #[redis(skip)]
    marker: PhantomData<M>,
}

#[test]
fn generics_and_lifetimes() {
    let v = Value::Map(vec![(
        bulk("items"),
        Value::Array(vec![Value::Int(1), bulk("2")]),
    )]);
    let p = Page::<u8>::from_redis(v.clone());
    assert!(
        p.is_err(),
        "the bound is `Vec<u8>: FromRedis`: one string's bytes, not an array"
    );
    let p = Page::<u16>::from_redis(v).unwrap();
    assert_eq!(
        p,
        Page {
            items: vec![1, 2],
            next: None
        }
    );
    let v = Value::Map(vec![(
        bulk("items"),
        Value::Array(vec![Value::Int(1), bulk("x")]),
    )]);
    let e = Page::<i32>::from_redis(v).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Page.items[1]: expected integer (i32), got bulk string "x""#
    );

    // A struct that borrows when writing and owns when reading.
    struct NotClone;
    let _ = NotClone;
    let name = String::from("ada");
    let out = Profile::<u8> {
        name: Cow::Borrowed(&name),
        marker: PhantomData,
    };
    let c = cmd!("HSET", "profile:1", &out);
    assert_eq!(c.to_string(), "HSET profile:1 name ada");
    let back = Profile::<u8>::from_redis(Value::Array(vec![bulk("name"), bulk("ada")])).unwrap();
    assert_eq!(back, out);
}

#[test]
fn to_redis_writes_field_value_pairs() {
    let u = User {
        name: "ada".into(),
        age: 36,
        email: None,
        birth_year: 1815,
        visits: 2,
        cached: Some(vec![1]),
        admin: true,
        r#type: Role::Member,
    };
    assert_eq!(
        args(&u),
        [
            "name", "ada", "age", "36", "born", "1815", "visits", "2", "admin", "1", "type",
            "member"
        ]
    );
    let c = cmd!("HSET", "user:1", &u);
    assert_eq!(c.args().len(), 2 + 12);
    let c2 = ringdis::Cmd::new("HSET").arg("user:1").arg(&u);
    assert_eq!(c, c2);
    let with_email = User {
        email: Some("a@b".into()),
        ..u.clone()
    };
    assert!(args(&with_email).windows(2).any(|w| w == ["email", "a@b"]));

    // What one HSET wrote, one HGETALL reads back (as RESP2 would send it).
    let flat: Vec<Value> = args(&with_email).iter().map(|s| bulk(s)).collect();
    let back = User::from_redis(Value::Array(flat)).unwrap();
    assert_eq!(
        back,
        User {
            cached: None,
            ..with_email
        }
    );
}

#[derive(FromRedis, Debug, PartialEq)]
struct Twenty {
    f00: String,
    f01: i64,
    f02: Option<String>,
}

#[test]
fn option_fields_are_none_when_missing_or_nil() {
    let t = Twenty::from_redis(Value::Map(vec![
        (bulk("f00"), bulk("x")),
        (bulk("f01"), Value::Int(1)),
    ]))
    .unwrap();
    assert_eq!(t.f02, None);
    // Empty reply (HGETALL of a missing key): the first required field is reported.
    let e = Twenty::from_redis(Value::Array(vec![])).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"decode error: Twenty.f00: expected field "f00", got no such field"#
    );
}
