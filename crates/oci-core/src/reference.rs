//! Repository names, tags and image references
//! (`host[:port]/path[:tag][@digest]`) with the distribution grammar and
//! the Docker Hub defaults in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};

/// The registry host a reference without one points at.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's API is actually served from.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The namespace a single-component Docker Hub name lives in.
pub const DOCKER_HUB_LIBRARY: &str = "library";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name the grammar allows.
pub const MAX_NAME_LEN: usize = 255;

/// The names Docker Hub goes by; all are one registry.
pub fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// A validated repository name, e.g. `library/alpine`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This name with another name's components prepended (`prefix/self`).
    pub fn prefixed(&self, prefix: &RepoName) -> Result<RepoName> {
        format!("{}/{}", prefix.0, self.0).parse()
    }

    /// This name with `prefix/` removed, if it starts with it.
    pub fn strip_prefix(&self, prefix: &RepoName) -> Option<RepoName> {
        let rest = self.0.strip_prefix(prefix.as_str())?.strip_prefix('/')?;
        Some(RepoName(rest.to_owned()))
    }

    /// This name qualified by the registry `host[:port]` it belongs to, as
    /// a pull-through mirror sees it: `namespace_component(host)/self`
    /// (`docker.io/library/alpine`, `localhost_5000/app`).
    pub fn in_namespace(&self, host: &str) -> Result<RepoName> {
        format!("{}/{}", namespace_component(host)?, self.0).parse()
    }

    /// The registry host a namespaced name starts with (see
    /// [`RepoName::in_namespace`]) and the rest of the name, if its first
    /// component looks like a host by docker's rule: it has a `.` or a
    /// port, or is `localhost`.
    pub fn split_namespace(&self) -> Option<(String, RepoName)> {
        let (first, rest) = self.0.split_once('/')?;
        let host = namespace_host(first);
        let looks_like_host = first.contains('.') || host.contains(':') || first == "localhost";
        looks_like_host.then(|| (host, RepoName(rest.to_owned())))
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !is_alnum(b[i]) {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = Error;

    fn from_str(s: &str) -> Result<RepoName> {
        let invalid = |why: &str| {
            Error::new(
                ErrorCode::NameInvalid,
                format!("invalid repository name {s:?}: {why}"),
            )
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(invalid(&format!("longer than {MAX_NAME_LEN} characters")));
        }
        for component in s.split('/') {
            if !valid_component(component) {
                return Err(invalid(
                    "each path component must be lower-case letters and digits, separated by '.', '_', '__' or dashes",
                ));
            }
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoName({})", self.0)
    }
}

impl Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RepoName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A validated tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag `latest`.
    pub fn latest() -> Tag {
        Tag(DEFAULT_TAG.to_owned())
    }

    /// The tag under which the referrers tag schema keeps the referrers
    /// index of `subject` (`<alg>-<first 64 hex>`).
    pub fn referrers_fallback(subject: &Digest) -> Tag {
        let hex = subject.hex();
        let hex = &hex[..hex.len().min(64)];
        Tag(format!("{}-{hex}", subject.algorithm()))
    }
}

impl FromStr for Tag {
    type Err = Error;

    fn from_str(s: &str) -> Result<Tag> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok {
            Ok(Tag(s.to_owned()))
        } else {
            // Distribution answers TAG_INVALID, which the spec folds into
            // MANIFEST_INVALID for pushes; as a path segment it is no valid
            // reference at all.
            Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!("invalid tag {s:?}: must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"),
            ))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a manifest path segment names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestRef {
    /// A tag.
    Tag(Tag),
    /// A digest.
    Digest(Digest),
}

impl FromStr for ManifestRef {
    type Err = Error;

    /// A string with a `:` is a digest, anything else a tag.
    fn from_str(s: &str) -> Result<ManifestRef> {
        if s.contains(':') {
            s.parse().map(ManifestRef::Digest)
        } else {
            s.parse().map(ManifestRef::Tag)
        }
    }
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => t.fmt(f),
            ManifestRef::Digest(d) => d.fmt(f),
        }
    }
}

impl From<Tag> for ManifestRef {
    fn from(t: Tag) -> ManifestRef {
        ManifestRef::Tag(t)
    }
}

impl From<Digest> for ManifestRef {
    fn from(d: Digest) -> ManifestRef {
        ManifestRef::Digest(d)
    }
}

