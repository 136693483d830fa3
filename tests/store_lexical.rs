//! Lexical (BM25) and hybrid search through the store: scores against an independent BM25,
//! deletes and upserts, filters, fusion, and a text index that is stale, damaged or missing.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::BagOfWords;
use isovec::store::fusion::fuse;
use isovec::store::text_index::terms_of;
use isovec::store::{Collection, Filter, Fusion, SearchMode, SearchParams, Store, TextDoc};
use serde_json::json;

const DIMS: usize = 64;

const TEXTS: &[&str] = &[
    "Vaccines train the immune system to fight infection.",
    "The immune response to a vaccine takes two weeks.",
    "Antibiotics do not work against viruses.",
    "The hockey puck slid across the ice into the net.",
    "Viruses mutate; vaccines are updated every year.",
    "Fresh bread needs flour, water, salt and yeast.",
    "The bakery sells bread and cakes every morning.",
    "Training for a marathon takes months of running.",
    "Infections of the lung are treated with antibiotics.",
    "Ice hockey players train on the ice every morning.",
];

fn text_docs() -> Vec<TextDoc> {
    TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| TextDoc { id: format!("d{i}"), text: t.to_string(), metadata: json!({"group": i % 3}) })
        .collect()
}

fn open(dir: &Path) -> (Store, Collection) {
    let emb = BagOfWords::new(DIMS);
    let store = Store::open(dir).unwrap();
    let c = store.get_or_create_collection("c", emb.config()).unwrap();
    (store, c)
}

fn lexical(k: usize) -> SearchParams {
    SearchParams::k(k).with_mode(SearchMode::Lexical)
}

fn ids(hits: &[isovec::store::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

/// BM25 computed from scratch in f64 over the analysed terms of `docs` (k1 1.2, b 0.75).
fn reference_bm25(docs: &[(String, String)], query: &str) -> Vec<(String, f64)> {
    let (k1, b) = (1.2f64, 0.75f64);
    let analysed: Vec<(String, Vec<String>)> = docs.iter().map(|(id, t)| (id.clone(), terms_of(t))).collect();
    let n = analysed.len() as f64;
    let avgdl = analysed.iter().map(|(_, t)| t.len() as f64).sum::<f64>() / n;
    let mut scores = Vec::new();
    for (id, terms) in &analysed {
        let mut s = 0.0;
        for q in terms_of(query) {
            let df = analysed.iter().filter(|(_, t)| t.contains(&q)).count() as f64;
            let tf = terms.iter().filter(|t| **t == q).count() as f64;
            if tf == 0.0 {
                continue;
            }
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            s += idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * terms.len() as f64 / avgdl));
        }
        if s > 0.0 {
            scores.push((id.clone(), s));
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores
}

#[test]
fn analyzer_stems_lowercases_and_drops_stop_words() {
    assert_eq!(terms_of("The Vaccines are TRAINING the immune systems"), ["vaccin", "train", "immun", "system"]);
}

#[test]
fn bm25_scores_match_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = open(dir.path());
    let emb = BagOfWords::new(DIMS);
    c.add_texts_with(&emb, &text_docs()).unwrap();
    let docs: Vec<(String, String)> = text_docs().into_iter().map(|d| (d.id, d.text)).collect();
    for query in ["vaccines immune", "ice hockey train", "bread every morning", "antibiotics viruses infection"] {
        let want = reference_bm25(&docs, query);
        let got = c.search_lexical(query, &lexical(20)).unwrap();
        assert_eq!(got.len(), want.len(), "{query}: only documents sharing a term");
        for (hit, (id, score)) in got.iter().zip(&want) {
            assert!((hit.score as f64 - score).abs() < 1e-4, "{query}: {} {} vs {id} {score}", hit.id, hit.score);
        }
        // Rankings agree up to ties.
        let got_scores: HashMap<String, f32> = got.iter().map(|h| (h.id.clone(), h.score)).collect();
        for (id, score) in &want {
            assert!((got_scores[id] as f64 - score).abs() < 1e-4);
        }
    }
    assert!(c.search_lexical("the and of", &lexical(5)).unwrap().is_empty(), "stop words match nothing");
}

#[test]
fn bm25_parameters_are_the_collections() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let store = Store::open(dir.path()).unwrap();
    let mut config = emb.config();
    config.lexical.b = 0.0;
    config.lexical.k1 = 0.0;
    let c = store.create_collection("flat", config).unwrap();
    c.add_texts_with(&emb, &text_docs()).unwrap();
    // k1 = 0: a document scores the sum of the idf of the query terms it contains.
    let hits = c.search_lexical("ice", &lexical(10)).unwrap();
    assert_eq!(hits.len(), 2);
    assert!((hits[0].score - hits[1].score).abs() < 1e-6, "term frequency ignored: {hits:?}");
    let mut bad = emb.config();
    bad.lexical.b = 1.5;
    let err = store.create_collection("bad", bad).err().expect("b outside [0, 1] is refused").to_string();
    assert!(err.contains("[0, 1]"), "{err}");
}

