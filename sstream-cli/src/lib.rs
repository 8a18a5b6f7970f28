//! The command implementations behind the `sstream-*` binaries. The binaries are thin: each
//! parses nothing itself and calls one `run` here, so the commands can be tested in-process.
#![deny(missing_docs)]

pub mod catalog_cmd;
pub mod common;
pub mod convert_cmd;
pub mod docs_cmd;
pub mod images_cmd;
pub mod juju_cmd;
pub mod key_cmd;
pub mod location;
pub mod mirror_cmd;
pub mod mirror_glance_cmd;
pub mod publish_cmd;
pub mod pyfmt;
pub mod query_cmd;
pub mod sign_cmd;
pub mod source;
pub mod sstream_cmd;
pub mod store_cmd;
pub mod sync_cmd;
