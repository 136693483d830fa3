//! `advise`: which pipeline retrieves best on a collection's own texts, without a single
//! relevance label.
//!
//! Pseudo-queries are cut out of the collection's texts ([`super::pseudo_queries`]); every
//! candidate — the collection's encoder raw, each transform fitted on the texts, SimCSE
//! checkpoints given, BM25, and each dense candidate fused with BM25 at every fusion of a small
//! grid — indexes the texts in a store collection of its own and answers the pseudo-queries
//! through the store's indexes ([`super::retrieval_run`]). Each candidate gets its pseudo-nDCG@10
//! with a bootstrap confidence interval and a paired randomisation test against the best.
//!
//! The recommendation ([`recommend`]): of the candidates not clearly worse than the best
//! (p ≥ [`SIGNIFICANCE`]), the simplest — fewest fitted or trained parts, then dense or lexical
//! before hybrid — and the better-scoring between equals. So a transform, a trained model or a
//! second index is recommended only when the pseudo-queries say it clearly helps, and "keep raw"
//! when nothing does. A fusion weight is tuned, not added: each dense pipeline's hybrid rows
//! differ only in it, and the best-scoring one gives the fusion a hybrid search with
//! [`Fusion::Auto`] uses (recorded in the collection).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::pseudo_queries::{self, PseudoConfig};
use super::retrieval::{BeirData, BeirDoc};
use super::retrieval_run::{self, RetrievalOutcome, RetrievalPipeline, RetrievalPlan, RetrievalRow};
use super::significance::{bootstrap_mean_ci, paired_randomization_p, BOOTSTRAP_ROUNDS, DEFAULT_ROUNDS};
use crate::encoder::{Encoder, EncoderOptions};
use crate::progress::Progress;
use crate::store::{AdvisedSearch, Fusion, ListParams, SearchMode, Store};
use crate::transform::{FlowConfig, Transform, TransformKind};
use crate::{Error, Pipeline, Result};

/// A candidate is "clearly worse" than the best when the paired randomisation test of their
/// per-query pseudo-nDCG@10 gives a p-value under this.
pub const SIGNIFICANCE: f64 = 0.05;

/// Level of the confidence intervals.
pub const CONFIDENCE: f64 = 0.95;

/// Fewest documents with text `advise` works on.
pub const MIN_DOCUMENTS: usize = 20;

/// What [`advise`] tries and how.
#[derive(Clone, Debug)]
pub struct AdviseOptions {
    /// Pseudo-queries (fewer if the texts have too few usable documents).
    pub queries: usize,
    /// Seed of the pseudo-queries, the document sample, the flow and the bootstrap.
    pub seed: u64,
    /// Transforms fitted on the texts, each a candidate (the collection's own is added).
    pub transforms: Vec<TransformKind>,
    /// SimCSE checkpoint folders (`isovec train simcse`), each a candidate.
    pub simcse: Vec<PathBuf>,
    /// Convex fusion weights of the dense side tried for every hybrid candidate (the default
    /// weight is always tried).
    pub alphas: Vec<f32>,
    /// Also try reciprocal-rank fusion.
    pub rrf: bool,
    /// Documents indexed at most: the queried ones and a seeded sample of the others.
    pub max_documents: usize,
    /// Folder for the candidates' stores (emptied of them afterwards by the caller).
    pub work_dir: PathBuf,
}

impl AdviseOptions {
    /// The defaults, with the candidates' stores in `work_dir`.
    pub fn new(work_dir: PathBuf) -> Self {
        let flow = FlowConfig::default();
        AdviseOptions {
            queries: 300,
            seed: 42,
            transforms: ["whiten", "whiten-256", "whiten-128", "flow"]
                .iter()
                .filter_map(|k| TransformKind::parse(k, &flow).ok())
                .collect(),
            simcse: Vec::new(),
            alphas: vec![0.3, 0.4, 0.6, 0.7],
            rrf: true,
            max_documents: 10_000,
            work_dir,
        }
    }
}

/// One candidate's pseudo-query scores.
#[derive(Clone, Debug, Serialize)]
pub struct AdviceRow {
    /// The candidate, named as `eval retrieval` names pipelines.
    pub pipeline: String,
    /// Mean pseudo-nDCG@10 through the store's indexes, in [0, 1].
    pub ndcg10: f64,
    /// Its bootstrap confidence interval ([`CONFIDENCE`]).
    pub ci: (f64, f64),
    /// Paired randomisation test against the best candidate (absent for the best itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_vs_best: Option<f64>,
    /// Whether it is among the candidates not clearly worse than the best.
    pub contender: bool,
    #[serde(skip)]
    candidate: RetrievalPipeline,
    #[serde(skip)]
    per_query: Vec<f64>,
}

