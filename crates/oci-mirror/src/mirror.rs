//! [`Mirror`]: the pull-through cache as a [`Registry`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use oci_core::registry::slice_stream;
use oci_core::tee::tee;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, Error, ErrorCode, ListOptions,
    ListStream, Manifest, RangeRequest, Registry, RepoName, Result, Tag,
};

use crate::flight::{Flights, Role, Waiting};
use crate::record::{Keeper, Kept};
use crate::upstream::{Connect, Stats, Target, Upstream, Upstreams};

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
///   client only when nothing is cached.
/// - Writes are `DENIED`; tag listings and referrers come from the
///   upstream (tags from the cache when it fails); the catalog is the
///   cache's.
///
/// Every answer is logged (`tracing`, target `oci_mirror`) with its
/// upstream and outcome (`hit`, `miss`, `stale`, `revalidated`), and
/// [`Mirror::stats`] counts them with the bytes read upstream.
pub struct Mirror {
    cache: Arc<dyn Registry>,
    upstreams: Upstreams,
    freshness: Duration,
    flights: Flights,
    /// Keeps fetched manifests in `cache`.
    keeper: Arc<Keeper>,
    /// When each tag (by cache name) was last found current upstream.
    checked: Mutex<HashMap<(RepoName, Tag), Instant>>,
}

/// Builds a [`Mirror`].
pub struct MirrorBuilder {
    cache: Arc<dyn Registry>,
    upstreams: Vec<(String, Arc<dyn Registry>)>,
    default: Option<String>,
    any: Option<Connect>,
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
            upstreams: Upstreams::new(upstreams, default, self.any),
            freshness: self.freshness,
            flights: Flights::default(),
            checked: Mutex::new(HashMap::new()),
        })
    }
}

/// Whether an upstream's error means it cannot answer now (unreachable,
/// broken, overloaded), rather than a real answer such as "not found".
fn unavailable(err: &Error) -> bool {
    err.status() >= 500 || err.is(ErrorCode::TooManyRequests)
}

/// An upstream's failure as the mirror's client sees it, when nothing
/// cached could stand in: the upstream named; an unreachable or failing
/// upstream a `502` (without the client library's network detail, which
/// would tell the client its own connection failed); a refusal of the
/// mirror's credentials a `DENIED` (a `401` would ask the client to log
/// in to the mirror); a `429` and real answers ("not found") as they are.
fn upstream_error(target: &Target, what: &dyn std::fmt::Display, err: Error) -> Error {
    let host = &target.upstream.host;
    if err.is(ErrorCode::TooManyRequests)
        || (!unavailable(&err) && !err.is(ErrorCode::Unauthorized))
    {
        return err;
    }
    if err.is(ErrorCode::Unauthorized) {
        return Error::new(
            ErrorCode::Denied,
            format!(
                "the upstream {host} refused the mirror's credentials: {}",
                err.message()
            ),
        );
    }
    tracing::warn!(target: "oci_mirror", upstream = host.as_str(), repository = %target.name, %what, error = %err, "the upstream failed and nothing is cached");
    Error::new(
        ErrorCode::Unknown,
        format!(
            "the upstream {host} failed and {} {what} is not cached: {}",
            target.name,
            err.message()
        ),
    )
    .with_status(502)
}

fn read_only() -> Error {
    Error::new(ErrorCode::Denied, "this mirror is read-only")
}

impl Mirror {
    /// A mirror keeping what it fetches in `cache`; add upstreams to it.
    pub fn builder(cache: Arc<dyn Registry>) -> MirrorBuilder {
        MirrorBuilder {
            cache,
            upstreams: Vec::new(),
            default: None,
            any: None,
            freshness: DEFAULT_TAG_FRESHNESS,
        }
    }

    /// The counters of the upstream `host[:port]`, if it is one.
    pub fn stats(&self, host: &str) -> Option<Stats> {
        let key = oci_core::reference::namespace_component(host).ok()?;
        self.upstreams
            .all()
            .into_iter()
            .find(|u| u.key == key)
            .map(|u| u.stats.snapshot())
    }

