//! `oci-server` with authentication on, through our own `oci-client`:
//! the whole shared suite with basic credentials and with bearer tokens
//! from the built-in token service, a pull-only user refused on push,
//! anonymous callers challenged, refresh tokens, and the catalog filtered.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use oci_auth::jwt::SigningKey;
use oci_auth::{Authenticator, Htpasswd, Policy, TokenConfig, TokenService};
use oci_client::{AuthOptions, Client, ClientOptions};
use oci_core::testkit as fixtures;
use oci_core::{ErrorCode, Registry, RepoName};
use oci_server::{RegistryService, ServerOptions};
use ocidist::server_auth::ServerAuth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Written by `htpasswd -nbB alice wonderland` and
/// `htpasswd -nbB -C 6 bob builder`.
const USERS: &str = "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n\
                     bob:$2y$06$w9FqOKTYALuNqHRCzliIH./fJ7LQXmqd2yGiTtt737QuFT7hmeEzq\n";

const POLICY: &str = r#"
[groups]
admins = ["alice"]

[[rule]]
repositories = ["**"]
groups = ["admins"]
actions = ["*"]

[[rule]]
repositories = ["team-a/**"]
users = ["bob"]
actions = ["pull"]

[[rule]]
repositories = ["public/**"]
anonymous = true
actions = ["pull"]
"#;

#[derive(Clone, Copy)]
enum Kind {
    Basic,
    Token,
}

/// Serves a fresh in-memory registry with auth of `kind` on loopback, for
/// as long as the test's runtime lives.
async fn serve(kind: Kind) -> SocketAddr {
    serve_with(kind, TokenConfig::new("ocidist-test")).await
}

/// [`serve`], with tokens issued as `config` says.
async fn serve_with(kind: Kind, config: TokenConfig) -> SocketAddr {
    let (key, _) = SigningKey::generate().unwrap();
    serve_keyed(kind, config, key).await
}

/// [`serve_with`], tokens signed with `key`.
async fn serve_keyed(kind: Kind, config: TokenConfig, key: SigningKey) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let users = Arc::new(Htpasswd::parse(USERS, "users").unwrap());
    let policy = Policy::parse(POLICY).unwrap();
    let auth = match kind {
        Kind::Basic => Authenticator::basic("ocidist", users, policy),
        Kind::Token => {
            let tokens = TokenService::new(config, key, Some(users), policy);
            Authenticator::builtin_token(&format!("http://{addr}/token"), tokens)
        }
    };
    let options = ServerOptions::new().authorizer(Arc::new(ServerAuth::new(auth)));
    let service = RegistryService::with_options(Arc::new(oci_mem::MemRegistry::new()), options);
    tokio::spawn(service.serve(listener));
    addr
}

fn client(addr: SocketAddr, auth: AuthOptions) -> Client {
    Client::new(&addr.to_string(), ClientOptions::default().auth(auth)).unwrap()
}

fn login(user: &str, password: &str) -> AuthOptions {
    AuthOptions::Basic {
        username: user.to_owned(),
        password: password.to_owned(),
    }
}

fn repo(s: &str) -> RepoName {
    s.parse().unwrap()
}

async fn alice(kind: Kind) -> Client {
    client(serve(kind).await, login("alice", "wonderland"))
}

mod basic {
    oci_core::testkit_tests!(super::alice(super::Kind::Basic).await);
}

mod token {
    oci_core::testkit_tests!(super::alice(super::Kind::Token).await);
}

