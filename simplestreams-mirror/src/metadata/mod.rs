//! Reading a stream's metadata, with one signature policy for every tool (SPEC §6).

mod decode;
mod policy;
mod reader;

pub use policy::{load_keyrings, SignatureMode, SignaturePolicy};
pub use reader::{Fetched, MetadataFile, MetadataLimits, MetadataReader};
