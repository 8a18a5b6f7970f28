//! The Swift object-store API: containers and objects of one account.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use openstack_client::{encode_path, encode_segment, json, Error, Request, Result, Session};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde::Deserialize;

/// Swift's own listing limit; also our default page size.
const MAX_PAGE: u32 = 10_000;

/// A client of one Swift account (the `object-store` endpoint of a project and region).
#[derive(Debug, Clone)]
pub struct SwiftClient {
    session: Session,
    account_url: String,
    page_size: u32,
}

/// A container in an account listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerInfo {
    /// Name.
    pub name: String,
    /// Number of objects (as last updated by the container updater).
    #[serde(default)]
    pub count: u64,
    /// Bytes used (as last updated).
    #[serde(default)]
    pub bytes: u64,
}

/// An object in a container listing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ObjectInfo {
    /// Name (may contain `/`).
    pub name: String,
    /// Size.
    pub bytes: u64,
    /// MD5 of the content (hex), Swift's ETag.
    pub hash: String,
    /// Content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Last modification (ISO 8601, UTC, no zone).
    #[serde(default)]
    pub last_modified: Option<String>,
}

/// What `HEAD` or `GET` tells about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size.
    pub size: Option<u64>,
    /// ETag: the content's MD5 (hex) for plain objects.
    pub etag: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// `Last-Modified` as sent.
    pub last_modified: Option<String>,
    /// User metadata (`X-Object-Meta-<key>`), keys in lower case.
    pub metadata: BTreeMap<String, String>,
    /// Whether it is a Static Large Object manifest (`X-Static-Large-Object`).
    pub is_slo: bool,
    /// For a range answer: the full size of the object (`Content-Range`).
    pub total_size: Option<u64>,
}

/// Options of a PUT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Content type (Swift guesses from the name otherwise).
    pub content_type: Option<String>,
    /// User metadata, sent as `X-Object-Meta-<key>`.
    pub metadata: BTreeMap<String, String>,
    /// The MD5 (hex) of the body, sent as `ETag`: Swift refuses a body that does not match
    /// (422), and the PUT is then sent again, as the bytes were damaged on the way.
    pub etag: Option<String>,
    /// Create only (`If-None-Match: *`): an existing object makes the PUT fail with 412.
    pub create_only: bool,
}

/// Options of a GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Start at this byte (`Range: bytes=N-`).
    pub offset: Option<u64>,
    /// Answer `None` (304 Not Modified) when the object still has this ETag.
    pub if_none_match: Option<String>,
}

/// One segment of a Static Large Object, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SloSegment {
    /// `/<container>/<object>` of the segment.
    pub path: String,
    /// Its MD5 (hex), checked by Swift against the stored segment.
    pub etag: String,
    /// Its size, checked too.
    pub size_bytes: u64,
}

/// An object being downloaded.
pub struct ObjectDownload {
    /// Its headers.
    pub meta: ObjectMeta,
    stream: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for ObjectDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectDownload")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl ObjectDownload {
    /// The content, chunk by chunk.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        self.stream
    }

    /// All the content in memory.
    pub async fn bytes(self) -> Result<Bytes> {
        let chunks: Vec<Bytes> = self.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }
}

impl SwiftClient {
    /// The client of the session's `object-store` endpoint (its region and interface).
    pub async fn new(session: &Session) -> Result<Self> {
        let url = session.endpoint("object-store", None).await?;
        Ok(Self::with_endpoint(session, &url))
    }

    /// The client of the `object-store` endpoint of `region`.
    pub async fn for_region(session: &Session, region: &str) -> Result<Self> {
        let url = session.endpoint("object-store", Some(region)).await?;
        Ok(Self::with_endpoint(session, &url))
    }

    /// The client of a given account URL (`https://host/v1/AUTH_<project>`).
    pub fn with_endpoint(session: &Session, account_url: &str) -> Self {
        SwiftClient {
            session: session.clone(),
            account_url: account_url.trim_end_matches('/').to_owned(),
            page_size: MAX_PAGE,
        }
    }

