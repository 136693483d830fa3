//! End to end: `isovec advise` on a store collection of the tiny BEIR fixture's texts, with the
//! default model: the candidates' table and JSON, the recorded fusion that `--alpha auto` then
//! uses, and `--apply`.

use std::path::Path;
use std::process::{Command, Output};

use isovec::test_support::default_model;

fn isovec(args: &[&str], store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env_remove("ISOVEC_MODEL")
        .output()
        .expect("the isovec binary runs")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The hybrid hits' ids for `query` with `fusion_args`.
fn hybrid_ids(store: &Path, query: &str, fusion_args: &[&str]) -> Vec<String> {
    let mut args = vec!["search", "--collection", "tiny", "--mode", "hybrid", "-k", "5", "--json"];
    args.extend_from_slice(fusion_args);
    args.push(query);
    ok(&isovec(&args, store))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn advise_ranks_candidates_records_the_fusion_and_applies() {
    if default_model().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // The fixture's documents as a user would index them: title and text in one.
    let corpus =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/beir-tiny/corpus.jsonl")).unwrap();
    let lines: Vec<String> = corpus
        .lines()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = format!("{} {}", d["title"].as_str().unwrap(), d["text"].as_str().unwrap());
            serde_json::json!({"id": d["_id"], "text": text}).to_string()
        })
        .collect();
    let input = dir.path().join("docs.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    ok(&isovec(&["index", "--collection", "tiny", input.to_str().unwrap()], &store));

    // Before any advice, --alpha auto says what to run.
    let before = isovec(&["search", "--collection", "tiny", "--mode", "hybrid", "--alpha", "auto", "volcano"], &store);
    let stderr = String::from_utf8_lossy(&before.stderr);
    assert!(!before.status.success() && stderr.contains("isovec advise"), "{stderr}");

    let json = dir.path().join("advice.json");
    let advise = |extra: &[&str]| {
        let mut args = vec!["advise", "--collection", "tiny", "--queries", "10", "--transforms", "whiten-8"];
        args.extend_from_slice(&["--alphas", "0.3", "--json", json.to_str().unwrap()]);
        args.extend_from_slice(extra);
        ok(&isovec(&args, &store))
    };
    let stdout = advise(&[]);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let advice = &report["advice"];
    let rows = advice["rows"].as_array().unwrap();
    let mut names: Vec<&str> = rows.iter().map(|r| r["pipeline"].as_str().unwrap()).collect();
    names.sort_unstable();
    let mut want = [
        "raw",
        "whiten-8",
        "bm25",
        "hybrid:raw",
        "hybrid:raw@convex=0.3",
        "hybrid:raw@rrf",
        "hybrid:whiten-8",
        "hybrid:whiten-8@convex=0.3",
        "hybrid:whiten-8@rrf",
    ];
    want.sort_unstable();
    assert_eq!(names, want);
    // Every document of 16 words or more (11 of 20) can give a span query: 10 of them do.
    assert_eq!(advice["queries"], 10);
    assert_eq!(advice["documents"], 20);
    assert_eq!(advice["current"], "raw");
    // Best first, each mean inside its interval; the best is a contender, and so is the
    // recommendation; a row clearly worse than the best is not.
    let ndcg: Vec<f64> = rows.iter().map(|r| r["ndcg10"].as_f64().unwrap()).collect();
    assert!(ndcg.windows(2).all(|w| w[0] >= w[1]), "{ndcg:?}");
    for r in rows {
        let (m, lo, hi) = (r["ndcg10"].as_f64().unwrap(), r["ci"][0].as_f64().unwrap(), r["ci"][1].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&m) && lo <= m && m <= hi, "{r}");
        if let Some(p) = r["p_vs_best"].as_f64() {
            assert_eq!(r["contender"].as_bool().unwrap(), p >= 0.05, "{r}");
        }
    }
    assert_eq!(advice["best"], rows[0]["pipeline"]);
    let recommended = advice["recommended"].as_str().unwrap();
    assert!(rows.iter().any(|r| r["pipeline"] == recommended && r["contender"] == true), "{advice}");
    // The comparison rows, in `eval retrieval --json`'s form, for every candidate.
    assert_eq!(report["rows"].as_array().unwrap().len(), want.len());
    assert!(stdout.contains("Recommendation: ") && stdout.contains("◀ recommended"), "{stdout}");

    // The recorded fusion is what --alpha auto uses.
    let recorded = stdout.lines().find(|l| l.starts_with("Recorded for tiny")).expect(&stdout);
    let explicit: Vec<&str> = if recorded.contains("fuse by rrf") {
        vec!["--fusion", "rrf"]
    } else {
        let alpha = recorded.split("convex α=").nth(1).and_then(|s| s.split_whitespace().next()).expect(recorded);
        vec!["--alpha", alpha]
    };
    for query in ["volcano magma", "bees make honey", "tides and the moon"] {
        assert_eq!(hybrid_ids(&store, query, &["--alpha", "auto"]), hybrid_ids(&store, query, &explicit), "{query}");
    }

    // --apply leaves the collection with the recommended dense pipeline's vectors.
    let stdout = advise(&["--apply"]);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let recommended = report["advice"]["recommended"].as_str().unwrap().to_string();
    let dense = recommended.trim_start_matches("hybrid:").split('@').next().unwrap();
    let dense = if dense == "bm25" { "raw" } else { dense };
    let stats = ok(&isovec(&["stats", "--json"], &store));
    assert_eq!(stats.contains("whiten-8"), dense == "whiten-8", "{recommended}: {stats}\n{stdout}");
    // The record follows the vectors: --alpha auto still works after the re-embedding.
    assert_eq!(hybrid_ids(&store, "volcano magma", &["--alpha", "auto"]).len(), 5);
}
