//! References, repository names, tags and manifest references: accepted
//! values print back to themselves and parse again to the same value;
//! refusals name the spec code of what was wrong.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_core::{ErrorCode, ManifestRef, Reference, RepoName, Tag};
use ocidist_fuzz::{refused_clearly, text};

type ReferenceParser = fn(&str) -> oci_core::Result<Reference>;

fuzz_target!(|data: &[u8]| {
    let s = text(data);
    let s = s.as_ref();
    let parsers: [(&str, ReferenceParser); 3] = [
        ("reference", |s| s.parse()),
        ("bare reference", Reference::parse_bare),
        ("repository reference", Reference::parse_repository),
    ];
    for (how, parse) in parsers {
        match parse(s) {
            Ok(r) => {
                let printed = r.to_string();
                let again = parse(&printed).unwrap_or_else(|e| {
                    panic!("{how} {s:?} printed as {printed} which does not parse: {e}")
                });
                assert_eq!(again, r, "{how} {s:?} printed as {printed}");
                assert_eq!(again.to_string(), printed, "{how} {s:?}");
                assert!(!r.registry().is_empty(), "{how} {s:?}: no registry");
                assert_eq!(
                    r.repository().as_str().parse::<RepoName>().ok().as_ref(),
                    Some(r.repository()),
                    "{how} {s:?}: its repository is not a valid name"
                );
                if let Some(tag) = r.tag() {
                    assert_eq!(tag.as_str().parse::<Tag>().ok().as_ref(), Some(tag));
                }
            }
            Err(e) => refused_clearly(
                how,
                s,
                &e,
                &[ErrorCode::NameInvalid, ErrorCode::DigestInvalid],
            ),
        }
    }
    match s.parse::<RepoName>() {
        Ok(n) => {
            assert_eq!(n.to_string(), s, "a name is kept as given");
            assert!(n.as_str().len() <= oci_core::reference::MAX_NAME_LEN);
            match n.prefixed(&n) {
                Ok(both) => assert_eq!(both.strip_prefix(&n).as_ref(), Some(&n), "{s:?}"),
                Err(e) => refused_clearly("prefixed name", s, &e, &[ErrorCode::NameInvalid]),
            }
        }
        Err(e) => refused_clearly("name", s, &e, &[ErrorCode::NameInvalid]),
    }
    match s.parse::<Tag>() {
        Ok(t) => {
            assert_eq!(t.to_string(), s);
            assert!(t.as_str().len() <= 128, "tag {s:?} is too long to be valid");
        }
        Err(e) => refused_clearly("tag", s, &e, &[ErrorCode::ManifestInvalid]),
    }
    match s.parse::<ManifestRef>() {
        Ok(m) => {
            assert_eq!(m.to_string(), s);
            assert_eq!(m.to_string().parse::<ManifestRef>().ok(), Some(m));
        }
        Err(e) => refused_clearly(
            "manifest reference",
            s,
            &e,
            &[ErrorCode::ManifestInvalid, ErrorCode::DigestInvalid],
        ),
    }
});
