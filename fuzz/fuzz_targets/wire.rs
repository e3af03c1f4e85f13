//! Wire headers both sides read from the other: Range, an upload's
//! Content-Range and Range, a response's Content-Range, Link, query
//! strings and error bodies. The first byte picks the parser, the rest is
//! the header value. Accepted values are self-consistent and print back to
//! themselves; refusals are `RANGE_INVALID`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_core::{ErrorBody, ErrorCode, wire};
use ocidist_fuzz::{refused_clearly, text};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let s = text(rest);
    let s = s.as_ref();
    let range = &[ErrorCode::RangeInvalid];
    match pick % 7 {
        0 => match wire::parse_range(s) {
            // Another unit, or several ranges: ignored, the whole blob served.
            Ok(None) => {
                let (unit, spec) = s.trim().split_once('=').unwrap_or(("", ""));
                assert!(
                    !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(','),
                    "a single bytes range {s:?} was ignored"
                );
            }
            Ok(Some(r)) => {
                assert!(r.start.is_some() || r.end.is_some(), "{s:?}");
                if let (Some(start), Some(end)) = (r.start, r.end) {
                    assert!(start <= end, "Range {s:?} gave {start}-{end}");
                }
                let printed = format!(
                    "bytes={}-{}",
                    r.start.map(|n| n.to_string()).unwrap_or_default(),
                    r.end.map(|n| n.to_string()).unwrap_or_default()
                );
                assert_eq!(wire::parse_range(&printed).ok(), Some(Some(r)), "{s:?}");
            }
            Err(e) => refused_clearly("Range", s, &e, range),
        },
        1 => match wire::parse_upload_content_range(s) {
            Ok((start, end)) => {
                assert!(start <= end, "Content-Range {s:?} gave {start}-{end}");
                let printed = format!("{start}-{end}");
                assert_eq!(
                    wire::parse_upload_content_range(&printed).ok(),
                    Some((start, end))
                );
            }
            Err(e) => refused_clearly("upload Content-Range", s, &e, range),
        },
        2 => match wire::parse_upload_range(s) {
            Ok(size) => {
                assert!(size >= 1, "{s:?}");
                assert_eq!(
                    wire::parse_upload_range(&wire::upload_range(size)).ok(),
                    Some(size)
                );
            }
            Err(e) => refused_clearly("upload Range", s, &e, range),
        },
        3 => match wire::parse_content_range(s) {
            Ok((start, end, total)) => {
                assert!(start <= end, "{s:?}");
                if let Some(total) = total {
                    assert!(end < total, "{s:?} ends past its total");
                }
                let total_text = total.map_or("*".to_owned(), |t| t.to_string());
                let printed = format!("bytes {start}-{end}/{total_text}");
                assert_eq!(
                    wire::parse_content_range(&printed).ok(),
                    Some((start, end, total))
                );
            }
            Err(e) => refused_clearly("Content-Range", s, &e, range),
        },
        4 => {
            if let Some(url) = wire::parse_link_next(s) {
                assert!(!url.contains('>'), "{s:?} gave {url:?}");
                if !url.contains(',') {
                    assert_eq!(wire::parse_link_next(&wire::link_next(&url)), Some(url));
                }
            }
        }
        5 => {
            if let Ok(pairs) = wire::parse_query(s) {
                for (_, value) in pairs {
                    let encoded = wire::encode_query_value(&value);
                    assert_eq!(wire::decode_query_value(&encoded).ok(), Some(value));
                }
            }
            // Which spec code fits depends on what the value is for (the
            // server answers 400), so only the message is checked here.
            if let Err(e) = wire::decode_query_value(s) {
                assert!(e.message().contains("percent-encoding"), "{s:?}: {e}");
            }
        }
        _ => {
            // An error body from a server: any bytes make an error that
            // keeps the status it came with.
            let Some((status, body)) = rest.split_first_chunk::<2>() else {
                return;
            };
            let status = 100 + u16::from_be_bytes(*status) % 500;
            let err = ErrorBody::parse_response(status, body, ErrorCode::BlobUnknown);
            assert_eq!(err.status(), status, "{:?}", text(body));
        }
    }
});
