//! One row of the retrieval comparison: a dense pipeline indexed into a fresh collection of its
//! own store (with what that cost: fit and build time, bytes on disk), then every query ranked
//! through the store and exactly, timed, and scored with the BEIR metrics.
//!
//! Invariants: each pipeline gets its own store folder and collection (an old one of the same
//! name is replaced), so the sizes reported are its own; a document split into passages is
//! ranked by its best passage, in the store and in the exact scan alike; `hnsw` and `exact`
//! rankings of a row are scored the same way, so they compare.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::{
    ann_recall, dir_size, document_text, exact_top, EncodedSplit, RetrievalPlan, RetrievalRow, RANKING_DEPTH,
    UPSERT_CHUNK,
};
use crate::eval::retrieval::{evaluate as score_runs, ndcg_at_k, BeirData};
use crate::progress::Progress;
use crate::store::fusion::{fuse, DEFAULT_DEPTH};
use crate::store::{Collection, CollectionConfig, Fusion, PassagesDoc, SearchMode, SearchParams, Store};
use crate::transform::Transform;
use crate::{Error, Pipeline, Result};

/// A dense pipeline's vectors in a fresh collection, with what building it cost.
pub(super) struct Indexed<'a> {
    name: String,
    split: &'a EncodedSplit,
    /// The pipeline's document vectors (one per document, or per passage).
    pub(super) docs: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    store: Store,
    collection: Collection,
    fit_seconds: f64,
    build_seconds: f64,
    index_bytes: u64,
    text_index_bytes: u64,
    store_bytes: u64,
}

impl Indexed<'_> {
    pub(super) fn close(self) -> Result<()> {
        drop(self.collection);
        self.store.close()
    }

    /// A row with this collection's facts and the given rankings (judged queries in data order).
    fn row(
        &self,
        pipeline: &str,
        data: &BeirData,
        runs: [Vec<Vec<String>>; 2],
        seconds: [f64; 2],
        index_bytes: u64,
    ) -> RetrievalRow {
        let [hnsw_runs, exact_runs] = runs;
        let ann_recall10 = ann_recall(&hnsw_runs, &exact_runs, 10);
        let per_query = |runs: &[Vec<String>]| per_query_ndcg10(data, runs);
        let per_query_ndcg10 = [per_query(&hnsw_runs), per_query(&exact_runs)];
        let as_runs = |runs: Vec<Vec<String>>| -> HashMap<String, Vec<String>> {
            data.queries.iter().map(|q| q.id.clone()).zip(runs).collect()
        };
        let lexical_only = pipeline == "bm25";
        RetrievalRow {
            pipeline: pipeline.to_string(),
            model: if lexical_only { "-".into() } else { self.split.encoder.name().to_string() },
            pooling: if lexical_only { "-".into() } else { self.split.pooling.name().to_string() },
            dims: if lexical_only { 0 } else { self.docs.first().map_or(0, Vec::len) },
            documents: data_len(&self.split.owners),
            hnsw: score_runs(&as_runs(hnsw_runs), &data.qrels),
            exact: score_runs(&as_runs(exact_runs), &data.qrels),
            ann_recall10,
            fit_seconds: if lexical_only { 0.0 } else { self.fit_seconds },
            build_seconds: self.build_seconds,
            hnsw_queries_per_second: per_second(self.queries.len(), seconds[0]),
            exact_queries_per_second: per_second(self.queries.len(), seconds[1]),
            index_bytes,
            store_bytes: self.store_bytes,
            p_vs_raw: None,
            p_vs_hybrid_raw: None,
            per_query_ndcg10,
        }
    }

    /// Exact dense top `k` of query `i`: (document index, cosine of its best passage).
    fn exact(&self, i: usize, k: usize) -> Vec<(usize, f32)> {
        let owners = &self.split.owners;
        if owners.len() == data_len(owners) {
            return exact_top(&self.queries[i], &self.docs, k);
        }
        // Every passage scored; a document keeps its best, first seen in rank order.
        let ranked = exact_top(&self.queries[i], &self.docs, self.docs.len());
        let mut seen = std::collections::HashSet::new();
        ranked.into_iter().filter(|(p, _)| seen.insert(owners[*p])).map(|(p, s)| (owners[p], s)).take(k).collect()
    }
}

