//! End to end: `isovec eval retrieval` on a tiny BEIR-layout fixture with the default model,
//! dense rows and `bm25` / `hybrid:` rows.

use std::path::Path;
use std::process::Command;

use isovec::test_support::default_model;

/// Runs `isovec eval retrieval` on the fixture with `args` (pipelines and options); returns its
/// stdout, stderr and the rows it wrote, after checking it succeeded.
fn eval_on_fixture(args: &[&str]) -> (String, String, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("rows.json");
    let run = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["eval", "retrieval", "--data"])
        .arg(root.join("fixtures"))
        .args(["--dataset", "beir-tiny", "--split", "test"])
        .args(args)
        .arg("--store")
        .arg(out.path().join("store"))
        .arg("--json")
        .arg(&json)
        .env_remove("ISOVEC_MODEL")
        .output()
        .expect("the isovec binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "failed:\n{stdout}\n{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (stdout, stderr, rows)
}

#[test]
fn eval_retrieval_on_the_tiny_fixture() {
    if default_model().is_none() {
        return;
    }
    let (stdout, _, rows) = eval_on_fixture(&[
        "--pipelines",
        "raw,whiten-8,flow",
        // A small, short flow: the fixture has 20 documents.
        "--flow-levels",
        "1",
        "--flow-steps",
        "2",
        "--flow-width",
        "8",
        "--flow-epochs",
        "2",
    ]);
    let rows = rows["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["pipeline"].as_str().unwrap()).collect();
    assert_eq!(names, ["raw", "whiten-8", "flow"]);
    let dims: Vec<u64> = rows.iter().map(|r| r["dims"].as_u64().unwrap()).collect();
    // whiten-8 keeps 8 dimensions; 20 documents span only 19 directions (around their mean), and
    // the flow runs in the directions that have variance.
    assert_eq!(dims, [384, 8, 19]);
    for r in rows {
        assert_eq!(r["documents"], 20);
        for search in ["hnsw", "exact"] {
            // The unjudged query q9 is not scored.
            assert_eq!(r[search]["queries"], 5, "{r}");
            for metric in ["ndcg10", "mrr10", "recall1", "recall5", "recall10", "recall100"] {
                let v = r[search][metric].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&v), "{search} {metric} = {v} in {r}");
            }
            // 20 documents, top 100: every relevant document is retrieved.
            assert_eq!(r[search]["recall100"].as_f64().unwrap(), 1.0, "{r}");
        }
        let ann = r["ann_recall10"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ann), "{r}");
        // The snapshot holds at least every vector in f32, and the store holds sled besides it.
        let (index_bytes, store_bytes) = (r["index_bytes"].as_u64().unwrap(), r["store_bytes"].as_u64().unwrap());
        assert!(index_bytes >= 20 * 4 * r["dims"].as_u64().unwrap(), "{r}");
        assert!(store_bytes > index_bytes, "{r}");
        assert!(r["hnsw_queries_per_second"].as_f64().unwrap() > 0.0);
    }
    // On 20 points HNSW is exact for well-spread vectors (raw, whitened). A flow fitted on 20
    // documents collapses them onto nearly one direction (cosines tie at 1.0 in f32), so its
    // HNSW order may differ there; only its ranges are checked above.
    for r in &rows[..2] {
        assert_eq!(r["ann_recall10"].as_f64().unwrap(), 1.0, "{r}");
        assert_eq!(r["hnsw"], r["exact"], "{r}");
    }
    // The fixture's queries each paraphrase one document: raw MiniLM finds them first.
    let raw = &rows[0]["exact"];
    assert!(raw["ndcg10"].as_f64().unwrap() > 0.8, "{raw}");
    assert!(raw["recall1"].as_f64().unwrap() >= 0.8, "{raw}");
    // The transforms were fitted: they take time and change the vectors' geometry.
    assert!(rows[1]["fit_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(rows[0]["fit_seconds"].as_f64().unwrap(), 0.0);
    // The table is printed, one quality line per pipeline and search.
    // (Cells are padded to their column's width: compare with the padding taken out.)
    let cells = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(cells.contains("| whiten-8 | store |"), "{stdout}");
    assert!(stdout.contains("0 of 20 documents truncated at 256 tokens"), "{stdout}");
}

#[test]
fn eval_retrieval_rejects_an_unknown_pipeline_with_the_valid_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["eval", "retrieval", "--data"])
        .arg(root.join("fixtures"))
        .args(["--dataset", "beir-tiny", "--split", "test", "--pipelines", "raw,whitened"])
        .output()
        .expect("the isovec binary runs");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("whiten-K") && stderr.contains("simcse:PATH"), "{stderr}");
}

