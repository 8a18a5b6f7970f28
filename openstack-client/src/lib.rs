//! # openstack-client
//!
//! What every OpenStack client of this workspace shares, with no knowledge of simplestreams:
//!
//! - [`CloudConfig`]: where and as whom. [`CloudConfig::from_env`] reads the `OS_*` variables
//!   of an openrc file, or the `clouds.yaml` cloud named by `OS_CLOUD`; password,
//!   application-credential and token authentication; region and interface of the endpoints;
//!   a CA file (`OS_CACERT`) and an insecure switch (`OS_INSECURE`).
//! - [`Session`]: the token (obtained on first use, renewed 15 minutes before it expires and
//!   once on a 401), the [`Catalog`] (endpoint by service type, interface and region), and
//!   [`Session::send`], through which every service request goes: the token added, retries by
//!   the workspace's one retry layer (`http-retry`, see [`ClientOptions`]), and error answers
//!   mapped to [`Error`].
//! - [`Request`]: a service request (method, URL, headers, a body in memory or streamed).
//! - [`Error`]: one typed error; service answers map to `Unauthorized` (401), `Forbidden`
//!   (403), `NotFound` (404), `Conflict` (409), `TooLarge` (413) and `Server` (5xx), each with
//!   the method and URL of the request and the service's message; transport failures keep the
//!   underlying error as their source.
//!
//! `glance-target` and `swift-target` build their service clients on it.
//!
//! ```no_run
//! use openstack_client::{Request, Session};
//! use reqwest::Method;
//!
//! # async fn example() -> Result<(), openstack_client::Error> {
//! // OS_AUTH_URL, OS_USERNAME, ... as an openrc file sets them (or OS_CLOUD).
//! let session = Session::from_env()?;
//! let image = session.endpoint("image", None).await?;
//! let url = format!("{image}/v2/images?limit=1");
//! let resp = session.send(Request::new(Method::GET, &url)).await?;
//! let page: serde_json::Value = openstack_client::json(&Method::GET, &url, resp).await?;
//! println!("{}", page["images"]);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod auth;
mod catalog;
mod config;
mod error;
mod http;
mod identity;

pub use auth::{Session, Token};
pub use catalog::{Catalog, CatalogService, Endpoint};
pub use config::{AuthType, CloudConfig, Interface};
pub use error::{Error, Result};
pub use http::{encode_path, encode_segment, json, ClientOptions, Request};
pub use http_retry::RetryConfig;
pub use identity::{Registration, ServiceSpec};
