//! Any bytes: parsing an index, products or mirrors document never panics, and a document that
//! parses survives serialise -> parse unchanged, with stable output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simplestreams_core::{to_vec_pretty, Document};

fn serialise(doc: &Document) -> Vec<u8> {
    match doc {
        Document::Index(index) => index.to_vec_pretty(),
        Document::Products(products) => products.to_vec_pretty(),
        Document::Mirrors(mirrors) => to_vec_pretty(mirrors),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = Document::from_slice(data, "fuzz.json") else {
        return;
    };
    let bytes = serialise(&doc);
    let again = match Document::from_slice(&bytes, "fuzz.json") {
        Ok(again) => again,
        Err(e) => panic!("a serialised document does not parse again: {e}"),
    };
    assert_eq!(doc, again, "parse -> serialise -> parse changed the document");
    assert_eq!(bytes, serialise(&again), "serialising is not stable");
});
