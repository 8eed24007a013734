use ringdis::FromRedis;

#[derive(FromRedis)]
#[redis(rename_all = "Title Case")]
struct Info {
    used_memory: u64,
}

fn main() {}