/// What [`advise`] found.
#[derive(Clone, Debug, Serialize)]
pub struct Advice {
    /// The collection.
    pub collection: String,
    /// Documents indexed by each candidate.
    pub documents: usize,
    /// Pseudo-queries, and how many each scheme made.
    pub queries: usize,
    /// Pseudo-queries per scheme (`ict`, `title`, `span`).
    pub schemes: BTreeMap<String, usize>,
    /// The collection's dense pipeline as a candidate name (`raw`, `whiten-256`, …).
    pub current: String,
    /// Every candidate, best first.
    pub rows: Vec<AdviceRow>,
    /// The best candidate's name.
    pub best: String,
    /// The recommended candidate's name.
    pub recommended: String,
    /// The recommendation in a sentence, with how far it can be trusted.
    pub verdict: String,
    /// For each dense candidate, the hybrid row whose fusion `--alpha auto` would use over its
    /// vectors ([`Advice::fusion_for`]).
    pub fusions: BTreeMap<String, String>,
    /// Candidates left out (a transform that could not be fitted), with the reason.
    pub skipped: Vec<(String, String)>,
    /// The full comparison rows, in `eval retrieval --json`'s form.
    #[serde(skip)]
    pub outcome: RetrievalOutcome,
    #[serde(skip)]
    seed: u64,
}

/// Runs the comparison on the texts of collection `name` of `store` (see the module).
pub fn advise(store: &Store, name: &str, options: &AdviseOptions, progress: &dyn Progress) -> Result<Advice> {
    let collection = store.collection(name)?;
    let pipeline = collection.pipeline()?;
    let current = current_name(&pipeline);
    let hnsw = collection.config().hnsw;
    let corpus: Vec<BeirDoc> = collection
        .list(&ListParams::default())?
        .into_iter()
        .filter(|d| !d.text.trim().is_empty())
        .map(|d| BeirDoc { id: d.id, title: String::new(), text: d.text })
        .collect();
    drop(collection);
    if corpus.len() < MIN_DOCUMENTS {
        return Err(Error::InvalidInput(format!(
            "collection {name:?} has {} documents with text; advise needs at least {MIN_DOCUMENTS} to cut \
             pseudo-queries out of",
            corpus.len()
        )));
    }
    let config = PseudoConfig { queries: options.queries, seed: options.seed, ..PseudoConfig::default() };
    let pseudo = pseudo_queries::build(&corpus, &config)?;
    let data = sample(pseudo.data, options.max_documents, options.seed);
    let mut schemes = BTreeMap::new();
    for scheme in pseudo.scheme.values() {
        *schemes.entry(scheme.name().to_string()).or_insert(0) += 1;
    }

    let plan = RetrievalPlan {
        pipelines: candidates(&current, options)?,
        pooling: pipeline.pooling(),
        hnsw,
        store_dir: options.work_dir.clone(),
        anisotropy_pairs: 0,
        fusion: Fusion::default(),
        passages: None,
        prefixes: pipeline.prefixes().clone(),
    };
    let encoder_options =
        EncoderOptions { max_length: Some(pipeline.encoder().tokenizer().max_length()), ..EncoderOptions::default() };
    let load = |path: &Path| -> Result<Arc<Encoder>> { Ok(Arc::new(Encoder::load(path, encoder_options.clone())?)) };
    let outcome = retrieval_run::evaluate(pipeline.shared_encoder().clone(), &data, &plan, &load, progress)?;

    let (rows, recommended) = judge(&outcome.rows, options.seed);
    let recommended = recommended.ok_or_else(|| Error::InvalidInput("no candidate could be evaluated".into()))?;
    let verdict = verdict(&rows, recommended, &current);
    let best = rows[0].pipeline.clone();
    let recommended = rows[recommended].pipeline.clone();
    let mut advice = Advice {
        collection: name.to_string(),
        documents: data.corpus.len(),
        queries: data.queries.len(),
        schemes,
        current,
        best,
        recommended,
        verdict,
        fusions: BTreeMap::new(),
        skipped: outcome.skipped.clone(),
        rows,
        outcome,
        seed: options.seed,
    };
    let dense: Vec<String> = advice
        .rows
        .iter()
        .filter(|r| !matches!(r.candidate, RetrievalPipeline::Hybrid { .. } | RetrievalPipeline::Bm25))
        .map(|r| r.pipeline.clone())
        .collect();
    for d in dense {
        if let Ok((_, row)) = advice.fusion_for(&d) {
            advice.fusions.insert(d, row);
        }
    }
    Ok(advice)
}

