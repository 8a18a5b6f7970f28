//! What an image of ours looks like in Glance (docs/format.md, "Glance property contract"): its name, formats and properties,
//! derived from the flattened fields of a stream item exactly as the reference tool derives them,
//! so that either tool recognises the other's images.

use std::collections::BTreeMap;

use indexmap::IndexMap;

/// The properties that make an image ours (with `owner` and `status`): a tool that finds them
/// all on an image treats it as the copy of that stream item.
pub const IDENTITY_PROPERTIES: [&str; 5] = [
    "content_id",
    "source_content_id",
    "product_name",
    "version_name",
    "item_name",
];

/// Fields of the flattened item that `simplestreams_metadata` leaves out (they are properties of
/// their own, or mean nothing in the cloud).
const NOT_IN_METADATA: [&str; 4] = ["product_name", "version_name", "item_name", "path"];

/// How images are described: the settings of a sync that shape every image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSettings {
    /// The content id of the image-ids stream we publish (`--content-id`, region substituted).
    pub content_id: String,
    /// Put before every image name (`--name-prefix`).
    pub name_prefix: String,
    /// Set `hypervisor_type` from the ftype (`--hypervisor-mapping`).
    pub hypervisor_mapping: bool,
    /// Extra properties (`--custom-property k=v`), in the order given.
    pub custom_properties: Vec<(String, String)>,
    /// Upload raw and let Glance convert (`--image-import-conversion`).
    pub import_conversion: bool,
}

/// Parses `--custom-property` values: `KEY=VALUE`, split at the first `=` (the value may
/// contain more), refusing an empty key and the identity properties.
pub fn parse_custom_property(arg: &str) -> Result<(String, String), String> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(format!("{arg:?}: expected KEY=VALUE"));
    };
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("{arg:?}: the key is empty"));
    }
    if IDENTITY_PROPERTIES.contains(&k) || k == "simplestreams_metadata" {
        return Err(format!(
            "{arg:?}: {k} is set by the sync itself and identifies its images"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// OpenStack's name for an Ubuntu/Debian architecture (`amd64` → `x86_64`, …); others are
/// kept, lower-cased.
pub fn canonical_arch(arch: &str) -> String {
    let arch = arch.to_lowercase();
    match arch.as_str() {
        "amd64" => "x86_64",
        "i386" => "i686",
        "ppc64el" => "ppc64le",
        "powerpc" => "ppc",
        "armhf" => "armv7l",
        "arm64" => "aarch64",
        other => other,
    }
    .to_string()
}

/// Glance's `disk_format` for an ftype, if the ftype is a known one.
pub fn ftype_disk_format(ftype: &str) -> Option<&'static str> {
    match ftype.to_lowercase().as_str() {
        "root.tar.gz" | "root.tar.xz" => Some("root-tar"),
        "squashfs" => Some("squashfs"),
        "disk.img" | "disk1.img" => Some("qcow2"),
        _ => None,
    }
}

/// The hypervisor an ftype is for (`lxc` or `qemu`), if known.
pub fn hypervisor_type(ftype: &str) -> Option<&'static str> {
    match ftype.to_lowercase().as_str() {
        "root.tar.gz" | "root.tar.xz" | "squashfs" => Some("lxc"),
        "disk.img" | "disk1.img" => Some("qemu"),
        _ => None,
    }
}

/// The `virt` of an image-ids item for a hypervisor type (`kvm`, `lxd`).
pub fn virt_type(hypervisor: &str) -> Option<&'static str> {
    match hypervisor.to_lowercase().as_str() {
        "qemu" => Some("kvm"),
        "lxc" => Some("lxd"),
        _ => None,
    }
}

/// The disk format of the image of an item: `raw` when Glance converts on import, else from
/// the ftype, `qcow2` by default.
pub fn disk_format(fields: &IndexMap<String, String>, settings: &ImageSettings) -> &'static str {
    if settings.import_conversion {
        return "raw";
    }
    fields
        .get("ftype")
        .and_then(|f| ftype_disk_format(f))
        .unwrap_or("qcow2")
}

/// The image name: prefix + `pubname` (or `name`) + `-ITEM` unless it already ends with the
/// item name. The reference writes "None" when both are missing; we use the product and
/// version names instead.
pub fn image_name(fields: &IndexMap<String, String>, prefix: &str) -> String {
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let base = match fields.get("pubname").or_else(|| fields.get("name")) {
        Some(b) => b.clone(),
        None => format!("{}-{}", get("product_name"), get("version_name")),
    };
    let mut name = format!("{prefix}{base}");
    let item = get("item_name");
    if !name.ends_with(item) {
        name.push('-');
        name.push_str(item);
    }
    name
}

