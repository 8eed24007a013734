//! The cache's behaviour through [`Shared`]: hits, misses, lifetimes, invalidation, flushes,
//! reads in flight (poison, joins, drops), the budget, and a randomized model test.

use super::*;
use crate::{CmdFlags, Error};
use futures::FutureExt;

const SEC: Duration = Duration::from_secs(1);

fn get(k: &str) -> Cmd {
    Cmd::new("GET").key(k)
}

/// The bundle's replies for a read without optin: the reply and one PTTL per key.
fn replies(read: Value, pttls: &[i64]) -> Result<Value> {
    let mut all = vec![read];
    all.extend(pttls.iter().map(|&ms| Value::Int(ms)));
    Ok(Value::Array(all))
}

fn lead(plan: Plan) -> (Fill, Vec<Cmd>) {
    match plan {
        Plan::Lead { fill, bundle } => (fill, bundle),
        other => panic!("expected a lead, got {}", shown(&other)),
    }
}

fn join(plan: Plan) -> Waiter {
    match plan {
        Plan::Join(waiter, _) => waiter,
        other => panic!("expected a join, got {}", shown(&other)),
    }
}

fn hit(plan: Plan) -> Value {
    match plan {
        Plan::Hit(v) => v,
        other => panic!("expected a hit, got {}", shown(&other)),
    }
}

fn shown(plan: &Plan) -> String {
    match plan {
        Plan::Hit(v) => format!("hit {v:?}"),
        Plan::Join(..) => "join".into(),
        Plan::Lead { bundle, .. } => format!("lead {bundle:?}"),
        Plan::Uncacheable(cmd) => format!("uncacheable {cmd}"),
    }
}

/// Fills `cmd` (one key, no expiry) with `value` at `now`.
fn fill(cache: &Arc<Shared>, cmd: Cmd, value: Value, now: Instant) {
    let keys = cmd.key_indices().len();
    let (fill, _) = lead(cache.plan_at(0, cmd, None, now));
    assert_eq!(
        fill.finish(replies(value.clone(), &vec![-1; keys])),
        Ok(value)
    );
}

fn check(cache: &Shared) {
    let state = cache.lock();
    state.store.check();
    state.flights.check();
}

#[test]
fn a_filled_read_hits_until_its_lifetime_ends() {
    let cache = Shared::new(Cache::new().ttl(10 * SEC));
    let t0 = Instant::now();
    let (f, bundle) = lead(cache.plan_at(0, get("k"), None, t0));
    assert_eq!(
        bundle,
        [
            get("k"),
            Cmd::new("PTTL").key("k").with_flags(bundle[1].flags())
        ]
    );
    assert_eq!(
        f.finish(replies(Value::Bulk("v".into()), &[-1])),
        Ok(Value::Bulk("v".into()))
    );
    assert_eq!(
        hit(cache.plan_at(0, get("k"), None, t0 + 9 * SEC)),
        Value::Bulk("v".into())
    );
    // Another database, another entry.
    let (other_db, _) = lead(cache.plan_at(1, get("k"), None, t0));
    drop(other_db);
    // The lifetime counts from the plan, not the finish.
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0 + 10 * SEC));
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.expired, stats.entries),
        (1, 3, 1, 0)
    );
    assert_eq!(stats.bytes, 0);
    drop(f);
    check(&cache);
}

#[test]
fn a_key_that_expires_sooner_ends_the_entry_sooner() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let cmd = Cmd::new("MGET").key("a").key("b").key("c");
    let (f, bundle) = lead(cache.plan_at(0, cmd.clone(), None, t0));
    assert_eq!(bundle.len(), 4);
    f.finish(replies(Value::Nil, &[-1, 1500, -2]))
        .expect("stored");
    assert!(matches!(
        cache.plan_at(0, cmd.clone(), None, t0 + 1499 * Duration::from_millis(1)),
        Plan::Hit(_)
    ));
    drop(lead(cache.plan_at(
        0,
        cmd.clone(),
        None,
        t0 + Duration::from_millis(1500),
    )));
    // The call's own ttl, shorter than the key's.
    let (f, _) = lead(cache.plan_at(0, cmd.clone(), Some(SEC), t0));
    f.finish(replies(Value::Nil, &[-1, 5000, -1]))
        .expect("stored");
    assert!(matches!(
        cache.plan_at(0, cmd.clone(), None, t0 + Duration::from_millis(999)),
        Plan::Hit(_)
    ));
    drop(lead(cache.plan_at(0, cmd.clone(), None, t0 + SEC)));
    // A zero lifetime stores nothing.
    let (f, _) = lead(cache.plan_at(0, cmd.clone(), None, t0));
    f.finish(replies(Value::Nil, &[0, -1, -1]))
        .expect("answered");
    assert_eq!(cache.stats().entries, 0);
    check(&cache);
}

