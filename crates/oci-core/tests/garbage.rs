//! Mutated input for every parser of untrusted text: references, names,
//! tags, digests, platforms, manifests, and the wire headers (Range,
//! Content-Range, upload Range, Link, query strings). Each mutant must be
//! either accepted or refused with an error naming a spec code, never a
//! panic, and what is accepted must be self-consistent (it prints back to
//! something that parses to the same value).
//!
//! The mutations come from a fixed-seed generator (`testkit::mutate`), so
//! a failure repeats.

#![allow(clippy::unwrap_used)]

use oci_core::testkit::mutate::Mutator;
use oci_core::{Digest, ErrorCode, ParsedManifest, Platform, Reference, RepoName, Tag, wire};

/// Mutants made from each seed.
const ROUNDS: usize = 20_000;

/// Bytes that matter to the grammars under test.
const INTERESTING: &[u8] = b"/:@.-_+=,;\"'{}[] \t\r\n0123456789abcdefABCDEF*?%\\\x00\x7f\xc3\xff";

/// Runs `check` over every seed and `ROUNDS` mutants of each.
fn each_mutant(seeds: &[&str], check: impl FnMut(&str)) {
    Mutator::new(0x0c1d_157e_5eed_0001, INTERESTING).each_str(seeds, ROUNDS, check);
}

/// A refusal must carry a real spec code, not the catch-all.
fn refused_clearly(what: &str, input: &str, err: &oci_core::Error) {
    assert_ne!(
        err.code(),
        ErrorCode::Unknown,
        "{what} {input:?} refused without a spec code: {err}"
    );
    assert!(!err.message().is_empty(), "{what} {input:?}: empty message");
}

type ReferenceParser = fn(&str) -> oci_core::Result<Reference>;

#[test]
fn references() {
    let seeds = [
        "ubuntu",
        "library/ubuntu:22.04",
        "docker.io/library/ubuntu@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "localhost:5000/a/b-c_d.e:tag-1",
        "[::1]:5000/x/y:z",
        "registry.example.com:443/ns/repo:v1.2@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ];
    each_mutant(&seeds, |s| {
        let parsers: [(&str, ReferenceParser); 2] = [
            ("reference", |s| s.parse()),
            ("bare reference", Reference::parse_bare),
        ];
        for (how, parse) in parsers {
            match parse(s) {
                Ok(r) => {
                    let again = parse(&r.to_string()).unwrap_or_else(|e| {
                        panic!("{how} {s:?} printed as {r} which does not parse: {e}")
                    });
                    assert_eq!(again.to_string(), r.to_string(), "{how} {s:?}");
                }
                Err(e) => refused_clearly(how, s, &e),
            }
        }
    });
}

#[test]
fn names_tags_and_digests() {
    let seeds = [
        "a/b/c",
        "team-1/app_2.x",
        "v1.0.0-rc.1",
        "latest",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    ];
    each_mutant(&seeds, |s| {
        match s.parse::<RepoName>() {
            Ok(n) => assert_eq!(n.to_string(), s, "a name is kept as given"),
            Err(e) => refused_clearly("name", s, &e),
        }
        match s.parse::<Tag>() {
            Ok(t) => {
                assert_eq!(t.to_string(), s);
                assert!(t.as_str().len() <= 128, "tag {s:?} is too long to be valid");
            }
            Err(e) => refused_clearly("tag", s, &e),
        }
        match s.parse::<Digest>() {
            Ok(d) => {
                assert_eq!(d.to_string(), s);
                assert_eq!(d.hex().len(), d.algorithm().hex_len(), "{s:?}");
            }
            Err(e) => refused_clearly("digest", s, &e),
        }
    });
}

#[test]
fn platforms() {
    let seeds = [
        "linux/amd64",
        "linux/arm64/v8",
        "windows/amd64",
        "linux/arm/v7",
    ];
    each_mutant(&seeds, |s| {
        // A platform is the user's own flag: any answer but a panic.
        let _ = s.parse::<Platform>();
    });
}

#[test]
fn manifests() {
    let config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let layer = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let image = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":0}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{layer}","size":0}},"annotations":{{"a":"b"}}}}"#
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{layer}","size":7,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let docker = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":2}},"layers":[]}}"#
    );
    let types = [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
    ];
    let mut turn = 0;
    each_mutant(&[&image, &index, &docker], |s| {
        turn += 1;
        let content_type = types[turn % types.len()];
        match ParsedManifest::parse(content_type, s.as_bytes()) {
            Ok(parsed) => {
                // Whatever is accepted has well-formed descriptors.
                for d in parsed.blobs().into_iter().chain(parsed.children()) {
                    assert_eq!(d.digest.hex().len(), d.digest.algorithm().hex_len());
                }
            }
            Err(e) => {
                refused_clearly("manifest", s, &e);
                assert!(
                    matches!(
                        e.code(),
                        ErrorCode::ManifestInvalid
                            | ErrorCode::DigestInvalid
                            | ErrorCode::SizeInvalid
                            | ErrorCode::Unsupported
                    ),
                    "manifest {s:?}: {e}"
                );
            }
        }
    });
}

#[test]
fn wire_headers() {
    each_mutant(
        &["bytes=0-99", "bytes=100-", "bytes=-5", "bytes=0-0"],
        |s| {
            if let Err(e) = wire::parse_range(s) {
                refused_clearly("Range", s, &e);
            }
        },
    );
    each_mutant(
        &["0-99", "100-199", "0-0"],
        |s| match wire::parse_upload_content_range(s) {
            Ok((start, end)) => assert!(start <= end, "Content-Range {s:?} gave {start}-{end}"),
            Err(e) => refused_clearly("Content-Range", s, &e),
        },
    );
    each_mutant(&["0-99", "0-0", "bytes=0-1023"], |s| {
        if let Err(e) = wire::parse_upload_range(s) {
            refused_clearly("upload Range", s, &e);
        }
    });
    each_mutant(&["bytes 0-99/100", "bytes 5-9/*", "bytes */100"], |s| {
        match wire::parse_content_range(s) {
            Ok((start, end, total)) => {
                assert!(start <= end, "{s:?}");
                if let Some(total) = total {
                    assert!(end < total, "{s:?} ends past its total");
                }
            }
            Err(e) => refused_clearly("Content-Range", s, &e),
        }
    });
    each_mutant(
        &[
            r#"</v2/a/tags/list?n=2&last=b>; rel="next""#,
            r#"<https://r.example/v2/_catalog?last=x&n=10>; rel=next, <x>; rel="prev""#,
        ],
        |s| {
            let _ = wire::parse_link_next(s);
        },
    );
    each_mutant(
        &["n=10&last=a%2Fb", "digest=sha256%3Aab&mount=x&from=y"],
        |s| {
            if let Ok(pairs) = wire::parse_query(s) {
                for (_, value) in pairs {
                    let encoded = wire::encode_query_value(&value);
                    assert_eq!(wire::decode_query_value(&encoded).unwrap(), value);
                }
            }
            // Which spec code fits depends on what the value is for (the
            // server answers 400), so only the message is checked here.
            if let Err(e) = wire::decode_query_value(s) {
                assert!(e.message().contains("percent-encoding"), "{s:?}: {e}");
            }
        },
    );
}
