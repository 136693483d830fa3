//! Snapshots of a collection's HNSW index: written atomically, verified before loading.
//!
//! A snapshot is written by hnsw_rs's dump into a temporary folder, each file is fsynced and
//! checksummed, the folder is renamed to `snap-<seq>` and the parent folder fsynced; only then is
//! the [`Manifest`] (sequence number covered, file lengths and CRC32s) stored in sled. Loading
//! re-checks every length and checksum first, because hnsw_rs's loader exits the process on some
//! damaged files; a mismatch is reported as an error the caller answers with a rebuild.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::sync_dir;
use crate::store::index::Index;
use crate::{Error, Result};

/// Basename hnsw_rs gives the dumped files (`index.hnsw.graph`, `index.hnsw.data`).
const BASENAME: &str = "index";

/// One file of a snapshot with its expected length and CRC32.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// File name inside the snapshot folder.
    pub name: String,
    /// Length in bytes.
    pub len: u64,
    /// CRC32 (IEEE) of the content.
    pub crc32: u32,
}

/// What a snapshot covers and how to check it; stored in sled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every vector with an internal id up to this sequence number is in the snapshot.
    pub seq: u64,
    /// Folder name inside the collection's index folder.
    pub folder: String,
    /// hnsw_rs basename of the files.
    pub basename: String,
    /// The files and their checksums.
    pub files: Vec<FileSum>,
    /// Number of points in the graph.
    pub points: u64,
}

/// Writes `index` (covering sequence number `seq`) as a new snapshot under `root`.
pub fn write(index: &Index, root: &Path, seq: u64) -> Result<Manifest> {
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = root.join(format!("tmp-{seq}-{nanos}"));
    fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = write_into(index, root, &tmp, seq);
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_into(index: &Index, root: &Path, tmp: &Path, seq: u64) -> Result<Manifest> {
    let basename = index.dump(tmp, BASENAME)?;
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(tmp)
        .map_err(|e| Error::io(tmp, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        let (len, crc32) = checksum(&path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Index(format!("unexpected file name in {}", tmp.display())))?
            .to_string();
        files.push(FileSum { name, len, crc32 });
    }
    sync_dir(tmp)?;
    // The folder name is unique (sequence number and time), so a compaction at an unchanged
    // sequence number never overwrites the snapshot the stored manifest points to.
    let folder = tmp
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.replacen("tmp-", "snap-", 1))
        .ok_or_else(|| Error::Index(format!("unexpected folder name {}", tmp.display())))?;
    let dest = root.join(&folder);
    fs::rename(tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    sync_dir(root)?;
    Ok(Manifest {
        seq,
        folder,
        basename,
        files,
        points: index.len() as u64,
    })
}

/// Verifies the snapshot's files against the manifest, then loads the index.
pub fn load(root: &Path, manifest: &Manifest) -> Result<Index> {
    if manifest.files.is_empty() {
        return Err(damaged("snapshot manifest lists no files".into(), root));
    }
    // The names come from the database: a damaged one must not lead outside the index folder.
    let mut names = [manifest.folder.as_str(), manifest.basename.as_str()]
        .into_iter()
        .chain(manifest.files.iter().map(|f| f.name.as_str()));
    if !manifest.folder.starts_with("snap-") || !names.all(plain_name) {
        return Err(damaged(
            format!("snapshot manifest names a file outside {} ({:?}); it is damaged", root.display(), manifest.folder),
            root,
        ));
    }
    let dir = root.join(&manifest.folder);
    for f in &manifest.files {
        let path = dir.join(&f.name);
        let (len, crc32) = checksum(&path)?;
        if len != f.len || crc32 != f.crc32 {
            return Err(damaged(
                format!(
                    "snapshot file {} is damaged (length {len}, expected {}; crc {crc32:08x}, expected {:08x})",
                    path.display(),
                    f.len,
                    f.crc32
                ),
                &path,
            ));
        }
    }
    let index = Index::load(&dir, &manifest.basename)?;
    if index.len() as u64 != manifest.points {
        return Err(damaged(
            format!("snapshot in {} holds {} points, manifest says {}", dir.display(), index.len(), manifest.points),
            &dir,
        ));
    }
    Ok(index)
}

/// Removes every snapshot or temporary folder under `root` except `keep`.
pub fn remove_stale(root: &Path, keep: Option<&str>) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with("snap-") || name.starts_with("tmp-");
        if ours && Some(name.as_ref()) != keep {
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!("could not remove old snapshot {}: {e}", entry.path().display());
            }
        }
    }
}

/// The error for a damaged snapshot at `path`.
fn damaged(what: String, path: &Path) -> Error {
    Error::Damaged { what, path: Some(path.to_path_buf()) }
}

fn checksum(path: &Path) -> Result<(u64, u32)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize()))
}

/// Whether `name` is one path component that stays inside its folder.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::normalized;
    use crate::store::layout::HnswParams;

    #[test]
    fn damaged_files_are_refused_before_loading() {
        let index = Index::new(&HnswParams::default(), 3, 100).unwrap();
        let items: Vec<(Vec<f32>, u64)> = (0..100u64)
            .map(|i| (normalized(&[i as f32 + 1.0, 1.0, (i % 7) as f32]).unwrap(), i))
            .collect();
        index.insert(&items);
        let root = tempfile::tempdir().unwrap();
        let manifest = write(&index, root.path(), 100).unwrap();
        assert_eq!(load(root.path(), &manifest).unwrap().len(), 100);
        // Flip one bit in the middle of each file in turn: every flip is detected.
        for f in &manifest.files {
            let path = root.path().join(&manifest.folder).join(&f.name);
            let original = fs::read(&path).unwrap();
            let mut bytes = original.clone();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x10;
            fs::write(&path, &bytes).unwrap();
            assert!(load(root.path(), &manifest).is_err(), "{}", f.name);
            fs::write(&path, &original[..original.len() - 3]).unwrap();
            assert!(load(root.path(), &manifest).is_err(), "{}", f.name);
            fs::write(&path, &original).unwrap();
        }
        assert!(load(root.path(), &manifest).is_ok());
        // Names from a damaged manifest never lead outside the index folder.
        let outside = |edit: &dyn Fn(&mut Manifest)| {
            let mut m = manifest.clone();
            edit(&mut m);
            load(root.path(), &m).err().expect("a manifest naming files outside loads").to_string()
        };
        assert!(outside(&|m| m.folder = format!("../{}", m.folder)).contains("outside"));
        assert!(outside(&|m| m.folder = "snap-1/../..".into()).contains("outside"));
        assert!(outside(&|m| m.basename = "../index".into()).contains("outside"));
        assert!(outside(&|m| m.files[0].name = "..".into()).contains("outside"));
        remove_stale(root.path(), None);
        assert!(load(root.path(), &manifest).is_err());
    }
}
