//! The glance-simplestreams-sync charm's keys, translated into jobs as its sync script
//! (`files/glance_simplestreams_sync.py`, `do_sync`) builds one `sstream-mirror-glance`
//! command per `mirror_list` entry:
//!
//! ```text
//! sstream-mirror-glance -vv --keep --max MAX --content-id TEMPLATE.format(region=REGION)
//!     --cloud-name CLOUD_NAME --path PATH --name-prefix NAME_PREFIX --keyring KEYRING
//!     [--output-swift simplestreams/data/ | --output-dir TMP] [--hypervisor-mapping]
//!     [--custom-property K=V ...] [--image-import-conversion] [--set-latest-property]
//!     [--visibility V] URL ITEM_FILTERS...
//! ```
//!
//! No `--region` is passed (every region with an image endpoint is synced); with `use_swift`
//! the charm also has Keystone point the `product-streams` endpoint at the Swift data, which is
//! `register_product_streams` here. Without `use_swift` the charm writes the image-ids into a
//! temporary directory it deletes: nothing is published here either.

use std::path::PathBuf;

use super::raw::{self, CharmMirror, MirrorList, Text, S};
use super::{
    check_visibility, custom_properties, decode_base64, decode_pem, filters, line, resolve,
    yaml_problem, GlanceSpec, ImageIdsSpec, Job, JobDefaults, JobSpec, Origin, Problem, Problems,
    Settings, TargetSpec, DEFAULT_GLANCE_FILTERS,
};
use glance_target::Interface;

/// The charm's default `mirror_list`, exactly as its config.yaml has it (a YAML string).
pub const DEFAULT_MIRROR_LIST: &str = "[{url: 'http://cloud-images.ubuntu.com/releases/', \
     name_prefix: 'ubuntu:released', path: 'streams/v1/index.sjson', max: 1, \
     item_filters: ['release~(trusty|xenial|bionic|focal|jammy)', 'arch~(x86_64|amd64)', \
     'ftype~(disk1.img|disk.img)']}]";

/// Where the charm publishes the image-ids stream in Swift (`SWIFT_DATA_DIR + "/"`).
pub const SWIFT_DATA_DIR: &str = "simplestreams/data/";

fn text(v: &Option<S<Text>>, default: &str) -> String {
    v.as_ref()
        .map(|t| t.value.0.clone())
        .unwrap_or_else(|| default.to_string())
}

