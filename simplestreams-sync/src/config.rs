//! The configuration: one YAML file holding a list of jobs, and/or the glance-simplestreams-sync
//! charm's own keys (translated into jobs exactly as the charm's sync script builds its
//! `sstream-mirror-glance` commands, see [`charm`](self#the-charms-keys)).
//!
//! Everything is checked when the file is read, before anything is synced: unknown keys,
//! values of the wrong kind, bad filters, bad durations, keyrings that cannot be read. Each
//! refusal names the file, the line and the key ([`ConfigError`]). `docs/sync.md` and
//! `contrib/sstream-sync.yaml` describe every key.
//!
//! # The charm's keys
//!
//! A file holding the charm's keys (`mirror_list`, `cloud_name`, `content_id_template`,
//! `custom_properties`, `hypervisor_mapping`, `frequency`, `region`, `use_swift`, `ssl_ca`,
//! `user_agent`, `name_prefix`, `run`, `visibility`, `set_latest_property`,
//! `image_import_conversion`, `custom_keyring`, …), at the top level or under
//! `glance-simplestreams-sync:` as `juju deploy --config` takes them, gives one Glance job per
//! `mirror_list` entry: `--keep --max MAX --content-id TEMPLATE.format(region=REGION)
//! --cloud-name --path --name-prefix --keyring`, `--output-swift simplestreams/data/` with
//! `use_swift` (and the `product-streams` endpoint pointed at it, as the charm has Keystone do),
//! `--hypervisor-mapping`, one `--custom-property` per word of `custom_properties`,
//! `--image-import-conversion`, `--set-latest-property`, `--visibility`, the URL and the
//! entry's `item_filters`. Keys the charm has that mean nothing here (`nagios_context`,
//! `snap-channel`, …) are accepted and said to be ignored.

mod charm;
mod raw;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use glance_target::properties::parse_custom_property;
use glance_target::Interface;
use simplestreams_core::openpgp::{Keyring, SigningKey};
use simplestreams_core::FilterSet;
use simplestreams_mirror::{load_keyrings, split_entry, SignaturePolicy};

use crate::schedule::{parse_duration, Jitter, Schedule, Timing};
use raw::{Text, S};

/// The default `max_decompressed_size`, in MiB (the tools' default, 128 GiB).
pub const DEFAULT_MAX_DECOMPRESSED_MIB: u64 =
    simplestreams_mirror::decompress::DEFAULT_MAX_DECOMPRESSED >> 20;

/// The keyring used when a job names none (the reference's and the charm's default).
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/// The item filters of a Glance job that gives none (`sstream-mirror-glance`'s).
pub const DEFAULT_GLANCE_FILTERS: [&str; 2] =
    ["ftype~(disk1.img|disk.img)", "arch~(x86_64|amd64|i386)"];

/// A configuration, read and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, as named in messages.
    pub file: String,
    /// The service-wide settings.
    pub settings: Settings,
    /// The jobs, in the order written.
    pub jobs: Vec<Job>,
    /// What the service should say at start about the file (charm keys without effect here, a
    /// `run: false`), one message each.
    pub notes: Vec<String>,
}

/// Service-wide settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Where the status file, the lock and the Glance state go (`state_dir`).
    pub state_dir: Option<PathBuf>,
    /// The status file (`status_file`; default `STATE_DIR/status.json`).
    pub status_file: Option<PathBuf>,
    /// The metrics endpoint's address (`listen`), unless the command line gives one.
    pub listen: Option<SocketAddr>,
    /// How sources are read.
    pub http: HttpSettings,
    /// How OpenStack is reached.
    pub openstack: OpenStackSettings,
}

/// How sources are read over HTTP (`http:`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed without a byte.
    pub read_timeout: Duration,
    /// Retries of a failed request.
    pub retries: u32,
    /// The largest metadata file accepted, in bytes.
    pub max_metadata_size: u64,
    /// The `User-Agent` (the charm's `user_agent`).
    pub user_agent: Option<String>,
    /// Extra trusted certificates (PEM), for sources.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 5,
            max_metadata_size: 256 << 20,
            user_agent: None,
            ca_pem: None,
        }
    }
}

/// How OpenStack is reached (`openstack:`, and the charm's `ssl_ca` and
/// `use-internal-endpoints`). Credentials come from the `OS_*` variables or `clouds.yaml`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpenStackSettings {
    /// The `clouds.yaml` cloud to use (as `OS_CLOUD`).
    pub cloud: Option<String>,
    /// The endpoints' interface, overriding `OS_INTERFACE`.
    pub interface: Option<Interface>,
    /// Extra trusted certificates (PEM) for Keystone, Glance and Swift.
    pub ca_pem: Option<Vec<u8>>,
    /// The `User-Agent` of OpenStack requests.
    pub user_agent: Option<String>,
}

