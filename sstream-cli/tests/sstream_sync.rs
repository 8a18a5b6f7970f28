//! `sstream-sync` as an operator runs it: `check`, `--once` and its exit codes, `--dry-run`,
//! the service with its status file, lock, metrics endpoint, SIGHUP reloads and SIGTERM stops,
//! `status` and `status --check`. The sources are the foocloud example stream served over
//! HTTP; time is compressed through the configuration (schedules and retries in
//! milliseconds). The tests marked ignored run against the OpenStack test bed (`scripts/test`
//! runs them): a configuration pasted from the charm syncs Glance, a job failing mid-upload
//! retries and converges without duplicates, a job with an unreachable source fails alone,
//! SIGTERM during an upload followed by a restart finishes the job, Glance stopped in the
//! middle of a job (a relay in front of the real Glance, cut and reopened, so the shared test
//! bed keeps running) then started again converges with no duplicate and no stray image, and
//! a token Glance answers 401 is renewed without failing the job.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use simplestreams_testutil::fixture;
use simplestreams_testutil::http_server::{Fault, Reply, TestServer};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sstream-sync"));
    c.env_remove("STATE_DIRECTORY").env_remove("RUST_LOG");
    c
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run sstream-sync");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn foocloud() -> TestServer {
    TestServer::serve_dir(fixture("python-examples/foocloud"))
}

/// A port nothing listens on.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A configuration in `dir` (state there too), with compressed time and no HTTP retries.
fn write_config(dir: &Path, global: &str, jobs: &[String]) -> PathBuf {
    let path = dir.join("sync.yaml");
    let text = format!(
        "state_dir: {}\njitter: 0\nhttp: {{retries: 0, connect_timeout: 2s}}\n{global}jobs:\n{}",
        dir.join("state").display(),
        jobs.concat()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A mirror job of foocloud's amd64 disk images (three) from `url` into `target`.
fn mirror_job(name: &str, url: &str, target: &Path, extra: &str) -> String {
    format!(
        "  - name: {name}\n    source: {url}streams/v1/index.json\n    item_filters: [arch=amd64, ftype=disk1.img]\n{extra}    mirror: {{target: {}, fsync: false}}\n",
        target.display()
    )
}

fn status_file(dir: &Path) -> PathBuf {
    dir.join("state/status.json")
}

fn read_status(dir: &Path) -> Value {
    std::fs::read(status_file(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn job<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["name"] == name)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The service running in the background, logging to a file; killed if a test fails.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, extra: &[&str]) -> Daemon {
        Daemon::spawn(bin(), config, extra)
    }

    /// `cmd` (`sstream-sync` with its environment) on `config`.
    fn spawn(mut cmd: Command, config: &Path, extra: &[&str]) -> Daemon {
        let log = config.with_file_name(format!("log-{}.txt", free_port()));
        let child = cmd
            .arg("--config")
            .arg(config)
            .args(extra)
            .arg("--log-file")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sstream-sync");
        Daemon { child, log }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "still running after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(conn, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn check_lists_the_jobs_and_refuses_a_bad_file_naming_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("m");
    let config = write_config(
        dir.path(),
        "",
        &[mirror_job(
            "foo",
            "http://127.0.0.1:1/",
            &target,
            "    schedule: 6h\n",
        )],
    );
    let (o, stdout, stderr) = run(bin().arg("check").arg(&config));
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("1 job(s)"), "{stdout}");
    assert!(
        stdout.contains("foo (mirror): http://127.0.0.1:1/streams/v1/index.json ->"),
        "{stdout}"
    );
    assert!(stdout.contains("every 6h"), "{stdout}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "jobs:\n  - name: a\n    source: http://m/streams/v1/index.json\n    item_filters: ['arch~(']\n    mirror: {target: /t}\n    colour: blue\n",
    )
    .expect("write");
    let (o, _, stderr) = run(bin().arg("check").arg(&bad));
    assert_eq!(o.status.code(), Some(1));
    let name = bad.display().to_string();
    assert!(
        stderr.contains(&format!("{name}:6: colour: unknown key")),
        "{stderr}"
    );
}

#[test]
fn a_refused_configuration_syncs_nothing_and_exits_78() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("m");
    let config = write_config(
        dir.path(),
        "",
        &[mirror_job(
            "a",
            &server.url(),
            &target,
            "    schedule: sometimes\n",
        )],
    );
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert_eq!(o.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("sync.yaml:") && stderr.contains("jobs[0].schedule"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was synced"), "{stderr}");
    assert!(!target.exists());
    assert!(server.requests().is_empty());
}

#[test]
fn once_exits_non_zero_when_one_job_fails_while_the_good_one_syncs() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good");
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let config = write_config(
        dir.path(),
        "",
        &[
            mirror_job("bad", &dead, &dir.path().join("bad"), ""),
            mirror_job("good", &server.url(), &good, ""),
        ],
    );
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed: bad"), "{stderr}");
    assert!(good.join("streams/v1/index.json").is_file());
    let status = read_status(dir.path());
    let g = job(&status, "good").expect("good");
    assert_eq!(g["last_result"], "success");
    assert_eq!(g["added"], 3);
    let b = job(&status, "bad").expect("bad");
    assert_eq!(b["last_result"], "failure");
    assert!(
        b["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{b}"
    );
    assert!(g["next_run"].is_null(), "--once schedules nothing");

    // Only the good one: success, and a no-op.
    let config = write_config(
        dir.path(),
        "",
        &[mirror_job("good", &server.url(), &good, "")],
    );
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
    let status = read_status(dir.path());
    let g = job(&status, "good").expect("good");
    assert_eq!(
        (g["added"].as_u64(), g["totals"]["runs"].as_u64()),
        (Some(0), Some(2))
    );
    assert!(
        job(&status, "bad").is_none(),
        "a job no longer configured leaves the status"
    );
}

#[test]
fn json_logs_carry_the_job() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "",
        &[mirror_job("j", &server.url(), &dir.path().join("m"), "")],
    );
    let (o, _, stderr) =
        run(bin()
            .arg("--config")
            .arg(&config)
            .args(["--once", "--log-format", "json"]));
    assert!(o.status.success(), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let synced = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("synced in"))
        })
        .unwrap_or_else(|| panic!("no 'synced' line:\n{stderr}"));
    assert_eq!(synced["span"]["job"], "j", "{synced}");
    assert_eq!(synced["level"], "INFO");
}

