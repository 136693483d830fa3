//! End to end: `isovec eval retrieval` with `bm25` and `hybrid:` rows on the tiny BEIR fixture.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn bm25_and_hybrid_rows_on_the_tiny_fixture() {
    let Some(_model) = common::paths::default_model() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("rows.json");
    let run = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["eval", "retrieval", "--data"])
        .arg(root.join("fixtures"))
        .args(["--dataset", "beir-tiny", "--split", "test"])
        .args(["--pipelines", "raw,bm25,hybrid:raw,hybrid:raw@rrf,hybrid:raw@convex=1"])
        .arg("--store")
        .arg(out.path().join("store"))
        .arg("--json")
        .arg(&json)
        .env_remove("ISOVEC_MODEL")
        .output()
        .expect("the isovec binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "failed:\n{stdout}\n{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
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
    assert!(stdout.contains("| bm25 | store |") && stdout.contains("p vs raw"), "{stdout}");
}
