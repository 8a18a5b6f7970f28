//! The service's HTTP endpoint (`--listen 127.0.0.1:PORT`): `/metrics` in Prometheus's text
//! format (what the status file says, per job) and `/healthz` (the service answers).
//!
//! Two fixed `GET` routes with no request body need no HTTP framework: the server is tokio's
//! listener and `httparse` (a workspace dependency) for the request line and headers, one
//! request per connection, answered with `Connection: close`. hyper is in the dependency tree
//! (through reqwest), but only its client half: its server half and hyper-util's glue would be
//! compiled in for these two routes, with nothing gained. Requests are bounded: 16 KiB of head,
//! 10 seconds to send it, 32 connections at a time.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::status::{RunResult, Status, StatusBook};

const MAX_HEAD: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 32;

/// Escapes a label value (`\`, `"` and line feeds).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One metric family: its HELP and TYPE lines, then a sample per job that has a value.
fn family(
    out: &mut String,
    status: &Status,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&crate::status::JobStatus) -> Option<f64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for j in &status.jobs {
        if let Some(v) = value(j) {
            let _ = writeln!(out, "{name}{{job=\"{}\"}} {}", label(&j.name), number(v));
        }
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// `status` in Prometheus's text exposition format (version 0.0.4).
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP sstream_sync_up Whether the sync service answers (always 1 when scraped).\n\
         # TYPE sstream_sync_up gauge\nsstream_sync_up 1"
    );
    let b = |v: bool| Some(if v { 1.0 } else { 0.0 });
    family(
        &mut out,
        status,
        "sstream_sync_job_enabled",
        "gauge",
        "Whether the service runs the job (1) or it is disabled (0).",
        |j| b(j.enabled),
    );
    family(
        &mut out,
        status,
        "sstream_sync_job_running",
        "gauge",
        "Whether a run of the job is in progress.",
        |j| b(j.running),
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_success_timestamp_seconds",
        "gauge",
        "When the job's last successful run ended (Unix time).",
        |j| j.last_success.map(seconds),
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_run_timestamp_seconds",
        "gauge",
        "When the job's last run ended (Unix time).",
        |j| j.last_end.map(seconds),
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_run_success",
        "gauge",
        "Whether the job's last run succeeded (1) or failed or was interrupted (0).",
        |j| {
            j.last_result
                .map(|r| if r == RunResult::Success { 1.0 } else { 0.0 })
        },
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_duration_seconds",
        "gauge",
        "How long the job's last run took.",
        |j| j.last_duration_seconds,
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_items_added",
        "gauge",
        "Items (images) the job's last run added.",
        |j| j.last_end.map(|_| j.added as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_items_removed",
        "gauge",
        "Items (images) the job's last run removed.",
        |j| j.last_end.map(|_| j.removed as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_last_bytes",
        "gauge",
        "Bytes the job's last run transferred.",
        |j| j.last_end.map(|_| j.bytes as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_consecutive_failures",
        "gauge",
        "Failed runs of the job since its last success.",
        |j| Some(f64::from(j.consecutive_failures)),
    );
    family(
        &mut out,
        status,
        "sstream_sync_next_run_timestamp_seconds",
        "gauge",
        "When the job runs next (Unix time).",
        |j| j.next_run.map(seconds),
    );
    family(
        &mut out,
        status,
        "sstream_sync_runs_total",
        "counter",
        "Runs of the job.",
        |j| Some(j.totals.runs as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_errors_total",
        "counter",
        "Runs of the job that failed or were interrupted.",
        |j| Some(j.totals.failures as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_items_added_total",
        "counter",
        "Items (images) the job added.",
        |j| Some(j.totals.added as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_items_removed_total",
        "counter",
        "Items (images) the job removed.",
        |j| Some(j.totals.removed as f64),
    );
    family(
        &mut out,
        status,
        "sstream_sync_bytes_total",
        "counter",
        "Bytes the job transferred.",
        |j| Some(j.totals.bytes as f64),
    );
    out
}

/// Serves `/metrics` and `/healthz` on `listener` from `book` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    book: Arc<StatusBook>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return,
        };
        let (conn, _) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("metrics endpoint: accept failed: {e}");
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // too many at once: dropped, the client sees the connection close
        };
        let book = book.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = answer(conn, &book).await {
                tracing::debug!("metrics endpoint: {e}");
            }
        });
    }
}

