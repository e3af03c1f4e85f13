//! Outputs written under a temporary name beside their target and renamed
//! into place only when complete; dropped unfinished, they vanish.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_core::{Error, ErrorCode, Result};

/// A temporary file or directory that becomes `target` on [`Staged::persist`].
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    dir: bool,
    done: bool,
}

/// A file-system failure, naming the path.
pub(crate) fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorCode::Unknown, format!("{}: {e}", path.display()))
}

/// Renames a finished output `from` to `target`, replacing what was there.
pub(crate) fn move_into_place(from: &Path, target: &Path) -> Result<()> {
    if let Ok(meta) = target.symlink_metadata() {
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(target)
        } else {
            std::fs::remove_file(target)
        };
        removed.map_err(|e| io_err(target, e))?;
    }
    std::fs::rename(from, target).map_err(|e| io_err(target, e))
}

/// The directory an output for `target` is staged in, and the target's
/// file name; refuses an existing target unless `force`.
pub(crate) fn beside(target: &Path, force: bool) -> Result<(PathBuf, String)> {
    if target.symlink_metadata().is_ok() && !force {
        return Err(Error::new(
            ErrorCode::Unknown,
            format!(
                "{} already exists (use --force to replace it)",
                target.display()
            ),
        ));
    }
    let name = target.file_name().ok_or_else(|| {
        Error::new(
            ErrorCode::Unknown,
            format!("{} is not a file path", target.display()),
        )
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::new(
            ErrorCode::Unknown,
            format!("directory {} does not exist", parent.display()),
        ));
    }
    Ok((parent, name.to_string_lossy().into_owned()))
}

impl Staged {
    /// Plans a staged output; refuses an existing target unless `force`.
    pub fn new(target: &Path, dir: bool, force: bool) -> Result<Staged> {
        let (parent, name) = beside(target, force)?;
        let temp = parent.join(format!(".{name}.partial-{:08x}", rand::random::<u32>()));
        Ok(Staged {
            temp,
            target: target.to_path_buf(),
            dir,
            done: false,
        })
    }

    /// Where to write until [`Staged::persist`].
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The same error naming the target where it named the temporary path
    /// (which the user never asked for and which is gone once dropped).
    pub fn hide_temp(&self, e: Error) -> Error {
        let temp = self.temp.display().to_string();
        if !e.message().contains(&temp) {
            return e;
        }
        let message = e
            .message()
            .replace(&temp, &self.target.display().to_string());
        let mut out = Error::new(e.code(), message);
        if let Some(d) = e.detail() {
            out = out.with_detail(d.clone());
        }
        out
    }

    /// Moves the finished output to its target, replacing what was there.
    pub fn persist(mut self) -> Result<()> {
        move_into_place(&self.temp, &self.target)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = if self.dir {
                std::fs::remove_dir_all(&self.temp)
            } else {
                std::fs::remove_file(&self.temp)
            };
        }
    }
}

/// A staged regular file written sequentially, synchronously, as curl
/// writes its output: a write lands in the page cache and returns, so a
/// single stream gains nothing from handing it to another thread, and large
/// chunks go straight from the network buffer to the file without a copy
/// (only small ones are gathered). Like curl and crane, it is not fsynced:
/// the rename makes the output appear whole, not durable.
pub struct StagedFile {
    staged: Staged,
    file: std::io::BufWriter<std::fs::File>,
}

/// Writes at least this large skip [`StagedFile`]'s buffer.
const GATHER: usize = 64 << 10;

impl StagedFile {
    /// Creates the temporary file for `target`.
    pub fn create(target: &Path, force: bool) -> Result<StagedFile> {
        let staged = Staged::new(target, false, force)?;
        let file = std::fs::File::create(staged.path()).map_err(|e| io_err(&staged.target, e))?;
        Ok(StagedFile {
            staged,
            file: std::io::BufWriter::with_capacity(GATHER, file),
        })
    }

    /// Appends bytes.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| io_err(&self.staged.target, e))
    }

    /// Flushes and renames into place.
    pub fn persist(mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| io_err(&self.staged.target, e))?;
        self.staged.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_target_not_the_temporary_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let staged = Staged::new(&target, false, false).unwrap();
        let e = io_err(staged.path(), std::io::Error::other("disk full"));
        assert!(e.message().contains("partial"));
        let told = staged.hide_temp(e);
        assert_eq!(told.message(), format!("{}: disk full", target.display()));
    }

    #[test]
    fn unfinished_outputs_vanish_and_existing_targets_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        {
            let mut f = StagedFile::create(&target, false).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut f = StagedFile::create(&target, false).unwrap();
        f.write_all(b"done").unwrap();
        f.persist().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"done");
        assert!(StagedFile::create(&target, false).is_err());
        let mut f = StagedFile::create(&target, true).unwrap();
        f.write_all(b"again").unwrap();
        f.persist().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"again");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