    /// Logs an answer and counts it.
    fn note(&self, target: &Target, what: &str, id: &dyn std::fmt::Display, outcome: Outcome) {
        let stats = &target.upstream.stats;
        let counter = match outcome {
            Outcome::Hit => &stats.hits,
            Outcome::Miss => &stats.misses,
            Outcome::Stale => &stats.stale,
            Outcome::Revalidated => &stats.revalidated,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let s = stats.snapshot();
        let upstream = target.upstream.host.as_str();
        let outcome = outcome.as_str();
        tracing::info!(
            target: "oci_mirror",
            upstream,
            repository = %target.name,
            what,
            id = %id,
            outcome,
            hits = s.hits,
            misses = s.misses,
            stale = s.stale,
            upstream_bytes = s.upstream_bytes,
            "mirror {outcome}"
        );
    }

    fn fresh(&self, target: &Target, tag: &Tag) -> bool {
        let checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked
            .get(&(target.cache.clone(), tag.clone()))
            .is_some_and(|at| at.elapsed() < self.freshness)
    }

    fn mark_fresh(&self, target: &Target, tag: &Tag) {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.insert((target.cache.clone(), tag.clone()), Instant::now());
    }

    /// A blob: from the cache, or fetched once while streaming it; with
    /// the fetch to wait for when this call started one.
    async fn blob(
        &self,
        target: &Target,
        digest: &Digest,
    ) -> Result<(BlobReader, Option<Waiting>)> {
        for _ in 0..2 {
            match self.cache.get_blob(&target.cache, digest).await {
                Ok(reader) => {
                    self.note(target, "blob", digest, Outcome::Hit);
                    return Ok((reader, None));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(target: "oci_mirror", error = %e, %digest, "reading the cache failed; asking the upstream")
                }
            }
            match self.flights.join(format!("blob {} {digest}", target.cache)) {
                Role::Follower(waiting) => waiting.outcome().await?,
                Role::Leader(landing) => {
                    if let Ok(reader) = self.cache.get_blob(&target.cache, digest).await {
                        landing.finish(Ok(()));
                        self.note(target, "blob", digest, Outcome::Hit);
                        return Ok((reader, None));
                    }
                    let upstream = match target
                        .upstream
                        .registry
                        .get_blob(&target.name, digest)
                        .await
                    {
                        Ok(reader) => reader,
                        Err(e) => {
                            let e = upstream_error(target, digest, e);
                            landing.finish(Err(e.clone()));
                            return Err(e);
                        }
                    };
                    self.note(target, "blob", digest, Outcome::Miss);
                    let descriptor = upstream.descriptor.clone();
                    let size = descriptor.size;
                    let upstream_bytes = target.upstream.clone();
                    // The cache verifies the bytes as it writes them, the one
                    // hash on this side (`ocidist serve` turns the upstream
                    // client's own check off); the client's copy holds its
                    // last chunk back until the cache has committed them.
                    let counted = upstream
                        .stream
                        .inspect(move |chunk| {
                            if let Ok(chunk) = chunk {
                                upstream_bytes
                                    .stats
                                    .upstream_bytes
                                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            }
                        })
                        .boxed();
                    let (to_cache, to_client, feed) = tee(counted);
                    let stored = landing.watch();
                    let landing_watch = landing.watch();
                    let cache = self.cache.clone();
                    let repo = target.cache.clone();
                    let digest = digest.clone();
                    let host = target.upstream.host.clone();
                    let keeper = self.keeper.clone();
                    tokio::spawn(async move {
                        let ((), stored) = futures::join!(
                            feed,
                            cache.push_blob(&repo, &digest, Some(size), to_cache)
                        );
                        match &stored {
                            Ok(_) => {
                                tracing::debug!(target: "oci_mirror", upstream = host, %digest, size, "blob cached");
                                // Before the client has the blob's end, so
                                // that a pull that completed has left real
                                // manifests behind.
                                keeper.landed(&repo).await;
                            }
                            Err(e) => {
                                tracing::warn!(target: "oci_mirror", upstream = host, %digest, error = %e, "blob not cached")
                            }
                        }
                        landing.finish(stored.map(|_| ()));
                    });
                    let reader = BlobReader {
                        descriptor,
                        range: None,
                        stream: ending_when_stored(to_client, landing_watch),
                    };
                    return Ok((reader, Some(stored)));
                }
            }
        }
        Err(Error::internal(format!(
            "blob {digest} was fetched but is not in the cache"
        )))
    }

    /// A manifest by digest: from the cache, or fetched once. A hit is
    /// noted when `note_hit` (a tag's answer notes its own).
    async fn manifest(
        &self,
        target: &Target,
        digest: &Digest,
        media_type: Option<&str>,
        note_hit: bool,
    ) -> Result<Kept> {
        for _ in 0..2 {
            if let Some(kept) = self
                .keeper
                .kept_manifest(&target.cache, digest, media_type)
                .await?
            {
                if note_hit {
                    self.note(target, "manifest", digest, Outcome::Hit);
                }
                if !kept.real {
                    self.keeper
                        .revisit(&target.cache, &kept.manifest, &[])
                        .await?;
                }
                return Ok(kept);
            }
            match self
                .flights
                .join(format!("manifest {} {digest}", target.cache))
            {
                Role::Follower(waiting) => waiting.outcome().await?,
                Role::Leader(landing) => {
                    let fetched = self.fetch_manifest(target, digest).await;
                    landing.finish(fetched.as_ref().map(|_| ()).map_err(Clone::clone));
                    return fetched;
                }
            }
        }
        Err(Error::internal(format!(
            "manifest {digest} was fetched but is not in the cache"
        )))
    }

    /// Fetches a manifest by digest upstream and keeps it.
    async fn fetch_manifest(&self, target: &Target, digest: &Digest) -> Result<Kept> {
        let m = target
            .upstream
            .registry
            .get_manifest(&target.name, digest)
            .await
            .map_err(|e| upstream_error(target, digest, e))?;
        self.note(target, "manifest", digest, Outcome::Miss);
        let real = self.keep(target, &m, digest, &[]).await?;
        Ok(Kept { manifest: m, real })
    }

    /// Checks a manifest from upstream against the digest it was asked or
    /// announced by, and keeps it with `tags`; whether it is kept real.
    async fn keep(
        &self,
        target: &Target,
        m: &Manifest,
        digest: &Digest,
        tags: &[Tag],
    ) -> Result<bool> {
        if m.digest() != digest {
            return Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!("{target} answered {} for manifest {digest}", m.digest()),
            ));
        }
        m.verify()?;
        target
            .upstream
            .stats
            .upstream_bytes
            .fetch_add(m.bytes.len() as u64, Ordering::Relaxed);
        self.keeper.keep(&target.cache, m, tags).await
    }

    /// The manifest a tag points at.
    async fn tag(&self, target: &Target, tag: &Tag) -> Result<Manifest> {
        for _ in 0..2 {
            if let Some((kept, real)) = self.keeper.kept_tag(&target.cache, tag).await? {
                return self.cached_tag(target, tag, &kept, real).await;
            }
            match self.flights.join(format!("tag {}:{tag}", target.cache)) {
                Role::Follower(waiting) => waiting.outcome().await?,
                Role::Leader(landing) => {
                    let fetched = self.fetch_tag(target, tag).await;
                    landing.finish(fetched.as_ref().map(|_| ()).map_err(Clone::clone));
                    return fetched;
                }
            }
        }
        Err(Error::internal(format!(
            "tag {tag} was fetched but is not in the cache"
        )))
    }

    /// Fetches a tag's manifest upstream and keeps both.
    async fn fetch_tag(&self, target: &Target, tag: &Tag) -> Result<Manifest> {
        let m = target
            .upstream
            .registry
            .get_tag(&target.name, tag)
            .await
            .map_err(|e| upstream_error(target, tag, e))?;
        self.note(target, "tag", tag, Outcome::Miss);
        self.keep(
            target,
            &m,
            &m.descriptor.digest.clone(),
            std::slice::from_ref(tag),
        )
        .await?;
        self.mark_fresh(target, tag);
        Ok(m)
    }

    /// The manifest `tag` names in the cache (`kept`; `real` when the tag
    /// names it as itself rather than its record).
    async fn tagged(
        &self,
        target: &Target,
        tag: &Tag,
        kept: &Descriptor,
        real: Option<Manifest>,
    ) -> Result<Manifest> {
        if let Some(m) = real {
            return Ok(m);
        }
        let found = self
            .manifest(target, &kept.digest, Some(&kept.media_type), false)
            .await?;
        if !found.real {
            // Tagged real if it can be now, and so when it can be.
            self.keeper
                .revisit(&target.cache, &found.manifest, std::slice::from_ref(tag))
                .await?;
        }
        Ok(found.manifest)
    }

    /// A tag the cache has: served as it is while fresh, else checked.
    async fn cached_tag(
        &self,
        target: &Target,
        tag: &Tag,
        kept: &Descriptor,
        real: Option<Manifest>,
    ) -> Result<Manifest> {
        if self.fresh(target, tag) {
            self.note(target, "tag", tag, Outcome::Hit);
            return self.tagged(target, tag, kept, real).await;
        }
        // One check upstream at a time; the others then take what it found.
        match self.flights.join(format!("check {}:{tag}", target.cache)) {
            Role::Follower(waiting) => {
                waiting.outcome().await?;
                let now = self.keeper.kept_tag(&target.cache, tag).await?;
                self.note(target, "tag", tag, Outcome::Hit);
                match now {
                    Some((now, real)) => self.tagged(target, tag, &now, real).await,
                    None => self.tagged(target, tag, kept, real).await,
                }
            }
            Role::Leader(landing) => {
                let checked = self.check_tag(target, tag, kept, real).await;
                landing.finish(checked.as_ref().map(|_| ()).map_err(Clone::clone));
                checked
            }
        }
    }

    /// Checks a cached tag upstream with a HEAD: the cached manifest if
    /// unchanged or the upstream fails, else the new one, fetched.
    async fn check_tag(
        &self,
        target: &Target,
        tag: &Tag,
        kept: &Descriptor,
        real: Option<Manifest>,
    ) -> Result<Manifest> {
        let cached = || self.tagged(target, tag, kept, real);
        match target
            .upstream
            .registry
            .resolve_tag(&target.name, tag)
            .await
        {
            Ok(current) if current.digest == kept.digest => {
                self.mark_fresh(target, tag);
                self.note(target, "tag", tag, Outcome::Revalidated);
                cached().await
            }
            Ok(current) => {
                let now = self
                    .manifest(target, &current.digest, Some(&current.media_type), false)
                    .await?;
                self.keeper.tag(&target.cache, &now, tag).await?;
                self.mark_fresh(target, tag);
                self.note(target, "tag", tag, Outcome::Miss);
                Ok(now.manifest)
            }
            Err(e) if unavailable(&e) => {
                tracing::warn!(target: "oci_mirror", upstream = target.upstream.host, error = %e, "the upstream failed; serving the cached tag");
                self.note(target, "tag", tag, Outcome::Stale);
                cached().await
            }
            Err(e) => Err(upstream_error(target, tag, e)),
        }
    }
}

