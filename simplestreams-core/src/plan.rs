//! Version ordering and the per-product sync plan (docs/format.md, "Version ordering").

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// Compares two version names: plain byte-wise string order, the greatest is the newest
/// (`"9" > "10"`, `"samepaths" > "20121026.1"`), as every existing tool does.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

/// Sorts version names newest first.
pub fn sorted_versions<'a, I: IntoIterator<Item = &'a str>>(versions: I) -> Vec<&'a str> {
    let mut v: Vec<&str> = versions.into_iter().collect();
    v.sort_by(|a, b| version_cmp(b, a));
    v
}

/// What to do to one product: versions to add (newest first) and to remove (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionPlan {
    /// Versions to copy from the source, newest first.
    pub add: Vec<String>,
    /// Versions to delete from the target, oldest first.
    pub remove: Vec<String>,
}

/// Limits of a sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanLimits {
    /// Keep at most this many versions per product (`--max`).
    pub max: Option<usize>,
    /// Keep versions that left the source while there is room under `max` (`--keep`).
    pub keep: bool,
}

/// Plans one product.
///
/// `source`: versions in the source that passed the filters; `target`: versions the target has.
/// Source versions that fail `accept` are not added. `keep` without `max` is an error.
pub fn plan_versions(
    source: &[&str],
    target: &[&str],
    limits: PlanLimits,
    mut accept: impl FnMut(&str) -> bool,
) -> Result<VersionPlan> {
    if limits.keep && limits.max.is_none() {
        return Err(Error::InvalidArgument("--keep needs --max".into()));
    }
    let in_target = |v: &str| target.contains(&v);
    let in_source = |v: &str| source.contains(&v);

    let mut add: Vec<&str> = sorted_versions(source.iter().copied())
        .into_iter()
        .filter(|v| accept(v) && !in_target(v))
        .collect();
    add.dedup();
    let mut remove: Vec<&str> = sorted_versions(target.iter().copied())
        .into_iter()
        .filter(|v| !in_source(v))
        .collect();
    remove.dedup();

    if let (true, Some(max)) = (limits.keep, limits.max) {
        let after_add = target.len() + add.len();
        while !remove.is_empty() && max > after_add - remove.len() {
            remove.remove(0);
        }
    }

    if let Some(max) = limits.max {
        let mut kept: Vec<&str> = target
            .iter()
            .chain(add.iter())
            .copied()
            .filter(|v| !remove.contains(v))
            .collect();
        kept.sort_by(|a, b| version_cmp(b, a));
        kept.dedup();
        if kept.len() > max {
            for v in &kept[max..] {
                if in_target(v) {
                    remove.push(v);
                } else if let Some(pos) = add.iter().position(|a| a == v) {
                    add.remove(pos);
                }
            }
        }
    }
    remove.sort_by(|a, b| version_cmp(a, b));
    remove.dedup();
    Ok(VersionPlan {
        add: add.into_iter().map(str::to_string).collect(),
        remove: remove.into_iter().map(str::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(s: &[&str], t: &[&str], max: Option<usize>, keep: bool) -> (Vec<String>, Vec<String>) {
        let p = plan_versions(s, t, PlanLimits { max, keep }, |_| true).unwrap();
        (p.add, p.remove)
    }

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    // Every vector of docs/format.md, "Version ordering".
    #[test]
    fn spec_vectors() {
        assert_eq!(
            plan(&["10", "9", "8"], &["7", "6", "5"], None, false),
            (v(&["9", "8", "10"]), v(&["5", "6", "7"]))
        );
        assert_eq!(
            plan(&["10", "9", "8"], &["7", "6", "5"], Some(2), false),
            (v(&["9", "8"]), v(&["5", "6", "7"]))
        );
        assert_eq!(
            plan(&["10", "9", "8"], &["7", "6", "5"], Some(4), true),
            (v(&["9", "8", "10"]), v(&["5", "6"]))
        );
        assert_eq!(
            plan(&["3"], &["3", "2", "1"], None, false),
            (v(&[]), v(&["1", "2"]))
        );
        assert_eq!(
            plan(&["2", "1"], &["2", "1"], Some(1), false),
            (v(&[]), v(&["1"]))
        );
        assert_eq!(
            plan(
                &["9", "5", "8", "4", "7", "3", "6", "2", "1"],
                &["9", "8", "7", "6", "5"],
                Some(4),
                false
            ),
            (v(&[]), v(&["5"]))
        );
        assert_eq!(
            plan(
                &["9", "10", "20121026.1", "20121026", "samepaths"],
                &[],
                Some(2),
                false
            ),
            (v(&["samepaths", "9"]), v(&[]))
        );
    }

    #[test]
    fn byte_order_is_newest_first() {
        assert_eq!(
            sorted_versions(["10", "9", "samepaths", "20121026.1"]),
            ["samepaths", "9", "20121026.1", "10"]
        );
    }

    #[test]
    fn keep_without_max_is_an_error() {
        assert!(plan_versions(
            &["1"],
            &[],
            PlanLimits {
                max: None,
                keep: true
            },
            |_| true
        )
        .is_err());
    }

    #[test]
    fn max_zero_removes_everything() {
        assert_eq!(
            plan(&["2", "1"], &["2", "1"], Some(0), false),
            (v(&[]), v(&["1", "2"]))
        );
    }

    #[test]
    fn rejected_versions_are_not_added() {
        let p = plan_versions(&["3", "2"], &[], PlanLimits::default(), |v| v != "3").unwrap();
        assert_eq!(p.add, v(&["2"]));
    }
}
