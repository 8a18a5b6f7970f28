//! The Glance v2 image API: create, upload (streamed), patch, list, get, download, delete, and
//! the import flow (stage + import).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, CONTENT_LENGTH};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use openstack_client::{encode_segment, json as read_json, Error, Request, Result, Session};

/// The content type Glance wants for PATCH.
const JSON_PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// A client of one Glance endpoint (one region).
#[derive(Debug, Clone)]
pub struct GlanceClient {
    session: Session,
    /// `<endpoint>/v2`.
    base: String,
}

/// An image as Glance describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Image {
    /// Image id.
    pub id: String,
    /// Name (Glance allows none).
    #[serde(default)]
    pub name: Option<String>,
    /// `queued`, `saving`, `uploading`, `importing`, `active`, `killed`, `deleted`,
    /// `deactivated`, `pending_delete`.
    pub status: String,
    /// `public`, `private`, `shared` or `community`.
    #[serde(default)]
    pub visibility: Option<String>,
    /// The owning project's id.
    #[serde(default)]
    pub owner: Option<String>,
    /// Size in bytes, once uploaded.
    #[serde(default)]
    pub size: Option<u64>,
    /// Virtual disk size, when Glance could tell.
    #[serde(default)]
    pub virtual_size: Option<u64>,
    /// MD5 of the data (hex), once uploaded.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Algorithm of `os_hash_value` (`sha512` by default).
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    /// Multihash of the data (hex), once uploaded.
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// `qcow2`, `raw`, ...
    #[serde(default)]
    pub disk_format: Option<String>,
    /// `bare`, `ovf`, ...
    #[serde(default)]
    pub container_format: Option<String>,
    /// Minimum disk in GB.
    #[serde(default)]
    pub min_disk: Option<u64>,
    /// Minimum RAM in MB.
    #[serde(default)]
    pub min_ram: Option<u64>,
    /// Protected from deletion.
    #[serde(default)]
    pub protected: bool,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Creation time (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update time (ISO 8601).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Every other attribute: the custom properties (strings), and Glance's own `self`,
    /// `file`, `schema`, `stores`, `os_hidden`, ...
    #[serde(flatten)]
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl Image {
    /// A custom property's value, if it is set and a string.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).and_then(|v| v.as_str())
    }
}

/// What to create: `POST /v2/images`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewImage {
    /// Choose the id (a UUID) instead of letting Glance pick one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// Disk format (`qcow2`, `raw`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_format: Option<String>,
    /// Container format (`bare`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_format: Option<String>,
    /// Visibility (`public` needs the admin role by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Minimum disk in GB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<u64>,
    /// Minimum RAM in MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ram: Option<u64>,
    /// Protected from deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// Tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Custom properties (Glance stores them as strings).
    #[serde(flatten)]
    pub properties: BTreeMap<String, String>,
}

impl NewImage {
    /// An image named `name` of the given disk and container formats.
    pub fn new(name: impl Into<String>, disk_format: &str, container_format: &str) -> Self {
        NewImage {
            name: name.into(),
            disk_format: Some(disk_format.to_owned()),
            container_format: Some(container_format.to_owned()),
            ..NewImage::default()
        }
    }

    /// Sets a custom property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Sets the visibility.
    pub fn with_visibility(mut self, visibility: impl Into<String>) -> Self {
        self.visibility = Some(visibility.into());
        self
    }
}

/// One operation of a JSON-patch property update. Paths are JSON pointers (`/name`,
/// `/os_version`); the constructors escape the property name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Adds the attribute, or replaces its value if it is set.
    Add {
        /// JSON pointer.
        path: String,
        /// New value.
        value: serde_json::Value,
    },
    /// Replaces the value of an attribute that is set (Glance answers 409 otherwise).
    Replace {
        /// JSON pointer.
        path: String,
        /// New value.
        value: serde_json::Value,
    },
    /// Removes an attribute that is set (Glance answers 409 otherwise).
    Remove {
        /// JSON pointer.
        path: String,
    },
}

impl PatchOp {
    /// Sets `name` to `value`, whether it is set or not.
    pub fn set(name: &str, value: impl Into<serde_json::Value>) -> Self {
        PatchOp::Add {
            path: pointer(name),
            value: value.into(),
        }
    }

    /// Replaces the value of `name`, which must be set.
    pub fn replace(name: &str, value: impl Into<serde_json::Value>) -> Self {
        PatchOp::Replace {
            path: pointer(name),
            value: value.into(),
        }
    }

    /// Removes `name`, which must be set.
    pub fn remove(name: &str) -> Self {
        PatchOp::Remove {
            path: pointer(name),
        }
    }
}

