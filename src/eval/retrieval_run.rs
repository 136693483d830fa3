//! The retrieval comparison: for each pipeline, the BEIR corpus indexed in a store collection,
//! the queries answered by the collection's HNSW search and by an exact scan, both scored with
//! the BEIR metrics, with the index's cost (build time, queries/s, bytes).
//!
//! The corpus is encoded once per encoder; raw, whitened and flow pipelines reuse those vectors
//! (their transforms are fitted on the corpus documents, without labels). `bm25` ranks with the
//! collection's full-text index, and `hybrid:<dense>` fuses a dense pipeline's ranking with it;
//! a dense pipeline is indexed once for all the rows that use it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::anisotropy::{analyze, Anisotropy};
use super::retrieval::{evaluate as score_runs, ndcg_at_k, BeirData, BeirDoc, RetrievalMetrics};
use super::significance::{paired_randomization_p, DEFAULT_ROUNDS};
use crate::encoder::{Encoder, Pooling};
use crate::progress::Progress;
use crate::store::fusion::{fuse, DEFAULT_DEPTH};
use crate::store::{
    Collection, CollectionConfig, Fusion, HnswParams, Passages, PassagesDoc, SearchMode, SearchParams, Store,
};
use crate::transform::{FlowConfig, Transform, TransformKind};
use crate::vector::exact_top_k;
use crate::{Error, Pipeline, Result};

/// Ranking depth: recall@100 needs the top 100.
pub const RANKING_DEPTH: usize = 100;
/// Documents per store upsert (one sled batch each).
const UPSERT_CHUNK: usize = 512;

/// One pipeline to compare.
#[derive(Clone, Debug, PartialEq)]
pub enum RetrievalPipeline {
    /// The encoder's pooled vectors, normalised.
    Raw,
    /// A transform fitted on the corpus documents' raw vectors.
    Transform(TransformKind),
    /// Another encoder (a SimCSE checkpoint folder), its vectors used raw.
    Encoder(PathBuf),
    /// BM25 through the store's full-text index (no vectors).
    Bm25,
    /// A dense pipeline's ranking fused with BM25's; `fusion` `None` is the store's default.
    Hybrid {
        /// The dense side.
        dense: Box<RetrievalPipeline>,
        /// How the rankings are fused.
        fusion: Option<Fusion>,
    },
}

impl RetrievalPipeline {
    /// Parses `raw` (or `none`), `whiten`, `whiten-K`, `flow`, `simcse:PATH`, `bm25`, or
    /// `hybrid:<one of the dense ones>`, optionally ending in `@rrf` or `@convex=A`.
    pub fn parse(s: &str, flow: &FlowConfig) -> Result<Self> {
        if s == "bm25" {
            return Ok(RetrievalPipeline::Bm25);
        }
        if let Some(rest) = s.strip_prefix("hybrid:") {
            let (dense, fusion) = match rest.rsplit_once('@') {
                Some((dense, f)) => (dense, Some(parse_fusion(f)?)),
                None => (rest, None),
            };
            let dense = Self::parse(dense, flow)?;
            if matches!(dense, RetrievalPipeline::Bm25 | RetrievalPipeline::Hybrid { .. }) {
                return Err(Error::InvalidInput(format!(
                    "{s:?}: hybrid: takes a dense pipeline, e.g. hybrid:raw, hybrid:whiten-256, hybrid:simcse:PATH"
                )));
            }
            return Ok(RetrievalPipeline::Hybrid { dense: Box::new(dense), fusion });
        }
        match s {
            "raw" | "none" => Ok(RetrievalPipeline::Raw),
            _ => match s.strip_prefix("simcse:") {
                Some("") => Err(Error::InvalidInput(
                    "simcse: needs the checkpoint folder, e.g. simcse:runs/simcse/best".into(),
                )),
                Some(path) => Ok(RetrievalPipeline::Encoder(PathBuf::from(path))),
                None => TransformKind::parse(s, flow)
                    .map(RetrievalPipeline::Transform)
                    .map_err(|_| {
                        Error::InvalidInput(format!(
                            "unknown pipeline {s:?}; valid: raw, whiten, whiten-K (e.g. whiten-128), flow, simcse:PATH, bm25, hybrid:<dense>[@rrf|@convex=A]"
                        ))
                    }),
            },
        }
    }

