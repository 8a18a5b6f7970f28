//! A scripted HTTP server on 127.0.0.1 for deterministic tests of retries, token renewal and
//! error mapping: it answers each request with the next scripted response (the route decides
//! which script) and records what it was sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

type Scripts = Arc<Mutex<HashMap<String, VecDeque<Reply>>>>;

pub struct MockServer {
    pub url: String,
    scripts: Scripts,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockServer {
    pub async fn start() -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let scripts: Scripts = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (s, r) = (scripts.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut conn).await else {
                        return;
                    };
                    // Route on method and path without the query.
                    let key = format!(
                        "{} {}",
                        req.method,
                        req.path.split('?').next().unwrap_or("")
                    );
                    let reply = s
                        .lock()
                        .expect("scripts lock")
                        .get_mut(&key)
                        .and_then(VecDeque::pop_front)
                        .unwrap_or_else(|| Reply::new(599, format!("nothing scripted for {key}")));
                    r.lock().expect("seen lock").push(req);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (k, v) in &reply.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(reply.body.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        MockServer { url, scripts, seen }
    }

    /// Answers for `"METHOD /path"`, used in order.
    pub fn script(&self, route: &str, replies: Vec<Reply>) {
        self.scripts
            .lock()
            .expect("scripts lock")
            .entry(route.to_owned())
            .or_default()
            .extend(replies);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn count(&self, route: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| format!("{} {}", s.method, s.path.split('?').next().unwrap_or("")) == route)
            .count()
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}
