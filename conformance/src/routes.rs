//! The URL paths of the distribution API the checks call.

use oci_core::Digest;

/// `/v2/`: the API version check.
pub const API_ROOT: &str = "/v2/";

/// `/v2/<repo>/manifests/<reference>` (a tag or a digest).
pub fn manifest(repo: &str, reference: &str) -> String {
    format!("/v2/{repo}/manifests/{reference}")
}

/// `/v2/<repo>/blobs/<digest>`.
pub fn blob(repo: &str, digest: &Digest) -> String {
    format!("/v2/{repo}/blobs/{digest}")
}

/// `/v2/<repo>/blobs/uploads/`: where uploads start.
pub fn uploads(repo: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/")
}

/// `/v2/<repo>/tags/list`.
pub fn tags(repo: &str) -> String {
    format!("/v2/{repo}/tags/list")
}

/// `/v2/<repo>/referrers/<digest>`.
pub fn referrers(repo: &str, digest: &Digest) -> String {
    format!("/v2/{repo}/referrers/{digest}")
}
