//! Flattening layer tars into one: layers are read from the top down and
//! each path is written the first time it is seen, unless an upper layer
//! removed it (a `.wh.NAME` whiteout, a `.wh..wh..opq` opaque directory) or
//! replaced one of its parents with a non-directory. Only an index of the
//! paths seen is kept, never file contents.
//!
//! Entries are untrusted: paths are made relative (a leading `/` is
//! dropped, as runtimes resolve them inside the root), and what could
//! reach outside the output when it is unpacked is skipped and reported:
//! a path with a `..` component, a hard link whose target is not a file
//! of the image, an entry under a symlink of its own layer. Hard links are
//! written after their file: to a file of their own layer at once, to one
//! of a lower layer at the end, to one an upper layer replaced by reading
//! their layer again. Symlinks
//! are written as they are: data, never followed. Long-name and pax
//! headers larger than [`MAX_META`] are skipped with the entry they
//! describe rather than read into memory.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;

use tar::{EntryType, Header};

/// The largest long-name, long-link or pax header read.
pub const MAX_META: u64 = 1 << 20;

/// At most this many skipped entries are described one by one.
const MAX_REPORTED: usize = 100;

/// What the index knows of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A directory entry was written.
    Dir,
    /// Only entries below it were written; a lower layer's directory entry
    /// still gives it its metadata.
    ImpliedDir,
    /// A regular file was written (a hard link may point at it).
    File,
    /// Another non-directory was written (symlink, link, device, fifo).
    Other,
    /// Whited out by an upper layer.
    Removed,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    kind: Kind,
    /// Everything below it in lower layers is hidden.
    opaque: bool,
    /// The layer (counted from the top) that wrote it.
    layer: usize,
}

/// Why entries were skipped, and how many.
#[derive(Debug, Default, Clone)]
pub struct Skipped {
    /// One line per skipped entry (the first 100).
    pub reasons: Vec<String>,
    /// How many were skipped in all.
    pub count: u64,
}

impl Skipped {
    fn add(&mut self, layer: &str, path: &[u8], why: &str) {
        self.count += 1;
        tracing::warn!(layer, path = %String::from_utf8_lossy(path), why, "export skipped an entry");
        if self.reasons.len() < MAX_REPORTED {
            self.reasons.push(format!(
                "{}: {why} (layer {layer})",
                String::from_utf8_lossy(path)
            ));
        }
    }
}

/// Writes the flattened filesystem of layers fed to it top first.
pub struct Flattener<W: Write> {
    out: tar::Builder<W>,
    index: HashMap<Vec<u8>, Seen>,
    layer: usize,
    /// Entries written.
    pub written: u64,
    /// Entries skipped as unsafe or unreadable.
    pub skipped: Skipped,
    /// Hard links waiting for their layer to be read again.
    deferred: Vec<Deferred>,
    /// Hard links to files of lower layers: path, target, header, layer.
    late: Vec<(Vec<u8>, Vec<u8>, Header, String)>,
}

/// Long names and pax records that apply to the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    /// The next entry is to be skipped (its long header was refused).
    skip: bool,
}

/// Makes a tar path relative and clean: `None` for the root, `Err` for a
/// `..` component.
fn clean(raw: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(()),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// The parents of a clean path, nearest last, the root (`""`) first.
fn parents(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::once(&path[..0]).chain(
        path.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| &path[..i]),
    )
}

/// Splits a clean path into its parent (`""` for the root) and name.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = dir.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    entry.read_to_end(&mut buf)?;
    // A NUL-terminated GNU long name.
    while buf.last() == Some(&0) {
        buf.pop();
    }
    Ok(buf)
}

impl<W: Write> Flattener<W> {
    /// A flattener writing a tar to `out`.
    pub fn new(out: W) -> Flattener<W> {
        let mut out = tar::Builder::new(out);
        out.mode(tar::HeaderMode::Complete);
        Flattener {
            out,
            index: HashMap::new(),
            layer: 0,
            written: 0,
            skipped: Skipped::default(),
            deferred: Vec::new(),
            late: Vec::new(),
        }
    }

    /// Writes the hard links to files of lower layers, once all layers
    /// are read: those whose file was written, the rest are skipped.
    pub fn late_links(&mut self) -> io::Result<()> {
        for (path, target, mut header, layer) in std::mem::take(&mut self.late) {
            if self
                .index
                .get(&target)
                .is_some_and(|s| s.kind == Kind::File)
            {
                self.out.append_link(
                    &mut header,
                    OsStr::from_bytes(&path),
                    OsStr::from_bytes(&target),
                )?;
                self.written += 1;
            } else {
                let why = format!(
                    "a hard link to {}, not a file of the image",
                    String::from_utf8_lossy(&target)
                );
                self.skipped.add(&layer, &path, &why);
            }
        }
        Ok(())
    }

