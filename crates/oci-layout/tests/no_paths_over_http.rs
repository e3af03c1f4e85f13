//! A store that fails on disk keeps the failing path (and its io error) as
//! the error's source for its own logs; what reaches a client over HTTP is
//! the code and a message without it.

use std::sync::Arc;

use oci_layout::LayoutRegistry;

#[tokio::test]
async fn a_failing_file_is_reported_without_its_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("store-root-that-must-not-leak");
    std::fs::create_dir_all(&root).expect("store root");
    // One repository whose index does not parse, one whose index cannot be
    // read at all (it is a directory).
    for repo in ["corrupt", "unreadable"] {
        std::fs::create_dir_all(root.join(repo)).expect("repository");
        std::fs::write(
            root.join(repo).join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .expect("layout file");
    }
    std::fs::write(root.join("corrupt/index.json"), b"{not json").expect("index");
    std::fs::create_dir_all(root.join("unreadable/index.json")).expect("index dir");
    let registry = LayoutRegistry::open(&root).await.expect("open");
    let server = oci_server::TestServer::start(Arc::new(registry)).await;
    let client = oci_conformance::client::Client::new(&server.url());
    for repo in ["corrupt", "unreadable"] {
        let r = client
            .get(&format!("/v2/{repo}/manifests/latest"))
            .send()
            .await;
        let body = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status.as_u16(), 500, "{repo}: {body}");
        assert!(body.contains("\"UNKNOWN\""), "{repo}: {body}");
        assert!(
            !body.contains("store-root-that-must-not-leak") && !body.contains("index.json\""),
            "{repo}: the path reached the client: {body}"
        );
    }
}
