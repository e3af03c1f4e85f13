//! Which upstream a repository name belongs to, and the names it goes by
//! upstream and in the cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

/// How many upstreams a mirror that allows any
/// ([`MirrorBuilder::any_upstream`](crate::MirrorBuilder::any_upstream))
/// keeps connected at once, unless set otherwise
/// ([`MirrorBuilder::any_upstream_limit`](crate::MirrorBuilder::any_upstream_limit)).
pub const DEFAULT_ANY_UPSTREAM_LIMIT: usize = 64;

/// The upstreams a mirror may reach: those configured, kept for ever, and
/// those connected on demand when any is allowed.
pub(crate) struct Upstreams {
    configured: HashMap<String, Arc<Upstream>>,
    default: Option<String>,
    any: Option<AnyUpstream>,
}

/// The upstreams connected on demand: at most `limit`, the least recently
/// used let go (its connection and counters; the cache keeps what it
/// fetched) and connected again when named again, so that the hosts
/// clients name cannot grow the mirror without bound.
pub(crate) struct AnyUpstream {
    connect: Connect,
    limit: usize,
    connected: Mutex<Connected>,
}

/// The upstreams connected on demand, by key, each with when it was last
/// used on `clock`.
#[derive(Default)]
struct Connected {
    by_key: HashMap<String, (Arc<Upstream>, u64)>,
    clock: u64,
}

impl AnyUpstream {
    pub(crate) fn new(connect: Connect, limit: usize) -> AnyUpstream {
        AnyUpstream {
            connect,
            limit: limit.max(1),
            connected: Mutex::default(),
        }
    }

    fn connected(&self) -> MutexGuard<'_, Connected> {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The upstream of `host` (whose key is `key`), marked used now;
    /// connected if it is not yet, letting the least recently used go.
    fn find(&self, key: &str, host: &str) -> Result<Arc<Upstream>> {
        if let Some(upstream) = self.connected().use_key(key) {
            return Ok(upstream);
        }
        // Connected without the lock held; a concurrent request for the
        // same host may connect too, and the first one kept wins.
        let upstream = Arc::new(Upstream::new(host, (self.connect)(host)?)?);
        let mut connected = self.connected();
        if let Some(kept) = connected.use_key(key) {
            return Ok(kept);
        }
        if connected.by_key.len() >= self.limit {
            let oldest = connected
                .by_key
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            if let Some((gone, _)) = oldest.and_then(|key| connected.by_key.remove(&key)) {
                tracing::info!(target: "oci_mirror", upstream = gone.host, limit = self.limit, "letting the least recently used upstream go");
            }
        }
        let now = connected.tick();
        connected
            .by_key
            .insert(key.to_owned(), (upstream.clone(), now));
        Ok(upstream)
    }
}

impl Connected {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The upstream kept under `key`, marked used now.
    fn use_key(&mut self, key: &str) -> Option<Arc<Upstream>> {
        let now = self.tick();
        let (upstream, used) = self.by_key.get_mut(key)?;
        *used = now;
        Some(upstream.clone())
    }
}

impl Upstreams {
    pub(crate) fn new(
        upstreams: Vec<Upstream>,
        default: Option<String>,
        any: Option<AnyUpstream>,
    ) -> Upstreams {
        let configured = upstreams
            .into_iter()
            .map(|u| (u.key.clone(), Arc::new(u)))
            .collect();
        Upstreams {
            configured,
            default,
            any,
        }
    }

    /// Every upstream configured or connected now.
    pub(crate) fn all(&self) -> Vec<Arc<Upstream>> {
        let mut all: Vec<_> = self.configured.values().cloned().collect();
        if let Some(any) = &self.any {
            all.extend(any.connected().by_key.values().map(|(u, _)| u.clone()));
        }
        all
    }

    /// The upstream `host` names, connecting to it if any host is allowed.
    pub(crate) fn find(&self, host: &str) -> Result<Option<Arc<Upstream>>> {
        let key = namespace_component(host)?;
        if let Some(u) = self.configured.get(&key) {
            return Ok(Some(u.clone()));
        }
        match &self.any {
            Some(any) => any.find(&key, host).map(Some),
            None => Ok(None),
        }
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
        let Some(upstream) = self
            .default
            .as_deref()
            .and_then(|key| self.configured.get(key))
        else {
            return Err(Error::new(
                ErrorCode::NameUnknown,
                format!(
                    "{name} names no upstream: this mirror has no default upstream; \
                     name one with ?ns=HOST or as HOST/{name}"
                ),
            ));
        };
        Target::new(upstream.clone(), name.clone())
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
