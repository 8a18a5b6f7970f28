//! The view must select exactly what the model selects, and hand unusual documents to it.

use super::*;
use crate::{select, Products};

fn both(doc: &str, filters: &[&str], max: Option<usize>) -> (Vec<String>, Vec<String>) {
    let filters = FilterSet::parse(filters).unwrap();
    let model = Products::from_slice(doc.as_bytes(), "d").unwrap();
    let from_model: Vec<String> = select(&model, &filters, max)
        .iter()
        .map(|s| format!("{:?}", s.flat))
        .collect();
    let view = ProductsView::parse(doc.as_bytes()).expect("view");
    let mut from_view = Vec::new();
    view.select(&filters, max, |_, _, _, flat| {
        from_view.push(format!("{flat:?}"))
    });
    (from_model, from_view)
}

const DOC: &str = r#"{"format":"products:1.0","content_id":"c","ftype":"top","n":1.5,"list":[1,{"a":2}],
      "products":{
        "p1":{"arch":"amd64","versions":{
          "1":{"items":{"a":{"ftype":"x","size":10,"path":"f/a"}}},
          "3":{"label":"beta","items":{"a":{"ftype":"y","size":"11","ok":true}}},
          "2":{"items":{"a":{"ftype":"x"},"b":{"ftype":"x","item_name":"shadow","product_name":"mine"}}}}},
        "p0":{"versions":{"9":{"items":{"a":{"ftype":"x","esc":"t\u00e9\"x"}}}}}}}"#;

#[test]
fn view_selects_exactly_like_the_model() {
    for (filters, max) in [
        (&[][..], None),
        (&["ftype=x"][..], Some(1)),
        (&["ftype!=x"][..], None),
        (&["product_name~p", "version_name~^[12]$"][..], Some(5)),
        (&["item_name=b"][..], None),
        (&["n=1.5", "ok=True"][..], None),
        (&["arch="][..], None),
    ] {
        let (model, view) = both(DOC, filters, max);
        assert_eq!(model, view, "{filters:?} {max:?}");
    }
}

#[test]
fn unusual_documents_ask_for_the_model() {
    let cases = [
        DOC.replace(
            "\"content_id\":\"c\",",
            "\"_aliases\":{},\"content_id\":\"c\",",
        ),
        DOC.replace("\"size\":10", "\"size\":[10]"),
        DOC.replace("\"size\":10", "\"size\":\"ten\""),
        DOC.replace("\"path\":\"f/a\"", "\"path\":\"../a\""),
        DOC.replace("\"path\":\"f/a\"", "\"path\":5"),
        DOC.replace("products:1.0", "index:1.0"),
        DOC.replace("\"products\":{", "\"products\":["),
        DOC.to_string() + "x",
        // Types the model refuses.
        DOC.replace("\"path\":\"f/a\"", "\"path\":true"),
        DOC.replace("\"size\":10", "\"size\":null"),
        DOC.replace("\"size\":10", "\"size\":-1"),
        DOC.replace("\"size\":10", "\"size\":1.5"),
        DOC.replace("\"content_id\":\"c\"", "\"content_id\":7"),
        DOC.replace("\"format\":\"products:1.0\",", ""),
        // Names and keys given twice: the model keeps the last one.
        DOC.replace("\"p0\":{", "\"p1\":{"),
        DOC.replace("\"b\":{\"ftype\"", "\"a\":{\"ftype\""),
        DOC.replace("\"label\":\"beta\",", "\"items\":{},\"label\":\"beta\","),
        DOC.replace("\"arch\":\"amd64\",", "\"arch\":\"amd64\",\"arch\":null,"),
    ];
    for doc in &cases {
        assert_ne!(doc, DOC, "each case changes the document");
        assert!(ProductsView::parse(doc.as_bytes()).is_none(), "{doc}");
    }
    let mut latin1 = DOC.as_bytes().to_vec();
    let at = DOC.find("beta").expect("the document has a label");
    latin1[at] = 0xe9;
    assert!(ProductsView::parse(&latin1).is_none(), "not UTF-8");
    assert!(ProductsView::parse(DOC.as_bytes()).is_some());
}

