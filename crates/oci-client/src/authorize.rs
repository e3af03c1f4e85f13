//! Authorizing a call: the headers of each attempt (the user agent, and
//! credentials for the registry's own URLs only, never for a redirect's
//! other host), and what a 401 means: learn the challenge and try once
//! more with fresh credentials, or fail `UNAUTHORIZED` / `DENIED` when
//! fresh ones were refused too.

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use hyper::body::Incoming;
use oci_core::{ErrorCode, Result};

use crate::auth::token::Scope;
use crate::client::Client;
use crate::error::ClientError;
use crate::transport::Response;

/// The credentials of one call across its attempts.
#[derive(Debug)]
pub(crate) struct Authorization {
    scope: Scope,
    /// The header learnt from a 401, sent on the attempt after it.
    fresh: Option<HeaderValue>,
}

impl Authorization {
    /// The authorization of a call needing `scope`.
    pub(crate) fn new(scope: Scope) -> Authorization {
        Authorization { scope, fresh: None }
    }

    /// The headers of one attempt at `url`: the call's own, the user agent,
    /// and `Authorization` when `url` is the registry's.
    pub(crate) async fn headers(
        &self,
        client: &Client,
        base: &HeaderMap,
        url: &Uri,
    ) -> Result<HeaderMap> {
        let mut headers = base.clone();
        headers.insert(http::header::USER_AGENT, client.inner.user_agent.clone());
        if !client.is_own(url) {
            return Ok(headers);
        }
        let auth = match &self.fresh {
            Some(h) => Some(h.clone()),
            None => client.inner.auth.header_for(&self.scope).await?,
        };
        if let Some(h) = auth {
            headers.insert(http::header::AUTHORIZATION, h);
        }
        Ok(headers)
    }

    /// Whether a response is a 401 this step answers: from the registry,
    /// for a call that can be sent again.
    pub(crate) fn is_challenge(client: &Client, res: &http::Response<Incoming>, url: &Uri) -> bool {
        res.status() == StatusCode::UNAUTHORIZED && client.is_own(url)
    }

    /// After a 401: `None` to try again with fresh credentials, the
    /// response back when there are none to offer, an error once fresh
    /// credentials were refused as well.
    pub(crate) async fn after_challenge(
        &mut self,
        client: &Client,
        res: http::Response<Incoming>,
        url: &Uri,
    ) -> Result<Option<http::Response<Incoming>>> {
        if let Some(sent) = &self.fresh {
            let code = if sent.as_bytes().starts_with(b"Bearer") {
                ErrorCode::Denied
            } else {
                ErrorCode::Unauthorized
            };
            let answer = Response::new(res, url.clone(), None).into_error(code).await;
            // An anonymous token refused is no verdict on credentials.
            let what = if client.inner.auth.has_credentials().await {
                "rejected the credentials"
            } else {
                "requires authentication"
            };
            return Err(ClientError::Auth {
                code,
                host: client.host().to_owned(),
                what,
                message: answer.message().to_owned(),
            }
            .into());
        }
        match client
            .inner
            .auth
            .on_unauthorized(res.headers(), &self.scope)
            .await?
        {
            Some(h) => {
                self.fresh = Some(h);
                Ok(None)
            }
            None => Ok(Some(res)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthOptions, ClientOptions};

    fn client() -> Client {
        let options = ClientOptions {
            auth: AuthOptions::BearerToken("t0ken".into()),
            user_agent: "ocidist-test".into(),
            ..ClientOptions::default()
        };
        Client::new("127.0.0.1:5000", options).unwrap()
    }

    #[tokio::test]
    async fn credentials_go_only_to_the_registry() {
        let c = client();
        let a = Authorization::new(Scope::none());
        let mut base = HeaderMap::new();
        base.insert(http::header::RANGE, "bytes=0-9".parse().unwrap());
        let own = a
            .headers(&c, &base, &"http://127.0.0.1:5000/v2/".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(own[http::header::AUTHORIZATION], "Bearer t0ken");
        assert_eq!(own[http::header::USER_AGENT], "ocidist-test");
        assert_eq!(own[http::header::RANGE], "bytes=0-9");
        let cdn = a
            .headers(&c, &base, &"http://cdn.example/blob".parse().unwrap())
            .await
            .unwrap();
        assert!(cdn.get(http::header::AUTHORIZATION).is_none());
        assert_eq!(cdn[http::header::USER_AGENT], "ocidist-test");
    }

    #[tokio::test]
    async fn fresh_credentials_replace_the_remembered_ones() {
        let c = client();
        let mut a = Authorization::new(Scope::none());
        a.fresh = Some(HeaderValue::from_static("Basic Zm9vOmJhcg=="));
        let h = a
            .headers(
                &c,
                &HeaderMap::new(),
                &"http://127.0.0.1:5000/v2/".parse().unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(h[http::header::AUTHORIZATION], "Basic Zm9vOmJhcg==");
    }
}
