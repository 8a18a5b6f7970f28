//! `--set-latest-property`: which images get `latest=true` and which lose it.

use std::collections::BTreeMap;

use crate::glance::Image;

/// For `--set-latest-property`: the `latest` changes that leave exactly one image per
/// os_version + architecture with `latest=true`, the one of the newest version (then the
/// greatest item name). `(id, true)` sets it, `(id, false)` removes it.
pub fn latest_changes(images: &[Image]) -> Vec<(String, bool)> {
    let mut groups: BTreeMap<(&str, &str), Vec<&Image>> = BTreeMap::new();
    for i in images {
        let key = (
            i.property("os_version").unwrap_or(""),
            i.property("architecture").unwrap_or(""),
        );
        groups.entry(key).or_default().push(i);
    }
    let mut changes = Vec::new();
    for members in groups.values() {
        let newest = members.iter().max_by(|a, b| {
            let k = |i: &Image| {
                (
                    i.property("version_name").unwrap_or("").to_string(),
                    i.property("item_name").unwrap_or("").to_string(),
                    i.id.clone(),
                )
            };
            k(a).cmp(&k(b))
        });
        for i in members {
            let is_newest = newest.is_some_and(|n| n.id == i.id);
            let has = i.properties.contains_key("latest");
            let is_true = i.property("latest") == Some("true");
            if is_newest && !is_true {
                changes.push((i.id.clone(), true));
            } else if !is_newest && has {
                changes.push((i.id.clone(), false));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(
        id: &str,
        version: &str,
        item: &str,
        os_version: &str,
        arch: &str,
        latest: Option<&str>,
    ) -> Image {
        let mut v = json!({"id": id, "status": "active", "version_name": version,
            "item_name": item, "os_version": os_version, "architecture": arch});
        if let Some(l) = latest {
            v["latest"] = json!(l);
        }
        serde_json::from_value(v).expect("image")
    }

    #[test]
    fn latest_goes_to_the_newest_version_of_each_os_version_and_arch() {
        let images = [
            image(
                "a",
                "20240101",
                "disk1.img",
                "24.04",
                "x86_64",
                Some("true"),
            ),
            image("b", "20240201", "disk1.img", "24.04", "x86_64", None),
            image(
                "c",
                "20240201",
                "disk1.img",
                "24.04",
                "aarch64",
                Some("true"),
            ),
            image("d", "20230101", "disk1.img", "22.04", "x86_64", None),
            image(
                "e",
                "20220101",
                "disk1.img",
                "22.04",
                "x86_64",
                Some("false"),
            ),
        ];
        let mut changes = latest_changes(&images);
        changes.sort();
        assert_eq!(
            changes,
            vec![
                ("a".to_string(), false),
                ("b".to_string(), true),
                ("d".to_string(), true),
                ("e".to_string(), false),
            ]
        );
    }
}