    /// The name rows carry: `raw`, `whiten-128`, `simcse:<parent>/<folder>` … — the parent too,
    /// because training writes every run's checkpoints as `RUN/best` and `RUN/last`.
    pub fn name(&self) -> String {
        match self {
            RetrievalPipeline::Raw => "raw".into(),
            RetrievalPipeline::Transform(kind) => kind.name(),
            RetrievalPipeline::Encoder(path) => {
                let parts: Vec<String> = path
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let tail = parts[parts.len().saturating_sub(2)..].join("/");
                format!("simcse:{}", if tail.is_empty() { path.display().to_string() } else { tail })
            }
            RetrievalPipeline::Bm25 => "bm25".into(),
            RetrievalPipeline::Hybrid { dense, fusion } => match fusion {
                None => format!("hybrid:{}", dense.name()),
                Some(Fusion::Rrf { .. }) => format!("hybrid:{}@rrf", dense.name()),
                Some(Fusion::Convex { alpha }) => format!("hybrid:{}@convex={alpha}", dense.name()),
            },
        }
    }

    /// The dense pipeline whose collection serves this row (`bm25` uses raw's).
    fn base(&self) -> RetrievalPipeline {
        match self {
            RetrievalPipeline::Bm25 => RetrievalPipeline::Raw,
            RetrievalPipeline::Hybrid { dense, .. } => (**dense).clone(),
            other => other.clone(),
        }
    }
}

/// `rrf` or `convex=A`.
fn parse_fusion(s: &str) -> Result<Fusion> {
    match s.split_once('=') {
        Some(("convex", a)) => {
            let alpha = a
                .parse::<f32>()
                .map_err(|_| Error::InvalidInput(format!("@convex={a}: the weight must be a number in [0, 1]")))?;
            Fusion::parse("convex", Some(alpha))
        }
        None => Fusion::parse(s, None),
        _ => Err(Error::InvalidInput(format!("unknown fusion @{s}; use @rrf or @convex=A"))),
    }
}

/// What to compare and how.
#[derive(Clone, Debug)]
pub struct RetrievalPlan {
    /// Pipelines, in table order.
    pub pipelines: Vec<RetrievalPipeline>,
    /// Pooling of the main encoder (a SimCSE checkpoint uses the pooling it was trained with).
    pub pooling: Pooling,
    /// HNSW parameters of every collection.
    pub hnsw: HnswParams,
    /// Folder for the stores (one sub-folder and collection per pipeline).
    pub store_dir: PathBuf,
    /// Random pairs for the anisotropy of each pipeline's document vectors (0: none).
    pub anisotropy_pairs: usize,
    /// Fusion of `hybrid:` rows that name none.
    pub fusion: Fusion,
    /// Index long documents as overlapping passages (see [`crate::store::Passages`]), each
    /// document scored by its best passage; rows are then named `<pipeline>+passages`.
    pub passages: Option<Passages>,
    /// Texts put before queries and documents (of the main encoder's pipelines).
    pub prefixes: crate::Prefixes,
}

/// One pipeline's results.
#[derive(Clone, Debug, Serialize)]
pub struct RetrievalRow {
    /// Pipeline name (`raw`, `whiten`, `whiten-128`, `flow`, `simcse:…`).
    pub pipeline: String,
    /// Model folder name.
    pub model: String,
    /// Pooling name.
    pub pooling: String,
    /// Vector dimensions in the index.
    pub dims: usize,
    /// Documents indexed.
    pub documents: usize,
    /// Metrics of the HNSW rankings.
    pub hnsw: RetrievalMetrics,
    /// Metrics of the exact (brute-force cosine) rankings.
    pub exact: RetrievalMetrics,
    /// Share of the exact top 10 that HNSW found in its top 10, averaged over queries.
    pub ann_recall10: f64,
    /// Seconds to fit the transform (0 for none).
    pub fit_seconds: f64,
    /// Seconds to insert every document into the collection (sled writes + HNSW inserts).
    pub build_seconds: f64,
    /// HNSW searches per second, one thread, top 100.
    pub hnsw_queries_per_second: f64,
    /// Exact scans per second, one thread, top 100.
    pub exact_queries_per_second: f64,
    /// Size of the HNSW index snapshot on disk.
    pub index_bytes: u64,
    /// Size of the pipeline's store on disk (sled: texts and vectors; index snapshot; text index).
    pub store_bytes: u64,
    /// Paired randomisation test of this row's per-query nDCG@10 against `raw`'s, through the
    /// store (`hnsw`) and exact (absent for `raw` itself, or without a `raw` row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_vs_raw: Option<PValues>,
    /// Per-query nDCG@10 (judged queries in data order), HNSW then exact, for the tests above.
    #[serde(skip)]
    pub per_query_ndcg10: [Vec<f64>; 2],
}