/// Where a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `jobs:`.
    Jobs,
    /// An entry of the charm's `mirror_list`.
    Charm,
}

/// A job as configured: plain data, compared on reload to tell a changed job from an
/// unchanged one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Its name: unique, used in logs, the status file and metrics.
    pub name: String,
    /// The line it starts at.
    pub line: usize,
    /// Whether the service runs it (`enabled`, the charm's `run`).
    pub enabled: bool,
    /// Where it came from.
    pub origin: Origin,
    /// When it runs.
    pub timing: Timing,
    /// The mirror URL or directory, or the URL of an index or products file.
    pub source: String,
    /// The entry file below the source (`path`), if given.
    pub path: Option<String>,
    /// Other mirrors of the source, tried when a file is missing or fails.
    pub mirrors: Vec<String>,
    /// Whether signatures are checked (`no_verify` turns them off).
    pub verify: bool,
    /// The keyrings given (empty: the default keyring, used only for a `.sjson` entry).
    pub keyrings: Vec<PathBuf>,
    /// A keyring given inline (the charm's `custom_keyring`, decoded).
    pub inline_keyring: Option<Vec<u8>>,
    /// The item filters, as written.
    pub filters: Vec<String>,
    /// `max`: versions kept per product.
    pub max: Option<usize>,
    /// `keep`: keep versions that left the source, up to `max`.
    pub keep: bool,
    /// Parallel transfers.
    pub parallel: usize,
    /// Verify every checksum, not just the strongest.
    pub all_checksums: bool,
    /// Accept metadata older than what was seen.
    pub allow_rollback: bool,
    /// Warn when a signed source is older than this many days (0: never).
    pub stale_after_days: u64,
    /// Re-verify what the target holds.
    pub verify_existing: bool,
    /// `max_decompressed_size` in MiB: the most one compressed image may decompress to (Glance
    /// jobs always decompress; mirror jobs with `decompress`).
    pub max_decompressed_size_mib: u64,
    /// Where it syncs to.
    pub target: TargetSpec,
}

/// A job's target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// OpenStack Glance (what `sstream-mirror-glance` does).
    Glance(GlanceSpec),
    /// A mirror: a directory, `swift://` or `s3://` (what `sstream-mirror` does).
    Mirror(MirrorSpec),
}

/// A Glance target: `sstream-mirror-glance`'s options.
#[derive(Debug, Clone, PartialEq)]
pub struct GlanceSpec {
    /// `--cloud-name`.
    pub cloud_name: String,
    /// `--content-id`: `{region}` and `%(region)s` are replaced by each region.
    pub content_id: String,
    /// `--region` (empty: every region with an image endpoint).
    pub regions: Vec<String>,
    /// `--name-prefix`.
    pub name_prefix: String,
    /// `--custom-property`, parsed.
    pub custom_properties: Vec<(String, String)>,
    /// `--hypervisor-mapping`.
    pub hypervisor_mapping: bool,
    /// `--visibility`.
    pub visibility: String,
    /// `--set-latest-property`.
    pub set_latest_property: bool,
    /// `--image-import-conversion`.
    pub image_import_conversion: bool,
    /// `--modify-hook`, split on spaces.
    pub modify_hook: Option<Vec<String>>,
    /// `--output-dir` or `--output-swift`.
    pub output: Option<ImageIdsSpec>,
    /// `--register-product-streams`.
    pub register_product_streams: bool,
    /// `--product-streams-url`.
    pub product_streams_url: Option<String>,
}

/// Where a Glance job publishes its image-ids stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageIdsSpec {
    /// `--output-dir DIR`: each region below `DIR/REGION/`.
    Directory(PathBuf),
    /// `--output-swift CONTAINER/PREFIX`.
    Swift(String),
}

/// A mirror target: `sstream-mirror`'s options.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSpec {
    /// A directory, `swift://CONTAINER/PREFIX` or `s3://BUCKET/PREFIX`.
    pub target: String,
    /// `--filtered-metadata`.
    pub filtered_metadata: bool,
    /// `--decompress` (implies `filtered_metadata`).
    pub decompress: bool,
    /// `--signing-key`.
    pub signing_key: Option<PathBuf>,
    /// Download items (`--no-item-download` turns it off).
    pub item_download: bool,
    /// `--public` (Swift).
    pub public: bool,
    /// Flush files to stable storage (`--no-fsync` turns it off).
    pub fsync: bool,
    /// `--segment-size` in MiB (Swift segments, S3 parts); `None`: each store's default.
    pub segment_size_mib: Option<u64>,
}

