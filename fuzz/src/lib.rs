//! The invariants the fuzz targets share: the ones the mutation tests
//! (`oci_core::testkit::mutate`, `crates/oci-core/tests/garbage.rs`) check,
//! here driven by libFuzzer's coverage feedback instead of a fixed seed.

use oci_core::{Error, ErrorCode};

/// The input as text, read lossily as a server reads a header it must
/// show in an error.
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// A refusal must carry a real spec code (one of `allowed`, when given),
/// not the catch-all, and say why.
pub fn refused_clearly(what: &str, input: &str, err: &Error, allowed: &[ErrorCode]) {
    assert_ne!(
        err.code(),
        ErrorCode::Unknown,
        "{what} {input:?} refused without a spec code: {err}"
    );
    assert!(
        allowed.is_empty() || allowed.contains(&err.code()),
        "{what} {input:?} refused with {:?}, expected one of {allowed:?}: {err}",
        err.code()
    );
    assert!(!err.message().is_empty(), "{what} {input:?}: empty message");
}
