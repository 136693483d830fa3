//! The retrieval comparison: for each pipeline, the BEIR corpus indexed in a store collection,
//! the queries answered by the collection's HNSW search and by an exact scan, both scored with
//! the BEIR metrics, with the index's cost (build time, queries/s, bytes).
//!
//! The corpus is encoded once per encoder; raw, whitened and flow pipelines reuse those vectors
//! (their transforms are fitted on the corpus documents, without labels). `bm25` ranks with the
//! collection's full-text index, and `hybrid:<dense>` fuses a dense pipeline's ranking with it;
//! a dense pipeline is indexed once for all the rows that use it.
//!
//! This file holds the plan, the rows' types and the run; `rows.rs` indexes a pipeline and
//! scores its row, `table.rs` renders the rows as Markdown.

mod rows;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use rows::{dense_row, hybrid_row, index_pipeline, lexical_row};
pub use table::markdown_tables;

use super::anisotropy::{analyze, Anisotropy};
use super::retrieval::{BeirData, BeirDoc, RetrievalMetrics};
use super::significance::{paired_randomization_p, DEFAULT_ROUNDS};
use crate::encoder::{Encoder, Pooling};
use crate::progress::Progress;
use crate::store::{Fusion, HnswParams, Passages};
use crate::transform::{FlowConfig, Transform, TransformKind};
use crate::vector::exact_top_k;
use crate::{Error, Result};

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
                Some(Fusion::Auto) => format!("hybrid:{}@auto", dense.name()),
            },
        }
    }

    /// The dense pipeline whose collection serves this row (`bm25` uses raw's).
    pub fn base(&self) -> RetrievalPipeline {
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
        None if s != "auto" => Fusion::parse(s, None),
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
    /// The same test against `hybrid:raw`'s, for the other `hybrid:` rows (absent without a
    /// `hybrid:raw` row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_vs_hybrid_raw: Option<PValues>,
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
    /// The transforms fitted on the corpus, by pipeline name (`whiten-256`, `flow`, …).
    pub transforms: Vec<(String, Arc<Transform>)>,
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
    let mut outcome = RetrievalOutcome {
        rows: Vec::new(),
        truncated: Vec::new(),
        anisotropy: Vec::new(),
        skipped: Vec::new(),
        transforms: Vec::new(),
    };
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
                let pooling = match crate::encoder::training_info::read_training_info(path)? {
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
                    Ok(t) => {
                        let t = Arc::new(t);
                        outcome.transforms.push((name.clone(), t.clone()));
                        Some(t)
                    }
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

/// Fills each row's p-values against the `raw` row, and each other `hybrid:` row's against the
/// `hybrid:raw` row, where those rows exist.
fn add_p_values(rows: &mut [RetrievalRow]) {
    let per_query = |rows: &[RetrievalRow], name: &str| {
        rows.iter().find(|r| r.pipeline == name).map(|r| r.per_query_ndcg10.clone())
    };
    let p = |a: &[Vec<f64>; 2], b: &[Vec<f64>; 2]| {
        let p = |i: usize| paired_randomization_p(&a[i], &b[i], DEFAULT_ROUNDS, 0);
        match (p(0), p(1)) {
            (Some(hnsw), Some(exact)) => Some(PValues { hnsw, exact }),
            _ => None,
        }
    };
    if let Some(raw) = per_query(rows, "raw") {
        for r in rows.iter_mut().filter(|r| r.pipeline != "raw") {
            r.p_vs_raw = p(&r.per_query_ndcg10, &raw);
        }
    }
    if let Some(hybrid_raw) = per_query(rows, "hybrid:raw") {
        for r in rows.iter_mut().filter(|r| r.pipeline.starts_with("hybrid:") && r.pipeline != "hybrid:raw") {
            r.p_vs_hybrid_raw = p(&r.per_query_ndcg10, &hybrid_raw);
        }
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

#[cfg(test)]
mod tests {
    use super::rows::collection_name;
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