#[test]
fn dry_run_prints_each_jobs_plan_and_writes_nothing() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("m");
    let config = write_config(
        dir.path(),
        "",
        &[mirror_job("a", &server.url(), &target, "    max: 2\n")],
    );
    let (o, stdout, stderr) = run(bin().arg("--config").arg(&config).arg("--dry-run"));
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.starts_with("== a\n"), "{stdout}");
    let adds: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
    assert_eq!(adds.len(), 2, "{stdout}");
    assert!(
        adds[0].contains("com.example.foovendor:pinky:server:amd64"),
        "{stdout}"
    );
    assert!(stdout.contains("total: 2 to add, 0 to remove"), "{stdout}");
    assert!(!target.exists());
    assert!(!status_file(dir.path()).exists());
}

/// A status file whose job `a` last succeeded `age` ago (and `b` an hour ago).
fn status_with_age(dir: &Path, age: Duration) -> PathBuf {
    let now = std::time::SystemTime::now();
    let iso = |t: std::time::SystemTime| {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        // RFC 3339 by hand (no date crate in this test): days since the epoch to a date.
        let (days, rem) = (secs / 86400, secs % 86400);
        let (y, m, d) = civil(days as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    };
    let path = dir.join("status.json");
    let doc = serde_json::json!({"version": 1, "jobs": [
        {"name": "a", "kind": "mirror", "source": "http://m/", "target": "/srv/a",
         "schedule": "hourly", "interval_seconds": 3600.0, "enabled": true,
         "last_success": iso(now - age), "last_start": iso(now - age), "last_end": iso(now - age),
         "last_result": "success", "last_duration_seconds": 1.5, "added": 2, "bytes": 2048},
        {"name": "b", "kind": "glance", "source": "http://m/", "target": "glance x",
         "schedule": "hourly", "interval_seconds": 3600.0, "enabled": true,
         "last_success": iso(now - Duration::from_secs(3600))}
    ]});
    std::fs::write(&path, doc.to_string()).expect("write");
    path
}

/// Howard Hinnant's days-to-civil.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Ages as `status` shows them for `whole` plus 0 to `slack` seconds: the status file holds whole
/// seconds (so up to one more) and the command runs a moment after the file was written.
fn ages_shown(whole: &str, slack: Duration) -> Vec<String> {
    (0..=slack.as_secs() + 1)
        .map(|n| match n {
            0 => whole.to_string(),
            n => format!("{whole} {n}s"),
        })
        .collect()
}

#[test]
fn status_check_exits_ok_warning_critical_or_unknown_by_the_age_of_the_last_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |path: &Path| {
        let (o, stdout, _) = run(bin().arg("status").arg("--status-file").arg(path).args([
            "--check",
            "--warn-after",
            "3h",
            "--crit-after",
            "6h",
        ]));
        (o.status.code(), stdout)
    };
    let path = status_with_age(dir.path(), Duration::from_secs(600));
    let (code, out) = check(&path);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("SSTREAM-SYNC OK: 2 job(s)"), "{out}");
    let written = std::time::Instant::now();
    let (code, out) = check(&status_with_age(dir.path(), Duration::from_secs(4 * 3600)));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        ages_shown("4h", written.elapsed())
            .iter()
            .any(|age| out.starts_with(&format!(
                "SSTREAM-SYNC WARNING: a: last success {age} ago (warning after 3h)"
            ))),
        "{out}"
    );
    let (code, out) = check(&status_with_age(dir.path(), Duration::from_secs(7 * 3600)));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.starts_with("SSTREAM-SYNC CRITICAL"), "{out}");
    let (code, out) = check(&dir.path().join("missing.json"));
    assert_eq!(code, Some(3), "{out}");
    assert!(out.starts_with("SSTREAM-SYNC UNKNOWN"), "{out}");
    // Default thresholds: twice and four times the interval (an hour): 7h is critical.
    let (o, out, _) = run(bin()
        .arg("status")
        .arg("--status-file")
        .arg(&path)
        .arg("--check"));
    assert_eq!(o.status.code(), Some(2), "{out}");

    // For people.
    let written = std::time::Instant::now();
    let path = status_with_age(dir.path(), Duration::from_secs(600));
    let (o, out, err) = run(bin().arg("status").arg("--status-file").arg(&path));
    assert!(o.status.success(), "{err}");
    assert!(out.contains("a (mirror http://m/ -> /srv/a)"), "{out}");
    assert!(
        ages_shown("10m", written.elapsed()).iter().any(|age| out
            .lines()
            .any(|l| l.starts_with("  last success:") && l.ends_with(&format!("({age} ago)")))),
        "{out}"
    );
    assert!(out.contains("2 added, 0 removed, 2.0 KiB"), "{out}");
}

