//! The service with time compressed through its configuration (schedules and retries of a few
//! hundred milliseconds), syncing the foocloud example stream served over HTTP into
//! directories: independence of jobs, retries until the first success, reloads, interruption
//! and restart, jobs sharing a target, and the metrics endpoint over a real socket.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use simplestreams_sync::status::{JobStatus, RunResult, Status};
use simplestreams_sync::{
    metrics, shutdown_channel, Config, LocalLocations, Service, Shutdown, StatusBook, StatusFile,
};
use simplestreams_testutil::fixture;
use simplestreams_testutil::http_server::{Fault, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INDEX: &str = "/streams/v1/index.json";
/// The amd64 disk images of foocloud: three versions.
const AMD64_DISKS: u64 = 3;

fn foocloud() -> TestServer {
    TestServer::serve_dir(fixture("python-examples/foocloud"))
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A mirror job of foocloud's amd64 disk images into `target`.
fn mirror_job(name: &str, url: &str, target: &Path, extra: &str) -> String {
    format!(
        "  - name: {name}\n    source: {url}streams/v1/index.json\n    item_filters: [arch=amd64, ftype=disk1.img]\n{extra}    mirror: {{target: {}, fsync: false}}\n",
        target.display()
    )
}

fn config(global: &str, jobs: &[String]) -> Config {
    let text = format!(
        "jitter: 0\nhttp: {{retries: 0, connect_timeout: 2s}}\n{global}jobs:\n{}",
        jobs.concat()
    );
    Config::parse(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn start(config: Config, state: &Path) -> (Service, Arc<StatusBook>, StatusFile) {
    let file = StatusFile::new(state.join("status.json"));
    let previous = file.load().expect("status").unwrap_or_default();
    let book = Arc::new(StatusBook::new(Some(file.clone()), previous));
    let service = Service::new(
        config,
        state.to_path_buf(),
        book.clone(),
        Arc::new(LocalLocations),
    )
    .expect("service");
    (service, book, file)
}

fn job(book: &StatusBook, name: &str) -> JobStatus {
    book.snapshot().job(name).cloned().unwrap_or_default()
}

/// A configuration to reload once the status passes a test.
type Reload = (Box<dyn Fn(&Status) -> bool>, Config);

/// Runs `service` until `done` says so (checked every 20 ms) or `limit` passes, then stops it.
async fn run_until(
    service: Service,
    book: Arc<StatusBook>,
    reloads: Vec<Reload>,
    done: impl Fn(&Status) -> bool,
    limit: Duration,
) -> Duration {
    let (trigger, shutdown) = shutdown_channel();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let started = Instant::now();
    let watcher = async {
        let mut reloads = reloads.into_iter();
        let mut next = reloads.next();
        while started.elapsed() < limit {
            let s = book.snapshot();
            if let Some((when, _)) = &next {
                if when(&s) {
                    let (_, config) = next.take().expect("reload");
                    tx.send(config).await.expect("send");
                    next = reloads.next();
                }
            } else if done(&s) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.trigger();
    };
    tokio::join!(service.run(rx, shutdown), watcher);
    started.elapsed()
}

#[tokio::test]
async fn a_failing_job_neither_stops_nor_delays_the_others() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_url = format!("http://127.0.0.1:{}/", dead_port());
    let cfg = config(
        "retry_interval: 300ms\nschedule: 150ms\n",
        &[
            mirror_job("good", &server.url(), &dir.path().join("good"), ""),
            mirror_job("bad", &bad_url, &dir.path().join("bad"), ""),
        ],
    );
    let (service, book, file) = start(cfg, dir.path());
    let took = run_until(
        service,
        book.clone(),
        Vec::new(),
        // Stopped between two runs of the bad job: a stop during one records it as
        // interrupted, not as the failure it would have been.
        |s| {
            s.job("good").is_some_and(|j| j.totals.runs >= 5)
                && s.job("bad")
                    .is_some_and(|j| !j.running && j.totals.failures >= 1)
        },
        Duration::from_secs(20),
    )
    .await;
    let good = job(&book, "good");
    let bad = job(&book, "bad");
    assert!(good.totals.runs >= 5, "{good:?}");
    assert_eq!(good.totals.failures, 0, "{good:?}");
    assert_eq!(
        good.totals.added, AMD64_DISKS,
        "the first run downloads, the others are no-ops"
    );
    assert!(good.last_success.is_some());
    assert!(
        bad.totals.failures >= 1 && bad.last_success.is_none(),
        "{bad:?}"
    );
    // The bad job retried on its own timer: every 300 ms at most, whatever the good one did.
    let max_runs = took.as_millis() / 300 + 1;
    assert!(
        u128::from(bad.totals.runs) <= max_runs,
        "{bad:?} in {took:?}"
    );
    assert!(
        bad.last_error
            .as_deref()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{bad:?}"
    );
    // The status file says the same.
    let written = file.load().expect("read").expect("written");
    assert_eq!(
        written.job("good").map(|j| j.totals.added),
        Some(AMD64_DISKS)
    );
    assert!(dir.path().join("good/streams/v1/index.json").is_file());
}

#[tokio::test]
async fn a_failed_job_retries_every_retry_interval_until_its_first_success_then_keeps_its_schedule()
{
    let server = foocloud();
    server.add_fault(
        INDEX,
        Fault::FailFirst {
            times: 2,
            status: 503,
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        "retry_interval: 250ms\nschedule: 1h\n",
        &[mirror_job("a", &server.url(), &dir.path().join("m"), "")],
    );
    let (service, book, _) = start(cfg, dir.path());
    let took = run_until(
        service,
        book.clone(),
        Vec::new(),
        |s| s.job("a").is_some_and(|j| j.last_success.is_some()),
        Duration::from_secs(20),
    )
    .await;
    let a = job(&book, "a");
    assert_eq!((a.totals.runs, a.totals.failures), (3, 2), "{a:?}");
    assert_eq!(a.consecutive_failures, 0);
    assert_eq!(a.last_result, Some(RunResult::Success));
    assert!(
        took >= Duration::from_millis(500),
        "two retries 250 ms apart: {took:?}"
    );
    // Then the schedule: an hour after the successful run started.
    let next = a.next_run.expect("next run");
    let start = a.last_start.expect("start");
    assert_eq!(
        next.duration_since(start).ok(),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(server.requests_for(INDEX).len(), 3);
}

#[tokio::test]
async fn a_reloaded_configuration_adds_removes_and_reruns_changed_jobs() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = server.url();
    let first = config(
        "schedule: 1h\n",
        &[
            mirror_job("kept", &url, &dir.path().join("kept"), ""),
            mirror_job("changed", &url, &dir.path().join("changed"), ""),
            mirror_job("removed", &url, &dir.path().join("removed"), ""),
        ],
    );
    let second = config(
        "schedule: 1h\n",
        &[
            mirror_job("kept", &url, &dir.path().join("kept"), ""),
            mirror_job("changed", &url, &dir.path().join("changed"), "    max: 1\n"),
            mirror_job("added", &url, &dir.path().join("added"), ""),
        ],
    );
    let (service, book, _) = start(first, dir.path());
    let all_ran = |s: &Status| {
        ["kept", "changed", "removed"]
            .iter()
            .all(|n| s.job(n).is_some_and(|j| j.totals.runs == 1 && !j.running))
    };
    run_until(
        service,
        book.clone(),
        vec![(Box::new(all_ran), second)],
        |s| {
            s.job("added").is_some_and(|j| j.totals.runs == 1)
                && s.job("changed").is_some_and(|j| j.totals.runs == 2)
        },
        Duration::from_secs(20),
    )
    .await;
    let s = book.snapshot();
    let names: Vec<&str> = s.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["kept", "changed", "added"]);
    assert_eq!(
        job(&book, "kept").totals.runs,
        1,
        "an unchanged job keeps its timer"
    );
    let changed = job(&book, "changed");
    assert_eq!(changed.totals.runs, 2, "a changed job runs again at once");
    assert_eq!(changed.removed, 2, "with its new max: 1");
}

#[tokio::test]
async fn an_interrupted_run_is_recorded_and_a_restart_finishes_the_job() {
    let server = foocloud();
    // 60-byte images at 20 bytes/s: a run takes seconds, time enough to stop it.
    server.add_fault("/files/*", Fault::Throttle(20));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("m");
    let cfg = || {
        config(
            "schedule: 1h\n",
            &[mirror_job("a", &server.url(), &target, "")],
        )
    };
    let (service, book, file) = start(cfg(), dir.path());
    run_until(
        service,
        book.clone(),
        Vec::new(),
        |s| {
            s.job("a").is_some_and(|j| j.running)
                && server
                    .requests()
                    .iter()
                    .any(|r| r.path.starts_with("/files/"))
        },
        Duration::from_secs(20),
    )
    .await;
    let a = job(&book, "a");
    assert_eq!(a.last_result, Some(RunResult::Interrupted), "{a:?}");
    assert!(!a.running);
    assert!(a.last_success.is_none());
    assert!(
        !target.join("streams/v1/index.json").exists(),
        "nothing half-done published"
    );

    // A new service from the same status file runs it at once, and finishes it.
    server.clear_faults();
    let (service, book, _) = start(cfg(), dir.path());
    assert_eq!(
        file.load()
            .expect("read")
            .and_then(|s| s.job("a").and_then(|j| j.last_result)),
        Some(RunResult::Interrupted)
    );
    run_until(
        service,
        book.clone(),
        Vec::new(),
        |s| s.job("a").is_some_and(|j| j.last_success.is_some()),
        Duration::from_secs(20),
    )
    .await;
    let a = job(&book, "a");
    assert_eq!(a.last_result, Some(RunResult::Success), "{a:?}");
    assert_eq!(a.totals.runs, 2);
    assert!(target.join("streams/v1/index.json").is_file());
}

#[tokio::test]
async fn jobs_writing_the_same_target_take_turns() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("shared");
    let url = server.url();
    let i386 = format!(
        "  - name: i386\n    source: {url}streams/v1/index.json\n    item_filters: [arch=i386, ftype=disk1.img]\n    mirror: {{target: {}, fsync: false}}\n",
        target.display()
    );
    let cfg = config("", &[mirror_job("amd64", &url, &target, ""), i386]);
    let (service, book, _) = start(cfg, dir.path());
    let outcomes = service.run_once(Shutdown::never()).await;
    for (name, o) in &outcomes {
        assert!(o.is_success(), "{name}: {o:?}");
    }
    let s = book.snapshot();
    let (a, b) = (s.job("amd64").expect("amd64"), s.job("i386").expect("i386"));
    assert!(a.added > 0 && b.added > 0);
    // One after the other: the second started when the first had ended.
    let (first, second) = if a.last_start < b.last_start {
        (a, b)
    } else {
        (b, a)
    };
    assert!(second.last_start >= first.last_end, "{first:?}\n{second:?}");
    assert_eq!(a.next_run, None, "--once schedules nothing");
}

#[tokio::test]
async fn a_job_that_never_succeeds_is_retried_but_not_more_often_than_the_retry_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_url = format!("http://127.0.0.1:{}/", dead_port());
    let cfg = config(
        "retry_interval: 200ms\nschedule: 50ms\n",
        &[mirror_job("bad", &bad_url, &dir.path().join("m"), "")],
    );
    let (service, book, _) = start(cfg, dir.path());
    let took = run_until(
        service,
        book.clone(),
        Vec::new(),
        |s| s.job("bad").is_some_and(|j| j.totals.runs >= 4),
        Duration::from_secs(20),
    )
    .await;
    let bad = job(&book, "bad");
    assert_eq!(bad.consecutive_failures as u64, bad.totals.runs);
    assert!(
        took >= Duration::from_millis(600),
        "4 runs, 200 ms apart: {took:?}"
    );
    let next = bad.next_run.expect("next");
    let end = bad.last_end.expect("end");
    assert_eq!(
        next.duration_since(end).ok(),
        Some(Duration::from_millis(200))
    );
}

#[tokio::test]
async fn the_lock_keeps_a_second_service_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = StatusFile::new(dir.path().join("status.json"));
    let held = file.lock().await.expect("first");
    let err = file.lock().await.expect_err("second").to_string();
    assert!(err.contains("another sstream-sync is running"), "{err}");
    assert!(err.contains("status.json.lock"), "{err}");
    drop(held);
    file.lock().await.expect("free again");
}

async fn get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test]
async fn metrics_and_healthz_answer_over_a_real_socket() {
    let mut status = Status::default();
    let j = status.job_mut("ubuntu");
    j.enabled = true;
    j.last_success = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    j.last_result = Some(RunResult::Success);
    j.totals.runs = 4;
    j.totals.failures = 1;
    j.totals.bytes = 12345;
    let book = Arc::new(StatusBook::new(None, status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (trigger, shutdown) = shutdown_channel();
    let server = tokio::spawn(metrics::serve(listener, book.clone(), shutdown.wait()));

    let m = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, body) = m.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    for line in [
        "# TYPE sstream_sync_last_success_timestamp_seconds gauge",
        "sstream_sync_last_success_timestamp_seconds{job=\"ubuntu\"} 1700000000",
        "# TYPE sstream_sync_errors_total counter",
        "sstream_sync_errors_total{job=\"ubuntu\"} 1",
        "sstream_sync_runs_total{job=\"ubuntu\"} 4",
        "sstream_sync_bytes_total{job=\"ubuntu\"} 12345",
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line}:\n{body}");
    }
    // The book is read at each scrape.
    book.update(|s| s.job_mut("ubuntu").totals.runs = 5);
    let m = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(
        m.contains("sstream_sync_runs_total{job=\"ubuntu\"} 5"),
        "{m}"
    );

    let h = get(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        h.starts_with("HTTP/1.1 200 OK\r\n") && h.ends_with("\r\n\r\nok\n"),
        "{h}"
    );
    let head_only = get(addr, "HEAD /healthz HTTP/1.1\r\n\r\n").await;
    assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
    let missing = get(addr, "GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = get(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(
        post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"),
        "{post}"
    );
    let garbage = get(addr, "\x01\x02 nonsense\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");

    trigger.trigger();
    server.await.expect("server stops");
}
