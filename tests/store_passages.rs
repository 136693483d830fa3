//! Long texts: cut texts are counted, and texts indexed as overlapping passages are found by
//! their best passage, once per document, under filters, after upserts, deletes and reopens; a
//! store written before passages existed opens and behaves as before.

mod common;

use common::{open_sled, BagOfWords};
use isovec::store::layout::{doc_key, DocRecord, POINTS_KEY};
use isovec::store::{Filter, Passages, SearchMode, SearchParams, Store, TextDoc};
use isovec::{Embedder, PipelineId, TokenSpans};
use serde_json::json;

const DIMS: usize = 64;
/// Words one input holds: a longer text loses its tail, as a BERT encoder's does.
const CAPACITY: usize = 8;

/// Words are tokens; only the first [`CAPACITY`] words of a text reach its vector.
struct Words(BagOfWords);

impl Words {
    fn new() -> Self {
        Words(BagOfWords::new(DIMS))
    }
}

fn word_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    spans
}

impl Embedder for Words {
    fn id(&self) -> &PipelineId {
        self.0.id()
    }
    fn dims(&self) -> usize {
        DIMS
    }
    fn embed(&self, texts: &[&str]) -> isovec::Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let spans = word_spans(t);
                let kept: Vec<&str> = spans.iter().take(CAPACITY).map(|r| &t[r.clone()]).collect();
                self.0.vector(&kept.join(" "))
            })
            .collect())
    }
    fn token_spans(&self, text: &str) -> isovec::Result<Option<TokenSpans>> {
        Ok(Some(TokenSpans { spans: word_spans(text), capacity: CAPACITY }))
    }
}

/// Document `i`: `len` words, the last two naming it (`tailN markN`), in group `i % 3`.
fn long_doc(i: usize, len: usize) -> TextDoc {
    let mut words: Vec<String> = (0..len.saturating_sub(2)).map(|w| format!("filler{}", (i * 7 + w) % 40)).collect();
    words.push(format!("tail{i}"));
    words.push(format!("mark{i}"));
    TextDoc { id: format!("d{i}"), text: words.join(" "), metadata: json!({"group": i % 3}) }
}

