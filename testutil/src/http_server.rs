//! A real HTTP/1.1 server on 127.0.0.1 for tests, with scriptable faults, scripted routes and a
//! request log.
//!
//! It serves a directory and/or in-memory files with GET and HEAD, single byte ranges
//! (`Range: bytes=N-`, `N-M`, `-S`, answered `206` with `Content-Range`), `ETag` +
//! `If-None-Match` and `Last-Modified` + `If-Modified-Since` (`304`), and `If-Range`.
//! [`Fault`]s make it misbehave on chosen paths: cut the body, ignore ranges, throttle, fail the
//! first N times, lie about `Content-Length`, or answer 404. Every request is logged
//! ([`RequestRecord`]) for tests to assert on, with its body.
//!
//! For tests of API clients it also answers scripted routes: a queue of [`Reply`]s per method
//! and path (`"POST /v3/auth/tokens"`), answered in order to requests of any method whose path
//! (the query left aside) matches. A route ending in `*` (`"PUT /v1/AUTH_t/c_segments/*"`)
//! answers every path under that prefix not scripted exactly (the longest prefix wins), for
//! paths a client makes up as it goes (random upload ids). A scripted route wins over a file at
//! the same path; once its replies are used up it answers `599` with
//! `nothing scripted for METHOD /path`, so a test that fell short of script fails loudly.
//! [`Reply::hang_up`] answers nothing: the connection is closed once the request is read.
//! Faults apply to routes as to files (a status fault answers in place of the next reply, which
//! stays queued). Request bodies, with a `Content-Length` or chunked, are read and logged.
//!
//! The server runs on its own thread with its own Tokio runtime, so it works the same from a
//! plain `#[test]` and from `#[tokio::test]`; dropping the [`TestServer`] stops it.
//!
//! ```
//! use simplestreams_testutil::http_server::{Fault, TestServer};
//! use std::io::{Read, Write};
//!
//! let server = TestServer::builder()
//!     .file("/streams/v1/index.json", r#"{"format": "index:1.0"}"#)
//!     .fault("/broken", Fault::FailFirst { times: 1, status: 503 })
//!     .start();
//! let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
//! conn.write_all(b"GET /streams/v1/index.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert_eq!(server.requests()[0].status, 200);
//! ```
//!
//! Scripted routes, from an async test as from a plain one:
//!
//! ```
//! use simplestreams_testutil::http_server::{Reply, TestServer};
//! use std::io::{Read, Write};
//!
//! let server = TestServer::builder()
//!     .route("POST /v3/auth/tokens", vec![Reply::new(201, "{}").header("X-Subject-Token", "t")])
//!     .start();
//! let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
//! conn.write_all(b"POST /v3/auth/tokens?nocatalog HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
//!     Connection: close\r\n\r\n{}").unwrap();
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 201 Created\r\n"));
//! let log = server.requests_for_route("POST /v3/auth/tokens");
//! assert_eq!((log[0].target.as_str(), log[0].body.as_slice()), ("/v3/auth/tokens?nocatalog", &b"{}"[..]));
//! ```

mod body;
mod conn;
mod fault;
mod respond;
mod route;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::SystemTime;

pub use fault::Fault;
use fault::{FaultRule, Plan, Scope};
use respond::{RequestHead, Resource, Response};
use route::Routes;
pub use route::{Reply, HANG_UP};

/// One request as the server saw it, and the status it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The percent-decoded path, without the query string.
    pub path: String,
    /// The request target as sent: the path, not decoded, with its query string
    /// (`/v2/images?marker=b&limit=2`).
    pub target: String,
    /// The `Range` header, if one was sent.
    pub range: Option<String>,
    /// The status answered ([`HANG_UP`], 0, when the connection was closed without an
    /// answer).
    pub status: u16,
    /// All request headers, names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The request body (empty when none was sent), de-chunked if it came chunked.
    pub body: Vec<u8>,
}