/// A full image reference: `host[:port]/path[:tag][@digest]`.
///
/// ```
/// use oci_core::Reference;
/// let r: Reference = "alpine".parse().unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
/// let r: Reference = "localhost:5000/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
/// assert_eq!(r.registry(), "localhost:5000");
/// assert!(r.tag().is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: RepoName,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl Reference {
    /// A reference from its parts.
    pub fn new(
        registry: impl Into<String>,
        repository: RepoName,
        tag: Option<Tag>,
        digest: Option<Digest>,
    ) -> Reference {
        Reference {
            registry: registry.into(),
            repository,
            tag,
            digest,
        }
    }

    /// Parses a reference that must name only a repository (no tag, no
    /// digest), as `tags` and `catalog`-style commands need.
    pub fn parse_repository(s: &str) -> Result<Reference> {
        let r = Reference::parse_bare(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(Error::new(
                ErrorCode::NameInvalid,
                format!("{s:?} names a tag or digest; give a repository only"),
            ));
        }
        Ok(r)
    }

    /// Parses without filling in the default tag.
    pub fn parse_bare(s: &str) -> Result<Reference> {
        let invalid = |why: &str| {
            Error::new(
                ErrorCode::NameInvalid,
                format!("invalid reference {s:?}: {why}"),
            )
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (
                    &rest[..at],
                    Some(
                        rest[at + 1..]
                            .parse::<Tag>()
                            .map_err(|e| invalid(e.message()))?,
                    ),
                )
            }
            None => (rest, None),
        };
        let (registry, path) = split_host(name);
        if registry.is_empty() {
            return Err(invalid("empty registry host"));
        }
        if !valid_host(registry) {
            return Err(invalid(&format!("invalid registry host {registry:?}")));
        }
        let path = if is_docker_hub(registry) && !path.contains('/') {
            format!("{DOCKER_HUB_LIBRARY}/{path}")
        } else {
            path.to_owned()
        };
        let repository: RepoName = path.parse().map_err(|e: Error| invalid(e.message()))?;
        let registry = if is_docker_hub(registry) {
            DOCKER_HUB
        } else {
            registry
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (with port), `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to connect to: Docker Hub's API host for `docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository.
    pub fn repository(&self) -> &RepoName {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to fetch: the digest if present (it pins), else the tag, else `latest`.
    pub fn manifest_ref(&self) -> ManifestRef {
        match (&self.digest, &self.tag) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.clone()),
            (None, None) => ManifestRef::Tag(Tag::latest()),
        }
    }

    /// The same reference pinned to a digest (the tag kept for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference with a tag and no digest.
    pub fn with_tag(&self, tag: Tag) -> Reference {
        Reference {
            tag: Some(tag),
            digest: None,
            ..self.clone()
        }
    }

    /// The same registry with another repository, no tag or digest.
    pub fn with_repository(&self, repository: RepoName) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository,
            tag: None,
            digest: None,
        }
    }

    /// Whether the registry is a loopback host, which defaults to plain http.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// The repository path component that stands for the registry
/// `host[:port]` in a namespaced name: the host in lower case, and a port
/// after `_` (`localhost:5000` becomes `localhost_5000`; no DNS name has an
/// `_`, so the form is unambiguous). An IPv6 literal, which has `:`s,
/// becomes `ip6__` and its eight groups in hex joined by `-`
/// (`[::1]:5000` is `ip6__0-0-0-0-0-0-0-1_5000`).
pub fn namespace_component(host: &str) -> Result<String> {
    let invalid = |why: &str| {
        Error::new(
            ErrorCode::NameInvalid,
            format!("invalid registry host {host:?}: {why}"),
        )
    };
    let lower = host.to_ascii_lowercase();
    let (name, port) = if let Some(rest) = lower.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return Err(invalid("an IPv6 address needs its closing ']'"));
        };
        let address: std::net::Ipv6Addr = address
            .parse()
            .map_err(|_| invalid("not an IPv6 address"))?;
        let groups: Vec<String> = address
            .segments()
            .iter()
            .map(|g| format!("{g:x}"))
            .collect();
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').unwrap_or("")),
        };
        (format!("{IPV6_COMPONENT}{}", groups.join("-")), port)
    } else {
        match lower.split_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (lower.clone(), None),
        }
    };
    let component = match port {
        Some(port) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("the port must be a number"));
            }
            format!("{name}_{port}")
        }
        None => name,
    };
    if !valid_component(&component) {
        return Err(invalid("not a host name"));
    }
    Ok(component)
}

/// How a [`namespace_component`] for an IPv6 address starts (no DNS name
/// has an `_`).
const IPV6_COMPONENT: &str = "ip6__";

/// The `host[:port]` a [`namespace_component`] stands for.
pub fn namespace_host(component: &str) -> String {
    let (name, port) = match component.rsplit_once('_') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Some(port))
        }
        _ => (component, None),
    };
    let ipv6 = name.strip_prefix(IPV6_COMPONENT).and_then(|groups| {
        let groups = groups
            .split('-')
            .map(|g| u16::from_str_radix(g, 16).ok())
            .collect::<Option<Vec<u16>>>()?;
        let groups: [u16; 8] = groups.try_into().ok()?;
        Some(format!("[{}]", std::net::Ipv6Addr::from(groups)))
    });
    let name = ipv6.as_deref().unwrap_or(name);
    match port {
        Some(port) => format!("{name}:{port}"),
        None => name.to_owned(),
    }
}

