//! A struct written with one `HSET` and read back with one `HGETALL` into the same type, against
//! real servers (Redis and Valkey), over RESP2 and RESP3.

use futures::executor::block_on;
use ringdis::{cmd, Client, Config, FromRedis, Protocol, ToRedis};
use ringdis_tests::{Server, ServerKind};

#[derive(FromRedis, ToRedis, Debug, PartialEq, Clone, Copy)]
#[redis(rename_all = "lowercase")]
enum Plan {
    Free,
    Pro,
}

#[derive(FromRedis, ToRedis, Debug, PartialEq, Clone)]
struct Account {
    name: String,
    age: u32,
    balance: f64,
    active: bool,
    plan: Plan,
    nickname: Option<String>,
    #[redis(rename = "e-mail")]
    email: Option<String>,
    #[redis(default)]
    logins: u64,
    #[redis(skip)]
    session: Option<String>,
    blob: Vec<u8>,
}

#[test]
fn hset_then_hgetall_round_trips_over_resp2_and_resp3() {
    for kind in ServerKind::ALL {
        let server = Server::start(kind);
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let client =
                Client::new(Config::new().port(server.port()).protocol(protocol)).expect("client");
            let key = format!("account:{protocol:?}");
            let account = Account {
                name: "Ada Lovelace".into(),
                age: 36,
                balance: -12.5,
                active: true,
                plan: Plan::Pro,
                nickname: None,
                email: Some("ada@example.com".into()),
                logins: 0,
                session: Some("not stored".into()),
                blob: vec![0, 159, 146, 150, 255],
            };
            let written: i64 = block_on(client.call(cmd!("HSET", &key, &account))).expect("HSET");
            assert_eq!(
                written, 8,
                "{kind} {protocol:?}: None and skip fields are not written"
            );
            let back: Account = block_on(client.call(cmd!("HGETALL", &key))).expect("HGETALL");
            assert_eq!(
                back,
                Account {
                    session: None,
                    ..account.clone()
                },
                "{kind} {protocol:?}"
            );

            // A field the server holds as text that does not fit: the error names it.
            let _: i64 = block_on(client.call(cmd!("HSET", &key, "age", "old"))).expect("HSET");
            let err = block_on(client.call::<Account>(cmd!("HGETALL", &key))).unwrap_err();
            assert_eq!(
                err.to_string(),
                r#"decode error: Account.age: expected integer (u32), got bulk string "old""#,
                "{kind} {protocol:?}"
            );

            // A missing key is an empty reply: the first required field is reported missing.
            let err = block_on(client.call::<Account>(cmd!("HGETALL", "no-such-key"))).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(r#"decode error: Account.name: expected field "name""#),
                "{kind} {protocol:?}: {err}"
            );
        }
    }
}