#[test]
fn escaped_names_and_values_are_unescaped() {
    let doc = r#"{"format":"products:1.0","content_id":"c\u0041","products":{"p\"q":{
        "versions":{"v\/1":{"items":{"i\n":{"ftype":"a\tb","size":5}}}}}}}"#;
    let (model, view) = both(doc, &["content_id=cA", "ftype=a\tb"], None);
    assert_eq!(model.len(), 1);
    assert_eq!(model, view);
    let view = ProductsView::parse(doc.as_bytes()).expect("view");
    let mut names = Vec::new();
    view.select(&FilterSet::default(), None, |p, v, i, _| {
        names.push((p.to_string(), v.to_string(), i.to_string()))
    });
    assert_eq!(names, [("p\"q".into(), "v/1".into(), "i\n".into())]);
}

#[test]
fn keys_resolve_at_the_nearest_level() {
    // An item field named like a level's name overrides it, as flattening does; a product's
    // own `product_name` does not.
    let doc = r#"{"format":"products:1.0","content_id":"c","release":"top","products":{
        "p":{"product_name":"own","release":"prod","versions":{
          "1":{"version_name":"v-own","items":{"a":{"release":"item"},"b":{"version_name":"x"}}},
          "2":{"release":"ver","items":{"a":{}}}}}}}"#;
    for filters in [
        &["release=item"][..],
        &["release=ver"][..],
        &["release=prod"][..],
        &["release=top"][..],
        &["product_name=p"][..],
        &["product_name=own"][..],
        &["version_name=x"][..],
        &["version_name=1"][..],
        &["version_name=v-own"][..],
    ] {
        let (model, view) = both(doc, filters, None);
        assert_eq!(model, view, "{filters:?}");
    }
    let (model, _) = both(doc, &["release=prod"], None);
    assert_eq!(
        model.len(),
        1,
        "only item b of version 1 inherits the product's release"
    );
}

/// DOC with the value of item p1/1/a's field `x` set to `fragment` (raw JSON text).
fn with_value(fragment: &str) -> String {
    DOC.replace(
        "\"ftype\":\"x\",\"size\":10",
        &format!("\"ftype\":\"x\",\"x\":{fragment},\"size\":10"),
    )
}

#[test]
fn json_the_model_refuses_is_never_accepted() {
    let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
    let fragments = [
        "01",
        "1.",
        "-",
        "1e",
        "+1",
        ".5",
        "-01",
        "0x10",
        "1.5.2",
        "--1",
        "tru",
        "nul",
        "falsey",
        "\"a\u{1}b\"",
        "\"\\q\"",
        "\"\\u12\"",
        "\"open",
        "[1,]",
        "[1 2]",
        "{\"a\"}",
        "{\"a\":}",
        "{a:1}",
        "{\"a\":1,}",
        "[",
        &deep,
        "'x'",
        "NaN",
        "Infinity",
    ];
    for fragment in fragments {
        let doc = with_value(fragment);
        assert!(
            Products::from_slice(doc.as_bytes(), "d").is_err(),
            "the model accepts {fragment:?}: not a useful case"
        );
        assert!(
            ProductsView::parse(doc.as_bytes()).is_none(),
            "{fragment:?}"
        );
    }
    for broken in [
        DOC.replacen(':', "", 1),
        DOC.replacen(',', ",,", 1),
        DOC.replacen("}}}}}", "}}}},}", 1),
        DOC.replace("\"p0\"", "p0"),
        format!("{DOC} {{}}"),
        format!("[{DOC}]"),
    ] {
        assert!(
            Products::from_slice(broken.as_bytes(), "d").is_err(),
            "{broken}"
        );
        assert!(ProductsView::parse(broken.as_bytes()).is_none(), "{broken}");
    }
}