/// p-values of one row against another, per search.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PValues {
    /// Through the store's indexes.
    pub hnsw: f64,
    /// Exact dense search (fused with the same lexical ranking for `hybrid:` rows).
    pub exact: f64,
}

/// The rows, and what else the run learned.
#[derive(Clone, Debug)]
pub struct RetrievalOutcome {
    /// One row per pipeline, in plan order.
    pub rows: Vec<RetrievalRow>,
    /// Documents cut at the maximum length, per encoder (model name, count, max tokens).
    pub truncated: Vec<(String, usize, usize)>,
    /// Anisotropy of each pipeline's document vectors (empty unless asked for).
    pub anisotropy: Vec<(String, Anisotropy)>,
    /// Pipelines left out because their transform could not be fitted: (name, reason).
    pub skipped: Vec<(String, String)>,
}

/// The text a document is encoded from: title, a space, body (as BEIR's dense retrievers).
pub fn document_text(doc: &BeirDoc) -> String {
    if doc.title.trim().is_empty() {
        doc.text.clone()
    } else {
        format!("{} {}", doc.title, doc.text)
    }
}

/// A smaller BEIR split: the first `max_queries` queries, every document judged for them, then
/// the first corpus documents up to `max_docs` in all (judged ones are never dropped).
pub fn subset(data: &BeirData, max_queries: usize, max_docs: usize) -> BeirData {
    let queries: Vec<_> = data.queries.iter().take(max_queries).cloned().collect();
    let qrels: super::retrieval::Qrels =
        queries.iter().filter_map(|q| data.qrels.get(&q.id).map(|j| (q.id.clone(), j.clone()))).collect();
    let judged: std::collections::HashSet<&str> = qrels.values().flat_map(|j| j.keys()).map(String::as_str).collect();
    let mut room = max_docs.saturating_sub(judged.len());
    let corpus = data
        .corpus
        .iter()
        .filter(|d| {
            if judged.contains(d.id.as_str()) {
                true
            } else if room > 0 {
                room -= 1;
                true
            } else {
                false
            }
        })
        .cloned()
        .collect();
    BeirData { corpus, queries, qrels }
}

/// Raw (pooled, untransformed) vectors of one encoder for a corpus and its queries.
struct EncodedSplit {
    encoder: Arc<Encoder>,
    pooling: Pooling,
    prefixes: crate::Prefixes,
    /// One vector per document, or per passage when documents are split.
    docs: Vec<Vec<f32>>,
    /// The document (index in the corpus) of each vector of `docs`.
    owners: Vec<usize>,
    queries: Vec<Vec<f32>>,
}

impl EncodedSplit {
    /// The id of the encoder half of this split's pipelines.
    fn encoder_id(&self) -> crate::EncoderId {
        crate::EncoderId { prefixes: self.prefixes.clone(), ..self.encoder.id(self.pooling) }
    }
}