fn pointer(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

/// Which images to list: Glance's filters (`name`, `status`, `visibility`, `owner`, `tag`,
/// `member_status`, and any custom property, all as `key=value`), sorting and page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `(key, value)` filters; all must match.
    pub filters: Vec<(String, String)>,
    /// Images per request (Glance's default is 25, its maximum usually 1000).
    pub page_size: Option<u32>,
    /// Sort, as Glance's `sort` parameter (`created_at:desc,name:asc`).
    pub sort: Option<String>,
}

impl ListQuery {
    /// Every image the user may see.
    pub fn new() -> Self {
        ListQuery::default()
    }

    /// Adds a filter.
    pub fn filter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.filters.push((key.into(), value.into()));
        self
    }

    /// Sets the page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }

    /// Sets the sort order.
    pub fn sort(mut self, sort: impl Into<String>) -> Self {
        self.sort = Some(sort.into());
        self
    }
}

/// How an image's data is imported (`POST /v2/images/{id}/import`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportMethod {
    /// The data staged with [`GlanceClient::stage`].
    GlanceDirect,
    /// Glance downloads the data from this URI itself.
    WebDownload {
        /// The URI.
        uri: String,
    },
}

/// An image's data being downloaded.
pub struct Download {
    /// `Content-Length`, when sent.
    pub size: Option<u64>,
    /// The `Content-MD5` header (Glance sends the image checksum there).
    pub content_md5: Option<String>,
    stream: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .field("content_md5", &self.content_md5)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// The data, chunk by chunk.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        self.stream
    }

    /// All the data in memory (small images only).
    pub async fn bytes(self) -> Result<Bytes> {
        let chunks: Vec<Bytes> = self.stream.try_collect().await?;
        Ok(chunks.concat().into())
    }
}

#[derive(Deserialize)]
struct ImagePage {
    images: Vec<Image>,
    next: Option<String>,
}

impl GlanceClient {
    /// The client of the image endpoint of the session's region and interface.
    pub async fn new(session: &Session) -> Result<Self> {
        let endpoint = session.endpoint("image", None).await?;
        Ok(Self::with_endpoint(session, &endpoint))
    }

    /// The client of the image endpoint of `region`.
    pub async fn for_region(session: &Session, region: &str) -> Result<Self> {
        let endpoint = session.endpoint("image", Some(region)).await?;
        Ok(Self::with_endpoint(session, &endpoint))
    }

    /// The client of a given Glance URL (with or without `/v2`).
    pub fn with_endpoint(session: &Session, endpoint: &str) -> Self {
        let root = endpoint.trim_end_matches('/');
        let root = root.strip_suffix("/v2").unwrap_or(root);
        GlanceClient {
            session: session.clone(),
            base: format!("{root}/v2"),
        }
    }

