//! Reading what `pull` writes (and docker, skopeo, umoci write): a tar
//! file indexed once by entry name, or a directory, with small files read
//! whole and blobs streamed in bounded chunks.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::{BlobStream, Digest, Error, ErrorCode, Result};

use super::tar::BLOCK;

/// How much of a blob one read hands over.
const READ_CHUNK: usize = 1 << 20;

/// The largest entry read whole (manifests, configs, index files).
pub const MAX_SMALL: u64 = 32 << 20;

/// Local content: a tar archive or a directory tree.
#[derive(Clone)]
pub enum Local {
    /// A directory (an OCI image layout).
    Dir(PathBuf),
    /// A tar file and where each regular file's bytes lie in it.
    Tar {
        /// The archive's path (for messages).
        path: PathBuf,
        /// The open file.
        file: Arc<File>,
        /// Entry name → (data offset, size).
        entries: Arc<HashMap<String, (u64, u64)>>,
    },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("{}: {e}", path.display()))
}

impl Local {
    /// Opens a directory as is, or indexes a tar file's entries.
    pub fn open(path: &Path) -> Result<Local> {
        let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
        if meta.is_dir() {
            return Ok(Local::Dir(path.to_path_buf()));
        }
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let entries = index(&file, meta.len()).map_err(|e| io_err(path, e))?;
        Ok(Local::Tar {
            path: path.to_path_buf(),
            file: Arc::new(file),
            entries: Arc::new(entries),
        })
    }

    fn describe(&self) -> &Path {
        match self {
            Local::Dir(p) | Local::Tar { path: p, .. } => p,
        }
    }

    /// The size of an entry, if it exists.
    pub fn size(&self, name: &str) -> Option<u64> {
        match self {
            Local::Dir(root) => std::fs::metadata(entry_path(root, name).ok()?)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Local::Tar { entries, .. } => entries.get(clean(name)).map(|e| e.1),
        }
    }

    /// Reads a small entry whole; `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Bytes>> {
        if let Local::Dir(root) = self {
            entry_path(root, name)?;
        }
        let Some(size) = self.size(name) else {
            return Ok(None);
        };
        if size > MAX_SMALL {
            return Err(Error::internal(format!(
                "{} in {} is {size} bytes, more than expected",
                name,
                self.describe().display()
            )));
        }
        match self {
            Local::Dir(root) => {
                let p = entry_path(root, name)?;
                std::fs::read(&p)
                    .map(|b| Some(Bytes::from(b)))
                    .map_err(|e| io_err(&p, e))
            }
            Local::Tar {
                path,
                file,
                entries,
                ..
            } => {
                let Some(&(offset, size)) = entries.get(clean(name)) else {
                    return Ok(None);
                };
                let mut buf = vec![0u8; size as usize];
                file.read_exact_at(&mut buf, offset)
                    .map_err(|e| io_err(path, e))?;
                Ok(Some(Bytes::from(buf)))
            }
        }
    }

    /// The first bytes of an entry (at most 8), to recognise its format.
    pub fn read_head(&self, name: &str) -> Result<Vec<u8>> {
        let size = self.size(name).unwrap_or(0).min(8) as usize;
        let mut buf = vec![0u8; size];
        match self {
            Local::Dir(root) => {
                let p = entry_path(root, name)?;
                let file = File::open(&p).map_err(|e| io_err(&p, e))?;
                file.read_exact_at(&mut buf, 0).map_err(|e| io_err(&p, e))?;
            }
            Local::Tar {
                path,
                file,
                entries,
                ..
            } => {
                if let Some(&(offset, _)) = entries.get(clean(name)) {
                    file.read_exact_at(&mut buf, offset)
                        .map_err(|e| io_err(path, e))?;
                }
            }
        }
        Ok(buf)
    }

    /// Streams an entry in chunks read off the async threads.
    pub fn stream(&self, name: &str) -> Result<BlobStream> {
        let (file, start, size, path) = match self {
            Local::Dir(root) => {
                let p = entry_path(root, name)?;
                let file = File::open(&p).map_err(|e| io_err(&p, e))?;
                let size = file.metadata().map_err(|e| io_err(&p, e))?.len();
                (Arc::new(file), 0, size, p)
            }
            Local::Tar {
                path,
                file,
                entries,
                ..
            } => {
                let &(offset, size) = entries.get(clean(name)).ok_or_else(|| {
                    Error::internal(format!("{}: no entry {name}", path.display()))
                })?;
                (Arc::clone(file), offset, size, path.clone())
            }
        };
        let end = start + size;
        Ok(futures::stream::unfold(Some(start), move |at| {
            let file = Arc::clone(&file);
            let path = path.clone();
            async move {
                let at = at?;
                if at >= end {
                    return None;
                }
                let len = ((end - at) as usize).min(READ_CHUNK);
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len];
                    file.read_exact_at(&mut buf, at).map(|()| Bytes::from(buf))
                })
                .await;
                match read {
                    Ok(Ok(b)) => Some((Ok(b), Some(at + len as u64))),
                    Ok(Err(e)) => Some((Err(io_err(&path, e)), None)),
                    Err(e) => Some((Err(Error::internal(format!("read task: {e}"))), None)),
                }
            }
        })
        .boxed())
    }

    /// The sha256 digest of an entry, computed by reading it.
    pub async fn digest(&self, name: &str) -> Result<Digest> {
        let mut stream = self.stream(name)?;
        let mut hasher = oci_core::digest::Algorithm::Sha256.hasher();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }
}

