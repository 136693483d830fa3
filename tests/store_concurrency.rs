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
                let filter = (i % 3 == 0).then(|| Filter::parse("group=1").unwrap());
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
