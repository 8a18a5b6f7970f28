//! Every store and target backend of this crate passes the conformance suite.

use std::sync::Arc;

use simplestreams_mirror::testkit::TargetCapabilities;
use simplestreams_mirror::{testkit, InMemory, LocalStore, StoreTarget};

#[tokio::test]
async fn in_memory_store_conforms() {
    testkit::store_conformance(&InMemory::new()).await;
}

#[tokio::test]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    testkit::store_conformance(&LocalStore::new(dir.path())).await;
}

#[tokio::test]
async fn store_target_on_memory_conforms() {
    testkit::target_conformance(
        &StoreTarget::new(Arc::new(InMemory::new())),
        TargetCapabilities::MIRROR,
    )
    .await;
}

#[tokio::test]
async fn store_target_on_a_directory_conforms() {
    let dir = tempfile::tempdir().unwrap();
    testkit::target_conformance(
        &StoreTarget::new(Arc::new(LocalStore::new(dir.path()))),
        TargetCapabilities::MIRROR,
    )
    .await;
}
