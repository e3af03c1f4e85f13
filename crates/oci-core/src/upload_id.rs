//! What an upload id may hold: the contract every store, client and wrapper
//! that mints or forwards ids keeps.
//!
//! A server sends an upload id in a session `Location` path. Clients
//! normalise such URLs before following them (Go's resty percent-decodes the
//! path, so `%2F` becomes `/`), so an id survives every client only if it
//! needs no escaping: non-empty and made of the URL's *unreserved*
//! characters, `A-Z a-z 0-9 - . _ ~` (RFC 3986). State an id must carry
//! (a remote session URL, two inner ids) is encoded into that alphabet,
//! e.g. as base64url, or kept where the id was minted.
//!
//! ```
//! use oci_core::upload_id;
//!
//! assert!(upload_id::is_valid("3f2a9c-01_x.y~z"));
//! assert!(!upload_id::is_valid("http%3A%2F%2Fhost%2Fv2"));
//! assert!(!upload_id::is_valid(""));
//! ```

/// Whether `id` is non-empty and holds only unreserved characters.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(is_unreserved)
}

/// Whether `b` is an unreserved URL character (`A-Z a-z 0-9 - . _ ~`).
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}
