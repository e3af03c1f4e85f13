//! `WWW-Authenticate` challenges from a registry: any header value (or
//! several, split at newlines) yields only challenges the client can
//! answer, each bearer challenge with a realm; a challenge printed back in
//! the canonical form parses to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_client::auth::challenge::{Challenge, parse_challenges};
use ocidist_fuzz::text;

/// A quoted string as a server would write it.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fuzz_target!(|data: &[u8]| {
    let s = text(data);
    let headers: Vec<&str> = s.split('\n').collect();
    let challenges = parse_challenges(headers.iter().copied());
    for challenge in challenges {
        let printed = match &challenge {
            Challenge::Basic => "Basic realm=\"registry\"".to_owned(),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                assert!(
                    !realm.is_empty(),
                    "{s:?}: a bearer challenge without a realm"
                );
                let mut h = format!("Bearer realm={}", quoted(realm));
                if let Some(service) = service {
                    h += &format!(",service={}", quoted(service));
                }
                if let Some(scope) = scope {
                    h += &format!(",scope={}", quoted(scope));
                }
                h
            }
        };
        assert_eq!(
            parse_challenges([printed.as_str()]),
            vec![challenge],
            "{s:?}: printed as {printed:?}"
        );
    }
});