#[test]
fn bm25_and_hybrid_rows_on_the_tiny_fixture() {
    if default_model().is_none() {
        return;
    }
    let (stdout, stderr, rows) =
        eval_on_fixture(&["--pipelines", "raw,bm25,hybrid:raw,hybrid:raw@rrf,hybrid:raw@convex=1"]);
    let rows = rows["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["pipeline"].as_str().unwrap()).collect();
    assert_eq!(names, ["raw", "bm25", "hybrid:raw", "hybrid:raw@rrf", "hybrid:raw@convex=1"]);
    // The dense collection was built once and serves every row.
    assert!(stderr.matches("indexing raw").count() == 1, "{stderr}");
    let bm25 = &rows[1];
    assert_eq!(bm25["dims"], 0);
    assert_eq!(bm25["hnsw"], bm25["exact"], "BM25 has one ranking: {bm25}");
    for r in &rows[1..] {
        for search in ["hnsw", "exact"] {
            let p = r["p_vs_raw"][search].as_f64().unwrap_or(-1.0);
            assert!(p > 0.0 && p <= 1.0, "p-value of {} {search}: {r}", r["pipeline"]);
        }
        assert!(r["hnsw"]["ndcg10"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(rows[0].get("p_vs_raw").is_none(), "raw is not tested against itself");
    // On 20 documents HNSW is exact, so the store's hybrid search equals the exact fusion the
    // evaluation computes on its own.
    for r in &rows[2..] {
        assert_eq!(r["hnsw"], r["exact"], "{r}");
    }
    // A convex fusion with all weight on the dense side ranks as raw does.
    assert_eq!(rows[4]["exact"]["ndcg10"], rows[0]["exact"]["ndcg10"]);
    assert_eq!(rows[4]["p_vs_raw"]["exact"].as_f64().unwrap(), 1.0);
    let cells = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(cells.contains("| bm25 | store |") && stdout.contains("p vs raw"), "{stdout}");
}

#[test]
fn eval_retrieval_puts_the_prefixes_before_documents_and_queries() {
    if default_model().is_none() {
        return;
    }
    let ndcg = |rows: &serde_json::Value| rows["rows"][0]["exact"]["ndcg10"].as_f64().unwrap();
    let (_, _, plain) = eval_on_fixture(&["--pipelines", "raw"]);
    // A document prefix longer than the 256-token window leaves every document the same input:
    // the ranking is lost, which shows the prefix reaches the encoder.
    let filler = "lorem ipsum ".repeat(300);
    let (_, _, drowned) = eval_on_fixture(&["--pipelines", "raw", "--document-prefix", &filler]);
    assert!(ndcg(&plain) > 0.5 && ndcg(&drowned) < 0.5 * ndcg(&plain), "{plain} {drowned}");
    let (_, _, drowned) = eval_on_fixture(&["--pipelines", "raw", "--query-prefix", &filler]);
    assert!(ndcg(&drowned) < 0.5 * ndcg(&plain), "{plain} {drowned}");
    // An ordinary prefix keeps it.
    let (_, _, e5) =
        eval_on_fixture(&["--pipelines", "raw", "--query-prefix", "query: ", "--document-prefix", "passage: "]);
    assert!(ndcg(&e5) > 0.5, "{e5}");
}

#[test]
fn eval_retrieval_on_pseudo_queries_needs_no_labels() {
    if default_model().is_none() {
        return;
    }
    // The fixture's one-sentence documents give span queries (its titles are one or two words).
    let (_, _, rows) = eval_on_fixture(&["--pipelines", "raw,bm25", "--pseudo", "10"]);
    let rows = rows["rows"].as_array().unwrap();
    for r in rows {
        let queries = r["hnsw"]["queries"].as_u64().unwrap();
        // 20 documents, 10 wanted; only documents of at least 16 words can give a span.
        assert!((1..=10).contains(&queries), "{r}");
        assert_eq!(r["documents"], 20);
        let recall = r["exact"]["recall10"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&recall), "{r}");
    }
    // The words cut out are gone from the document, so BM25 matches little, while the dense
    // vectors still find the topic among 20 documents.
    assert!(rows[0]["exact"]["recall10"].as_f64().unwrap() > 0.9, "{}", rows[0]);
    // The labels' queries are not used: the fixture has 6, none of them here.
    assert_ne!(rows[0]["hnsw"]["queries"], 6);
}