fn encode_split(
    encoder: Arc<Encoder>,
    pooling: Pooling,
    prefixes: &crate::Prefixes,
    data: &BeirData,
    passages: Option<Passages>,
    progress: &dyn Progress,
) -> Result<(EncodedSplit, usize)> {
    let texts: Vec<String> = data.corpus.iter().map(document_text).collect();
    // Each vector's text (the document prefix, then a document or one of its passages).
    let mut pieces: Vec<String> = Vec::with_capacity(texts.len());
    let mut owners = Vec::with_capacity(texts.len());
    let prefix_tokens =
        if prefixes.document.is_empty() { 0 } else { encoder.tokenizer().token_spans(&prefixes.document)?.spans.len() };
    for (i, text) in texts.iter().enumerate() {
        match passages {
            Some(p) => {
                let mut tokens = encoder.tokenizer().token_spans(text)?;
                tokens.capacity = tokens.capacity.saturating_sub(prefix_tokens).max(1);
                let (length, stride) = p.resolve(tokens.capacity)?;
                for range in crate::pipeline::passages::split(text, &tokens, length, stride) {
                    pieces.push(format!("{}{}", prefixes.document, &text[range]));
                    owners.push(i);
                }
            }
            None => {
                pieces.push(format!("{}{text}", prefixes.document));
                owners.push(i);
            }
        }
    }
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let what = if passages.is_some() { "passages" } else { "documents" };
    progress.start(&format!("encoding {} {what} ({})", refs.len(), encoder.name()), refs.len());
    let docs = encoder.encode_with_progress(&refs, &[pooling], &|n| progress.advance(n))?;
    progress.finish();
    let queries: Vec<String> = data.queries.iter().map(|q| format!("{}{}", prefixes.query, q.text)).collect();
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    progress.start(&format!("encoding queries ({})", encoder.name()), queries.len());
    let encoded_queries = encoder.encode_with_progress(&queries, &[pooling], &|n| progress.advance(n))?;
    progress.finish();
    let first = |mut v: Vec<Vec<Vec<f32>>>| v.drain(..).next().unwrap_or_default();
    Ok((
        EncodedSplit {
            encoder,
            pooling,
            prefixes: prefixes.clone(),
            docs: first(docs.vectors),
            owners,
            queries: first(encoded_queries.vectors),
        },
        docs.truncated,
    ))
}

/// Runs the comparison on `data` with `encoder`; `load_encoder` opens a SimCSE checkpoint folder.
pub fn evaluate(
    encoder: Arc<Encoder>,
    data: &BeirData,
    plan: &RetrievalPlan,
    load_encoder: &dyn Fn(&Path) -> Result<Arc<Encoder>>,
    progress: &dyn Progress,
) -> Result<RetrievalOutcome> {
    if data.corpus.is_empty() || data.queries.is_empty() {
        return Err(Error::InvalidInput(format!(
            "nothing to evaluate: {} documents and {} judged queries; check the data folder and --split",
            data.corpus.len(),
            data.queries.len()
        )));
    }
    if plan.pipelines.is_empty() {
        return Err(Error::InvalidInput("no pipelines given; e.g. --pipelines raw,whiten,flow".into()));
    }
    let mut outcome =
        RetrievalOutcome { rows: Vec::new(), truncated: Vec::new(), anisotropy: Vec::new(), skipped: Vec::new() };
    // Each dense pipeline is indexed once, for every row that uses its collection.
    let mut bases: Vec<RetrievalPipeline> = Vec::new();
    for p in &plan.pipelines {
        if !bases.contains(&p.base()) {
            bases.push(p.base());
        }
    }
    let mut rows: Vec<Option<RetrievalRow>> = vec![None; plan.pipelines.len()];
    let mut main: Option<EncodedSplit> = None;
    for base in &bases {
        let name = base.name();
        let other;
        let split = match base {
            RetrievalPipeline::Encoder(path) => {
                let enc = load_encoder(path)?;
                let pooling = match crate::train::checkpoint::read_training_info(path)? {
                    Some(info) => info.pooling.parse()?,
                    None => plan.pooling,
                };
                let (encoded, truncated) =
                    encode_split(enc.clone(), pooling, &crate::Prefixes::default(), data, plan.passages, progress)?;
                outcome.truncated.push((name.clone(), truncated, enc.tokenizer().max_length()));
                other = encoded;
                &other
            }
            _ => {
                if main.is_none() {
                    let (encoded, truncated) =
                        encode_split(encoder.clone(), plan.pooling, &plan.prefixes, data, plan.passages, progress)?;
                    outcome.truncated.push((encoder.name().to_string(), truncated, encoder.tokenizer().max_length()));
                    main = Some(encoded);
                }
                main.as_ref().ok_or_else(|| Error::InvalidInput("internal: no encoded corpus".into()))?
            }
        };
        let kind = match base {
            RetrievalPipeline::Transform(kind) => Some(kind),
            _ => None,
        };
        // A transform that cannot be fitted on this corpus (e.g. full whitening of vectors with
        // fewer usable directions than dimensions) is reported and skipped; the others still run.
        let fit_start = Instant::now();
        let transform = match kind {
            Some(kind) => {
                progress.start(&format!("fitting {name} on {} documents", split.docs.len()), 0);
                let fitted = kind.fit(&split.docs, &split.encoder_id(), progress);
                progress.finish();
                match fitted {
                    Ok(t) => Some(Arc::new(t)),
                    Err(e) => {
                        progress.start(&format!("skipping {name}: {e}"), 0);
                        for p in plan.pipelines.iter().filter(|p| p.base() == *base) {
                            outcome.skipped.push((p.name(), e.to_string()));
                        }
                        continue;
                    }
                }
            }
            None => None,
        };
        let fit_seconds = if kind.is_some() { fit_start.elapsed().as_secs_f64() } else { 0.0 };
        let indexed = index_pipeline(&name, split, transform, fit_seconds, data, plan, progress)?;
        for (i, p) in plan.pipelines.iter().enumerate() {
            if p.base() != *base {
                continue;
            }
            let row = match p {
                RetrievalPipeline::Bm25 => lexical_row(&indexed, data, progress)?,
                RetrievalPipeline::Hybrid { fusion, .. } => {
                    hybrid_row(&p.name(), &indexed, fusion.unwrap_or(plan.fusion), data, progress)?
                }
                _ => {
                    if plan.anisotropy_pairs > 0 {
                        outcome.anisotropy.push((name.clone(), analyze(&indexed.docs, plan.anisotropy_pairs, 0)));
                    }
                    dense_row(&indexed, data, progress)?
                }
            };
            rows[i] = Some(row);
        }
        indexed.close()?;
    }
    outcome.rows = rows.into_iter().flatten().collect();
    if plan.passages.is_some() {
        for row in &mut outcome.rows {
            if row.pipeline != "bm25" {
                row.pipeline.push_str("+passages");
            }
        }
    }
    add_p_values(&mut outcome.rows);
    Ok(outcome)
}