/// A job: its specification, and what was resolved from it when the file was read (filters
/// parsed, keyrings and keys loaded).
#[derive(Debug, Clone)]
pub struct Job {
    /// What was configured.
    pub spec: JobSpec,
    /// The entry file below the source root.
    pub entry: String,
    /// The source root (the source with the entry path taken off).
    pub root: String,
    /// The filters, parsed.
    pub filters: FilterSet,
    /// The signature policy (keyring loaded).
    pub signatures: SignaturePolicy,
    /// The signing key of a filtered mirror.
    pub signing_key: Option<Arc<SigningKey>>,
}

impl Job {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// `glance` or `mirror`.
    pub fn kind(&self) -> &'static str {
        match self.spec.target {
            TargetSpec::Glance(_) => "glance",
            TargetSpec::Mirror(_) => "mirror",
        }
    }

    /// Its target, for people: the mirror location, or `glance CONTENT_ID`.
    pub fn target_label(&self) -> String {
        match &self.spec.target {
            TargetSpec::Glance(g) => format!("glance {}", g.content_id),
            TargetSpec::Mirror(m) => m.target.clone(),
        }
    }

    /// What jobs must not run at the same time as this one: those that write the same mirror,
    /// or the same content id in Glance (the charm's mirrors share one; it runs them one after
    /// the other, and so does the service).
    pub fn exclusive_key(&self) -> String {
        match &self.spec.target {
            TargetSpec::Glance(g) => format!("glance:{}", g.content_id),
            TargetSpec::Mirror(m) => format!("mirror:{}", m.target),
        }
    }
}

/// One refusal: where, which key, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// The key, when one is to blame (`jobs[2].item_filters`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A configuration refused: every problem found, each with its line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What is wrong, in the order found (at least one).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.file)?;
            if p.line > 0 {
                write!(f, ":{}", p.line)?;
            }
            match &p.key {
                Some(k) => write!(f, ": {k}: {}", p.message)?,
                None => write!(f, ": {}", p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Problems gathered while reading a file.
#[derive(Default)]
pub(crate) struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn add(&mut self, line: usize, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            line,
            key: Some(key.into()),
            message: message.into(),
        });
    }
}

fn line<T>(s: &S<T>) -> usize {
    s.referenced.line() as usize
}

impl Config {
    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            problems: vec![Problem {
                line: 0,
                key: None,
                message: format!("cannot read it: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse_in(&text, &file, base)
    }

    /// Parses and checks a configuration's text; `file` names it in messages; relative paths
    /// are taken from the current directory.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse_in(text, file, Path::new("."))
    }

    fn parse_in(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let refuse = |problems: Vec<Problem>| ConfigError {
            file: file.to_string(),
            problems,
        };
        let parsed: raw::File = if text.trim().is_empty() {
            raw::File::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| refuse(vec![yaml_problem(&e, text, 0)]))?
        };
        let mut problems = Problems::default();
        let mut notes = Vec::new();
        let mut top = parsed;
        if let Some(app) = top.application.take() {
            if top.has_charm_keys() {
                problems.add(
                    line(&app),
                    "glance-simplestreams-sync",
                    "give the charm's keys either here or at the top level, not both",
                );
            }
            let app_line = line(&app);
            let inner = *app.value;
            if inner.jobs.is_some() || inner.application.is_some() {
                problems.add(
                    app_line,
                    "glance-simplestreams-sync",
                    "holds the charm's keys only",
                );
            }
            merge_charm_keys(&mut top, inner);
        }
        let settings = settings(&top, base, &mut problems);
        let defaults = JobDefaults::read(&top, base, &mut problems);
        let mut jobs = Vec::new();
        if let Some(list) = &top.jobs {
            for (i, job) in list.value.iter().enumerate() {
                if let Some(j) = native_job(i, job, &defaults, base, &mut problems) {
                    jobs.push(j);
                }
            }
        }
        let mut settings = settings;
        if top.has_charm_keys() {
            let charm = charm::jobs(&top, &defaults, &mut settings, &mut problems, &mut notes);
            jobs.extend(charm);
        }
        if jobs.is_empty() && problems.0.is_empty() {
            problems.0.push(Problem {
                line: 0,
                key: None,
                message: "no jobs: give `jobs:` or the charm's `mirror_list`".into(),
            });
        }
        let mut seen = HashSet::new();
        for j in &jobs {
            if !seen.insert(j.spec.name.clone()) {
                problems.add(
                    j.spec.line,
                    "name",
                    format!("{:?}: another job has this name", j.spec.name),
                );
            }
        }
        if !problems.0.is_empty() {
            return Err(refuse(problems.0));
        }
        Ok(Config {
            file: file.to_string(),
            settings,
            jobs,
            notes,
        })
    }

