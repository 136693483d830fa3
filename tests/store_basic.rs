//! Store behaviour: reopen, upserts and deletes under filters, bad input, collections.

mod common;

use std::collections::HashSet;

use common::{copy_dir, doc, exact_ids, random_unit, BagOfWords};
use isovec::store::{Doc, Filter, SearchParams, Store, TextDoc};
use isovec::Error;
use serde_json::json;

const DIMS: usize = 32;

fn ids(hits: &[isovec::store::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

#[test]
fn reopen_gives_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let docs: Vec<Doc> = (0..500).map(|i| doc(i, DIMS, 5)).collect();
    let queries: Vec<Vec<f32>> = (0..20).map(|q| random_unit(10_000 + q, DIMS)).collect();
    let params = SearchParams::k(10).with_ef(64);
    let before: Vec<Vec<(String, f32)>> = {
        let store = Store::open(dir.path()).unwrap();
        let c = store.create_collection("default", emb.config()).unwrap();
        c.upsert(&docs).unwrap();
        c.delete(&["doc-3", "doc-4"]).unwrap();
        let res = queries
            .iter()
            .map(|q| c.search(q, &params).unwrap().into_iter().map(|h| (h.id, h.score)).collect())
            .collect();
        store.close().unwrap();
        res
    };
    let store = Store::open(dir.path()).unwrap();
    let c = store.collection("default").unwrap();
    assert_eq!(c.count().unwrap(), 498);
    let stats = c.stats().unwrap();
    assert_eq!(stats.snapshot_seq, Some(stats.seq), "the reopen came from the snapshot");
    for (q, expected) in queries.iter().zip(&before) {
        let got: Vec<(String, f32)> = c.search(q, &params).unwrap().into_iter().map(|h| (h.id, h.score)).collect();
        assert_eq!(&got, expected);
    }
    // And the results are the exact neighbours (small set, wide ef).
    let live: Vec<Doc> = docs.into_iter().filter(|d| d.id != "doc-3" && d.id != "doc-4").collect();
    let mut agree = 0;
    for (q, got) in queries.iter().zip(&before) {
        let exact = exact_ids(q, &live, 10);
        agree += got.iter().filter(|(id, _)| exact.contains(id)).count();
    }
    assert!(agree >= 190, "recall {agree}/200");
    let got = c.get("doc-7").unwrap().unwrap();
    assert_eq!(got.text, "document number 7");
    assert_eq!(got.metadata, json!({"group": 2, "n": 7}));
    assert_eq!(got.vector, random_unit(7, DIMS));
    assert!(c.get("doc-3").unwrap().is_none());
}

#[test]
fn writes_after_the_snapshot_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    {
        let store = Store::open(dir.path()).unwrap();
        let c = store.create_collection("c", emb.config()).unwrap();
        c.upsert(&(0..100).map(|i| doc(i, DIMS, 3)).collect::<Vec<_>>()).unwrap();
        store.snapshot().unwrap();
        c.upsert(&(100..150).map(|i| doc(i, DIMS, 3)).collect::<Vec<_>>()).unwrap();
        c.delete(&["doc-5"]).unwrap();
        // Simulate a crash: no snapshot on close.
        std::mem::forget(store);
    }
    // The forgotten handle still holds the lock in this process; a real crash releases it.
    // Copy the directory to stand in for the state a crashed process leaves on disk.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    std::fs::remove_file(copy.path().join("LOCK")).unwrap();
    let store = Store::open(copy.path()).unwrap();
    let c = store.collection("c").unwrap();
    assert_eq!(c.count().unwrap(), 149);
    let stats = c.stats().unwrap();
    assert!(stats.snapshot_seq.unwrap() < stats.seq, "the snapshot predates the last writes");
    for i in [0u64, 99, 100, 149] {
        let hits = c.search(&random_unit(i, DIMS), &SearchParams::k(1)).unwrap();
        assert_eq!(hits[0].id, format!("doc-{i}"));
        assert!((hits[0].score - 1.0).abs() < 1e-5);
    }
    let hits = c.search(&random_unit(5, DIMS), &SearchParams::k(149)).unwrap();
    assert_eq!(hits.len(), 149);
    assert!(!ids(&hits).contains(&"doc-5".to_string()));
}

