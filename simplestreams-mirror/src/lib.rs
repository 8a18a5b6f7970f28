//! # simplestreams-mirror
//!
//! The sync engine: sources, targets, and a crash-safe directory mirror.
#![deny(missing_docs)]
