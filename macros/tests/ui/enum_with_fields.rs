use ringdis::FromRedis;

#[derive(FromRedis)]
enum Reply {
    Ok,
    Count(i64),
}

fn main() {}
