//! Following redirects: a blob read may be sent to another host (a CDN);
//! the next URL comes from `Location`, resolved against the one that
//! answered, at most [`MAX_REDIRECTS`] times per call.

use http::{HeaderMap, StatusCode, Uri};
use oci_core::Result;

use crate::client::Client;
use crate::error::ClientError;
use crate::transport::redact;

/// The most redirects one call follows.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// The redirects of one call.
#[derive(Debug)]
pub(crate) struct Redirects {
    follow: bool,
    followed: usize,
}

impl Redirects {
    /// Redirects to follow (`follow`), or to hand back as answers.
    pub(crate) fn new(follow: bool) -> Redirects {
        Redirects {
            follow,
            followed: 0,
        }
    }

    /// Where an answer of `status` with `headers` from `url` sends the call
    /// next, or `None` when it is the answer.
    pub(crate) fn next(
        &mut self,
        client: &Client,
        url: &Uri,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Option<Uri>> {
        if !self.follow || !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let Some(location) = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(None);
        };
        self.followed += 1;
        if self.followed > MAX_REDIRECTS {
            return Err(ClientError::Redirect(format!(
                "more than {MAX_REDIRECTS} redirects from {}",
                redact(url)
            ))
            .into());
        }
        let next = client.with_namespace(client.resolve(url, location)?)?;
        tracing::debug!(url = %redact(&next), "following redirect");
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientOptions;

    fn location(to: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::LOCATION, to.parse().unwrap());
        h
    }

    #[test]
    fn a_location_is_followed_relative_to_the_url_that_answered() {
        let client = Client::new("127.0.0.1:5000", ClientOptions::default()).unwrap();
        let url: Uri = "http://127.0.0.1:5000/v2/a/blobs/sha256:00"
            .parse()
            .unwrap();
        let mut r = Redirects::new(true);
        let next = r
            .next(
                &client,
                &url,
                StatusCode::TEMPORARY_REDIRECT,
                &location("/cdn/x"),
            )
            .unwrap();
        assert_eq!(next.unwrap().to_string(), "http://127.0.0.1:5000/cdn/x");
        let next = r
            .next(
                &client,
                &url,
                StatusCode::FOUND,
                &location("https://cdn.example/y"),
            )
            .unwrap();
        assert_eq!(next.unwrap().to_string(), "https://cdn.example/y");
    }

    #[test]
    fn answers_that_are_not_redirects_to_follow_are_kept() {
        let client = Client::new("127.0.0.1:5000", ClientOptions::default()).unwrap();
        let url: Uri = "http://127.0.0.1:5000/v2/".parse().unwrap();
        let to = location("/elsewhere");
        let mut off = Redirects::new(false);
        assert!(
            off.next(&client, &url, StatusCode::FOUND, &to)
                .unwrap()
                .is_none()
        );
        let mut on = Redirects::new(true);
        for status in [StatusCode::OK, StatusCode::NOT_MODIFIED] {
            assert!(on.next(&client, &url, status, &to).unwrap().is_none());
        }
        let none = HeaderMap::new();
        assert!(
            on.next(&client, &url, StatusCode::FOUND, &none)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_redirect_loop_ends_after_the_limit() {
        let client = Client::new("127.0.0.1:5000", ClientOptions::default()).unwrap();
        let url: Uri = "http://127.0.0.1:5000/loop".parse().unwrap();
        let mut r = Redirects::new(true);
        let to = location("/loop");
        for _ in 0..MAX_REDIRECTS {
            assert!(
                r.next(&client, &url, StatusCode::FOUND, &to)
                    .unwrap()
                    .is_some()
            );
        }
        let err = r.next(&client, &url, StatusCode::FOUND, &to).unwrap_err();
        assert!(err.message().contains("more than 10 redirects"), "{err}");
        assert!(!err.is_transient());
    }
}
