//! Issue #13, "testable without a server": application code written once against the `Redis`
//! seam runs on the scripted mock (typed methods, a derived struct, pipelines, transactions,
//! scripted errors, a command out of script, an expectation never met), and the very same
//! functions run on a real `Client`, `Pool`, `Pooled` client and `Spread`, on both servers,
//! both protocols and every engine.

mod support;

use ringdis::mock::Mock;
use ringdis::{cmd, Client, Config, Pool, Protocol, Redis, Spread, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use support::{each_runtime, servers};

/// The application under test, as a user writes it: generic over `Redis`, with no test code.
mod app {
    use ringdis::{cmd, Commands, FromRedis, Redis, ToRedis};

    #[derive(Debug, Clone, PartialEq, FromRedis, ToRedis)]
    pub struct User {
        pub name: String,
        pub born: i64,
        pub visits: i64,
    }

    pub fn key(id: u64) -> String {
        format!("user:{id}")
    }

    /// Stores the user and lists it.
    pub async fn save(db: &impl Redis, id: u64, user: &User) -> ringdis::Result<()> {
        db.call::<i64>(cmd!("HSET", key(id), user)).await?;
        db.sadd(format!("users:{id}"), id).await?;
        Ok(())
    }

    /// The user, if stored.
    pub async fn load(db: &impl Redis, id: u64) -> ringdis::Result<Option<User>> {
        if db.exists(key(id)).await? == 0 {
            return Ok(None);
        }
        Ok(Some(db.hgetall(key(id)).decode().await?))
    }

    /// Counts a visit and keeps the user an hour longer, in one round trip: the new count.
    pub async fn visit(db: &impl Redis, id: u64) -> ringdis::Result<i64> {
        let (visits, _): (i64, i64) = db
            .pipeline()
            .hincrby(key(id), "visits", 1)
            .expire(key(id), 3600)
            .query()
            .await?;
        Ok(visits)
    }

    /// Renames the user and counts the change, atomically.
    pub async fn rename(db: &impl Redis, id: u64, name: &str) -> ringdis::Result<i64> {
        let (_, changes): (i64, i64) = db
            .transaction()
            .hset(key(id), "name", name)
            .incr(format!("renames:{id}"))
            .query()
            .await?;
        Ok(changes)
    }

    /// Everything above, checked: what every backend must do alike.
    pub async fn round_trip(db: &impl Redis, id: u64) -> ringdis::Result<()> {
        let ada = User {
            name: "ada".into(),
            born: 1815,
            visits: 0,
        };
        assert_eq!(load(db, id).await?, None);
        save(db, id, &ada).await?;
        assert_eq!(load(db, id).await?, Some(ada.clone()));
        assert_eq!(visit(db, id).await?, 1);
        assert_eq!(rename(db, id, "lovelace").await?, 1);
        let user = load(db, id).await?.expect("stored");
        assert_eq!((user.name.as_str(), user.visits), ("lovelace", 1));
        Ok(())
    }
}

use app::User;

/// What a server answers to [`app::round_trip`] for user `id`, scripted: the commands in the
/// order the app sends them.
fn script_round_trip(mock: &Mock, id: u64) {
    let key = app::key(id);
    let user = |name: &str, visits: i64| {
        Value::Map(vec![
            ("name".into(), name.into()),
            ("born".into(), "1815".into()),
            ("visits".into(), visits.to_string().into()),
        ])
    };
    mock.expect(cmd!("EXISTS", &key))
        .returns(0)
        .expect(cmd!("HSET", &key, "name", "ada", "born", 1815, "visits", 0))
        .returns(3)
        .expect(cmd!("SADD", format!("users:{id}"), id))
        .returns(1)
        .expect(cmd!("EXISTS", &key))
        .returns(1)
        .expect(cmd!("HGETALL", &key))
        .returns(user("ada", 0))
        .expect(cmd!("HINCRBY", &key, "visits", 1))
        .returns(1)
        .expect(cmd!("EXPIRE", &key, 3600))
        .returns(1)
        .expect(cmd!("HSET", &key, "name", "lovelace"))
        .returns(0)
        .expect(cmd!("INCR", format!("renames:{id}")))
        .returns(1)
        .expect(cmd!("EXISTS", &key))
        .returns(1)
        .expect(cmd!("HGETALL", &key))
        .returns(user("lovelace", 1));
}

/// The app runs on the mock in both protocols, under tokio and without a runtime, and sends
/// exactly the scripted commands (the transaction framed in MULTI … EXEC).
#[test]
fn the_app_runs_on_the_mock() {
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        for runtime in [support::Runtime::CurrentThread, support::Runtime::BlockOn] {
            let mock = Mock::new();
            script_round_trip(&mock, 1);
            let db = mock.client_with(Config::new().protocol(protocol)).unwrap();
            support::run_on(runtime, app::round_trip(&db, 1)).unwrap();
            mock.verify().unwrap();
            let names: Vec<String> = mock.received().iter().map(|c| c.name()).collect();
            assert_eq!(
                names,
                [
                    "EXISTS", "HSET", "SADD", "EXISTS", "HGETALL", "HINCRBY", "EXPIRE", "MULTI",
                    "HSET", "INCR", "EXEC", "EXISTS", "HGETALL"
                ],
                "{protocol:?} on {runtime:?}"
            );
        }
    }
}

