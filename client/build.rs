//! Generates the typed command API (`OUT_DIR/commands.rs`) and the routing gate's table of the
//! spec's flags (`OUT_DIR/spec_flags.rs`) from the spec at the workspace root.
//! Runs again only when `commands.json` or `replies.json` change.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = root.join("commands.json");
    let replies = root.join("replies.json");
    println!("cargo:rerun-if-changed={}", spec.display());
    println!("cargo:rerun-if-changed={}", replies.display());
    println!("cargo:rerun-if-changed=build.rs");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    };
    let code = ringdis_codegen::generate(&read(&spec), &read(&replies))
        .unwrap_or_else(|e| panic!("generating the command API: {e}"));
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set"));
    std::fs::write(out.join("commands.rs"), code).expect("writing OUT_DIR/commands.rs");
    let gate = ringdis_codegen::generate_gate(&read(&spec))
        .unwrap_or_else(|e| panic!("generating the routing gate's table: {e}"));
    std::fs::write(out.join("spec_flags.rs"), gate).expect("writing OUT_DIR/spec_flags.rs");
}
