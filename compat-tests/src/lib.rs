//! Cross-backend compatibility tests live in `tests/`; this crate has no library code.

#![forbid(unsafe_code)]
