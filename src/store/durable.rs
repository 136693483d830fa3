//! Making an acknowledged write survive a power cut: after sled's `flush`, fsync what it wrote.
//!
//! sled 0.34's `flush` writes its log with `pwrite` and ends in `sync_file_range`, which starts
//! and waits for the write-back of the page range but neither flushes the drive's cache nor
//! the file's size and metadata; and an item larger than sled's blob threshold (about 128 KiB)
//! goes to a file of its own in `sled/blobs/`, which sled never fsyncs, nor that folder. A write
//! "flushed" by sled alone survives a process crash, not a power cut.
//!
//! Invariant, enforced by [`Durable::flush`] after every write the store acknowledges (in
//! `Collection::commit` and for the collection list in `Store`): every file and folder entry
//! that the write needs is on stable storage before the call returns, in this order (and
//! nothing else fsyncs the log: sled's periodic flusher is off, see `open_sled`):
//! 1. the blob files created since the last sync, each fsynced, then the `blobs` folder, before
//!    sled's flush writes the log entries that point to them and again after it. A durable log
//!    entry whose blob a cut lost is skipped by sled's recovery, which replays the rest of the
//!    batch: a torn write. So no log entry may become durable before its blob, which is why
//!    sled's flusher thread (an fsync of the log every 500 ms, blobs never) is off. What is left
//!    to sled: a log segment freed at the end of the file is truncated and fsynced in the
//!    background, a rare event that could still land inside that window;
//! 2. the log file `db`, fsynced (data, size and metadata);
//! 3. the `sled` folder, when its names changed (a new snapshot `snap.*`, the `conf` file).
//!
//! fsync acts on the inode, not on the descriptor, so one descriptor per file opened once is
//! enough to make durable what sled wrote through its own.
//!
//! [`Durability::Flush`] keeps sled's behaviour alone (like SQLite's `synchronous=NORMAL` in
//! WAL mode): faster, it survives a crash of the process but not of the machine.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::atomic_file::sync_dir;
use crate::store::layout::db_error;
use crate::{Error, Result};

/// What a write has survived when the store acknowledges it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// A power cut or a crash of the machine: sled's files, its new blob files and their
    /// folders are fsynced before a write returns (the default).
    #[default]
    Fsync,
    /// A crash of the process only: sled's own flush (`sync_file_range`), no fsync; a power cut
    /// may lose the last writes, like SQLite's `synchronous=NORMAL`.
    Flush,
}

/// The sled database's files, kept open to be fsynced after each flush.
pub(crate) struct Durable {
    /// Whether to fsync ([`Durability::Fsync`]) or only flush.
    fsync: AtomicBool,
    dir: PathBuf,
    synced: Mutex<Synced>,
}

/// What is known to be on stable storage.
struct Synced {
    /// The log file (`sled/db`).
    log: File,
    /// Names in the sled folder at the last sync of the folder.
    names: HashSet<String>,
    /// Names in `sled/blobs` fsynced (with the folder) at the last sync.
    blobs: HashSet<String>,
}

impl Durable {
    /// Takes the database's files in `dir` (sled's folder, just opened) and makes everything in
    /// it durable, with `dir`'s own entry in its parent: a new store is durable once opened.
    pub(crate) fn open(dir: &Path, durability: Durability) -> Result<Durable> {
        let log_path = dir.join("db");
        let log = File::open(&log_path).map_err(|e| Error::io(&log_path, e))?;
        let durable = Durable {
            fsync: AtomicBool::new(durability == Durability::Fsync),
            dir: dir.to_path_buf(),
            synced: Mutex::new(Synced { log, names: HashSet::new(), blobs: HashSet::new() }),
        };
        if durability == Durability::Fsync {
            let conf = dir.join("conf");
            if conf.exists() {
                sync_file(&conf)?;
            }
            durable.sync()?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Ok(durable)
    }

    /// Sets what later writes survive.
    pub(crate) fn set(&self, durability: Durability) {
        self.fsync.store(durability == Durability::Fsync, Ordering::SeqCst);
    }

    /// What writes survive now.
    pub(crate) fn durability(&self) -> Durability {
        if self.fsync.load(Ordering::SeqCst) {
            Durability::Fsync
        } else {
            Durability::Flush
        }
    }

    /// Flushes `db` and, with [`Durability::Fsync`], puts what it wrote on stable storage.
    ///
    /// The blobs written by the write are fsynced before sled's flush writes the log entries that
    /// point to them (sled writes a blob when the item is logged, its entry at the flush), and
    /// again after it, for any blob sled wrote meanwhile; then the log.
    pub(crate) fn flush(&self, db: &sled::Db) -> Result<()> {
        let fsync = self.fsync.load(Ordering::SeqCst);
        if fsync {
            let mut synced = self.synced.lock().map_err(|_| Error::Poisoned("syncing the database"))?;
            self.sync_blobs(&mut synced)?;
        }
        db.flush().map_err(db_error)?;
        if fsync {
            self.sync()?;
        }
        Ok(())
    }

    /// fsyncs new blob files and their folder, the log, and the sled folder if its names changed.
    fn sync(&self) -> Result<()> {
        let mut synced = self.synced.lock().map_err(|_| Error::Poisoned("syncing the database"))?;
        let synced = &mut *synced;
        self.sync_blobs(synced)?;
        synced.log.sync_all().map_err(|e| Error::io(self.dir.join("db"), e))?;
        let names = names_in(&self.dir)?;
        if names != synced.names {
            sync_dir(&self.dir)?;
            synced.names = names;
        }
        Ok(())
    }

    /// fsyncs the blob files created since the last sync, then their folder.
    fn sync_blobs(&self, synced: &mut Synced) -> Result<()> {
        let blobs_dir = self.dir.join("blobs");
        let blobs = names_in(&blobs_dir)?;
        if blobs != synced.blobs {
            for name in blobs.difference(&synced.blobs) {
                let path = blobs_dir.join(name);
                match sync_file(&path) {
                    Ok(()) => {}
                    // Removed by sled since it was listed (an overwritten item's blob).
                    Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            if blobs_dir.exists() {
                sync_dir(&blobs_dir)?;
            }
            synced.blobs = blobs;
        }
        Ok(())
    }
}

/// Creates `dir` and its missing parents, each made durable in its parent (an fsync of the
/// folder that holds the new entry).
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for d in missing.iter().rev() {
        sync_dir(d)?;
        if let Some(parent) = d.parent() {
            sync_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
        }
    }
    Ok(())
}

/// The names in `dir`; none if it does not exist.
fn names_in(dir: &Path) -> Result<HashSet<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = HashSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// fsyncs the file at `path` (opened for reading: fsync needs no write access on Linux).
fn sync_file(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_nested_folders_and_syncs_a_store_with_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/sled");
        create_dir_all(dir.parent().unwrap()).unwrap();
        assert!(tmp.path().join("a/b").is_dir());
        let db = sled::open(&dir).unwrap();
        let durable = Durable::open(&dir, Durability::Fsync).unwrap();
        // An item over the blob threshold becomes a file of its own in `blobs`.
        db.insert(b"big", vec![7u8; 300 * 1024]).unwrap();
        durable.flush(&db).unwrap();
        let synced = durable.synced.lock().unwrap();
        assert!(!synced.blobs.is_empty(), "the big item's blob file was seen and synced");
        assert!(synced.names.contains("db") && synced.names.contains("blobs"));
    }
}