/// A dense pipeline's vectors in a fresh collection, with what building it cost.
struct Indexed<'a> {
    name: String,
    split: &'a EncodedSplit,
    docs: Vec<Vec<f32>>,
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
    fn close(self) -> Result<()> {
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
fn index_pipeline<'a>(
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

fn dense_row(ix: &Indexed, data: &BeirData, progress: &dyn Progress) -> Result<RetrievalRow> {
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
fn lexical_row(ix: &Indexed, data: &BeirData, progress: &dyn Progress) -> Result<RetrievalRow> {
    let params = SearchParams::k(RANKING_DEPTH).with_mode(SearchMode::Lexical);
    let (runs, seconds) = rankings("BM25 search", data, progress, &|_, text| {
        Ok(ix.collection.search_lexical(text, &params)?.into_iter().map(|h| h.id).collect())
    })?;
    Ok(ix.row("bm25", data, [runs.clone(), runs], [seconds, seconds], ix.text_index_bytes))
}

/// `hybrid:<dense>`: the store's hybrid search (`hnsw`), and the same fusion of the exact dense
/// ranking with the store's lexical one (`exact`).
fn hybrid_row(
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

/// Fills each row's p-values against the `raw` row, if there is one.
fn add_p_values(rows: &mut [RetrievalRow]) {
    let Some(raw) = rows.iter().find(|r| r.pipeline == "raw").map(|r| r.per_query_ndcg10.clone()) else {
        return;
    };
    for r in rows.iter_mut().filter(|r| r.pipeline != "raw") {
        let p = |i: usize| paired_randomization_p(&r.per_query_ndcg10[i], &raw[i], DEFAULT_ROUNDS, 0);
        if let (Some(hnsw), Some(exact)) = (p(0), p(1)) {
            r.p_vs_raw = Some(PValues { hnsw, exact });
        }
    }
}

/// A valid collection name for a pipeline name (`simcse:x/y` has characters names cannot).
fn collection_name(pipeline: &str) -> String {
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

/// Indices of the `k` documents with the largest dot product with `query` (cosine, as every
/// vector is unit length), best first; ties go to the earlier document.
pub fn exact_ranking(query: &[f32], docs: &[Vec<f32>], k: usize) -> Vec<usize> {
    exact_top(query, docs, k).into_iter().map(|(i, _)| i).collect()
}

/// [`exact_ranking`] with the scores: (document index, dot product).
pub fn exact_top(query: &[f32], docs: &[Vec<f32>], k: usize) -> Vec<(usize, f32)> {
    exact_top_k(query, k, docs.iter().enumerate().map(|(i, d)| (i as u64, d.as_slice())))
        .into_iter()
        .map(|s| (s.internal_id as usize, s.score))
        .collect()
}

/// Share of each exact top-`k` found in the approximate top `k`, averaged over queries.
pub fn ann_recall(approximate: &[Vec<String>], exact: &[Vec<String>], k: usize) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for (a, e) in approximate.iter().zip(exact) {
        let truth: Vec<&String> = e.iter().take(k).collect();
        if truth.is_empty() {
            continue;
        }
        let found = a.iter().take(k).filter(|id| truth.contains(id)).count();
        sum += found as f64 / truth.len() as f64;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Total size of the files under `path` (0 when missing).
pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map_or(0, |m| m.len());
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// A p-value for a table: three decimals, or `<0.001`.
fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Renders the rows as two Markdown tables: quality (through the store, and exact) and cost.
pub fn markdown_tables(rows: &[RetrievalRow]) -> String {
    let quality = rows.iter().flat_map(|r| {
        let searches =
            [("exact", &r.exact, r.p_vs_raw.map(|p| p.exact)), ("store", &r.hnsw, r.p_vs_raw.map(|p| p.hnsw))];
        searches.map(|(search, m, p)| {
            let mut cells = vec![
                r.pipeline.clone(),
                search.to_string(),
                format!("{:.4}", m.ndcg10),
                p.map_or("-".to_string(), format_p),
            ];
            cells.extend([m.mrr10, m.recall1, m.recall5, m.recall10, m.recall100].map(|x| format!("{x:.4}")));
            cells
        })
    });
    let header = ["pipeline", "search", "nDCG@10", "p vs raw", "MRR@10", "R@1", "R@5", "R@10", "R@100"];
    let mut out = crate::table::markdown(&header, 2, quality);
    let cost = rows.iter().map(|r| {
        vec![
            r.pipeline.clone(),
            r.dims.to_string(),
            r.documents.to_string(),
            r.exact.queries.to_string(),
            format!("{:.4}", r.ann_recall10),
            format!("{:.2}", r.fit_seconds),
            format!("{:.2}", r.build_seconds),
            format!("{:.0}", r.hnsw_queries_per_second),
            format!("{:.0}", r.exact_queries_per_second),
            r.index_bytes.to_string(),
            r.store_bytes.to_string(),
        ]
    });
    let header = [
        "pipeline",
        "dims",
        "docs",
        "queries",
        "ANN recall@10",
        "fit s",
        "index build s",
        "HNSW q/s",
        "exact q/s",
        "index bytes",
        "store bytes",
    ];
    out.push('\n');
    out.push_str(&crate::table::markdown(&header, 1, cost));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::retrieval::BeirQuery;

    #[test]
    fn exact_ranking_matches_a_full_sort_in_f64() {
        // Pseudo-random unit vectors; the ranking must equal a full f64 sort.
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
        };
        let mut docs: Vec<Vec<f32>> = (0..200).map(|_| (0..16).map(|_| next()).collect()).collect();
        for v in &mut docs {
            crate::vector::normalize(v);
        }
        let mut query: Vec<f32> = (0..16).map(|_| next()).collect();
        crate::vector::normalize(&mut query);
        let got = exact_ranking(&query, &docs, 25);
        let mut want: Vec<(f64, usize)> =
            docs.iter().enumerate().map(|(i, d)| (crate::vector::cosine(&query, d), i)).collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<usize> = want.into_iter().take(25).map(|(_, i)| i).collect();
        assert_eq!(got, want);
        assert_eq!(exact_ranking(&query, &docs, 1000).len(), 200);
        assert!(exact_ranking(&query, &[], 10).is_empty());
    }

    #[test]
    fn ann_recall_counts_overlap_of_top_k() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let exact = vec![s(&["a", "b", "c", "d"]), s(&["x", "y"])];
        let approx = vec![s(&["b", "a", "z", "c"]), s(&["y", "x"])];
        // query 1: {a,b} of top-2 found → 1; query 2: both → 1
        assert_eq!(ann_recall(&approx, &exact, 2), 1.0);
        // top-3: query 1 finds a, b (z is wrong) → 2/3; query 2 has 2 exact, both found → 1
        assert!((ann_recall(&approx, &exact, 3) - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn pipelines_parse_and_name() {
        let flow = FlowConfig::default();
        assert_eq!(RetrievalPipeline::parse("raw", &flow).unwrap(), RetrievalPipeline::Raw);
        assert_eq!(RetrievalPipeline::parse("whiten-128", &flow).unwrap().name(), "whiten-128");
        assert_eq!(RetrievalPipeline::parse("simcse:runs/best", &flow).unwrap().name(), "simcse:runs/best");
        // Two runs' best checkpoints keep apart.
        assert_eq!(RetrievalPipeline::parse("simcse:/x/unsup/best/", &flow).unwrap().name(), "simcse:unsup/best");
        assert_eq!(RetrievalPipeline::parse("simcse:ckpt", &flow).unwrap().name(), "simcse:ckpt");
        assert!(RetrievalPipeline::parse("simcse:", &flow).is_err());
        let msg = RetrievalPipeline::parse("whitened", &flow).unwrap_err().to_string();
        assert!(msg.contains("simcse:PATH"), "{msg}");
        assert_eq!(collection_name("simcse:a/b"), "retrieval_simcse_a_b");
    }

    #[test]
    fn lexical_and_hybrid_pipelines_parse_and_name() {
        let flow = FlowConfig::default();
        let parse = |s: &str| RetrievalPipeline::parse(s, &flow);
        assert_eq!(parse("bm25").unwrap(), RetrievalPipeline::Bm25);
        let h = parse("hybrid:whiten-256").unwrap();
        assert_eq!(h.name(), "hybrid:whiten-256");
        assert_eq!(h.base().name(), "whiten-256");
        assert_eq!(parse("bm25").unwrap().base(), RetrievalPipeline::Raw);
        assert_eq!(parse("hybrid:raw@rrf").unwrap().name(), "hybrid:raw@rrf");
        let convex = parse("hybrid:simcse:runs/x/best@convex=0.3").unwrap();
        assert_eq!(convex.name(), "hybrid:simcse:x/best@convex=0.3");
        assert_eq!(
            convex,
            RetrievalPipeline::Hybrid {
                dense: Box::new(RetrievalPipeline::Encoder(PathBuf::from("runs/x/best"))),
                fusion: Some(Fusion::Convex { alpha: 0.3 })
            }
        );
        for bad in ["hybrid:bm25", "hybrid:hybrid:raw", "hybrid:raw@max", "hybrid:raw@convex=2", "hybrid:"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_top_scores_are_the_dot_products() {
        let docs = vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0]];
        let got = exact_top(&[0.8, 0.6], &docs, 2);
        assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 0]);
        assert!((got[0].1 - 0.96).abs() < 1e-6 && (got[1].1 - 0.8).abs() < 1e-6);
    }

    #[test]
    fn subset_keeps_judged_documents() {
        let doc = |id: &str| BeirDoc { id: id.into(), title: String::new(), text: id.into() };
        let data = BeirData {
            corpus: ["d1", "d2", "d3", "d4", "d5"].iter().map(|i| doc(i)).collect(),
            queries: vec![
                BeirQuery { id: "q1".into(), text: "a".into() },
                BeirQuery { id: "q2".into(), text: "b".into() },
            ],
            qrels: [("q1", "d5"), ("q2", "d4")]
                .iter()
                .map(|(q, d)| (q.to_string(), [(d.to_string(), 1)].into_iter().collect()))
                .collect(),
        };
        let small = subset(&data, 1, 2);
        assert_eq!(small.queries.len(), 1);
        let ids: Vec<&str> = small.corpus.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d1", "d5"]);
        assert!(small.qrels.contains_key("q1") && !small.qrels.contains_key("q2"));
        assert_eq!(document_text(&BeirDoc { id: "x".into(), title: "T".into(), text: "body".into() }), "T body");
    }
}