#[test]
fn deletes_and_upserts_never_leak_into_filtered_results() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("c", emb.config()).unwrap();
    let n = 1000u64;
    c.upsert(&(0..n).map(|i| doc(i, DIMS, 4)).collect::<Vec<_>>()).unwrap();
    // Delete every third document, and replace every fifth with a new vector and group 9.
    let deleted: Vec<String> = (0..n).filter(|i| i % 3 == 0).map(|i| format!("doc-{i}")).collect();
    assert_eq!(c.delete(&deleted).unwrap(), deleted.len());
    let replaced: Vec<Doc> = (0..n)
        .filter(|i| i % 5 == 0 && i % 3 != 0)
        .map(|i| Doc {
            metadata: json!({"group": 9, "n": i}),
            vector: random_unit(i + 50_000, DIMS),
            ..doc(i, DIMS, 4)
        })
        .collect();
    let report = c.upsert(&replaced).unwrap();
    assert_eq!((report.inserted, report.replaced), (0, replaced.len()));
    let deleted: HashSet<String> = deleted.into_iter().collect();
    // Live documents, as the test itself tracks them.
    let mut live: Vec<Doc> = (0..n).filter(|i| i % 3 != 0).map(|i| doc(i, DIMS, 4)).collect();
    for r in &replaced {
        let slot = live.iter_mut().find(|d| d.id == r.id).unwrap();
        *slot = r.clone();
    }
    assert_eq!(c.count().unwrap(), live.len() as u64);
    let filters = [
        ("group=1", Filter::parse("group=1").unwrap()),
        ("group IN (0,2)", Filter::parse("group IN (0, 2)").unwrap()),
        ("n>=100 AND n<300", Filter::parse("n>=100 AND n<300").unwrap()),
        ("group=9", Filter::parse("group=9").unwrap()),
        ("n<20", Filter::parse("n<20").unwrap()),
    ];
    for q in 0..10u64 {
        // Queries equal to replaced documents' OLD vectors must not return them with score 1.
        let query = random_unit(q * 5 + 5, DIMS);
        for (name, f) in &filters {
            let allowed: Vec<Doc> = live.iter().filter(|d| f.matches(&d.metadata)).cloned().collect();
            let hits = c.search(&query, &SearchParams::k(10).with_filter(f.clone())).unwrap();
            assert_eq!(hits.len(), 10.min(allowed.len()), "{name}");
            for h in &hits {
                assert!(!deleted.contains(&h.id), "{name}: deleted {} returned", h.id);
                assert!(f.matches(&h.metadata), "{name}: {} does not match", h.id);
                let d = allowed.iter().find(|d| d.id == h.id).unwrap();
                // The score is that of the current vector, not a replaced one.
                let cos: f32 = d.vector.iter().zip(&query).map(|(a, b)| a * b).sum();
                assert!((cos - h.score).abs() < 1e-4, "{name}: stale vector for {}", h.id);
            }
            let exact = exact_ids(&query, &allowed, 10);
            let overlap = hits.iter().filter(|h| exact.contains(&h.id)).count();
            assert!(overlap >= 9, "{name}: recall {overlap}/10");
        }
    }
    // k larger than the collection: every live document, each once.
    let all = c.search(&random_unit(1, DIMS), &SearchParams::k(5000)).unwrap();
    assert_eq!(all.len(), live.len());
    assert_eq!(all.iter().map(|h| &h.id).collect::<HashSet<_>>().len(), live.len());
}

/// A document upserted again unchanged leaves copies of its vector in the graph, tombstoned but
/// one; after many more documents arrive, the live copy is still what a search by that vector
/// finds (the graph's neighbour lists used to keep the oldest copy and drop the live one).
#[test]
fn a_document_upserted_again_unchanged_stays_findable() {
    let dims = 128;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("c", BagOfWords::new(dims).config()).unwrap();
    let repeated: Vec<Doc> = (0..10).map(|i| doc(1_000_000 + i, dims, 1)).collect();
    let mut next = 0;
    // An ingest loop of small batches, each re-sending one of the ten documents unchanged (too
    // few replaced copies for a compaction to drop them).
    for b in 0..300 {
        let mut batch: Vec<Doc> = (next..next + 6).map(|i| doc(i, dims, 1)).collect();
        next += 6;
        batch.push(repeated[b % repeated.len()].clone());
        c.upsert(&batch).unwrap();
    }
    // Then many new documents.
    for _ in 0..9 {
        c.upsert(&(next..next + 1000).map(|i| doc(i, dims, 1)).collect::<Vec<_>>()).unwrap();
        next += 1000;
    }
    let stats = c.stats().unwrap();
    assert_eq!(stats.tombstones, 290, "each repeated document left 29 replaced copies");
    assert_eq!(stats.documents, next + 10);
    for d in &repeated {
        let hits = c.search(&d.vector, &SearchParams::k(1)).unwrap();
        assert_eq!(hits.first().map(|h| h.id.as_str()), Some(d.id.as_str()), "a search by its vector");
    }
}

