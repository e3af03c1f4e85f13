//! [`Mirror`], what it holds and how it is built ([`MirrorBuilder`]); what
//! it does is in `registry.rs` (the [`Registry`] it is), `blob.rs`,
//! `manifest.rs` and `tag.rs`.

use std::sync::Arc;
use std::time::Duration;

use oci_core::{Error, ErrorCode, Registry, Result};

use crate::flight::Flights;
use crate::keeper::Keeper;
use crate::metrics::Stats;
use crate::tag::Freshness;
use crate::upstream::{AnyUpstream, Connect, DEFAULT_ANY_UPSTREAM_LIMIT, Upstream, Upstreams};

/// How long a tag is served from the cache before it is checked upstream
/// again, unless set otherwise.
pub const DEFAULT_TAG_FRESHNESS: Duration = Duration::from_secs(60);

/// A pull-through caching mirror of any number of upstream registries.
///
/// Repository names carry their upstream as the first component,
/// `HOST/NAME` (`docker.io/library/alpine`, `localhost_5000/app`, a port
/// after `_`: [`RepoName::in_namespace`], the form `oci-server` gives a
/// request with `?ns=HOST`); a name without one belongs to the default
/// upstream. Only the upstreams configured are reachable, unless any is
/// allowed.
///
/// - Blobs and manifests by digest are fetched once and kept for ever in
///   the cache store, keyed by upstream (`HOST/NAME` there too). A blob
///   streams to the first client as it arrives while the same bytes are
///   written to the cache, and is committed only if its size and digest
///   verify; a failed or corrupt read leaves nothing behind. The cache's
///   check is the one that counts: the first client's stream holds its
///   last chunk back until the blob is committed and ends in the cache's
///   error instead if it is not, so the upstream need not verify what it
///   sends (`ocidist serve` turns `oci-client`'s own hashing off, leaving
///   one hash per byte on the mirror). A range that reaches the blob's
///   end (`bytes=0-`) is that same stream, cut; other ranges of an
///   uncached blob are read from the cache once it is committed.
/// - The cache is an ordinary store: a manifest is kept as itself (tagged
///   as upstream) once its blobs are there, so the store's garbage
///   collection keeps what the mirror cached (see `record.rs`).
/// - Concurrent requests for the same uncached blob or manifest cause one
///   upstream fetch; the others wait for it and read the cache.
/// - A tag is served from the cache for its freshness time after it was
///   last checked; then a HEAD upstream checks it (an unchanged digest
///   costs nothing more, a changed one is fetched).
/// - When the upstream fails (unreachable, 5xx, 429), what the cache has,
///   stale tags included, is served and logged; an error reaches the
///   client only when nothing is cached: a `502` naming the upstream, a
///   `429` as it came. An upstream's refusal (401, 403) is the mirror's
///   own `DENIED`, without the upstream's text; real answers ("not
///   found") pass as they are. Every read maps its errors so.
/// - Writes are `DENIED`; tag listings and referrers come from the
///   upstream (from the cache, counted stale, when it fails and the cache
///   holds any: the referrers among its manifests, filtered as asked);
///   the catalog is the cache's.
///
/// Every answer is logged (`tracing`, target `oci_mirror`) with its
/// upstream and outcome (`hit`, `miss`, `stale`, `revalidated`), and
/// [`Mirror::stats`] counts them with the bytes read upstream.
pub struct Mirror {
    pub(crate) cache: Arc<dyn Registry>,
    pub(crate) upstreams: Upstreams,
    /// When each tag was last found current upstream.
    pub(crate) freshness: Freshness,
    pub(crate) flights: Flights,
    /// Keeps fetched manifests in `cache`.
    pub(crate) keeper: Arc<Keeper>,
}

/// Builds a [`Mirror`].
pub struct MirrorBuilder {
    cache: Arc<dyn Registry>,
    upstreams: Vec<(String, Arc<dyn Registry>)>,
    default: Option<String>,
    any: Option<Connect>,
    any_limit: usize,
    freshness: Duration,
}

impl MirrorBuilder {
    /// Mirrors the registry `host[:port]`, reached through `registry`
    /// (typically an `oci-client` `Client` for that host).
    pub fn upstream(mut self, host: &str, registry: Arc<dyn Registry>) -> MirrorBuilder {
        self.upstreams.push((host.to_owned(), registry));
        self
    }

    /// Serves names without an upstream from `host`, which must be an
    /// upstream too.
    pub fn default_upstream(mut self, host: &str) -> MirrorBuilder {
        self.default = Some(host.to_owned());
        self
    }

    /// Allows any upstream, connecting to a new one with `connect`.
    pub fn any_upstream(mut self, connect: Connect) -> MirrorBuilder {
        self.any = Some(connect);
        self
    }

    /// How many upstreams allowed by [`any_upstream`](Self::any_upstream)
    /// are kept connected at once ([`DEFAULT_ANY_UPSTREAM_LIMIT`] unless
    /// set; at least one): past it the least recently used is let go,
    /// with its counters, and connected again when named again; the cache
    /// keeps what it fetched.
    pub fn any_upstream_limit(mut self, limit: usize) -> MirrorBuilder {
        self.any_limit = limit;
        self
    }

    /// How long a tag is served without checking upstream
    /// ([`DEFAULT_TAG_FRESHNESS`] unless set); zero checks every time.
    pub fn tag_freshness(mut self, freshness: Duration) -> MirrorBuilder {
        self.freshness = freshness;
        self
    }

    /// The mirror; `NAME_INVALID` for a host that cannot be one, an error
    /// for a default upstream not among the upstreams.
    pub fn build(self) -> Result<Mirror> {
        let upstreams = self
            .upstreams
            .into_iter()
            .map(|(host, registry)| Upstream::new(&host, registry))
            .collect::<Result<Vec<_>>>()?;
        let default = match self.default {
            Some(host) => {
                let key = oci_core::reference::namespace_component(&host)?;
                if !upstreams.iter().any(|u| u.key == key) {
                    return Err(Error::new(
                        ErrorCode::NameInvalid,
                        format!("the default upstream {host} is not one of the mirrored upstreams"),
                    ));
                }
                Some(key)
            }
            None => None,
        };
        Ok(Mirror {
            keeper: Arc::new(Keeper::new(self.cache.clone())),
            cache: self.cache,
            upstreams: Upstreams::new(
                upstreams,
                default,
                self.any
                    .map(|connect| AnyUpstream::new(connect, self.any_limit)),
            ),
            freshness: Freshness::new(self.freshness),
            flights: Flights::default(),
        })
    }
}

impl Mirror {
    /// A mirror keeping what it fetches in `cache`; add upstreams to it.
    pub fn builder(cache: Arc<dyn Registry>) -> MirrorBuilder {
        MirrorBuilder {
            cache,
            upstreams: Vec::new(),
            default: None,
            any: None,
            any_limit: DEFAULT_ANY_UPSTREAM_LIMIT,
            freshness: DEFAULT_TAG_FRESHNESS,
        }
    }

    /// The counters of the upstream `host[:port]`, if it is one (for one
    /// connected on demand, while it is kept).
    pub fn stats(&self, host: &str) -> Option<Stats> {
        let key = oci_core::reference::namespace_component(host).ok()?;
        self.upstreams
            .all()
            .into_iter()
            .find(|u| u.key == key)
            .map(|u| u.stats.snapshot())
    }
}
