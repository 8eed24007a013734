use ringdis::ToRedis;

#[derive(ToRedis)]
struct NotAnArg {
    when: std::time::Duration,
}

fn main() {}
