//! Inputs that once killed the process: each is given to the `isovec` binary in a child
//! process, which must end with an exit code (not a signal: no abort, no stack overflow) and,
//! when the input is refused, a message that says what to do; the store must answer afterwards.
//!
//! The tiny model (test_support) stands in for a real one: these cases are about sizes, not
//! about what the vectors mean.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn isovec(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_isovec")).args(args).output().expect("run isovec");
    assert!(
        out.status.code().is_some(),
        "isovec {:?} was killed by a signal: {:?}\nstderr: {}",
        args.iter().map(|a| &a[..a.len().min(60)]).collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let out = isovec(args);
    assert!(out.status.success(), "isovec {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with `message` in its error.
fn refused(args: &[&str], message: &str) {
    let out = isovec(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "isovec {:?} should have failed", &args[..2]);
    assert!(stderr.contains(message), "expected {message:?} in: {stderr}");
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
    model: PathBuf,
    root: PathBuf,
}

impl Fixture {
    /// A store of the fixture corpus (250 documents) indexed with the tiny model.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("tiny");
        isovec::test_support::tiny_model::write_tiny_model(&model);
        let store = dir.path().join("store");
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus.jsonl");
        let f = Fixture { root: dir.path().to_path_buf(), _dir: dir, store, model };
        ok(&["index", "--store", f.s(), "--model", f.m(), corpus.to_str().unwrap()]);
        f
    }

    fn s(&self) -> &str {
        self.store.to_str().unwrap()
    }

    fn m(&self) -> &str {
        self.model.to_str().unwrap()
    }

    /// Hits of a search with extra arguments, as JSON lines.
    fn search(&self, extra: &[&str], query: &str) -> Vec<serde_json::Value> {
        let mut args = vec!["search", "--store", self.s(), "--model", self.m(), "--json"];
        args.extend_from_slice(extra);
        args.push(query);
        ok(&args).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The store still answers: an ordinary search finds documents.
    fn answers(&self) {
        assert_eq!(self.search(&["-k", "3"], "the cat sat on the mat").len(), 3);
    }
}

#[test]
fn huge_k_depth_and_ef_are_bounded_by_the_collection() {
    let f = Fixture::new();
    let max = u64::MAX.to_string();
    for k in ["1000000000", max.as_str()] {
        // Every document, once, and no more: what the collection holds bounds k.
        let dense = f.search(&["-k", k], "the cat sat");
        assert_eq!(dense.len(), 250, "dense, k = {k}");
        let ids: std::collections::HashSet<&str> = dense.iter().map(|h| h["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 250);
        let hybrid = f.search(&["-k", k, "--mode", "hybrid", "--depth", k], "the cat sat");
        assert_eq!(hybrid.len(), 250, "hybrid, k = {k}");
        // Lexical: only documents that share a term with the query, all of them.
        let lexical = f.search(&["-k", k, "--mode", "lexical"], "whales");
        let all_whales = f.search(&["-k", "250", "--mode", "lexical"], "whales");
        assert!(!lexical.is_empty());
        assert_eq!(lexical, all_whales, "lexical, k = {k}");
        assert_eq!(f.search(&["-k", "5", "--ef", k], "the cat sat").len(), 5, "ef = {k}");
    }
    f.answers();
}

#[test]
fn deeply_nested_filters_are_refused_with_a_message() {
    let f = Fixture::new();
    let deep = format!("{}year>=1990{}", "(".repeat(20_000), ")".repeat(20_000));
    let nots = format!("{}year>=1990", "NOT ".repeat(20_000));
    // (One argument holds at most 128 KiB on Linux.)
    let json = format!("{}{{\"year\": 1990}}{}", "{\"$not\": ".repeat(10_000), "}".repeat(10_000));
    for filter in [&deep, &nots, &json] {
        for mode in ["dense", "lexical", "hybrid"] {
            let args =
                ["search", "--store", f.s(), "--model", f.m(), "--mode", mode, "--filter", filter.as_str(), "the cat"];
            refused(&args, if filter == &json { "filter" } else { "nested more than 64 levels" });
        }
    }
    // At the limit it is an ordinary filter.
    let fine = format!("{}year>=1990{}", "(".repeat(64), ")".repeat(64));
    assert!(!f.search(&["--filter", &fine], "the cat").is_empty());
    f.answers();
}

#[test]
fn texts_over_the_limit_are_refused_and_long_ones_are_indexed_whole() {
    let f = Fixture::new();
    let words = |bytes: usize| "the cat sat on the mat ".repeat(bytes / 23 + 1);
    // Over the limit: refused, the store unchanged.
    let over = f.root.join("over.jsonl");
    let huge = words(isovec::store::MAX_TEXT_BYTES + 1);
    std::fs::write(&over, serde_json::json!({"id": "huge", "text": huge}).to_string() + "\n").unwrap();
    refused(&["index", "--store", f.s(), "--model", f.m(), over.to_str().unwrap()], "split it into several documents");
    // Just under it: indexed, the vector from its first tokens, the text index with every word.
    let long = f.root.join("long.jsonl");
    let text = format!("{} whalesong", words(isovec::store::MAX_TEXT_BYTES - 64));
    std::fs::write(&long, serde_json::json!({"id": "long", "text": text}).to_string() + "\n").unwrap();
    ok(&["index", "--store", f.s(), "--model", f.m(), long.to_str().unwrap()]);
    let hits = f.search(&["-k", "1", "--mode", "lexical"], "whalesong");
    assert_eq!(hits[0]["id"], "long", "the last word of the text is in the text index");
    // A query over its limit is refused. The command joins its words with spaces, and one
    // argument holds at most 128 KiB on Linux: 17 arguments of 64 KiB.
    let part = "cat ".repeat(1 << 14);
    let query: Vec<&str> = (0..(isovec::store::MAX_QUERY_BYTES >> 16) + 1).map(|_| part.as_str()).collect();
    for mode in ["dense", "lexical", "hybrid"] {
        let mut args = vec!["search", "--store", f.s(), "--model", f.m(), "--mode", mode];
        args.extend(&query);
        refused(&args, "search with a shorter text");
    }
    f.answers();
}