#[test]
fn invalidating_a_key_removes_every_command_reading_it() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let reads = [
        get("k"),
        Cmd::new("HGET").key("k").arg("f"),
        Cmd::new("MGET").key("k").key("j"),
        get("j"),
    ];
    for cmd in &reads {
        fill(&cache, cmd.clone(), Value::Int(1), t0);
    }
    assert_eq!(cache.stats().entries, 4);
    cache.invalidate([&b"k"[..], b"nothing"]);
    for cmd in &reads[..3] {
        drop(lead(cache.plan_at(0, cmd.clone(), None, t0)));
    }
    assert_eq!(hit(cache.plan_at(0, get("j"), None, t0)), Value::Int(1));
    let stats = cache.stats();
    assert_eq!((stats.invalidations, stats.entries), (2, 1));
    check(&cache);
}

#[test]
fn flush_removes_everything() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    fill(&cache, get("a"), Value::Int(1), t0);
    fill(
        &cache,
        Cmd::new("HGET").key("b").arg("f"),
        Value::Int(2),
        t0,
    );
    cache.flush();
    let stats = cache.stats();
    assert_eq!((stats.flushes, stats.entries, stats.bytes), (1, 0, 0));
    drop(lead(cache.plan_at(0, get("a"), None, t0)));
    check(&cache);
}

#[test]
fn an_invalidation_during_the_flight_poisons_it() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    cache.invalidate([&b"k"[..]]);
    assert_eq!(f.finish(replies(Value::Int(1), &[-1])), Ok(Value::Int(1)));
    assert_eq!(cache.stats().entries, 0);
    drop(lead(cache.plan_at(0, get("k"), None, t0)));

    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    cache.flush();
    f.finish(replies(Value::Int(1), &[-1])).expect("answered");
    assert_eq!(cache.stats().entries, 0);

    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    cache.invalidate([&b"other"[..]]);
    f.finish(replies(Value::Int(1), &[-1])).expect("answered");
    assert_eq!(hit(cache.plan_at(0, get("k"), None, t0)), Value::Int(1));
    check(&cache);
}

#[test]
fn concurrent_reads_share_one_flight() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let mut w = join(cache.plan_at(0, get("k"), None, t0));
    let dropped = join(cache.plan_at(0, get("k"), None, t0));
    drop(dropped);
    assert!((&mut w).now_or_never().is_none());
    assert_eq!(f.finish(replies(Value::Int(7), &[-1])), Ok(Value::Int(7)));
    assert_eq!(w.now_or_never(), Some(Some(Ok(Value::Int(7)))));
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.joined, stats.entries), (1, 2, 1));
    check(&cache);
}

#[test]
fn a_dropped_leader_lets_its_waiters_go() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let w = join(cache.plan_at(0, get("k"), None, t0));
    drop(f);
    assert_eq!(w.now_or_never(), Some(None));
    // Planned again: a new flight.
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    f.finish(replies(Value::Int(1), &[-1])).expect("answered");
    assert_eq!(cache.stats().entries, 1);
    check(&cache);
}