/// The expected ranking, computed apart from the store: each document's passages are windows
/// of 6 words, 4 apart (the last one ending at the last word), scored by the bag-of-words cosine
/// in f64; a document scores as its best passage.
fn expected(docs: &[TextDoc], query: &str, allow: &dyn Fn(&TextDoc) -> bool) -> Vec<(String, f64)> {
    let bag = BagOfWords::new(DIMS);
    let q = bag.vector(query);
    let mut scored: Vec<(String, f64)> = docs
        .iter()
        .filter(|d| allow(d))
        .map(|d| {
            let words: Vec<&str> = d.text.split(' ').collect();
            let mut windows = Vec::new();
            let mut start = 0;
            loop {
                let end = (start + 6).min(words.len());
                windows.push(words[start..end].join(" "));
                if end == words.len() {
                    break;
                }
                start += 4;
            }
            let best = windows
                .iter()
                .map(|w| bag.vector(w).iter().zip(&q).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>())
                .fold(f64::MIN, f64::max);
            (d.id.clone(), best)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

fn passages() -> Passages {
    Passages::new(6, Some(4))
}

fn corpus() -> Vec<TextDoc> {
    (0..60).map(|i| long_doc(i, 4 + (i * 5) % 23)).collect()
}

/// The store's results agree with [`expected`]: same documents, best first, same scores.
fn check_search(c: &isovec::store::Collection, emb: &Words, docs: &[TextDoc], query: &str, params: &SearchParams) {
    let allow = |d: &TextDoc| params.filter.as_ref().is_none_or(|f| f.matches(&d.metadata));
    let want = expected(docs, query, &allow);
    let got = c.search_text_with(emb, query, params).unwrap();
    assert_eq!(got.len(), params.k.min(want.len()), "{query}: k results when k exist");
    let mut seen = std::collections::HashSet::new();
    for (h, (id, score)) in got.iter().zip(&want) {
        assert!(seen.insert(h.id.clone()), "{query}: {} returned twice", h.id);
        assert!(
            (h.score as f64 - score).abs() < 1e-4,
            "{query}: {} scored {} (expected {id} at {score})",
            h.id,
            h.score
        );
    }
    // Each hit carries its own document's best-passage score, and every document scoring
    // above the last one returned is there (ties at the cut may go either way).
    let by_id: std::collections::HashMap<&str, f64> = want.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    for h in &got {
        let own = by_id.get(h.id.as_str()).unwrap_or_else(|| panic!("{query}: {} is not allowed", h.id));
        assert!((h.score as f64 - own).abs() < 1e-4, "{query}: {} scored {}, its best passage {own}", h.id, h.score);
    }
    let cut = want.get(params.k.min(want.len()).saturating_sub(1)).map_or(f64::MIN, |w| w.1);
    for (id, _) in want.iter().filter(|w| w.1 > cut + 1e-4) {
        assert!(seen.contains(id), "{query}: {id} missing");
    }
}

#[test]
fn cut_texts_are_counted_and_passages_cover_them() {
    let dir = tempfile::tempdir().unwrap();
    let emb = Words::new();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("default", emb.0.config()).unwrap();
    let docs = vec![long_doc(0, 5), long_doc(1, 20), long_doc(2, 8), long_doc(3, 9)];
    let report = c.add_texts_with(&emb, &docs).unwrap();
    assert_eq!((report.truncated, report.passages, report.inserted), (2, 4, 4), "20 and 9 words exceed 8");
    // Its tail word is beyond the cut: the dense search cannot see it.
    let hits = c.search_text_with(&emb, "tail1 mark1", &SearchParams::k(1)).unwrap();
    assert!(hits[0].score < 0.5, "{hits:?}");

    let report = c.add_texts_in_passages_with(&emb, &docs, passages()).unwrap();
    // Passages of 6 words, 4 apart: 5 words make 1; 20 make 5 (starts 0, 4, 8, 12, 16); 8 and 9 make 2.
    assert_eq!((report.truncated, report.passages, report.replaced), (0, 10, 4));
    assert_eq!(c.count().unwrap(), 4, "count() counts documents");
    c.snapshot().unwrap();
    let stats = c.stats().unwrap();
    assert_eq!((stats.documents, stats.points), (4, 10));
    assert_eq!(stats.text_index.documents, 4, "one text-index entry per document");
    let hits = c.search_text_with(&emb, "tail1 mark1", &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, "d1");
    assert_eq!(hits[0].text, docs[1].text, "the whole text comes back");
    assert!(hits[0].score > 0.5, "{hits:?}");

    // A passage longer than the encoder holds, and an embedder that shows no tokens, are refused.
    let err = c.add_texts_in_passages_with(&emb, &docs, Passages::new(9, None)).unwrap_err().to_string();
    assert!(err.contains("1..=8"), "{err}");
    let err = c.add_texts_in_passages_with(&emb.0, &docs, passages()).unwrap_err().to_string();
    assert!(err.contains("does not show its tokens"), "{err}");
    assert_eq!(c.stats().unwrap().points, 10, "refused writes change nothing");
}

#[test]
fn documents_score_as_their_best_passage_once_in_every_mode_and_under_filters() {
    let dir = tempfile::tempdir().unwrap();
    let emb = Words::new();
    let store = Store::open(dir.path()).unwrap();
    let c = store.create_collection("default", emb.0.config()).unwrap();
    let docs = corpus();
    c.add_texts_in_passages_with(&emb, &docs, passages()).unwrap();
    assert!(c.stats().unwrap().points > 150);
    let queries = ["tail17 mark17", "filler3 filler4 filler5", "filler10 tail44", "mark2 filler30 filler31"];
    for q in queries {
        check_search(&c, &emb, &docs, q, &SearchParams::k(10).with_ef(400));
        // Selective filter: exact scan; broad filter: the HNSW search widens until k documents.
        check_search(
            &c,
            &emb,
            &docs,
            q,
            &SearchParams::k(5).with_filter(Filter::parse("group=1").unwrap()).with_ef(400),
        );
        let all = SearchParams { ef: Some(400), ..SearchParams::k(60) };
        check_search(&c, &emb, &docs, q, &all.clone().with_filter(Filter::parse("group IN (0, 2)").unwrap()));
        check_search(&c, &emb, &docs, q, &all);
        // Hybrid fuses one dense entry per document with the lexical one.
        let hybrid = c.search_text_with(&emb, q, &SearchParams::k(60).with_mode(SearchMode::Hybrid)).unwrap();
        let mut ids: Vec<&str> = hybrid.iter().map(|h| h.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), hybrid.len(), "{q}: a document twice in a hybrid search");
    }
    let hybrid = c.search_text_with(&emb, "tail44 mark44", &SearchParams::k(3).with_mode(SearchMode::Hybrid)).unwrap();
    assert_eq!(hybrid[0].id, "d44");
}

#[test]
fn upserts_and_deletes_remove_every_passage_and_reopen_keeps_results() {
    let dir = tempfile::tempdir().unwrap();
    let emb = Words::new();
    let mut docs = corpus();
    let params = SearchParams::k(60).with_ef(400);
    {
        let store = Store::open(dir.path()).unwrap();
        let c = store.create_collection("default", emb.0.config()).unwrap();
        c.add_texts_in_passages_with(&emb, &docs, passages()).unwrap();
        let before = c.stats().unwrap().points;
        // d26 has 4 + 130 % 23 = 19 words (5 passages); replaced by a short text, deleted d43.
        let short = TextDoc { id: "d26".into(), text: "short replacement".into(), metadata: json!({"group": 2}) };
        let report = c.add_texts_in_passages_with(&emb, std::slice::from_ref(&short), passages()).unwrap();
        assert_eq!(report.passages, 1);
        assert_eq!(c.stats().unwrap().points, before - 4);
        assert_eq!(c.delete(&["d43"]).unwrap(), 1);
        docs[26] = short;
        docs.remove(43);
        assert_eq!(c.count().unwrap(), 59);
        for q in ["tail26 mark26", "tail43 mark43", "short replacement", "filler9 filler10"] {
            check_search(&c, &emb, &docs, q, &params);
        }
        store.close().unwrap();
    }
    for round in 0..2 {
        let store = Store::open(dir.path()).unwrap();
        let c = store.collection("default").unwrap();
        if round == 1 {
            c.compact().unwrap();
            assert_eq!(c.stats().unwrap().tombstones, 0);
        }
        assert_eq!(c.count().unwrap(), 59);
        assert_eq!(
            c.stats().unwrap().points as usize,
            c.stats().unwrap().indexed_points - c.stats().unwrap().tombstones
        );
        for q in ["tail26 mark26", "tail43 mark43", "short replacement", "filler9 filler10"] {
            check_search(&c, &emb, &docs, q, &params);
        }
        assert!(c.get("d43").unwrap().is_none());
        store.close().unwrap();
    }
}

#[test]
fn a_store_written_before_passages_opens_and_behaves_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let emb = Words::new();
    let docs: Vec<TextDoc> = (0..30).map(|i| long_doc(i, 6)).collect();
    let params = SearchParams::k(10).with_ef(200);
    let queries = ["tail3 mark3", "filler5 filler12", "mark20"];
    let before: Vec<Vec<(String, f32)>> = {
        let store = Store::open(dir.path()).unwrap();
        let c = store.create_collection("default", emb.0.config()).unwrap();
        c.add_texts_with(&emb, &docs).unwrap();
        let res = queries
            .iter()
            .map(|q| c.search_text_with(&emb, q, &params).unwrap().into_iter().map(|h| (h.id, h.score)).collect())
            .collect();
        store.close().unwrap();
        res
    };
    // Rewrite it in the layout of before: document records as internal id (u64 LE) + text, no
    // vector counter.
    {
        let db = open_sled(dir.path());
        let tree = db.open_tree(isovec::store::layout::collection_tree("default", 0)).unwrap();
        assert!(tree.remove(POINTS_KEY).unwrap().is_some());
        for d in &docs {
            let rec = DocRecord::decode(&tree.get(doc_key(&d.id)).unwrap().unwrap()).unwrap();
            let mut old = rec.internal_id.to_le_bytes().to_vec();
            old.extend_from_slice(d.text.as_bytes());
            tree.insert(doc_key(&d.id), old).unwrap();
        }
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let c = store.collection("default").unwrap();
    let stats = c.stats().unwrap();
    assert_eq!((stats.documents, stats.points), (30, 30));
    for (q, expected) in queries.iter().zip(&before) {
        let got: Vec<(String, f32)> =
            c.search_text_with(&emb, q, &params).unwrap().into_iter().map(|h| (h.id, h.score)).collect();
        assert_eq!(&got, expected, "{q}");
    }
    assert_eq!(c.get("d4").unwrap().unwrap().text, docs[4].text);
    // Old and new documents live side by side.
    let long = long_doc(40, 20);
    c.add_texts_in_passages_with(&emb, std::slice::from_ref(&long), passages()).unwrap();
    assert_eq!(c.delete(&["d4"]).unwrap(), 1);
    let stats = c.stats().unwrap();
    assert_eq!((stats.documents, stats.points), (30, 29 + 5));
    assert_eq!(c.search_text_with(&emb, "tail40 mark40", &SearchParams::k(1)).unwrap()[0].id, "d40");
}

#[test]
fn passage_counts_per_document_follow_the_stride() {
    // Independent of the store: the splitting the tests above assume.
    let tokens = TokenSpans { spans: word_spans(&long_doc(1, 20).text), capacity: CAPACITY };
    let text = long_doc(1, 20).text;
    let cuts = isovec::store::passages::split(&text, &tokens, 6, 4);
    let counts: Vec<usize> = cuts.iter().map(|r| text[r.clone()].split(' ').count()).collect();
    assert_eq!(counts, vec![6, 6, 6, 6, 4]);
}

#[cfg(feature = "cli")]
#[test]
fn isovec_index_reports_cut_texts_and_indexes_passages() {
    use isovec::cli::store_cmds::{self, IndexArgs, TargetArgs};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docs.jsonl");
    let docs = [long_doc(0, 5), long_doc(1, 20), long_doc(2, 9)];
    let lines: Vec<String> = docs.iter().map(|d| json!({"id": d.id, "text": d.text}).to_string()).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let emb: std::sync::Arc<dyn Embedder> = std::sync::Arc::new(Words::new());
    let mut args = IndexArgs {
        target: TargetArgs::local(&dir.path().join("store"), "default"),
        file,
        format: None,
        batch: 2,
        passages: false,
        passage_tokens: None,
        passage_stride: None,
    };
    let report = store_cmds::index(&args, &Default::default(), &|_| Ok(emb.clone())).unwrap();
    assert_eq!((report.inserted, report.truncated, report.passages), (3, 2, 3));
    args.passages = true;
    args.passage_tokens = Some(6);
    args.passage_stride = Some(4);
    let report = store_cmds::index(&args, &Default::default(), &|_| Ok(emb.clone())).unwrap();
    // 5 words: 1 passage; 20: 5; 9: 2.
    assert_eq!((report.replaced, report.truncated, report.passages), (3, 0, 8));
    let store = Store::open(dir.path().join("store")).unwrap();
    let stats = store.collection("default").unwrap().stats().unwrap();
    assert_eq!((stats.documents, stats.points), (3, 8));
}
