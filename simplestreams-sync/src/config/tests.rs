use std::time::Duration;

use super::*;
use crate::schedule::Schedule;

const UBUNTU_KEYRING: &str = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";

/// The Ubuntu cloud image key of the test data, standing in for the system keyring.
fn keyring() -> String {
    simplestreams_testutil::fixture("keys/ubuntu-cloud-image-builder-476CF100.pub.asc")
        .display()
        .to_string()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn refused(text: &str) -> String {
    match Config::parse(text, "sync.yaml") {
        Ok(c) => panic!(
            "accepted: {:?}",
            c.jobs.iter().map(|j| &j.spec).collect::<Vec<_>>()
        ),
        Err(e) => e.to_string(),
    }
}

fn glance(job: &Job) -> &GlanceSpec {
    match &job.spec.target {
        TargetSpec::Glance(g) => g,
        other => panic!("not a Glance job: {other:?}"),
    }
}

#[test]
fn the_complete_example_parses_with_every_key() {
    let text =
        include_str!("../../../contrib/sstream-sync.yaml").replace(UBUNTU_KEYRING, &keyring());
    let c = Config::parse(&text, "contrib/sstream-sync.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.jobs.len(), 2);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    let s = &c.settings;
    assert_eq!(s.http.retries, 5);
    assert_eq!(s.http.connect_timeout, Duration::from_secs(10));
    assert_eq!(s.http.max_metadata_size, 256 << 20);

    let u = &c.jobs[0];
    assert_eq!(u.name(), "ubuntu-released");
    assert_eq!(u.root, "https://cloud-images.ubuntu.com/releases/");
    assert_eq!(u.entry, "streams/v1/index.sjson");
    assert_eq!(u.spec.max, Some(2));
    assert!(u.spec.keep);
    assert_eq!(u.spec.filters.len(), 3);
    assert_eq!(
        u.spec.timing.schedule,
        Schedule::Every(Duration::from_secs(6 * 3600))
    );
    assert_eq!(u.spec.timing.retry_interval, Duration::from_secs(60));
    assert_eq!(u.spec.timing.max_backoff, Duration::from_secs(3600));
    let g = glance(u);
    assert_eq!(g.cloud_name, "mycloud");
    assert_eq!(g.content_id, "auto.sync:{region}");
    assert_eq!(
        g.custom_properties,
        [("hw_firmware_type".to_string(), "uefi".to_string())]
    );
    assert!(g.set_latest_property && g.register_product_streams);
    assert_eq!(
        g.output,
        Some(ImageIdsSpec::Swift("simplestreams/data/".into()))
    );
    assert_eq!(u.exclusive_key(), "glance:auto.sync:{region}");

    let m = &c.jobs[1];
    assert_eq!(m.kind(), "mirror");
    assert_eq!(m.entry, "streams/v1/index.json");
    assert_eq!(m.spec.timing.schedule, Schedule::Weekly);
    assert!(!m.spec.verify);
    match &m.spec.target {
        TargetSpec::Mirror(t) => {
            assert_eq!(t.target, "/srv/mirror/cirros");
            assert!(t.fsync && t.item_download && !t.filtered_metadata && !t.decompress);
            assert_eq!(t.segment_size_mib, Some(16));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_charms_default_mirror_list_as_a_yaml_string_becomes_its_command() {
    let text = format!(
        "{}\ncustom_keyring: {}\n",
        include_str!("../../../contrib/sstream-sync.charm.yaml"),
        base64(&std::fs::read(keyring()).expect("read the key"))
    );
    let c = Config::parse(&text, "charm.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.jobs.len(), 1);
    let j = &c.jobs[0];
    // sstream-mirror-glance --keep --max 1 --content-id auto.sync --cloud-name
    //   glance-simplestreams-sync-openstack --path streams/v1/index.sjson --name-prefix
    //   auto-sync/ --keyring K --output-swift simplestreams/data/ URL FILTERS...
    assert_eq!(j.name(), "ubuntu:released");
    assert_eq!(j.spec.origin, Origin::Charm);
    assert_eq!(j.spec.source, "http://cloud-images.ubuntu.com/releases/");
    assert_eq!(j.entry, "streams/v1/index.sjson");
    assert_eq!((j.spec.max, j.spec.keep), (Some(1), true));
    assert_eq!(
        j.spec.filters,
        [
            "release~(trusty|xenial|bionic|focal|jammy)",
            "arch~(x86_64|amd64)",
            "ftype~(disk1.img|disk.img)"
        ]
    );
    assert_eq!(j.spec.timing.schedule, Schedule::Daily);
    assert!(j.spec.enabled && j.spec.verify && j.spec.inline_keyring.is_some());
    let g = glance(j);
    assert_eq!(g.content_id, "auto.sync");
    assert_eq!(g.cloud_name, "glance-simplestreams-sync-openstack");
    assert_eq!(g.name_prefix, "auto-sync/");
    assert!(g.regions.is_empty(), "the charm passes no --region");
    assert_eq!(
        g.output,
        Some(ImageIdsSpec::Swift("simplestreams/data/".into()))
    );
    assert!(g.register_product_streams);
    assert_eq!(g.visibility, "public");
    assert!(!g.hypervisor_mapping && !g.set_latest_property && !g.image_import_conversion);
    assert!(g.custom_properties.is_empty());
}

#[test]
fn charm_keys_give_the_charms_flags() {
    let k = keyring();
    let text = format!(
        r#"
mirror_list:
  - {{url: 'http://m.example/a/', path: 'streams/v1/index.json', max: 3,
     item_filters: ['arch=amd64']}}
  - url: http://m.example/b/streams/v1/index.sjson
    max: '2'
    item_filters: []
content_id_template: "com.example.{{region}}:img"
region: RegionTwo
cloud_name: c1
use_swift: false
custom_properties: "a=b=c os_admin_user=root"
hypervisor_mapping: true
set_latest_property: true
image_import_conversion: true
visibility: private
frequency: hourly
keyring_path: {k}
user_agent: ua/1
use-internal-endpoints: true
nagios_context: juju
snap-channel: stable
"#
    );
    let c = Config::parse(&text, "charm.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.jobs.len(), 2);
    let (a, b) = (&c.jobs[0], &c.jobs[1]);
    assert_eq!(a.name(), "m.example/a");
    assert_eq!(b.name(), "m.example/b");
    assert_eq!((a.spec.max, b.spec.max), (Some(3), Some(2)));
    assert_eq!(a.entry, "streams/v1/index.json");
    assert_eq!(
        (b.root.as_str(), b.entry.as_str()),
        ("http://m.example/b/", "streams/v1/index.sjson")
    );
    // An empty item_filters: the charm passes none, so sstream-mirror-glance's defaults.
    assert_eq!(b.spec.filters, DEFAULT_GLANCE_FILTERS);
    let g = glance(a);
    assert_eq!(g.content_id, "com.example.RegionTwo:img");
    assert_eq!(g.cloud_name, "c1");
    assert_eq!(g.output, None, "use_swift: false publishes nothing");
    assert!(!g.register_product_streams);
    assert_eq!(
        g.custom_properties,
        [
            ("a".to_string(), "b=c".to_string()),
            ("os_admin_user".to_string(), "root".to_string())
        ]
    );
    assert!(g.hypervisor_mapping && g.set_latest_property && g.image_import_conversion);
    assert_eq!(g.visibility, "private");
    assert_eq!(a.spec.timing.schedule, Schedule::Hourly);
    assert_eq!(a.spec.keyrings, [PathBuf::from(&k)]);
    // Both write the same content id: they take turns, as the charm runs them in order.
    assert_eq!(a.exclusive_key(), b.exclusive_key());
    assert_eq!(c.settings.http.user_agent.as_deref(), Some("ua/1"));
    assert_eq!(c.settings.openstack.interface, Some(Interface::Internal));
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
    assert!(c.notes[0].contains("nagios_context"), "{:?}", c.notes);
}

#[test]
fn the_juju_deploy_config_form_and_run_false_are_understood() {
    let text = format!(
        "glance-simplestreams-sync:\n  mirror_list: \"[{{url: 'http://m/', path: 'streams/v1/index.json', max: 1, item_filters: []}}]\"\n  run: false\n  keyring_path: {}\n",
        keyring()
    );
    let c = Config::parse(&text, "deploy.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.jobs.len(), 1);
    assert!(!c.jobs[0].spec.enabled);
    assert!(
        c.notes.iter().any(|n| n.contains("run: false")),
        "{:?}",
        c.notes
    );
}

#[test]
fn charm_content_id_template_is_python_format_with_region() {
    assert_eq!(
        charm::format_region("auto.sync", "R").as_deref(),
        Ok("auto.sync")
    );
    assert_eq!(
        charm::format_region("a.{region}:b", "R1").as_deref(),
        Ok("a.R1:b")
    );
    assert_eq!(
        charm::format_region("{{x}}-{region}", "R").as_deref(),
        Ok("{x}-R")
    );
    assert!(charm::format_region("{cloud}", "R").is_err());
    assert!(charm::format_region("a}b", "R").is_err());
    // %(region)s passes through, for sstream-mirror-glance to expand per region.
    assert_eq!(
        charm::format_region("a:%(region)s", "R").as_deref(),
        Ok("a:%(region)s")
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let e =
        refused("jobs:\n  - name: a\n    source: /m\n    mirror: {target: /t}\n    maximum: 3\n");
    assert!(
        e.starts_with("sync.yaml:5: maximum: unknown key; expected one of"),
        "{e}"
    );
    let e = refused("schedule: daily\nbogus: 1\n");
    assert!(e.starts_with("sync.yaml:2: bogus: unknown key"), "{e}");
    let e = refused(
        "jobs:\n  - source: /m\n    glance:\n      cloud_name: c\n      content_id: x\n      regoin: [R]\n",
    );
    assert!(e.starts_with("sync.yaml:6: regoin: unknown key"), "{e}");
    // In the charm's mirror_list entries too, given as a list or as YAML text.
    let e = refused("mirror_list:\n  - url: http://m/\n    maxx: 1\n");
    assert!(e.starts_with("sync.yaml:3: maxx: unknown key"), "{e}");
    let e = refused("mirror_list: \"[{url: 'http://m/', maxx: 1}]\"\n");
    assert!(
        e.starts_with("sync.yaml:1: mirror_list: maxx: unknown key")
            && e.contains("(line 1 of its YAML text)"),
        "{e}"
    );
}

#[test]
fn a_bad_filter_is_refused_with_its_line_and_key() {
    let e = refused(
        "jobs:\n  - name: a\n    source: /m\n    item_filters:\n      - arch=amd64\n      - release~(noble\n    mirror: {target: /t}\n",
    );
    assert!(e.starts_with("sync.yaml:6: jobs[0].item_filters: "), "{e}");
    assert!(e.contains("release~(noble"), "{e}");
    let e = refused(
        "mirror_list:\n  - url: http://m/\n    path: streams/v1/index.json\n    item_filters: ['arch']\n",
    );
    assert!(
        e.starts_with("sync.yaml:4: mirror_list[0].item_filters: "),
        "{e}"
    );
}

#[test]
fn a_missing_keyring_is_refused_with_its_line_and_key() {
    let e = refused(
        "keyring: /nonexistent/keyring.gpg\njobs:\n  - name: a\n    source: http://m/streams/v1/index.sjson\n    mirror: {target: /t}\n",
    );
    assert!(e.starts_with("sync.yaml:1: keyring: "), "{e}");
    assert!(e.contains("/nonexistent/keyring.gpg"), "{e}");
    let e = refused(
        "jobs:\n  - name: a\n    source: http://m/streams/v1/index.json\n    keyring: [/nonexistent/k.gpg]\n    mirror: {target: /t}\n",
    );
    assert!(e.starts_with("sync.yaml:4: jobs[0].keyring: "), "{e}");
    let e = refused("mirror_list:\n  - url: http://m/\n    max: 1\n    path: streams/v1/index.sjson\nkeyring_path: /nonexistent/k.gpg\n");
    assert!(e.starts_with("sync.yaml:5: keyring_path: "), "{e}");
    let e = refused("mirror_list: []\ncustom_keyring: '%%%'\n");
    assert!(
        e.starts_with("sync.yaml:2: custom_keyring: not base64"),
        "{e}"
    );
    // Without a keyring, a .json entry needs none; no_verify needs none either.
    let ok = "jobs:\n  - name: a\n    source: http://m/streams/v1/index.json\n    mirror: {target: /t}\n  - name: b\n    source: http://m/\n    no_verify: true\n    mirror: {target: /u}\n";
    assert!(Config::parse(ok, "ok.yaml").is_ok());
}

#[test]
fn wrong_values_are_refused_with_their_line_and_key() {
    let job = |extra: &str| {
        format!("jobs:\n  - name: a\n    source: /m\n    mirror: {{target: /t}}\n{extra}    no_verify: true\n")
    };
    for (extra, expected) in [
        ("    schedule: monthly\n", "sync.yaml:5: jobs[0].schedule: "),
        (
            "    retry_interval: soon\n",
            "sync.yaml:5: jobs[0].retry_interval: ",
        ),
        ("    jitter: 150%\n", "sync.yaml:5: jobs[0].jitter: "),
        ("    max: 0\n", "sync.yaml:5: jobs[0].max: "),
        ("    max: lots\n", "sync.yaml:5: jobs[0].max: "),
        ("    keep: true\n", "sync.yaml:5: jobs[0].keep: needs max"),
        ("    parallel: 0\n", "sync.yaml:5: jobs[0].parallel: "),
        (
            "    max_decompressed_size: 0\n",
            "sync.yaml:5: jobs[0].max_decompressed_size: ",
        ),
    ] {
        let e = refused(&job(extra));
        assert!(e.starts_with(expected), "{extra:?}: {e}");
    }
    let e = refused(
        "jobs:\n  - name: a\n    source: /m\n    glance: {cloud_name: c, content_id: 'x %s'}\n",
    );
    assert!(
        e.starts_with("sync.yaml:4: jobs[0].glance.content_id: "),
        "{e}"
    );
    let e = refused("jobs:\n  - name: a\n    source: /m\n    glance:\n      cloud_name: c\n      content_id: x\n      visibility: everyone\n");
    assert!(
        e.starts_with("sync.yaml:7: jobs[0].glance.visibility: "),
        "{e}"
    );
    let e = refused("jobs:\n  - name: a\n    source: /m\n    glance:\n      cloud_name: c\n      content_id: x\n      custom_properties: [owner=me, noequals]\n");
    assert!(
        e.starts_with("sync.yaml:7: jobs[0].glance.custom_properties: "),
        "{e}"
    );
    let e = refused("jobs:\n  - name: a\n    source: /m\n    glance: {content_id: x}\n");
    assert!(
        e.starts_with("sync.yaml:4: jobs[0].glance.cloud_name: is required"),
        "{e}"
    );
    let e = refused("jobs:\n  - name: a\n    source: /m\n");
    assert!(
        e.starts_with("sync.yaml:2: jobs[0].glance: a job needs a target"),
        "{e}"
    );
    let e = refused("jobs:\n  - name: a\n    mirror: {target: /t}\n");
    assert!(
        e.starts_with("sync.yaml:2: jobs[0].source: is required"),
        "{e}"
    );
    let e = refused(
        "jobs:\n  - name: a\n    source: /m\n    enabled: maybe\n    mirror: {target: /t}\n",
    );
    assert!(e.starts_with("sync.yaml:4: enabled: "), "{e}");
    let e = refused(
        "jobs:\n  - name: b\n    source: /m/streams/v1/index.sjson\n    mirror: {target: /t}\n",
    );
    assert!(
        e.starts_with("sync.yaml:2: jobs[0].keyring: ") && e.contains("the default keyring"),
        "{e}"
    );
    let e = refused("jobs:\n  - name: a\n    source: /m\n    mirror: {target: 'http://x/'}\n");
    assert!(e.starts_with("sync.yaml:4: jobs[0].mirror.target: "), "{e}");
    let e = refused("jobs:\n  - {name: a, source: /m, no_verify: true, mirror: {target: /t}}\n  - {name: a, source: /n, no_verify: true, mirror: {target: /u}}\n");
    assert!(
        e.starts_with("sync.yaml:3: name: \"a\": another job has this name"),
        "{e}"
    );
    let e = refused("listen: localhost\njobs: []\n");
    assert!(e.starts_with("sync.yaml:1: listen: "), "{e}");
    let e = refused("frequency: monthly\nmirror_list: []\n");
    assert!(e.starts_with("sync.yaml:1: frequency: "), "{e}");
    let e = refused("content_id_template: '{cloud}'\nmirror_list: []\n");
    assert!(e.starts_with("sync.yaml:1: content_id_template: "), "{e}");
    let e = refused("ssl_ca: bm90IGEgY2VydA==\nmirror_list: []\n");
    assert!(e.starts_with("sync.yaml:1: ssl_ca: "), "{e}");
    let e = refused("jobs: [\n");
    assert!(e.starts_with("sync.yaml:1: "), "{e}");
    let e = refused("");
    assert!(e.contains("no jobs"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = refused(
        "jobs:\n  - name: a\n    source: /m\n    schedule: never\n    mirror: {target: /t}\n  - name: b\n    source: /m\n    max: x\n    mirror: {target: /u}\n",
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(lines[0].starts_with("sync.yaml:4: jobs[0].schedule"), "{e}");
    assert!(lines[1].starts_with("sync.yaml:8: jobs[1].max"), "{e}");
}

#[test]
fn jobs_take_the_global_timing_unless_they_give_their_own() {
    let c = Config::parse(
        "schedule: 30m\nretry_interval: 2s\njitter: 0\njobs:\n  - {name: a, source: /m, no_verify: true, mirror: {target: /t}}\n  - {name: b, source: /m, no_verify: true, schedule: 500ms, mirror: {target: /u}}\n",
        "t.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (&c.jobs[0].spec.timing, &c.jobs[1].spec.timing);
    assert_eq!(a.schedule.interval(), Duration::from_secs(1800));
    assert_eq!(a.retry_interval, Duration::from_secs(2));
    assert_eq!(b.schedule.interval(), Duration::from_millis(500));
    assert_eq!(b.retry_interval, Duration::from_secs(2));
    assert_eq!(b.max_jitter(), Duration::ZERO);
}

#[test]
fn decompress_implies_filtered_metadata_and_takes_a_signing_key_and_a_limit() {
    let key = simplestreams_testutil::fixture("signed-cases/valid-key/test-signing-key.sec.asc");
    let text = format!(
        "jobs:\n  - name: a\n    source: /m\n    no_verify: true\n    max_decompressed_size: 64\n    \
         mirror: {{target: /t, decompress: true, signing_key: {}}}\n",
        key.display()
    );
    let c = Config::parse(&text, "sync.yaml").unwrap_or_else(|e| panic!("{e}"));
    let j = &c.jobs[0];
    assert_eq!(j.spec.max_decompressed_size_mib, 64);
    match &j.spec.target {
        TargetSpec::Mirror(m) => assert!(m.decompress && m.filtered_metadata, "{m:?}"),
        other => panic!("{other:?}"),
    }
    let plain = Config::parse(
        "jobs:\n  - name: a\n    source: /m\n    no_verify: true\n    mirror: {target: /t}\n",
        "sync.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plain.jobs[0].spec.max_decompressed_size_mib,
        DEFAULT_MAX_DECOMPRESSED_MIB
    );
}