#[test]
fn a_read_after_an_invalidation_leads_a_new_flight() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let (old, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let before = join(cache.plan_at(0, get("k"), None, t0));
    cache.invalidate([&b"k"[..]]);
    let (new, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let after = join(cache.plan_at(0, get("k"), None, t0));
    check(&cache);
    // The old read comes back last: it is answered to its own waiter, not stored.
    assert_eq!(new.finish(replies(Value::Int(2), &[-1])), Ok(Value::Int(2)));
    assert_eq!(old.finish(replies(Value::Int(1), &[-1])), Ok(Value::Int(1)));
    assert_eq!(before.now_or_never(), Some(Some(Ok(Value::Int(1)))));
    assert_eq!(after.now_or_never(), Some(Some(Ok(Value::Int(2)))));
    assert_eq!(hit(cache.plan_at(0, get("k"), None, t0)), Value::Int(2));
    check(&cache);
}

#[test]
fn errors_are_answered_and_not_stored() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let wrongtype = crate::value::ServerError::from_line("WRONGTYPE no");
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let w = join(cache.plan_at(0, get("k"), None, t0));
    let got = f.finish(replies(Value::Error(wrongtype.clone()), &[-1]));
    assert_eq!(got, Err(Error::from(wrongtype.clone())));
    assert_eq!(w.now_or_never(), Some(Some(Err(Error::from(wrongtype)))));

    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let w = join(cache.plan_at(0, get("k"), None, t0));
    let lost = Error::connection("lost");
    assert_eq!(f.finish(Err(lost.clone())), Err(lost.clone()));
    assert_eq!(w.now_or_never(), Some(Some(Err(lost))));
    assert_eq!(cache.stats().entries, 0);
    check(&cache);
}

#[test]
fn a_malformed_bundle_reply_is_a_protocol_error() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    for bad in [
        Value::Int(1),
        Value::Array(vec![Value::Int(1)]),
        Value::Array(vec![Value::Int(1), Value::Simple("x".into())]),
        Value::Array(vec![Value::Int(1), Value::Int(-1), Value::Int(-1)]),
    ] {
        let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
        let w = join(cache.plan_at(0, get("k"), None, t0));
        let err = f.finish(Ok(bad)).expect_err("malformed");
        assert!(matches!(err, Error::Protocol { .. }), "{err}");
        assert_eq!(w.now_or_never(), Some(Some(Err(err))));
        assert_eq!(cache.stats().entries, 0);
    }
    check(&cache);
}

#[test]
fn optin_sends_caching_yes_first_and_stores_only_when_tracked() {
    let cache = Shared::new(Cache::new().optin());
    let t0 = Instant::now();
    let (f, bundle) = lead(cache.plan_at(0, get("k"), None, t0));
    let shown: Vec<String> = bundle.iter().map(Cmd::to_string).collect();
    assert_eq!(shown, ["CLIENT CACHING YES", "GET k", "PTTL k"]);
    let untracked = Value::Error(crate::value::ServerError::from_line("ERR no tracking"));
    let got = f.finish(Ok(Value::Array(vec![
        untracked,
        Value::Int(1),
        Value::Int(-1),
    ])));
    assert_eq!((got, cache.stats().entries), (Ok(Value::Int(1)), 0));
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    let ok = Value::Simple("OK".into());
    f.finish(Ok(Value::Array(vec![ok, Value::Int(1), Value::Int(-1)])))
        .expect("stored");
    assert_eq!(hit(cache.plan_at(0, get("k"), None, t0)), Value::Int(1));
}

#[test]
fn uncacheable_reads_are_sent_as_they_are() {
    let t0 = Instant::now();
    let bcast = Shared::new(Cache::new().bcast(["user:", "item:"]));
    drop(lead(bcast.plan_at(0, get("user:1"), None, t0)));
    for cmd in [
        get("other"),
        Cmd::new("MGET").key("user:1").key("other"),
        Cmd::new("PING"),
    ] {
        match bcast.plan_at(0, cmd.clone(), None, t0) {
            Plan::Uncacheable(back) => assert_eq!(back, cmd),
            other => panic!("{cmd}: {}", shown(&other)),
        }
    }
    assert_eq!(bcast.stats().uncacheable, 3);
    let everything = Shared::new(Cache::new().bcast(Vec::<&str>::new()));
    drop(lead(everything.plan_at(0, get("other"), None, t0)));
    // Not even encodable: sent (and refused) as usual.
    let mut broken = get("k");
    let mut args = crate::Args::new();
    args.set_invalid("no");
    broken.push_args(&args);
    assert!(matches!(
        everything.plan_at(0, broken, None, t0),
        Plan::Uncacheable(_)
    ));
}

