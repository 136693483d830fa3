//! Re-embedding a SciFact collection from raw vectors to whiten-256 gives what indexing with
//! whiten-256 directly gives: the same vectors, the same exact-search nDCG@10, and the HNSW
//! nDCG@10 within the graph's own variation (its insertion order differs).
//!
//! Needs the benchmark data and the default model. Documents are cut at 128 tokens to keep the
//! three encodings of the corpus short (about two minutes on two cores).

use std::collections::HashMap;
use std::sync::Arc;

use isovec::encoder::EncoderOptions;
use isovec::eval::retrieval::{evaluate, load_beir};
use isovec::eval::retrieval_run::document_text;
use isovec::store::{Collection, SearchParams, Store, TextDoc};
use isovec::test_support::{data_dir, default_model};
use isovec::transform::TransformKind;
use isovec::{Embedder, Pipeline, PipelineRequest};

/// The collection's top 10 ids for each query (HNSW, or exact search).
fn rankings(c: &Collection, queries: &[(String, Vec<f32>)], exact: bool) -> HashMap<String, Vec<String>> {
    let mut runs = HashMap::new();
    for (id, q) in queries {
        let hits = if exact { c.search_exact(q, 10).unwrap() } else { c.search(q, &SearchParams::k(10)).unwrap() };
        runs.insert(id.clone(), hits.into_iter().map(|h| h.id).collect::<Vec<_>>());
    }
    runs
}

#[test]
fn reembedding_scifact_to_whiten_256_equals_indexing_with_it() {
    let Some(data) = data_dir("retrieval/scifact") else { return };
    let Some(_) = default_model() else { return };
    let beir = load_beir(&data.join("retrieval/scifact"), "train").unwrap();
    let raw = PipelineRequest { max_length: Some(128), ..Default::default() }.load(&EncoderOptions::default()).unwrap();
    let docs: Vec<TextDoc> = beir
        .corpus
        .iter()
        .map(|d| TextDoc { id: d.id.clone(), text: document_text(d), metadata: serde_json::Value::Null })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let reembedded = store.create_collection_for("scifact", raw.as_ref()).unwrap();
    for chunk in docs.chunks(512) {
        reembedded.add_texts(chunk).unwrap();
    }
    // whiten-256 fitted on the collection's (raw) vectors.
    let ids = reembedded.ids().unwrap();
    let vectors: Vec<Vec<f32>> = ids.iter().map(|id| reembedded.get(id).unwrap().unwrap().vector).collect();
    let flow = Default::default();
    let transform = TransformKind::parse("whiten-256", &flow)
        .unwrap()
        .fit(&vectors, &raw.id().encoder, &isovec::progress::Silent)
        .unwrap();
    let whitened = Pipeline::new(raw.shared_encoder().clone(), raw.pooling(), Some(Arc::new(transform))).unwrap();

    store.reembed("scifact", &whitened, &isovec::progress::Silent).unwrap();
    let reembedded = store.collection("scifact").unwrap();
    let direct = store.create_collection_for("direct", &whitened).unwrap();
    for chunk in docs.chunks(512) {
        direct.add_texts(chunk).unwrap();
    }
    for id in ids.iter().step_by(97) {
        assert_eq!(reembedded.get(id).unwrap().unwrap().vector, direct.get(id).unwrap().unwrap().vector, "{id}");
    }
    let texts: Vec<&str> = beir.queries.iter().map(|q| q.text.as_str()).collect();
    let queries: Vec<(String, Vec<f32>)> =
        beir.queries.iter().map(|q| q.id.clone()).zip(whitened.embed_queries(&texts).unwrap()).collect();
    let exact_runs = rankings(&reembedded, &queries, true);
    assert_eq!(exact_runs, rankings(&direct, &queries, true), "the same vectors rank the same");
    let ndcg = |runs: &HashMap<String, Vec<String>>| evaluate(runs, &beir.qrels).ndcg10;
    let exact = ndcg(&exact_runs);
    let hnsw = (ndcg(&rankings(&reembedded, &queries, false)), ndcg(&rankings(&direct, &queries, false)));
    eprintln!("nDCG@10 exact: {exact:.4} (both); HNSW: reembedded {:.4}, direct {:.4}", hnsw.0, hnsw.1);
    assert!((hnsw.0 - hnsw.1).abs() < 0.005, "{hnsw:?}");
    // Whitened MiniLM retrieves on SciFact (README: whiten-256 63.3 at 256 tokens).
    assert!(exact > 0.45, "{exact}");
}
