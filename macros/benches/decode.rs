//! Decoding a 20-field hash reply (RESP3 map and RESP2 flat array) into a derived struct, into
//! a hand-written `FromRedis` impl of the same struct, and into `HashMap<String, String>`.
//!
//! `cargo bench -p ringdis-macros --bench decode -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ringdis::{Error, FromRedis, Result, Value};
use std::collections::HashMap;
use std::hint::black_box;

macro_rules! twenty {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[allow(dead_code)]
        pub struct $name {
            id: u64,
            name: String,
            email: String,
            age: u32,
            city: String,
            country: String,
            created_at: i64,
            updated_at: i64,
            score: f64,
            visits: u64,
            plan: String,
            referrer: Option<String>,
            locale: String,
            timezone: String,
            balance: i64,
            last_ip: String,
            avatar: String,
            followers: u32,
            following: u32,
            bio: String,
        }
    };
}

twenty!(
    #[derive(FromRedis)]
    Derived
);
twenty!(Hand);

/// What one would write by hand: walk the pairs, match the name, decode the value.
impl FromRedis for Hand {
    fn from_redis(value: Value) -> Result<Self> {
        fn each(value: Value, mut f: impl FnMut(Value, Value) -> Result<()>) -> Result<()> {
            match value {
                Value::Map(pairs) => pairs.into_iter().try_for_each(|(k, v)| f(k, v)),
                Value::Array(items) if items.len() % 2 == 0 => {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        f(k, v)?;
                    }
                    Ok(())
                }
                v => Err(Error::decode("map", &v)),
            }
        }
        fn get<T: FromRedis>(v: Value, name: &str) -> Result<T> {
            T::from_redis(v).map_err(|e| e.in_field(format_args!("Hand.{name}")))
        }
        fn need<T>(slot: Option<T>, name: &str) -> Result<T> {
            slot.ok_or_else(|| Error::decode(format!("field {name}"), &Value::Nil))
        }
        let (mut id, mut name, mut email, mut age, mut city) = (None, None, None, None, None);
        let (mut country, mut created_at, mut updated_at, mut score, mut visits) =
            (None, None, None, None, None);
        let (mut plan, mut referrer, mut locale, mut timezone, mut balance) =
            (None, None, None, None, None);
        let (mut last_ip, mut avatar, mut followers, mut following, mut bio) =
            (None, None, None, None, None);
        each(value, |k, v| {
            match k.as_bytes().unwrap_or_default() {
                b"id" => id = Some(get(v, "id")?),
                b"name" => name = Some(get(v, "name")?),
                b"email" => email = Some(get(v, "email")?),
                b"age" => age = Some(get(v, "age")?),
                b"city" => city = Some(get(v, "city")?),
                b"country" => country = Some(get(v, "country")?),
                b"created_at" => created_at = Some(get(v, "created_at")?),
                b"updated_at" => updated_at = Some(get(v, "updated_at")?),
                b"score" => score = Some(get(v, "score")?),
                b"visits" => visits = Some(get(v, "visits")?),
                b"plan" => plan = Some(get(v, "plan")?),
                b"referrer" => referrer = Some(get(v, "referrer")?),
                b"locale" => locale = Some(get(v, "locale")?),
                b"timezone" => timezone = Some(get(v, "timezone")?),
                b"balance" => balance = Some(get(v, "balance")?),
                b"last_ip" => last_ip = Some(get(v, "last_ip")?),
                b"avatar" => avatar = Some(get(v, "avatar")?),
                b"followers" => followers = Some(get(v, "followers")?),
                b"following" => following = Some(get(v, "following")?),
                b"bio" => bio = Some(get(v, "bio")?),
                _ => {}
            }
            Ok(())
        })?;
        Ok(Hand {
            id: need(id, "id")?,
            name: need(name, "name")?,
            email: need(email, "email")?,
            age: need(age, "age")?,
            city: need(city, "city")?,
            country: need(country, "country")?,
            created_at: need(created_at, "created_at")?,
            updated_at: need(updated_at, "updated_at")?,
            score: need(score, "score")?,
            visits: need(visits, "visits")?,
            plan: need(plan, "plan")?,
            referrer,
            locale: need(locale, "locale")?,
            timezone: need(timezone, "timezone")?,
            balance: need(balance, "balance")?,
            last_ip: need(last_ip, "last_ip")?,
            avatar: need(avatar, "avatar")?,
            followers: need(followers, "followers")?,
            following: need(following, "following")?,
            bio: need(bio, "bio")?,
        })
    }
}

const FIELDS: [(&str, &str); 20] = [
    ("id", "1000042"),
    ("name", "Ada Lovelace"),
    ("email", "ada@example.com"),
    ("age", "36"),
    ("city", "London"),
    ("country", "GB"),
    ("created_at", "1700000000"),
    ("updated_at", "1700003600"),
    ("score", "98.25"),
    ("visits", "1234"),
    ("plan", "pro"),
    ("referrer", "babbage"),
    ("locale", "en-GB"),
    ("timezone", "Europe/London"),
    ("balance", "-1250"),
    ("last_ip", "192.0.2.17"),
    ("avatar", "https://example.com/a/1000042.png"),
    ("followers", "5000"),
    ("following", "12"),
    ("bio", "Wrote the first program for the Analytical Engine."),
];

fn bulk(s: &str) -> Value {
    Value::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

fn replies() -> [(&'static str, Value); 2] {
    let map = Value::Map(FIELDS.iter().map(|(k, v)| (bulk(k), bulk(v))).collect());
    let flat = Value::Array(
        FIELDS
            .iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect(),
    );
    [("resp3-map", map), ("resp2-flat", flat)]
}

fn decode(c: &mut Criterion) {
    for (shape, reply) in replies() {
        let mut g = c.benchmark_group(format!("hash20/{shape}"));
        g.bench_function("derive", |b| {
            b.iter_batched(
                || reply.clone(),
                |v| black_box(Derived::from_redis(v).unwrap()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function("hand-written", |b| {
            b.iter_batched(
                || reply.clone(),
                |v| black_box(Hand::from_redis(v).unwrap()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function("hashmap", |b| {
            b.iter_batched(
                || reply.clone(),
                |v| black_box(HashMap::<String, String>::from_redis(v).unwrap()),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, decode);
criterion_main!(benches);
