//! [`VerifiedTokens`]: a bounded memory of bearer tokens whose signature
//! and claims checked out, so a client reusing a token for many requests
//! pays for the signature check once. An entry is only used until the
//! token's own expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::jwt::{Claims, JwtError, Validation};
use crate::scope::{Identity, Scope};

/// At most this many tokens are remembered; the memory is cleared when it
/// is full.
const MAX_TOKENS: usize = 4096;

/// What a verified token says, ready for use.
#[derive(Debug)]
pub(crate) struct VerifiedToken {
    /// Whom it was issued to.
    pub(crate) identity: Identity,
    /// What it grants.
    pub(crate) granted: Arc<Scope>,
    /// Its expiry, seconds since the epoch.
    exp: u64,
}

impl VerifiedToken {
    fn from_claims(claims: &Claims) -> VerifiedToken {
        let identity = match claims.sub.as_str() {
            "" => Identity::Anonymous,
            sub => Identity::User(sub.to_owned()),
        };
        VerifiedToken {
            identity,
            granted: Arc::new(claims.scope()),
            exp: claims.exp,
        }
    }
}

/// Tokens already verified, by their exact text.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    tokens: Mutex<HashMap<String, Arc<VerifiedToken>>>,
}

impl VerifiedTokens {
    /// Verifies an access token at `now`, from memory when it was verified
    /// before and has not expired since.
    pub(crate) fn verify(
        &self,
        validation: &Validation,
        token: &str,
        now: u64,
    ) -> Result<Arc<VerifiedToken>, JwtError> {
        {
            let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(known) = tokens.get(token) {
                if now <= known.exp.saturating_add(validation.leeway) {
                    return Ok(Arc::clone(known));
                }
                drop(tokens);
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(token);
                return Err(JwtError::Expired);
            }
        }
        let claims = validation.verify(token, now, false)?;
        let verified = Arc::new(VerifiedToken::from_claims(&claims));
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.to_owned(), Arc::clone(&verified));
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Audience, LEEWAY, SigningKey};

    #[test]
    fn remembered_tokens_still_expire() {
        let (key, _) = SigningKey::generate().unwrap();
        let validation = Validation {
            issuer: "i".into(),
            audience: "a".into(),
            keys: vec![key.verify_key()],
            leeway: LEEWAY,
        };
        let claims = Claims {
            iss: "i".into(),
            sub: "alice".into(),
            aud: Audience::One("a".into()),
            exp: 1000,
            nbf: None,
            iat: None,
            jti: None,
            access: Vec::new(),
            token_use: None,
        };
        let token = key.sign(&claims).unwrap();
        let memory = VerifiedTokens::default();
        let first = memory.verify(&validation, &token, 900).unwrap();
        assert_eq!(first.identity, Identity::User("alice".into()));
        assert!(Arc::ptr_eq(
            &first,
            &memory.verify(&validation, &token, 950).unwrap()
        ));
        assert_eq!(
            memory
                .verify(&validation, &token, 1000 + LEEWAY + 1)
                .unwrap_err(),
            JwtError::Expired
        );
        // A token never seen is checked in full.
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(memory.verify(&validation, &forged, 900).is_err());
    }
}
