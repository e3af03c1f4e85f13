//! `ocidist push` reading a `docker save` tarball (seeded with tarballs
//! `ocidist pull` writes, with and without the recorded manifest): any
//! bytes are refused or accepted as an image whose blobs are in the
//! tarball with the sizes the pushed manifest declares.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocidist_fuzz::archive::{check_pushable, open_tar};

fuzz_target!(|data: &[u8]| {
    let (_, opened) = open_tar(data);
    match opened {
        Ok(image) => check_pushable(&image),
        Err(e) => assert!(!e.message().is_empty(), "refused without a reason: {e}"),
    }
});
