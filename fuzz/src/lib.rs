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

/// The archive readers behind `ocidist push` (`ocidist::pusher::open`):
/// the input is written to a scratch file, opened as a docker tarball or
/// an OCI layout, and an image it accepts must be pushable as described.
pub mod archive {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use futures::StreamExt;
    use oci_core::{Reference, Result};
    use ocidist::pusher::{self, LocalImage};

    /// The scratch directory, one per fuzzing process.
    pub fn scratch() -> &'static Path {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("ocidist-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("scratch directory");
            dir
        })
    }

    fn runtime() -> &'static tokio::runtime::Runtime {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
    }

    /// Runs a future on the fuzzing process's runtime.
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        runtime().block_on(f)
    }

    /// The tag a push names (picks one of several images).
    pub fn target() -> Reference {
        "fuzz.example/app:v1".parse().expect("a valid reference")
    }

    /// Writes `data` as the scratch tar file and opens it as `push` does.
    pub fn open_tar(data: &[u8]) -> (PathBuf, Result<LocalImage>) {
        let path = scratch().join("input.tar");
        std::fs::write(&path, data).expect("scratch file");
        let opened = block_on(pusher::open(&path, &target()));
        (path, opened)
    }

    /// An accepted image is pushable as described: its top manifest
    /// parses, and every blob's entry holds exactly the size its
    /// descriptor declares (digests are checked by the push itself).
    pub fn check_pushable(image: &LocalImage) {
        image.top.parse().expect("the top manifest parses");
        for child in &image.children {
            child.parse().expect("a child manifest parses");
        }
        for (d, name) in &image.blobs {
            assert_eq!(
                image.local.size(name),
                Some(d.size),
                "blob {} from entry {name:?}",
                d.digest
            );
            let streamed = block_on(async {
                let mut stream = image.local.stream(name).expect("the entry streams");
                let mut n = 0u64;
                while let Some(chunk) = stream.next().await {
                    n += chunk.expect("the entry reads").len() as u64;
                }
                n
            });
            assert_eq!(streamed, d.size, "entry {name:?} streamed");
        }
    }
}
