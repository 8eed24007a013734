//! The generator behind ringdis's typed command API. See README.md.

pub mod dump;
pub mod resp;