#[test]
fn deleted_and_replaced_documents_never_appear() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = open(dir.path());
    let emb = BagOfWords::new(DIMS);
    c.add_texts_with(&emb, &text_docs()).unwrap();
    assert!(ids(&c.search_lexical("bread", &lexical(10)).unwrap()).contains(&"d5".to_string()));
    c.delete(&["d5"]).unwrap();
    c.add_texts_with(&emb, &[TextDoc { id: "d6".into(), text: "A shop for shoes.".into(), metadata: json!(null) }])
        .unwrap();
    for mode in [SearchMode::Lexical, SearchMode::Hybrid] {
        let hits = c.search_text_with(&emb, "bread bakery", &SearchParams::k(10).with_mode(mode)).unwrap();
        assert!(!ids(&hits).contains(&"d5".to_string()), "{mode:?}: {hits:?}");
        // d6 may come from the dense side, but only with its new text.
        assert!(hits.iter().all(|h| h.id != "d6" || h.text == "A shop for shoes."), "{mode:?}: {hits:?}");
    }
    let lex = ids(&c.search_lexical("bread bakery", &lexical(10)).unwrap());
    assert!(!lex.contains(&"d6".to_string()), "the replaced text is gone from the text index: {lex:?}");
    let shoes = c.search_lexical("shoes", &lexical(10)).unwrap();
    assert_eq!(ids(&shoes), ["d6"]);
    assert_eq!(shoes[0].text, "A shop for shoes.");
}

#[test]
fn filters_apply_in_lexical_and_hybrid_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = open(dir.path());
    let emb = BagOfWords::new(DIMS);
    // 600 documents sharing the word "common", so a filter keeps a selective share.
    let docs: Vec<TextDoc> = (0..600)
        .map(|i| TextDoc {
            id: format!("x{i}"),
            text: format!("common words {} {}", if i % 2 == 0 { "even" } else { "odd" }, "filler ".repeat(i % 5)),
            metadata: json!({"group": i % 30}),
        })
        .collect();
    c.add_texts_with(&emb, &docs).unwrap();
    let filter = Filter::parse("group=7").unwrap();
    let allowed: HashSet<String> = (0..600).filter(|i| i % 30 == 7).map(|i| format!("x{i}")).collect();
    for mode in [SearchMode::Lexical, SearchMode::Hybrid] {
        let params = SearchParams::k(50).with_mode(mode).with_filter(filter.clone());
        let hits = c.search_text_with(&emb, "common", &params).unwrap();
        // Every allowed document (20 of them) and nothing else: full recall on a selective filter.
        assert_eq!(ids(&hits).into_iter().collect::<HashSet<_>>(), allowed, "{mode:?}");
        let few = c
            .search_text_with(&emb, "common", &SearchParams::k(5).with_mode(mode).with_filter(filter.clone()))
            .unwrap();
        assert_eq!(few.len(), 5, "{mode:?}: k results when k exist");
    }
}