impl Advice {
    /// The recommended candidate.
    pub fn recommendation(&self) -> Result<&AdviceRow> {
        self.row(&self.recommended)
    }

    fn row(&self, name: &str) -> Result<&AdviceRow> {
        self.rows
            .iter()
            .find(|r| r.pipeline == name)
            .ok_or_else(|| Error::InvalidInput(format!("internal: no advice row {name:?}")))
    }

    /// The dense pipeline of the recommendation (`raw` for `bm25`).
    pub fn recommended_dense(&self) -> Result<String> {
        Ok(self.recommendation()?.candidate.base().name())
    }

    /// The fusion chosen for hybrid searches over `dense`'s vectors: its best-scoring `hybrid:`
    /// row's (a weight is tuned, not added: the grid's best is taken, as a weight costs nothing
    /// at query time), and that row's name.
    pub fn fusion_for(&self, dense: &str) -> Result<(Fusion, String)> {
        let row = self
            .rows
            .iter()
            .find(|r| matches!(&r.candidate, RetrievalPipeline::Hybrid { .. }) && r.candidate.base().name() == dense)
            .ok_or_else(|| Error::InvalidInput(format!("no hybrid candidate over {dense} was evaluated")))?;
        let fusion = match &row.candidate {
            RetrievalPipeline::Hybrid { fusion, .. } => fusion.unwrap_or_default(),
            _ => Fusion::default(),
        };
        Ok((fusion, row.pipeline.clone()))
    }

    /// The record of the advised search for a collection whose vectors are `dense`'s (the
    /// recommended mode where the recommendation is over `dense`, else the best row's over it).
    pub fn advised_search(&self, dense: &str, pipeline: crate::PipelineId) -> Result<AdvisedSearch> {
        let (fusion, _) = self.fusion_for(dense)?;
        let rec = self.recommendation()?;
        // The recommendation's mode over its vectors; over other vectors, the best row's mode.
        let mode = if rec.candidate.base().name() == dense {
            mode_of(&rec.candidate)
        } else {
            self.rows
                .iter()
                .find(|r| r.candidate.base().name() == dense)
                .map_or(SearchMode::Hybrid, |r| mode_of(&r.candidate))
        };
        let (fusion_name, alpha) = match fusion {
            Fusion::Rrf { .. } => ("rrf", None),
            Fusion::Convex { alpha } => ("convex", Some(alpha)),
            Fusion::Auto => ("convex", Some(crate::store::fusion::DEFAULT_ALPHA)),
        };
        Ok(AdvisedSearch {
            pipeline,
            mode: mode.name().to_string(),
            fusion: fusion_name.to_string(),
            alpha,
            recommended: self.recommended.clone(),
            queries: self.queries,
            seed: self.seed,
            recorded_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        })
    }

    /// The pipeline that makes the recommended dense vectors from `current` (the collection's):
    /// its encoder, pooling and prefixes with the transform fitted on the texts, or a SimCSE
    /// checkpoint's encoder; `None` when the collection's vectors are already those.
    pub fn pipeline_to_apply(&self, current: &Pipeline, options: &EncoderOptions) -> Result<Option<Pipeline>> {
        let rec = self.recommendation()?;
        let dense = rec.candidate.base();
        if dense.name() == self.current {
            return Ok(None);
        }
        let encoder = current.shared_encoder().clone();
        let pipeline = match &dense {
            RetrievalPipeline::Raw => {
                Pipeline::with_prefixes(encoder, current.pooling(), current.prefixes().clone(), None)?
            }
            RetrievalPipeline::Transform(_) => {
                let transform: Arc<Transform> = self
                    .outcome
                    .transforms
                    .iter()
                    .find(|(n, _)| *n == dense.name())
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| Error::InvalidInput(format!("internal: {} was not fitted", dense.name())))?;
                Pipeline::with_prefixes(encoder, current.pooling(), current.prefixes().clone(), Some(transform))?
            }
            RetrievalPipeline::Encoder(path) => {
                let options =
                    EncoderOptions { max_length: Some(current.encoder().tokenizer().max_length()), ..options.clone() };
                let encoder = Arc::new(Encoder::load(path, options)?);
                let pooling = match crate::encoder::training_info::read_training_info(path)? {
                    Some(info) => info.pooling.parse()?,
                    None => current.pooling(),
                };
                Pipeline::new(encoder, pooling, None)?
            }
            other => {
                return Err(Error::InvalidInput(format!("internal: {} is not a dense pipeline", other.name())));
            }
        };
        Ok(Some(pipeline))
    }
}

