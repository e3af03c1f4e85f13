//! Resuming uploads across writers, the way a server fronting the client
//! (a proxy) resumes it for every request: the ambiguous `Range: 0-0`
//! ("nothing" or "one byte") is read right for sessions this client closed.

mod support;

use bytes::Bytes;
use oci_core::{Digest, Registry, RepoName};

async fn resumed_sizes(chunks: &[&'static [u8]]) -> Vec<u64> {
    let client = support::ours_client().await;
    let repo: RepoName = "resume/sizes".parse().expect("repo");
    let writer = client.push_blob_chunked(&repo).await.expect("start");
    let mut id = writer.id().to_owned();
    writer.close().await.expect("close empty");
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    for chunk in chunks {
        let mut w = client
            .push_blob_chunked_resume(&repo, &id)
            .await
            .expect("resume");
        sizes.push(w.size());
        w.write(Bytes::from_static(chunk)).await.expect("write");
        all.extend_from_slice(chunk);
        id = w.id().to_owned();
        w.close().await.expect("close");
    }
    let w = client
        .push_blob_chunked_resume(&repo, &id)
        .await
        .expect("resume last");
    sizes.push(w.size());
    let d = w.commit(&Digest::sha256(&all)).await.expect("commit");
    assert_eq!(d.size, all.len() as u64);
    sizes
}

#[tokio::test]
async fn one_byte_sessions_resume_at_the_right_offset() {
    assert_eq!(resumed_sizes(&[b"a", b"b", b"cd"]).await, vec![0, 1, 2, 4]);
}

#[tokio::test]
async fn a_fresh_session_resumes_at_zero() {
    assert_eq!(resumed_sizes(&[b"hello"]).await, vec![0, 5]);
}
