//! The generator behind ringdis's typed command API: `dump` reads a live server into
//! `commands.json`; [`generate`] turns it (with `replies.json`) into Rust. See README.md.

pub mod cacheable;
pub mod dump;
pub mod emit;
pub mod gate;
pub mod model;
pub mod plan;
pub mod resp;
pub mod routing;
pub mod servers;

/// The reviewed corrections to the spec (`codegen/overrides.json`), built in.
pub const OVERRIDES: &str = include_str!("../overrides.json");

/// The generated files ringdis includes, checked in under `client/src/generated/` (so the
/// published crate needs neither this generator nor the spec): each file's name there and its
/// text, from the text of `commands.json` and `replies.json`. `scripts/generate` writes them;
/// `tests/checked_in.rs` fails when they differ from a fresh generation.
pub fn generated_files(
    commands_json: &str,
    replies_json: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    // Every command named as not cacheable is still in the spec and still admitted by the
    // rule otherwise (as `generate_gate` checks its own list).
    let spec = model::Spec::parse(commands_json).map_err(|e| format!("commands.json: {e}"))?;
    cacheable::check_listed(&spec)?;
    Ok(vec![
        ("commands.rs", generate(commands_json, replies_json)?),
        ("spec_flags.rs", generate_gate(commands_json)?),
    ])
}

/// Generates the typed API from the text of `commands.json` and `replies.json`, with the
/// built-in [`OVERRIDES`].
pub fn generate(commands_json: &str, replies_json: &str) -> Result<String, String> {
    generate_with(commands_json, replies_json, OVERRIDES)
}

/// [`generate`] with the text of another `overrides.json`.
pub fn generate_with(
    commands_json: &str,
    replies_json: &str,
    overrides_json: &str,
) -> Result<String, String> {
    let mut spec = model::Spec::parse(commands_json).map_err(|e| format!("commands.json: {e}"))?;
    let replies: model::Replies =
        serde_json::from_str(replies_json).map_err(|e| format!("replies.json: {e}"))?;
    let overrides =
        model::Overrides::parse(overrides_json).map_err(|e| format!("overrides.json: {e}"))?;
    spec.apply(&overrides)
        .map_err(|e| format!("overrides.json: {e}"))?;
    for (name, shape) in &replies {
        if model::reply_type(shape).is_none() {
            return Err(format!("replies.json: {name}: unknown shape {shape:?}"));
        }
    }
    emit::generate(&spec, &replies, &overrides)
}

/// Generates the routing gate's lookup of the spec's flags (see [`gate`]) from the text of
/// `commands.json`.
pub fn generate_gate(commands_json: &str) -> Result<String, String> {
    let spec = model::Spec::parse(commands_json).map_err(|e| format!("commands.json: {e}"))?;
    gate::check_listed(&spec)?;
    gate::generate(&spec)
}