/// The whole raw answer to `METHOD path` with `extra` header lines.
async fn raw(addr: SocketAddr, method: &str, path: &str, extra: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn pull_only_users_are_denied_pushes() {
    for kind in [Kind::Basic, Kind::Token] {
        let addr = serve(kind).await;
        let admin = client(addr, login("alice", "wonderland"));
        let image =
            fixtures::push_image(&admin, &repo("team-a/app"), Some(&"v1".parse().unwrap())).await;

        let bob = client(addr, login("bob", "builder"));
        let got = bob
            .get_tag(&repo("team-a/app"), &"v1".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(got.bytes, image.manifest.bytes);
        let err = bob
            .push_blob_chunked(&repo("team-a/app"))
            .await
            .err()
            .unwrap();
        assert!(err.is(ErrorCode::Denied), "{err}");
        let err = bob
            .push_manifest(
                &repo("team-a/app"),
                &image.manifest,
                &["v2".parse().unwrap()],
            )
            .await
            .unwrap_err();
        assert!(err.is(ErrorCode::Denied), "{err}");
        let err = bob
            .delete_tag(&repo("team-a/app"), &"v1".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.is(ErrorCode::Denied), "{err}");
        // Repositories outside the grant: no read either.
        fixtures::push_image(&admin, &repo("team-b/app"), Some(&"v1".parse().unwrap())).await;
        let err = bob
            .get_tag(&repo("team-b/app"), &"v1".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.is(ErrorCode::Denied), "{err}");
        // The catalog lists only what bob may pull.
        let listed: Vec<RepoName> = bob
            .repositories(&Default::default())
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(listed, [repo("team-a/app")]);
    }
}

#[tokio::test]
async fn wrong_passwords_are_unauthorized() {
    for kind in [Kind::Basic, Kind::Token] {
        let addr = serve(kind).await;
        for (user, password) in [("alice", "builder"), ("mallory", "wonderland")] {
            let c = client(addr, login(user, password));
            let err = c
                .get_tag(&repo("team-a/x"), &"v1".parse().unwrap())
                .await
                .unwrap_err();
            assert!(err.is(ErrorCode::Unauthorized), "{err}");
        }
    }
}

#[tokio::test]
async fn anonymous_callers_are_challenged() {
    let addr = serve(Kind::Basic).await;
    let answer = raw(addr, "GET", "/v2/", "").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"ocidist\""),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"UNAUTHORIZED\""), "{answer}");

    let addr = serve(Kind::Token).await;
    let answer = raw(addr, "GET", "/v2/team-a/app/tags/list", "").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let expected = format!(
        "www-authenticate: bearer realm=\"http://{addr}/token\",service=\"ocidist-test\",scope=\"repository:team-a/app:pull\""
    );
    assert!(answer.to_ascii_lowercase().contains(&expected), "{answer}");

    // Anonymous callers may pull public/x but not push it: challenged for
    // the push, which the anonymous token they get does not grant either.
    let answer = raw(addr, "POST", "/v2/public/x/blobs/uploads/", "").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.contains("scope=\"repository:public/x:push\""),
        "{answer}"
    );
    let anonymous = client(addr, AuthOptions::Anonymous);
    let err = anonymous
        .push_blob_chunked(&repo("public/x"))
        .await
        .err()
        .unwrap();
    assert!(
        err.is(ErrorCode::Unauthorized) || err.is(ErrorCode::Denied),
        "{err}"
    );
    let err = anonymous
        .get_tag(&repo("team-a/app"), &"v1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        err.is(ErrorCode::Unauthorized) || err.is(ErrorCode::Denied),
        "{err}"
    );
}

