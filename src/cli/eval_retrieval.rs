//! `isovec eval retrieval`: BEIR retrieval (nDCG@10, MRR@10, recall@k) per pipeline, through the
//! store's HNSW index and through exact search, with the index's cost.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::common::{BarProgress, DataArgs, ModelArgs};
use crate::encoder::{Encoder, Pooling};
use crate::eval::pseudo_queries::{self, PseudoConfig};
use crate::eval::retrieval::{load_beir, BeirData};
use crate::eval::retrieval_run::{self, RetrievalOutcome, RetrievalPipeline, RetrievalPlan};
use crate::store::HnswParams;
use crate::transform::FlowConfig;

/// Token limit for documents when `--max-length` is not given: the all-MiniLM-L6-v2 model card's
/// setting (it was trained on 128-token inputs and sentence-transformers cuts at 256); SciFact
/// abstracts average ~300 tokens, so most of each abstract is kept at a third of the cost of 512.
pub const DEFAULT_DOC_MAX_LENGTH: usize = 256;

/// Options of `isovec eval retrieval`.
#[derive(Args, Debug)]
pub struct EvalRetrievalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// Also write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The retrieval options shared by `eval retrieval` and `report`.
#[derive(Args, Clone, Debug)]
pub struct RetrievalArgs {
    /// BEIR folder, relative to --data (or absolute).
    #[arg(long, default_value = "retrieval/scifact")]
    pub dataset: PathBuf,
    /// Split whose qrels are scored (SciFact in shared/data has `train`).
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Pipelines, comma-separated: raw, whiten, whiten-K, flow, simcse:PATH.
    #[arg(long, value_delimiter = ',', default_value = "raw,whiten,whiten-128,flow")]
    pub pipelines: Vec<String>,
    /// Pooling of the model's vectors.
    #[arg(long, default_value = "mean")]
    pub pooling: String,
    /// Text put before every query, e.g. "query: " for e5-style models.
    #[arg(long, default_value = "")]
    pub query_prefix: String,
    /// Text put before every document, e.g. "passage: " for e5-style models.
    #[arg(long, default_value = "")]
    pub document_prefix: String,
    /// Store folder for the collections (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// HNSW links per node.
    #[arg(long, default_value_t = HnswParams::default().m)]
    pub hnsw_m: usize,
    /// HNSW candidate list width while building.
    #[arg(long, default_value_t = HnswParams::default().ef_construction)]
    pub ef_construction: usize,
    /// HNSW candidate list width while searching (raised to 100, the ranking depth).
    #[arg(long, default_value_t = HnswParams::default().ef_search)]
    pub ef_search: usize,
    /// Flow: passes over the corpus vectors.
    #[arg(long, default_value_t = 1.0)]
    pub flow_epochs: f64,
    /// Flow: levels.
    #[arg(long, default_value_t = FlowConfig::default().levels)]
    pub flow_levels: usize,
    /// Flow: steps per level.
    #[arg(long, default_value_t = FlowConfig::default().steps_per_level)]
    pub flow_steps: usize,
    /// Flow: hidden width of the couplings.
    #[arg(long, default_value_t = FlowConfig::default().width)]
    pub flow_width: usize,
    /// Seed of the flow.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use only the first N judged queries (and their judged documents).
    #[arg(long)]
    pub max_queries: Option<usize>,
    /// Use at most N documents (judged documents of the kept queries first).
    #[arg(long)]
    pub max_docs: Option<usize>,
    /// Index long documents as overlapping passages of LEN tokens, STRIDE apart (default 3/4 of
    /// LEN); `max` is the encoder's limit. Rows are named `<pipeline>+passages`.
    #[arg(long, value_name = "LEN[:STRIDE]")]
    pub passages: Option<String>,
    /// Ignore the split's queries and labels: evaluate on N pseudo-queries cut out of the corpus
    /// (a sentence, the title or a run of words of a document, which loses it and is the query's
    /// one relevant document; `eval::pseudo_queries`), drawn with --seed.
    #[arg(long, value_name = "N")]
    pub pseudo: Option<usize>,
}

impl RetrievalArgs {
    /// Loads the BEIR split named by `--dataset` (under `data`) and `--split`, cut to the limits.
    pub fn load_data(&self, data: &std::path::Path) -> anyhow::Result<BeirData> {
        let dir = data.join(&self.dataset);
        let full =
            load_beir(&dir, &self.split).with_context(|| format!("loading the BEIR folder {}", dir.display()))?;
        let full = match self.pseudo {
            None => full,
            Some(queries) => {
                let config = PseudoConfig { queries, seed: self.seed, ..PseudoConfig::default() };
                pseudo_queries::build(&full.corpus, &config)?.data
            }
        };
        Ok(match (self.max_queries, self.max_docs) {
            (None, None) => full,
            (q, d) => retrieval_run::subset(&full, q.unwrap_or(usize::MAX), d.unwrap_or(usize::MAX)),
        })
    }

