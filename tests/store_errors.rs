//! Store errors are typed: a caller can tell a locked store, a directory that is not a store, a
//! format from another version, a damaged marker and a dropped collection apart by variant.

mod common;

use common::{doc, BagOfWords};
use isovec::store::Store;
use isovec::Error;

const MARKER: &str = "isovec-store.json";

#[test]
fn opening_stores_fails_with_the_variant_that_says_why() {
    let dir = tempfile::tempdir().unwrap();

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "hello").unwrap();
    match Store::open(&other) {
        Err(Error::NotAStore { path }) => assert_eq!(path, other),
        r => panic!("a non-empty directory: {:?}", r.err()),
    }

    let missing = dir.path().join("missing");
    match Store::open_existing(&missing) {
        Err(Error::NoStore { path }) => assert_eq!(path, missing),
        r => panic!("a missing store: {:?}", r.err()),
    }
    assert!(!missing.exists(), "open_existing creates nothing");

    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    match Store::open(&path) {
        Err(e @ Error::Locked { .. }) => {
            let Error::Locked { path: locked, holder, .. } = &e else { unreachable!() };
            assert_eq!(locked, &path);
            assert_eq!(holder.as_deref(), Some(std::process::id().to_string().as_str()));
            assert!(e.to_string().contains("already open by process"), "{e}");
        }
        r => panic!("a store open elsewhere: {:?}", r.err()),
    }
    drop(store);

    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    std::fs::write(newer.join(MARKER), r#"{"kind": "isovec", "format": 99}"#).unwrap();
    match Store::open(&newer) {
        Err(Error::VersionMismatch { path, found, kind, supported }) => {
            assert_eq!((path, found, kind.as_str()), (newer.clone(), 99, "isovec"));
            assert_ne!(supported, 99);
        }
        r => panic!("a store of another format: {:?}", r.err()),
    }

    let garbled = dir.path().join("garbled");
    std::fs::create_dir(&garbled).unwrap();
    std::fs::write(garbled.join(MARKER), "not json").unwrap();
    match Store::open(&garbled) {
        Err(Error::Damaged { path, what }) => {
            assert_eq!(path, Some(garbled.join(MARKER)));
            assert!(what.contains("not a readable isovec store"), "{what}");
        }
        r => panic!("a damaged marker: {:?}", r.err()),
    }
    assert_eq!(std::fs::read_to_string(garbled.join(MARKER)).unwrap(), "not json", "the marker is left as it was");
}

#[test]
fn a_dropped_collection_says_so_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let emb = BagOfWords::new(8);
    let notes = store.create_collection("notes", emb.config()).unwrap();
    notes.upsert(&[doc(1, 8, 1)]).unwrap();
    assert!(store.drop_collection("notes").unwrap());
    match notes.upsert(&[doc(2, 8, 1)]) {
        Err(Error::Dropped { collection }) => assert_eq!(collection, "notes"),
        r => panic!("a write to a dropped collection: {:?}", r.err()),
    }
}

#[test]
fn names_that_differ_only_in_case_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let emb = BagOfWords::new(8);
    store.create_collection("Notes", emb.config()).unwrap().upsert(&[doc(1, 8, 1)]).unwrap();
    for other in ["notes", "NOTES", "nOtEs"] {
        match store.create_collection(other, emb.config()) {
            Err(Error::InvalidInput(m)) => assert!(m.contains("only in case") && m.contains("\"Notes\""), "{m}"),
            r => panic!("{other}: {:?}", r.map(|c| c.name().to_string())),
        }
        assert!(store.get_or_create_collection(other, emb.config()).is_err());
    }
    // The first one is untouched, and a name that differs otherwise is fine.
    assert_eq!(store.collection("Notes").unwrap().count().unwrap(), 1);
    store.create_collection("notes2", emb.config()).unwrap();
    assert_eq!(store.list_collections().unwrap().len(), 2);
}
