//! Any text: parsing a filter never panics; a parsed filter displays as text that parses to the
//! same filter (key, operator, value), and matching any value never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simplestreams_core::{Filter, FilterSet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = Filter::parse(text) {
        let shown = filter.to_string();
        let again = match Filter::parse(&shown) {
            Ok(again) => again,
            Err(e) => panic!("{text:?} displays as {shown:?}, which does not parse: {e}"),
        };
        assert_eq!(
            (again.key(), again.op(), again.value()),
            (filter.key(), filter.op(), filter.value()),
            "{text:?} displays as {shown:?}, which parses differently"
        );
        assert_eq!(again.to_string(), shown);
        filter.matches_value(text);
        filter.matches_value("");
    }
    // Several expressions, one a line, as sstream-query takes them.
    let lines: Vec<&str> = text.lines().collect();
    let _ = FilterSet::parse(&lines);
});