#[test]
fn the_service_serves_metrics_reloads_on_sighup_and_stops_on_sigterm() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = server.url();
    let config = write_config(
        dir.path(),
        "schedule: 1h\n",
        &[mirror_job("first", &url, &dir.path().join("first"), "")],
    );
    let port = free_port();
    let mut daemon = Daemon::start(&config, &["--listen", &format!("127.0.0.1:{port}")]);
    wait_for("the first job's success", Duration::from_secs(30), || {
        job(&read_status(dir.path()), "first").is_some_and(|j| j["last_result"] == "success")
    });
    let status = read_status(dir.path());
    assert_eq!(status["pid"], daemon.child.id());
    let metrics = http_get(port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(metrics.contains("# TYPE sstream_sync_last_success_timestamp_seconds gauge"));
    assert!(
        metrics.contains("sstream_sync_items_added_total{job=\"first\"} 3"),
        "{metrics}"
    );
    assert!(http_get(port, "/healthz").ends_with("\r\n\r\nok\n"));

    // A second service on the same status file is refused by the lock.
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another sstream-sync is running"),
        "{stderr}"
    );

    // SIGHUP with a job added: it runs; the first keeps its timer.
    write_config(
        dir.path(),
        "schedule: 1h\n",
        &[
            mirror_job("first", &url, &dir.path().join("first"), ""),
            mirror_job("second", &url, &dir.path().join("second"), ""),
        ],
    );
    daemon.signal("HUP");
    wait_for("the added job's success", Duration::from_secs(30), || {
        job(&read_status(dir.path()), "second").is_some_and(|j| j["last_result"] == "success")
    });
    let status = read_status(dir.path());
    assert_eq!(job(&status, "first").expect("first")["totals"]["runs"], 1);
    assert!(
        daemon.log().contains("configuration reloaded"),
        "{}",
        daemon.log()
    );

    // SIGHUP with a bad file: refused, said in the log, the old configuration kept.
    std::fs::write(&config, "jobs:\n  - name: x\n    sauce: nowhere\n").expect("write");
    daemon.signal("HUP");
    wait_for("the refusal in the log", Duration::from_secs(30), || {
        daemon
            .log()
            .contains("the new configuration is refused, the old one is kept")
    });
    assert!(
        daemon.log().contains("sync.yaml:3: sauce: unknown key"),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.child.try_wait().expect("wait").is_none(),
        "still running"
    );
    assert_eq!(
        read_status(dir.path())["jobs"].as_array().map(Vec::len),
        Some(2)
    );

    daemon.signal("TERM");
    let code = daemon.wait(Duration::from_secs(30));
    assert!(code.success(), "{code:?}: {}", daemon.stderr());
    assert!(daemon.log().contains("stopped"), "{}", daemon.log());
    // The lock went with it.
    let config = write_config(
        dir.path(),
        "",
        &[mirror_job("first", &url, &dir.path().join("first"), "")],
    );
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
}

