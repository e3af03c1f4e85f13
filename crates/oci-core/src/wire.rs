//! Wire details both the server and a client need: header names and the
//! Range, Content-Range and Link header formats.

use crate::error::{Error, ErrorCode, Result};
use crate::registry::RangeRequest;

/// The digest of the content a response carries.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
/// The API version header of `/v2/`.
pub const DOCKER_DISTRIBUTION_API_VERSION: &str = "docker-distribution-api-version";
/// The upload session id.
pub const DOCKER_UPLOAD_UUID: &str = "docker-upload-uuid";
/// The subject digest a manifest push recorded.
pub const OCI_SUBJECT: &str = "oci-subject";
/// The filters a referrers response applied.
pub const OCI_FILTERS_APPLIED: &str = "oci-filters-applied";
/// The minimum chunk length a registry accepts.
pub const OCI_CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";

/// Parses a `Range` request header: `Ok(None)` for one the server must or
/// may ignore and answer with the whole representation (RFC 9110 §14.2: a
/// unit other than `bytes`, or several ranges, which this workspace does
/// not serve as multipart); `RANGE_INVALID` for a malformed `bytes` range.
pub fn parse_range(value: &str) -> Result<Option<RangeRequest>> {
    let bad = || {
        Error::new(
            ErrorCode::RangeInvalid,
            format!("invalid Range header {value:?}"),
        )
    };
    let (unit, spec) = value.trim().split_once('=').ok_or_else(bad)?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().map(Some).map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (start, end) = (num(a)?, num(b)?);
    if start.is_none() && end.is_none() {
        return Err(bad());
    }
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(bad());
    }
    Ok(Some(RangeRequest { start, end }))
}

/// Parses an upload chunk's `Content-Range`: `start-end` (the distribution
/// form) or `bytes start-end/total`. Returns inclusive `(start, end)`.
pub fn parse_upload_content_range(value: &str) -> Result<(u64, u64)> {
    let bad = || {
        Error::new(
            ErrorCode::RangeInvalid,
            format!("invalid Content-Range {value:?}"),
        )
    };
    let v = value.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next().unwrap_or("");
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return Err(bad());
    }
    let start: u64 = a.parse().map_err(|_| bad())?;
    let end: u64 = b.parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok((start, end))
}

/// The `Range` header of an upload status: `0-(size-1)`; `0-0` for nothing
/// received yet, as distribution writes it.
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// Reads an upload status `Range` header back into the bytes received.
pub fn parse_upload_range(value: &str) -> Result<u64> {
    let (start, end) = parse_upload_content_range(value)?;
    if start != 0 {
        return Err(Error::new(
            ErrorCode::RangeInvalid,
            format!("upload range {value:?} does not start at 0"),
        ));
    }
    Ok(end + 1)
}

/// Parses a `Content-Range: bytes start-end/total` response header; a
/// range that ends past the total is refused.
pub fn parse_content_range(value: &str) -> Result<(u64, u64, Option<u64>)> {
    let bad = || {
        Error::new(
            ErrorCode::RangeInvalid,
            format!("invalid Content-Range {value:?}"),
        )
    };
    let v = value.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = v.split_once('/').ok_or_else(bad)?;
    let (start, end) = parse_upload_content_range(range)?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().map_err(|_| bad())?)
    };
    if total.is_some_and(|total| end >= total) {
        return Err(bad());
    }
    Ok((start, end, total))
}

/// The `<url>` of a `Link: <url>; rel="next"` header, if it has one.
pub fn parse_link_next(value: &str) -> Option<String> {
    for link in value.split(',') {
        let link = link.trim();
        let Some(rest) = link.strip_prefix('<') else {
            continue;
        };
        let Some((url, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            let p = p.replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if is_next {
            return Some(url.to_owned());
        }
    }
    None
}

/// A `Link` header pointing at the next page.
pub fn link_next(url: &str) -> String {
    format!("<{url}>; rel=\"next\"")
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded query component (`+` is a space).
pub fn decode_query_value(value: &str) -> Result<String> {
    let bad = || {
        Error::new(
            ErrorCode::Unknown,
            format!("invalid percent-encoding in {value:?}"),
        )
    };
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
                let s = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(s, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Splits a query string into decoded `(key, value)` pairs.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode_query_value(k)?, decode_query_value(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9").unwrap(),
            Some(RangeRequest::bounded(0, 9))
        );
        assert_eq!(
            parse_range("Bytes=5-").unwrap(),
            Some(RangeRequest::from(5))
        );
        assert_eq!(
            parse_range("bytes=-5").unwrap(),
            Some(RangeRequest {
                start: None,
                end: Some(5)
            })
        );
        // Another unit, or several ranges: ignored, the whole blob is served.
        for ignored in ["items=0-1", "bytes=0-1,3-4", "pages=1-2"] {
            assert_eq!(parse_range(ignored).unwrap(), None, "{ignored}");
        }
        for bad in [
            "0-9",
            "bytes=",
            "bytes=-",
            "bytes=9-0",
            "bytes=a-b",
            "bytes=+1-2",
        ] {
            assert!(
                parse_range(bad).unwrap_err().is(ErrorCode::RangeInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_upload_content_range("0-99").unwrap(), (0, 99));
        assert_eq!(
            parse_upload_content_range("bytes 100-199/*").unwrap(),
            (100, 199)
        );
        assert!(parse_upload_content_range("5-1").is_err());
        assert!(parse_upload_content_range("-1").is_err());
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(10), "0-9");
        assert_eq!(parse_upload_range("0-9").unwrap(), 10);
        assert_eq!(
            parse_content_range("bytes 2-5/10").unwrap(),
            (2, 5, Some(10))
        );
    }

    #[test]
    fn links_and_queries() {
        let h = link_next("/v2/a/tags/list?n=2&last=b");
        assert_eq!(parse_link_next(&h).unwrap(), "/v2/a/tags/list?n=2&last=b");
        assert_eq!(
            parse_link_next(r#"<x>; rel="prev", <y>; rel="next""#).unwrap(),
            "y"
        );
        assert!(parse_link_next("garbage").is_none());
        let enc = encode_query_value("application/vnd.a+json");
        assert_eq!(enc, "application%2Fvnd.a%2Bjson");
        assert_eq!(decode_query_value(&enc).unwrap(), "application/vnd.a+json");
        assert_eq!(
            parse_query("n=1&last=a%2Fb").unwrap(),
            vec![("n".into(), "1".into()), ("last".into(), "a/b".into())]
        );
        assert!(decode_query_value("%zz").is_err());
    }
}