    /// The job named `name`.
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.spec.name == name)
    }
}

/// Moves the charm's keys of `juju deploy --config`'s application section to the top.
fn merge_charm_keys(top: &mut raw::File, inner: raw::File) {
    macro_rules! take {
        ($($k:ident),*) => { $( if inner.$k.is_some() { top.$k = inner.$k; } )* };
    }
    take!(
        mirror_list,
        cloud_name,
        content_id_template,
        custom_properties,
        hypervisor_mapping,
        frequency,
        region,
        use_swift,
        ssl_ca,
        user_agent,
        name_prefix,
        run,
        visibility,
        set_latest_property,
        image_import_conversion,
        custom_keyring,
        keyring_path,
        use_internal_endpoints,
        ignore_proxy_for_object_store,
        modify_hook_scripts,
        nagios_context,
        nagios_servicegroups,
        source,
        key,
        snap_channel
    );
}

/// A YAML or type error from serde-saphyr, with its line (shifted by `line_offset` for YAML
/// text inside a value) and the key it concerns when that can be told.
pub(crate) fn yaml_problem(e: &serde_saphyr::Error, text: &str, line_offset: usize) -> Problem {
    let (line, column) = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    let message = plain_message(e);
    let named = |what: &str| -> Option<String> {
        let rest = message.split_once(what)?.1;
        let rest = rest.strip_prefix('`')?;
        Some(rest.split_once('`')?.0.to_string())
    };
    let (key, message) = if let Some(k) = named("unknown field ") {
        let expected = message
            .split_once(", expected ")
            .map(|(_, e)| format!("; expected {e}"))
            .unwrap_or_default();
        (Some(k), format!("unknown key{expected}"))
    } else if let Some(k) = named("missing field ") {
        (Some(k), "is required".to_string())
    } else {
        (key_at(text, line, column), message)
    };
    Problem {
        line: if line > 0 {
            line + line_offset
        } else {
            line_offset
        },
        key,
        message,
    }
}

/// The message of a serde-saphyr error without its location and snippet.
fn plain_message(e: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let text = e.render_with_options(options);
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((loc, rest)) if loc.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

/// The key whose value starts at (`line`, `column`) in `text`: the last `key:` before the
/// column on that line (`max: x`, `{url: a, max: x}`).
fn key_at(text: &str, line: usize, column: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let before: String = l.chars().take(column.saturating_sub(1)).collect();
    let colon = before.trim_end().strip_suffix(':')?;
    let key: String = colon
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\''))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let key = key.trim_matches(|c| c == '"' || c == '\'').to_string();
    (!key.is_empty()).then_some(key)
}

fn settings(top: &raw::File, base: &Path, p: &mut Problems) -> Settings {
    let mut s = Settings::default();
    let path = |v: &S<String>| base.join(&v.value);
    s.state_dir = top.state_dir.as_ref().map(path);
    s.status_file = top.status_file.as_ref().map(path);
    if let Some(l) = &top.listen {
        match l.value.parse::<SocketAddr>() {
            Ok(a) => s.listen = Some(a),
            Err(e) => p.add(
                line(l),
                "listen",
                format!(
                    "{:?}: {e} (expected ADDRESS:PORT, e.g. 127.0.0.1:9780)",
                    l.value
                ),
            ),
        }
    }
    if let Some(h) = &top.http {
        let h = &h.value;
        let mut secs = |v: &Option<S<Text>>, key: &str, into: &mut Duration| {
            if let Some(v) = v {
                match parse_duration(&v.value.0) {
                    Ok(d) if !d.is_zero() => *into = d,
                    Ok(_) => p.add(line(v), format!("http.{key}"), "must be more than 0"),
                    Err(e) => p.add(line(v), format!("http.{key}"), e),
                }
            }
        };
        secs(
            &h.connect_timeout,
            "connect_timeout",
            &mut s.http.connect_timeout,
        );
        secs(&h.read_timeout, "read_timeout", &mut s.http.read_timeout);
        if let Some(r) = &h.retries {
            s.http.retries = r.value;
        }
        if let Some(m) = &h.max_metadata_size {
            if m.value == 0 {
                p.add(
                    line(m),
                    "http.max_metadata_size",
                    "must be at least 1 (MiB)",
                );
            }
            s.http.max_metadata_size = m.value.saturating_mul(1 << 20);
        }
        s.http.user_agent = h.user_agent.as_ref().map(|u| u.value.clone());
        if let Some(ca) = &h.ca_file {
            s.http.ca_pem = read_pem(&base.join(&ca.value), line(ca), "http.ca_file", p);
        }
    }
    if let Some(o) = &top.openstack {
        let o = &o.value;
        s.openstack.cloud = o.cloud.as_ref().map(|c| c.value.clone());
        if let Some(i) = &o.interface {
            match i.value.parse::<Interface>() {
                Ok(i) => s.openstack.interface = Some(i),
                Err(e) => p.add(line(i), "openstack.interface", e),
            }
        }
        if let Some(ca) = &o.ca_file {
            s.openstack.ca_pem = read_pem(&base.join(&ca.value), line(ca), "openstack.ca_file", p);
        }
        if let Some(ca) = &o.ssl_ca {
            s.openstack.ca_pem = decode_pem(&ca.value, line(ca), "openstack.ssl_ca", p);
        }
        s.openstack.user_agent = o.user_agent.as_ref().map(|u| u.value.clone());
    }
    s
}

