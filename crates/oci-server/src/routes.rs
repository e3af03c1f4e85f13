//! Path and query parsing: a request path becomes a typed [`Route`], parsed
//! from the end because repository names may contain slashes.

use oci_core::wire;
use oci_core::{Digest, Error, ErrorCode, ManifestRef, RepoName, Result};

/// The longest upload id accepted in a path. Ids that carry a remote
/// session's URL (a proxy's; two of them in a unified pair over proxies)
/// run to several hundred characters.
const MAX_UPLOAD_ID_LEN: usize = 4096;

/// An endpoint of the distribution API, with its path parameters validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`: the repository listing.
    Catalog,
    /// `/v2/<name>/blobs/<digest>`.
    Blob { repo: RepoName, digest: Digest },
    /// `/v2/<name>/blobs/uploads/`: starts an upload (or mounts a blob).
    UploadStart { repo: RepoName },
    /// `/v2/<name>/blobs/uploads/<id>`: one upload session.
    Upload { repo: RepoName, id: String },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        repo: RepoName,
        reference: ManifestRef,
    },
    /// `/v2/<name>/manifests/<reference>` where the reference is neither a
    /// tag nor a digest: no manifest can be there, so a read or delete is
    /// a 404 `MANIFEST_UNKNOWN`; a PUT is refused for the reference itself.
    ManifestBadRef { repo: RepoName, reference: String },
    /// `/v2/<name>/tags/list`.
    Tags { repo: RepoName },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers { repo: RepoName, subject: Digest },
}

impl Route {
    /// Parses a request path. Unknown paths are 404 `UNSUPPORTED`; known
    /// shapes with an invalid name, digest or tag are 400s.
    pub(crate) fn parse(path: &str) -> Result<Route> {
        let rest = match path.strip_prefix("/v2") {
            Some("") | Some("/") => return Ok(Route::Base),
            Some(rest) => rest.strip_prefix('/').ok_or_else(|| not_found(path))?,
            None => return Err(not_found(path)),
        };
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let n = segments.len();
        let tail = |k: usize| segments.get(n.wrapping_sub(k)).copied();
        let name = |k: usize| -> Result<RepoName> { segments[..n - k].join("/").parse() };
        // Upload start: `<name>/blobs/uploads/` (the trailing slash is optional).
        if n >= 4 && tail(3) == Some("blobs") && tail(2) == Some("uploads") && tail(1) == Some("") {
            return Ok(Route::UploadStart { repo: name(3)? });
        }
        if n >= 3 && tail(2) == Some("blobs") && tail(1) == Some("uploads") {
            return Ok(Route::UploadStart { repo: name(2)? });
        }
        if n >= 4 && tail(3) == Some("blobs") && tail(2) == Some("uploads") {
            let repo = name(3)?;
            let id = upload_id(tail(1).unwrap_or_default())?;
            return Ok(Route::Upload { repo, id });
        }
        if n >= 3 && tail(2) == Some("blobs") {
            let repo = name(2)?;
            let digest = decode_segment(tail(1).unwrap_or_default(), ErrorCode::DigestInvalid)?;
            let digest = digest.parse()?;
            return Ok(Route::Blob { repo, digest });
        }
        if n >= 3 && tail(2) == Some("manifests") {
            let repo = name(2)?;
            let segment = tail(1).unwrap_or_default();
            let reference = decode_segment(segment, ErrorCode::ManifestInvalid)
                .unwrap_or_else(|_| segment.to_owned());
            return Ok(match reference.parse() {
                Ok(reference) => Route::Manifest { repo, reference },
                Err(_) => Route::ManifestBadRef { repo, reference },
            });
        }
        if n >= 3 && tail(2) == Some("tags") && tail(1) == Some("list") {
            return Ok(Route::Tags { repo: name(2)? });
        }
        if n >= 3 && tail(2) == Some("referrers") {
            let repo = name(2)?;
            let subject = decode_segment(tail(1).unwrap_or_default(), ErrorCode::DigestInvalid)?;
            let subject = subject.parse()?;
            return Ok(Route::Referrers { repo, subject });
        }
        Err(not_found(path))
    }

    /// The route's repository, if it has one.
    pub(crate) fn repo(&self) -> Option<&RepoName> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Blob { repo, .. }
            | Route::UploadStart { repo }
            | Route::Upload { repo, .. }
            | Route::Manifest { repo, .. }
            | Route::ManifestBadRef { repo, .. }
            | Route::Tags { repo }
            | Route::Referrers { repo, .. } => Some(repo),
        }
    }
}

