//! # glance-target
//!
//! A thin, typed OpenStack client for keeping Glance in sync with simplestreams image
//! streams: Keystone v3 authentication and the Glance v2 image API, over reqwest.
//!
//! - [`CloudConfig`]: where and as whom. [`CloudConfig::from_env`] reads the `OS_*` variables
//!   of an openrc file, or the `clouds.yaml` cloud named by `OS_CLOUD`; password,
//!   application-credential and token authentication; region and interface of the endpoints;
//!   a CA file (`OS_CACERT`) and an insecure switch (`OS_INSECURE`).
//! - [`Session`]: the token (obtained on first use, renewed 15 minutes before it expires and
//!   once on a 401), the [`Catalog`] (endpoint by service type, interface and region), and one
//!   HTTP layer with retries (see [`ClientOptions`]). Cheap to clone and share.
//! - [`GlanceClient`]: create an image ([`NewImage`]), upload its data from a stream of bytes
//!   (nothing is buffered or written to disk), update properties with JSON patch
//!   ([`PatchOp`]), list with filters across pages ([`ListQuery`]), get, download, delete, and
//!   the import flow (stage, then [`ImportMethod::GlanceDirect`]).
//! - [`Error`]: `openstack-client`'s typed error; service answers map to `Unauthorized` (401),
//!   `Forbidden` (403), `NotFound` (404), `Conflict` (409), `TooLarge` (413) and `Server` (5xx),
//!   each with the method and URL of the request and the service's message.
//!
//! Sessions, the catalog and the HTTP layer come from the `openstack-client` crate (re-exported
//! here for convenience); `swift-target` builds its Swift client on the same crate.
//!
//! ```no_run
//! use bytes::Bytes;
//! use futures::stream;
//! use glance_target::{GlanceClient, ListQuery, NewImage, PatchOp, Session};
//!
//! # async fn example() -> Result<(), glance_target::Error> {
//! // OS_AUTH_URL, OS_USERNAME, ... as an openrc file sets them (or OS_CLOUD).
//! let session = Session::from_env()?;
//! let glance = GlanceClient::new(&session).await?;
//!
//! let image = glance
//!     .create(&NewImage::new("ubuntu-24.04-amd64", "qcow2", "bare").with_property("os_version", "24.04"))
//!     .await?;
//! // Any `Stream<Item = Result<Bytes, E>>` works: an HTTP download, a file read in chunks...
//! let chunks = vec![Ok::<_, std::io::Error>(Bytes::from_static(b"disk image bytes"))];
//! glance.upload(&image.id, stream::iter(chunks), Some(16)).await?;
//!
//! glance.update(&image.id, &[PatchOp::set("latest", "true")]).await?;
//! let found = glance.list(&ListQuery::new().filter("os_version", "24.04")).await?;
//! assert!(found.iter().any(|i| i.id == image.id));
//! let data = glance.download(&image.id).await?.bytes().await?;
//! assert_eq!(&data[..], b"disk image bytes");
//! glance.delete(&image.id).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod glance;
pub mod image_ids;
mod latest;
mod modify_hook;
pub mod properties;
mod sync;
mod target;
mod upload;

pub use glance::{Download, GlanceClient, Image, ImportMethod, ListQuery, NewImage, PatchOp};
pub use latest::latest_changes;
pub use openstack_client::{
    AuthType, Catalog, CatalogService, ClientOptions, CloudConfig, Endpoint, Error, Interface,
    Result, Session, Token,
};
pub use sync::{
    content_id_for, GlanceSync, GlanceSyncOptions, ImageIdsOutput, RegionOutcome, PRODUCT_STREAMS,
};
pub use target::{default_state_dir, EventSink, GlanceEvent, GlanceTarget, GlanceTargetOptions};