/// The jobs of the charm's keys in `top`; adjusts `settings` (`ssl_ca`, `user_agent`,
/// `use-internal-endpoints`) and says in `notes` what has no effect here.
pub(super) fn jobs(
    top: &raw::File,
    defaults: &JobDefaults,
    settings: &mut Settings,
    p: &mut Problems,
    notes: &mut Vec<String>,
) -> Vec<Job> {
    for (present, key, why) in [
        (
            top.nagios_context.is_some(),
            "nagios_context",
            "use `sstream-sync status --check` from NRPE",
        ),
        (
            top.nagios_servicegroups.is_some(),
            "nagios_servicegroups",
            "use `sstream-sync status --check` from NRPE",
        ),
        (
            top.source.is_some(),
            "source",
            "deprecated in the charm too",
        ),
        (top.key.is_some(), "key", "deprecated in the charm too"),
        (
            top.snap_channel.is_some(),
            "snap-channel",
            "no snap is involved",
        ),
        (
            top.ignore_proxy_for_object_store.is_some(),
            "ignore_proxy_for_object_store",
            "set NO_PROXY in the service's environment",
        ),
        (
            top.modify_hook_scripts.is_some(),
            "modify_hook_scripts",
            "the charm's script passes no --modify-hook either",
        ),
    ] {
        if present {
            notes.push(format!("the charm's `{key}` has no effect here ({why})"));
        }
    }
    let enabled = top.run.as_ref().is_none_or(|r| r.value);
    if !enabled {
        notes.push(
            "`run: false`: the mirror_list jobs are not scheduled (as the charm installs no \
             cron job); `sstream-sync --once` skips them too"
                .into(),
        );
    }
    if let Some(ca) = &top.ssl_ca {
        if let Some(pem) = decode_pem(&ca.value.0, line(ca), "ssl_ca", p) {
            settings.openstack.ca_pem.get_or_insert(pem.clone());
            settings.http.ca_pem.get_or_insert(pem);
        }
    }
    if let Some(ua) = &top.user_agent {
        settings.http.user_agent.get_or_insert(ua.value.0.clone());
    }
    if top.use_internal_endpoints.as_ref().is_some_and(|v| v.value) {
        settings
            .openstack
            .interface
            .get_or_insert(Interface::Internal);
    }
    let region = text(&top.region, "RegionOne");
    let content_id = {
        let template = text(&top.content_id_template, "auto.sync");
        let at = top.content_id_template.as_ref().map_or(0, line);
        match format_region(&template, &region)
            .and_then(|cid| glance_target::content_id_for(&cid, "r").map(|_| cid))
        {
            Ok(cid) => cid,
            Err(e) => {
                p.add(at, "content_id_template", e);
                String::new()
            }
        }
    };
    let visibility = match &top.visibility {
        Some(v) => check_visibility(&v.value.0, line(v), "visibility", p),
        None => "public".into(),
    };
    let custom_properties = top
        .custom_properties
        .as_ref()
        .map(|c| custom_properties(c, "custom_properties", p))
        .unwrap_or_default();
    let mut timing = defaults.timing;
    if let Some(f) = &top.frequency {
        match f.value.0.parse::<crate::schedule::Schedule>() {
            Ok(s) => timing.schedule = s,
            Err(_) => p.add(
                line(f),
                "frequency",
                format!(
                    "{:?}: one of hourly, daily, weekly (or an interval: 6h)",
                    f.value.0
                ),
            ),
        }
    }
    let use_swift = top.use_swift.as_ref().is_none_or(|v| v.value);
    let glance = GlanceSpec {
        cloud_name: text(&top.cloud_name, "glance-simplestreams-sync-openstack"),
        content_id,
        regions: Vec::new(),
        name_prefix: text(&top.name_prefix, "auto-sync/"),
        custom_properties,
        hypervisor_mapping: top.hypervisor_mapping.as_ref().is_some_and(|v| v.value),
        visibility,
        set_latest_property: top.set_latest_property.as_ref().is_some_and(|v| v.value),
        image_import_conversion: top
            .image_import_conversion
            .as_ref()
            .is_some_and(|v| v.value),
        modify_hook: None,
        output: use_swift.then(|| ImageIdsSpec::Swift(SWIFT_DATA_DIR.into())),
        register_product_streams: use_swift,
        product_streams_url: None,
    };
    let inline_keyring = top.custom_keyring.as_ref().and_then(|k| {
        decode_base64(&k.value.0)
            .map_err(|e| p.add(line(k), "custom_keyring", e))
            .ok()
    });
    let keyring_path = top
        .keyring_path
        .as_ref()
        .filter(|_| inline_keyring.is_none())
        .map(|k| PathBuf::from(&k.value.0));

    let (list_line, entries, from_text) = mirror_entries(top, p);
    let mut out = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = if from_text { list_line } else { line(entry) };
        let at_of = |l: usize| if from_text { list_line } else { l };
        let key = |k: &str| format!("mirror_list[{i}].{k}");
        let e = &entry.value;
        let before = p.0.len();
        let Some(url) = &e.url else {
            p.add(at, key("url"), "is required");
            continue;
        };
        let max = e
            .max
            .as_ref()
            .and_then(|m| match m.value.0.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    p.add(
                        at_of(line(m)),
                        key("max"),
                        format!("{:?}: expected a whole number of at least 1", m.value.0),
                    );
                    None
                }
            });
        let mut item_filters = {
            let mut scratch = Problems::default();
            let f = filters(
                &e.item_filters,
                &DEFAULT_GLANCE_FILTERS,
                &key("item_filters"),
                &mut scratch,
            );
            for mut problem in scratch.0 {
                problem.line = at_of(problem.line);
                p.0.push(problem);
            }
            f
        };
        if item_filters.is_empty() {
            // The charm then passes no filter: sstream-mirror-glance's defaults apply.
            item_filters = DEFAULT_GLANCE_FILTERS
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        let mut name = e
            .name_prefix
            .as_ref()
            .map(|n| n.value.0.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| name_of_url(&url.value));
        if names.contains(&name) {
            let mut n = 2;
            while names.contains(&format!("{name}-{n}")) {
                n += 1;
            }
            name = format!("{name}-{n}");
        }
        names.push(name.clone());
        if p.0.len() > before {
            continue;
        }
        let spec = JobSpec {
            name,
            line: at,
            enabled,
            origin: Origin::Charm,
            timing,
            source: url.value.clone(),
            path: e.path.as_ref().map(|p| p.value.clone()),
            mirrors: Vec::new(),
            verify: true,
            keyrings: keyring_path.iter().cloned().collect(),
            inline_keyring: inline_keyring.clone(),
            filters: item_filters,
            max,
            keep: max.is_some(),
            parallel: 2,
            all_checksums: false,
            allow_rollback: false,
            stale_after_days: 30,
            verify_existing: false,
            max_decompressed_size_mib: super::DEFAULT_MAX_DECOMPRESSED_MIB,
            target: TargetSpec::Glance(glance.clone()),
        };
        let (keyring_line, keyring_key) = if let Some(k) = &top.custom_keyring {
            (line(k), "custom_keyring".to_string())
        } else if let Some(k) = &top.keyring_path {
            (line(k), "keyring_path".to_string())
        } else {
            (e.path.as_ref().map_or(at, |p| at_of(line(p))), key("path"))
        };
        if let Some(job) = resolve(spec, keyring_line, &keyring_key, p) {
            out.push(job);
        }
    }
    out
}

