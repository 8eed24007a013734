//! Placeholder: the server harness.
