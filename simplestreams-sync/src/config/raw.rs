//! The configuration file as written: every key the file may hold, each value with the line it
//! came from (so that a refusal names the line and the key), unknown keys refused by serde.
//!
//! Values that may take several shapes (a list or one string, a map or `k=v` words) have
//! deserializers of their own, driven by the YAML node itself: serde's `untagged` enums would
//! buffer the node and lose its location.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value with its location.
pub(crate) type S<T> = Spanned<T>;

/// Any scalar, as the text it was written as (`1`, `1.5`, `true`, `30m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a single value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One string or a list of strings (`keyring: a.gpg` or `keyring: [a.gpg, b.gpg]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Strings(pub Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(Strings(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Glance properties: a map (`{os_admin_user: root}`), a list of `k=v`, or the charm's one
/// string of space-separated `k=v` words. Kept as `k=v` words in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Properties(pub Vec<String>);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Properties;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of properties, a list of KEY=VALUE, or KEY=VALUE words")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Properties, E> {
                Ok(Properties(
                    v.split_whitespace().map(str::to_string).collect(),
                ))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Properties, E> {
                Ok(Properties(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Properties, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(Properties(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut out = Vec::new();
                while let Some((Text(k), Text(v))) = map.next_entry()? {
                    out.push(format!("{k}={v}"));
                }
                Ok(Properties(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The charm's `mirror_list`: a YAML list, or the YAML text of one (what `juju config` holds).
#[derive(Debug, Clone)]
pub(crate) enum MirrorList {
    /// YAML text, parsed on its own.
    Text(String),
    /// A list written in the file itself.
    List(Vec<S<CharmMirror>>),
}

impl<'de> Deserialize<'de> for MirrorList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MirrorList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of mirrors, or the YAML text of one")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MirrorList, E> {
                Ok(MirrorList::Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MirrorList, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element()? {
                    out.push(m);
                }
                Ok(MirrorList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of the charm's `mirror_list`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CharmMirror {
    pub url: Option<S<String>>,
    /// Ignored by the charm (its own `name_prefix` is used); names the job here.
    pub name_prefix: Option<S<Text>>,
    pub path: Option<S<String>>,
    pub max: Option<S<Text>>,
    pub item_filters: Option<S<Vec<S<String>>>>,
}

/// `http:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Http {
    pub connect_timeout: Option<S<Text>>,
    pub read_timeout: Option<S<Text>>,
    pub retries: Option<S<u32>>,
    pub max_metadata_size: Option<S<u64>>,
    pub user_agent: Option<S<String>>,
    pub ca_file: Option<S<String>>,
}

/// `openstack:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenStack {
    pub cloud: Option<S<String>>,
    pub interface: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    pub ssl_ca: Option<S<String>>,
    pub user_agent: Option<S<String>>,
}

/// One job of `jobs:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Job {
    pub name: Option<S<Text>>,
    pub enabled: Option<S<bool>>,
    pub source: Option<S<String>>,
    pub path: Option<S<String>>,
    pub mirrors: Option<S<Strings>>,
    pub keyring: Option<S<Strings>>,
    pub no_verify: Option<S<bool>>,
    pub item_filters: Option<S<Vec<S<String>>>>,
    pub max: Option<S<Text>>,
    pub keep: Option<S<bool>>,
    pub schedule: Option<S<Text>>,
    pub jitter: Option<S<Text>>,
    pub retry_interval: Option<S<Text>>,
    pub max_backoff: Option<S<Text>>,
    pub parallel: Option<S<Text>>,
    pub all_checksums: Option<S<bool>>,
    pub allow_rollback: Option<S<bool>>,
    pub stale_after: Option<S<Text>>,
    pub verify_existing: Option<S<bool>>,
    pub max_decompressed_size: Option<S<Text>>,
    pub glance: Option<S<Glance>>,
    pub mirror: Option<S<Mirror>>,
}

/// A job's `glance:` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Glance {
    pub cloud_name: Option<S<String>>,
    #[serde(alias = "content_id_template")]
    pub content_id: Option<S<String>>,
    pub regions: Option<S<Strings>>,
    pub name_prefix: Option<S<String>>,
    pub custom_properties: Option<S<Properties>>,
    pub hypervisor_mapping: Option<S<bool>>,
    pub visibility: Option<S<String>>,
    pub set_latest_property: Option<S<bool>>,
    pub image_import_conversion: Option<S<bool>>,
    pub modify_hook: Option<S<String>>,
    pub output_dir: Option<S<String>>,
    pub output_swift: Option<S<String>>,
    pub register_product_streams: Option<S<bool>>,
    pub product_streams_url: Option<S<String>>,
}

/// A job's `mirror:` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mirror {
    pub target: Option<S<String>>,
    pub filtered_metadata: Option<S<bool>>,
    pub decompress: Option<S<bool>>,
    pub signing_key: Option<S<String>>,
    pub item_download: Option<S<bool>>,
    pub public: Option<S<bool>>,
    pub fsync: Option<S<bool>>,
    pub segment_size: Option<S<u64>>,
}

/// The whole file: the service's own keys, and the charm's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    // The service's keys.
    pub schedule: Option<S<Text>>,
    pub jitter: Option<S<Text>>,
    pub retry_interval: Option<S<Text>>,
    pub max_backoff: Option<S<Text>>,
    pub state_dir: Option<S<String>>,
    pub status_file: Option<S<String>>,
    pub listen: Option<S<String>>,
    pub keyring: Option<S<Strings>>,
    pub http: Option<S<Http>>,
    pub openstack: Option<S<OpenStack>>,
    pub jobs: Option<S<Vec<S<Job>>>>,

    // The glance-simplestreams-sync charm's keys (its config.yaml, and the mirrors.yaml it
    // renders), with the meanings its sync script gives them.
    pub mirror_list: Option<S<MirrorList>>,
    pub cloud_name: Option<S<Text>>,
    pub content_id_template: Option<S<Text>>,
    pub custom_properties: Option<S<Properties>>,
    pub hypervisor_mapping: Option<S<bool>>,
    pub frequency: Option<S<Text>>,
    pub region: Option<S<Text>>,
    pub use_swift: Option<S<bool>>,
    pub ssl_ca: Option<S<Text>>,
    pub user_agent: Option<S<Text>>,
    pub name_prefix: Option<S<Text>>,
    pub run: Option<S<bool>>,
    pub visibility: Option<S<Text>>,
    pub set_latest_property: Option<S<bool>>,
    pub image_import_conversion: Option<S<bool>>,
    pub custom_keyring: Option<S<Text>>,
    pub keyring_path: Option<S<Text>>,
    #[serde(rename = "use-internal-endpoints")]
    pub use_internal_endpoints: Option<S<bool>>,
    // Accepted so that the charm's configuration can be pasted, without effect here.
    pub ignore_proxy_for_object_store: Option<S<bool>>,
    pub modify_hook_scripts: Option<S<Text>>,
    pub nagios_context: Option<S<Text>>,
    pub nagios_servicegroups: Option<S<Text>>,
    pub source: Option<S<Text>>,
    pub key: Option<S<Text>>,
    #[serde(rename = "snap-channel")]
    pub snap_channel: Option<S<Text>>,

    /// `juju deploy --config` form: the charm's keys under the application's name.
    #[serde(rename = "glance-simplestreams-sync")]
    pub application: Option<S<Box<File>>>,
}

impl File {
    /// Whether any of the charm's keys is set.
    pub fn has_charm_keys(&self) -> bool {
        self.mirror_list.is_some()
            || self.cloud_name.is_some()
            || self.content_id_template.is_some()
            || self.custom_properties.is_some()
            || self.hypervisor_mapping.is_some()
            || self.frequency.is_some()
            || self.region.is_some()
            || self.use_swift.is_some()
            || self.ssl_ca.is_some()
            || self.user_agent.is_some()
            || self.name_prefix.is_some()
            || self.run.is_some()
            || self.visibility.is_some()
            || self.set_latest_property.is_some()
            || self.image_import_conversion.is_some()
            || self.custom_keyring.is_some()
            || self.keyring_path.is_some()
            || self.use_internal_endpoints.is_some()
            || self.ignore_proxy_for_object_store.is_some()
            || self.modify_hook_scripts.is_some()
            || self.nagios_context.is_some()
            || self.nagios_servicegroups.is_some()
            || self.source.is_some()
            || self.key.is_some()
            || self.snap_channel.is_some()
    }
}
