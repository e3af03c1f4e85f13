//! Mutated input for the client's own parsers of what servers and config
//! files say: `WWW-Authenticate` challenges, token answers, docker/podman
//! auth files. Each mutant is read without a panic; what is accepted is
//! usable (a bearer challenge has a realm, a token answer a token).
//!
//! The mutations come from a fixed-seed generator (`testkit::mutate`), so
//! a failure repeats.

#![allow(clippy::unwrap_used)]

use oci_client::auth::challenge::{Challenge, parse_challenges};
use oci_client::auth::credentials::{ConfigFile, normalize_host};
use oci_client::auth::token::{Scope, TokenAnswer, TokenCache};
use oci_core::testkit::mutate::Mutator;

/// Mutants made from each seed.
const ROUNDS: usize = 5000;

/// Bytes that matter to these grammars.
const INTERESTING: &[u8] = b"\"\\,=:; {}[]\t\r\n0123456789aeBb-._/\x00\xff";

fn each_mutant(seeds: &[&str], check: impl FnMut(&[u8])) {
    Mutator::new(0x0c11_e47a_5eed_0002, INTERESTING).each(seeds, ROUNDS, check);
}

#[test]
fn challenges() {
    let seeds = [
        r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        r#"Basic realm="r", Bearer realm="https://a/t", error="insufficient_scope""#,
        r#"bearer realm=https://a/t,service=s"#,
        r#"Bearer realm="https://a/t?x=\"y\"",scope="repository:x:pull""#,
    ];
    each_mutant(&seeds, |bytes| {
        let header = String::from_utf8_lossy(bytes);
        for challenge in parse_challenges([header.as_ref()]) {
            if let Challenge::Bearer { realm, .. } = challenge {
                assert!(
                    !realm.is_empty(),
                    "{header:?} gave a bearer challenge without a realm"
                );
            }
        }
    });
}

#[test]
fn token_answers() {
    let seeds = [
        r#"{"token":"abc","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}"#,
        r#"{"access_token":"xyz","refresh_token":"r","expires_in":60}"#,
    ];
    each_mutant(&seeds, |bytes| {
        if let Ok(answer) = TokenAnswer::parse(bytes) {
            assert!(
                !answer.token().is_empty(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            let _ = answer.lifetime();
        }
    });
    // An absurd lifetime is capped, not an overflow of the clock.
    let answer = TokenAnswer::parse(br#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
    assert!(answer.lifetime() <= std::time::Duration::from_secs(24 * 60 * 60));
    let cache = TokenCache::default();
    let scope = Scope::catalog();
    cache.put(&scope, "t".into(), answer.lifetime());
    assert_eq!(cache.get(&scope).as_deref(), Some("t"));
    cache.put(&scope, "u".into(), std::time::Duration::MAX);
    assert_eq!(cache.get(&scope).as_deref(), Some("u"));
}

#[test]
fn auth_files() {
    // Only `auths` entries: a mutant must not name a credential helper to run.
    let seeds = [
        r#"{"auths":{"registry.example:5000":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"identitytoken":"tok"}}}"#,
        r#"{"auths":{"localhost:5000":{"username":"u","password":"p"},"ghcr.io":{"registrytoken":"t"}}}"#,
    ];
    each_mutant(&seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if text.contains("credHelpers") || text.contains("credsStore") {
            return;
        }
        if let Ok(config) = ConfigFile::parse(bytes) {
            for host in [
                "registry.example:5000",
                "docker.io",
                "localhost:5000",
                "ghcr.io",
            ] {
                let _ = config.lookup(host);
            }
        }
    });
    each_mutant(
        &["https://index.docker.io/v1/", "registry.example:5000/v2/"],
        |bytes| {
            let _ = normalize_host(&String::from_utf8_lossy(bytes));
        },
    );
}