/// The properties of the image of an item (`fields` are its flattened fields without the
/// top level, with `product_name`, `version_name` and `item_name`).
///
/// Unlike the reference, a missing `os` or `version` leaves `os_distro`/`os_version` unset
/// instead of crashing, and custom properties cannot overwrite the identity properties.
pub fn glance_properties(
    fields: &IndexMap<String, String>,
    source_content_id: &str,
    settings: &ImageSettings,
) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    for (k, v) in &settings.custom_properties {
        p.insert(k.clone(), v.clone());
    }
    p.insert("content_id".into(), settings.content_id.clone());
    p.insert("source_content_id".into(), source_content_id.to_string());
    for (from, to) in [
        ("product_name", "product_name"),
        ("version_name", "version_name"),
        ("item_name", "item_name"),
        ("os", "os_distro"),
        ("version", "os_version"),
    ] {
        if let Some(v) = fields.get(from) {
            p.insert(to.to_string(), v.clone());
        }
    }
    if let Some(arch) = fields.get("arch") {
        p.insert("architecture".into(), canonical_arch(arch));
    }
    if settings.hypervisor_mapping {
        if let Some(h) = fields.get("ftype").and_then(|f| hypervisor_type(f)) {
            p.insert("hypervisor_type".into(), h.to_string());
        }
    }
    p.insert(
        "simplestreams_metadata".into(),
        simplestreams_metadata(fields),
    );
    p
}

