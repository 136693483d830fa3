//! Many threads search while one writes; no error, and the final state is exact.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{doc, random_unit, BagOfWords};
use isovec::store::{Filter, SearchParams, Store};

const DIMS: usize = 32;

#[test]
fn eight_searchers_and_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let c = store.create_collection("default", emb.config()).unwrap();
    c.upsert(&(0..500).map(|i| doc(i, DIMS, 4)).collect::<Vec<_>>()).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let mut searchers = Vec::new();
    for t in 0..8u64 {
        let store = store.clone();
        let (stop, searches) = (stop.clone(), searches.clone());
        searchers.push(std::thread::spawn(move || {
            let c = store.collection("default").unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let filter = i.is_multiple_of(3).then(|| Filter::parse("group=1").unwrap());
                let hits = c
                    .search(&random_unit(t * 1_000_000 + i, DIMS), &SearchParams { filter, ..SearchParams::k(10) })
                    .unwrap();
                assert!(hits.len() == 10, "thread {t}: {} hits", hits.len());
                let unique: HashSet<&String> = hits.iter().map(|h| &h.id).collect();
                assert_eq!(unique.len(), hits.len(), "an id appears twice");
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score - 1e-6));
                i += 1;
                searches.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // The writer: inserts, replaces and deletes, tracking what must be live at the end.
    let mut live: HashSet<String> = (0..500).map(|i| format!("doc-{i}")).collect();
    let start = Instant::now();
    let mut next = 500u64;
    let mut round = 0u64;
    while start.elapsed() < Duration::from_millis(2500) {
        let batch: Vec<_> = (next..next + 20).map(|i| doc(i, DIMS, 4)).collect();
        next += 20;
        c.upsert(&batch).unwrap();
        live.extend(batch.iter().map(|d| d.id.clone()));
        // Replace some and delete some older ones.
        let replace = doc(round * 7 % next, DIMS, 4);
        if live.contains(&replace.id) {
            c.upsert(&[replace]).unwrap();
        }
        let victim = format!("doc-{}", (round * 13) % next);
        if live.remove(&victim) {
            assert_eq!(c.delete(&[victim.as_str()]).unwrap(), 1);
        }
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for s in searchers {
        s.join().unwrap();
    }
    assert!(searches.load(Ordering::Relaxed) > 100, "searchers made progress");
    assert_eq!(c.count().unwrap(), live.len() as u64);
    let stored: HashSet<String> = c.ids().unwrap().into_iter().collect();
    assert_eq!(stored, live);
    let all = c.search(&random_unit(1, DIMS), &SearchParams::k(live.len() + 100)).unwrap();
    let found: HashSet<String> = all.into_iter().map(|h| h.id).collect();
    assert_eq!(found, live);
    eprintln!("{} searches, {round} write rounds", searches.load(Ordering::Relaxed));
}

/// A document re-upserted in a loop (same text, same vector) never vanishes from a search:
/// it is the top hit of every dense, lexical and hybrid search for it while the writer runs.
#[test]
fn a_replaced_document_never_vanishes_from_searches() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let c = store.create_collection("default", emb.config()).unwrap();
    c.upsert(&(0..300).map(|i| doc(i, DIMS, 4)).collect::<Vec<_>>()).unwrap();
    let x = isovec::store::Doc {
        id: "x".into(),
        text: "zebra quagga okapi".into(),
        metadata: serde_json::json!({"group": 9}),
        vector: random_unit(424242, DIMS),
    };
    c.upsert(std::slice::from_ref(&x)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for t in 0..4usize {
        let (c, x, stop, checked) = (c.clone(), x.clone(), stop.clone(), checked.clone());
        readers.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let params = SearchParams::k(3);
                let hits = match (t + n) % 3 {
                    0 => c.search(&x.vector, &params).unwrap(),
                    1 => {
                        c.search_lexical("okapi quagga", &params.with_mode(isovec::store::SearchMode::Lexical)).unwrap()
                    }
                    _ => c
                        .search_hybrid(&x.vector, "okapi quagga", &params.with_mode(isovec::store::SearchMode::Hybrid))
                        .unwrap(),
                };
                assert_eq!(hits.first().map(|h| h.id.as_str()), Some("x"), "reader {t}, search {n}: {hits:?}");
                assert_eq!(hits[0].text, x.text);
                assert_eq!(hits[0].metadata, x.metadata);
                n += 1;
            }
            checked.fetch_add(n, Ordering::Relaxed);
        }));
    }
    let start = Instant::now();
    let mut writes = 0;
    while start.elapsed() < Duration::from_secs(3) || writes < 200 {
        c.upsert(std::slice::from_ref(&x)).unwrap();
        writes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(checked.load(Ordering::Relaxed) > 100, "the readers ran");
    assert_eq!(c.count().unwrap(), 301);
}

/// Dropping a collection while another thread upserts into it: the writer gets Ok or a typed
/// "dropped" error, never a panic; the store reopens; a collection re-created under the name
/// is empty.
#[test]
fn dropping_a_collection_waits_for_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    for round in 0..5u64 {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let c = store.get_or_create_collection("default", emb.config()).unwrap();
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut outcomes = (0usize, 0usize);
                for i in 0.. {
                    let docs: Vec<_> = (0..20).map(|j| doc(round * 1_000_000 + i * 20 + j, DIMS, 4)).collect();
                    match c.upsert(&docs) {
                        Ok(_) => outcomes.0 += 1,
                        Err(isovec::Error::Dropped { collection }) => {
                            assert_eq!(collection, "default");
                            outcomes.1 += 1;
                            break;
                        }
                        Err(e) => panic!("round {round}: the writer got {e}"),
                    }
                    if i % 7 == 3 {
                        match c.snapshot() {
                            Ok(()) | Err(isovec::Error::Dropped { .. }) => {}
                            Err(e) => panic!("round {round}: a snapshot got {e}"),
                        }
                    }
                }
                outcomes
            })
        };
        std::thread::sleep(Duration::from_millis(20 + 15 * round));
        assert!(store.drop_collection("default").unwrap());
        let (written, dropped) = writer.join().expect("the writer panicked");
        assert_eq!(dropped, 1, "round {round}: the writer ends with the dropped error ({written} writes before)");
        drop(c);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.list_collections().unwrap().is_empty(), "round {round}");
        let again = store.create_collection("default", emb.config()).unwrap();
        assert_eq!(again.count().unwrap(), 0);
        assert!(again.search(&random_unit(7, DIMS), &SearchParams::k(5)).unwrap().is_empty());
        assert!(store.drop_collection("default").unwrap());
    }
}