impl RequestRecord {
    /// The value of a request header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An in-memory file.
#[derive(Debug, Clone)]
struct MemFile {
    body: Arc<Vec<u8>>,
    modified: SystemTime,
}

/// What the server serves and how it misbehaves; changed at run time through [`TestServer`].
#[derive(Debug, Default)]
struct State {
    root: Option<PathBuf>,
    files: HashMap<String, MemFile>,
    routes: Routes,
    rules: Vec<FaultRule>,
    log: Vec<RequestRecord>,
}

/// Where the answer to one request comes from, chosen under the lock and produced outside it
/// (reading a file below the directory awaits).
enum Source {
    /// A scripted route: its next reply, or `None` when it has none left or a status fault
    /// stands in for it.
    Route(String, Option<Reply>),
    /// The in-memory file at the path, if any, else the directory, if any.
    File(Option<MemFile>, Option<PathBuf>),
}

/// The state shared by the handle and the connections.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// A poisoned lock only means a test thread panicked while holding it; the data is still
    /// consistent (every update is a single push or insert), so carry on with it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one request and logs it.
    pub(crate) async fn answer(&self, req: &RequestHead, body: Vec<u8>) -> (Response, Plan) {
        let (plan, source) = {
            let mut state = self.lock();
            let plan = fault::plan_for(&mut state.rules, &req.path);
            let key = route::key(&req.method, &req.path);
            let source = if let Some(key) = state.routes.resolve(&key) {
                // A status fault answers in place of the reply, which stays for the next
                // request, as a file stays served under such a fault.
                let reply = match plan.status {
                    None => state.routes.next(&key),
                    Some(_) => None,
                };
                Source::Route(key, reply)
            } else {
                Source::File(state.files.get(&req.path).cloned(), state.root.clone())
            };
            (plan, source)
        };
        let resp = match source {
            Source::Route(key, reply) => route::respond(&key, reply, &plan),
            Source::File(mem, root) => {
                let found = match (mem, root) {
                    (Some(file), _) => Some(Resource::new(file.body, file.modified, &req.path)),
                    (None, Some(root)) if plan.status.is_none() => load(&root, &req.path).await,
                    (None, _) => None,
                };
                respond::respond(req, found, &plan)
            }
        };
        self.lock().log.push(RequestRecord {
            method: req.method.clone(),
            path: req.path.clone(),
            target: req.target.clone(),
            range: req.header("range").map(str::to_string),
            status: resp.status,
            headers: req.headers.clone(),
            body,
        });
        (resp, plan)
    }
}

/// Reads `path` below `root`, refusing anything that would leave it; `None` if not a file.
async fn load(root: &Path, path: &str) -> Option<Resource> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.as_os_str().is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let full = root.join(rel);
    let meta = tokio::fs::metadata(&full).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let body = tokio::fs::read(&full).await.ok()?;
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    Some(Resource::new(Arc::new(body), modified, path))
}

fn normalise(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// Configures a [`TestServer`]; [`TestServerBuilder::start`] starts it.
#[derive(Debug, Default)]
pub struct TestServerBuilder {
    state: State,
}

impl TestServerBuilder {
    /// Serves the files below `dir` (URL path `/a/b` is `dir/a/b`). In-memory files win.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state.root = Some(dir.into());
        self
    }

    /// Serves `body` at `path` (a leading `/` is added if missing), last modified now.
    pub fn file(self, path: &str, body: impl Into<Vec<u8>>) -> Self {
        self.file_modified(path, body, SystemTime::now())
    }

    /// Serves `body` at `path` with this `Last-Modified` time.
    pub fn file_modified(
        mut self,
        path: &str,
        body: impl Into<Vec<u8>>,
        modified: SystemTime,
    ) -> Self {
        let file = MemFile {
            body: Arc::new(body.into()),
            modified,
        };
        self.state.files.insert(normalise(path), file);
        self
    }

    /// Applies `fault` to `pattern`: one path (`"/a/b"`), or every path under a prefix when it
    /// ends in `*` (`"/streams/*"`).
    pub fn fault(mut self, pattern: &str, fault: Fault) -> Self {
        self.state
            .rules
            .push(FaultRule::new(Scope::parse(pattern), fault));
        self
    }

    /// Applies `fault` to every request.
    pub fn global_fault(mut self, fault: Fault) -> Self {
        self.state.rules.push(FaultRule::new(Scope::All, fault));
        self
    }

    /// Scripts `route` (`"METHOD /path"`, the path percent-decoded and without a query; or
    /// `"METHOD /prefix/*"` for every path under a prefix that has no route of its own): its
    /// requests get `replies` in order, then `599`. Called again for the same route, appends.
    ///
    /// # Panics
    /// When `route` is not a method, a space and a path without a query string.
    pub fn route(mut self, route: &str, replies: Vec<Reply>) -> Self {
        self.state.routes.add(route, replies);
        self
    }

    /// Binds a random port on 127.0.0.1 and starts serving.
    ///
    /// # Panics
    /// When the port cannot be bound or the thread or runtime cannot start: the test cannot
    /// go on without its server.
    pub fn start(self) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a port on 127.0.0.1 for the test server");
        let addr = listener.local_addr().expect("the test server's address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener for the test server");
        let shared = Arc::new(Shared {
            state: Mutex::new(self.state),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("test-http-server-{}", addr.port()))
            .spawn(move || accept_loop(listener, for_thread, stopped))
            .expect("spawn the test server's thread");
        TestServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// Runs on the server's thread: accepts connections until told to stop. Dropping the runtime
/// at the end cancels the connections still open (a throttled body, an idle keep-alive).
fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime for the test server");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .expect("register the test server's listener");
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => {
                    // A failed accept (the client gave up at once) concerns that client only.
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(conn::serve(stream, Arc::clone(&shared)));
                    }
                }
            }
        }
    });
}