/// An entry name as a path under the root: names come from the archive's
/// own `manifest.json` or `index.json`, so one that is absolute or climbs
/// with `..` (which would read a file outside the directory) is refused.
fn entry_path(root: &Path, name: &str) -> Result<PathBuf> {
    let relative = Path::new(name);
    let climbs = relative.components().any(|c| {
        matches!(
            c,
            std::path::Component::ParentDir
                | std::path::Component::RootDir
                | std::path::Component::Prefix(_)
        )
    });
    if climbs || name.is_empty() {
        return Err(Error::new(
            ErrorCode::ManifestInvalid,
            format!("the archive names {name:?}, a path outside it; refusing to read it"),
        ));
    }
    Ok(root.join(relative))
}

/// An entry name without a leading `./` or `/`.
fn clean(name: &str) -> &str {
    name.trim_start_matches("./").trim_start_matches('/')
}

/// Indexes a tar file: every regular file's name, data offset and size
/// (ustar names with prefix, PAX `path` records, GNU long names).
fn index(file: &File, len: u64) -> std::io::Result<HashMap<String, (u64, u64)>> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let mut entries = HashMap::new();
    let mut at = 0u64;
    let mut long_name: Option<String> = None;
    let mut header = [0u8; BLOCK as usize];
    while at + BLOCK <= len {
        file.read_exact_at(&mut header, at)?;
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = parse_size(&header[124..136]).ok_or_else(|| bad("not a tar file"))?;
        // A size past the end of the file (or past u64, from a base-256
        // field) is refused before any arithmetic can wrap.
        let data = at + BLOCK;
        let end = data
            .checked_add(size)
            .filter(|&end| end <= len)
            .ok_or_else(|| bad("truncated tar file"))?;
        let next = end.div_ceil(BLOCK) * BLOCK;
        let typeflag = header[156];
        match typeflag {
            b'x' | b'L' => {
                if size > MAX_SMALL {
                    return Err(bad("oversized tar extended header"));
                }
                let mut buf = vec![0u8; size as usize];
                file.read_exact_at(&mut buf, data)?;
                long_name = if typeflag == b'L' {
                    Some(
                        String::from_utf8_lossy(&buf)
                            .trim_end_matches('\0')
                            .to_owned(),
                    )
                } else {
                    pax_path(&buf).or(long_name)
                };
            }
            b'0' | 0 | b'7' => {
                let name = long_name.take().unwrap_or_else(|| ustar_name(&header));
                entries.insert(clean(&name).to_owned(), (data, size));
            }
            _ => long_name = None,
        }
        at = next;
    }
    Ok(entries)
}

fn field(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end]).unwrap_or("")
}

