//! Reading a stream's metadata, with one signature policy for every tool (docs/format.md, "Signatures").

mod decode;
mod policy;
mod reader;

pub use policy::{load_keyrings, SignatureMode, SignaturePolicy};
pub use reader::{Fetched, MetadataFile, MetadataLimits, MetadataReader};
