//! Replacing files and folders atomically and durably: readers, and a crash at any moment, see
//! either the old content or the new, never a mix or nothing.
//!
//! A file is written to a temporary file in the same folder, fsynced, renamed over the target,
//! and the folder is fsynced (which makes the rename itself durable on Linux). A folder is built
//! beside its target by the caller, then [`replace_dir`] fsyncs it and swaps it in.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Replaces `path` with what `fill` writes; on any error the old file (if any) is left as it was.
pub fn write(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> Result<()> {
    let tmp = sibling(path, "tmp")?;
    let written = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut out = BufWriter::new(file);
        fill(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(parent_of(path))
}

/// Replaces `path` with `bytes` (see [`write`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write(path, |out| out.write_all(bytes))
}

/// Moves the complete folder `staging` to `target`, replacing any folder there in one step.
///
/// `staging` must be in the same parent folder as `target`. Its files are fsynced first. On
/// Linux the two folders are exchanged atomically (`renameat2(RENAME_EXCHANGE)`) and the old one
/// removed after; elsewhere the old folder is moved aside just before the new one moves in.
pub fn replace_dir(staging: &Path, target: &Path) -> Result<()> {
    sync_tree(staging)?;
    if target.exists() {
        if exchange(staging, target).map_err(|e| Error::io(target, e))? {
            sync_dir(parent_of(target))?;
            // `staging` now holds the old folder.
            fs::remove_dir_all(staging).map_err(|e| Error::io(staging, e))?;
            return Ok(());
        }
        let old = sibling(target, "old")?;
        fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
        fs::rename(staging, target).map_err(|e| Error::io(target, e))?;
        sync_dir(parent_of(target))?;
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        return Ok(());
    }
    fs::rename(staging, target).map_err(|e| Error::io(target, e))?;
    sync_dir(parent_of(target))
}

/// fsyncs a folder, which makes the creations, renames and removals inside it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(|e| Error::io(dir, e))
}

/// fsyncs every file and folder below `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path).and_then(|f| f.sync_all()).map_err(|e| Error::io(&path, e))?;
        }
    }
    sync_dir(dir)
}

/// Swaps two paths in one step; `Ok(false)` where the system or file system cannot.
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c =
            |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
        let (ca, cb) = (c(a)?, c(b)?);
        // SAFETY: both arguments are NUL-terminated paths that outlive the call.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        // Not supported by this kernel or file system: fall back to two renames.
        if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP)) {
            return Ok(false);
        }
        Err(e)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// The folder holding `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A fresh hidden name beside `path`: `.<name>.<what>-<pid>-<n>`.
fn sibling(path: &Path, what: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} names no file; give a file path", path.display())))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(parent_of(path).join(format!(".{}.{what}-{}-{n}", name.to_string_lossy(), std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        write_bytes(&path, b"old content").unwrap();
        let err = write(&path, |out| {
            out.write_all(&[7u8; 100_000])?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old content");
        assert_eq!(names(dir.path()), ["t.bin"]);
        write_bytes(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["t.bin"]);
    }

    #[test]
    fn a_write_into_a_missing_folder_fails_without_creating_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("t.bin");
        assert!(write_bytes(&path, b"x").is_err());
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn replace_dir_swaps_in_the_new_folder_and_removes_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old.txt"), "old").unwrap();
        let staging = dir.path().join(".model.partial");
        fs::create_dir_all(staging.join("sub")).unwrap();
        fs::write(staging.join("new.txt"), "new").unwrap();
        fs::write(staging.join("sub").join("deep.txt"), "deep").unwrap();
        replace_dir(&staging, &target).unwrap();
        assert_eq!(names(&target), ["new.txt", "sub"]);
        assert_eq!(fs::read_to_string(target.join("sub").join("deep.txt")).unwrap(), "deep");
        assert_eq!(names(dir.path()), ["model"]);
        // Into a place where nothing was.
        let fresh = dir.path().join("fresh");
        let staging = dir.path().join(".fresh.partial");
        fs::create_dir(&staging).unwrap();
        fs::write(staging.join("a"), "a").unwrap();
        replace_dir(&staging, &fresh).unwrap();
        assert_eq!(names(&fresh), ["a"]);
        assert_eq!(names(dir.path()), ["fresh", "model"]);
    }
}
