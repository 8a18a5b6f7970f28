//! Properties of the sync plan that every sync relies on, over random version sets.

use proptest::prelude::*;
use simplestreams_core::{plan_versions, version_cmp, PlanLimits};

fn versions() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set("[0-9a-c.]{1,4}", 0..12).prop_map(|s| s.into_iter().collect())
}

proptest! {
    #[test]
    fn plan_is_consistent(source in versions(), target in versions(), max in proptest::option::of(0usize..6), keep in any::<bool>()) {
        let s: Vec<&str> = source.iter().map(String::as_str).collect();
        let t: Vec<&str> = target.iter().map(String::as_str).collect();
        let limits = PlanLimits { max, keep: keep && max.is_some() };
        let plan = plan_versions(&s, &t, limits, |_| true).unwrap();
        // Only new versions are added; only held versions are removed.
        for a in &plan.add { prop_assert!(s.contains(&a.as_str()) && !t.contains(&a.as_str())); }
        for r in &plan.remove { prop_assert!(t.contains(&r.as_str())); }
        let after: Vec<&str> = t.iter().copied().filter(|v| !plan.remove.iter().any(|r| r == v))
            .chain(plan.add.iter().map(String::as_str)).collect();
        // Never more than max versions.
        if let Some(max) = max { prop_assert!(after.len() <= max); }
        // Without keep, nothing outside the source survives.
        if !limits.keep { for v in &after { prop_assert!(s.contains(v)); } }
        // Whatever is kept is the newest of what could be kept.
        if let Some(max) = max {
            if !limits.keep {
                let mut wanted: Vec<&str> = s.clone();
                wanted.sort_by(|a, b| version_cmp(b, a));
                wanted.truncate(max);
                let mut got = after.clone();
                got.sort_by(|a, b| version_cmp(b, a));
                prop_assert_eq!(got, wanted);
            }
        }
        // add is newest first, remove oldest first.
        prop_assert!(plan.add.windows(2).all(|w| version_cmp(&w[0], &w[1]).is_gt()));
        prop_assert!(plan.remove.windows(2).all(|w| version_cmp(&w[0], &w[1]).is_lt()));
    }
}