#[test]
fn values_read_as_the_model_reads_them() {
    let deep = format!("{}{}", "[".repeat(90), "]".repeat(90));
    for fragment in [
        "0",
        "7",
        "1234567890123456789",
        "12345678901234567890",
        "123456789012345678901234",
        "-0",
        "-5",
        "1.5",
        "1e2",
        "1E+2",
        "2.50e-3",
        "-0.0",
        "true",
        "false",
        "null",
        "\"\"",
        "\"tab\\there\"",
        "\"\\u00e9\\ud83d\\ude00\"",
        "\"caf\u{e9}\"",
        "[1,{\"a\":[null]}]",
        "{}",
        "[]",
        " \n\t 3 \r\n",
        &deep,
    ] {
        let doc = with_value(fragment);
        let (model, view) = both(&doc, &["ftype=x"], None);
        assert_eq!(model, view, "{fragment:?}");
        assert!(model.len() >= 2, "{fragment:?}");
        let (model, view) = both(&doc, &["x~."], None);
        assert_eq!(model, view, "{fragment:?}");
    }
}

/// Values serde_json refuses or changes but Python's `json` reads (a number beyond `f64`, an
/// integer beyond 64 bits, a lone surrogate; see `kept.rs`): the model reads them as the reference
/// does, and the view either hands the document to the model or selects exactly the same.
#[test]
fn values_the_reference_reads_are_the_models_or_the_same_in_the_view() {
    let huge = "9".repeat(400);
    for (fragment, flat, view_declines) in [
        ("1e400", "inf", true),
        ("-1E+400", "-inf", true),
        (huge.as_str(), huge.as_str(), true),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
            false,
        ),
        (
            "-123456789012345678901234567890",
            "-123456789012345678901234567890",
            false,
        ),
        ("-0", "0", false),
        ("\"\\ud800\"", "\u{FDD0}e\\ud800", true),
        ("\"x\\udc00\\\\\"", "\u{FDD0}ex\\udc00\\\\", true),
        ("\"\\ufdd0n1\"", "\u{FDD0}e\u{FDD0}n1", true),
        ("\"\u{FDD0}e\"", "\u{FDD0}e\u{FDD0}e", true),
    ] {
        let doc = with_value(fragment);
        let model = Products::from_slice(doc.as_bytes(), "d")
            .unwrap_or_else(|e| panic!("the model refuses {fragment:?}: {e}"));
        let chosen = select(&model, &FilterSet::parse(&["x~."]).unwrap(), None);
        assert!(!chosen.is_empty(), "{fragment:?}");
        assert_eq!(chosen[0].flat["x"], flat, "{fragment:?}");
        match ProductsView::parse(doc.as_bytes()) {
            None => assert!(view_declines, "the view declines {fragment:?}"),
            Some(_) => {
                assert!(
                    !view_declines,
                    "the view must leave {fragment:?} to the model"
                );
                for filters in [&["ftype=x"][..], &["x~."], &[]] {
                    let (model, view) = both(&doc, filters, None);
                    assert_eq!(model, view, "{fragment:?} {filters:?}");
                }
            }
        }
    }
    // A lone surrogate in a key, and a kept value in a field with meaning.
    let doc = DOC.replace("\"ok\":true", "\"\\ud800\":true");
    assert!(Products::from_slice(doc.as_bytes(), "d").is_ok());
    assert!(ProductsView::parse(doc.as_bytes()).is_none());
    for (from, to, kind) in [
        (
            "\"size\":10",
            "\"size\":1e400",
            "a number beyond the range of a float",
        ),
        (
            "\"size\":10",
            "\"size\":123456789012345678901234567890",
            "an integer beyond 64 bits",
        ),
        (
            "\"path\":\"f/a\"",
            "\"path\":123456789012345678901234567890",
            "an integer beyond 64 bits",
        ),
        (
            "\"ftype\":\"x\",\"size\":10",
            "\"ftype\":\"\\ud800\",\"size\":10",
            "a lone surrogate",
        ),
    ] {
        let doc = DOC.replace(from, to);
        let err = Products::from_slice(doc.as_bytes(), "d")
            .unwrap_err()
            .to_string();
        assert!(err.contains(kind), "{to}: {err}");
        assert!(ProductsView::parse(doc.as_bytes()).is_none(), "{to}");
    }
}

