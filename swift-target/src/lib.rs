//! # swift-target
//!
//! Publishes simplestreams metadata and mirrors to OpenStack Swift.
//! Not implemented yet: see the project's issue tracker.
#![deny(missing_docs)]