#[test]
fn hybrid_fuses_the_two_rankings() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = open(dir.path());
    let emb = BagOfWords::new(DIMS);
    c.add_texts_with(&emb, &text_docs()).unwrap();
    let query = "vaccines train the immune system";
    let qv = emb.vector(query);
    for fusion in [Fusion::Rrf { k: 60.0 }, Fusion::Convex { alpha: 0.5 }, Fusion::Convex { alpha: 0.2 }] {
        let params =
            SearchParams { depth: Some(8), ..SearchParams::k(5).with_mode(SearchMode::Hybrid).with_fusion(fusion) };
        let got = c.search_hybrid(&qv, query, &params).unwrap();
        // The same fusion applied to the two sides searched on their own.
        let dense: Vec<(String, f32)> =
            c.search(&qv, &SearchParams::k(8)).unwrap().into_iter().map(|h| (h.id, h.score)).collect();
        let lex: Vec<(String, f32)> =
            c.search_lexical(query, &lexical(8)).unwrap().into_iter().map(|h| (h.id, h.score)).collect();
        let want: Vec<(String, f32)> = fuse(&dense, &lex, fusion).into_iter().take(5).collect();
        assert_eq!(ids(&got), want.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), "{fusion:?}");
        for (h, (_, s)) in got.iter().zip(&want) {
            assert!((h.score - s).abs() < 1e-6);
        }
    }
    // Dense-only search refuses the other modes instead of guessing.
    let err = c.search(&qv, &lexical(3)).unwrap_err().to_string();
    assert!(err.contains("needs the query text"), "{err}");
}

#[test]
fn the_whole_text_is_indexed_past_the_encoders_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, c) = open(dir.path());
    let emb = BagOfWords::new(DIMS);
    let long = format!("{} zygomorphic", "lorem ipsum dolor ".repeat(2_000));
    c.add_texts_with(&emb, &[TextDoc { id: "long".into(), text: long, metadata: json!(null) }]).unwrap();
    assert_eq!(ids(&c.search_lexical("zygomorphic", &lexical(3)).unwrap()), ["long"]);
}

fn text_dir(dir: &Path) -> PathBuf {
    dir.join("index").join("c").join("text")
}

fn check_all_found(dir: &Path, live: &[(String, String)]) {
    let (_store, c) = open(dir);
    assert_eq!(c.stats().unwrap().text_index.documents, live.len() as u64);
    for (id, text) in live {
        let hits = c.search_lexical(text, &lexical(3)).unwrap();
        assert_eq!(hits.first().map(|h| h.id.as_str()), Some(id.as_str()), "{text}");
    }
}

fn unique_docs(range: std::ops::Range<usize>) -> Vec<TextDoc> {
    range
        .map(|i| TextDoc { id: format!("u{i}"), text: format!("unique{i} marker{i} shared"), metadata: json!(null) })
        .collect()
}