fn ustar_name(h: &[u8]) -> String {
    let name = field(&h[..100]);
    let prefix = if &h[257..262] == b"ustar" {
        field(&h[345..500])
    } else {
        ""
    };
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn parse_size(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        return Some(f[4..].iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)));
    }
    let s = field(f).trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The `path` of a PAX extended header's records.
fn pax_path(buf: &[u8]) -> Option<String> {
    let mut rest = buf;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return None;
        }
        let record = std::str::from_utf8(&rest[space + 1..len]).ok()?;
        if let Some(path) = record.strip_prefix("path=") {
            return Some(path.trim_end_matches('\n').to_owned());
        }
        rest = &rest[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::tar::{Plan, Source};

    #[tokio::test]
    async fn reads_back_what_the_writer_plans() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = Plan::new();
        let long = format!("blobs/sha256/{}", "a".repeat(120));
        plan.push("dir/", Source::Directory);
        plan.push("dir/small", Source::Inline(Bytes::from_static(b"hello")));
        plan.push(long.clone(), Source::Inline(Bytes::from(vec![7u8; 3000])));
        let mut out = vec![0u8; plan.total_size() as usize];
        for e in plan.entries() {
            let h = crate::archive::tar::header(
                &e.path,
                e.size(),
                matches!(e.source, Source::Directory),
            )
            .unwrap();
            let at = e.header_offset as usize;
            out[at..at + h.len()].copy_from_slice(&h);
            if let Source::Inline(b) = &e.source {
                let d = e.data_offset() as usize;
                out[d..d + b.len()].copy_from_slice(b);
            }
        }
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &out).unwrap();
        let local = Local::open(&path).unwrap();
        assert_eq!(local.read("dir/small").unwrap().unwrap(), &b"hello"[..]);
        assert_eq!(local.read("./dir/small").unwrap().unwrap(), &b"hello"[..]);
        assert_eq!(local.size(&long), Some(3000));
        assert!(local.read("absent").unwrap().is_none());
        assert_eq!(
            local.digest(&long).await.unwrap(),
            Digest::sha256(&[7u8; 3000])
        );
    }

    /// A tar of one header (and `data`), with its size field `size`.
    fn one_entry(typeflag: u8, size: &[u8; 12], data: &[u8]) -> tempfile::NamedTempFile {
        let mut out = crate::archive::tar::header("x", 0, false).unwrap();
        out[124..136].copy_from_slice(size);
        out[156] = typeflag;
        // The checksum is not checked by the reader.
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &out).unwrap();
        file
    }

    /// A base-256 size near u64::MAX once overflowed the offset
    /// arithmetic (a panic in debug, an endless loop over the same header
    /// in release); found by fuzz/docker_archive.
    #[test]
    fn names_outside_a_directory_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret"), b"not for the registry").unwrap();
        let root = outer.path().join("image");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("manifest.json"), b"[]").unwrap();
        let local = Local::open(&root).unwrap();
        let secret = outer.path().join("secret");
        for name in ["../secret", "a/../../secret", secret.to_str().unwrap()] {
            let err = local.read(name).unwrap_err();
            assert_eq!(err.code(), ErrorCode::ManifestInvalid, "{name}: {err}");
            assert!(local.stream(name).is_err(), "{name}");
            assert!(local.read_head(name).is_err(), "{name}");
            assert_eq!(local.size(name), None, "{name}");
        }
        assert!(local.read("manifest.json").unwrap().is_some());
    }

    #[test]
    fn a_huge_base256_size_is_a_truncated_tar() {
        let mut size = [0xffu8; 12];
        size[0] = 0x80;
        let tar = one_entry(b'0', &size, b"");
        let err = Local::open(tar.path()).err().unwrap();
        assert!(err.message().contains("truncated tar file"), "{err}");
    }

    /// A PAX record whose length ends inside its own length field is
    /// ignored, not sliced backwards.
    #[test]
    fn a_pax_record_shorter_than_its_length_field_is_ignored() {
        let record = b"1 x";
        let mut size = [0u8; 12];
        size[..11].copy_from_slice(format!("{:011o}", record.len()).as_bytes());
        let tar = one_entry(b'x', &size, record);
        assert!(Local::open(tar.path()).is_ok());
    }
}
