//! `WWW-Authenticate` challenges (RFC 7235): several per header, quoted
//! strings with commas and escapes, case-insensitive names.

use std::collections::BTreeMap;

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` to ask the token for.
        service: Option<String>,
        /// The scope the server asked for, if any.
        scope: Option<String>,
    },
}

/// The challenges this client can answer, in the order the server gave
/// them; unknown schemes and malformed entries are skipped.
pub fn parse_challenges<'a>(headers: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for header in headers {
        for (scheme, params) in parse_header(header) {
            match scheme.as_str() {
                "basic" => out.push(Challenge::Basic),
                "bearer" => {
                    let Some(realm) = params.get("realm").filter(|r| !r.is_empty()) else {
                        tracing::debug!(header, "bearer challenge without a realm");
                        continue;
                    };
                    out.push(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
                other => tracing::debug!(scheme = other, "ignoring unknown auth scheme"),
            }
        }
    }
    out
}

/// Splits one header value into `(scheme, params)` pairs, scheme lower-cased.
fn parse_header(value: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut lexer = Lexer {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    loop {
        lexer.skip(|c| c == b',' || c.is_ascii_whitespace());
        if lexer.peek().is_none() {
            break;
        }
        let Some(token) = lexer.token() else {
            // Not a token: skip the stray character.
            lexer.i += 1;
            continue;
        };
        lexer.skip(|c| c == b' ' || c == b'\t');
        if lexer.peek() == Some(b'=') {
            // A parameter of the current challenge.
            lexer.i += 1;
            lexer.skip(|c| c == b' ' || c == b'\t');
            let value = if lexer.peek() == Some(b'"') {
                lexer.quoted()
            } else {
                lexer.token().unwrap_or_default()
            };
            match out.last_mut() {
                Some((_, params)) => {
                    params.insert(token.to_ascii_lowercase(), value);
                }
                None => tracing::debug!(value, "challenge parameter before any scheme"),
            }
        } else {
            out.push((token.to_ascii_lowercase(), BTreeMap::new()));
        }
    }
    out
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
    }

    /// An RFC 7230 token (token68 characters included).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c));
        // token68 may end with '=' padding, but only when no value follows.
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string starting at the opening quote; backslash escapes.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        }
    }

    #[test]
    fn docker_hub_style_bearer() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#;
        assert_eq!(
            parse_challenges([h]),
            vec![bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/alpine:pull,push"),
            )]
        );
    }

    #[test]
    fn several_challenges_spaces_and_case() {
        let h = r#"Basic realm="reg", BEARER Realm = "http://127.0.0.1:1/t" , Service=svc, Newauth foo=bar"#;
        assert_eq!(
            parse_challenges([h]),
            vec![
                Challenge::Basic,
                bearer("http://127.0.0.1:1/t", Some("svc"), None)
            ]
        );
        assert_eq!(
            parse_challenges(["Basic realm=\"a\"", "Bearer realm=\"r\""]),
            vec![Challenge::Basic, bearer("r", None, None)]
        );
    }

    #[test]
    fn quoted_escapes_and_commas() {
        let h = r#"Bearer realm="http://x/t?a=1,b=2",scope="a \"q\" b""#;
        assert_eq!(
            parse_challenges([h]),
            vec![bearer("http://x/t?a=1,b=2", None, Some("a \"q\" b"))]
        );
    }

    #[test]
    fn malformed_challenges_are_skipped() {
        assert!(parse_challenges(["Bearer service=\"x\""]).is_empty());
        assert!(parse_challenges([""]).is_empty());
        assert!(parse_challenges(["=== \"unterminated"]).is_empty());
        assert!(parse_challenges(["Bearer realm=\"unterminated"]).len() == 1);
        assert!(parse_challenges(["Negotiate abc=="]).is_empty());
    }
}