    /// The plan, with the store in `store_dir`.
    pub fn plan(&self, store_dir: PathBuf, anisotropy_pairs: usize) -> anyhow::Result<RetrievalPlan> {
        let flow = FlowConfig {
            epochs: self.flow_epochs,
            levels: self.flow_levels,
            steps_per_level: self.flow_steps,
            width: self.flow_width,
            seed: self.seed,
            ..FlowConfig::default()
        };
        let pipelines =
            self.pipelines.iter().map(|p| RetrievalPipeline::parse(p.trim(), &flow)).collect::<Result<Vec<_>, _>>()?;
        let pooling: Pooling = self.pooling.parse()?;
        Ok(RetrievalPlan {
            pipelines,
            pooling,
            hnsw: HnswParams { m: self.hnsw_m, ef_construction: self.ef_construction, ef_search: self.ef_search },
            store_dir,
            anisotropy_pairs,
            fusion: crate::store::Fusion::default(),
            passages: self.passages.as_deref().map(parse_passages).transpose()?,
            prefixes: crate::Prefixes { query: self.query_prefix.clone(), document: self.document_prefix.clone() },
        })
    }
}

/// Runs the comparison with the model options (documents cut at 256 tokens unless
/// `--max-length` says otherwise) and prints the truncation counts.
pub fn run_comparison(
    model: &ModelArgs,
    retrieval: &RetrievalArgs,
    data: &BeirData,
    anisotropy_pairs: usize,
) -> anyhow::Result<RetrievalOutcome> {
    let mut model = model.clone();
    model.max_length.get_or_insert(DEFAULT_DOC_MAX_LENGTH);
    let (store_dir, _temp) = super::common::work_dir(retrieval.store.as_ref(), "retrieval");
    let plan = retrieval.plan(store_dir, anisotropy_pairs)?;
    let encoder = model.load()?;
    let load_encoder = |path: &std::path::Path| -> crate::Result<Arc<Encoder>> {
        let args = ModelArgs { model: Some(path.to_path_buf()), ..model.clone() };
        args.load().map_err(|e| crate::Error::Model(format!("{e:#}")))
    };
    eprintln!(
        "{} documents, {} judged queries; pipelines: {}",
        data.corpus.len(),
        data.queries.len(),
        plan.pipelines.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
    );
    let outcome = retrieval_run::evaluate(encoder, data, &plan, &load_encoder, &BarProgress::default())?;
    for (model, count, max) in &outcome.truncated {
        eprintln!("{model}: {count} of {} documents truncated at {max} tokens", data.corpus.len());
    }
    Ok(outcome)
}

/// Runs `isovec eval retrieval`.
pub fn run(args: EvalRetrievalArgs) -> anyhow::Result<()> {
    let data = args.retrieval.load_data(&args.data.data)?;
    let outcome = run_comparison(&args.model, &args.retrieval, &data, 0)?;
    println!(
        "Retrieval on {} ({} split; {} documents, {} queries; top {} per query)",
        args.retrieval.dataset.display(),
        args.retrieval.split,
        data.corpus.len(),
        data.queries.len(),
        retrieval_run::RANKING_DEPTH
    );
    print!("{}", retrieval_run::markdown_tables(&outcome.rows));
    for (model, count, max) in &outcome.truncated {
        println!("\n{model}: {count} of {} documents truncated at {max} tokens.", data.corpus.len());
    }
    for (name, reason) in &outcome.skipped {
        println!("\n{name}: skipped, {reason}");
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "dataset": args.retrieval.dataset,
            "split": args.retrieval.split,
            "truncated": outcome.truncated,
            "skipped": outcome.skipped,
            "rows": outcome.rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("rows written to {}", path.display());
    }
    Ok(())
}

/// `LEN`, `LEN:STRIDE`, `max` or `max:STRIDE` as passages.
fn parse_passages(s: &str) -> anyhow::Result<crate::store::Passages> {
    let number = |t: &str| {
        t.parse::<usize>()
            .map_err(|_| anyhow::anyhow!("--passages {s}: {t:?} is not a number of tokens; e.g. --passages 128:96"))
    };
    let (len, stride) = match s.split_once(':') {
        Some((l, st)) => (l, Some(number(st)?)),
        None => (s, None),
    };
    let length = if len == "max" { None } else { Some(number(len)?) };
    Ok(crate::store::Passages { length, stride })
}