/// The hit-only lookup a cached read tries first: a live entry is a hit (counted), anything
/// else is `None` with nothing counted but an expired entry's removal, and a later plan
/// counts the read once.
#[test]
fn the_hit_only_lookup_counts_hits_and_nothing_else() {
    let cache = Shared::new(Cache::new().ttl(10 * SEC));
    let t0 = Instant::now();
    fill(&cache, get("k"), Value::Bulk("v".into()), t0);
    assert_eq!(
        cache.hit_at(0, &get("k"), t0),
        Some(Value::Bulk("v".into()))
    );
    // Another database, another command, a command with no key marked: not there.
    assert_eq!(cache.hit_at(1, &get("k"), t0), None);
    assert_eq!(cache.hit_at(0, &get("j"), t0), None);
    assert_eq!(cache.hit_at(0, &Cmd::new("GET").arg("k"), t0), None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.uncacheable), (1, 1, 0));
    // Past its lifetime: removed and counted expired, not a miss; the plan that follows leads.
    assert_eq!(cache.hit_at(0, &get("k"), t0 + 10 * SEC), None);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.expired, stats.entries),
        (1, 1, 1, 0)
    );
    drop(lead(cache.plan_at(0, get("k"), None, t0 + 10 * SEC)));
    assert_eq!(cache.stats().misses, 2);
    // Invalidated, flushed: gone.
    fill(&cache, get("k"), Value::Int(1), t0);
    fill(&cache, get("j"), Value::Int(2), t0);
    cache.invalidate([&b"k"[..]]);
    assert_eq!(cache.hit_at(0, &get("k"), t0), None);
    assert_eq!(cache.hit_at(0, &get("j"), t0), Some(Value::Int(2)));
    cache.flush();
    assert_eq!(cache.hit_at(0, &get("j"), t0), None);
    // Outside the BCAST prefixes: never looked up, never counted.
    let bcast = Shared::new(Cache::new().bcast(["user:"]));
    assert_eq!(bcast.hit_at(0, &get("other"), t0), None);
    assert_eq!(bcast.stats(), CacheStats::default());
    check(&cache);
}

#[test]
fn tracking_commands() {
    let shown = |c: Cache| c.tracking_cmd().to_string();
    assert_eq!(shown(Cache::new()), "CLIENT TRACKING ON");
    assert_eq!(shown(Cache::new().optin()), "CLIENT TRACKING ON OPTIN");
    assert_eq!(
        shown(Cache::new().bcast(["a:", "b:"])),
        "CLIENT TRACKING ON BCAST PREFIX a: PREFIX b:"
    );
    assert_eq!(
        shown(Cache::new().bcast(["a:"]).optin()),
        "CLIENT TRACKING ON OPTIN"
    );
    assert_eq!(
        shown(Cache::new().optin().bcast(["a:"])),
        "CLIENT TRACKING ON BCAST PREFIX a:"
    );
}

#[test]
fn the_budget_evicts_least_recently_used_first() {
    let t0 = Instant::now();
    let one = {
        let cmd = get("k0");
        let key = ReadKey::new(0, cmd.args().encoded(), cmd.keys()).expect("key");
        store::entry_size(&key, &Value::Int(0))
    };
    let cache = Shared::new(Cache::new().max_bytes(3 * one));
    for i in 0..3 {
        fill(&cache, get(&format!("k{i}")), Value::Int(0), t0);
    }
    hit(cache.plan_at(0, get("k0"), None, t0));
    fill(&cache, get("k3"), Value::Int(0), t0);
    let stats = cache.stats();
    assert_eq!(
        (stats.evictions, stats.entries, stats.bytes),
        (1, 3, 3 * one as u64)
    );
    drop(lead(cache.plan_at(0, get("k1"), None, t0)));
    for k in ["k0", "k2", "k3"] {
        hit(cache.plan_at(0, get(k), None, t0));
    }
    // A reply bigger than the budget is answered, not stored, and evicts nothing.
    let big = Value::Bulk(vec![0u8; 3 * one].into());
    let (f, _) = lead(cache.plan_at(0, get("big"), None, t0));
    assert_eq!(f.finish(replies(big.clone(), &[-1])), Ok(big));
    assert_eq!((cache.stats().entries, cache.stats().evictions), (3, 1));
    check(&cache);
}

