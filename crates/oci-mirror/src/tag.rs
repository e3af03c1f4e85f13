//! Tags through the mirror: fetched once, then served from the cache for
//! their freshness time ([`Freshness`]), then checked upstream with a HEAD
//! (an unchanged digest costs nothing more, a changed one is fetched), and
//! served stale when the upstream fails.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use oci_core::{Descriptor, Error, ListOptions, ListStream, Manifest, RepoName, Result, Tag};

use crate::failure::{listing, unavailable, upstream_error};
use crate::flight::Role;
use crate::metrics::{Outcome, note};
use crate::mirror::Mirror;
use crate::record::kept_tag;
use crate::upstream::Target;

/// The tags remembered as checked beyond which those whose freshness has
/// run out are forgotten (as if never checked, which is what they are
/// worth), so that the map grows with the tags checked within one
/// freshness time, not with every tag ever asked for.
const PRUNE_AT: usize = 4096;

/// When each tag was last checked, and the size at which to forget the
/// stale ones next.
struct Checked {
    at: HashMap<(RepoName, Tag), Instant>,
    prune_at: usize,
}

/// When each tag (by cache name) was last found current upstream.
pub(crate) struct Freshness {
    /// How long a tag is served without checking upstream.
    time: Duration,
    checked: Mutex<Checked>,
}

impl Freshness {
    pub(crate) fn new(time: Duration) -> Freshness {
        Freshness {
            time,
            checked: Mutex::new(Checked {
                at: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }

    fn checked(&self) -> std::sync::MutexGuard<'_, Checked> {
        self.checked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `tag` of `repo` (a cache name) was found current upstream
    /// within the freshness time.
    fn is_fresh(&self, repo: &RepoName, tag: &Tag) -> bool {
        self.checked()
            .at
            .get(&(repo.clone(), tag.clone()))
            .is_some_and(|at| at.elapsed() < self.time)
    }

    /// `tag` of `repo` (a cache name) was found current upstream now.
    fn mark(&self, repo: &RepoName, tag: &Tag) {
        let mut checked = self.checked();
        if checked.at.len() >= checked.prune_at {
            checked.at.retain(|_, at| at.elapsed() < self.time);
            // Not again before it has doubled, when all are fresh.
            checked.prune_at = PRUNE_AT.max(2 * checked.at.len());
        }
        checked
            .at
            .insert((repo.clone(), tag.clone()), Instant::now());
    }
}

impl Mirror {
    /// The manifest a tag points at.
    pub(crate) async fn tag(&self, target: &Target, tag: &Tag) -> Result<Manifest> {
        for _ in 0..2 {
            if let Some((kept, real)) = kept_tag(self.cache.as_ref(), &target.cache, tag).await? {
                return self.cached_tag(target, tag, &kept, real).await;
            }
            match self.flights.join(format!("tag {}:{tag}", target.cache)) {
                Role::Follower(waiting) => waiting.outcome().await?,
                Role::Leader(landing) => return landing.run(self.fetch_tag(target, tag)).await,
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
        note(target, "tag", tag, Outcome::Miss);
        self.keep(
            target,
            &m,
            &m.descriptor.digest.clone(),
            std::slice::from_ref(tag),
        )
        .await?;
        self.freshness.mark(&target.cache, tag);
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
        // The tag names a record: it is to name the manifest itself if
        // that can be now (it may have been made real by digest), and so
        // when it can be.
        self.keeper
            .revisit(&target.cache, &found.manifest, std::slice::from_ref(tag))
            .await?;
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
        if self.freshness.is_fresh(&target.cache, tag) {
            note(target, "tag", tag, Outcome::Hit);
            return self.tagged(target, tag, kept, real).await;
        }
        // One check upstream at a time; the others then take what it found.
        match self.flights.join(format!("check {}:{tag}", target.cache)) {
            Role::Follower(waiting) => {
                waiting.outcome().await?;
                let now = kept_tag(self.cache.as_ref(), &target.cache, tag).await?;
                note(target, "tag", tag, Outcome::Hit);
                match now {
                    Some((now, real)) => self.tagged(target, tag, &now, real).await,
                    None => self.tagged(target, tag, kept, real).await,
                }
            }
            Role::Leader(landing) => landing.run(self.check_tag(target, tag, kept, real)).await,
        }
    }

    /// Checks a cached tag upstream with a HEAD: the cached manifest if
    /// unchanged or the upstream fails (at the HEAD or fetching the
    /// manifest the tag moved to), else the new one, fetched.
    async fn check_tag(
        &self,
        target: &Target,
        tag: &Tag,
        kept: &Descriptor,
        real: Option<Manifest>,
    ) -> Result<Manifest> {
        let checked = match target
            .upstream
            .registry
            .resolve_tag(&target.name, tag)
            .await
        {
            Ok(current) if current.digest == kept.digest => {
                self.freshness.mark(&target.cache, tag);
                note(target, "tag", tag, Outcome::Revalidated);
                return self.tagged(target, tag, kept, real).await;
            }
            Ok(current) => self.follow_tag(target, tag, &current).await,
            Err(e) => Err(e),
        };
        match checked {
            Err(e) if unavailable(&e) => {
                tracing::warn!(target: "oci_mirror", upstream = target.upstream.host, error = %e, "the upstream failed; serving the cached tag");
                note(target, "tag", tag, Outcome::Stale);
                self.tagged(target, tag, kept, real).await
            }
            Err(e) => Err(upstream_error(target, tag, e)),
            Ok(now) => Ok(now),
        }
    }

    /// The tags of `target`, listed upstream; the cache's, counted stale,
    /// when the upstream fails before its first page (the cache does not
    /// know every tag, but those it has are real): see [`listing`].
    pub(crate) fn tag_list(&self, target: Target, options: &ListOptions) -> ListStream<Tag> {
        let upstream = target.upstream.registry.tags(&target.name, options);
        let cache = self.cache.clone();
        let options = options.clone();
        let id = target.name.to_string();
        listing(
            target,
            "tag list",
            id,
            "tag list".to_owned(),
            upstream,
            move |repo| cache.tags(repo, &options),
        )
    }

    /// Points a cached tag at `current`, the manifest it names upstream
    /// now, fetched if the cache does not have it.
    async fn follow_tag(
        &self,
        target: &Target,
        tag: &Tag,
        current: &Descriptor,
    ) -> Result<Manifest> {
        let now = self
            .manifest(target, &current.digest, Some(&current.media_type), false)
            .await?;
        self.keeper.tag(&target.cache, &now, tag).await?;
        self.freshness.mark(&target.cache, tag);
        note(target, "tag", tag, Outcome::Miss);
        Ok(now.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_past_their_freshness_are_forgotten_not_kept_for_ever() {
        let freshness = Freshness::new(Duration::ZERO);
        let repo: RepoName = "example.com/app".parse().unwrap();
        for n in 0..3 * PRUNE_AT {
            freshness.mark(&repo, &format!("t{n}").parse().unwrap());
        }
        assert!(freshness.checked().at.len() <= PRUNE_AT);
    }

    #[test]
    fn forgetting_keeps_the_tags_still_fresh() {
        let freshness = Freshness::new(Duration::from_secs(3600));
        let repo: RepoName = "example.com/app".parse().unwrap();
        let tag: Tag = "latest".parse().unwrap();
        freshness.mark(&repo, &tag);
        for n in 0..PRUNE_AT {
            freshness.mark(&repo, &format!("t{n}").parse().unwrap());
        }
        assert!(freshness.is_fresh(&repo, &tag));
        assert!(!freshness.is_fresh(&repo, &"other".parse().unwrap()));
    }
}
