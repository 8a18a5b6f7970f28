//! # glance-target
//!
//! Keeps OpenStack Glance in sync with simplestreams image streams (Keystone v3 auth, Glance v2).
//! Not implemented yet: see the project's issue tracker.
#![deny(missing_docs)]