#[test]
fn waiters_that_give_up_leave_nothing_behind() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    let (f, _) = lead(cache.plan_at(0, get("k"), None, t0));
    for _ in 0..1000 {
        drop(join(cache.plan_at(0, get("k"), None, t0)));
    }
    let w = join(cache.plan_at(0, get("k"), None, t0));
    let slots = cache.lock().flights.waiting(f.id);
    assert!(slots <= 64, "{slots} slots held for 1 waiter");
    f.finish(replies(Value::Int(1), &[-1])).expect("answered");
    assert_eq!(w.now_or_never(), Some(Some(Ok(Value::Int(1)))));
    assert_eq!(cache.lock().flights.len(), 0);
}

#[test]
fn a_hit_allocates_nothing_but_the_reply_s_clone() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    fill(&cache, get("k"), Value::Bulk("value".into()), t0);
    fill(&cache, get("j"), Value::Int(1), t0);
    for (k, expected) in [("k", Value::Bulk("value".into())), ("j", Value::Int(1))] {
        let cmd = get(k);
        let mut got = None;
        // The command is dropped inside (a hit consumes it): frees are not counted.
        let allocs =
            allocation_counter::measure(|| got = Some(hit(cache.plan_at(0, cmd, None, t0))));
        assert_eq!(got, Some(expected));
        assert_eq!(allocs.count_total, 0, "{k}: {allocs:?}");
    }
    // The hit-only lookup borrows the command: not even its drop is in the count.
    for (k, expected) in [("k", Value::Bulk("value".into())), ("j", Value::Int(1))] {
        let cmd = get(k);
        let mut got = None;
        let allocs = allocation_counter::measure(|| got = cache.hit_at(0, &cmd, t0));
        assert_eq!(got, Some(expected));
        assert_eq!(
            (allocs.count_total, allocs.count_current),
            (0, 0),
            "{k}: {allocs:?}"
        );
    }
    // The counter counts: a miss copies the command.
    let cmd = get("x");
    let allocs = allocation_counter::measure(|| drop(lead(cache.plan_at(0, cmd, None, t0))));
    assert!(allocs.count_total > 0);
}

#[test]
fn shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Shared>();
    send::<Plan>();
    send::<Fill>();
    send::<Waiter>();
}

/// The hit path's cost, for a look with a profiler (`cargo test -p ringdis --lib
/// cache::tests::hit_path -- --ignored --nocapture`); the bench lane measures for real.
#[test]
#[ignore]
fn hit_path() {
    let cache = Shared::new(Cache::new());
    let t0 = Instant::now();
    fill(&cache, get("key:000001"), Value::Bulk("value".into()), t0);
    let n = 1_000_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(hit(cache.plan_at(0, get("key:000001"), None, t0)));
    }
    println!("{:?} per hit (command built included)", start.elapsed() / n);
}

mod model;

/// A command flagged `write` (or `blocking`) is never cached, whoever asks (`call_cached` is a
/// hidden but public trait method): cached, an `INCR` would run once and then answer every
/// later call with its first reply, without running.
#[test]
fn writes_and_blocking_commands_are_never_cached() {
    let cache = Shared::new(Cache::new());
    for flags in [
        CmdFlags {
            write: true,
            ..CmdFlags::default()
        },
        CmdFlags {
            blocking: true,
            readonly: true,
            ..CmdFlags::default()
        },
    ] {
        let incr = Cmd::new("INCR").key("n").with_flags(flags);
        assert!(
            matches!(cache.plan(0, incr, None), Plan::Uncacheable(_)),
            "{flags:?}"
        );
    }
    assert_eq!(cache.stats().uncacheable, 2);
}
