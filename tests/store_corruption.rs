//! Damaged or missing snapshots lead to a rebuild from sled and correct results, never a crash.

mod common;

use std::path::{Path, PathBuf};

use common::{doc, exact_ids, random_unit, BagOfWords};
use isovec::store::{Doc, SearchParams, Store};

const DIMS: usize = 24;
/// Files in a snapshot folder: the graph file.
const SNAPSHOT_FILES: usize = 1;

fn build(dir: &Path) -> Vec<Doc> {
    let emb = BagOfWords::new(DIMS);
    let docs: Vec<Doc> = (0..300).map(|i| doc(i, DIMS, 3)).collect();
    let store = Store::open(dir).unwrap();
    let c = store.create_collection("default", emb.config()).unwrap();
    c.upsert(&docs).unwrap();
    c.delete(&["doc-10"]).unwrap();
    drop(c);
    store.close().unwrap();
    docs.into_iter().filter(|d| d.id != "doc-10").collect()
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let root = dir.join("index").join("default");
    let snaps: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("snap-")))
        .collect();
    assert_eq!(snaps.len(), 1, "one snapshot folder: {snaps:?}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&snaps[0]).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), SNAPSHOT_FILES, "the graph file: {files:?}");
    files
}

fn check_rebuilt_and_correct(dir: &Path, live: &[Doc]) {
    let store = Store::open(dir).unwrap();
    let c = store.collection("default").unwrap();
    let stats = c.stats().unwrap();
    assert_eq!(stats.documents, live.len() as u64);
    assert_eq!(stats.indexed_points, live.len(), "rebuilt from the live vectors only");
    for q in 0..10 {
        let query = random_unit(777 + q, DIMS);
        let hits = c.search(&query, &SearchParams::k(5).with_ef(300)).unwrap();
        let got: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
        assert_eq!(got, exact_ids(&query, live, 5));
    }
    drop(c);
    drop(store);
    // The rebuild wrote a fresh snapshot that the next open loads.
    let store = Store::open(dir).unwrap();
    let stats = store.collection("default").unwrap().stats().unwrap();
    assert_eq!(stats.snapshot_seq, Some(stats.seq));
}

#[test]
fn bit_flips_in_any_snapshot_file_lead_to_a_rebuild() {
    for which in 0..SNAPSHOT_FILES {
        let dir = tempfile::tempdir().unwrap();
        let live = build(dir.path());
        let file = &snapshot_files(dir.path())[which];
        let mut bytes = std::fs::read(file).unwrap();
        for pos in [0, bytes.len() / 3, bytes.len() - 1] {
            bytes[pos] ^= 0x41;
        }
        std::fs::write(file, &bytes).unwrap();
        check_rebuilt_and_correct(dir.path(), &live);
    }
}

#[test]
fn truncated_or_missing_snapshots_lead_to_a_rebuild() {
    for which in 0..SNAPSHOT_FILES {
        let dir = tempfile::tempdir().unwrap();
        let live = build(dir.path());
        let file = &snapshot_files(dir.path())[which];
        let bytes = std::fs::read(file).unwrap();
        std::fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
        check_rebuilt_and_correct(dir.path(), &live);
    }
    let dir = tempfile::tempdir().unwrap();
    let live = build(dir.path());
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    check_rebuilt_and_correct(dir.path(), &live);
}
