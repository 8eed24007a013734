//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the same checks the
//! `cargo fuzz` targets run (`ringdis::fuzzing`), on stable, as part of the normal test suite.
//! Seeds are real server replies (recorded by `cargo run -p ringdis-tests --example fuzz_seeds`),
//! URL forms, and any crash the fuzzer found, kept as a regression seed.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn meter(f: &mut dyn FnMut()) -> u64 {
    allocation_counter::measure(f).bytes_total
}

/// The check of each fuzz target, by target name.
fn check_of(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "resp_parse" => |data| ringdis::fuzzing::resp_parse(data, meter),
        "decode_value" => ringdis::fuzzing::decode_value,
        "config_url" => ringdis::fuzzing::config_url,
        _ => return None,
    })
}

/// Names the corpus file being replayed if its check panics.
struct Replaying<'a>(&'a Path);

impl Drop for Replaying<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("fuzz corpus file that failed: {}", self.0.display());
        }
    }
}

/// Runs every file of `target`'s corpus through its check; fails if there is none.
fn replay(target: &str) {
    let check = check_of(target).expect("a known target");
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()))
        .map(|e| e.expect("read the corpus folder").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} seeds",
        dir.display(),
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).expect("read a corpus file");
        let _guard = Replaying(path);
        check(&data);
    }
    println!("{target}: replayed {} corpus files", files.len());
}

#[test]
fn resp_parse_corpus() {
    replay("resp_parse");
}

#[test]
fn decode_value_corpus() {
    replay("decode_value");
}

#[test]
fn config_url_corpus() {
    replay("config_url");
}

/// Every fuzz target has a check here and a corpus, so none is left out of the replay.
#[test]
fn every_fuzz_target_is_replayed() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut targets: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("read fuzz_targets").path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    targets.sort();
    assert_eq!(targets, ["config_url", "decode_value", "resp_parse"]);
    for t in &targets {
        assert!(check_of(t).is_some(), "no replay check for fuzz target {t}");
        assert!(
            fuzz_dir().join("corpus").join(t).is_dir(),
            "no corpus for {t}"
        );
    }
}

/// The allocation budget cannot pass vacuously: a meter that counts nothing is refused.
#[test]
#[should_panic(expected = "the allocation meter counts nothing")]
fn the_parse_check_refuses_a_meter_that_counts_nothing() {
    ringdis::fuzzing::resp_parse(b"\x00+OK\r\n", |f| {
        f();
        0
    });
}

#[test]
#[should_panic(expected = "allocated")]
fn the_parse_check_catches_allocations_beyond_the_budget() {
    // A meter that reports a huge allocation for every parse stands for a parser that allocates
    // what a header announces: the budget check must fire.
    ringdis::fuzzing::resp_parse(b"\x00+OK\r\n", |f| {
        f();
        1 << 40
    });
}
