//! Stored data the store cannot trust: a damaged collection configuration or vector record is a
//! clear error on every path (open, list, rebuild), never an exit or a panic, and names that
//! would lead outside the store are refused before anything is deleted.

mod common;

use std::path::Path;

use common::{doc, open_sled, BagOfWords};
use isovec::store::layout::VectorRecord;
use isovec::store::{Doc, SearchParams, Store};

const DIMS: usize = 8;

/// A store with collections `notes` and `other` (20 documents each), closed.
fn build(dir: &Path) {
    let emb = BagOfWords::new(DIMS);
    let docs: Vec<Doc> = (0..20).map(|i| doc(i, DIMS, 2)).collect();
    let store = Store::open(dir).unwrap();
    for name in ["notes", "other"] {
        store.create_collection(name, emb.config()).unwrap().upsert(&docs).unwrap();
    }
    store.close().unwrap();
}

/// Rewrites the stored configuration of `notes` with `field` (a JSON pointer) set to `value`.
fn damage_config(dir: &Path, field: &str, value: serde_json::Value) {
    let db = open_sled(dir);
    let configs = db.open_tree("collections").unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&configs.get("notes").unwrap().unwrap()).unwrap();
    *config.pointer_mut(field).unwrap_or_else(|| panic!("no {field} in the config")) = value;
    configs.insert("notes", serde_json::to_vec(&config).unwrap()).unwrap();
    db.flush().unwrap();
}

fn assert_damaged(result: isovec::Result<impl Sized>, what: &str) {
    let Err(e) = result else { panic!("{what}: a damaged configuration was accepted") };
    let message = e.to_string();
    assert!(
        matches!(e, isovec::Error::Damaged { .. })
            && message.contains("collection \"notes\"")
            && message.contains("damaged"),
        "{what}: {message}"
    );
}

#[test]
fn a_damaged_stored_config_is_an_error_on_every_path_and_the_process_survives() {
    // hnsw_rs 0.3 calls process::exit(1) on m > 256; the others loop, panic or exhaust memory.
    let cases = [
        ("/hnsw/m", serde_json::json!(10_000)),
        ("/hnsw/m", serde_json::json!(0)),
        ("/hnsw/ef_construction", serde_json::json!(0)),
        ("/hnsw/ef_search", serde_json::json!(u64::MAX)),
        ("/dims", serde_json::json!(0)),
    ];
    let emb = BagOfWords::new(DIMS);
    for (field, value) in cases {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        damage_config(dir.path(), field, value.clone());
        let case = format!("{field} = {value}");
        // With its snapshot, and without it (the rebuild path).
        for rebuild in [false, true] {
            if rebuild {
                std::fs::remove_dir_all(dir.path().join("index").join("notes")).unwrap();
            }
            let store = Store::open(dir.path()).unwrap();
            assert_damaged(store.collection("notes"), &format!("open, {case}"));
            assert_damaged(store.get_or_create_collection("notes", emb.config()), &format!("get_or_create, {case}"));
            assert_damaged(store.list_collections(), &format!("list, {case}"));
            // The other collection is untouched and searchable.
            let other = store.collection("other").unwrap();
            assert_eq!(other.search(&emb.vector("document number 3"), &SearchParams::k(3)).unwrap().len(), 3);
        }
        // The damaged collection can be dropped and created again.
        let store = Store::open(dir.path()).unwrap();
        assert!(store.drop_collection("notes").unwrap(), "{case}");
        let notes = store.create_collection("notes", emb.config()).unwrap();
        notes.upsert(&[doc(1, DIMS, 2)]).unwrap();
        notes.compact().unwrap();
        assert_eq!(store.list_collections().unwrap().len(), 2);
    }
}

#[test]
fn a_vector_record_of_the_wrong_dimension_is_an_error_when_the_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    {
        let db = open_sled(dir.path());
        let tree = db.open_tree("col/notes").unwrap();
        let (key, value) = tree.scan_prefix(b"v").next().unwrap().unwrap();
        let record = VectorRecord::decode(&value).unwrap();
        tree.insert(key, VectorRecord::encode(&record.external_id, &[0.5; 3])).unwrap();
        db.flush().unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("index").join("notes")).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = store.collection("notes").err().expect("a damaged vector record was indexed").to_string();
    assert!(err.contains("3 dimensions") && err.contains("restore it from a backup or re-index"), "{err}");
    assert_eq!(store.collection("other").unwrap().stats().unwrap().indexed_points, 20);
}

#[test]
fn names_that_leave_the_store_are_refused_and_nothing_is_deleted() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("store");
    build(&dir);
    // Things a `../..` would reach: the store's parent and a sibling folder.
    std::fs::write(outer.path().join("keep.txt"), "keep").unwrap();
    std::fs::create_dir(outer.path().join("index")).unwrap();
    std::fs::write(outer.path().join("index").join("keep.txt"), "keep").unwrap();
    let store = Store::open(&dir).unwrap();
    for name in ["../..", "..", "../index", "../../index", "notes/../..", "/tmp", ".", "", "a\0b"] {
        let err = store.drop_collection(name).expect_err(name).to_string();
        assert!(err.contains("invalid collection name"), "{name:?}: {err}");
        assert!(store.collection(name).is_err(), "{name:?}");
        assert!(store.create_collection(name, BagOfWords::new(DIMS).config()).is_err(), "{name:?}");
    }
    assert_eq!(std::fs::read_to_string(outer.path().join("keep.txt")).unwrap(), "keep");
    assert_eq!(std::fs::read_to_string(outer.path().join("index").join("keep.txt")).unwrap(), "keep");
    // The store itself is whole.
    assert!(dir.join("index").join("notes").is_dir());
    assert_eq!(store.collection("notes").unwrap().stats().unwrap().documents, 20);
}