/// A pretty-printed document of `n` products, with escapes, floats and booleans throughout, so
/// that both halves have text of their own.
fn many_products(n: usize) -> String {
    let mut products = serde_json::Map::new();
    for p in 0..n {
        let mut versions = serde_json::Map::new();
        for v in 0..3 {
            versions.insert(
                format!("2024010{v}"),
                serde_json::json!({
                    "label": if v == 2 { "beta" } else { "release" },
                    "items": {
                        "disk.img": {"ftype": "disk1.img", "size": p * 10 + v,
                                     "path": format!("p{p}/v{v}/disk.img"), "sha256": "ab"},
                        "note\t": {"ftype": "text", "ratio": 0.5 + p as f64, "ok": p % 2 == 0,
                                   "path": format!("p{p}/v{v}/n\u{e9}")}
                    }
                }),
            );
        }
        products.insert(
            format!("com.example:{p}:\"q\""),
            serde_json::json!({"arch": if p % 3 == 0 { "amd64" } else { "arm64" }, "n": p,
                               "versions": versions}),
        );
    }
    let doc = serde_json::json!({
        "content_id": "c", "format": "products:1.0", "products": products, "updated": "now"
    });
    serde_json::to_string_pretty(&doc).expect("serialisable")
}

fn selected(view: &ProductsView<'_>, filters: &[&str], max: Option<usize>) -> Vec<String> {
    let filters = FilterSet::parse(filters).unwrap();
    let mut out = Vec::new();
    view.select(&filters, max, |_, _, _, flat| out.push(format!("{flat:?}")));
    out
}

#[test]
fn two_threads_read_exactly_what_one_reads() {
    let doc = many_products(200);
    let at = super::split::find_split(&doc).expect("a pretty document splits");
    assert!(
        at > doc.len() / 2 && doc[at..].starts_with("\"com.example:"),
        "{at}"
    );
    let one = ProductsView::parse(doc.as_bytes()).expect("one thread");
    let two = ProductsView::parse_on_two_threads(doc.as_bytes()).expect("two threads");
    assert_eq!(two.item_count(), one.item_count());
    for (filters, max) in [
        (&[][..], None),
        (&["arch=amd64"][..], Some(2)),
        (&["label=beta", "ok=True"][..], None),
        (&["item_name~^note", "ratio~\\.5$"][..], Some(1)),
    ] {
        let expected = selected(&one, filters, max);
        assert!(!expected.is_empty(), "{filters:?}");
        assert_eq!(selected(&two, filters, max), expected, "{filters:?}");
    }
    let model = Products::from_slice(doc.as_bytes(), "d").unwrap();
    let all: Vec<String> = select(&model, &FilterSet::default(), None)
        .iter()
        .map(|s| format!("{:?}", s.flat))
        .collect();
    assert_eq!(selected(&two, &[], None), all);
}

#[test]
fn two_threads_refuse_what_one_refuses() {
    let doc = many_products(50);
    // The same product name in both halves.
    let twice = doc.replace("com.example:49:", "com.example:0:");
    assert!(ProductsView::parse(twice.as_bytes()).is_none());
    assert!(ProductsView::parse_on_two_threads(twice.as_bytes()).is_none());
    // Broken JSON in the second half.
    let broken = doc.replacen("\"beta\"", "beta", 140);
    assert!(ProductsView::parse_on_two_threads(broken.as_bytes()).is_none());
    // An unsafe path in the second half.
    let unsafe_path = doc.replace("p48/v1/disk.img", "../disk.img");
    assert!(ProductsView::parse_on_two_threads(unsafe_path.as_bytes()).is_none());
    // Compact documents have no place to split and are read on one thread.
    let value: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let compact = serde_json::to_string(&value).unwrap();
    assert!(super::split::find_split(&compact).is_none());
    let view = ProductsView::parse_on_two_threads(compact.as_bytes()).expect("compact");
    assert_eq!(view.item_count(), 50 * 3 * 2);
}
