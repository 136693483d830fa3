//! Files a user names (a model folder's files, transform files, paths given through SQL) are
//! read only if they are regular files, and only up to a limit: a FIFO must not hang the
//! process, and `/dev/zero` or a huge file must not exhaust its memory.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// The most a JSON configuration file (`config.json`, `tokenizer_config.json`) may hold.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// The most a tokenizer file (`tokenizer.json`, `vocab.txt`) may hold.
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;
/// The most a weights file may hold: 16 GiB, a model of 4 billion f32 parameters.
pub const MAX_WEIGHTS_BYTES: u64 = 16 << 30;
/// The most a transform file (`isovec fit`) may hold.
pub const MAX_TRANSFORM_BYTES: u64 = 1 << 30;

/// The length of `path`, which must be a regular file (symlinks followed) of at most `limit`
/// bytes; `what` names it in errors ("transform file").
pub fn check_regular(path: &Path, limit: u64, what: &str) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    check_metadata(path, &meta, limit, what)
}

/// The bytes of `path`, which must be a regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    check_regular(path, limit, what)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer: a file swapped for one after the check
    // above must fail at once instead (and the opened file is checked again below).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let len = check_metadata(path, &file.metadata().map_err(|e| Error::io(path, e))?, limit, what)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, bytes.len() as u64, limit, what));
    }
    Ok(bytes)
}

/// [`read_regular`] for a UTF-8 text file.
pub fn read_regular_text(path: &Path, limit: u64, what: &str) -> Result<String> {
    String::from_utf8(read_regular(path, limit, what)?)
        .map_err(|_| Error::InvalidInput(format!("{}: the {what} is not UTF-8 text", path.display())))
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata, limit: u64, what: &str) -> Result<u64> {
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a folder" } else { "not a regular file (a device, FIFO or socket)" };
        return Err(Error::InvalidInput(format!("{}: is {kind}; give the path of a {what}", path.display())));
    }
    if meta.len() > limit {
        return Err(too_large(path, meta.len(), limit, what));
    }
    Ok(meta.len())
}

fn too_large(path: &Path, len: u64, limit: u64, what: &str) -> Error {
    Error::InvalidInput(format!(
        "{}: {len} bytes or more, larger than a {what} may be ({limit} bytes); is this the right file?",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.bin");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular(&file, 10, "test file").unwrap(), b"0123456789");
        let e = read_regular(&file, 9, "test file").unwrap_err().to_string();
        assert!(e.contains("larger than a test file may be (9 bytes)"), "{e}");
        let e = read_regular(dir.path(), 1 << 20, "test file").unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        // A device that never ends, and a FIFO with no writer (which would block an open).
        let e = read_regular(Path::new("/dev/zero"), 1 << 20, "test file").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 1 << 20, "test file").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A symlink to a regular file is followed.
        std::os::unix::fs::symlink(&file, dir.path().join("link")).unwrap();
        assert_eq!(read_regular(&dir.path().join("link"), 10, "test file").unwrap().len(), 10);
    }
}
