//! A bearer-token gate in front of our own server: `/token` issues tokens
//! for scopes (to a username/password or a refresh token), and every
//! `/v2/` request must carry a token that covers what it does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use oci_server::RegistryService;

use super::http::{Body, handler, respond, serve};

/// How the gate behaves.
#[derive(Clone, Default)]
pub struct GateConfig {
    /// The user and password the token endpoint accepts (basic auth).
    pub username: String,
    /// The password.
    pub password: String,
    /// A refresh token accepted with `grant_type=refresh_token`.
    pub refresh_token: Option<String>,
    /// Issue tokens that the registry then refuses.
    pub refuse_tokens: bool,
    /// Answer this many token requests with 503 first.
    pub busy_token_requests: usize,
    /// Issue anonymous token requests a token that grants nothing (as
    /// Docker Hub does for private repositories).
    pub anonymous_tokens: bool,
}

/// A running gate.
pub struct Gate {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Token requests served so far.
    pub token_requests: Arc<AtomicUsize>,
    /// Registry (`/v2/`) requests served so far.
    pub registry_requests: Arc<AtomicUsize>,
}

struct State {
    config: GateConfig,
    tokens: Mutex<HashMap<String, Vec<String>>>,
    token_requests: Arc<AtomicUsize>,
    registry_requests: Arc<AtomicUsize>,
    service: RegistryService,
    addr: Mutex<Option<SocketAddr>>,
}

impl Gate {
    /// Starts a gate over a fresh in-memory registry.
    pub async fn start(config: GateConfig) -> Gate {
        let service = RegistryService::new(Arc::new(oci_mem::MemRegistry::new()));
        let token_requests = Arc::new(AtomicUsize::new(0));
        let registry_requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            config,
            tokens: Mutex::new(HashMap::new()),
            token_requests: token_requests.clone(),
            registry_requests: registry_requests.clone(),
            service,
            addr: Mutex::new(None),
        });
        let s = state.clone();
        let addr = serve(handler(move |req| {
            let s = s.clone();
            async move { s.handle(req).await }
        }))
        .await;
        *state.addr.lock().unwrap() = Some(addr);
        Gate {
            addr,
            token_requests,
            registry_requests,
        }
    }
}

fn unauthorized(realm: &str, scope: Option<&str>) -> Response<Body> {
    let mut challenge = format!("Bearer realm=\"{realm}\",service=\"gate\"");
    if let Some(s) = scope {
        challenge.push_str(&format!(",scope=\"{s}\""));
    }
    respond(
        401,
        &[
            ("www-authenticate", &challenge),
            ("content-type", "application/json"),
        ],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    )
}

/// The scopes a registry request needs: `(repository, action)` pairs.
fn needed(req: &Request<Incoming>) -> Vec<String> {
    let path = req.uri().path();
    if path == "/v2/" {
        return Vec::new();
    }
    if path == "/v2/_catalog" {
        return vec!["registry:catalog:*".into()];
    }
    let rest = path.trim_start_matches("/v2/");
    let name = ["/blobs/", "/manifests/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|m| rest.rfind(m))
        .min()
        .map(|i| &rest[..i])
        .unwrap_or(rest);
    let action = match *req.method() {
        http::Method::GET | http::Method::HEAD => "pull",
        http::Method::DELETE => "delete",
        _ => "push",
    };
    let mut out = vec![format!("repository:{name}:{action}")];
    let query = oci_core::wire::parse_query(req.uri().query().unwrap_or("")).unwrap_or_default();
    if let Some((_, from)) = query.iter().find(|(k, _)| k == "from") {
        out.push(format!("repository:{from}:pull"));
    }
    out
}

/// Whether the granted scopes cover a needed one.
fn covers(granted: &[String], need: &str) -> bool {
    let Some((prefix, action)) = need.rsplit_once(':') else {
        return false;
    };
    granted.iter().any(|g| {
        g.rsplit_once(':').is_some_and(|(p, actions)| {
            p == prefix && actions.split(',').any(|a| a == action || a == "*")
        })
    })
}

impl State {
    fn realm(&self) -> String {
        format!("http://{}/token", self.addr.lock().unwrap().unwrap())
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() == "/token" {
            return self.token(req).await;
        }
        self.registry_requests.fetch_add(1, Ordering::SeqCst);
        let needs = needed(&req);
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let granted = token.and_then(|t| self.tokens.lock().unwrap().get(&t).cloned());
        let ok = !self.config.refuse_tokens
            && granted
                .as_ref()
                .is_some_and(|g| needs.iter().all(|n| covers(g, n)));
        if !ok {
            let missing = needs.first().map(String::as_str);
            return unauthorized(&self.realm(), missing);
        }
        self.service.handle(req).await
    }

    async fn token(&self, req: Request<Incoming>) -> Response<Body> {
        let n = self.token_requests.fetch_add(1, Ordering::SeqCst);
        if n < self.config.busy_token_requests {
            return respond(503, &[("retry-after", "0")], "busy");
        }
        let deny = || {
            respond(
                401,
                &[("content-type", "application/json")],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            )
        };
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let scopes: Vec<String> = if parts.method == http::Method::POST {
            let form = oci_core::wire::parse_query(&String::from_utf8_lossy(&body)).unwrap();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            if get("grant_type").as_deref() != Some("refresh_token")
                || get("refresh_token") != self.config.refresh_token
                || self.config.refresh_token.is_none()
            {
                return deny();
            }
            get("scope")
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            let want = format!("{}:{}", self.config.username, self.config.password);
            let given = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            let anonymous = !parts.headers.contains_key("authorization");
            if anonymous && self.config.anonymous_tokens {
                Vec::new()
            } else if given.as_deref() != Some(want.as_bytes()) {
                return deny();
            } else {
                oci_core::wire::parse_query(parts.uri.query().unwrap_or(""))
                    .unwrap()
                    .into_iter()
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v)
                    .collect()
            }
        };
        let token = format!("tok-{}", self.token_requests.load(Ordering::SeqCst));
        self.tokens.lock().unwrap().insert(token.clone(), scopes);
        respond(
            200,
            &[("content-type", "application/json")],
            format!(r#"{{"token":"{token}","expires_in":300}}"#),
        )
    }
}
