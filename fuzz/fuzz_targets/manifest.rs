//! Manifests and indexes as pushed or fetched: the first byte picks the
//! content type they arrive with, the rest is the body. An accepted body
//! has well-formed descriptors, a manifest media type of its kind, and its
//! parsed view survives a serialize/parse round trip; a refusal is one of
//! the codes a manifest push may answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_core::media::{self, ManifestKind};
use oci_core::{Descriptor, ErrorCode, Manifest, ParsedManifest, Required};
use ocidist_fuzz::refused_clearly;

/// The content types a body may arrive with (`None`: read from the body).
const TYPES: &[Option<&str>] = &[
    None,
    Some(media::OCI_MANIFEST),
    Some(media::OCI_INDEX),
    Some(media::DOCKER_MANIFEST),
    Some(media::DOCKER_MANIFEST_LIST),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some("Application/Vnd.OCI.Image.Index.v1+JSON"),
    Some("application/json"),
    Some(""),
];

/// What a push of a bad manifest may answer.
const REFUSALS: &[ErrorCode] = &[
    ErrorCode::ManifestInvalid,
    ErrorCode::DigestInvalid,
    ErrorCode::SizeInvalid,
    ErrorCode::Unsupported,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = TYPES[pick as usize % TYPES.len()];
    let shown = String::from_utf8_lossy(body);
    let parsed = match ParsedManifest::parse(content_type, body) {
        Ok(parsed) => parsed,
        Err(e) => {
            refused_clearly("manifest", &shown, &e, REFUSALS);
            if content_type.is_none() {
                assert!(Manifest::from_json(body.to_vec()).is_err(), "{shown:?}");
            }
            return;
        }
    };
    let well_formed = |d: &Descriptor| {
        assert_eq!(d.digest.hex().len(), d.digest.algorithm().hex_len());
        assert!(d.validate().is_ok(), "{shown:?}: accepted {d:?}");
    };
    parsed.blobs().into_iter().for_each(well_formed);
    parsed.children().iter().for_each(well_formed);
    parsed.subject().into_iter().for_each(well_formed);
    assert_eq!(
        media::manifest_kind(parsed.media_type()),
        Some(parsed.kind()),
        "{shown:?}: accepted as {} which is no {:?} type",
        parsed.media_type(),
        parsed.kind()
    );
    // The type it is stored under, as the server picks it: the content
    // type's essence, else the body's own (or its kind's OCI type).
    let media_type = match content_type.map(media::essence) {
        Some(ct) => {
            assert_eq!(media::manifest_kind(&ct), Some(parsed.kind()), "{shown:?}");
            ct
        }
        None => parsed.media_type().to_owned(),
    };
    match parsed.kind() {
        ManifestKind::Image => assert!(parsed.children().is_empty()),
        ManifestKind::Index => assert!(parsed.blobs().is_empty()),
    }
    for required in parsed.required() {
        let d = match required {
            Required::Blob(d) => d,
            Required::Manifest(d) => d,
        };
        assert!(required.missing().is(ErrorCode::ManifestBlobUnknown));
        well_formed(d);
    }

    // As stored: the raw bytes under their media type verify and parse
    // to the same view, whatever the content type's case and parameters.
    let stored = Manifest::new(media_type, body.to_vec());
    assert_eq!(stored.verify().ok().as_ref(), Some(&parsed), "{shown:?}");
    if content_type.is_none() {
        let m = Manifest::from_json(body.to_vec()).expect("parsed once, parses again");
        assert_eq!(m.media_type(), parsed.media_type());
        assert_eq!(m.descriptor, stored.descriptor);
    }
    let referrer = parsed.referrer_descriptor(&stored.descriptor);
    assert_eq!(referrer.digest, stored.descriptor.digest);
    assert_eq!(referrer.size, body.len() as u64);

    // The parsed view keeps every field: serialized and parsed again it is
    // the same manifest.
    let json = match &parsed {
        ParsedManifest::Image(m) => serde_json::to_vec(m),
        ParsedManifest::Index(m) => serde_json::to_vec(m),
    }
    .expect("a parsed manifest serializes");
    let again = ParsedManifest::parse(Some(parsed.media_type()), &json).unwrap_or_else(|e| {
        panic!(
            "{shown:?} re-serialized as {:?} does not parse: {e}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, parsed, "{shown:?}");
});
