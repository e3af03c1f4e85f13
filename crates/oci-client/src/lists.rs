//! Listings: tags and the catalog page by page following `Link` headers
//! (also for servers that ignore `n`), and referrers through the API with
//! the tag-schema fallback and client-side `artifactType` filtering.

use futures::StreamExt;
use futures::stream;
use http::{Method, Uri};
use oci_core::manifest::MAX_MANIFEST_SIZE;
use oci_core::media::{self, OCI_INDEX};
use oci_core::wire::{OCI_FILTERS_APPLIED, parse_link_next};
use oci_core::{
    Descriptor, Digest, Error, ErrorCode, ImageIndex, ListOptions, ListStream, RepoName, Result,
    Tag,
};
use serde::Deserialize;

use crate::auth::token::Scope;
use crate::client::{Call, Client};

/// The largest listing page read.
const MAX_PAGE: usize = 16 * 1024 * 1024;

/// One fetched page: its items and the next page's URL.
struct Page<T> {
    items: Vec<T>,
    next: Option<Uri>,
}

/// Fetches pages one by one with `fetch`, starting at `first`, stopping
/// after `n` items when given and on the first error.
fn paginate<T, F, Fut>(first: Result<Uri>, n: Option<usize>, fetch: F) -> ListStream<T>
where
    T: Send + 'static,
    F: Fn(Uri) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Page<T>>> + Send + 'static,
{
    let start = (Some(first), n);
    stream::unfold(start, move |(next, remaining)| {
        let fut = next.map(|url| url.map(&fetch));
        async move {
            let url_fut = fut?;
            if remaining == Some(0) {
                return None;
            }
            let page = match url_fut {
                Ok(f) => f.await,
                Err(e) => Err(e),
            };
            match page {
                Err(e) => Some((stream::iter(vec![Err(e)]), (None, Some(0)))),
                Ok(mut page) => {
                    if let Some(r) = remaining {
                        page.items.truncate(r);
                    }
                    let remaining = remaining.map(|r| r - page.items.len());
                    let items: Vec<Result<T>> = page.items.into_iter().map(Ok).collect();
                    let next = if items.is_empty() {
                        None
                    } else {
                        page.next.map(Ok)
                    };
                    Some((stream::iter(items), (next, remaining)))
                }
            }
        }
    })
    .flatten()
    .boxed()
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

impl Client {
    /// GETs one listing page: its JSON body and the `Link` to the next.
    async fn page<J: for<'de> Deserialize<'de>>(
        &self,
        url: Uri,
        scope: Scope,
        not_found: ErrorCode,
    ) -> Result<(J, Option<Uri>)> {
        let res = self.execute(Call::new(Method::GET, url, scope)).await?;
        if !res.status.is_success() {
            return Err(res.into_error(not_found).await);
        }
        let next = match res.header("link").and_then(parse_link_next) {
            Some(link) => Some(self.resolve(&res.url, &link)?),
            None => None,
        };
        let body = res.bytes_limited(MAX_PAGE).await?;
        let json = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorCode::Unknown,
                format!("registry sent an invalid listing: {e}"),
            )
        })?;
        Ok((json, next))
    }

    fn list_query(options: &ListOptions) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(n) = options.n {
            q.push(("n", n.to_string()));
        }
        if let Some(last) = &options.last {
            q.push(("last", last.clone()));
        }
        q
    }

    fn list_url(&self, path: &str, options: &ListOptions) -> Result<Uri> {
        let q = Client::list_query(options);
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.url(path, &pairs)
    }

    /// The tags of `repo`. The whole list is read (following `Link`
    /// pages) and sorted, and `last`/`n` applied here: some registries
    /// (distribution 2.8) list tags in no particular order, which makes
    /// their own `n`/`last` pages skip tags.
    pub(crate) fn list_tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        let pages = self.tag_pages(repo, &ListOptions::all());
        let options = options.clone();
        stream::once(oci_core::registry::collect_list(pages))
            .flat_map(move |all| {
                let items = match all {
                    Ok(mut tags) => {
                        tags.sort();
                        tags.dedup();
                        options.apply(tags).into_iter().map(Ok).collect()
                    }
                    Err(e) => vec![Err(e)],
                };
                stream::iter(items)
            })
            .boxed()
    }

    fn tag_pages(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        let first = self.list_url(&format!("/v2/{repo}/tags/list"), options);
        let client = self.clone();
        let scope = Scope::pull(repo);
        let last = options.last.clone();
        paginate(first, options.n, move |url| {
            let (client, scope, last) = (client.clone(), scope.clone(), last.clone());
            async move {
                let (list, next): (TagList, _) =
                    client.page(url, scope, ErrorCode::NameUnknown).await?;
                let items = list
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| last.as_deref().is_none_or(|l| t.as_str() > l))
                    .map(|t| t.parse::<Tag>())
                    .collect::<Result<Vec<_>>>()?;
                Ok(Page { items, next })
            }
        })
    }

    /// The registry's repositories, following pagination.
    pub(crate) fn list_repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        let first = self.list_url("/v2/_catalog", options);
        let client = self.clone();
        let last = options.last.clone();
        paginate(first, options.n, move |url| {
            let (client, last) = (client.clone(), last.clone());
            async move {
                let (list, next): (Catalog, _) = client
                    .page(url, Scope::catalog(), ErrorCode::Unsupported)
                    .await?;
                let items = list
                    .repositories
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| last.as_deref().is_none_or(|l| r.as_str() > l))
                    .map(|r| r.parse::<RepoName>())
                    .collect::<Result<Vec<_>>>()?;
                Ok(Page { items, next })
            }
        })
    }

    /// The referrers of `subject`: the referrers API, or the
    /// `sha256-<hex>` tag index when the registry has no such API.
    pub(crate) fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        let query: Vec<(&str, &str)> = artifact_type
            .map(|a| ("artifactType", a))
            .into_iter()
            .collect();
        let first = self.url(&format!("/v2/{repo}/referrers/{subject}"), &query);
        let client = self.clone();
        let (repo, subject) = (repo.clone(), subject.clone());
        let wanted = artifact_type.map(str::to_owned);
        paginate(first, None, move |url| {
            let (client, repo, subject, wanted) = (
                client.clone(),
                repo.clone(),
                subject.clone(),
                wanted.clone(),
            );
            async move {
                client
                    .referrers_page(url, &repo, &subject, wanted.as_deref())
                    .await
            }
        })
    }

    async fn referrers_page(
        &self,
        url: Uri,
        repo: &RepoName,
        subject: &Digest,
        wanted: Option<&str>,
    ) -> Result<Page<Descriptor>> {
        let call =
            Call::new(Method::GET, url, Scope::pull(repo)).header(http::header::ACCEPT, OCI_INDEX);
        let res = self.execute(call).await?;
        let is_index = res.header("content-type").map(media::essence).as_deref() == Some(OCI_INDEX);
        if res.status.as_u16() == 404 && !is_index {
            drop(res);
            tracing::debug!(%repo, %subject, "no referrers API; reading the fallback tag");
            let items = self.referrers_from_tag(repo, subject).await?;
            return Ok(Page {
                items: filter_type(items, wanted, false),
                next: None,
            });
        }
        if !res.status.is_success() {
            return Err(res.into_error(ErrorCode::ManifestUnknown).await);
        }
        let applied = res
            .header(OCI_FILTERS_APPLIED)
            .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
        let next = match res.header("link").and_then(parse_link_next) {
            Some(link) => Some(self.resolve(&res.url, &link)?),
            None => None,
        };
        let body = res.bytes_limited(MAX_MANIFEST_SIZE).await?;
        let index: ImageIndex = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorCode::ManifestInvalid,
                format!("registry sent an invalid referrers index: {e}"),
            )
        })?;
        Ok(Page {
            items: filter_type(index.manifests, wanted, applied),
            next,
        })
    }

    /// The referrers recorded in the fallback tag's index (none if absent).
    async fn referrers_from_tag(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>> {
        Ok(self
            .fallback_index(repo, subject)
            .await?
            .map(|index| index.manifests)
            .unwrap_or_default())
    }
}

/// Keeps the descriptors of artifact type `wanted`, unless the registry
/// already filtered.
fn filter_type(items: Vec<Descriptor>, wanted: Option<&str>, applied: bool) -> Vec<Descriptor> {
    match wanted {
        Some(w) if !applied => items
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(w))
            .collect(),
        _ => items,
    }
}
