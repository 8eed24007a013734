use ringdis::FromRedis;

#[derive(FromRedis)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
