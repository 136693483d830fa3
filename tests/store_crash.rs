//! Crash safety: a child process ingesting in a loop is killed with SIGKILL at random moments;
//! after each kill every acknowledged document is present and searchable (dense and lexical),
//! and counts match.
//!
//! The child is this same test binary, re-run with `ISOVEC_CRASH_CHILD=<store dir>`: it then
//! ingests forever, printing `ack <id>` after each write returns.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use common::BagOfWords;
use isovec::store::{Doc, SearchMode, SearchParams, Store};
use rand::Rng;
use serde_json::json;

const DIMS: usize = 128;
const CHILD_ENV: &str = "ISOVEC_CRASH_CHILD";
const RUN_ENV: &str = "ISOVEC_CRASH_RUN";
/// How many times to kill the child (default 22); `scripts/soak.sh` raises it.
const KILLS_ENV: &str = "ISOVEC_CRASH_KILLS";

fn text_of(id: &str) -> String {
    format!("crash test document {id}")
}

/// A distinct pseudo-random vector per id, so a document is its own nearest neighbour.
fn vector_of(id: &str) -> Vec<f32> {
    let seed = id.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    common::random_unit(seed, DIMS)
}

/// The ingest loop run by the child; does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let run: u64 = std::env::var(RUN_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let emb = BagOfWords::new(DIMS);
    let store = Store::open(&dir).expect("child opens the store");
    let c = store.get_or_create_collection("default", emb.config()).expect("collection");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for i in 0u64.. {
        // Batches of 1–4 documents; sometimes a re-upsert of a document of this run, sometimes
        // a snapshot, so kills land in every phase.
        let n = 1 + (i % 4);
        let mut ids: Vec<String> = (0..n).map(|j| format!("r{run}-{}", i * 4 + j)).collect();
        if i % 7 == 6 {
            ids.push(format!("r{run}-0"));
        }
        let docs: Vec<Doc> = ids
            .into_iter()
            .map(|id| Doc { text: text_of(&id), metadata: json!({"run": run}), vector: vector_of(&id), id })
            .collect();
        c.upsert(&docs).expect("upsert");
        for d in &docs {
            writeln!(out, "ack {}", d.id).unwrap();
        }
        out.flush().unwrap();
        if i % 25 == 24 {
            c.snapshot().expect("snapshot");
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashSet<String> = HashSet::new();
    let mut rng = rand::rng();
    let started = Instant::now();
    let runs: usize = match std::env::var(KILLS_ENV) {
        Ok(n) => n.parse().unwrap_or_else(|_| panic!("{KILLS_ENV}={n:?} is not a number of kills")),
        Err(_) => 22,
    };
    for run in 0..runs {
        let mut child = common::ChildRun::spawn(
            "crash_child",
            &[(CHILD_ENV, dir.path().as_os_str()), (RUN_ENV, run.to_string().as_ref())],
        );
        // Wait until the child has the store open (slow on a loaded machine), then kill it at
        // a random moment of its ingest loop.
        child.wait_ready(Duration::from_secs(60), &format!("run {run}"));
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        let lines = child.kill(); // SIGKILL on Unix
        let new: Vec<String> = lines.iter().filter_map(|l| l.strip_prefix("ack ")).map(str::to_string).collect();
        acked.extend(new);

        let store = Store::open(dir.path()).unwrap();
        let c = store.collection("default").unwrap();
        let stored: HashSet<String> = c.ids().unwrap().into_iter().collect();
        assert_eq!(c.count().unwrap(), stored.len() as u64, "run {run}: count matches the documents");
        let missing: Vec<&String> = acked.difference(&stored).collect();
        assert!(missing.is_empty(), "run {run}: acknowledged but lost: {missing:?}");
        // At most the one batch in flight per run (5 documents) may be stored unacknowledged.
        assert!(stored.len() <= acked.len() + 5 * (run + 1), "run {run}: unexpected documents");
        // Every acknowledged document of this run is searchable by its text.
        let prefix = format!("r{run}-");
        for id in acked.iter().filter(|id| id.starts_with(&prefix)).chain(acked.iter().take(20)) {
            let hits = c.search(&vector_of(id), &SearchParams::k(1)).unwrap();
            assert_eq!(hits.first().map(|h| h.id.as_str()), Some(id.as_str()), "run {run}: {id} not searchable");
            assert_eq!(hits[0].text, text_of(id));
        }
        let all = c.search(&vector_of("any"), &SearchParams::k(stored.len() + 10)).unwrap();
        assert_eq!(all.len(), stored.len(), "run {run}: every stored document is in the index");
        // The text index, replayed on open, finds every stored document, and each acknowledged
        // document of this run by its own words.
        let lexical = SearchParams::k(stored.len() + 10).with_mode(SearchMode::Lexical);
        let found: HashSet<String> = c.search_lexical("crash", &lexical).unwrap().into_iter().map(|h| h.id).collect();
        assert_eq!(found, stored, "run {run}: lexical search finds exactly the stored documents");
        for id in acked.iter().filter(|id| id.starts_with(&prefix)) {
            let hits = c.search_lexical(&text_of(id), &SearchParams::k(1).with_mode(SearchMode::Lexical)).unwrap();
            assert_eq!(
                hits.first().map(|h| h.id.as_str()),
                Some(id.as_str()),
                "run {run}: {id} not found by its words"
            );
        }
        drop(c);
        drop(store);
    }
    assert!(acked.len() > 100, "the children acknowledged only {} documents", acked.len());
    // Every run checked that no acknowledged document was lost, so the count of losses is 0.
    eprintln!("{runs} kills, {} acknowledged documents, 0 lost, {:?}", acked.len(), started.elapsed());
}