/// Whether a `host[:port]` is `localhost`, `127.x.x.x` or `[::1]`.
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Splits `name` into registry and path by the docker rule: the first
/// component is a host if it has a '.', a ':', is `localhost`, or has an
/// upper-case letter; else the registry is Docker Hub.
fn split_host(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn valid_host(host: &str) -> bool {
    let (host, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip6, after)) => {
                if ip6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                ("x", after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.parse::<u16>().is_err())
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl FromStr for Reference {
    type Err = Error;

    /// Parses and fills in the tag `latest` when neither tag nor digest is given.
    fn from_str(s: &str) -> Result<Reference> {
        let mut r = Reference::parse_bare(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(Tag::latest());
        }
        Ok(r)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_names_round_trip_hosts_with_ports() {
        let name: RepoName = "library/alpine".parse().unwrap();
        for (host, qualified) in [
            ("docker.io", "docker.io/library/alpine"),
            ("Quay.IO", "quay.io/library/alpine"),
            ("127.0.0.1:5000", "127.0.0.1_5000/library/alpine"),
            ("localhost:5000", "localhost_5000/library/alpine"),
            ("localhost", "localhost/library/alpine"),
            ("[::1]:5000", "ip6__0-0-0-0-0-0-0-1_5000/library/alpine"),
            ("[::1]", "ip6__0-0-0-0-0-0-0-1/library/alpine"),
            (
                "[fd00::ab:1]:443",
                "ip6__fd00-0-0-0-0-0-ab-1_443/library/alpine",
            ),
        ] {
            let q = name.in_namespace(host).unwrap();
            assert_eq!(q.as_str(), qualified);
            let (back, rest) = q.split_namespace().unwrap();
            assert_eq!(back, host.to_ascii_lowercase());
            assert_eq!(rest, name);
        }
        for bad in [
            "host:",
            "host:x",
            "-host",
            "a b",
            "[::1",
            "[::1]5000",
            "[::1]:",
            "[nope]:1",
            "[fe80::1%eth0]",
        ] {
            let err = name.in_namespace(bad).unwrap_err();
            assert!(err.is(ErrorCode::NameInvalid), "{bad}");
        }
        let plain: RepoName = "team/app".parse().unwrap();
        assert_eq!(plain.split_namespace(), None);
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn repo_name_grammar() {
        for ok in [
            "a",
            "library/alpine",
            "a.b/c_d/e__f/g-h/i---j",
            "0/1/2",
            &"a".repeat(255),
        ] {
            ok.parse::<RepoName>()
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a_",
            ".a",
            "a b",
            "a:b",
            &"a".repeat(256),
        ] {
            let err = bad.parse::<RepoName>().unwrap_err();
            assert!(err.is(ErrorCode::NameInvalid), "{bad}");
        }
    }

    #[test]
    fn tag_grammar() {
        for ok in ["latest", "_x", "v1.2.3-rc_1", &"a".repeat(128)] {
            ok.parse::<Tag>().unwrap();
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_hub_defaults() {
        let r: Reference = "alpine".parse().unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository().as_str(), "library/alpine");
        assert_eq!(r.tag().unwrap().as_str(), "latest");
        let r: Reference = "index.docker.io/user/app:1".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app:1");
        let r: Reference = "docker.io/alpine:3".parse().unwrap();
        assert_eq!(r.repository().as_str(), "library/alpine");
    }

    #[test]
    fn hosts_ports_tags_digests() {
        let r: Reference = format!("localhost:5000/a/b:v1@{D}").parse().unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository().as_str(), "a/b");
        assert_eq!(r.tag().unwrap().as_str(), "v1");
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert!(r.is_loopback());
        assert_eq!(r.manifest_ref(), ManifestRef::Digest(D.parse().unwrap()));
        let r: Reference = "[::1]:5000/x".parse().unwrap();
        assert_eq!(r.registry(), "[::1]:5000");
        assert!(r.is_loopback());
        let r: Reference = "127.0.0.1:80/x".parse().unwrap();
        assert!(r.is_loopback());
        let r: Reference = "ghcr.io/o/r".parse().unwrap();
        assert!(!r.is_loopback());
        assert_eq!(r.to_string(), "ghcr.io/o/r:latest");
    }

    #[test]
    fn malformed_references() {
        for bad in [
            "",
            "upper/X",
            "host:99999/x",
            "a/b:",
            "a/b@sha256:00",
            "a/b:bad/tag",
            "h.io/",
            ":tag",
            "a b",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
        assert!(Reference::parse_repository("a/b:v1").is_err());
        assert!(Reference::parse_repository("localhost:5000/a").is_ok());
    }

    #[test]
    fn manifest_ref_and_fallback_tag() {
        assert!(matches!(
            "v1".parse::<ManifestRef>().unwrap(),
            ManifestRef::Tag(_)
        ));
        assert!(matches!(
            D.parse::<ManifestRef>().unwrap(),
            ManifestRef::Digest(_)
        ));
        assert!(
            "sha256:xyz"
                .parse::<ManifestRef>()
                .unwrap_err()
                .is(ErrorCode::DigestInvalid)
        );
        let t = Tag::referrers_fallback(&D.parse().unwrap());
        assert_eq!(t.as_str(), &D.replace(':', "-"));
    }
}