    /// Lists in pages of `n` entries (at most Swift's 10,000).
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, MAX_PAGE);
        self
    }

    /// The account URL.
    pub fn account_url(&self) -> &str {
        &self.account_url
    }

    fn container_url(&self, container: &str) -> String {
        format!("{}/{}", self.account_url, encode_segment(container))
    }

    fn object_url(&self, container: &str, name: &str) -> String {
        format!("{}/{}", self.container_url(container), encode_path(name))
    }

    /// Creates the container (nothing happens if it exists).
    pub async fn create_container(&self, container: &str) -> Result<()> {
        self.create_container_readable(container, None).await
    }

    /// Creates the container (or updates it when it exists) with a read ACL
    /// (`X-Container-Read`, e.g. `.r:*,.rlistings` for anyone, as the reference sets on its
    /// output).
    pub async fn create_container_readable(
        &self,
        container: &str,
        read_acl: Option<&str>,
    ) -> Result<()> {
        let url = self.container_url(container);
        let mut req = Request::new(Method::PUT, &url);
        if let Some(acl) = read_acl {
            let value = HeaderValue::from_str(acl).map_err(|_| Error::Response {
                method: "PUT".into(),
                url: url.clone(),
                message: format!("read ACL {acl:?} cannot be sent as an HTTP header"),
            })?;
            req = req.header(HeaderName::from_static("x-container-read"), value);
        }
        self.session.send(req).await?;
        Ok(())
    }

    /// Deletes an empty container (a container with objects gives [`Error::Conflict`]).
    pub async fn delete_container(&self, container: &str) -> Result<()> {
        let url = self.container_url(container);
        self.session.send(Request::new(Method::DELETE, url)).await?;
        Ok(())
    }

    /// The account's containers whose names start with `prefix`.
    pub async fn list_containers(&self, prefix: Option<&str>) -> Result<Vec<ContainerInfo>> {
        self.list(&self.account_url, prefix, |c: &ContainerInfo| {
            c.name.clone()
        })
        .await
    }

    /// The container's objects whose names start with `prefix`.
    pub async fn list_objects(
        &self,
        container: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ObjectInfo>> {
        self.list(&self.container_url(container), prefix, |o: &ObjectInfo| {
            o.name.clone()
        })
        .await
    }

    /// A listing, page by page: each page starts after the last name of the one before.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        prefix: Option<&str>,
        name: impl Fn(&T) -> String,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page_url = {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("format", "json")
                    .append_pair("limit", &self.page_size.to_string());
                if let Some(p) = prefix {
                    q.append_pair("prefix", p);
                }
                if let Some(m) = &marker {
                    q.append_pair("marker", m);
                }
                format!("{url}?{}", q.finish())
            };
            let resp = self
                .session
                .send(Request::new(Method::GET, &page_url))
                .await?;
            // An empty listing comes back as 204 without a body.
            let page: Vec<T> = if resp.status() == reqwest::StatusCode::NO_CONTENT {
                Vec::new()
            } else {
                json(&Method::GET, &page_url, resp).await?
            };
            let full = page.len() as u32 >= self.page_size;
            marker = page.last().map(&name);
            out.extend(page);
            if !full || marker.is_none() {
                return Ok(out);
            }
        }
    }

    /// Stores an object held in memory (retried when that is safe). Returns its ETag.
    pub async fn put_object(
        &self,
        container: &str,
        name: &str,
        body: Bytes,
        opts: &PutOptions,
    ) -> Result<Option<String>> {
        let url = self.object_url(container, name);
        let mut req = with_put_headers(
            Request::new(Method::PUT, &url).bytes("application/octet-stream", body),
            opts,
            &url,
        )?;
        if opts.etag.is_some() {
            req = req
                .retry_status(|s| s == 422 || openstack_client::RetryConfig::retryable_status(s));
        }
        let resp = self.session.send(req).await?;
        Ok(header(resp.headers(), "etag"))
    }

    /// Stores an object from a stream of chunks, without buffering it (sent once, not
    /// retried). With `size`, it is sent as the `Content-Length`, else the body is chunked.
    pub async fn put_object_stream<S, E>(
        &self,
        container: &str,
        name: &str,
        data: S,
        size: Option<u64>,
        opts: &PutOptions,
    ) -> Result<Option<String>>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let url = self.object_url(container, name);
        let mut req = Request::new(Method::PUT, &url)
            .stream("application/octet-stream", reqwest::Body::wrap_stream(data));
        if let Some(n) = size {
            req = req.header(CONTENT_LENGTH, HeaderValue::from(n));
        }
        let resp = self
            .session
            .send(with_put_headers(req, opts, &url)?)
            .await?;
        Ok(header(resp.headers(), "etag"))
    }

    /// Stores a Static Large Object: the manifest listing `segments`, which Swift checks
    /// (each must exist with the ETag and size given) before the object appears, at once and
    /// whole. Returns its ETag.
    pub async fn put_manifest(
        &self,
        container: &str,
        name: &str,
        segments: &[SloSegment],
    ) -> Result<Option<String>> {
        let url = format!(
            "{}?multipart-manifest=put",
            self.object_url(container, name)
        );
        let body = serde_json::to_vec(segments).map_err(|e| Error::Response {
            method: "PUT".into(),
            url: url.clone(),
            message: format!("cannot write the manifest: {e}"),
        })?;
        let resp = self
            .session
            .send(Request::new(Method::PUT, &url).bytes("application/json", body.into()))
            .await?;
        Ok(header(resp.headers(), "etag"))
    }

    /// Deletes a Static Large Object and its segments (`?multipart-manifest=delete`).
    pub async fn delete_large_object(&self, container: &str, name: &str) -> Result<()> {
        let url = format!(
            "{}?multipart-manifest=delete",
            self.object_url(container, name)
        );
        let resp = self
            .session
            .send(Request::new(Method::DELETE, &url))
            .await?;
        // Swift answers 200 whatever happened; the outcome is in the body (bulk-delete style).
        let text = resp.text().await.unwrap_or_default();
        let status = text
            .lines()
            .find_map(|l| l.strip_prefix("Response Status: "))
            .unwrap_or("200 OK");
        if status.starts_with("200") {
            return Ok(());
        }
        let code = status
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(500);
        Err(Error::Status {
            method: "DELETE".into(),
            url,
            status: code,
            message: text.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    /// Downloads the object from an offset, unless it still has the ETag given (`None`).
    pub async fn get_object_with(
        &self,
        container: &str,
        name: &str,
        opts: &GetOptions,
    ) -> Result<Option<ObjectDownload>> {
        let url = self.object_url(container, name);
        let mut req = Request::new(Method::GET, &url);
        if let Some(offset) = opts.offset.filter(|o| *o > 0) {
            req = req.header(
                reqwest::header::RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).map_err(|_| {
                    Error::Response {
                        method: "GET".into(),
                        url: url.clone(),
                        message: "bad range".into(),
                    }
                })?,
            );
        }
        if let Some(etag) = &opts.if_none_match {
            let quoted = format!("\"{}\"", etag.trim_matches('"'));
            req = req.header(
                reqwest::header::IF_NONE_MATCH,
                HeaderValue::from_str(&quoted).map_err(|_| Error::Response {
                    method: "GET".into(),
                    url: url.clone(),
                    message: format!("ETag {etag:?} cannot be sent as an HTTP header"),
                })?,
            );
        }
        let resp = self.session.send(req).await?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let meta = meta(resp.headers());
        let stream = resp
            .bytes_stream()
            .map_err(move |source| Error::Transport {
                method: "GET".into(),
                url: url.clone(),
                attempts: 1,
                source: source.without_url(),
            })
            .boxed();
        Ok(Some(ObjectDownload { meta, stream }))
    }

    /// The object's headers.
    pub async fn head_object(&self, container: &str, name: &str) -> Result<ObjectMeta> {
        let url = self.object_url(container, name);
        let resp = self.session.send(Request::new(Method::HEAD, url)).await?;
        Ok(meta(resp.headers()))
    }

    /// Downloads the object as a stream.
    pub async fn get_object(&self, container: &str, name: &str) -> Result<ObjectDownload> {
        let url = self.object_url(container, name);
        let resp = self.session.send(Request::new(Method::GET, &url)).await?;
        let meta = meta(resp.headers());
        let stream = resp
            .bytes_stream()
            .map_err(move |source| Error::Transport {
                method: "GET".into(),
                url: url.clone(),
                attempts: 1,
                source: source.without_url(),
            })
            .boxed();
        Ok(ObjectDownload { meta, stream })
    }

    /// Deletes the object.
    pub async fn delete_object(&self, container: &str, name: &str) -> Result<()> {
        let url = self.object_url(container, name);
        self.session.send(Request::new(Method::DELETE, url)).await?;
        Ok(())
    }
}

fn with_put_headers(mut req: Request, opts: &PutOptions, url: &str) -> Result<Request> {
    let bad = |what: &str| Error::Response {
        method: "PUT".into(),
        url: url.to_owned(),
        message: format!("{what} cannot be sent as an HTTP header"),
    };
    if let Some(etag) = &opts.etag {
        req = req.header(
            reqwest::header::ETAG,
            HeaderValue::from_str(etag).map_err(|_| bad("the ETag"))?,
        );
    }
    if opts.create_only {
        req = req.header(
            reqwest::header::IF_NONE_MATCH,
            HeaderValue::from_static("*"),
        );
    }
    if let Some(ct) = &opts.content_type {
        req = req.header(
            CONTENT_TYPE,
            HeaderValue::from_str(ct).map_err(|_| bad("the content type"))?,
        );
    }
    for (k, v) in &opts.metadata {
        let name = HeaderName::from_bytes(format!("x-object-meta-{k}").as_bytes())
            .map_err(|_| bad(&format!("metadata key {k:?}")))?;
        req = req.header(
            name,
            HeaderValue::from_str(v).map_err(|_| bad(&format!("metadata value of {k:?}")))?,
        );
    }
    Ok(req)
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim_matches('"').to_owned())
}

fn meta(h: &HeaderMap) -> ObjectMeta {
    let metadata = h
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("x-object-meta-")?;
            Some((key.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect();
    ObjectMeta {
        size: header(h, "content-length").and_then(|s| s.parse().ok()),
        etag: header(h, "etag"),
        content_type: header(h, "content-type"),
        last_modified: header(h, "last-modified"),
        metadata,
        is_slo: header(h, "x-static-large-object").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        total_size: header(h, "content-range")
            .and_then(|r| r.rsplit('/').next().and_then(|t| t.parse().ok())),
    }
}
