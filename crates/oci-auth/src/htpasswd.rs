//! [`Htpasswd`]: users and their bcrypt password hashes, from a file as
//! `htpasswd -B` writes it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::AuthError;

/// How long a verified user/password pair is remembered, so that clients
/// sending Basic credentials on every request do not pay bcrypt each time.
const VERIFIED_FOR: Duration = Duration::from_secs(300);

/// At most this many verified pairs are remembered; the memory is cleared
/// when it is full.
const MAX_VERIFIED: usize = 1024;

/// The bcrypt cost of the stand-in hash when the file holds no user.
const DEFAULT_COST: u32 = 10;

/// Users and their bcrypt hashes. Checking a password takes the same time
/// whether the user exists or not.
///
/// ```
/// let users = oci_auth::Htpasswd::parse(
///     "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n",
///     "example",
/// )
/// .unwrap();
/// assert!(!users.verify("alice", "wrong"));
/// ```
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// A hash no password matches, checked for unknown users.
    dummy: String,
    /// SHA-256 of recently verified `user\0password` pairs, until when.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Htpasswd {
    /// Reads an htpasswd file.
    pub fn load(path: &Path) -> Result<Htpasswd, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError::Config(format!("cannot read {}: {e}", path.display())))?;
        Htpasswd::parse(&text, &path.display().to_string())
    }

    /// Parses htpasswd text (`user:hash` per line; `#` comments and blank
    /// lines skipped). Every hash must be bcrypt (`$2y$`, `$2b$`, `$2a$`);
    /// any other kind is refused, naming the line and the user, never the
    /// hash. `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Htpasswd, AuthError> {
        let mut users = HashMap::new();
        let mut cost = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{origin} line {}", n + 1);
            let Some((user, hash)) = line.split_once(':') else {
                return Err(AuthError::Config(format!("{}: not USER:HASH", at())));
            };
            if user.is_empty() {
                return Err(AuthError::Config(format!("{}: empty user name", at())));
            }
            let kind = hash_kind(hash);
            if kind != "bcrypt" {
                return Err(AuthError::Config(format!(
                    "{} (user {user:?}): {kind} password hashes are not supported; \
                     write the entry with `htpasswd -B`",
                    at()
                )));
            }
            let entry_cost = bcrypt_cost(hash).ok_or_else(|| {
                AuthError::Config(format!("{} (user {user:?}): malformed bcrypt hash", at()))
            })?;
            cost = cost.max(Some(entry_cost));
            if users.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(AuthError::Config(format!(
                    "{}: user {user:?} is listed twice",
                    at()
                )));
            }
        }
        let dummy = bcrypt::hash_with_salt(
            b"no password matches",
            cost.unwrap_or(DEFAULT_COST),
            [0x5a; 16],
        )
        .map_err(|e| AuthError::Config(format!("{origin}: bcrypt: {e}")))?
        .format_for_version(bcrypt::Version::TwoY);
        Ok(Htpasswd {
            users,
            dummy,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// No users (anonymous access only).
    pub fn empty() -> Htpasswd {
        Htpasswd {
            users: HashMap::new(),
            // With no user at all, timing has nothing to reveal.
            dummy: String::new(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `password` is `user`'s. Unknown users cost a bcrypt check
    /// too, against a stand-in hash, so timing does not tell who exists.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let key = pair_key(user, password);
        let now = Instant::now();
        {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.get(&key).is_some_and(|until| now < *until) {
                return true;
            }
        }
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy.as_str(), false),
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(key, now + VERIFIED_FOR);
        }
        ok
    }

    /// Whether `user` is listed (for refresh tokens, which outlive a
    /// password check: a user removed from the file loses them).
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// How many users are listed.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is listed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// The name of a hash's kind, for messages.
fn hash_kind(hash: &str) -> &'static str {
    if ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
        "bcrypt"
    } else if hash.starts_with("{SHA}") {
        "SHA-1 ({SHA})"
    } else if hash.starts_with("$apr1$") {
        "Apache MD5 ($apr1$)"
    } else if hash.starts_with("$1$") {
        "MD5-crypt ($1$)"
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        "SHA-crypt ($5$/$6$)"
    } else if hash.starts_with('$') {
        "unknown"
    } else {
        "crypt or plain-text"
    }
}

/// The cost of a well-formed bcrypt hash (`$2y$NN$` + 53 characters).
fn bcrypt_cost(hash: &str) -> Option<u32> {
    if hash.len() != 60 || hash.as_bytes().get(6) != Some(&b'$') {
        return None;
    }
    let cost: u32 = hash.get(4..6)?.parse().ok()?;
    (4..=31).contains(&cost).then_some(cost)
}

/// The key a verified pair is remembered by.
fn pair_key(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by apache2-utils: `htpasswd -nbB alice wonderland` and
    /// `htpasswd -nbB -C 6 bob builder`.
    const FILE: &str = "\
# made by apache2-utils
alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC

bob:$2y$06$w9FqOKTYALuNqHRCzliIH./fJ7LQXmqd2yGiTtt737QuFT7hmeEzq
";

    #[test]
    fn verifies_htpasswd_bcrypt_entries() {
        let users = Htpasswd::parse(FILE, "users").unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.verify("alice", "wonderland"));
        assert!(users.verify("alice", "wonderland"), "remembered pair");
        assert!(users.verify("bob", "builder"));
        assert!(!users.verify("alice", "builder"));
        assert!(!users.verify("bob", "wonderland"));
        assert!(!users.verify("mallory", "wonderland"));
        assert!(!users.verify("", ""));
        // The stand-in for unknown users costs as much as the dearest entry.
        assert_eq!(bcrypt_cost(&users.dummy), Some(6));
        assert!(users.contains("bob") && !users.contains("mallory"));
    }

    #[test]
    fn refuses_other_hash_kinds_naming_the_user_not_the_hash() {
        // `htpasswd -nbs`, `-nbm`, `-nbd`, `-nbp` output.
        for (line, kind) in [
            ("carol:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", "SHA-1"),
            ("dave:$apr1$j.YlUY.u$emQ8P0U7c2fZgX8hspim2/", "MD5"),
            ("erin:NrShMfscG9YAs", "crypt"),
            ("frank:plain-secret", "plain-text"),
        ] {
            let text = format!("{}\n{line}\n", FILE.lines().nth(1).unwrap());
            let err = Htpasswd::parse(&text, "users").unwrap_err().to_string();
            let (user, hash) = line.split_once(':').unwrap();
            assert!(err.contains("users line 2"), "{err}");
            assert!(err.contains(user), "{err}");
            assert!(err.contains(kind), "{err}");
            assert!(!err.contains(hash), "{err}");
        }
    }

    #[test]
    fn refuses_malformed_lines() {
        for bad in [
            "alice",
            ":$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC",
            "alice:$2y$05$short",
            "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\nalice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC",
        ] {
            assert!(Htpasswd::parse(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_no_hash() {
        let users = Htpasswd::parse(FILE, "users").unwrap();
        let shown = format!("{users:?}");
        assert!(!shown.contains("$2y$"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    }
}