/// A pool of mock clients is a `Redis` like any other.
#[test]
fn the_app_runs_on_a_mock_pool() {
    let mock = Mock::new();
    script_round_trip(&mock, 2);
    let pool = mock.pool(Pool::builder(Config::new()).max_size(2));
    futures::executor::block_on(app::round_trip(&pool, 2)).unwrap();
    mock.verify().unwrap();
}

/// A scripted error reaches the app as the server's would: the same kind and message, and
/// the commands before it kept.
#[test]
fn scripted_errors_reach_the_app() {
    let mock = Mock::new();
    mock.expect(cmd!("HINCRBY", "user:3", "visits", 1))
        .fails("ERR hash value is not an integer")
        .expect(cmd!("EXPIRE", "user:3", 3600))
        .returns(1)
        .expect(cmd!("EXISTS", "user:3"))
        .returns(1)
        .expect(cmd!("HGETALL", "user:3"))
        .returns(Value::Map(vec![("name".into(), "ada".into())]));
    let db = mock.client();
    futures::executor::block_on(async {
        let err = app::visit(&db, 3).await.unwrap_err();
        assert_eq!(err.server_kind(), Some("ERR"), "{err}");
        assert!(err.to_string().contains("not an integer"), "{err}");
        // A reply that does not fit the type fails as it would against a server.
        let err = app::load(&db, 3).await.unwrap_err();
        assert!(err.to_string().contains("User"), "{err}");
    });
    mock.verify().unwrap();
}

/// A command the script does not expect fails the app's call with a `MOCK` error naming
/// both commands, and `verify` reports it; the connection stays in step for the next call.
#[test]
fn an_unexpected_command_fails_and_is_reported() {
    let mock = Mock::new();
    mock.expect(cmd!("EXISTS", "user:4")).returns(0);
    let db = mock.client();
    futures::executor::block_on(async {
        let err = app::visit(&db, 4).await.unwrap_err();
        assert_eq!(err.server_kind(), Some("MOCK"), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("`HINCRBY user:4 visits 1`") && text.contains("`EXISTS user:4`"),
            "{text}"
        );
        assert_eq!(app::load(&db, 4).await.unwrap(), None);
    });
    let report = mock.verify().unwrap_err();
    assert!(matches!(report, ringdis::Error::Client { .. }), "{report}");
    let report = report.to_string();
    assert!(
        report.contains("unexpected command `HINCRBY user:4 visits 1`"),
        "{report}"
    );
    assert!(
        report.contains("unexpected command `EXPIRE user:4 3600`"),
        "{report}"
    );
}

/// An expected command the app never sent is reported by `verify` and
/// `assert_all_consumed`.
#[test]
fn an_unmet_expectation_is_reported() {
    let mock = Mock::new();
    mock.expect(cmd!("EXISTS", "user:5"))
        .returns(0)
        .expect(cmd!("DEL", "user:5"))
        .returns(1);
    let db = mock.client();
    let found = futures::executor::block_on(app::load(&db, 5)).unwrap();
    assert_eq!(found, None);
    let report = mock.verify().unwrap_err().to_string();
    assert!(
        report.contains("expected `DEL user:5`, which never came"),
        "{report}"
    );
    let panic = std::panic::catch_unwind(|| mock.assert_all_consumed()).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("DEL user:5"), "{message}");
}

/// The very functions the mock tests ran, on real servers through every `Redis`: a `Client`,
/// a `Pool`, a checked-out `Pooled` client and a `Spread`, on each server, protocol, engine
/// and runtime.
#[test]
fn the_same_app_runs_on_real_clients_and_pools() {
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    let servers = servers();
    each_runtime(&servers, |cell| async move {
        let id = || NEXT.fetch_add(1, Ordering::Relaxed);
        let client = Client::new(cell.config.clone()).unwrap();
        app::round_trip(&client, id())
            .await
            .unwrap_or_else(|e| panic!("{}: client: {e}", cell.at));
        let pool = Pool::new(cell.config.clone(), 2);
        app::round_trip(&pool, id())
            .await
            .unwrap_or_else(|e| panic!("{}: pool: {e}", cell.at));
        let pooled = pool.get().await.unwrap();
        app::round_trip(&pooled, id())
            .await
            .unwrap_or_else(|e| panic!("{}: pooled: {e}", cell.at));
        drop(pooled);
        let spread = Spread::new(cell.config.clone(), 2).unwrap();
        app::round_trip(&spread, id())
            .await
            .unwrap_or_else(|e| panic!("{}: spread: {e}", cell.at));
        // A refusal of the gate is the same through the seam.
        let refused = Redis::call::<()>(&pool, cmd!("SELECT", 1)).await;
        support::refused(refused, "Config::db", &cell.at);
    });
}

/// What `User` writes is what the script expects: the derive and the mock agree with the
/// server's view of the command.
#[test]
fn the_scripted_hset_is_what_the_app_sends() {
    let user = User {
        name: "ada".into(),
        born: 1815,
        visits: 0,
    };
    assert_eq!(
        cmd!("HSET", "user:1", &user).to_string(),
        "HSET user:1 name ada born 1815 visits 0"
    );
}