fn read_pem(path: &Path, at: usize, key: &str, p: &mut Problems) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(pem) => check_pem(pem, at, key, p),
        Err(e) => {
            p.add(at, key, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// A base64 PEM bundle (the charm's `ssl_ca`), decoded and checked.
pub(crate) fn decode_pem(b64: &str, at: usize, key: &str, p: &mut Problems) -> Option<Vec<u8>> {
    match decode_base64(b64) {
        Ok(pem) => check_pem(pem, at, key, p),
        Err(e) => {
            p.add(at, key, e);
            None
        }
    }
}

fn check_pem(pem: Vec<u8>, at: usize, key: &str, p: &mut Problems) -> Option<Vec<u8>> {
    match simplestreams_mirror::HttpOptions::default().with_pem_roots(&pem, key) {
        Ok(_) => Some(pem),
        Err(e) => {
            p.add(at, key, e);
            None
        }
    }
}

/// Decodes base64 as the charm's values hold it (line breaks and spaces allowed).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("not base64: {e}"))
}

/// What a job takes from the top level unless it says otherwise.
pub(crate) struct JobDefaults {
    pub timing: Timing,
    pub keyrings: Vec<PathBuf>,
    pub keyring_line: usize,
}

impl JobDefaults {
    fn read(top: &raw::File, base: &Path, p: &mut Problems) -> JobDefaults {
        let timing = timing(
            Timing::default(),
            "",
            &top.schedule,
            &top.jitter,
            &top.retry_interval,
            &top.max_backoff,
            p,
        );
        let (keyrings, keyring_line) = match &top.keyring {
            Some(k) => (k.value.0.iter().map(|f| base.join(f)).collect(), line(k)),
            None => (Vec::new(), 0),
        };
        JobDefaults {
            timing,
            keyrings,
            keyring_line,
        }
    }
}

/// A [`Timing`] from `base` and the keys given (`prefix` names their place in messages).
pub(crate) fn timing(
    base: Timing,
    prefix: &str,
    schedule: &Option<S<Text>>,
    jitter: &Option<S<Text>>,
    retry: &Option<S<Text>>,
    backoff: &Option<S<Text>>,
    p: &mut Problems,
) -> Timing {
    let mut t = base;
    if let Some(s) = schedule {
        match s.value.0.parse::<Schedule>() {
            Ok(v) => t.schedule = v,
            Err(e) => p.add(line(s), format!("{prefix}schedule"), e),
        }
    }
    if let Some(j) = jitter {
        match j.value.0.parse::<Jitter>() {
            Ok(v) => t.jitter = v,
            Err(e) => p.add(line(j), format!("{prefix}jitter"), e),
        }
    }
    for (v, key, into) in [
        (retry, "retry_interval", &mut t.retry_interval),
        (backoff, "max_backoff", &mut t.max_backoff),
    ] {
        if let Some(v) = v {
            match parse_duration(&v.value.0) {
                Ok(d) if !d.is_zero() => *into = d,
                Ok(_) => p.add(line(v), format!("{prefix}{key}"), "must be more than 0"),
                Err(e) => p.add(line(v), format!("{prefix}{key}"), e),
            }
        }
    }
    t
}

fn number(v: &S<Text>, key: &str, min: usize, p: &mut Problems) -> Option<usize> {
    match v.value.0.trim().parse::<usize>() {
        Ok(n) if n >= min => Some(n),
        _ => {
            p.add(
                line(v),
                key,
                format!("{:?}: expected a whole number of at least {min}", v.value.0),
            );
            None
        }
    }
}

/// Parses the filters (each refused with its own line).
pub(crate) fn filters(
    list: &Option<S<Vec<S<String>>>>,
    default: &[&str],
    key: &str,
    p: &mut Problems,
) -> Vec<String> {
    match list {
        None => default.iter().map(|s| s.to_string()).collect(),
        Some(l) => {
            for f in &l.value {
                if let Err(e) = FilterSet::parse(&[&f.value]) {
                    p.add(line(f), key, e.to_string());
                }
            }
            l.value.iter().map(|f| f.value.clone()).collect()
        }
    }
}

fn native_job(
    i: usize,
    raw: &S<raw::Job>,
    defaults: &JobDefaults,
    base: &Path,
    p: &mut Problems,
) -> Option<Job> {
    let at = line(raw);
    let j = &raw.value;
    let key = |k: &str| format!("jobs[{i}].{k}");
    let before = p.0.len();
    let Some(source) = &j.source else {
        p.add(
            at,
            key("source"),
            "is required: the mirror URL or directory to sync from",
        );
        return None;
    };
    let name = match &j.name {
        Some(n) if !n.value.0.trim().is_empty() => n.value.0.trim().to_string(),
        Some(n) => {
            p.add(line(n), key("name"), "is empty");
            String::new()
        }
        None => format!("job{}", i + 1),
    };
    let timing = timing(
        defaults.timing,
        &key(""),
        &j.schedule,
        &j.jitter,
        &j.retry_interval,
        &j.max_backoff,
        p,
    );
    let is_glance = j.glance.is_some();
    let target = match (&j.glance, &j.mirror) {
        (Some(g), None) => glance_target(&g.value, line(g), &key("glance."), base, p),
        (None, Some(m)) => mirror_target(&m.value, line(m), &key("mirror."), base, p),
        (Some(g), Some(_)) => {
            p.add(
                line(g),
                key("glance"),
                "a job has one target: glance or mirror, not both",
            );
            None
        }
        (None, None) => {
            p.add(
                at,
                key("glance"),
                "a job needs a target: `glance:` or `mirror:`",
            );
            None
        }
    };
    let default_filters: &[&str] = if is_glance {
        &DEFAULT_GLANCE_FILTERS
    } else {
        &[]
    };
    let filters = filters(&j.item_filters, default_filters, &key("item_filters"), p);
    let max = j.max.as_ref().and_then(|m| number(m, &key("max"), 1, p));
    let keep = j.keep.as_ref().is_some_and(|k| k.value);
    if keep && max.is_none() {
        if let Some(k) = &j.keep {
            p.add(line(k), key("keep"), "needs max");
        }
    }
    let parallel = match &j.parallel {
        Some(v) => number(v, &key("parallel"), 1, p).unwrap_or(1),
        None if is_glance => 2,
        None => 4,
    };
    let stale_after_days = match &j.stale_after {
        Some(v) => number(v, &key("stale_after"), 0, p).unwrap_or(30) as u64,
        None => 30,
    };
    let max_decompressed_size_mib = match &j.max_decompressed_size {
        Some(v) => number(v, &key("max_decompressed_size"), 1, p).unwrap_or(1) as u64,
        None => DEFAULT_MAX_DECOMPRESSED_MIB,
    };
    let (keyrings, keyring_line, keyring_key) = match &j.keyring {
        Some(k) => (
            k.value.0.iter().map(|f| base.join(f)).collect(),
            line(k),
            key("keyring"),
        ),
        None if defaults.keyring_line > 0 => (
            defaults.keyrings.clone(),
            defaults.keyring_line,
            "keyring".to_string(),
        ),
        None => (Vec::new(), at, key("keyring")),
    };
    let spec = JobSpec {
        name,
        line: at,
        enabled: j.enabled.as_ref().is_none_or(|e| e.value),
        origin: Origin::Jobs,
        timing,
        source: source.value.clone(),
        path: j.path.as_ref().map(|p| p.value.clone()),
        mirrors: j
            .mirrors
            .as_ref()
            .map(|m| m.value.0.clone())
            .unwrap_or_default(),
        verify: !j.no_verify.as_ref().is_some_and(|v| v.value),
        keyrings,
        inline_keyring: None,
        filters,
        max,
        keep,
        parallel,
        all_checksums: j.all_checksums.as_ref().is_some_and(|v| v.value),
        allow_rollback: j.allow_rollback.as_ref().is_some_and(|v| v.value),
        stale_after_days,
        verify_existing: j.verify_existing.as_ref().is_some_and(|v| v.value),
        max_decompressed_size_mib,
        target: target?,
    };
    if p.0.len() > before {
        return None;
    }
    let keyring_at = if keyring_line > 0 { keyring_line } else { at };
    resolve(spec, keyring_at, &keyring_key, p)
}

fn glance_target(
    g: &raw::Glance,
    at: usize,
    prefix: &str,
    base: &Path,
    p: &mut Problems,
) -> Option<TargetSpec> {
    let key = |k: &str| format!("{prefix}{k}");
    let before = p.0.len();
    let cloud_name = match &g.cloud_name {
        Some(c) => c.value.clone(),
        None => {
            p.add(at, key("cloud_name"), "is required (the index's cloudname)");
            String::new()
        }
    };
    let content_id = match &g.content_id {
        Some(c) => {
            if let Err(e) = glance_target::content_id_for(&c.value, "region") {
                p.add(line(c), key("content_id"), e);
            }
            c.value.clone()
        }
        None => {
            p.add(
                at,
                key("content_id"),
                "is required (may hold the region as {region} or %(region)s)",
            );
            String::new()
        }
    };
    let custom_properties = g
        .custom_properties
        .as_ref()
        .map(|c| custom_properties(c, &key("custom_properties"), p))
        .unwrap_or_default();
    let visibility = match &g.visibility {
        Some(v) => check_visibility(&v.value, line(v), &key("visibility"), p),
        None => "public".into(),
    };
    let output = match (&g.output_dir, &g.output_swift) {
        (Some(d), None) => Some(ImageIdsSpec::Directory(base.join(&d.value))),
        (None, Some(s)) => {
            if s.value.trim_matches('/').is_empty() {
                p.add(
                    line(s),
                    key("output_swift"),
                    "needs CONTAINER/PREFIX, e.g. simplestreams/data/",
                );
            }
            Some(ImageIdsSpec::Swift(s.value.clone()))
        }
        (Some(d), Some(_)) => {
            p.add(
                line(d),
                key("output_dir"),
                "give output_dir or output_swift, not both",
            );
            None
        }
        (None, None) => None,
    };
    let register = g.register_product_streams.as_ref().is_some_and(|v| v.value);
    let product_streams_url = g.product_streams_url.as_ref().map(|u| u.value.clone());
    if register && product_streams_url.is_none() && !matches!(output, Some(ImageIdsSpec::Swift(_)))
    {
        if let Some(r) = &g.register_product_streams {
            p.add(
                line(r),
                key("register_product_streams"),
                "needs the stream's URL: publish with output_swift, or give product_streams_url",
            );
        }
    }
    let modify_hook = match &g.modify_hook {
        Some(h) => {
            let words: Vec<String> = h.value.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                p.add(line(h), key("modify_hook"), "is empty");
            }
            Some(words)
        }
        None => None,
    };
    if p.0.len() > before {
        return None;
    }
    Some(TargetSpec::Glance(GlanceSpec {
        cloud_name,
        content_id,
        regions: g
            .regions
            .as_ref()
            .map(|r| r.value.0.clone())
            .unwrap_or_default(),
        name_prefix: g
            .name_prefix
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_default(),
        custom_properties,
        hypervisor_mapping: g.hypervisor_mapping.as_ref().is_some_and(|v| v.value),
        visibility,
        set_latest_property: g.set_latest_property.as_ref().is_some_and(|v| v.value),
        image_import_conversion: g.image_import_conversion.as_ref().is_some_and(|v| v.value),
        modify_hook,
        output,
        register_product_streams: register,
        product_streams_url,
    }))
}