/// The rows of a comparison (pseudo-queries' or labelled ones') judged as [`advise`] judges its
/// candidates, by their per-query nDCG@10 through the store: best first, with intervals and
/// tests against the best, and the index of the recommended row (rows whose name is not a
/// pipeline, such as `+passages` ones, are left out).
pub fn judge(rows: &[RetrievalRow], seed: u64) -> (Vec<AdviceRow>, Option<usize>) {
    let flow = FlowConfig::default();
    let scored = rows
        .iter()
        .filter_map(|r| RetrievalPipeline::parse(&r.pipeline, &flow).ok().map(|c| (c, r.per_query_ndcg10[0].clone())))
        .collect();
    let rows = score(scored, seed);
    let recommended = recommend(&rows);
    (rows, recommended)
}

/// The collection's dense pipeline as a candidate name: `raw`, or its transform's kind.
fn current_name(pipeline: &Pipeline) -> String {
    match pipeline.transform() {
        None => "raw".into(),
        Some(t) => t.id().kind,
    }
}

/// The candidates, in table order: each dense one, BM25, then each dense one fused with BM25
/// at the default fusion, at each other weight, and by RRF.
fn candidates(current: &str, options: &AdviseOptions) -> Result<Vec<RetrievalPipeline>> {
    let flow = FlowConfig { seed: options.seed, ..FlowConfig::default() };
    let mut dense = vec![RetrievalPipeline::Raw];
    let mut add = |p: RetrievalPipeline| {
        if !dense.iter().any(|d| d.name() == p.name()) {
            dense.push(p);
        }
    };
    if current != "raw" {
        add(RetrievalPipeline::parse(current, &flow)?);
    }
    for kind in &options.transforms {
        add(RetrievalPipeline::Transform(kind.clone()));
    }
    for path in &options.simcse {
        add(RetrievalPipeline::Encoder(path.clone()));
    }
    let mut fusions: Vec<Option<Fusion>> = vec![None];
    for &alpha in &options.alphas {
        let f = Fusion::Convex { alpha };
        f.validate()?;
        if f != Fusion::default() && !fusions.contains(&Some(f)) {
            fusions.push(Some(f));
        }
    }
    if options.rrf {
        fusions.push(Some(Fusion::Rrf { k: crate::store::fusion::RRF_K }));
    }
    let mut all = dense.clone();
    all.push(RetrievalPipeline::Bm25);
    for d in &dense {
        for f in &fusions {
            all.push(RetrievalPipeline::Hybrid { dense: Box::new(d.clone()), fusion: *f });
        }
    }
    Ok(all)
}

/// The queried documents and a seeded sample of the others, `max` in all (all when fewer).
fn sample(data: BeirData, max: usize, seed: u64) -> BeirData {
    if data.corpus.len() <= max {
        return data;
    }
    let judged: std::collections::HashSet<&String> = data.qrels.values().flat_map(|j| j.keys()).collect();
    let mut others: Vec<usize> = (0..data.corpus.len()).filter(|&i| !judged.contains(&data.corpus[i].id)).collect();
    others.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let keep: std::collections::HashSet<usize> = others.into_iter().take(max.saturating_sub(judged.len())).collect();
    let corpus = data
        .corpus
        .iter()
        .enumerate()
        .filter(|(i, d)| keep.contains(i) || judged.contains(&d.id))
        .map(|(_, d)| d.clone());
    BeirData { corpus: corpus.collect(), queries: data.queries, qrels: data.qrels }
}