#[test]
fn sigterm_stops_between_items_and_a_restart_finishes_the_job() {
    let server = foocloud();
    server.add_fault("/files/*", Fault::Throttle(20));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("m");
    let config = write_config(
        dir.path(),
        "schedule: 1h\n",
        &[mirror_job("slow", &server.url(), &target, "")],
    );
    let mut daemon = Daemon::start(&config, &[]);
    wait_for("a download in flight", Duration::from_secs(30), || {
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/files/"))
    });
    daemon.signal("TERM");
    let code = daemon.wait(Duration::from_secs(30));
    assert!(code.success(), "{code:?}");
    let status = read_status(dir.path());
    let slow = job(&status, "slow").expect("slow");
    assert_eq!(slow["last_result"], "interrupted", "{slow}");
    assert_eq!(slow["running"], false);
    assert!(!target.join("streams/v1/index.json").exists());

    server.clear_faults();
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
    assert!(target.join("streams/v1/index.json").is_file());
    assert_eq!(
        job(&read_status(dir.path()), "slow").expect("slow")["last_result"],
        "success"
    );
}

/// Keystone answering every token request with a catalog whose Glance is at a dead port.
fn keystone_with_dead_glance() -> TestServer {
    keystone_shim(
        &["token"],
        "p1",
        &format!("http://127.0.0.1:{}", free_port()),
    )
}