    /// Ends the tar and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner()
    }

    /// Why `path` (of the current layer) is not written, if it is not:
    /// `Some(None)` when hidden as overlay semantics say, `Some(Some(why))`
    /// when skipped as unsafe.
    fn hidden(&self, path: &[u8], is_dir: bool) -> Option<Option<&'static str>> {
        for parent in parents(path) {
            if let Some(seen) = self.index.get(parent) {
                if seen.opaque {
                    return Some(None);
                }
                match seen.kind {
                    Kind::Dir | Kind::ImpliedDir => {}
                    Kind::Removed => return Some(None),
                    Kind::File | Kind::Other if seen.layer == self.layer => {
                        return Some(Some("below a non-directory of the same layer"));
                    }
                    Kind::File | Kind::Other => return Some(None),
                }
            }
        }
        match self.index.get(path) {
            None => None,
            Some(seen) if is_dir && seen.kind == Kind::ImpliedDir => None,
            Some(_) => Some(None),
        }
    }

    /// Records a written path and implies its parents.
    fn mark(&mut self, path: &[u8], kind: Kind) {
        for parent in parents(path).skip(1) {
            if !self.index.contains_key(parent) {
                self.index.insert(
                    parent.to_vec(),
                    Seen {
                        kind: Kind::ImpliedDir,
                        opaque: false,
                        layer: self.layer,
                    },
                );
            }
        }
        let opaque = self.index.get(path).is_some_and(|s| s.opaque);
        self.index.insert(
            path.to_vec(),
            Seen {
                kind,
                opaque,
                layer: self.layer,
            },
        );
    }

    /// Reads one layer's uncompressed tar and writes what of it is visible.
    /// `name` names the layer in reports (its digest).
    pub fn layer<R: Read>(&mut self, tar: R, name: &str) -> io::Result<()> {
        let mut marks = Marks::default();
        let mut meta = Skipped::default();
        let done = each_entry(tar, name, &mut meta, |entry, raw, link| {
            self.entry(entry, name, raw, link, &mut marks)
        });
        self.skipped.count += meta.count;
        self.skipped.reasons.extend(meta.reasons);
        self.skipped.reasons.truncate(MAX_REPORTED);
        done?;
        // Whiteouts and opaque markers act on the layers below only. A
        // path an upper layer made a directory again keeps nothing of
        // what was below the whited-out one.
        let layer = self.layer;
        for path in marks.whiteouts {
            let seen = self.index.entry(path).or_insert(Seen {
                kind: Kind::Removed,
                opaque: false,
                layer,
            });
            if matches!(seen.kind, Kind::Dir | Kind::ImpliedDir) {
                seen.opaque = true;
            }
        }
        for dir in marks.opaque {
            self.index
                .entry(dir)
                .or_insert(Seen {
                    kind: Kind::ImpliedDir,
                    opaque: false,
                    layer,
                })
                .opaque = true;
        }
        self.layer += 1;
        Ok(())
    }

    /// The layers (counted from the top) holding files that hard links of
    /// the same layer point at but an upper layer replaced: each is read
    /// again with [`Flattener::relink`].
    pub fn relinks_needed(&self) -> Vec<usize> {
        let mut layers: Vec<usize> = self.deferred.iter().map(|d| d.layer).collect();
        layers.dedup();
        layers
    }

    /// Reads layer `layer` (counted from the top) again and writes the
    /// files its deferred hard links point at, under the first link's
    /// name; the other links to the same file link to that one.
    pub fn relink<R: Read>(&mut self, tar: R, name: &str, layer: usize) -> io::Result<()> {
        let mut wanted: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        for d in self.deferred.iter().filter(|d| d.layer == layer) {
            wanted
                .entry(d.target.clone())
                .or_default()
                .push(d.link.clone());
        }
        let mut ignored = Skipped::default();
        each_entry(tar, name, &mut ignored, |entry, raw, _| {
            let kind = entry.header().entry_type();
            if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
                return Ok(());
            }
            let Some(links) = clean(raw).ok().flatten().and_then(|p| wanted.remove(&p)) else {
                return Ok(());
            };
            let (first, rest) = links
                .split_first()
                .ok_or_else(|| io::Error::other("no link"))?;
            let mut header = copy_header(entry.header());
            header.set_entry_type(EntryType::Regular);
            header.set_size(entry.header().entry_size()?);
            self.out
                .append_data(&mut header, OsStr::from_bytes(first), &mut *entry)?;
            for link in rest {
                header.set_entry_type(EntryType::Link);
                header.set_size(0);
                self.out.append_link(
                    &mut header,
                    OsStr::from_bytes(link),
                    OsStr::from_bytes(first),
                )?;
            }
            self.written += links.len() as u64;
            Ok(())
        })
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        layer: &str,
        raw: &[u8],
        link: Option<Vec<u8>>,
        marks: &mut Marks,
    ) -> io::Result<()> {
        let kind = entry.header().entry_type();
        let Ok(path) = clean(raw) else {
            self.skipped.add(layer, raw, "a `..` component");
            return Ok(());
        };
        let Some(path) = path else {
            return Ok(()); // the root itself
        };
        let (dir, base) = split(&path);
        if base == b".wh..wh..opq" {
            marks.opaque.push(dir.to_vec());
            return Ok(());
        }
        if let Some(removed) = base.strip_prefix(b".wh.") {
            // `.wh..wh.*` other than the opaque marker are aufs bookkeeping.
            if !removed.starts_with(b".wh.") {
                marks.whiteouts.push(join(dir, removed));
            }
            return Ok(());
        }
        let is_dir = kind == EntryType::Directory;
        match self.hidden(&path, is_dir) {
            None => {}
            Some(None) => {
                if matches!(kind, EntryType::Regular | EntryType::Continuous)
                    && self.index.get(&path).is_some_and(|s| s.layer < self.layer)
                {
                    marks.shadowed.insert(path);
                }
                return Ok(());
            }
            Some(Some(why)) => {
                self.skipped.add(layer, &path, why);
                return Ok(());
            }
        }
        let source = entry.header();
        let mut header = copy_header(source);
        let name = OsStr::from_bytes(&path);
        let recorded = match kind {
            EntryType::Regular | EntryType::Continuous => {
                header.set_entry_type(EntryType::Regular);
                header.set_size(entry.header().entry_size()?);
                self.out.append_data(&mut header, name, &mut *entry)?;
                Kind::File
            }
            EntryType::Directory => {
                header.set_entry_type(EntryType::Directory);
                self.out.append_data(&mut header, name, io::empty())?;
                Kind::Dir
            }
            EntryType::Symlink => {
                let target = link.unwrap_or_default();
                header.set_entry_type(EntryType::Symlink);
                // Written before anything else is, or refused untouched.
                if let Err(e) = self
                    .out
                    .append_link(&mut header, name, OsStr::from_bytes(&target))
                {
                    let why = format!("a symlink the tar format cannot hold: {e}");
                    self.skipped.add(layer, &path, &why);
                    return Ok(());
                }
                Kind::Other
            }
            EntryType::Link => {
                let target = link.unwrap_or_default();
                let cleaned = clean(&target).ok().flatten();
                let written = cleaned.as_ref().and_then(|t| self.index.get(t));
                match (cleaned, written) {
                    (Some(t), Some(seen))
                        if seen.kind == Kind::File && seen.layer == self.layer =>
                    {
                        header.set_entry_type(EntryType::Link);
                        self.out
                            .append_link(&mut header, name, OsStr::from_bytes(&t))?;
                    }
                    (Some(t), _) if marks.shadowed.contains(&t) => {
                        // Its file was replaced above: written later, from
                        // this layer read again.
                        self.deferred.push(Deferred {
                            layer: self.layer,
                            target: t,
                            link: path.clone(),
                        });
                        self.mark(&path, Kind::File);
                        return Ok(());
                    }
                    (Some(t), None) => {
                        // Its file may come from a layer below: linked at
                        // the end, once it is written.
                        header.set_entry_type(EntryType::Link);
                        self.late.push((path.clone(), t, header, layer.to_owned()));
                        self.mark(&path, Kind::File);
                        return Ok(());
                    }
                    _ => {
                        let why = format!(
                            "a hard link to {}, not a file of its layer",
                            String::from_utf8_lossy(&target)
                        );
                        self.skipped.add(layer, &path, &why);
                        return Ok(());
                    }
                }
                // The same file: a later hard link may point at it too.
                Kind::File
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                header.set_entry_type(kind);
                if let Ok(Some(major)) = source.device_major() {
                    header.set_device_major(major)?;
                }
                if let Ok(Some(minor)) = source.device_minor() {
                    header.set_device_minor(minor)?;
                }
                self.out.append_data(&mut header, name, io::empty())?;
                Kind::Other
            }
            EntryType::GNUSparse => {
                self.skipped
                    .add(layer, &path, "a GNU sparse file (not supported)");
                return Ok(());
            }
            other => {
                let why = format!("an entry of unknown type {:?}", other.as_byte() as char);
                self.skipped.add(layer, &path, &why);
                return Ok(());
            }
        };
        self.mark(&path, recorded);
        self.written += 1;
        Ok(())
    }
}