/// Number of documents of `owners` (vectors per document in corpus order): one more than the last.
fn data_len(owners: &[usize]) -> usize {
    owners.last().map_or(0, |last| last + 1)
}

/// Fits (if any) and indexes one dense pipeline into a fresh collection of its own store.
pub(super) fn index_pipeline<'a>(
    name: &str,
    split: &'a EncodedSplit,
    transform: Option<Arc<Transform>>,
    fit_seconds: f64,
    data: &BeirData,
    plan: &RetrievalPlan,
    progress: &dyn Progress,
) -> Result<Indexed<'a>> {
    let pipeline =
        Pipeline::with_prefixes(split.encoder.clone(), split.pooling, split.prefixes.clone(), transform.clone())?;
    let docs = pipeline.apply(split.docs.clone())?;
    let queries = pipeline.apply(split.queries.clone())?;
    let dims = docs.first().map_or(0, Vec::len);

    // Index into a fresh collection in the pipeline's own store, so that its size on disk is
    // its own (an old collection of the same name is replaced).
    let collection_name = collection_name(name);
    let store_dir = plan.store_dir.join(&collection_name);
    std::fs::create_dir_all(&store_dir).map_err(|e| Error::io(&store_dir, e))?;
    let store = Store::open(&store_dir)?;
    store.drop_collection(&collection_name)?;
    let config =
        CollectionConfig { hnsw: plan.hnsw, ..CollectionConfig::new(dims, crate::Embedder::id(&pipeline).clone()) };
    let collection = store.create_collection(&collection_name, config)?;
    progress.start(&format!("indexing {name}"), data.corpus.len());
    let build_start = Instant::now();
    // Each document's vectors (one, or one per passage), in corpus order.
    let mut per_doc: Vec<Vec<Vec<f32>>> = vec![Vec::new(); data.corpus.len()];
    for (v, &owner) in docs.iter().zip(&split.owners) {
        per_doc[owner].push(v.clone());
    }
    for (chunk_docs, chunk_vectors) in data.corpus.chunks(UPSERT_CHUNK).zip(per_doc.chunks(UPSERT_CHUNK)) {
        let batch: Vec<PassagesDoc> = chunk_docs
            .iter()
            .zip(chunk_vectors)
            .map(|(d, v)| PassagesDoc {
                id: d.id.clone(),
                text: document_text(d),
                metadata: serde_json::Value::Null,
                vectors: v.clone(),
            })
            .collect();
        collection.upsert_passages(&batch)?;
        progress.advance(batch.len());
    }
    collection.snapshot()?;
    let build_seconds = build_start.elapsed().as_secs_f64();
    progress.finish();
    let index_dir = store_dir.join(crate::store::layout::INDEX_DIR).join(&collection_name);
    let text_index_bytes = dir_size(&index_dir.join(crate::store::text_index::TEXT_DIR));
    let index_bytes = dir_size(&index_dir) - text_index_bytes;
    let store_bytes = dir_size(&store_dir);
    Ok(Indexed {
        name: name.to_string(),
        split,
        docs,
        queries,
        store,
        collection,
        fit_seconds,
        build_seconds,
        index_bytes,
        text_index_bytes,
        store_bytes,
    })
}

