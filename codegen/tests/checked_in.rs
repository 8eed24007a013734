//! The generated code ringdis includes is checked in under `client/src/generated/` (the published
//! crate needs neither this generator nor the spec): it must equal a fresh generation.

use std::path::Path;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn checked_in_generated_code_equals_a_fresh_generation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = ringdis_codegen::generated_files(
        &read(&root.join("commands.json")),
        &read(&root.join("replies.json")),
    )
    .expect("the spec generates");
    assert_eq!(files.len(), 2);
    for (name, fresh) in files {
        let path = root.join("client/src/generated").join(name);
        let checked_in = read(&path);
        // The first differing line, so the failure says what moved.
        let first_difference = fresh
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .map_or(fresh.lines().count().min(checked_in.lines().count()), |i| i);
        assert!(
            checked_in == fresh,
            "{} differs from a fresh generation (first at line {}): run scripts/generate \
             and commit the result",
            path.display(),
            first_difference + 1,
        );
    }
}