/// `stream` (the client's side of a blob being cached) with its last
/// chunk held back until `stored` (the cache's write) has an outcome: the
/// chunk then, or the cache's error in its place, so that a client never
/// receives as complete a blob that failed to verify.
fn ending_when_stored(stream: BlobStream, stored: Waiting) -> BlobStream {
    // `None` once the stream has ended or failed.
    let state = Some((stream, None::<bytes::Bytes>, stored));
    futures::stream::unfold(state, |state| async move {
        let (mut stream, mut held, stored) = state?;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    if let Some(previous) = held.replace(chunk) {
                        return Some((Ok(previous), Some((stream, held, stored))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    return match (stored.outcome().await, held) {
                        (Err(e), _) => Some((Err(e), None)),
                        (Ok(()), Some(last)) => Some((Ok(last), None)),
                        (Ok(()), None) => None,
                    };
                }
            }
        }
    })
    .boxed()
}

/// How a request was answered.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Revalidated => "revalidated",
        }
    }
}

#[async_trait]
impl Registry for Mirror {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let target = self.upstreams.route(repo)?;
        self.blob(&target, digest).await.map(|(reader, _)| reader)
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let target = self.upstreams.route(repo)?;
        match self
            .cache
            .get_blob_range(&target.cache, digest, range)
            .await
        {
            Err(e) if e.is_not_found() => {
                // The whole blob is fetched once. The request that fetches
                // it gets a part to its end as the bytes arrive (`ocidist
                // pull` asks for `bytes=0-`); any other part, or one for a
                // request that joined a fetch, is read from the cache.
                let (whole, fetching) = self.blob(&target, digest).await?;
                let size = whole.descriptor.size;
                let part = range.resolve(size)?;
                // Only a part that ends with the blob ends in the cache's
                // verdict; an earlier one waits for it.
                if fetching.is_some() && part.end + 1 == size {
                    return Ok(BlobReader {
                        descriptor: whole.descriptor,
                        range: Some(part),
                        stream: slice_stream(whole.stream, part),
                    });
                }
                drop(whole);
                if let Some(fetching) = fetching {
                    fetching.outcome().await?;
                }
                self.cache
                    .get_blob_range(&target.cache, digest, range)
                    .await
            }
            answer => {
                self.note(&target, "blob range", digest, Outcome::Hit);
                answer
            }
        }
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let target = self.upstreams.route(repo)?;
        match self.cache.resolve_blob(&target.cache, digest).await {
            Err(e) if e.is_not_found() => {
                target
                    .upstream
                    .registry
                    .resolve_blob(&target.name, digest)
                    .await
            }
            answer => answer,
        }
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        let target = self.upstreams.route(repo)?;
        self.manifest(&target, digest, None, true)
            .await
            .map(|kept| kept.manifest)
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let target = self.upstreams.route(repo)?;
        self.tag(&target, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.get_manifest(repo, digest).await.map(|m| m.descriptor)
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.get_tag(repo, tag).await.map(|m| m.descriptor)
    }