/// Runs `search` for every query (index, text), timing it, with a progress stage.
fn rankings(
    stage: &str,
    data: &BeirData,
    progress: &dyn Progress,
    search: &dyn Fn(usize, &str) -> Result<Vec<String>>,
) -> Result<(Vec<Vec<String>>, f64)> {
    progress.start(stage, data.queries.len());
    let start = Instant::now();
    let mut runs = Vec::with_capacity(data.queries.len());
    for (i, q) in data.queries.iter().enumerate() {
        runs.push(search(i, &q.text)?);
        progress.advance(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    progress.finish();
    Ok((runs, seconds))
}

pub(super) fn dense_row(ix: &Indexed, data: &BeirData, progress: &dyn Progress) -> Result<RetrievalRow> {
    let params = SearchParams::k(RANKING_DEPTH);
    let (hnsw, hnsw_s) = rankings(&format!("HNSW search {}", ix.name), data, progress, &|i, _| {
        Ok(ix.collection.search(&ix.queries[i], &params)?.into_iter().map(|h| h.id).collect())
    })?;
    let (exact, exact_s) = rankings(&format!("exact search {}", ix.name), data, progress, &|i, _| {
        Ok(ix.exact(i, RANKING_DEPTH).into_iter().map(|(d, _)| data.corpus[d].id.clone()).collect())
    })?;
    Ok(ix.row(&ix.name, data, [hnsw, exact], [hnsw_s, exact_s], ix.index_bytes))
}

/// `bm25`: the lexical ranking through the store, which is both its `hnsw` and `exact` metrics.
pub(super) fn lexical_row(ix: &Indexed, data: &BeirData, progress: &dyn Progress) -> Result<RetrievalRow> {
    let params = SearchParams::k(RANKING_DEPTH).with_mode(SearchMode::Lexical);
    let (runs, seconds) = rankings("BM25 search", data, progress, &|_, text| {
        Ok(ix.collection.search_lexical(text, &params)?.into_iter().map(|h| h.id).collect())
    })?;
    Ok(ix.row("bm25", data, [runs.clone(), runs], [seconds, seconds], ix.text_index_bytes))
}

/// `hybrid:<dense>`: the store's hybrid search (`hnsw`), and the same fusion of the exact dense
/// ranking with the store's lexical one (`exact`).
pub(super) fn hybrid_row(
    name: &str,
    ix: &Indexed,
    fusion: Fusion,
    data: &BeirData,
    progress: &dyn Progress,
) -> Result<RetrievalRow> {
    let params = SearchParams { depth: Some(DEFAULT_DEPTH), ..SearchParams::k(RANKING_DEPTH) }
        .with_mode(SearchMode::Hybrid)
        .with_fusion(fusion);
    let (hnsw, hnsw_s) = rankings(&format!("hybrid search {name}"), data, progress, &|i, text| {
        Ok(ix.collection.search_hybrid(&ix.queries[i], text, &params)?.into_iter().map(|h| h.id).collect())
    })?;
    let lexical = SearchParams::k(DEFAULT_DEPTH).with_mode(SearchMode::Lexical);
    let (exact, exact_s) = rankings(&format!("exact hybrid {name}"), data, progress, &|i, text| {
        let dense: Vec<(String, f32)> =
            ix.exact(i, DEFAULT_DEPTH).into_iter().map(|(d, s)| (data.corpus[d].id.clone(), s)).collect();
        let lex: Vec<(String, f32)> =
            ix.collection.search_lexical(text, &lexical)?.into_iter().map(|h| (h.id, h.score)).collect();
        Ok(fuse(&dense, &lex, fusion).into_iter().take(RANKING_DEPTH).map(|(id, _)| id).collect())
    })?;
    Ok(ix.row(name, data, [hnsw, exact], [hnsw_s, exact_s], ix.index_bytes + ix.text_index_bytes))
}

/// nDCG@10 of each judged query, in data order (a query with no ranking scores 0).
fn per_query_ndcg10(data: &BeirData, runs: &[Vec<String>]) -> Vec<f64> {
    data.queries
        .iter()
        .zip(runs)
        .filter_map(|(q, ranking)| data.qrels.get(&q.id).map(|judged| ndcg_at_k(ranking, judged, 10)))
        .collect()
}

/// A valid collection name for a pipeline name (`simcse:x/y` has characters names cannot).
pub(super) fn collection_name(pipeline: &str) -> String {
    let cleaned: String =
        pipeline.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("retrieval_{cleaned}")
}

fn per_second(n: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}
