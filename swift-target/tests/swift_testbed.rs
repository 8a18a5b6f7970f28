//! The Swift client against the real Swift of the OpenStack test bed
//! (`scripts/test` starts it and sources its openrc).

use bytes::Bytes;
use futures::stream;
use swift_target::{Error, PutOptions, Session, SwiftClient};

const NEEDS: &str = "needs the OpenStack test bed (scripts/test runs it)";

async fn swift() -> SwiftClient {
    let session = Session::from_env().unwrap_or_else(|e| panic!("{e}: {NEEDS}"));
    SwiftClient::new(&session)
        .await
        .unwrap_or_else(|e| panic!("{e}: {NEEDS}"))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u32>())
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn listings_page_through_objects_and_containers() {
    let swift = swift().await.with_page_size(2);
    let container = unique("pages");
    swift
        .create_container(&container)
        .await
        .expect("create container");
    // Creating it again is fine.
    swift
        .create_container(&container)
        .await
        .expect("create container again");
    let names = ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1"];
    for n in names {
        swift
            .put_object(
                &container,
                n,
                Bytes::from(n.as_bytes().to_vec()),
                &PutOptions::default(),
            )
            .await
            .expect("put");
    }
    let all: Vec<String> = swift
        .list_objects(&container, None)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(all, names);
    let a: Vec<String> = swift
        .list_objects(&container, Some("a/"))
        .await
        .expect("list a/")
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(a, &names[..5]);

    let containers = swift
        .list_containers(Some(&container))
        .await
        .expect("containers");
    assert_eq!(
        containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        [container.as_str()]
    );

    for n in names {
        swift.delete_object(&container, n).await.expect("delete");
    }
    assert!(swift
        .list_objects(&container, None)
        .await
        .expect("empty listing")
        .is_empty());
    swift
        .delete_container(&container)
        .await
        .expect("delete container");
    let err = swift
        .list_objects(&container, None)
        .await
        .expect_err("container gone");
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
#[ignore = "needs the OpenStack test bed (scripts/test runs it)"]
async fn streamed_put_with_and_without_length_and_content_type() {
    let swift = swift().await;
    let container = unique("stream");
    swift
        .create_container(&container)
        .await
        .expect("create container");
    let body: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let chunks = || {
        let parts: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(65_536)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(parts)
    };
    let opts = PutOptions {
        content_type: Some("application/x-test".into()),
        ..PutOptions::default()
    };
    swift
        .put_object_stream(
            &container,
            "sized",
            chunks(),
            Some(body.len() as u64),
            &opts,
        )
        .await
        .expect("sized put");
    swift
        .put_object_stream(&container, "chunked", chunks(), None, &opts)
        .await
        .expect("chunked put");
    for name in ["sized", "chunked"] {
        let meta = swift.head_object(&container, name).await.expect("head");
        assert_eq!(meta.size, Some(body.len() as u64), "{name}");
        assert_eq!(
            meta.content_type.as_deref(),
            Some("application/x-test"),
            "{name}"
        );
        let got = swift
            .get_object(&container, name)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert!(got == body, "{name}: content differs");
        swift.delete_object(&container, name).await.expect("delete");
    }
    swift
        .delete_container(&container)
        .await
        .expect("delete container");
}