/// The entries of `mirror_list` (the charm's default when absent), the line of the key, and
/// whether they come from YAML text (whose lines are not the file's).
fn mirror_entries(top: &raw::File, p: &mut Problems) -> (usize, Vec<S<CharmMirror>>, bool) {
    let (at, text) = match &top.mirror_list {
        None => (0, DEFAULT_MIRROR_LIST.to_string()),
        Some(ml) => match &ml.value {
            MirrorList::Text(t) => (line(ml), t.clone()),
            MirrorList::List(list) => return (line(ml), list.clone(), false),
        },
    };
    if text.trim().is_empty() {
        return (at, Vec::new(), true);
    }
    match serde_saphyr::from_str::<Vec<S<CharmMirror>>>(&text) {
        Ok(list) => (at, list, true),
        Err(e) => {
            let inner = yaml_problem(&e, &text, 0);
            p.0.push(Problem {
                line: at,
                key: Some(match inner.key {
                    Some(k) => format!("mirror_list: {k}"),
                    None => "mirror_list".into(),
                }),
                message: if inner.line > 0 {
                    format!("{} (line {} of its YAML text)", inner.message, inner.line)
                } else {
                    inner.message
                },
            });
            (at, Vec::new(), true)
        }
    }
}

/// A job name from a mirror URL: host and path (`cloud-images.ubuntu.com/releases`).
fn name_of_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    let rest = match rest.find("/streams/v1/") {
        Some(i) => &rest[..i],
        None => rest,
    };
    if rest.is_empty() {
        "mirror".into()
    } else {
        rest.to_string()
    }
}

/// Python's `template.format(region=region)`, as the charm expands `content_id_template`:
/// `{region}` replaced, `{{` and `}}` unescaped, any other field refused (the charm's script
/// fails on it).
pub(crate) fn format_region(template: &str, region: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return Err(format!("{template:?}: a {{ is not closed")),
                    }
                }
                if field == "region" {
                    out.push_str(region);
                } else {
                    return Err(format!(
                        "{template:?}: only {{region}} can be substituted, not {{{field}}}"
                    ));
                }
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(format!("{template:?}: a single }} (write }}}} for one)")),
            c => out.push(c),
        }
    }
    Ok(out)
}