/// A running test server; dropping it stops it.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A builder with nothing served and no faults.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Starts a server for the files below `dir`, without faults.
    pub fn serve_dir(dir: impl Into<PathBuf>) -> TestServer {
        TestServer::builder().dir(dir).start()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The URL of `path` (with or without a leading `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, normalise(path))
    }

    /// Adds or replaces an in-memory file, last modified now (an upstream update).
    pub fn set_file(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.set_file_modified(path, body, SystemTime::now());
    }

    /// Adds or replaces an in-memory file with this `Last-Modified` time.
    pub fn set_file_modified(&self, path: &str, body: impl Into<Vec<u8>>, modified: SystemTime) {
        let file = MemFile {
            body: Arc::new(body.into()),
            modified,
        };
        self.shared.lock().files.insert(normalise(path), file);
    }

    /// Removes an in-memory file (a file below the directory, if any, shows again).
    pub fn remove_file(&self, path: &str) {
        self.shared.lock().files.remove(&normalise(path));
    }

    /// Adds a fault on `pattern` (see [`TestServerBuilder::fault`]) from now on.
    pub fn add_fault(&self, pattern: &str, fault: Fault) {
        self.shared
            .lock()
            .rules
            .push(FaultRule::new(Scope::parse(pattern), fault));
    }

    /// Adds a fault on every request from now on.
    pub fn add_global_fault(&self, fault: Fault) {
        self.shared
            .lock()
            .rules
            .push(FaultRule::new(Scope::All, fault));
    }

    /// Appends `replies` to the script of `route` (see [`TestServerBuilder::route`]), scripting
    /// it if it was not.
    ///
    /// # Panics
    /// When `route` is not a method, a space and a path without a query string.
    pub fn route(&self, route: &str, replies: Vec<Reply>) {
        self.shared.lock().routes.add(route, replies);
    }

    /// Removes every fault: the server behaves from now on.
    pub fn clear_faults(&self) {
        self.shared.lock().rules.clear();
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// The requests for one path (with or without a leading `/`), oldest first.
    pub fn requests_for(&self, path: &str) -> Vec<RequestRecord> {
        let path = normalise(path);
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The requests for one route (`"METHOD /path"` or `"METHOD /prefix/*"`, as given to
    /// [`TestServer::route`]; it need not be scripted), oldest first. A prefix route lists every
    /// request under it, those answered by a longer or exact route too.
    ///
    /// # Panics
    /// When `route` is not a method, a space and a path without a query string.
    pub fn requests_for_route(&self, route: &str) -> Vec<RequestRecord> {
        let key = route::parse(route);
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| route::matches(&key, &route::key(&r.method, &r.path)))
            .cloned()
            .collect()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may already be gone if its runtime failed; nothing to stop then.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
