//! `isovec report --quick` with the real benchmark data (skipped when the data or the default
//! model is absent; a failure then under `ISOVEC_REQUIRE_DATA=1`).

use std::process::Command;

use isovec::test_support::{data_dir, default_model};

#[test]
fn quick_report_has_every_section_and_chart() {
    let (Some(data), Some(_)) = (data_dir("retrieval/scifact"), default_model()) else { return };
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["report", "--quick", "--data"])
        .arg(&data)
        .args(["--max-queries", "10", "--max-docs", "150", "--flow-epochs", "0.5", "--out"])
        .arg(out.path())
        .env_remove("ISOVEC_MODEL")
        .output()
        .expect("the isovec binary runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "failed:\n{stderr}");
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for section in [
        "## STS",
        "## Retrieval",
        "## Beside lexical matching",
        "## Without labels",
        "## STS against retrieval",
        "## Anisotropy",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
    for chart in [
        "recall-at-k.svg",
        "recall-at-k-hnsw.svg",
        "dense-vs-hybrid.svg",
        "pseudo-vs-true.svg",
        "sts-vs-ndcg.svg",
        "cosine-histogram.svg",
    ] {
        let svg = std::fs::read_to_string(out.path().join(chart)).unwrap();
        assert!(svg.starts_with("<svg"), "{chart}");
        assert!(report.contains(chart), "{chart} not linked");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    // mean pooling × (none + 3 transforms) × 2 aggregations
    assert_eq!(json["sts"].as_array().unwrap().len(), 8);
    let retrieval = json["retrieval"].as_array().unwrap();
    // raw, whiten, whiten-128, flow; bm25; each of the four fused with BM25.
    let names: Vec<&str> = retrieval.iter().map(|r| r["pipeline"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "raw",
            "whiten",
            "whiten-128",
            "flow",
            "bm25",
            "hybrid:raw",
            "hybrid:whiten",
            "hybrid:whiten-128",
            "hybrid:flow"
        ]
    );
    assert!(retrieval.iter().all(|r| r["exact"]["queries"] == 10));
    // The same pipelines on pseudo-queries (20 in quick mode, cut to the first 10), each row of
    // the "Without labels" table with its pseudo and labelled scores.
    let pseudo = json["pseudo_retrieval"].as_array().unwrap();
    let pseudo_names: Vec<&str> = pseudo.iter().map(|r| r["pipeline"].as_str().unwrap()).collect();
    assert_eq!(pseudo_names, names);
    assert!(pseudo.iter().all(|r| r["exact"]["queries"] == 10));
    for r in pseudo {
        let name = r["pipeline"].as_str().unwrap();
        let cell = format!("{:.2}", 100.0 * r["hnsw"]["ndcg10"].as_f64().unwrap());
        assert!(report.lines().any(|l| l.starts_with(&format!("| {name} ")) && l.contains(&cell)), "{name} {cell}");
    }
    assert!(report.contains("Kendall's τ-b between the columns") && report.contains("◀ recommended"), "{report}");
    // Raw MiniLM vectors are anisotropic; whitening spreads them out.
    let aniso = json["anisotropy"].as_array().unwrap();
    let mean_cos = |name: &str| aniso.iter().find(|a| a["pipeline"] == name).unwrap()["mean_cosine"].as_f64().unwrap();
    assert!(mean_cos("whiten").abs() < mean_cos("raw"), "{aniso:?}");
}
