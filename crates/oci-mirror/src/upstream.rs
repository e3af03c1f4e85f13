//! Which upstream a repository name belongs to, and the names it goes by
//! upstream and in the cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use oci_core::reference::{DOCKER_HUB_LIBRARY, is_docker_hub, namespace_component};
use oci_core::{Error, ErrorCode, Registry, RepoName, Result};

use crate::metrics::Counters;

/// Opens a connection to an upstream named by `host[:port]`, for a mirror
/// that allows any upstream ([`MirrorBuilder::any_upstream`](crate::MirrorBuilder::any_upstream)).
pub type Connect = Arc<dyn Fn(&str) -> Result<Arc<dyn Registry>> + Send + Sync>;

/// One upstream registry: its host, how to reach it, its counters.
pub(crate) struct Upstream {
    /// `host[:port]` as configured.
    pub(crate) host: String,
    /// The first component of its repositories' names in the cache.
    pub(crate) key: String,
    /// The registry itself (an HTTP client, or anything else).
    pub(crate) registry: Arc<dyn Registry>,
    /// Its counters.
    pub(crate) stats: Counters,
}

impl Upstream {
    pub(crate) fn new(host: &str, registry: Arc<dyn Registry>) -> Result<Upstream> {
        Ok(Upstream {
            host: host.to_ascii_lowercase(),
            key: namespace_component(host)?,
            registry,
            stats: Counters::default(),
        })
    }
}

/// A request's repository resolved: the upstream, the name there, and
/// the name in the cache.
pub(crate) struct Target {
    pub(crate) upstream: Arc<Upstream>,
    /// The repository's name upstream.
    pub(crate) name: RepoName,
    /// The repository's name in the cache: `KEY/name`.
    pub(crate) cache: RepoName,
}

impl Target {
    fn new(upstream: Arc<Upstream>, name: RepoName) -> Result<Target> {
        let name = hub_name(&upstream.host, name)?;
        Ok(Target {
            cache: name.in_namespace(&upstream.host)?,
            name,
            upstream,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.upstream.host, self.name)
    }
}

/// The upstreams a mirror may reach.
pub(crate) struct Upstreams {
    by_key: RwLock<HashMap<String, Arc<Upstream>>>,
    default: Option<String>,
    any: Option<Connect>,
}

impl Upstreams {
    pub(crate) fn new(
        upstreams: Vec<Upstream>,
        default: Option<String>,
        any: Option<Connect>,
    ) -> Upstreams {
        let by_key = upstreams
            .into_iter()
            .map(|u| (u.key.clone(), Arc::new(u)))
            .collect();
        Upstreams {
            by_key: RwLock::new(by_key),
            default,
            any,
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Upstream>> {
        self.by_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Every upstream known so far.
    pub(crate) fn all(&self) -> Vec<Arc<Upstream>> {
        self.by_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The upstream `host` names, connecting to it if any host is allowed.
    pub(crate) fn find(&self, host: &str) -> Result<Option<Arc<Upstream>>> {
        let key = namespace_component(host)?;
        if let Some(u) = self.get(&key) {
            return Ok(Some(u));
        }
        let Some(connect) = &self.any else {
            return Ok(None);
        };
        let upstream = Arc::new(Upstream::new(host, connect(host)?)?);
        let mut by_key = self.by_key.write().unwrap_or_else(PoisonError::into_inner);
        Ok(Some(by_key.entry(key).or_insert(upstream).clone()))
    }

    /// Resolves a repository name: `HOST/NAME` (the form a server gives
    /// for `?ns=HOST`) for a mirrored host; otherwise a name of the
    /// default upstream. A name that starts with a host this mirror does
    /// not serve is `DENIED`.
    pub(crate) fn route(&self, name: &RepoName) -> Result<Target> {
        if let Some((host, rest)) = name.split_namespace() {
            return match self.find(&host)? {
                Some(upstream) => Target::new(upstream, rest),
                None => Err(Error::new(
                    ErrorCode::Denied,
                    format!("{host} is not an upstream of this mirror"),
                )),
            };
        }
        let Some(upstream) = self.default.as_deref().and_then(|key| self.get(key)) else {
            return Err(Error::new(
                ErrorCode::NameUnknown,
                format!(
                    "{name} names no upstream: this mirror has no default upstream; \
                     name one with ?ns=HOST or as HOST/{name}"
                ),
            ));
        };
        Target::new(upstream, name.clone())
    }
}

/// A Docker Hub name of one component lives under `library/`, as docker
/// clients normalise it.
fn hub_name(host: &str, name: RepoName) -> Result<RepoName> {
    if is_docker_hub(host) && !name.as_str().contains('/') {
        return name.prefixed(&DOCKER_HUB_LIBRARY.parse()?);
    }
    Ok(name)
}