pub(crate) fn custom_properties(
    c: &S<raw::Properties>,
    key: &str,
    p: &mut Problems,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for word in &c.value.0 {
        match parse_custom_property(word) {
            Ok(kv) => out.push(kv),
            Err(e) => p.add(line(c), key, e),
        }
    }
    out
}

pub(crate) fn check_visibility(v: &str, at: usize, key: &str, p: &mut Problems) -> String {
    let v = v.trim().to_ascii_lowercase();
    if !["public", "private", "community", "shared"].contains(&v.as_str()) {
        p.add(
            at,
            key,
            format!("{v:?}: one of public, private, community, shared"),
        );
    }
    v
}

fn mirror_target(
    m: &raw::Mirror,
    at: usize,
    prefix: &str,
    base: &Path,
    p: &mut Problems,
) -> Option<TargetSpec> {
    let key = |k: &str| format!("{prefix}{k}");
    let Some(target) = &m.target else {
        p.add(
            at,
            key("target"),
            "is required: a directory, swift://CONTAINER/PREFIX or s3://BUCKET/PREFIX",
        );
        return None;
    };
    let decompress = m.decompress.as_ref().is_some_and(|v| v.value);
    let filtered = decompress || m.filtered_metadata.as_ref().is_some_and(|v| v.value);
    if let Some(k) = &m.signing_key {
        if !filtered {
            p.add(
                line(k),
                key("signing_key"),
                "needs filtered_metadata: true (or decompress: true)",
            );
            return None;
        }
    }
    if let Some(s) = &m.segment_size {
        if s.value == 0 {
            p.add(line(s), key("segment_size"), "must be at least 1 (MiB)");
            return None;
        }
    }
    if target.value.starts_with("http://") || target.value.starts_with("https://") {
        p.add(
            line(target),
            key("target"),
            "an HTTP mirror can be read, not written; give a directory, swift:// or s3://",
        );
        return None;
    }
    let location = if target.value.contains("://") {
        target.value.clone()
    } else {
        base.join(&target.value).display().to_string()
    };
    Some(TargetSpec::Mirror(MirrorSpec {
        target: location,
        filtered_metadata: filtered,
        decompress,
        signing_key: m.signing_key.as_ref().map(|k| base.join(&k.value)),
        item_download: m.item_download.as_ref().is_none_or(|v| v.value),
        public: m.public.as_ref().is_some_and(|v| v.value),
        fsync: m.fsync.as_ref().is_none_or(|v| v.value),
        segment_size_mib: m.segment_size.as_ref().map(|s| s.value),
    }))
}

