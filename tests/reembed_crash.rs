//! Re-embedding survives SIGKILL at any point: a child process re-embeds a collection from one
//! pipeline to the other and is killed after a varying number of batches (or not at all); after
//! each kill the store opens with one whole collection — every document, searchable, in one of
//! the two pipelines — and one generation of it on disk.
//!
//! The child is this same test binary, re-run with `ISOVEC_REEMBED_CHILD=<store dir>`: it
//! prints `batch` after each batch it re-encodes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::BagOfWords;
use isovec::progress::Progress;
use isovec::store::{SearchParams, Store, TextDoc};
use isovec::Embedder;

const CHILD_ENV: &str = "ISOVEC_REEMBED_CHILD";
const DOCS: usize = 3_000;

fn pipelines() -> [BagOfWords; 2] {
    [BagOfWords::named("first", 48), BagOfWords::named("second", 64)]
}

fn text_of(i: usize) -> String {
    format!("document w{i} about w{} and w{}", i * 7 % 1_000, i * 13 % 997)
}

/// Prints a line per batch for the parent to count.
struct Lines;

impl Progress for Lines {
    fn start(&self, _: &str, _: usize) {}
    fn advance(&self, _: usize) {
        let mut out = std::io::stdout().lock();
        writeln!(out, "batch").unwrap();
        out.flush().unwrap();
    }
}

/// The re-embedding run by the child: to the pipeline the collection is not in.
#[test]
fn reembed_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = Store::open_existing(&dir).expect("child opens the store");
    let current = store.collection("default").unwrap().config().pipeline.clone();
    let target = pipelines().into_iter().find(|p| *p.id() != current).unwrap();
    store.reembed("default", &target, &Lines).expect("reembed");
    store.close().unwrap();
    println!("done");
}

#[test]
fn a_killed_reembedding_leaves_one_whole_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let store = Store::open(&dir).unwrap();
        let first = &pipelines()[0];
        let c = store.create_collection("default", first.config()).unwrap();
        let docs: Vec<TextDoc> = (0..DOCS)
            .map(|i| TextDoc { id: format!("d{i}"), text: text_of(i), metadata: serde_json::json!({"i": i}) })
            .collect();
        for chunk in docs.chunks(500) {
            c.add_texts_with(first, chunk).unwrap();
        }
        store.close().unwrap();
    }
    // 3,000 documents are 12 batches of 256: kill after 0, 1, … batches, then let one finish.
    let kills = [0usize, 1, 3, 5, 8, 10, 11, 12];
    let mut finished = 0;
    for (run, &after) in kills.iter().chain([usize::MAX].iter()).enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "reembed_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        let mut batches = 0;
        let mut done = false;
        for line in lines.lines() {
            let line = line.unwrap();
            if line.trim() == "batch" {
                batches += 1;
            }
            done |= line.contains("done");
            if batches >= after && after != usize::MAX {
                // A little later than the batch, so kills land inside the work that follows it.
                std::thread::sleep(Duration::from_millis(3 * run as u64));
                child.kill().unwrap();
                break;
            }
        }
        let status = child.wait().unwrap();
        if after == usize::MAX {
            assert!(status.success() && done, "run {run}: the last re-embedding completes");
        }
        finished += usize::from(done);
        check_whole(&dir, run);
    }
    assert!(finished >= 1);
}

/// Opens the store: one collection with every document, searchable in its own pipeline, and
/// one generation on disk.
fn check_whole(dir: &std::path::Path, run: usize) {
    let store = Store::open_existing(dir).unwrap_or_else(|e| panic!("run {run}: the store does not open: {e}"));
    let c = store.collection("default").unwrap();
    assert_eq!(c.count().unwrap(), DOCS as u64, "run {run}");
    let config = c.config().clone();
    let pipelines = pipelines();
    let pipeline = pipelines.iter().find(|p| *p.id() == config.pipeline).expect("one of the two pipelines");
    assert_eq!(config.dims, pipeline.dims(), "run {run}");
    for i in (0..DOCS).step_by(397) {
        let doc = c.get(&format!("d{i}")).unwrap().unwrap_or_else(|| panic!("run {run}: d{i} is missing"));
        assert_eq!(doc.text, text_of(i));
        assert_eq!(doc.vector, pipeline.vector(&text_of(i)), "run {run}: d{i} is in the collection's pipeline");
        // A wide candidate list: these bag-of-words vectors tie by the hundred (scores of exactly
        // 0.8165 to many documents), where HNSW at the default ef can miss even an exact match
        // (1 search in about 30 runs under load); what is checked is that the document is in the
        // index, reachable in the graph.
        let hits = c.search_text_with(pipeline, &text_of(i), &SearchParams::k(1).with_ef(DOCS)).unwrap();
        assert_eq!(hits[0].id, format!("d{i}"), "run {run}");
    }
    store.close().unwrap();
    let folders = std::fs::read_dir(dir.join("index")).map(|d| d.count()).unwrap_or(0);
    assert!(folders <= 1, "run {run}: {folders} index folders left");
}
