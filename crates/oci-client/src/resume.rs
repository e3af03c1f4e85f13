//! Blob bodies that survive a dropped connection: when the stream fails
//! mid-way, the rest is asked for again with `Range` from the offset
//! reached, so the caller sees one uninterrupted stream.

use futures::StreamExt;
use futures::stream;
use http::{Method, StatusCode, Uri};
use oci_core::wire::parse_content_range;
use oci_core::{BlobStream, Error, ErrorCode, Result};

use crate::auth::token::Scope;
use crate::client::{Call, Client};
use oci_core::retry::Retrier;

/// What to ask for again: the blob URL and the bytes wanted.
pub(crate) struct Resumable {
    /// The client to ask with.
    pub(crate) client: Client,
    /// The blob's registry URL (before any redirect).
    pub(crate) url: Uri,
    /// The access needed.
    pub(crate) scope: Scope,
    /// The next byte the current body will deliver.
    pub(crate) offset: u64,
    /// The last byte wanted (inclusive).
    pub(crate) end: u64,
}

struct State {
    what: Resumable,
    body: Option<BlobStream>,
    retrier: Retrier,
}

/// `body` (which delivers bytes from `what.offset` on), resumed with
/// ranged GETs when it fails before `what.end`.
pub(crate) fn resuming(what: Resumable, body: BlobStream) -> BlobStream {
    let retrier = Retrier::new(what.client.retry_config());
    let state = State {
        what,
        body: Some(body),
        retrier,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            let body = st.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    st.what.offset += chunk.len() as u64;
                    return Some((Ok(chunk), st));
                }
                None => return None,
                Some(Err(err)) => {
                    st.body = None;
                    if st.what.offset > st.what.end {
                        return Some((Err(err), st));
                    }
                    // A dropped body is transient whatever the stream said.
                    let err = if err.is_retried() { err } else { err.with_transient(true) };
                    let Some(delay) = st.retrier.delay_after(&err, None) else {
                        let err = st.retrier.give_up(err);
                        return Some((Err(err), st));
                    };
                    tracing::warn!(error = %err, offset = st.what.offset, "blob read dropped; resuming");
                    tokio::time::sleep(delay).await;
                    match reopen(&st.what).await {
                        Ok(b) => st.body = Some(b),
                        Err(e) => {
                            let msg = format!("{err}; resuming at byte {} failed: {e}", st.what.offset);
                            let mut failed = Error::new(e.code(), msg)
                                .with_transient(e.is_transient());
                            if e.is_retried() {
                                failed = failed.with_retried();
                            }
                            return Some((Err(failed.with_source(e)), st));
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

/// Asks for `offset..=end` again; the registry must answer 206 from `offset`.
async fn reopen(what: &Resumable) -> Result<BlobStream> {
    let range = format!("bytes={}-{}", what.offset, what.end);
    let call = Call::new(Method::GET, what.url.clone(), what.scope.clone())
        .header(http::header::RANGE, &range)
        .follow_redirects();
    let res = what.client.execute(call).await?;
    if res.status != StatusCode::PARTIAL_CONTENT {
        if res.status.is_success() {
            return Err(Error::new(
                ErrorCode::RangeInvalid,
                "the registry ignored the Range of a resumed read",
            ));
        }
        return Err(res.into_error(ErrorCode::BlobUnknown).await);
    }
    let start = res
        .header("content-range")
        .map(parse_content_range)
        .transpose()?
        .map(|(s, _, _)| s);
    if start != Some(what.offset) {
        return Err(Error::new(
            ErrorCode::RangeInvalid,
            format!("resumed read started at {start:?}, not {}", what.offset),
        ));
    }
    Ok(res.into_stream())
}
