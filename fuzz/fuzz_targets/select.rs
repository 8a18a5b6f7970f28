//! Filters (one a line) and a products document (after a NUL byte): flattening, selecting,
//! alias expansion and the sync plan never panic, `flatten` agrees with `for_each_flat_item`,
//! and the query's fast path (`ProductsView`) never accepts what the model refuses and selects
//! exactly what the model selects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simplestreams_core::{
    flatten, for_each_flat_item, plan_versions, select, sorted_versions, FilterSet, PlanLimits,
    Products, ProductsView,
};

fn exercise(products: &Products, filters: &FilterSet, max: Option<usize>) {
    let chosen = select(products, filters, max);
    if let Some(max) = max {
        // At most `max` versions per product; never more items than the document has.
        assert!(chosen.len() <= products.item_count());
        let _ = max;
    }
    let mut seen = 0usize;
    for_each_flat_item(products, |id, _item, flat| {
        seen += 1;
        let direct = flatten(products, id, true);
        assert_eq!(
            direct.as_ref(),
            Some(&flat),
            "flatten and for_each_flat_item disagree on {id:?}"
        );
        let _ = filters.matches(&flat);
    });
    assert!(seen <= products.item_count());
    for product in products.products.values() {
        let names: Vec<&str> = product.versions.keys().map(String::as_str).collect();
        let sorted = sorted_versions(names.iter().copied());
        assert_eq!(sorted.len(), names.len());
        let half = &names[..names.len() / 2];
        for keep in [false, true] {
            let limits = PlanLimits { max, keep };
            let _ = plan_versions(&names, half, limits, |v| v.len() % 3 != 0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let expressions: Vec<&str> = head.lines().filter(|l| !l.is_empty()).collect();
    let Ok(filters) = FilterSet::parse(&expressions) else {
        return;
    };
    let view = ProductsView::parse(body);
    let Ok(mut products) = Products::from_slice(body, "fuzz.json") else {
        assert!(
            view.is_none(),
            "the view accepted a document the model refuses"
        );
        return;
    };
    let max = match head.len() % 4 {
        0 => None,
        n => Some(n),
    };
    if let Some(view) = view {
        let expected: Vec<String> = select(&products, &filters, max)
            .iter()
            .map(|s| format!("{:?}", s.flat))
            .collect();
        let mut got = Vec::new();
        view.select(&filters, max, |_, _, _, flat| got.push(format!("{flat:?}")));
        assert_eq!(got, expected, "the view and the model select differently");
    }
    exercise(&products, &filters, max);
    if products.expand_aliases("fuzz.json").is_ok() {
        exercise(&products, &filters, max);
    }
});