#[test]
fn a_stale_text_index_is_replayed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    {
        let (store, c) = open(dir.path());
        c.add_texts_with(&emb, &unique_docs(0..40)).unwrap();
        drop(c);
        store.close().unwrap();
    }
    let old = dir.path().join("old-text");
    copy_dir(&text_dir(dir.path()), &old);
    {
        let (store, c) = open(dir.path());
        c.delete(&["u3", "u4"]).unwrap();
        c.add_texts_with(&emb, &unique_docs(40..60)).unwrap();
        c.add_texts_with(&emb, &[TextDoc { id: "u5".into(), text: "replaced five".into(), metadata: json!(null) }])
            .unwrap();
        drop(c);
        store.close().unwrap();
    }
    // Put the old index back: it covers fewer writes than sled has.
    std::fs::remove_dir_all(text_dir(dir.path())).unwrap();
    copy_dir(&old, &text_dir(dir.path()));
    let (_store, c) = open(dir.path());
    for gone in ["unique3", "unique4", "unique5"] {
        assert!(c.search_lexical(gone, &lexical(3)).unwrap().is_empty(), "{gone} was deleted or replaced");
    }
    assert_eq!(ids(&c.search_lexical("replaced", &lexical(3)).unwrap()), ["u5"]);
    assert_eq!(ids(&c.search_lexical("unique55", &lexical(3)).unwrap()), ["u55"]);
    let stats = c.stats().unwrap();
    assert_eq!(stats.text_index.documents, 58);
    assert_eq!(stats.text_index.covered_seq, stats.seq);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn build_closed(dir: &Path) -> Vec<(String, String)> {
    let emb = BagOfWords::new(DIMS);
    let (store, c) = open(dir);
    let docs = unique_docs(0..30);
    c.add_texts_with(&emb, &docs).unwrap();
    c.delete(&["u7"]).unwrap();
    drop(c);
    store.close().unwrap();
    docs.into_iter().filter(|d| d.id != "u7").map(|d| (d.id, d.text)).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(text_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            !name.starts_with('.') && name != "meta.json"
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn truncated_text_index_files_lead_to_a_rebuild() {
    let probe = tempfile::tempdir().unwrap();
    build_closed(probe.path());
    for which in 0..segment_files(probe.path()).len() {
        let dir = tempfile::tempdir().unwrap();
        let live = build_closed(dir.path());
        let file = &segment_files(dir.path())[which];
        let len = std::fs::metadata(file).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        f.set_len(len / 2).unwrap();
        check_all_found(dir.path(), &live);
    }
}

#[test]
fn bit_flipped_text_index_files_lead_to_a_rebuild() {
    let probe = tempfile::tempdir().unwrap();
    build_closed(probe.path());
    for which in 0..segment_files(probe.path()).len() {
        let dir = tempfile::tempdir().unwrap();
        let live = build_closed(dir.path());
        let file = &segment_files(dir.path())[which];
        let mut bytes = std::fs::read(file).unwrap();
        let mid = bytes.len() / 3;
        bytes[mid] ^= 0x40;
        std::fs::write(file, bytes).unwrap();
        check_all_found(dir.path(), &live);
    }
}

#[test]
fn a_missing_or_garbled_text_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let live = build_closed(dir.path());
    std::fs::write(text_dir(dir.path()).join("meta.json"), b"{ not json").unwrap();
    check_all_found(dir.path(), &live);
    std::fs::remove_dir_all(text_dir(dir.path())).unwrap();
    check_all_found(dir.path(), &live);
}

#[test]
fn a_durable_write_is_not_reported_as_failed_when_maintenance_fails() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let (store, c) = open(dir.path());
    c.add_texts_with(&emb, &unique_docs(0..100)).unwrap();
    // The collection's index folder becomes a file: snapshots and compactions cannot be written.
    let index_dir = dir.path().join("index").join("c");
    let moved = dir.path().join("moved-index");
    std::fs::rename(&index_dir, &moved).unwrap();
    std::fs::write(&index_dir, b"not a folder").unwrap();
    // Replacing 70 of 100 documents leaves 70 tombstones: a compaction starts, and fails.
    let replaced: Vec<TextDoc> = (0..70)
        .map(|i| TextDoc { id: format!("u{i}"), text: format!("again{i} shared"), metadata: json!(null) })
        .collect();
    let report = c.add_texts_with(&emb, &replaced).expect("the write is durable, so it succeeds");
    assert_eq!(report.replaced, 70);
    let err = c.stats().unwrap().maintenance_error.expect("the failed compaction is reported");
    assert!(!err.is_empty());
    drop(c);
    drop(store);
    std::fs::remove_file(&index_dir).unwrap();
    std::fs::rename(&moved, &index_dir).unwrap();
    // Every acknowledged write is there after reopening.
    let (_store, c) = open(dir.path());
    assert_eq!(c.count().unwrap(), 100);
    assert_eq!(ids(&c.search_lexical("again5", &lexical(3)).unwrap()), ["u5"]);
    assert!(c.search_lexical("unique5", &lexical(3)).unwrap().is_empty());
    assert_eq!(c.get("u69").unwrap().unwrap().text, "again69 shared");
    assert_eq!(c.stats().unwrap().text_index.documents, 100);
}

#[test]
fn dropping_a_collection_with_a_live_handle_stops_its_text_index_first() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let emb = BagOfWords::new(DIMS);
        let (store, c) = open(dir.path());
        // Many small commits: segments that tantivy merges in the background.
        for i in 0..12 {
            c.add_texts_with(&emb, &unique_docs(i * 10..i * 10 + 10)).unwrap();
            c.search_lexical("shared", &lexical(1)).unwrap();
        }
        assert!(store.drop_collection("c").unwrap(), "round {round}");
        assert!(!dir.path().join("index").join("c").exists(), "round {round}: the index folder is gone");
        let err = c.search_lexical("shared", &lexical(1)).unwrap_err().to_string();
        assert!(err.contains("dropped"), "{err}");
    }
}
