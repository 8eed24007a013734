//! The RESP2/RESP3 wire format: an incremental reply parser and the command encoder.
//!
//! The parser never looks at a socket: feed it bytes in any split and it hands back complete
//! replies. The encoder writes commands as arrays of bulk strings straight into a `BytesMut`.

mod encode;
mod parse;

pub(crate) use encode::write_bulk;
pub use encode::{write_command, write_command_header};
pub use parse::{Limits, Parser};
