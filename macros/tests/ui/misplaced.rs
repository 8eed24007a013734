use ringdis::FromRedis;

#[derive(FromRedis)]
struct Pair(#[redis(rename = "first")] String, i64);

#[derive(FromRedis)]
#[redis(deny_unknown_fields)]
struct Both {
    #[redis(flatten)]
    rest: std::collections::HashMap<String, String>,
}

fn main() {}
