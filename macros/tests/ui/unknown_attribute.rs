use ringdis::{FromRedis, ToRedis};

#[derive(FromRedis)]
struct User {
    #[redis(renamed = "n")]
    name: String,
}

#[derive(ToRedis)]
#[redis(deny_unknown)]
struct Other {
    name: String,
}

fn main() {}
