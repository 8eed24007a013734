//! Misuse of the derives is a compile error pointing at the offending item; the expected
//! messages are checked in next to each case (`TRYBUILD=overwrite` regenerates them).

#[test]
fn misuse_is_a_compile_error_with_a_span() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
