//! A minimal JWT (compact JWS): ES256 signing with our own key, ES256 or
//! RS256 verification, and the claims of distribution's token spec.
//!
//! Verification refuses, before looking at any claim: tokens over
//! [`MAX_TOKEN_LEN`], anything but three base64url parts, an `alg` other
//! than the key's (so `none` and HMAC confusion never pass), a `crit`
//! header, and a bad signature. Then `iss`, `aud`, `exp` and `nbf` must be
//! right, with [`LEEWAY`] for clock skew.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::AuthError;
use crate::scope::{Actions, Resource, Scope, ScopeItem};

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Allowed clock skew for `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("the token is too large")]
    TooLarge,
    /// Not three base64url parts of JSON.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// An algorithm we do not accept for this key (`none` included).
    #[error("the token's algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// No configured key verifies the signature.
    #[error("the token's signature does not verify")]
    Signature,
    /// Issued by someone else.
    #[error("the token was issued by someone else")]
    Issuer,
    /// Meant for another service.
    #[error("the token is meant for another service")]
    Audience,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// A refresh token where an access token is needed, or the reverse.
    #[error("the token is of the wrong kind")]
    Kind,
}

/// The `aud` claim: one service or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, service: &str) -> bool {
        match self {
            Audience::One(a) => a == service,
            Audience::Many(all) => all.iter().any(|a| a == service),
        }
    }
}

/// One entry of the `access` claim, as distribution's token spec has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaim {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// The actions granted.
    pub actions: Vec<String>,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who issued it.
    pub iss: String,
    /// The user it was issued to (empty for anonymous).
    #[serde(default)]
    pub sub: String,
    /// The service it is for.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not valid before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// A unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// What the token grants.
    #[serde(default)]
    pub access: Vec<AccessClaim>,
    /// `refresh` for a refresh token; absent for an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_use: Option<String>,
}

impl Claims {
    /// The `access` claim as a scope (entries of unknown types skipped).
    pub fn scope(&self) -> Scope {
        let mut scope = Scope::none();
        for entry in &self.access {
            let actions = entry
                .actions
                .iter()
                .filter_map(|a| Actions::from_name(a))
                .fold(Actions::NONE, Actions::union);
            match entry.kind.as_str() {
                "repository" => {
                    if let Ok(repo) = entry.name.parse() {
                        scope.add(repo, actions);
                    }
                }
                "registry" if entry.name == "catalog" => scope.items.push(ScopeItem::catalog()),
                _ => {}
            }
        }
        scope
    }

    /// The `access` claim for a granted scope.
    pub fn access_for(scope: &Scope) -> Vec<AccessClaim> {
        scope
            .items
            .iter()
            .map(|item| match &item.resource {
                Resource::Repository(repo) => AccessClaim {
                    kind: "repository".to_owned(),
                    name: repo.to_string(),
                    actions: item
                        .actions
                        .names()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                },
                Resource::Catalog => AccessClaim {
                    kind: "registry".to_owned(),
                    name: "catalog".to_owned(),
                    actions: vec!["*".to_owned()],
                },
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// Our ES256 (ECDSA P-256, SHA-256) signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    kid: String,
}

impl SigningKey {
    /// A fresh key, with its PKCS#8 DER encoding to keep.
    pub fn generate() -> Result<(SigningKey, Vec<u8>), AuthError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AuthError::Config("cannot generate a signing key".to_owned()))?;
        let der = pkcs8.as_ref().to_vec();
        Ok((SigningKey::from_pkcs8(&der)?, der))
    }

    /// A key from its PKCS#8 DER encoding.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, AuthError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| AuthError::Config(format!("not a PKCS#8 P-256 key: {e}")))?;
        let kid = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, kid })
    }

    /// The key in `path` (PKCS#8 DER); when there is no such file, a new
    /// key is made and written there, readable by its owner only.
    pub fn load_or_create(path: &Path) -> Result<SigningKey, AuthError> {
        match std::fs::read(path) {
            Ok(der) => SigningKey::from_pkcs8(&der)
                .map_err(|e| AuthError::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, der) = SigningKey::generate()?;
                write_private(path, &der).map_err(|e| {
                    AuthError::Config(format!("cannot write {}: {e}", path.display()))
                })?;
                tracing::info!(path = %path.display(), kid = %key.kid, "made a new token signing key");
                Ok(key)
            }
            Err(e) => Err(AuthError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// The key that verifies this key's signatures.
    pub fn verify_key(&self) -> VerifyKey {
        VerifyKey::Es256 {
            point: self.pair.public_key().as_ref().to_vec(),
            kid: Some(self.kid.clone()),
        }
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let header = Header {
            alg: "ES256".to_owned(),
            typ: Some("JWT".to_owned()),
            kid: Some(self.kid.clone()),
            crit: None,
        };
        let mut out = encode_json(&header)?;
        out.push('.');
        out.push_str(&encode_json(claims)?);
        let sig = self
            .pair
            .sign(&SystemRandom::new(), out.as_bytes())
            .map_err(|_| AuthError::Internal("signing a token failed".to_owned()))?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(out)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A public key tokens may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// ECDSA P-256 (`alg: ES256`): the uncompressed point.
    Es256 {
        /// `04 || x || y`.
        point: Vec<u8>,
        /// The key id, if the key has one.
        kid: Option<String>,
    },
    /// RSA (`alg: RS256`): the PKCS#1 `RSAPublicKey` DER.
    Rs256 {
        /// The DER.
        der: Vec<u8>,
        /// The key id, if the key has one.
        kid: Option<String>,
    },
}

impl VerifyKey {
    fn alg(&self) -> &'static str {
        match self {
            VerifyKey::Es256 { .. } => "ES256",
            VerifyKey::Rs256 { .. } => "RS256",
        }
    }

    fn kid(&self) -> Option<&str> {
        match self {
            VerifyKey::Es256 { kid, .. } | VerifyKey::Rs256 { kid, .. } => kid.as_deref(),
        }
    }

    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            VerifyKey::Es256 { point, .. } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            VerifyKey::Rs256 { der, .. } => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The expected `iss`.
    pub issuer: String,
    /// The service that must be in `aud`.
    pub audience: String,
    /// The keys that may have signed it.
    pub keys: Vec<VerifyKey>,
    /// Allowed clock skew for `exp` and `nbf`, in seconds ([`LEEWAY`] usually).
    pub leeway: u64,
}

impl Validation {
    /// Checks `token` at time `now` (seconds since the epoch) and returns
    /// its claims. `refresh` says which kind of token is expected.
    pub fn verify(&self, token: &str, now: u64, refresh: bool) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three parts"));
        };
        let header: Header = serde_json::from_slice(&decode(h)?)
            .map_err(|_| JwtError::Malformed("header is not JSON"))?;
        if header.crit.is_some() {
            return Err(JwtError::Malformed("critical header extensions"));
        }
        let payload = decode(p)?;
        let sig = decode(s)?;
        let message = &token.as_bytes()[..h.len() + 1 + p.len()];
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.alg() == header.alg)
            .filter(|k| match (&header.kid, k.kid()) {
                (Some(wanted), Some(kid)) => wanted == kid,
                _ => true,
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(if self.keys.iter().any(|k| k.alg() == header.alg) {
                JwtError::Signature
            } else {
                JwtError::Algorithm(header.alg)
            });
        }
        if !candidates.any(|k| k.verifies(message, &sig)) {
            return Err(JwtError::Signature);
        }
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| JwtError::Malformed("claims are not the expected JSON"))?;
        if claims.iss != self.issuer {
            return Err(JwtError::Issuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(JwtError::Audience);
        }
        if now > claims.exp.saturating_add(self.leeway) {
            return Err(JwtError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(JwtError::NotYetValid);
        }
        if (claims.token_use.as_deref() == Some("refresh")) != refresh {
            return Err(JwtError::Kind);
        }
        Ok(claims)
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random token id.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // SystemRandom only fails when the OS has no randomness at all; an
    // all-zero id then only weakens uniqueness, not security.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("bad base64url"))
}

fn encode_json<T: Serialize>(value: &T) -> Result<String, AuthError> {
    let json = serde_json::to_vec(value).map_err(|e| AuthError::Internal(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The DER prefix of a P-256 `SubjectPublicKeyInfo`, before the point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The key id as docker's libtrust makes it (and distribution looks keys
/// up by): the SHA-256 of the DER `SubjectPublicKeyInfo`, cut to 240 bits,
/// in base32, in groups of four joined by `:`. With it, a distribution
/// registry given our certificate as `rootcertbundle` accepts our tokens.
fn key_id(public: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(public);
    let hash = Sha256::digest(&spki);
    let mut chars = Vec::with_capacity(48);
    // 30 bytes are 240 bits: exactly 48 five-bit groups.
    for chunk in hash[..30].chunks(5) {
        let bits = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for i in (0..8).rev() {
            chars.push(ALPHABET[((bits >> (i * 5)) & 31) as usize]);
        }
    }
    chars
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            iss: "ocidist".into(),
            sub: "alice".into(),
            aud: Audience::One("registry".into()),
            exp: NOW + 300,
            nbf: Some(NOW - 1),
            iat: Some(NOW - 1),
            jti: Some(random_id()),
            access: Claims::access_for(&Scope::repository("a/b".parse().unwrap(), Actions::PULL)),
            token_use: None,
        }
    }

    fn setup() -> (SigningKey, Validation) {
        let (key, _) = SigningKey::generate().unwrap();
        let v = Validation {
            issuer: "ocidist".into(),
            audience: "registry".into(),
            keys: vec![key.verify_key()],
            leeway: LEEWAY,
        };
        (key, v)
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn a_signed_token_verifies_and_carries_its_access() {
        let (key, v) = setup();
        let token = key.sign(&claims()).unwrap();
        let got = v.verify(&token, NOW, false).unwrap();
        assert_eq!(got, claims_with_jti(&got));
        assert_eq!(got.scope().to_string(), "repository:a/b:pull");
        assert_eq!(v.verify(&token, NOW, true), Err(JwtError::Kind));
    }

    fn claims_with_jti(got: &Claims) -> Claims {
        Claims {
            jti: got.jti.clone(),
            ..claims()
        }
    }

    #[test]
    fn refuses_alg_none() {
        let (_, v) = setup();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","typ":"JWT"}"#] {
            let token = format!("{}.{body}.", b64(header));
            assert_eq!(
                v.verify(&token, NOW, false),
                Err(JwtError::Algorithm(
                    serde_json::from_str::<Header>(header).unwrap().alg
                ))
            );
        }
    }

    #[test]
    fn refuses_other_algorithms_and_crit() {
        let (key, v) = setup();
        let token = key.sign(&claims()).unwrap();
        let rest = token.split_once('.').unwrap().1;
        for header in [
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"ES384"}"#,
        ] {
            let forged = format!("{}.{rest}", b64(header));
            assert!(matches!(
                v.verify(&forged, NOW, false),
                Err(JwtError::Algorithm(_))
            ));
        }
        let forged = format!("{}.{rest}", b64(r#"{"alg":"ES256","crit":["exp"]}"#));
        assert!(matches!(
            v.verify(&forged, NOW, false),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_a_signature_by_another_key() {
        let (_, v) = setup();
        let (other, _) = SigningKey::generate().unwrap();
        let token = other.sign(&claims()).unwrap();
        // Same alg, different kid: no candidate key at all.
        assert_eq!(v.verify(&token, NOW, false), Err(JwtError::Signature));
        // Without a kid, the signature itself is checked and fails.
        let v2 = Validation {
            keys: vec![VerifyKey::Es256 {
                point: match v.keys[0].clone() {
                    VerifyKey::Es256 { point, .. } => point,
                    VerifyKey::Rs256 { .. } => unreachable!(),
                },
                kid: None,
            }],
            ..v
        };
        assert_eq!(v2.verify(&token, NOW, false), Err(JwtError::Signature));
    }

    #[test]
    fn refuses_tampered_claims() {
        let (key, v) = setup();
        let token = key.sign(&claims()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut more = claims();
        more.access = Claims::access_for(&Scope::repository("a/b".parse().unwrap(), Actions::ALL));
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&more).unwrap());
        parts[1] = &forged_body;
        assert_eq!(
            v.verify(&parts.join("."), NOW, false),
            Err(JwtError::Signature)
        );
        // A flipped bit in the signature.
        let mut sig = URL_SAFE_NO_PAD
            .decode(token.rsplit('.').next().unwrap())
            .unwrap();
        sig[5] ^= 1;
        let (signed, _) = token.rsplit_once('.').unwrap();
        let bad = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(v.verify(&bad, NOW, false), Err(JwtError::Signature));
    }

    #[test]
    fn refuses_wrong_audience_issuer_and_times() {
        let (key, v) = setup();
        let sign = |f: &dyn Fn(&mut Claims)| {
            let mut c = claims();
            f(&mut c);
            key.sign(&c).unwrap()
        };
        let t = sign(&|c| c.aud = Audience::One("elsewhere".into()));
        assert_eq!(v.verify(&t, NOW, false), Err(JwtError::Audience));
        let t = sign(&|c| c.aud = Audience::Many(vec!["x".into(), "registry".into()]));
        assert!(v.verify(&t, NOW, false).is_ok());
        let t = sign(&|c| c.iss = "mallory".into());
        assert_eq!(v.verify(&t, NOW, false), Err(JwtError::Issuer));
        let t = sign(&|c| c.exp = NOW - LEEWAY - 1);
        assert_eq!(v.verify(&t, NOW, false), Err(JwtError::Expired));
        let t = sign(&|c| c.exp = NOW - LEEWAY + 1);
        assert!(v.verify(&t, NOW, false).is_ok(), "within the leeway");
        let t = sign(&|c| c.nbf = Some(NOW + LEEWAY + 10));
        assert_eq!(v.verify(&t, NOW, false), Err(JwtError::NotYetValid));
    }

    #[test]
    fn refuses_malformed_and_oversized_tokens() {
        let (key, v) = setup();
        let token = key.sign(&claims()).unwrap();
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{token}.x"),
            token.replacen('.', ".!", 1),
            format!("{token}="),
            format!("{}.{}", b64("not json"), token.split_once('.').unwrap().1),
        ] {
            assert!(
                matches!(v.verify(&bad, NOW, false), Err(JwtError::Malformed(_))),
                "{bad}"
            );
        }
        let mut big = claims();
        big.sub = "x".repeat(MAX_TOKEN_LEN);
        let t = key.sign(&big).unwrap();
        assert_eq!(v.verify(&t, NOW, false), Err(JwtError::TooLarge));
    }

    #[test]
    fn key_ids_are_libtrust_ids() {
        // The SPKI's SHA-256 cut to 30 bytes and base32'd, as libtrust
        // does, for a fixed point (computed independently with Python's
        // hashlib and base64).
        let mut point = vec![4u8];
        point.extend(1..=64u8);
        let kid = key_id(&point);
        assert_eq!(kid.len(), 12 * 4 + 11);
        assert!(kid.split(':').all(|g| g.len() == 4));
        assert_eq!(
            kid,
            "CVML:EFWX:X7JT:253V:YRK5:MA4A:2ORM:6YPR:7WMA:5GRU:QOCV:SBRL"
        );
    }

    #[test]
    fn key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.key");
        let a = SigningKey::load_or_create(&path).unwrap();
        let b = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(a.verify_key(), b.verify_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"garbage").unwrap();
        assert!(SigningKey::load_or_create(&path).is_err());
    }
}