impl Route {
    /// The route with its repository named within the registry `ns`
    /// (`?ns=docker.io` turns `library/alpine` into
    /// `docker.io/library/alpine`: [`RepoName::in_namespace`]); an `ns`
    /// that names no host is a 400 `NAME_INVALID`.
    pub(crate) fn in_namespace(self, ns: &str) -> Result<Route> {
        let q = |repo: RepoName| repo.in_namespace(ns);
        Ok(match self {
            Route::Base | Route::Catalog => self,
            Route::Blob { repo, digest } => Route::Blob {
                repo: q(repo)?,
                digest,
            },
            Route::UploadStart { repo } => Route::UploadStart { repo: q(repo)? },
            Route::Upload { repo, id } => Route::Upload { repo: q(repo)?, id },
            Route::Manifest { repo, reference } => Route::Manifest {
                repo: q(repo)?,
                reference,
            },
            Route::ManifestBadRef { repo, reference } => Route::ManifestBadRef {
                repo: q(repo)?,
                reference,
            },
            Route::Tags { repo } => Route::Tags { repo: q(repo)? },
            Route::Referrers { repo, subject } => Route::Referrers {
                repo: q(repo)?,
                subject,
            },
        })
    }
}

impl Route {
    /// The route's canonical path, which parses back to the same route.
    pub(crate) fn path(&self) -> String {
        match self {
            Route::Base => "/v2/".to_owned(),
            Route::Catalog => "/v2/_catalog".to_owned(),
            Route::Blob { repo, digest } => blob_location(repo, digest),
            Route::UploadStart { repo } => format!("/v2/{repo}/blobs/uploads/"),
            Route::Upload { repo, id } => upload_location(repo, id),
            Route::Manifest { repo, reference } => format!("/v2/{repo}/manifests/{reference}"),
            Route::ManifestBadRef { repo, reference } => format!(
                "/v2/{repo}/manifests/{}",
                wire::encode_query_value(reference)
            ),
            Route::Tags { repo } => format!("/v2/{repo}/tags/list"),
            Route::Referrers { repo, subject } => format!("/v2/{repo}/referrers/{subject}"),
        }
    }
}

/// The 404 for a path that is no endpoint of the API.
fn not_found(path: &str) -> Error {
    Error::new(
        ErrorCode::Unsupported,
        format!("{path} is not an endpoint of the distribution API"),
    )
    .with_status(404)
}

/// Decodes a percent-encoded path segment (clients may send `%3A` for `:`);
/// malformed encoding is refused with `code`, the segment's own 400.
fn decode_segment(segment: &str, code: ErrorCode) -> Result<String> {
    if segment.contains('%') {
        wire::decode_query_value(segment).map_err(|e| Error::new(code, e.message()))
    } else {
        Ok(segment.to_owned())
    }
}

/// Validates an upload id path segment: the id is opaque, but it must be
/// non-empty, of bounded length and free of control characters. Stores
/// hand out ids of unreserved characters only ([`oci_core::upload_id`]),
/// which no client's URL handling changes; `Location` still percent-encodes
/// anything else, for clients that send it back as given.
fn upload_id(segment: &str) -> Result<String> {
    let unknown = || {
        Error::new(
            ErrorCode::BlobUploadUnknown,
            format!("upload {segment:?} is not known"),
        )
    };
    let id = decode_segment(segment, ErrorCode::BlobUploadUnknown).map_err(|_| unknown())?;
    if id.is_empty() || id.len() > MAX_UPLOAD_ID_LEN || id.bytes().any(|b| b.is_ascii_control()) {
        return Err(unknown());
    }
    Ok(id)
}

/// The path of an upload session, as sent in `Location`.
pub(crate) fn upload_location(repo: &RepoName, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{}", wire::encode_query_value(id))
}

/// The path of a blob, as sent in `Location`.
pub(crate) fn blob_location(repo: &RepoName, digest: &Digest) -> String {
    format!("/v2/{repo}/blobs/{digest}")
}

/// The path of a manifest, as sent in `Location`.
pub(crate) fn manifest_location(repo: &RepoName, digest: &Digest) -> String {
    format!("/v2/{repo}/manifests/{digest}")
}