/// Completes a job: the entry, the parsed filters, the keyring (loaded now: one that cannot
/// be read refuses the file, at `keyring_line`, naming `keyring_key`), the signing key.
pub(crate) fn resolve(
    spec: JobSpec,
    keyring_line: usize,
    keyring_key: &str,
    p: &mut Problems,
) -> Option<Job> {
    let (root, entry) = split_entry(&spec.source, spec.path.as_deref());
    let filters = match FilterSet::parse(&spec.filters) {
        Ok(f) => f,
        Err(e) => {
            p.add(spec.line, "item_filters", e.to_string());
            return None;
        }
    };
    let explicit = !spec.keyrings.is_empty() || spec.inline_keyring.is_some();
    let signatures =
        SignaturePolicy::for_entry(&entry, spec.verify, explicit, || load_keyring(&spec));
    let signatures = match signatures {
        Ok(s) => s,
        Err(e) => {
            let hint = match (explicit, spec.origin) {
                (true, _) => "",
                (false, Origin::Jobs) => {
                    " (the default keyring, needed for a signed .sjson entry: give `keyring`, \
                     or `no_verify: true`)"
                }
                (false, Origin::Charm) => {
                    " (the charm's default keyring, needed for a signed .sjson path: give \
                     `custom_keyring` or `keyring_path`)"
                }
            };
            p.add(keyring_line, keyring_key, format!("{e}{hint}"));
            return None;
        }
    };
    let signing_key = match &spec.target {
        TargetSpec::Mirror(MirrorSpec {
            signing_key: Some(path),
            ..
        }) => match load_signing_key(path) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                p.add(spec.line, "mirror.signing_key", e);
                return None;
            }
        },
        _ => None,
    };
    Some(Job {
        entry,
        root,
        filters,
        signatures,
        signing_key,
        spec,
    })
}

fn load_keyring(spec: &JobSpec) -> Result<Keyring, String> {
    if let Some(bytes) = &spec.inline_keyring {
        let mut k = Keyring::from_bytes(bytes, "custom_keyring").map_err(|e| e.to_string())?;
        if !spec.keyrings.is_empty() {
            k.merge(load_keyrings(&spec.keyrings).map_err(|e| e.to_string())?);
        }
        return Ok(k);
    }
    let paths = if spec.keyrings.is_empty() {
        vec![PathBuf::from(DEFAULT_KEYRING)]
    } else {
        spec.keyrings.clone()
    };
    load_keyrings(&paths).map_err(|e| format!("cannot read the keyring: {e}"))
}

fn load_signing_key(path: &Path) -> Result<SigningKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let passphrase = std::env::var("SSTREAM_SIGNING_PASSPHRASE").ok();
    SigningKey::from_armored(&bytes, passphrase.as_deref(), &path.display().to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
