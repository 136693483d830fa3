//! Snapshots of a collection's HNSW index: written atomically, verified before use.
//!
//! A snapshot is one graph file ([`crate::store::graph_file`]) written into a temporary folder
//! and fsynced; the folder is renamed to `snap-<seq>-<time>` and the parent folder fsynced; only
//! then is the [`Manifest`] (sequence number covered, file length and CRC32) stored in sled.
//! Loading reads the file once, checksumming it as it goes, and uses it only if length and
//! checksum match; any mismatch is an error the caller answers with a rebuild from sled.
//!
//! Stores written before isovec built its own graph hold an hnsw_rs dump (manifest without a
//! `format`): loading one is an error too, so the collection rebuilds its graph from the vectors
//! in sled and writes a snapshot in today's format.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic_file::sync_dir;
use crate::store::graph_file::FORMAT;
use crate::store::index::Index;
use crate::{Error, Result};

/// Name of the graph file inside a snapshot folder.
const GRAPH_FILE: &str = "graph.isovec";

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
    /// Format of the graph file; 0 (absent): an hnsw_rs dump of an older isovec, not read any more.
    #[serde(default)]
    pub format: u32,
    /// The files and their checksums.
    pub files: Vec<FileSum>,
    /// Number of points in the graph.
    pub points: u64,
}

/// Writes `index` (covering sequence number `seq`) as a new snapshot under `root`.
pub fn write(index: &Index, root: &Path, seq: u64) -> Result<Manifest> {
    fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tmp = root.join(format!("tmp-{seq}-{nanos}"));
    fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = write_into(index, root, &tmp, seq);
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_into(index: &Index, root: &Path, tmp: &Path, seq: u64) -> Result<Manifest> {
    let sum = index.write(&tmp.join(GRAPH_FILE))?;
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
        format: FORMAT,
        files: vec![FileSum { name: GRAPH_FILE.into(), len: sum.len, crc32: sum.crc32 }],
        points: index.len() as u64,
    })
}

/// Reads the snapshot's graph file and returns the index if the file matches the manifest.
pub fn load(root: &Path, manifest: &Manifest) -> Result<Index> {
    if manifest.format != FORMAT {
        return Err(damaged(
            format!(
                "the index snapshot in {} is in format {} (format 0: written by an isovec that used hnsw_rs); \
             this isovec reads format {FORMAT}",
                root.join(&manifest.folder).display(),
                manifest.format
            ),
            &root.join(&manifest.folder),
        ));
    }
    let [file] = manifest.files.as_slice() else {
        return Err(damaged(
            format!("the snapshot manifest lists {} files, expected one; it is damaged", manifest.files.len()),
            &root.join(&manifest.folder),
        ));
    };
    // The names come from the database: a damaged one must not lead outside the index folder.
    if !manifest.folder.starts_with("snap-") || !plain_name(&manifest.folder) || file.name != GRAPH_FILE {
        return Err(damaged(
            format!(
                "snapshot manifest names a file outside {} ({:?}/{:?}); it is damaged",
                root.display(),
                manifest.folder,
                file.name
            ),
            &root.join(&manifest.folder),
        ));
    }
    let path = root.join(&manifest.folder).join(&file.name);
    let (index, sum) = Index::read_file(&path)?;
    if sum.len != file.len || sum.crc32 != file.crc32 {
        return Err(damaged(
            format!(
                "snapshot file {} is damaged (length {}, expected {}; crc {:08x}, expected {:08x})",
                path.display(),
                sum.len,
                file.len,
                sum.crc32,
                file.crc32
            ),
            &root.join(&manifest.folder),
        ));
    }
    if index.len() as u64 != manifest.points {
        return Err(damaged(
            format!("snapshot {} holds {} points, manifest says {}", path.display(), index.len(), manifest.points),
            &root.join(&manifest.folder),
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

/// Whether `name` is one path component that stays inside its folder.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The error for a damaged snapshot at `path`.
fn damaged(what: String, path: &Path) -> Error {
    Error::Damaged { what, path: Some(path.to_path_buf()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::HnswParams;
    use crate::vector::normalized;

    #[test]
    fn damaged_files_are_refused_before_loading() {
        let index = Index::new(&HnswParams::default(), 3, 100).unwrap();
        let items: Vec<(Vec<f32>, u64)> =
            (0..100u64).map(|i| (normalized(&[i as f32 + 1.0, 1.0, (i % 7) as f32]).unwrap(), i)).collect();
        index.insert(&items).unwrap();
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
        assert!(outside(&|m| m.files[0].name = "../graph.isovec".into()).contains("outside"));
        assert!(outside(&|m| m.files[0].name = "..".into()).contains("outside"));
        // A manifest of an older isovec (an hnsw_rs dump, no format) is refused, not misread.
        let mut legacy = manifest.clone();
        legacy.format = 0;
        assert!(load(root.path(), &legacy).err().expect("a legacy manifest loads").to_string().contains("hnsw_rs"));
        remove_stale(root.path(), None);
        assert!(load(root.path(), &manifest).is_err());
    }

    /// A damaged file whose checksum was recorded after the damage (what the checksum cannot
    /// catch) is refused by the structure checks, or loads into a graph that searches in bounds.
    #[test]
    fn damage_behind_a_matching_checksum_never_leads_out_of_bounds() {
        let items: Vec<(Vec<f32>, u64)> = (0..300u64)
            .map(|i| (normalized(&[(i % 13) as f32 - 6.0, 1.0, (i % 7) as f32, (i % 5) as f32 - 2.0]).unwrap(), i))
            .collect();
        let index = Index::new(&HnswParams { m: 4, ef_construction: 20, ef_search: 10 }, 4, 300).unwrap();
        index.insert(&items).unwrap();
        let root = tempfile::tempdir().unwrap();
        let manifest = write(&index, root.path(), 300).unwrap();
        let path = root.path().join(&manifest.folder).join(GRAPH_FILE);
        let original = fs::read(&path).unwrap();
        let (mut refused, mut loaded) = (0, 0);
        for pos in (0..original.len()).step_by(7) {
            for value in [0xFFu8, 0x7F] {
                let mut bytes = original.clone();
                bytes[pos] = value;
                fs::write(&path, &bytes).unwrap();
                let mut m = manifest.clone();
                m.files[0].crc32 = crc32fast::hash(&bytes);
                match load(root.path(), &m) {
                    Err(_) => refused += 1,
                    Ok(damaged) => {
                        loaded += 1;
                        damaged.search(&items[5].0, 3, 10, None);
                        damaged.insert(&items[..2]).unwrap();
                    }
                }
            }
        }
        assert!(refused > 0 && loaded > 0, "refused {refused}, loaded {loaded}");
    }
}
