use ringdis::FromRedis;

#[derive(FromRedis)]
struct Pair(#[redis(rename = "first")] String, i64);

#[derive(FromRedis)]
#[redis(deny_unknown_fields)]
struct Both {
    #[redis(flatten)]
    rest: std::collections::HashMap<String, String>,
}

#[derive(FromRedis)]
struct Meta {
    id: u64,
}

#[derive(FromRedis)]
struct Outer {
    #[redis(flatten, default)]
    meta: Meta,
}

#[derive(FromRedis)]
#[redis(rename_all = "camelCase")]
struct Tuple(u64, u64);

fn main() {}
