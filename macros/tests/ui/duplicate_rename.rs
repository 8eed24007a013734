use ringdis::FromRedis;

#[derive(FromRedis)]
struct Twice {
    #[redis(rename = "a", rename = "b")]
    name: String,
}

#[derive(FromRedis)]
struct Collide {
    #[redis(rename = "id")]
    name: String,
    id: u64,
}

#[derive(FromRedis)]
enum Same {
    #[redis(rename = "x")]
    A,
    #[redis(rename = "x")]
    B,
}

fn main() {}
