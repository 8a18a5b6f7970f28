//! Our CPython-compatible formatting against CPython itself, on values that exercise the
//! corner cases (quotes, escapes, non-ASCII, long values with and without spaces, wrapping).

use std::borrow::Cow;
use std::io::Write;
use std::process::{Command, Stdio};

use sstream_cli::pyfmt;

const CASES: &[&[(&str, &str)]] = &[
    &[("a", "1"), ("b", "2")],
    &[("pubname", "ubuntu-xenial-16.04-amd64-server-20161101"), ("it's", "say \"hi\""), ("k", "tab\there")],
    &[("label", "a long label with many words that will certainly need to wrap across several lines of output")],
    &[("z", "ünïcödé ✓ and \u{7f} and \u{1F600}"), ("url", "http://cloud-images.ubuntu.com/releases/server/releases/xenial/release-20161101/ubuntu-16.04-server-cloudimg-amd64-disk1.img")],
    &[("lines", "first line\nsecond line that is a good deal longer than the first one, to force a split\n")],
    &[("sp", "   leading and trailing spaces   "), ("e", ""), ("bs", "back\\slash")],
    &[("mixed", "both ' and \" quotes in a value long enough to need more than one line when pretty printed")],
];

fn python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn as_json(case: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = case
        .iter()
        .map(|(k, v)| {
            format!(
                "[{}, {}]",
                serde_json::to_string(k).unwrap(),
                serde_json::to_string(v).unwrap()
            )
        })
        .collect();
    format!("[{}]", pairs.join(", "))
}

fn pairs(case: &[(&'static str, &'static str)]) -> Vec<(&'static str, Cow<'static, str>)> {
    case.iter().map(|&(k, v)| (k, Cow::Borrowed(v))).collect()
}

#[test]
fn repr_pprint_and_json_match_cpython() {
    for case in CASES {
        let input = as_json(case);
        let p = pairs(case);
        let script_repr = "import json,sys; print(dict(json.load(sys.stdin)))";
        assert_eq!(
            format!("{}\n", pyfmt::repr_dict(&p)),
            python(script_repr, &input),
            "repr {case:?}"
        );
        let script_pprint = "import json,sys,pprint; pprint.pprint(dict(json.load(sys.stdin)))";
        assert_eq!(
            pyfmt::pprint_dict(&p),
            python(script_pprint, &input),
            "pprint {case:?}"
        );
        let script_json =
            "import json,sys; print(json.dumps([dict(json.load(sys.stdin))], indent=2, sort_keys=True, separators=(',', ': ')))";
        assert_eq!(
            format!("{}\n", pyfmt::json_dumps(std::slice::from_ref(&p))),
            python(script_json, &input),
            "json {case:?}"
        );
    }
}