/// A request's decoded query parameters.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string; malformed percent-encoding is a 400.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Query> {
        let pairs = wire::parse_query(raw.unwrap_or_default()).map_err(|e| e.with_status(400))?;
        Ok(Query { pairs })
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.all(key).next()
    }

    /// Every value of `key`, in order.
    pub(crate) fn all<'a, 'k>(
        &'a self,
        key: &'k str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(Route::parse("/v2/").unwrap(), Route::Base);
        assert_eq!(Route::parse("/v2").unwrap(), Route::Base);
        assert_eq!(Route::parse("/v2/_catalog").unwrap(), Route::Catalog);
        assert_eq!(
            Route::parse(&format!("/v2/a/b/blobs/{D}")).unwrap(),
            Route::Blob {
                repo: repo("a/b"),
                digest: D.parse().unwrap()
            }
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads/").unwrap(),
            Route::UploadStart { repo: repo("a") }
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads").unwrap(),
            Route::UploadStart { repo: repo("a") }
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads/xyz-1").unwrap(),
            Route::Upload {
                repo: repo("a"),
                id: "xyz-1".into()
            }
        );
        assert_eq!(
            Route::parse("/v2/x/y/z/manifests/v1").unwrap(),
            Route::Manifest {
                repo: repo("x/y/z"),
                reference: "v1".parse().unwrap()
            }
        );
        assert_eq!(
            Route::parse("/v2/a/tags/list").unwrap(),
            Route::Tags { repo: repo("a") }
        );
        assert_eq!(
            Route::parse(&format!("/v2/a/referrers/{}", D.replace(':', "%3A"))).unwrap(),
            Route::Referrers {
                repo: repo("a"),
                subject: D.parse().unwrap()
            }
        );
    }

    #[test]
    fn names_that_look_like_endpoints() {
        assert_eq!(
            Route::parse("/v2/a/blobs/blobs/uploads/").unwrap(),
            Route::UploadStart {
                repo: repo("a/blobs")
            }
        );
        assert_eq!(
            Route::parse("/v2/manifests/manifests/latest").unwrap(),
            Route::Manifest {
                repo: repo("manifests"),
                reference: "latest".parse().unwrap()
            }
        );
    }

    #[test]
    fn rejects_invalid_parts() {
        let code = |p: &str| Route::parse(p).unwrap_err().code();
        assert_eq!(code("/v2/A/manifests/latest"), ErrorCode::NameInvalid);
        assert_eq!(code("/v2//manifests/latest"), ErrorCode::NameInvalid);
        assert_eq!(code("/v2/a/blobs/sha256:00"), ErrorCode::DigestInvalid);
        assert_eq!(
            Route::parse("/v2/a/manifests/-bad").unwrap(),
            Route::ManifestBadRef {
                repo: repo("a"),
                reference: "-bad".into()
            }
        );
        // Malformed percent-encoding names the segment's own code, not UNKNOWN.
        assert_eq!(code("/v2/a/blobs/sha256%zz"), ErrorCode::DigestInvalid);
        assert_eq!(code("/v2/a/referrers/sha256%3"), ErrorCode::DigestInvalid);
        // A manifest reference that is not one (even mis-encoded) is a route
        // of its own: reads answer 404, writes 400.
        assert_eq!(
            Route::parse("/v2/a/manifests/v1%ff").unwrap(),
            Route::ManifestBadRef {
                repo: repo("a"),
                reference: "v1%ff".into()
            }
        );
        assert_eq!(
            code("/v2/a/blobs/uploads/%0a"),
            ErrorCode::BlobUploadUnknown
        );
        let e = Route::parse("/v3/").unwrap_err();
        assert_eq!(e.status(), 404);
        assert_eq!(Route::parse("/v2/a/b").unwrap_err().status(), 404);
        assert_eq!(Route::parse("/v2x").unwrap_err().status(), 404);
    }

    #[test]
    fn locations_round_trip() {
        let loc = upload_location(&repo("a/b"), "id with/slash");
        let Route::Upload { id, .. } = Route::parse(&loc).unwrap() else {
            panic!("{loc}")
        };
        assert_eq!(id, "id with/slash");
        // A proxy's id carries a remote session URL; a unified pair, two.
        let long = "a".repeat(3000);
        let loc = upload_location(&repo("a/b"), &long);
        assert!(matches!(Route::parse(&loc), Ok(Route::Upload { id, .. }) if id == long));
    }

    #[test]
    fn queries() {
        let q = Query::parse(Some("tag=a&tag=b&n=2")).unwrap();
        assert_eq!(q.all("tag").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(q.get("n"), Some("2"));
        assert_eq!(Query::parse(Some("x=%zz")).unwrap_err().status(), 400);
    }
}