#[test]
fn many_deletes_compact_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("c", emb.config()).unwrap();
    c.upsert(&(0..400).map(|i| doc(i, DIMS, 4)).collect::<Vec<_>>()).unwrap();
    let gone: Vec<String> = (0..150).map(|i| format!("doc-{i}")).collect();
    c.delete(&gone).unwrap();
    let stats = c.stats().unwrap();
    assert_eq!(stats.tombstones, 0, "150 of 400 deleted passes the threshold");
    assert_eq!(stats.indexed_points, 250);
    assert_eq!(stats.documents, 250);
    let hits = c.search(&random_unit(200, DIMS), &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, "doc-200");
    // A few deletes stay as tombstones until an explicit compaction.
    c.delete(&["doc-200", "doc-201"]).unwrap();
    assert_eq!(c.stats().unwrap().tombstones, 2);
    c.compact().unwrap();
    let stats = c.stats().unwrap();
    assert_eq!((stats.tombstones, stats.indexed_points), (0, 248));
    drop(c);
    store.close().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = store.collection("c").unwrap();
    assert_eq!(c.stats().unwrap().indexed_points, 248);
    assert_ne!(c.search(&random_unit(200, DIMS), &SearchParams::k(1)).unwrap()[0].id, "doc-200");
}

#[test]
fn text_search_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(64);
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("default", emb.config()).unwrap();
    let docs = vec![
        TextDoc { id: "a".into(), text: "the cat sat on the mat".into(), metadata: json!({"topic": "pets"}) },
        TextDoc {
            id: "b".into(),
            text: "stock markets fell sharply today".into(),
            metadata: json!({"topic": "finance"}),
        },
        TextDoc { id: "a".into(), text: "a cat chased the mouse".into(), metadata: json!({"topic": "pets"}) },
    ];
    let report = c.add_texts_with(&emb, &docs).unwrap();
    assert_eq!(report.duplicate_ids, vec!["a".to_string()]);
    assert_eq!((report.inserted, report.replaced), (2, 0));
    assert_eq!(c.get("a").unwrap().unwrap().text, "a cat chased the mouse");
    let hits = c.search_text_with(&emb, "markets today", &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, "b");

    // Wrong dimension, for documents and queries.
    let bad = Doc { id: "x".into(), text: "t".into(), metadata: json!({}), vector: vec![1.0; 3] };
    assert!(matches!(c.upsert(&[bad]), Err(Error::Dimension { expected: 64, found: 3 })));
    assert!(matches!(c.search(&[1.0; 5], &SearchParams::k(1)), Err(Error::Dimension { .. })));
    // A failed batch writes nothing, even its valid documents.
    let mixed = vec![
        Doc { id: "ok".into(), text: "fine".into(), metadata: json!({}), vector: emb.vector("fine") },
        Doc { id: "zero".into(), text: "zero".into(), metadata: json!({}), vector: vec![0.0; 64] },
    ];
    assert!(c.upsert(&mixed).is_err());
    assert!(c.get("ok").unwrap().is_none());
    // Empty text.
    let empty = [TextDoc { id: "e".into(), text: "  ".into(), metadata: json!(null) }];
    let err = c.add_texts_with(&emb, &empty).unwrap_err().to_string();
    assert!(err.contains("\"e\"") && err.contains("empty"), "{err}");
    // Another pipeline names both.
    let other = BagOfWords::named("other-model", 64);
    let err = c.search_text_with(&other, "cat", &SearchParams::k(1)).unwrap_err();
    assert!(matches!(err, Error::PipelineMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains("test-bag-of-words") && msg.contains("other-model"), "{msg}");
    assert_eq!(c.count().unwrap(), 2);
}

#[test]
fn store_directories_and_collections() {
    let dir = tempfile::tempdir().unwrap();
    // Not a store.
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let err = Store::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("not an isovec store"), "{err}");
    assert!(Store::open_existing(dir.path().join("missing")).is_err());
    // A second open of the same store fails at once with a clear message.
    let path = dir.path().join("s");
    let store = Store::open(&path).unwrap();
    let start = std::time::Instant::now();
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.contains("already open"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    // Collections: create, list, drop.
    let emb = BagOfWords::new(8);
    store.create_collection("one", emb.config()).unwrap();
    let two = store.create_collection("two", emb.config()).unwrap();
    assert!(store.create_collection("two", emb.config()).is_err());
    assert!(store.create_collection("bad/name", emb.config()).is_err());
    two.upsert(&[doc(1, 8, 1)]).unwrap();
    let names: Vec<String> = store.list_collections().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["one", "two"]);
    assert!(store.drop_collection("two").unwrap());
    assert!(two.upsert(&[doc(2, 8, 1)]).is_err(), "a dropped collection refuses writes");
    let err = store.collection("two").err().unwrap().to_string();
    assert!(err.contains("one"), "the error lists existing collections: {err}");
    let again = store.create_collection("two", emb.config()).unwrap();
    assert_eq!(again.count().unwrap(), 0);
    drop(store);
    // A live collection handle keeps the store locked, with the same clear message.
    assert!(Store::open_existing(&path).err().unwrap().to_string().contains("already open"));
    drop((two, again));
    assert!(Store::open_existing(&path).is_ok());
}