async fn answer(mut conn: TcpStream, book: &StatusBook) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 2048];
        loop {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    return Ok(Some((
                        req.method.unwrap_or_default().to_string(),
                        req.path.unwrap_or_default().to_string(),
                    )))
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
                Ok(httparse::Status::Partial) => return Ok(Some(("".into(), "".into()))),
                Err(_) => return Ok(Some(("".into(), "".into()))),
            }
        }
    })
    .await;
    let (method, path) = match head {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()), // too slow: closed without an answer
    };
    let path = path.split('?').next().unwrap_or_default();
    let (status, content_type, body, extra): (&str, &str, String, &str) = if method.is_empty() {
        ("400 Bad Request", "text/plain", "bad request\n".into(), "")
    } else if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n".into(),
            "Allow: GET, HEAD\r\n",
        )
    } else {
        match path {
            "/metrics" => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                render(&book.snapshot()),
                "",
            ),
            "/healthz" => ("200 OK", "text/plain", "ok\n".into(), ""),
            "/" => (
                "200 OK",
                "text/plain",
                "sstream-sync: /metrics (Prometheus), /healthz\n".into(),
                "",
            ),
            _ => (
                "404 Not Found",
                "text/plain",
                "not found: /metrics or /healthz\n".into(),
                "",
            ),
        }
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        reply.extend_from_slice(body.as_bytes());
    }
    conn.write_all(&reply).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{JobStatus, Totals};

    #[test]
    fn metrics_have_help_and_type_lines_and_escape_labels() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let status = Status {
            jobs: vec![
                JobStatus {
                    name: "ubuntu \"released\"\\x".into(),
                    enabled: true,
                    last_success: Some(t),
                    last_end: Some(t),
                    last_result: Some(RunResult::Success),
                    last_duration_seconds: Some(1.25),
                    added: 2,
                    totals: Totals {
                        runs: 3,
                        failures: 1,
                        added: 5,
                        removed: 1,
                        bytes: 1024,
                    },
                    ..JobStatus::default()
                },
                JobStatus {
                    name: "never".into(),
                    enabled: true,
                    ..JobStatus::default()
                },
            ],
            ..Status::default()
        };
        let text = render(&status);
        let job = r#"job="ubuntu \"released\"\\x""#;
        for line in [
            "# HELP sstream_sync_last_success_timestamp_seconds When the job's last successful run ended (Unix time).".to_string(),
            "# TYPE sstream_sync_last_success_timestamp_seconds gauge".to_string(),
            format!("sstream_sync_last_success_timestamp_seconds{{{job}}} 1700000000.500"),
            format!("sstream_sync_last_duration_seconds{{{job}}} 1.250"),
            "# TYPE sstream_sync_errors_total counter".to_string(),
            format!("sstream_sync_errors_total{{{job}}} 1"),
            format!("sstream_sync_items_added_total{{{job}}} 5"),
            format!("sstream_sync_bytes_total{{{job}}} 1024"),
            format!("sstream_sync_last_run_success{{{job}}} 1"),
            "sstream_sync_errors_total{job=\"never\"} 0".to_string(),
            "sstream_sync_up 1".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // A job that never succeeded has no last-success sample (absent, not 0).
        assert!(!text.contains("sstream_sync_last_success_timestamp_seconds{job=\"never\"}"));
        // Every sample belongs to a family declared just before.
        let mut declared = String::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared = rest.split(' ').next().unwrap_or_default().to_string();
            } else if !l.starts_with('#') {
                assert!(
                    l.starts_with(&declared),
                    "{l} outside its family {declared}"
                );
            }
        }
    }
}
