//! Placeholder: the generator lands with issue #4.