/// Rows of the candidates' per-query scores, best first (ties in candidate order), each with
/// its interval, its test against the best and whether it is a contender.
fn score(scored: Vec<(RetrievalPipeline, Vec<f64>)>, seed: u64) -> Vec<AdviceRow> {
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let mut rows: Vec<AdviceRow> = scored
        .into_iter()
        .map(|(candidate, per_query)| AdviceRow {
            pipeline: candidate.name(),
            ndcg10: mean(&per_query),
            ci: bootstrap_mean_ci(&per_query, BOOTSTRAP_ROUNDS, CONFIDENCE, seed).unwrap_or((0.0, 0.0)),
            p_vs_best: None,
            contender: false,
            candidate,
            per_query,
        })
        .collect();
    rows.sort_by(|a, b| b.ndcg10.total_cmp(&a.ndcg10));
    let Some(best) = rows.first().map(|r| r.per_query.clone()) else { return rows };
    for (i, r) in rows.iter_mut().enumerate() {
        if i == 0 {
            r.contender = true;
            continue;
        }
        r.p_vs_best = paired_randomization_p(&r.per_query, &best, DEFAULT_ROUNDS, seed);
        r.contender = r.p_vs_best.is_some_and(|p| p >= SIGNIFICANCE);
    }
    rows
}

/// What a candidate adds to raw dense search: (fitted or trained parts, a second index);
/// smaller is simpler.
fn complexity(candidate: &RetrievalPipeline) -> (u8, u8) {
    let fitted = |d: &RetrievalPipeline| match d {
        RetrievalPipeline::Transform(_) => 1,
        RetrievalPipeline::Encoder(_) => 2,
        _ => 0,
    };
    match candidate {
        RetrievalPipeline::Hybrid { dense, .. } => (fitted(dense), 1),
        other => (fitted(other), 0),
    }
}

/// Index in `rows` (best first, from [`score`]) of the simplest contender, the better-scoring
/// one between equally simple ones; `None` for no rows.
pub fn recommend(rows: &[AdviceRow]) -> Option<usize> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.contender)
        .min_by(|(_, a), (_, b)| {
            complexity(&a.candidate).cmp(&complexity(&b.candidate)).then(b.ndcg10.total_cmp(&a.ndcg10))
        })
        .map(|(i, _)| i)
}

fn mode_of(candidate: &RetrievalPipeline) -> SearchMode {
    match candidate {
        RetrievalPipeline::Bm25 => SearchMode::Lexical,
        RetrievalPipeline::Hybrid { .. } => SearchMode::Hybrid,
        _ => SearchMode::Dense,
    }
}