    /// The API root this client talks to (ending in `/v2`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn image_url(&self, id: &str) -> String {
        format!("{}/images/{}", self.base, encode_segment(id))
    }

    /// Creates an image record (status `queued`, no data yet).
    pub async fn create(&self, image: &NewImage) -> Result<Image> {
        let url = format!("{}/images", self.base);
        let body = serde_json::to_value(image).unwrap_or_default();
        let resp = self
            .session
            .send(Request::new(Method::POST, &url).json(&body))
            .await?;
        read_json(&Method::POST, &url, resp).await
    }

    /// Uploads the image data from a stream of chunks, without buffering it: the bytes go to
    /// Glance as they come. With `size`, it is sent as the `Content-Length` (otherwise the
    /// body is chunked). A stream cannot be replayed, so the upload is not retried.
    pub async fn upload<S, E>(&self, id: &str, data: S, size: Option<u64>) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        self.put_data(
            format!("{}/file", self.image_url(id)),
            reqwest::Body::wrap_stream(data),
            size,
        )
        .await
    }

    /// Uploads image data held in memory; retried like any idempotent request.
    pub async fn upload_bytes(&self, id: &str, data: Bytes) -> Result<()> {
        let url = format!("{}/file", self.image_url(id));
        self.session
            .send(Request::new(Method::PUT, &url).bytes("application/octet-stream", data))
            .await?;
        Ok(())
    }

    /// Stages image data for the import flow (`PUT /v2/images/{id}/stage`), streamed like
    /// [`GlanceClient::upload`]. Then call [`GlanceClient::import`] with
    /// [`ImportMethod::GlanceDirect`].
    pub async fn stage<S, E>(&self, id: &str, data: S, size: Option<u64>) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        self.put_data(
            format!("{}/stage", self.image_url(id)),
            reqwest::Body::wrap_stream(data),
            size,
        )
        .await
    }

    async fn put_data(&self, url: String, body: reqwest::Body, size: Option<u64>) -> Result<()> {
        let mut req = Request::new(Method::PUT, url).stream("application/octet-stream", body);
        if let Some(n) = size {
            req = req.header(CONTENT_LENGTH, HeaderValue::from(n));
        }
        self.session.send(req).await?;
        Ok(())
    }

    /// Starts the import of the image's data (`POST /v2/images/{id}/import`). Glance imports
    /// in the background: wait for `active` with [`GlanceClient::wait_for_status`].
    pub async fn import(&self, id: &str, method: &ImportMethod) -> Result<()> {
        let url = format!("{}/import", self.image_url(id));
        let method = match method {
            ImportMethod::GlanceDirect => json!({ "name": "glance-direct" }),
            ImportMethod::WebDownload { uri } => json!({ "name": "web-download", "uri": uri }),
        };
        self.session
            .send(Request::new(Method::POST, &url).json(&json!({ "method": method })))
            .await?;
        Ok(())
    }

    /// The import methods this Glance offers (`GET /v2/info/import`).
    pub async fn import_methods(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Info {
            #[serde(rename = "import-methods")]
            methods: Value,
        }
        #[derive(Deserialize)]
        struct Value {
            value: Vec<String>,
        }
        let url = format!("{}/info/import", self.base);
        let resp = self.session.send(Request::new(Method::GET, &url)).await?;
        let info: Info = read_json(&Method::GET, &url, resp).await?;
        Ok(info.methods.value)
    }

    /// One image.
    pub async fn get(&self, id: &str) -> Result<Image> {
        let url = self.image_url(id);
        let resp = self.session.send(Request::new(Method::GET, &url)).await?;
        read_json(&Method::GET, &url, resp).await
    }

    /// Applies JSON-patch operations to the image's attributes; returns the updated image.
    pub async fn update(&self, id: &str, ops: &[PatchOp]) -> Result<Image> {
        let url = self.image_url(id);
        let body = Bytes::from(serde_json::to_vec(ops).unwrap_or_default());
        // A patch of "add"/"replace"/"remove" ops gives the same result when applied again
        // only if the first try did not get through; it is not retried.
        let req = Request::new(Method::PATCH, &url).bytes(JSON_PATCH, body);
        let resp = self.session.send(req).await?;
        read_json(&Method::PATCH, &url, resp).await
    }

    /// Deletes the image.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.session
            .send(Request::new(Method::DELETE, self.image_url(id)))
            .await?;
        Ok(())
    }

    /// Downloads the image's data as a stream.
    pub async fn download(&self, id: &str) -> Result<Download> {
        let url = format!("{}/file", self.image_url(id));
        let resp = self.session.send(Request::new(Method::GET, &url)).await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Err(Error::Response {
                method: "GET".into(),
                url,
                message: "the image has no data (204)".into(),
            });
        }
        let content_md5 = resp
            .headers()
            .get("content-md5")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let size = resp.content_length();
        let stream = resp
            .bytes_stream()
            .map_err(move |source| Error::Transport {
                method: "GET".into(),
                url: url.clone(),
                attempts: 1,
                source: source.without_url(),
            })
            .boxed();
        Ok(Download {
            size,
            content_md5,
            stream,
        })
    }

    /// Every image matching `query`, following Glance's pagination.
    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        let mut next = Some(self.first_page_url(query));
        while let Some(url) = next.take() {
            let resp = self.session.send(Request::new(Method::GET, &url)).await?;
            let page: ImagePage = read_json(&Method::GET, &url, resp).await?;
            let done = page.images.is_empty();
            out.extend(page.images);
            // Glance's `next` is a path of its own; keep our endpoint (it may sit behind a
            // path prefix) and take only the query, which carries the marker.
            if let (Some(link), false) = (page.next, done) {
                let query = link.split_once('?').map(|(_, q)| q).unwrap_or_default();
                next = Some(format!("{}/images?{query}", self.base));
            }
        }
        Ok(out)
    }

    fn first_page_url(&self, query: &ListQuery) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.filters {
            pairs.append_pair(k, v);
        }
        if let Some(n) = query.page_size {
            pairs.append_pair("limit", &n.to_string());
        }
        if let Some(s) = &query.sort {
            pairs.append_pair("sort", s);
        }
        let q = pairs.finish();
        if q.is_empty() {
            format!("{}/images", self.base)
        } else {
            format!("{}/images?{q}", self.base)
        }
    }

    /// Polls the image every `interval` until its status is one of `wanted`. Fails when it
    /// becomes `killed` or `deleted` (unless wanted), or after `timeout`.
    pub async fn wait_for_status(
        &self,
        id: &str,
        wanted: &[&str],
        interval: Duration,
        timeout: Duration,
    ) -> Result<Image> {
        let start = tokio::time::Instant::now();
        loop {
            let image = self.get(id).await?;
            if wanted.contains(&image.status.as_str()) {
                return Ok(image);
            }
            let failed = matches!(image.status.as_str(), "killed" | "deleted");
            if failed || start.elapsed() >= timeout {
                return Err(Error::Response {
                    method: "GET".into(),
                    url: self.image_url(id),
                    message: format!(
                        "image status is {:?}{}, waiting for {wanted:?}",
                        image.status,
                        if failed {
                            ""
                        } else {
                            " after the time allowed"
                        }
                    ),
                });
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_ops_serialise_as_json_patch_with_escaped_pointers() {
        let ops = [
            PatchOp::set("os_version", "24.04"),
            PatchOp::replace("a/b~c", "x"),
            PatchOp::remove("latest"),
        ];
        assert_eq!(
            serde_json::to_value(ops).ok(),
            Some(json!([
                {"op": "add", "path": "/os_version", "value": "24.04"},
                {"op": "replace", "path": "/a~1b~0c", "value": "x"},
                {"op": "remove", "path": "/latest"}
            ]))
        );
    }

    #[test]
    fn new_image_puts_properties_at_top_level() {
        let img = NewImage::new("n", "qcow2", "bare")
            .with_property("content_id", "c")
            .with_visibility("public");
        assert_eq!(
            serde_json::to_value(&img).ok(),
            Some(
                json!({"name": "n", "disk_format": "qcow2", "container_format": "bare", "visibility": "public", "content_id": "c"})
            )
        );
    }

    #[test]
    fn endpoint_gets_v2_once() {
        let session = Session::new(openstack_client::CloudConfig::token("http://k:5000", "t"))
            .expect("session");
        for e in [
            "http://g:9292",
            "http://g:9292/",
            "http://g:9292/v2",
            "http://g:9292/v2/",
        ] {
            assert_eq!(
                GlanceClient::with_endpoint(&session, e).base_url(),
                "http://g:9292/v2"
            );
        }
    }

    #[tokio::test]
    async fn list_follows_next_links_on_our_own_endpoint() {
        use simplestreams_testutil::http_server::{Reply, TestServer};
        let m = TestServer::builder().start();
        let page = |ids: &[&str], next: Option<&str>| {
            let images: Vec<_> = ids
                .iter()
                .map(|id| json!({"id": id, "status": "active"}))
                .collect();
            let mut body = json!({"images": images, "first": "/v2/images"});
            if let Some(n) = next {
                body["next"] = json!(n);
            }
            Reply::new(200, body.to_string())
        };
        m.route(
            "GET /prefix/v2/images",
            vec![
                page(
                    &["a", "b"],
                    Some("/v2/images?marker=b&limit=2&os_version=24.04"),
                ),
                page(&["c"], None),
            ],
        );
        let session = Session::new(openstack_client::CloudConfig::token("http://k:5000", "t"))
            .expect("session");
        let g = GlanceClient::with_endpoint(&session, &m.url_for("prefix"));
        let all = g
            .list(&ListQuery::new().filter("os_version", "24.04").page_size(2))
            .await
            .expect("list");
        let ids: Vec<_> = all.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let paths: Vec<_> = m.requests().into_iter().map(|s| s.target).collect();
        assert_eq!(
            paths,
            [
                "/prefix/v2/images?os_version=24.04&limit=2",
                "/prefix/v2/images?marker=b&limit=2&os_version=24.04"
            ]
        );
    }

    #[test]
    fn list_url_carries_filters_page_size_and_sort() {
        let session = Session::new(openstack_client::CloudConfig::token("http://k:5000", "t"))
            .expect("session");
        let g = GlanceClient::with_endpoint(&session, "http://g/image");
        let q = ListQuery::new()
            .filter("os_version", "24.04")
            .filter("name", "a b&c")
            .page_size(2)
            .sort("name:asc");
        assert_eq!(
            g.first_page_url(&q),
            "http://g/image/v2/images?os_version=24.04&name=a+b%26c&limit=2&sort=name%3Aasc"
        );
        assert_eq!(
            g.first_page_url(&ListQuery::new()),
            "http://g/image/v2/images"
        );
    }
}
