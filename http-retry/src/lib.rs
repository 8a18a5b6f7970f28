//! # http-retry
//!
//! The one HTTP layer every client of this workspace sends through: the simplestreams HTTP
//! source, the OpenStack clients (Keystone, Glance, Swift) and anything added later. It holds
//! what must not differ between them:
//!
//! - [`RetryConfig`]: how many retries, the exponential backoff with full jitter between them,
//!   and which statuses are worth another try (408, 429, 5xx);
//! - [`send`]: the retry loop itself. A request is sent again only when that is safe: it can be
//!   rebuilt ([`Replay::replayable`], a streamed body cannot) and either it is idempotent or the
//!   connection never reached the server. A refused TLS certificate is never retried.
//! - [`HttpOptions`]: the client settings (timeouts, user agent, extra CA certificates) and the
//!   one place a `reqwest::Client` is built, always without transparent decompression: image
//!   bytes must reach the checksum exactly as served.
//!
//! Callers map a final [`Failure`] to their own error type, keeping the `reqwest::Error` as the
//! `#[source]` of theirs so that a message shows the whole chain of causes.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use http_retry::{send, Failure, HttpOptions, Replay};
//!
//! let options = HttpOptions::default();
//! let client = options.client().expect("client");
//! // Nothing listens on port 9 of loopback: every attempt is refused, then the loop gives up.
//! let fast = http_retry::RetryConfig { max_retries: 2, ..Default::default() };
//! let outcome = send(&fast, Replay::IDEMPOTENT, |s| s.is_success(), |_| {
//!     client.get("http://127.0.0.1:9/")
//! })
//! .await;
//! match outcome {
//!     Err(Failure::Transport { attempts, .. }) => assert_eq!(attempts, 3),
//!     other => panic!("expected a transport failure, got {other:?}"),
//! }
//! # });
//! ```
#![deny(missing_docs)]

mod options;
mod policy;
mod send;

pub use options::HttpOptions;
pub use policy::RetryConfig;
pub use send::{is_tls_refusal, send, Failure, Replay};