fn fake_cloud(cmd: &mut Command, keystone: &TestServer) {
    for var in [
        "OS_CLOUD",
        "OS_TOKEN",
        "OS_AUTH_TOKEN",
        "OS_CACERT",
        "OS_PROJECT_ID",
        "OS_USER_ID",
        "OS_APPLICATION_CREDENTIAL_ID",
        "OS_APPLICATION_CREDENTIAL_SECRET",
        "OS_AUTH_TYPE",
        "OS_INTERFACE",
        "OS_CLIENT_CONFIG_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("OS_AUTH_URL", format!("{}v3", keystone.url()))
        .env("OS_USERNAME", "admin")
        .env("OS_PASSWORD", "secret")
        .env("OS_PROJECT_NAME", "admin")
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_DOMAIN_NAME", "Default")
        .env("OS_REGION_NAME", "RegionOne");
}

#[test]
fn a_glance_job_whose_region_is_down_fails_alone_and_is_retried() {
    let keystone = keystone_with_dead_glance();
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let glance_job = format!(
        "  - name: cloud\n    source: {}streams/v1/index.json\n    retry_interval: 300ms\n    glance: {{cloud_name: c, content_id: 'test.sync:{{region}}'}}\n",
        server.url()
    );
    let config = write_config(
        dir.path(),
        "schedule: 1h\n",
        &[
            glance_job,
            mirror_job("mirror", &server.url(), &dir.path().join("m"), ""),
        ],
    );
    let mut cmd = bin();
    fake_cloud(&mut cmd, &keystone);
    let log = dir.path().join("log.txt");
    let mut child = cmd
        .arg("--config")
        .arg(&config)
        .arg("--log-file")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    wait_for(
        "three failed Glance runs and a synced mirror",
        Duration::from_secs(30),
        || {
            let s = read_status(dir.path());
            job(&s, "cloud").is_some_and(|j| j["totals"]["failures"].as_u64() >= Some(3))
                && job(&s, "mirror").is_some_and(|j| j["last_result"] == "success")
        },
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let code = child.wait().expect("wait");
    assert!(code.success(), "{code:?}");
    let s = read_status(dir.path());
    let cloud = job(&s, "cloud").expect("cloud");
    assert!(cloud["last_success"].is_null());
    let error = cloud["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("RegionOne: "),
        "the region is named: {error}"
    );
    let mirror = job(&s, "mirror").expect("mirror");
    assert_eq!(
        mirror["totals"]["runs"], 1,
        "the mirror job was not held back: {mirror}"
    );
    assert_eq!(mirror["totals"]["failures"], 0);
}

// ---- Against the OpenStack test bed --------------------------------------------------------

use glance_target::{Image, Session};

mod common;
use common::{images, unique};

/// Each (product, version, item) once among `images`, all active: no duplicate, no leftover.
fn assert_unique_and_active(images: &[Image]) {
    let mut seen = std::collections::HashSet::new();
    for i in images {
        assert_eq!(i.status, "active", "{i:?}");
        let key = (
            i.property("product_name").map(str::to_string),
            i.property("version_name").map(str::to_string),
            i.property("item_name").map(str::to_string),
        );
        assert!(seen.insert(key), "duplicate image: {i:?}");
    }
}

/// A configuration made of the charm's keys, its `mirror_list` a YAML string pointing at the
/// local stream (what an operator pastes from `juju config`).
fn charm_config(dir: &Path, url: &str, cid: &str, extra: &str) -> PathBuf {
    let path = dir.join("charm.yaml");
    let text = format!(
        "mirror_list: \"[{{url: '{url}', name_prefix: 'foo:released', path: 'streams/v1/index.json', max: 1,\n   item_filters: ['arch~(x86_64|amd64|i386)', 'ftype~(disk1.img|disk.img)']}}]\"\n\
         content_id_template: '{cid}.{{region}}'\ncloud_name: testcloud\nname_prefix: 'auto-sync/'\n\
         use_swift: false\nvisibility: private\nfrequency: hourly\nrun: true\n\
         state_dir: {}\njitter: 0\nhttp: {{retries: 0}}\n{extra}",
        dir.join("state").display()
    );
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn a_configuration_pasted_from_the_charm_syncs_glance() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let cid = unique("charm");
    let config = charm_config(dir.path(), &server.url(), &cid, "");
    let (o, _, stderr) = run(bin().arg("check").arg(&config));
    assert!(o.status.success(), "{stderr}");
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
    let found = images(&format!("{cid}.RegionOne"), false);
    // max 1: the newest amd64 and i386 disk images.
    assert_eq!(found.len(), 2, "{found:?}");
    assert_unique_and_active(&found);
    for i in &found {
        let name = i.name.as_deref().unwrap_or_default();
        assert!(name.starts_with("auto-sync/"), "{name}");
        assert_eq!(i.visibility.as_deref(), Some("private"));
    }
    let status = read_status(dir.path());
    let j = job(&status, "foo:released").expect("named after the entry's name_prefix");
    assert_eq!(j["added"], 2);
    assert_eq!(j["schedule"], "hourly");
    // A second run is a no-op.
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        job(&read_status(dir.path()), "foo:released").expect("job")["added"],
        0
    );
    images(&format!("{cid}.RegionOne"), true);
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn a_job_failing_in_the_middle_of_an_upload_retries_and_converges_without_duplicates() {
    let server = foocloud();
    // The amd64 image of the newest version is cut short in the middle of its upload.
    let cut = "/files/release-20121026.1/foovendor-6.1-server-cloudimg-amd64-disk1.img";
    server.add_fault(cut, Fault::CutAfter(20));
    let dir = tempfile::tempdir().expect("tempdir");
    let cid = unique("retry");
    let config = charm_config(dir.path(), &server.url(), &cid, "retry_interval: 500ms\n");
    let mut daemon = Daemon::start(&config, &[]);
    wait_for("the first failure", Duration::from_secs(60), || {
        job(&read_status(dir.path()), "foo:released").is_some_and(|j| j["last_result"] == "failure")
    });
    let failed = read_status(dir.path());
    let j = job(&failed, "foo:released").expect("job");
    assert!(
        j["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("amd64")),
        "{j}"
    );
    assert!(j["last_success"].is_null());
    server.clear_faults();
    wait_for("the retry's success", Duration::from_secs(60), || {
        job(&read_status(dir.path()), "foo:released").is_some_and(|j| j["last_result"] == "success")
    });
    daemon.signal("TERM");
    assert!(daemon.wait(Duration::from_secs(30)).success());
    let s = read_status(dir.path());
    let j = job(&s, "foo:released").expect("job");
    let (start, end) = (
        j["last_start"].as_str(),
        failed["jobs"][0]["last_end"].as_str(),
    );
    assert!(start > end, "retried after the failure");
    let found = images(&format!("{cid}.RegionOne"), false);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_unique_and_active(&found);
    images(&format!("{cid}.RegionOne"), true);
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn an_unreachable_source_fails_its_job_while_another_job_syncs_glance() {
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, bad) = (unique("good"), unique("bad"));
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let glance = |name: &str, url: &str, cid: &str| {
        format!(
            "  - name: {name}\n    source: {url}streams/v1/index.json\n    max: 1\n    glance: {{cloud_name: testcloud, content_id: '{cid}:{{region}}', visibility: private}}\n"
        )
    };
    let config = write_config(
        dir.path(),
        "",
        &[
            glance("bad", &dead, &bad),
            glance("good", &server.url(), &good),
        ],
    );
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed: bad"), "{stderr}");
    let found = images(&format!("{good}:RegionOne"), false);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_unique_and_active(&found);
    assert!(images(&format!("{bad}:RegionOne"), false).is_empty());
    let s = read_status(dir.path());
    assert_eq!(job(&s, "good").expect("good")["last_result"], "success");
    assert_eq!(job(&s, "bad").expect("bad")["last_result"], "failure");
    images(&format!("{good}:RegionOne"), true);
}

/// Runs the service on `server`'s stream (its item files throttled by the caller), sends it
/// SIGTERM once an upload is in flight and `before_signal` (given the content id) has run, and
/// checks that it stops as interrupted, leaving no image behind; then lifts the throttle, runs
/// the job once more and returns the images it made (deleted afterwards by the caller).
fn terminate_mid_upload_then_restart(
    server: &TestServer,
    name: &str,
    before_signal: impl FnOnce(&str),
) -> (String, Vec<Image>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cid = unique(name);
    let config = charm_config(dir.path(), &server.url(), &cid, "");
    let content_id = format!("{cid}.RegionOne");
    let mut daemon = Daemon::start(&config, &[]);
    wait_for("an upload in flight", Duration::from_secs(60), || {
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/files/"))
            && !images(&content_id, false).is_empty()
    });
    before_signal(&content_id);
    daemon.signal("TERM");
    assert!(daemon.wait(Duration::from_secs(60)).success());
    let s = read_status(dir.path());
    assert_eq!(
        job(&s, "foo:released").expect("job")["last_result"],
        "interrupted"
    );
    assert!(
        images(&content_id, false).is_empty(),
        "the image in flight was deleted: {:?}",
        images(&content_id, false)
    );
    server.clear_faults();
    let (o, _, stderr) = run(bin().arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
    let found = images(&content_id, false);
    assert_unique_and_active(&found);
    (content_id, found)
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn sigterm_during_a_glance_upload_then_a_restart_finishes_the_job() {
    let server = foocloud();
    // 60-byte images at 10 bytes/s: each upload takes seconds.
    server.add_fault("/files/*", Fault::Throttle(10));
    let (content_id, found) = terminate_mid_upload_then_restart(&server, "term", |_| {});
    assert_eq!(found.len(), 2, "{found:?}");
    images(&content_id, true);
}

/// A stream of one 50 MiB amd64 disk image (served by the returned server) and its sha256.
fn fifty_mib_stream() -> (TestServer, Vec<u8>) {
    use sha2::Digest;
    // Bytes that are no known disk format, so Glance takes them as they are.
    let data: Vec<u8> = (0..50u32 << 20).map(|i| (i % 251) as u8).collect();
    let sha256 = hex::encode(sha2::Sha256::digest(&data));
    let products = serde_json::json!({
        "format": "products:1.0", "content_id": "org.example:big", "datatype": "image-downloads",
        "updated": "Sat, 28 Nov 2026 00:00:00 +0000",
        "products": {"org.example:big:amd64": {
            "os": "ubuntu", "release": "noble", "version": "24.04", "arch": "amd64",
            "versions": {"20261128": {"items": {"disk1.img": {
                "ftype": "disk1.img", "path": "files/big.img",
                "size": data.len(), "sha256": sha256}}}}}}
    });
    let index = serde_json::json!({
        "format": "index:1.0", "updated": "Sat, 28 Nov 2026 00:00:00 +0000",
        "index": {"org.example:big": {
            "format": "products:1.0", "datatype": "image-downloads",
            "updated": "Sat, 28 Nov 2026 00:00:00 +0000",
            "path": "streams/v1/big.json", "products": ["org.example:big:amd64"]}}
    });
    let server = TestServer::builder()
        .file("streams/v1/index.json", index.to_string())
        .file("streams/v1/big.json", products.to_string())
        .file("files/big.img", data.clone())
        .start();
    (server, data)
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn sigterm_during_a_50_mib_glance_upload_then_a_restart_uploads_it_whole() {
    let (server, data) = fifty_mib_stream();
    // 5 MiB/s: the upload takes about ten seconds, the signal comes in the middle.
    server.add_fault("/files/*", Fault::Throttle(5 << 20));
    let (content_id, found) = terminate_mid_upload_then_restart(&server, "term50", |cid| {
        std::thread::sleep(Duration::from_secs(2));
        let in_flight = images(cid, false);
        assert!(
            in_flight.iter().all(|i| i.status != "active"),
            "the signal comes before the upload ends: {in_flight:?}"
        );
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].size, Some(data.len() as u64), "{found:?}");
    let md5 = hex::encode(<md5::Md5 as sha2::Digest>::digest(&data));
    assert_eq!(
        found[0].checksum.as_deref(),
        Some(md5.as_str()),
        "{found:?}"
    );
    images(&content_id, true);
}

// ---- Faults between the service and the test bed -------------------------------------------

/// The test bed's admin token (its value and project) and Glance's endpoint, from `OS_*`.
fn testbed_token() -> (String, String, String) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let session = Session::from_env().expect("OS_* variables (source the test bed's openrc)");
        let token = session.token().await.expect("token");
        let glance = session
            .endpoint("image", Some("RegionOne"))
            .await
            .expect("Glance's endpoint");
        let project = token.project_id.clone().expect("a project-scoped token");
        (token.value().to_string(), project, glance)
    })
}

/// A Keystone standing in for the test bed's: it hands out `tokens` in order (then the last
/// again, 200 times), each with a catalog whose Glance is at `glance`. The real Glance checks
/// the tokens with the real Keystone, so a made-up one is answered 401 as an expired one is.
fn keystone_shim(tokens: &[&str], project: &str, glance: &str) -> TestServer {
    let server = TestServer::builder().start();
    let reply = |token: &str| {
        let body = serde_json::json!({"token": {
            "expires_at": "2999-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "admin"},
            "project": {"id": project, "name": "admin"},
            "roles": [{"id": "r", "name": "admin"}],
            "catalog": [{"type": "image", "name": "glance", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": glance}]}]
        }});
        Reply::new(201, body.to_string())
            .header("X-Subject-Token", token)
            .header("Content-Type", "application/json")
    };
    let mut replies: Vec<Reply> = tokens.iter().map(|t| reply(t)).collect();
    if let Some(last) = tokens.last() {
        replies.extend(std::iter::repeat_with(|| reply(last)).take(200));
    }
    server.route("POST /v3/auth/tokens", replies);
    server
}

/// `sstream-sync --config CONFIG` in the background against the Keystone `keystone`.
fn daemon_with_cloud(config: &Path, keystone: &TestServer) -> Daemon {
    let mut cmd = bin();
    fake_cloud(&mut cmd, keystone);
    Daemon::spawn(cmd, config, &[])
}

/// A TCP relay to Glance that can be stopped (listener closed, connections cut: what the
/// service sees when Glance stops) and started again on the same port.
struct Relay {
    port: u16,
    upstream: String,
    state: std::sync::Arc<RelayState>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct RelayState {
    up: std::sync::atomic::AtomicBool,
    conns: std::sync::Mutex<Vec<std::net::TcpStream>>,
    /// Image data uploads (`PUT /v2/images/ID/file`) that went through.
    uploads: std::sync::atomic::AtomicUsize,
}

impl Relay {
    fn new(upstream: &str) -> Relay {
        let mut relay = Relay {
            port: 0,
            upstream: upstream.to_string(),
            state: Default::default(),
            acceptor: None,
        };
        relay.start();
        relay
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn uploads(&self) -> usize {
        self.state.uploads.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn start(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("bind");
        self.port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        self.state.up.store(true, SeqCst);
        let (state, upstream) = (self.state.clone(), self.upstream.clone());
        self.acceptor = Some(std::thread::spawn(move || {
            while state.up.load(SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    state.conns.lock().expect("lock").extend([c, s]);
                }
                let pipe = |mut from: std::net::TcpStream,
                            mut to: std::net::TcpStream,
                            count: Option<std::sync::Arc<RelayState>>| {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            if let Some(state) = &count {
                                let head = String::from_utf8_lossy(&buf[..n.min(256)]);
                                if head.starts_with("PUT /v2/images/") && head.contains("/file ") {
                                    state.uploads.fetch_add(1, SeqCst);
                                }
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    pipe(client, s2, Some(state.clone()));
                    pipe(server, c2, None);
                }
            }
        }));
    }

    fn stop(&mut self) {
        self.state
            .up
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for c in self.state.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn glance_stopped_in_the_middle_of_a_job_then_started_again_converges_without_duplicates_or_strays()
{
    let (token, project, glance) = testbed_token();
    let upstream = glance
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut relay = Relay::new(&upstream);
    let keystone = keystone_shim(&[&token], &project, &relay.url());
    let server = foocloud();
    // 60-byte images at 10 bytes/s: Glance goes away while an image is being uploaded.
    server.add_fault("/files/*", Fault::Throttle(10));
    let dir = tempfile::tempdir().expect("tempdir");
    let cid = unique("glancedown");
    let config = charm_config(dir.path(), &server.url(), &cid, "retry_interval: 500ms\n");
    let content_id = format!("{cid}.RegionOne");
    let mut daemon = daemon_with_cloud(&config, &keystone);
    wait_for("an upload in flight", Duration::from_secs(60), || {
        relay.uploads() > 0
    });
    relay.stop();
    wait_for("the job's failure", Duration::from_secs(60), || {
        job(&read_status(dir.path()), "foo:released").is_some_and(|j| j["last_result"] == "failure")
    });
    // Retried while Glance is down: each retry fails, none more often than the retry interval.
    wait_for("a second failed run", Duration::from_secs(30), || {
        job(&read_status(dir.path()), "foo:released")
            .is_some_and(|j| j["totals"]["failures"].as_u64() >= Some(2))
    });
    let down = read_status(dir.path());
    let j = job(&down, "foo:released").expect("job");
    assert!(j["last_success"].is_null(), "{j}");
    assert!(
        j["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{j}"
    );
    // The image cut short is still in Glance (nobody could delete it while Glance was down).
    assert!(
        images(&content_id, false)
            .iter()
            .any(|i| i.status != "active"),
        "an unfinished image was left: {:?}",
        images(&content_id, false)
    );
    server.clear_faults();
    relay.start();
    wait_for("the retry's success", Duration::from_secs(60), || {
        job(&read_status(dir.path()), "foo:released").is_some_and(|j| j["last_result"] == "success")
    });
    daemon.signal("TERM");
    assert!(
        daemon.wait(Duration::from_secs(30)).success(),
        "{}",
        daemon.stderr()
    );
    let found = images(&content_id, false);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_unique_and_active(&found);
    images(&content_id, true);
}

#[test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
fn a_token_answered_401_once_is_renewed_transparently() {
    let (token, project, glance) = testbed_token();
    // The first token Keystone hands out is one Glance refuses (an expired token, as far as
    // the service can tell); the next is good.
    let keystone = keystone_shim(&["gAAAAA-expired-token", &token], &project, &glance);
    let server = foocloud();
    let dir = tempfile::tempdir().expect("tempdir");
    let cid = unique("expired");
    let config = charm_config(dir.path(), &server.url(), &cid, "");
    let mut cmd = bin();
    fake_cloud(&mut cmd, &keystone);
    let (o, _, stderr) = run(cmd.arg("--config").arg(&config).arg("--once"));
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        keystone.requests_for_route("POST /v3/auth/tokens").len(),
        2,
        "one renewal, after the 401"
    );
    let s = read_status(dir.path());
    let j = job(&s, "foo:released").expect("job");
    assert_eq!(j["last_result"], "success", "{j}");
    assert_eq!(j["totals"]["failures"], 0, "{j}");
    let found = images(&format!("{cid}.RegionOne"), false);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_unique_and_active(&found);
    images(&format!("{cid}.RegionOne"), true);
}
