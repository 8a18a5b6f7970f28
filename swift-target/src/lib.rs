//! # swift-target
//!
//! Publishes simplestreams metadata and mirrors to OpenStack Swift. For now: a small typed
//! Swift client ([`SwiftClient`]) for containers and objects, on the Keystone session, HTTP
//! layer and error type of the `openstack-client` crate (re-exported here), so that one `OS_*`
//! environment or `clouds.yaml` serves Glance and Swift alike.
//!
//! ```no_run
//! use bytes::Bytes;
//! use swift_target::{PutOptions, Session, SwiftClient};
//!
//! # async fn example() -> Result<(), swift_target::Error> {
//! let session = Session::from_env()?;
//! let swift = SwiftClient::new(&session).await?;
//! swift.create_container("streams").await?;
//! swift
//!     .put_object("streams", "v1/index.json", Bytes::from_static(b"{}"), &PutOptions::default())
//!     .await?;
//! let names: Vec<String> =
//!     swift.list_objects("streams", Some("v1/")).await?.into_iter().map(|o| o.name).collect();
//! assert_eq!(names, ["v1/index.json"]);
//! let body = swift.get_object("streams", "v1/index.json").await?.bytes().await?;
//! assert_eq!(&body[..], b"{}");
//! swift.delete_object("streams", "v1/index.json").await?;
//! swift.delete_container("streams").await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod client;
mod store;
mod streamed_upload;

pub use client::{
    ContainerInfo, GetOptions, ObjectDownload, ObjectInfo, ObjectMeta, PutOptions, SloSegment,
    SwiftClient,
};
pub use openstack_client::{CloudConfig, Error, Result, Session};
pub use store::{
    parse_swift_url, SwiftStore, SwiftStoreOptions, DEFAULT_SEGMENT_SIZE, HELD_OBJECT_MAX,
    HELD_SEGMENT_MAX, MAX_AUTO_IN_FLIGHT, SEGMENT_MEMORY,
};
