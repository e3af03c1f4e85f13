//! Listing endpoints: tags (`/v2/<name>/tags/list`), the catalog
//! (`/v2/_catalog`) and referrers (`/v2/<name>/referrers/<digest>`).
//!
//! Tags and the catalog paginate with `n` and `last`. With `n`, the
//! registry is asked for one item more than the page so that a `Link` to the
//! next page is sent only when there is one. Without `n`, the listing's
//! first 64 KiB are gathered before the status is chosen, so a registry
//! failing early answers with its error; a longer listing is streamed, and
//! a failure after that breaks the body off rather than end it as if whole.

use bytes::Bytes;
use futures::{StreamExt, stream};
use http::StatusCode;
use http::header::{CONTENT_TYPE, LINK};
use oci_core::registry::collect_list;
use oci_core::{
    Digest, Error, ErrorCode, ListOptions, ListStream, RepoName, Result, Tag, media, wire,
};

use crate::body;
use crate::ctx::Ctx;
use crate::response::{Answer, Reply};

/// GET `/v2/<name>/tags/list?n=&last=`.
pub(crate) async fn tags(ctx: &Ctx<'_>, repo: &RepoName) -> Answer {
    let (n, last) = pagination(ctx)?;
    let last = last.map(|l| l.parse::<Tag>()).transpose()?;
    let options = ListOptions {
        last: last.map(|t| t.as_str().to_owned()),
        n: None,
    };
    let prefix = format!("{{\"name\":{},\"tags\":", json_string(repo.as_str()));
    let link = format!("/v2/{repo}/tags/list");
    let list = move |options: &ListOptions| ctx.registry.tags(repo, options);
    page(list, options, n, &prefix, &link).await
}

/// GET `/v2/_catalog?n=&last=`.
pub(crate) async fn catalog(ctx: &Ctx<'_>) -> Answer {
    let (n, last) = pagination(ctx)?;
    let last = last.map(|l| l.parse::<RepoName>()).transpose()?;
    let options = ListOptions {
        last: last.map(|r| r.as_str().to_owned()),
        n: None,
    };
    let list = move |options: &ListOptions| ctx.registry.repositories(options);
    page(list, options, n, "{\"repositories\":", "/v2/_catalog").await
}

/// GET `/v2/<name>/referrers/<digest>?artifactType=`: an OCI index of the
/// manifests whose subject is `subject`; empty when there are none or the
/// subject is unknown.
pub(crate) async fn referrers(ctx: &Ctx<'_>, repo: &RepoName, subject: &Digest) -> Answer {
    let filter = ctx.query.get("artifactType").filter(|t| !t.is_empty());
    let found = match filter {
        // No manifest can carry a malformed artifact type, so such a filter
        // matches nothing; the registry need not be asked.
        Some(t) if !media::is_valid_media_type(t) => Vec::new(),
        _ => match collect_list(ctx.registry.referrers(repo, subject, filter)).await {
            Ok(found) => found,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        },
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": found,
    });
    let json = serde_json::to_vec(&index)
        .map_err(|e| Error::internal(format!("encoding the referrers index: {e}")))?;
    let mut reply = Reply::new(StatusCode::OK).header(CONTENT_TYPE, media::OCI_INDEX);
    if filter.is_some() {
        reply = reply.header(wire::OCI_FILTERS_APPLIED, "artifactType");
    }
    reply.body(body::full(json)).done()
}

/// The `n` and `last` query parameters; `n` must be a non-negative integer.
fn pagination<'a>(ctx: &'a Ctx<'_>) -> Result<(Option<usize>, Option<&'a str>)> {
    let n = match ctx.query.get("n") {
        None | Some("") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            Error::new(
                ErrorCode::SizeInvalid,
                format!("invalid pagination number n={n:?}"),
            )
        })?),
    };
    let last = ctx.query.get("last").filter(|l| !l.is_empty());
    Ok((n, last))
}

/// How much of an unpaged listing is read before the status is sent.
const GATHER_BEFORE_STREAMING: usize = 64 << 10;

/// Answers one page of a listing as `<prefix>[…]}`: collected when `n` is
/// given (to know whether a next page exists), streamed otherwise.
async fn page<T, F>(
    list: F,
    mut options: ListOptions,
    n: Option<usize>,
    prefix: &str,
    link: &str,
) -> Answer
where
    T: AsRef<str> + Send + 'static,
    F: Fn(&ListOptions) -> ListStream<T>,
{
    let reply = Reply::new(StatusCode::OK).header(CONTENT_TYPE, "application/json");
    let Some(n) = n else {
        // Fused: polled again after the gathering loop saw its end.
        let mut items = list(&options).fuse();
        let mut head = Vec::new();
        let mut gathered = 0;
        while gathered < GATHER_BEFORE_STREAMING {
            let Some(item) = items.next().await.transpose()? else {
                break;
            };
            gathered += item.as_ref().len() + 3;
            head.push(item);
        }
        let items = stream::iter(head.into_iter().map(Ok)).chain(items).boxed();
        return reply.body(body::streamed(json_array(prefix, items))).done();
    };
    // n = 0 still asks for one item, so an unknown repository is a 404.
    options.n = Some(n.saturating_add(1).max(1));
    let mut items = collect_list(list(&options)).await?;
    let mut reply = reply;
    if items.len() > n {
        items.truncate(n);
        if let Some(last) = items.last() {
            let next = format!(
                "{link}?n={n}&last={}",
                wire::encode_query_value(last.as_ref())
            );
            reply = reply.header(LINK, &wire::link_next(&next));
        }
    }
    let mut json = String::from(prefix);
    json.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&json_string(item.as_ref()));
    }
    json.push_str("]}");
    reply.body(body::full(json)).done()
}

/// Streams `<prefix>[item,item,…]}` from a listing.
fn json_array<T>(prefix: &str, items: ListStream<T>) -> oci_core::BlobStream
where
    T: AsRef<str> + Send + 'static,
{
    let open = stream::once(futures::future::ready(Ok(Bytes::from(format!(
        "{prefix}["
    )))));
    let body = items.enumerate().map(|(i, item)| {
        item.map(|item| {
            let sep = if i == 0 { "" } else { "," };
            Bytes::from(format!("{sep}{}", json_string(item.as_ref())))
        })
    });
    let close = stream::once(futures::future::ready(Ok(Bytes::from_static(b"]}"))));
    open.chain(body).chain(close).boxed()
}

/// A string as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
