//! Placeholder: the derives land with issue #5.
