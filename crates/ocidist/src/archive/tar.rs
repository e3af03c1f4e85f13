//! A tar layout planned before any byte is written: every entry's size is
//! known up front (descriptors carry sizes), so each entry's offset is too,
//! and blobs can be downloaded in parallel straight to their place in the
//! file.

use bytes::Bytes;
use oci_core::Descriptor;

/// Tar's block size.
pub const BLOCK: u64 = 512;

/// Where an entry's content comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Bytes already in memory (manifests, configs, metadata files).
    Inline(Bytes),
    /// A blob to download; its descriptor gives digest and size.
    Blob(Box<Descriptor>),
    /// A directory entry.
    Directory,
}

/// One planned entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the archive.
    pub path: String,
    /// The content.
    pub source: Source,
    /// Offset of the entry's header in the archive.
    pub header_offset: u64,
}

impl Entry {
    /// The content size.
    pub fn size(&self) -> u64 {
        match &self.source {
            Source::Inline(b) => b.len() as u64,
            Source::Blob(d) => d.size,
            Source::Directory => 0,
        }
    }

    /// Offset of the first content byte.
    pub fn data_offset(&self) -> u64 {
        self.header_offset + header_len(&self.path)
    }
}

/// An ordered set of entries with their offsets.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    entries: Vec<Entry>,
    end: u64,
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Appends an entry; its offset follows the previous one.
    pub fn push(&mut self, path: impl Into<String>, source: Source) {
        let entry = Entry {
            path: path.into(),
            source,
            header_offset: self.end,
        };
        self.end += header_len(&entry.path) + padded(entry.size());
        self.entries.push(entry);
    }

    /// Whether a path is already planned.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.iter().any(|e| e.path == path)
    }

    /// The entries in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The archive's total size, with the two closing zero blocks.
    pub fn total_size(&self) -> u64 {
        self.end + 2 * BLOCK
    }
}

/// The bytes of an entry's headers: one ustar block, preceded by a PAX
/// extended header when the path does not fit ustar's fields.
pub fn header_len(path: &str) -> u64 {
    match split_path(path) {
        Ok(_) => BLOCK,
        Err(_) => 2 * BLOCK + padded(pax_path_record(path).len() as u64),
    }
}

/// A PAX `path` record: `"<len> path=<path>\n"`, where `<len>` counts the
/// whole record including its own digits.
fn pax_path_record(path: &str) -> String {
    let body = format!(" path={path}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// The header blocks of an entry (see [`header_len`]); sizes above 8 GiB
/// use GNU base-256.
pub fn header(path: &str, size: u64, directory: bool) -> std::io::Result<Vec<u8>> {
    if split_path(path).is_ok() {
        return Ok(ustar_block(path, size, directory)?.to_vec());
    }
    let record = pax_path_record(path);
    let mut out = ustar_block_typed("PaxHeader", record.len() as u64, b'x')?.to_vec();
    out.extend_from_slice(record.as_bytes());
    out.resize((BLOCK + padded(record.len() as u64)) as usize, 0);
    // The ustar header keeps a truncated name for readers without PAX.
    let short: String = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .chars()
        .take(100)
        .collect();
    out.extend_from_slice(&ustar_block(&short, size, directory)?);
    Ok(out)
}

/// A whole tar holding one regular file `path` with `body`: a layer for
/// the demo image and for tests.
pub fn one_file(path: &str, body: &[u8]) -> std::io::Result<Bytes> {
    let mut out = header(path, body.len() as u64, false)?;
    let end = out.len() as u64 + padded(body.len() as u64) + 2 * BLOCK;
    out.extend_from_slice(body);
    out.resize(end as usize, 0);
    Ok(out.into())
}

fn ustar_block(path: &str, size: u64, directory: bool) -> std::io::Result<[u8; 512]> {
    ustar_block_typed(path, size, if directory { b'5' } else { b'0' })
}

fn ustar_block_typed(path: &str, size: u64, typeflag: u8) -> std::io::Result<[u8; 512]> {
    let directory = typeflag == b'5';
    let mut h = [0u8; 512];
    let (prefix, name) = split_path(path)?;
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], if directory { 0o755 } else { 0o644 });
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut h[124..136], size);
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    checksum(&mut h);
    Ok(h)
}

/// Fills in a header block's checksum, computed with its own field as spaces.
fn checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(field.as_bytes());
}

/// The header of a symbolic link at `path` (which must fit ustar's
/// fields) pointing at `target` (at most 100 bytes).
pub fn symlink_header(path: &str, target: &str) -> std::io::Result<[u8; 512]> {
    if target.len() > 100 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("link target {target:?} is too long for a tar header"),
        ));
    }
    let mut h = ustar_block_typed(path, 0, b'2')?;
    octal(&mut h[100..108], 0o777);
    h[157..157 + target.len()].copy_from_slice(target.as_bytes());
    checksum(&mut h);
    Ok(h)
}

/// Splits a path into ustar's prefix (155) and name (100) fields.
fn split_path(path: &str) -> std::io::Result<(&str, &str)> {
    let too_long = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("path {path:?} is too long for a tar header"),
        )
    };
    if path.len() <= 100 {
        return Ok(("", path));
    }
    let cut = path[..path.len().min(156)]
        .rfind('/')
        .ok_or_else(too_long)?;
    let (prefix, name) = (&path[..cut], &path[cut + 1..]);
    if name.is_empty() || name.len() > 100 || prefix.len() > 155 {
        return Err(too_long());
    }
    Ok((prefix, name))
}

/// Writes `value` as zero-padded octal with a trailing NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_padded_sizes() {
        let mut p = Plan::new();
        p.push("a", Source::Inline(Bytes::from_static(b"hello")));
        p.push("d/", Source::Directory);
        p.push("b", Source::Inline(Bytes::from(vec![0u8; 512])));
        let e = p.entries();
        assert_eq!(e[0].header_offset, 0);
        assert_eq!(e[1].header_offset, 1024);
        assert_eq!(e[2].header_offset, 1536);
        assert_eq!(p.total_size(), 1536 + 512 + 512 + 1024);
        let long = "d/".repeat(60);
        p.push(long.clone(), Source::Inline(Bytes::from_static(b"x")));
        assert_eq!(p.entries()[3].data_offset(), 2560 + 1536);
    }

    #[test]
    fn header_checksum_and_fields() {
        let h = header("dir/file.txt", 1234, false).unwrap();
        assert_eq!(&h[..12], b"dir/file.txt");
        assert_eq!(&h[124..136], b"00000002322\0");
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
        let long = format!("blobs/sha512/{}", "a".repeat(128));
        let h = header(&long, 1, false).unwrap();
        assert_eq!(h.len() as u64, header_len(&long));
        assert_eq!(h[156], b'x');
        let record = std::str::from_utf8(&h[512..512 + 151]).unwrap();
        assert_eq!(record, format!("151 path={long}\n"));
        assert_eq!(h[1024 + 156], b'0');
        let big = header("big", 10 << 30, false).unwrap();
        assert_eq!(big[124], 0x80);
    }
}
