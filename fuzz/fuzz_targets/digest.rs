//! Digests: an accepted digest prints back to itself with the hex length
//! of its algorithm, and names a valid referrers fallback tag; a refusal is
//! `DIGEST_INVALID`. The input's own digest verifies it, in any chunking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_core::{Algorithm, Digest, ErrorCode, Tag, Verifier};
use ocidist_fuzz::{refused_clearly, text};

fuzz_target!(|data: &[u8]| {
    let s = text(data);
    let s = s.as_ref();
    match s.parse::<Digest>() {
        Ok(d) => {
            assert_eq!(d.to_string(), s);
            assert_eq!(d.hex().len(), d.algorithm().hex_len(), "{s:?}");
            let json = serde_json::to_string(&d).expect("a digest serializes");
            assert_eq!(
                serde_json::from_str::<Digest>(&json).ok().as_ref(),
                Some(&d)
            );
            let tag = Tag::referrers_fallback(&d);
            assert_eq!(tag.as_str().parse::<Tag>().ok(), Some(tag));
        }
        Err(e) => refused_clearly("digest", s, &e, &[ErrorCode::DigestInvalid]),
    }
    // The input's own digest: it parses back, matches, and verifies
    // however the bytes are split; one byte more or less is caught.
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let own = Digest::of(algorithm, data);
        assert_eq!(own.to_string().parse::<Digest>().ok().as_ref(), Some(&own));
        assert!(own.matches(data));
        let mut v = Verifier::new(own.clone(), Some(data.len() as u64));
        v.update(&data[..split])
            .expect("a prefix of the right bytes");
        v.update(&data[split..])
            .expect("the rest of the right bytes");
        v.finish().expect("the right bytes verify");
        let mut short = Verifier::new(own, Some(data.len() as u64 + 1));
        let _ = short.update(data);
        assert!(short.finish().is_err(), "a missing byte went unnoticed");
    }
});
