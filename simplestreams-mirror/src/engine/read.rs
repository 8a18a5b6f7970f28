//! How the engine reads a metadata file: through the one [`MetadataReader`], conditionally
//! when it publishes the source's files verbatim and holds the copy its validators describe.

use crate::error::Result;
use crate::metadata::{Fetched, MetadataFile};
use crate::store::StoreExt;
use crate::target::State;

use super::{MetadataMode, Mirror};

/// A metadata file as the engine read it.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub file: MetadataFile,
    /// The source said "not modified": `file` is the copy already published.
    pub not_modified: bool,
}

impl Mirror {
    pub(super) async fn read(&self, state: &State, path: &str) -> Result<Read> {
        let publisher = match &self.publisher {
            Some(p) if self.options.metadata == MetadataMode::Verbatim => p,
            _ => {
                return Ok(Read {
                    file: self.reader.read(path).await?,
                    not_modified: false,
                })
            }
        };
        let known = |p: &str| state.validators.get(p).cloned();
        match self.reader.read_if_changed(path, known).await? {
            Fetched::File(file) => Ok(Read {
                file: *file,
                not_modified: false,
            }),
            Fetched::NotModified {
                path: read,
                validators,
            } => {
                match publisher.store().get_bytes(&read).await {
                    // The copy published is checked again, as if just fetched.
                    Ok(raw) => Ok(Read {
                        file: self.reader.open(&read, raw, validators)?,
                        not_modified: true,
                    }),
                    Err(e) if e.is_not_found() => {
                        tracing::info!(
                            "{read}: not modified, but no published copy; reading it again"
                        );
                        Ok(Read {
                            file: self.reader.read(path).await?,
                            not_modified: false,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}