/// `simplestreams_metadata`: the item's fields without the names and `path`, as Python's
/// `json.dumps(..., sort_keys=True)` writes them (the reference reads it back with
/// `json.loads`, and so do we).
pub fn simplestreams_metadata(fields: &IndexMap<String, String>) -> String {
    let sorted: BTreeMap<&str, &str> = fields
        .iter()
        .filter(|(k, _)| !NOT_IN_METADATA.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut out = String::from("{");
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        simplestreams_core::write_python_json_string(&mut out, k);
        out.push_str(": ");
        simplestreams_core::write_python_json_string(&mut out, v);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ubuntu_item() -> IndexMap<String, String> {
        fields(&[
            ("arch", "amd64"),
            ("os", "ubuntu"),
            ("release", "noble"),
            ("version", "24.04"),
            ("product_name", "com.ubuntu.cloud:server:24.04:amd64"),
            ("pubname", "ubuntu-noble-24.04-amd64-server-20240423"),
            ("version_name", "20240423"),
            ("ftype", "disk1.img"),
            (
                "path",
                "server/noble/20240423/noble-server-cloudimg-amd64.img",
            ),
            ("size", "12345"),
            ("md5", "0123456789abcdef0123456789abcdef"),
            ("item_name", "disk1.img"),
        ])
    }

    #[test]
    fn architectures_map_as_openstack_names_them() {
        for (deb, os) in [
            ("amd64", "x86_64"),
            ("i386", "i686"),
            ("ppc64el", "ppc64le"),
            ("powerpc", "ppc"),
            ("armhf", "armv7l"),
            ("arm64", "aarch64"),
            ("AMD64", "x86_64"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
        ] {
            assert_eq!(canonical_arch(deb), os, "{deb}");
        }
    }

    #[test]
    fn disk_formats_and_hypervisors_follow_the_ftype() {
        let s = ImageSettings::default();
        for (ftype, disk, hyp) in [
            ("disk1.img", "qcow2", Some("qemu")),
            ("disk.img", "qcow2", Some("qemu")),
            ("root.tar.gz", "root-tar", Some("lxc")),
            ("root.tar.xz", "root-tar", Some("lxc")),
            ("squashfs", "squashfs", Some("lxc")),
            ("uefi1.img", "qcow2", None),
        ] {
            assert_eq!(
                disk_format(&fields(&[("ftype", ftype)]), &s),
                disk,
                "{ftype}"
            );
            assert_eq!(hypervisor_type(ftype), hyp, "{ftype}");
        }
        assert_eq!(disk_format(&fields(&[]), &s), "qcow2", "no ftype");
        let conv = ImageSettings {
            import_conversion: true,
            ..ImageSettings::default()
        };
        assert_eq!(disk_format(&ubuntu_item(), &conv), "raw");
        assert_eq!(virt_type("qemu"), Some("kvm"));
        assert_eq!(virt_type("lxc"), Some("lxd"));
    }

    #[test]
    fn names_end_with_the_item_name_once() {
        let f = ubuntu_item();
        assert_eq!(
            image_name(&f, "auto-sync/"),
            "auto-sync/ubuntu-noble-24.04-amd64-server-20240423-disk1.img"
        );
        let mut g = f.clone();
        g.insert("pubname".into(), "already-disk1.img".into());
        assert_eq!(image_name(&g, ""), "already-disk1.img");
        g.shift_remove("pubname");
        g.insert("name".into(), "by-name".into());
        assert_eq!(image_name(&g, "p-"), "p-by-name-disk1.img");
        g.shift_remove("name");
        assert_eq!(
            image_name(&g, ""),
            "com.ubuntu.cloud:server:24.04:amd64-20240423-disk1.img"
        );
    }

    #[test]
    fn properties_follow_the_reference_contract() {
        let settings = ImageSettings {
            content_id: "auto.sync".into(),
            hypervisor_mapping: true,
            custom_properties: vec![("hw_firmware_type".into(), "uefi=yes".into())],
            ..ImageSettings::default()
        };
        let p = glance_properties(
            &ubuntu_item(),
            "com.ubuntu.cloud:released:download",
            &settings,
        );
        let get = |k: &str| p.get(k).map(String::as_str);
        assert_eq!(get("content_id"), Some("auto.sync"));
        assert_eq!(
            get("source_content_id"),
            Some("com.ubuntu.cloud:released:download")
        );
        assert_eq!(
            get("product_name"),
            Some("com.ubuntu.cloud:server:24.04:amd64")
        );
        assert_eq!(get("version_name"), Some("20240423"));
        assert_eq!(get("item_name"), Some("disk1.img"));
        assert_eq!(get("os_distro"), Some("ubuntu"));
        assert_eq!(get("os_version"), Some("24.04"));
        assert_eq!(get("architecture"), Some("x86_64"));
        assert_eq!(get("hypervisor_type"), Some("qemu"));
        assert_eq!(get("hw_firmware_type"), Some("uefi=yes"));
        assert_eq!(get("latest"), None, "latest is managed after the run");
        assert_eq!(
            get("simplestreams_metadata"),
            Some(
                "{\"arch\": \"amd64\", \"ftype\": \"disk1.img\", \"md5\": \
                 \"0123456789abcdef0123456789abcdef\", \"os\": \"ubuntu\", \"pubname\": \
                 \"ubuntu-noble-24.04-amd64-server-20240423\", \"release\": \"noble\", \
                 \"size\": \"12345\", \"version\": \"24.04\"}"
            )
        );
    }

    #[test]
    fn a_missing_os_or_version_leaves_the_property_unset() {
        let f = fields(&[
            ("product_name", "p"),
            ("version_name", "v"),
            ("item_name", "i"),
        ]);
        let p = glance_properties(&f, "src", &ImageSettings::default());
        assert!(!p.contains_key("os_distro"));
        assert!(!p.contains_key("os_version"));
        assert!(!p.contains_key("architecture"));
        assert!(!p.contains_key("hypervisor_type"), "mapping is off");
        assert_eq!(
            p.get("simplestreams_metadata").map(String::as_str),
            Some("{}")
        );
    }

    #[test]
    fn metadata_json_escapes_like_python() {
        let f = fields(&[("label", "caf\u{e9} \"q\"\n\u{1F600}\\"), ("a", "")]);
        assert_eq!(
            simplestreams_metadata(&f),
            "{\"a\": \"\", \"label\": \"caf\\u00e9 \\\"q\\\"\\n\\ud83d\\ude00\\\\\"}"
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&simplestreams_metadata(&f)).expect("valid JSON");
        assert_eq!(parsed["label"], "caf\u{e9} \"q\"\n\u{1F600}\\");
    }

    #[test]
    fn custom_properties_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_custom_property("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(
            parse_custom_property("k="),
            Ok(("k".to_string(), String::new()))
        );
        assert!(parse_custom_property("novalue").is_err());
        assert!(parse_custom_property("=v").is_err());
        assert!(parse_custom_property("content_id=x").is_err());
        assert!(parse_custom_property("simplestreams_metadata=x").is_err());
    }
}