    async fn push_blob(
        &self,
        _: &RepoName,
        _: &Digest,
        _: Option<u64>,
        _: BlobStream,
    ) -> Result<Descriptor> {
        Err(read_only())
    }

    async fn push_blob_chunked(&self, _: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Err(read_only())
    }

    async fn push_blob_chunked_resume(&self, _: &RepoName, _: &str) -> Result<Box<dyn BlobWriter>> {
        Err(read_only())
    }

    async fn mount_blob(&self, _: &RepoName, _: &RepoName, _: &Digest) -> Result<Descriptor> {
        Err(read_only())
    }

    async fn push_manifest(&self, _: &RepoName, _: &Manifest, _: &[Tag]) -> Result<Descriptor> {
        Err(read_only())
    }

    async fn delete_blob(&self, _: &RepoName, _: &Digest) -> Result<()> {
        Err(read_only())
    }

    async fn delete_manifest(&self, _: &RepoName, _: &Digest) -> Result<()> {
        Err(read_only())
    }

    async fn delete_tag(&self, _: &RepoName, _: &Tag) -> Result<()> {
        Err(read_only())
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<u64> {
        self.cache.expire_uploads(idle).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        let target = match self.upstreams.route(repo) {
            Ok(target) => target,
            Err(e) => return oci_core::registry::failed_list(e),
        };
        let upstream = target.upstream.registry.clone();
        let cache = self.cache.clone();
        let options = options.clone();
        let listed = async move {
            let mut upstream_tags = upstream.tags(&target.name, &options);
            match upstream_tags.next().await {
                Some(Err(e)) if unavailable(&e) => {
                    tracing::warn!(target: "oci_mirror", upstream = target.upstream.host, error = %e, "the upstream failed; listing the cached tags");
                    cache.tags(&target.cache, &options)
                }
                Some(first) => futures::stream::once(async move { first })
                    .chain(upstream_tags)
                    .boxed(),
                None => futures::stream::empty().boxed(),
            }
        };
        futures::stream::once(listed).flatten().boxed()
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        match self.upstreams.route(repo) {
            Ok(target) => target
                .upstream
                .registry
                .referrers(&target.name, subject, artifact_type),
            Err(e) => oci_core::registry::failed_list(e),
        }
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        self.cache.repositories(options)
    }
}
