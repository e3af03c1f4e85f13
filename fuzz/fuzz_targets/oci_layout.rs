//! `ocidist push` reading an OCI layout, as a tar file and as the
//! directory the same entries make (seeded with layouts `ocidist pull`
//! writes): any bytes are refused or accepted as a pushable image, and
//! the directory form gives the same answer as the tar form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocidist::archive::read::Local;
use ocidist::pusher;
use ocidist_fuzz::archive::{block_on, check_pushable, open_tar, scratch, target};

/// Unpacks the tar's regular files into a fresh directory; `None` when
/// some entry has no plain place there (`..`, `//`, a file under a file).
fn unpack(local: &Local) -> Option<std::path::PathBuf> {
    let Local::Tar { entries, .. } = local else {
        return None;
    };
    let dir = scratch().join("layout");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    for name in entries.keys() {
        let parts: Vec<&str> = name.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return None;
        }
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent()?).ok()?;
        std::fs::write(&path, local.read(name).ok()??).ok()?;
    }
    Some(dir)
}

fuzz_target!(|data: &[u8]| {
    let (tar, opened) = open_tar(data);
    match &opened {
        Ok(image) => check_pushable(image),
        Err(e) => assert!(!e.message().is_empty(), "refused without a reason: {e}"),
    }
    let Some(dir) = Local::open(&tar).ok().as_ref().and_then(unpack) else {
        return;
    };
    let from_dir = block_on(pusher::open(&dir, &target()));
    match (&opened, &from_dir) {
        (Ok(a), Ok(b)) => {
            check_pushable(b);
            assert_eq!(a.top.digest(), b.top.digest(), "tar and directory differ");
            assert_eq!(a.blobs.len(), b.blobs.len(), "tar and directory differ");
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "tar: {a}; directory: {b}"),
        (a, b) => panic!(
            "tar and directory disagree: tar {:?}, directory {:?}",
            a.as_ref().map(|i| i.top.digest()).err(),
            b.as_ref().map(|i| i.top.digest()).err()
        ),
    }
});