#[tokio::test]
async fn anonymous_pulls_where_the_policy_allows() {
    for kind in [Kind::Basic, Kind::Token] {
        let addr = serve(kind).await;
        let admin = client(addr, login("alice", "wonderland"));
        let image =
            fixtures::push_image(&admin, &repo("public/app"), Some(&"v1".parse().unwrap())).await;
        let anonymous = client(addr, AuthOptions::Anonymous);
        let got = anonymous
            .get_tag(&repo("public/app"), &"v1".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(got.bytes, image.manifest.bytes);
    }
}

#[tokio::test]
async fn refresh_tokens_stand_in_for_the_password() {
    let addr = serve(Kind::Token).await;
    let admin = client(addr, login("alice", "wonderland"));
    let image =
        fixtures::push_image(&admin, &repo("team-a/app"), Some(&"v1".parse().unwrap())).await;

    // `docker login` style: POST the password once, keep the refresh token.
    let form = "grant_type=password&username=bob&password=builder&access_type=offline\
                &client_id=test&service=ocidist-test&scope=repository%3Ateam-a%2Fapp%3Apull";
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    for field in ["token", "access_token", "issued_at", "refresh_token"] {
        assert!(json[field].is_string(), "{field} in {body}");
    }
    assert_eq!(json["expires_in"], 300);
    let refresh = json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, json["token"].as_str().unwrap());

    let bob = client(addr, AuthOptions::IdentityToken(refresh.clone()));
    let got = bob
        .get_tag(&repo("team-a/app"), &"v1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(got.bytes, image.manifest.bytes);
    let err = bob
        .push_blob_chunked(&repo("team-a/app"))
        .await
        .err()
        .unwrap();
    assert!(err.is(ErrorCode::Denied), "{err}");

    // A refresh token is no access token.
    let answer = raw(
        addr,
        "GET",
        "/v2/team-a/app/tags/list",
        &format!("Authorization: Bearer {refresh}\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("error=\"invalid_token\""), "{answer}");
}

#[tokio::test]
async fn a_token_that_expires_mid_pull_is_renewed() {
    let config = TokenConfig {
        lifetime: std::time::Duration::from_secs(1),
        leeway: 0,
        ..TokenConfig::new("ocidist-test")
    };
    let addr = serve_with(Kind::Token, config).await;
    let alice = client(addr, login("alice", "wonderland"));
    let image =
        fixtures::push_image(&alice, &repo("team-a/app"), Some(&"v1".parse().unwrap())).await;
    let got = alice
        .get_tag(&repo("team-a/app"), &"v1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(got.bytes, image.manifest.bytes);
    // The client still holds its token (it keeps tokens for at least a
    // minute) when the server stops taking it.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for (layer, bytes) in image.layers.iter().zip(&image.layer_bytes) {
        let blob = alice
            .get_blob(&repo("team-a/app"), &layer.digest)
            .await
            .unwrap();
        assert_eq!(&blob.bytes().await.unwrap(), bytes);
    }
}

#[tokio::test]
async fn hostile_credentials_are_each_answered_401() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use oci_auth::jwt::{Audience, Claims};
    use oci_auth::{Actions, Scope};

    let (key, der) = SigningKey::generate().unwrap();
    let addr = serve_keyed(Kind::Token, TokenConfig::new("ocidist-test"), key).await;
    let key = SigningKey::from_pkcs8(&der).unwrap();
    let now = oci_auth::jwt::now();
    let good = Claims {
        iss: "ocidist".into(),
        sub: "alice".into(),
        aud: Audience::One("ocidist-test".into()),
        exp: now + 300,
        nbf: None,
        iat: Some(now),
        jti: None,
        access: Claims::access_for(&Scope::repository(repo("team-a/app"), Actions::PULL)),
        token_use: None,
    };
    let signed = |f: &dyn Fn(&mut Claims)| {
        let mut c = good.clone();
        f(&mut c);
        key.sign(&c).unwrap()
    };
    let path = "/v2/team-a/app/tags/list";
    let get = |value: String| async move {
        raw(addr, "GET", path, &format!("Authorization: {value}\r\n")).await
    };

    // The control: a well-signed token for the repository is taken (the
    // repository is empty, hence 404).
    let answer = get(format!("Bearer {}", signed(&|_| {}))).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let (other, _) = SigningKey::generate().unwrap();
    let valid = signed(&|_| {});
    let mut parts: Vec<&str> = valid.split('.').collect();
    let mut more = good.clone();
    more.access = Claims::access_for(&Scope::repository(repo("team-a/app"), Actions::ALL));
    let tampered_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&more).unwrap());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");
    let cases = [
        ("malformed basic", "Basic !!!not-base64".to_owned()),
        (
            "basic without colon",
            format!("Basic {}", STANDARD.encode("alice")),
        ),
        ("no scheme", "alice:wonderland".to_owned()),
        ("unknown scheme", "Digest username=alice".to_owned()),
        ("empty bearer", "Bearer ".to_owned()),
        ("not a JWT", "Bearer a.b".to_owned()),
        (
            "bad base64",
            format!("Bearer {}", valid.replacen('.', ".!!", 1)),
        ),
        ("alg none", format!("Bearer {none}")),
        (
            "wrong signature",
            format!("Bearer {}", other.sign(&good).unwrap()),
        ),
        (
            "wrong audience",
            format!(
                "Bearer {}",
                signed(&|c| c.aud = Audience::One("other".into()))
            ),
        ),
        (
            "wrong issuer",
            format!("Bearer {}", signed(&|c| c.iss = "mallory".into())),
        ),
        (
            "expired",
            format!("Bearer {}", signed(&|c| c.exp = now - 3600)),
        ),
        ("tampered claims", format!("Bearer {tampered}")),
        (
            "oversized",
            format!("Bearer {}", signed(&|c| c.sub = "x".repeat(9000))),
        ),
    ];
    for (what, value) in cases {
        let answer = get(value).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{what}: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer realm="),
            "{what}: {answer}"
        );
        assert!(
            answer.contains("\"code\":\"UNAUTHORIZED\""),
            "{what}: {answer}"
        );
    }
}
