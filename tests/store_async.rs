//! The async API: awaitable writes and searches; concurrent text queries encoded in batches.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::BagOfWords;
use isovec::store::{AsyncStore, SearchMode, SearchParams, Store, TextDoc};
use isovec::{Embedder, PipelineId};
use serde_json::json;

/// Counts calls and texts, to observe micro-batching.
struct Counting {
    inner: BagOfWords,
    calls: AtomicUsize,
    texts: AtomicUsize,
}

impl Embedder for Counting {
    fn id(&self) -> &PipelineId {
        self.inner.id()
    }
    fn dims(&self) -> usize {
        self.inner.dims()
    }
    fn embed(&self, texts: &[&str]) -> isovec::Result<Vec<Vec<f32>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        if let Some(bad) = texts.iter().find(|t| t.contains("poison")) {
            return Err(isovec::Error::InvalidInput(format!("cannot encode {bad:?}")));
        }
        // Slow enough that queries pile up while one batch is encoded.
        std::thread::sleep(std::time::Duration::from_millis(5));
        self.inner.embed(texts)
    }
}

/// A store in `dir` with collection `default` for a counting bag-of-words embedder, and its async
/// face (inside a tokio runtime).
fn async_store(dir: &std::path::Path) -> (Arc<Store>, Arc<Counting>, AsyncStore) {
    let bow = BagOfWords::new(128);
    let config = bow.config();
    let emb = Arc::new(Counting { inner: bow, calls: AtomicUsize::new(0), texts: AtomicUsize::new(0) });
    let store = Arc::new(Store::open(dir).unwrap());
    store.create_collection("default", config).unwrap();
    let api = AsyncStore::new(store.clone(), emb.clone());
    (store, emb, api)
}

#[test]
fn concurrent_text_queries_are_batched_and_answered() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (store, emb, api) = async_store(dir.path());
        let topics = ["apples", "rivers", "engines", "violins", "glaciers", "comets", "tulips", "falcons"];
        let docs: Vec<TextDoc> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| TextDoc {
                id: format!("d{i}"),
                text: format!("all about {t} and more {t}"),
                metadata: json!({"i": i}),
            })
            .collect();
        let report = api.add_texts("default", docs).await.unwrap();
        assert_eq!(report.inserted, topics.len());
        let calls_before = emb.calls.load(Ordering::SeqCst);
        let texts_before = emb.texts.load(Ordering::SeqCst);

        let mut tasks = Vec::new();
        for round in 0..8 {
            for (i, t) in topics.iter().enumerate() {
                let api = api.clone();
                let query = format!("{t} {t}");
                tasks.push(tokio::spawn(async move {
                    let hits = api.search_text("default", &query, SearchParams::k(1)).await.unwrap();
                    (round, i, hits)
                }));
            }
        }
        for task in tasks {
            let (_, i, hits) = task.await.unwrap();
            assert_eq!(hits[0].id, format!("d{i}"));
        }
        let calls = emb.calls.load(Ordering::SeqCst) - calls_before;
        let texts = emb.texts.load(Ordering::SeqCst) - texts_before;
        assert_eq!(texts, 64, "every query encoded once");
        assert!(calls < 32, "64 concurrent queries took {calls} encoder calls; expected micro-batches");

        // Vector search, delete and errors through the async API.
        let v = emb.inner.vector("all about comets and more comets");
        let hits = api.search("default", v.clone(), SearchParams::k(1)).await.unwrap();
        assert_eq!(hits[0].id, "d5");
        assert_eq!(api.delete("default", vec!["d5".into()]).await.unwrap(), 1);
        let hits = api.search("default", v, SearchParams::k(1)).await.unwrap();
        assert_ne!(hits[0].id, "d5");
        // Lexical and hybrid text queries: the lexical one encodes nothing.
        let texts_before = emb.texts.load(Ordering::SeqCst);
        let lexical = SearchParams::k(3).with_mode(SearchMode::Lexical);
        let hits = api.search_text("default", "glaciers", lexical).await.unwrap();
        assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["d4"]);
        assert_eq!(emb.texts.load(Ordering::SeqCst), texts_before, "a lexical query is not encoded");
        let hybrid = SearchParams::k(3).with_mode(SearchMode::Hybrid);
        let hits = api.search_text("default", "tulips tulips", hybrid.clone()).await.unwrap();
        assert_eq!(hits[0].id, "d6");
        let direct =
            store.collection("default").unwrap().search_text_with(&emb.inner, "tulips tulips", &hybrid).unwrap();
        assert_eq!(hits, direct, "the async hybrid search equals the direct one");
        assert!(api.search_text("missing", "x", SearchParams::k(1)).await.is_err());
        assert!(api.search_text("default", "   ", SearchParams::k(1)).await.is_err());
    });
}

#[test]
fn a_query_that_fails_to_encode_fails_alone() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_store, _emb, api) = async_store(dir.path());
        let docs = ["apples", "rivers", "comets"]
            .iter()
            .enumerate()
            .map(|(i, t)| TextDoc { id: format!("d{i}"), text: format!("{t} {t}"), metadata: json!({}) })
            .collect();
        api.add_texts("default", docs).await.unwrap();
        // Many at once, so that the poisoned query shares a batch with good ones.
        let mut tasks = Vec::new();
        for round in 0..6 {
            for (i, t) in ["apples", "rivers", "poison", "comets"].iter().enumerate() {
                let api = api.clone();
                let query = t.to_string();
                tasks.push(tokio::spawn(async move {
                    (round, i, api.search_text("default", &query, SearchParams::k(1)).await)
                }));
            }
        }
        for task in tasks {
            match task.await.unwrap() {
                (_, 2, Err(e)) => assert!(e.to_string().contains("cannot encode \"poison\""), "{e}"),
                (_, 2, Ok(hits)) => panic!("the poisoned query was answered: {hits:?}"),
                (_, i, found) => assert_eq!(found.unwrap()[0].id, format!("d{}", [0, 1, 2, 2][i])),
            }
        }
    });
}