/// What a layer marks for the layers below it, and its own files that
/// upper layers replaced.
#[derive(Default)]
struct Marks {
    whiteouts: Vec<Vec<u8>>,
    opaque: Vec<Vec<u8>>,
    shadowed: HashSet<Vec<u8>>,
}

/// A hard link whose file an upper layer replaced.
struct Deferred {
    layer: usize,
    target: Vec<u8>,
    link: Vec<u8>,
}

/// A fresh header with the metadata of `source`; a numeric field that
/// does not parse counts as zero, as other readers take it.
fn copy_header(source: &Header) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(source.mode().unwrap_or(0o644));
    header.set_uid(source.uid().unwrap_or(0));
    header.set_gid(source.gid().unwrap_or(0));
    header.set_mtime(source.mtime().unwrap_or(0));
    if let Ok(Some(user)) = source.username() {
        let _ = header.set_username(user);
    }
    if let Ok(Some(group)) = source.groupname() {
        let _ = header.set_groupname(group);
    }
    header.set_size(0);
    header
}

/// Calls `f` with every file-system entry of a layer tar, its raw path and
/// link target (long names and pax records applied). Long-name and pax
/// headers over [`MAX_META`] are skipped, and the entry they describe.
fn each_entry<R: Read>(
    tar: R,
    name: &str,
    skipped: &mut Skipped,
    mut f: impl FnMut(&mut tar::Entry<'_, R>, &[u8], Option<Vec<u8>>) -> io::Result<()>,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(tar);
    let mut pending = Pending::default();
    for entry in archive.entries()?.raw(true) {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let size = entry.header().entry_size()?;
        let meta = matches!(
            kind,
            EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader
        );
        if meta && size > MAX_META {
            let why = format!("a {size}-byte long-name or pax header (over {MAX_META})");
            skipped.add(name, &entry.path_bytes(), &why);
            pending.skip = true;
            continue;
        }
        match kind {
            EntryType::GNULongName => pending.path = Some(read_meta(&mut entry)?),
            EntryType::GNULongLink => pending.link = Some(read_meta(&mut entry)?),
            EntryType::XHeader => {
                let mut records = Vec::new();
                entry.read_to_end(&mut records)?;
                for record in tar::PaxExtensions::new(&records) {
                    let record = record?;
                    match record.key_bytes() {
                        b"path" => pending.path = Some(record.value_bytes().to_vec()),
                        b"linkpath" => pending.link = Some(record.value_bytes().to_vec()),
                        b"size" => {
                            return Err(io::Error::new(
                                io::ErrorKind::Unsupported,
                                "a file size in a pax header (over 8 GiB) is not supported",
                            ));
                        }
                        _ => {}
                    }
                }
            }
            EntryType::XGlobalHeader => {}
            _ => {
                let p = std::mem::take(&mut pending);
                if p.skip {
                    continue;
                }
                let raw = p.path.unwrap_or_else(|| entry.path_bytes().into_owned());
                let link = p
                    .link
                    .or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
                f(&mut entry, &raw, link)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A small layer: a directory, a file, a symlink, a hard link, a long
    /// name and a whiteout.
    fn sample_layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |kind: EntryType, path: &str, link: Option<&str>, data: &[u8]| {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, path, l).unwrap(),
                None => b.append_data(&mut h, path, data).unwrap(),
            }
        };
        add(EntryType::Directory, "etc", None, b"");
        add(EntryType::Regular, "etc/passwd", None, b"root:x:0:0\n");
        add(EntryType::Symlink, "etc/link", Some("/etc/passwd"), b"");
        add(EntryType::Link, "etc/hard", Some("etc/passwd"), b"");
        add(EntryType::Regular, &"long/".repeat(40), None, b"deep");
        add(EntryType::Regular, "etc/.wh.gone", None, b"");
        b.into_inner().unwrap()
    }

    #[test]
    fn damaged_layers_fail_or_flatten_but_never_panic() {
        let layer = sample_layer();
        let mut out = Flattener::new(Vec::new());
        out.layer(&layer[..], "good").unwrap();
        assert_eq!(out.written, 5);
        for at in (0..layer.len()).step_by(7) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = layer.clone();
                damaged[at] ^= flip;
                let mut out = Flattener::new(Vec::new());
                let _ = out.layer(&damaged[..], "damaged");
                let _ = out.late_links();
                let _ = out.finish();
            }
            let mut out = Flattener::new(Vec::new());
            let _ = out.layer(&layer[..at], "truncated");
        }
    }

    #[test]
    fn paths_are_made_relative_and_dotdot_refused() {
        assert_eq!(clean(b"/etc//passwd").unwrap().unwrap(), b"etc/passwd");
        assert_eq!(clean(b"./a/./b/").unwrap().unwrap(), b"a/b");
        assert_eq!(clean(b"./").unwrap(), None);
        assert!(clean(b"a/../../etc").is_err());
        let p: Vec<&[u8]> = parents(b"a/b/c").collect();
        assert_eq!(p, vec![&b""[..], b"a", b"a/b"]);
    }
}