/// The recommendation in a sentence, with the evidence for it.
fn verdict(rows: &[AdviceRow], recommended: usize, current: &str) -> String {
    let rec = &rows[recommended];
    let best = &rows[0];
    let pct = |x: f64| 100.0 * x;
    let contenders = rows.iter().filter(|r| r.contender).count();
    let mut out = if rec.pipeline == current {
        format!(
            "keep {current}: no candidate is clearly better on these pseudo-queries than dense search with the \
             collection's vectors ({contenders} of {} candidates are within noise of the best)",
            rows.len()
        )
    } else {
        format!(
            "{}: pseudo-nDCG@10 {:.1} ({:.0}% interval {:.1}–{:.1})",
            rec.pipeline,
            pct(rec.ndcg10),
            100.0 * CONFIDENCE,
            pct(rec.ci.0),
            pct(rec.ci.1)
        )
    };
    if recommended != 0 {
        out.push_str(&format!(
            "; the best, {} ({:.1}), is not clearly better (p = {:.2}), and {} is simpler",
            best.pipeline,
            pct(best.ndcg10),
            rec.p_vs_best.unwrap_or(1.0),
            rec.pipeline
        ));
    }
    if let Some(raw) = rows.iter().find(|r| r.pipeline == current).filter(|_| rec.pipeline != current) {
        let p = paired_randomization_p(&rec.per_query, &raw.per_query, DEFAULT_ROUNDS, 0).unwrap_or(1.0);
        out.push_str(&format!(
            "; against {current} dense search ({:.1}): {:+.1} points, p {}",
            pct(raw.ndcg10),
            pct(rec.ndcg10 - raw.ndcg10),
            if p < 0.001 { "< 0.001".to_string() } else { format!("= {p:.3}") }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> FlowConfig {
        FlowConfig::default()
    }

    /// Per-query scores: `base` everywhere, `up` more on the first `n` queries.
    fn scores(base: f64, up: f64, n: usize) -> Vec<f64> {
        (0..200).map(|i| if i < n { base + up } else { base } + (i % 7) as f64 * 0.01).collect()
    }

    fn rows(list: &[(&str, Vec<f64>)]) -> Vec<AdviceRow> {
        score(list.iter().map(|(n, s)| (RetrievalPipeline::parse(n, &flow()).unwrap(), s.clone())).collect(), 1)
    }

    fn pick(list: &[(&str, Vec<f64>)]) -> String {
        let r = rows(list);
        r[recommend(&r).unwrap()].pipeline.clone()
    }

    #[test]
    fn the_simplest_candidate_within_noise_of_the_best_is_recommended() {
        // whiten beats raw by a hair on 3 of 200 queries: not clearly better, keep raw.
        assert_eq!(pick(&[("raw", scores(0.5, 0.0, 0)), ("whiten", scores(0.5, 0.05, 3))]), "raw");
        // whiten beats raw on half the queries: clearly better.
        assert_eq!(pick(&[("raw", scores(0.5, 0.0, 0)), ("whiten", scores(0.5, 0.2, 100))]), "whiten");
        // Hybrid clearly beats dense; a hybrid over a fitted transform (better on 2 queries) is
        // within noise of the hybrids over raw vectors: the better of those (a weight is tuned,
        // not added) is recommended.
        let list = [
            ("raw", scores(0.4, 0.0, 0)),
            ("hybrid:whiten", scores(0.5, 0.3, 100)),
            ("hybrid:raw@convex=0.7", scores(0.5, 0.3, 99)),
            ("hybrid:raw", scores(0.5, 0.3, 98)),
        ];
        let r = rows(&list);
        assert_eq!(r[0].pipeline, "hybrid:whiten");
        assert_eq!(r[recommend(&r).unwrap()].pipeline, "hybrid:raw@convex=0.7");
        assert!(!r.iter().find(|x| x.pipeline == "raw").unwrap().contender);
        // Equally simple contenders: the better one.
        assert_eq!(pick(&[("bm25", scores(0.5, 0.01, 5)), ("raw", scores(0.5, 0.0, 0))]), "bm25");
        assert_eq!(recommend(&[]), None);
    }

    #[test]
    fn rows_are_best_first_with_intervals_around_their_means() {
        let r = rows(&[("raw", scores(0.3, 0.0, 0)), ("bm25", scores(0.6, 0.0, 0))]);
        assert_eq!(r[0].pipeline, "bm25");
        assert!(r[0].p_vs_best.is_none() && r[0].contender);
        assert!(r[1].p_vs_best.unwrap() < 0.001 && !r[1].contender);
        for row in &r {
            assert!(row.ci.0 <= row.ndcg10 && row.ndcg10 <= row.ci.1, "{row:?}");
        }
    }

    #[test]
    fn candidates_cover_dense_lexical_and_the_fusion_grid() {
        let mut options = AdviseOptions::new(PathBuf::from("/tmp/x"));
        options.transforms = vec![TransformKind::parse("whiten", &flow()).unwrap()];
        options.alphas = vec![0.3, 0.5, 0.7];
        let names: Vec<String> = candidates("whiten-128", &options).unwrap().iter().map(|c| c.name()).collect();
        let want = [
            "raw",
            "whiten-128",
            "whiten",
            "bm25",
            "hybrid:raw",
            "hybrid:raw@convex=0.3",
            "hybrid:raw@convex=0.7",
            "hybrid:raw@rrf",
            "hybrid:whiten-128",
            "hybrid:whiten-128@convex=0.3",
            "hybrid:whiten-128@convex=0.7",
            "hybrid:whiten-128@rrf",
            "hybrid:whiten",
            "hybrid:whiten@convex=0.3",
            "hybrid:whiten@convex=0.7",
            "hybrid:whiten@rrf",
        ];
        assert_eq!(names, want);
        options.alphas = vec![1.5];
        assert!(candidates("raw", &options).is_err());
    }

    #[test]
    fn a_sample_keeps_every_queried_document() {
        let doc = |i: usize| BeirDoc { id: format!("d{i}"), title: String::new(), text: format!("text {i}") };
        let data = BeirData {
            corpus: (0..100).map(doc).collect(),
            queries: vec![crate::eval::retrieval::BeirQuery { id: "q".into(), text: "x".into() }],
            qrels: [("q".to_string(), [("d97".to_string(), 1)].into_iter().collect())].into_iter().collect(),
        };
        let small = sample(data.clone(), 10, 3);
        assert_eq!(small.corpus.len(), 10);
        assert!(small.corpus.iter().any(|d| d.id == "d97"));
        assert_eq!(sample(data.clone(), 10, 3).corpus, small.corpus);
        assert_eq!(sample(data, 1000, 3).corpus.len(), 100);
    }
}
