//! Index snapshots across formats: a store whose snapshots are hnsw_rs dumps (written before
//! isovec built its own graph, fixtures/store-d029160) opens, rebuilds its graph from the vectors
//! in sled, writes a snapshot in today's format, and the next open loads that one.

mod common;

use std::path::{Path, PathBuf};

use common::copy_dir;
use isovec::store::{SearchParams, Store};

const COLLECTIONS: [&str; 2] = ["raw", "whitened"];
const DOCS: usize = 6;

/// The one snapshot folder of a collection and the names of its files.
fn snapshot(store: &Path, collection: &str) -> (PathBuf, Vec<String>) {
    let root = store.join("index").join(collection);
    let snaps: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("snap-")))
        .collect();
    assert_eq!(snaps.len(), 1, "one snapshot folder in {}: {snaps:?}", root.display());
    let mut files: Vec<String> =
        std::fs::read_dir(&snaps[0]).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    (snaps[0].clone(), files)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Every stored document is found first by its own vector, and every score is the exact cosine.
fn searches_by_stored_vectors(store: &Store, name: &str) {
    let collection = store.collection(name).unwrap();
    assert_eq!(collection.count().unwrap(), DOCS as u64);
    let ids = collection.ids().unwrap();
    assert_eq!(ids.len(), DOCS);
    let vectors: Vec<Vec<f32>> = ids.iter().map(|id| collection.get(id).unwrap().unwrap().vector).collect();
    for (id, v) in ids.iter().zip(&vectors) {
        let hits = collection.search(v, &SearchParams::k(DOCS)).unwrap();
        assert_eq!(hits.len(), DOCS, "{name}/{id}");
        assert_eq!(&hits[0].id, id, "{name}: {hits:?}");
        for hit in &hits {
            let other = &vectors[ids.iter().position(|i| *i == hit.id).unwrap()];
            assert!((f64::from(hit.score) - cosine(v, other)).abs() < 1e-5, "{name}/{id} → {}", hit.id);
        }
    }
}

#[test]
fn a_store_with_hnsw_rs_snapshots_opens_and_rewrites_them() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-d029160/store");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&fixture, &dir);
    for name in COLLECTIONS {
        let (_, files) = snapshot(&dir, name);
        assert_eq!(files, ["index.hnsw.data", "index.hnsw.graph"], "the fixture holds hnsw_rs dumps");
    }

    let store = Store::open_existing(&dir).unwrap();
    let mut rewritten = Vec::new();
    for name in COLLECTIONS {
        searches_by_stored_vectors(&store, name);
        let stats = store.collection(name).unwrap().stats().unwrap();
        assert_eq!(stats.indexed_points, DOCS);
        assert_eq!(stats.snapshot_seq, Some(stats.seq), "{name}: the rebuild wrote a snapshot");
        // The old dump is gone; the new snapshot is one graph file.
        let (folder, files) = snapshot(&dir, name);
        assert_eq!(files, ["graph.isovec"], "{name}");
        rewritten.push(folder);
    }
    store.close().unwrap();

    // The next open loads the new snapshot (a rebuild would have written another folder).
    let store = Store::open_existing(&dir).unwrap();
    for (name, folder) in COLLECTIONS.iter().zip(&rewritten) {
        searches_by_stored_vectors(&store, name);
        assert_eq!(&snapshot(&dir, name).0, folder, "{name} was loaded, not rebuilt");
    }
}
