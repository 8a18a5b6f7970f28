//! Helpers shared by the command-line tests that run against the OpenStack test bed.
// Each test binary includes this module and uses only some of it.
#![allow(dead_code)]

use glance_target::{GlanceClient, Image, ListQuery, Session};

/// A name no other test (or earlier run) uses: `name`, this process and the time.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cli.{name}.{}.{nanos}", std::process::id())
}

/// Our project's images carrying `content_id`, any status; `clean` deletes them.
pub fn images(content_id: &str, clean: bool) -> Vec<Image> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let session = Session::from_env().expect("OS_* variables (source the test bed's openrc)");
        let project = session
            .token()
            .await
            .expect("token")
            .project_id
            .expect("project");
        let glance = GlanceClient::new(&session).await.expect("glance");
        let found: Vec<Image> = glance
            .list(
                &ListQuery::new()
                    .filter("content_id", content_id)
                    .filter("owner", &project),
            )
            .await
            .expect("list");
        if clean {
            for i in &found {
                let _ = glance.delete(&i.id).await;
            }
        }
        found
    })
}
