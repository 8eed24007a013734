//! The generator behind ringdis's typed command API: `dump` reads a live server into
//! `commands.json`; [`generate`] turns it (with `replies.json`) into Rust. See README.md.

pub mod dump;
pub mod emit;
pub mod gate;
pub mod model;
pub mod plan;
pub mod resp;
pub mod servers;

/// Generates the typed API from the text of `commands.json` and `replies.json`.
pub fn generate(commands_json: &str, replies_json: &str) -> Result<String, String> {
    let spec = model::Spec::parse(commands_json).map_err(|e| format!("commands.json: {e}"))?;
    let replies: model::Replies =
        serde_json::from_str(replies_json).map_err(|e| format!("replies.json: {e}"))?;
    for (name, shape) in &replies {
        if model::reply_type(shape).is_none() {
            return Err(format!("replies.json: {name}: unknown shape {shape:?}"));
        }
    }
    Ok(emit::generate(&spec, &replies))
}

/// Generates the routing gate's lookup of the spec's flags (see [`gate`]) from the text of
/// `commands.json`.
pub fn generate_gate(commands_json: &str) -> Result<String, String> {
    let spec = model::Spec::parse(commands_json).map_err(|e| format!("commands.json: {e}"))?;
    gate::generate(&spec)
}
