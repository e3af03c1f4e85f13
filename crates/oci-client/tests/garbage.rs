//! Mutated input for the client's own parsers of what servers and config
//! files say: `WWW-Authenticate` challenges, token answers, docker/podman
//! auth files. Each mutant is read without a panic; what is accepted is
//! usable (a bearer challenge has a realm, a token answer a token).
//!
//! The mutations come from a fixed-seed generator, so a failure repeats.

#![allow(clippy::unwrap_used)]

use oci_client::auth::challenge::{Challenge, parse_challenges};
use oci_client::auth::credentials::{ConfigFile, normalize_host};
use oci_client::auth::token::{Scope, TokenAnswer, TokenCache};

/// Mutants made from each seed.
const ROUNDS: usize = 5000;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to these grammars.
const INTERESTING: &[u8] = b"\"\\,=:; {}[]\t\r\n0123456789aeBb-._/\x00\xff";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        let byte = if rng.below(3) == 0 {
            rng.next() as u8
        } else {
            INTERESTING[rng.below(INTERESTING.len())]
        };
        match rng.below(5) {
            0 if at < v.len() => v[at] = byte,
            1 => v.insert(at, byte),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => v.truncate(at),
            _ => {
                let end = (at + rng.below(16)).min(v.len());
                let piece = v[at..end].repeat(rng.below(4));
                v.splice(at..at, piece);
            }
        }
    }
    v
}

fn each_mutant(seeds: &[&str], mut check: impl FnMut(&[u8])) {
    let mut rng = Rng(0x0c11_e47a_5eed_0002);
    for seed in seeds {
        check(seed.as_bytes());
        for _ in 0..ROUNDS {
            check(&mutate(&mut rng, seed.as_bytes()));
        }
    }
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
