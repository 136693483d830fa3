//! `isovec advise`: which pipeline retrieves best on a collection's own texts, without labels
//! (`eval::advise`); records the fusion a hybrid search with `--alpha auto` uses, and with
//! `--apply` re-embeds the collection into the recommended pipeline.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::common::{work_dir, BarProgress};
use super::store_cmds::{open_store, StoreArgs};
use crate::encoder::EncoderOptions;
use crate::eval::advise::{advise, Advice, AdviseOptions, CONFIDENCE, SIGNIFICANCE};
use crate::transform::{FlowConfig, TransformKind};

/// Options of `isovec advise`.
#[derive(Args, Debug)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// Pseudo-queries cut out of the collection's texts.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Seed of the pseudo-queries, the document sample, the flow and the bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Transforms fitted on the texts, each a candidate (`none` for no transform candidate).
    #[arg(long, value_delimiter = ',', default_value = "whiten,whiten-256,whiten-128,flow")]
    pub transforms: Vec<String>,
    /// A SimCSE checkpoint folder (`isovec train simcse`) as a candidate; repeat for several.
    #[arg(long)]
    pub simcse: Vec<PathBuf>,
    /// Convex fusion weights of the dense side tried for every hybrid candidate (0.5, the
    /// default, always is).
    #[arg(long, value_delimiter = ',', default_value = "0.3,0.4,0.6,0.7")]
    pub alphas: Vec<f32>,
    /// Do not try reciprocal-rank fusion.
    #[arg(long)]
    pub no_rrf: bool,
    /// Index at most this many documents per candidate: the queried ones and a seeded sample
    /// of the others.
    #[arg(long, default_value_t = 10_000)]
    pub max_documents: usize,
    /// Re-embed the collection into the recommended pipeline (nothing happens when its vectors
    /// already are), and record the recommended search for `--alpha auto`.
    #[arg(long)]
    pub apply: bool,
    /// Also write the advice and every candidate's comparison row as JSON here (the rows in
    /// `eval retrieval --json`'s form, for scripts/pseudo-vs-true.py).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Folder for the candidates' stores (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// Runs `isovec advise`.
pub fn run(args: AdviseArgs) -> anyhow::Result<()> {
    let flow = FlowConfig { seed: args.seed, ..FlowConfig::default() };
    let transforms = args
        .transforms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty() && *t != "none")
        .map(|t| TransformKind::parse(t, &flow))
        .collect::<Result<Vec<_>, _>>()?;
    let (work_dir, _cleanup) = work_dir(args.work_dir.as_ref(), "advise");
    let options = AdviseOptions {
        queries: args.queries,
        seed: args.seed,
        transforms,
        simcse: args.simcse.clone(),
        alphas: args.alphas.clone(),
        rrf: !args.no_rrf,
        max_documents: args.max_documents,
        work_dir,
    };
    let encoder_options = EncoderOptions::default();
    let store = open_store(&args.target.store, false, &encoder_options)?;
    let name = &args.target.collection;
    let advice = advise(&store, name, &options, &BarProgress::default())
        .with_context(|| format!("advising on collection {name:?} of {}", args.target.store.display()))?;
    print!("{}", advice_table(&advice));
    println!("\nRecommendation: {}", advice.verdict);
    for (pipeline, reason) in &advice.skipped {
        println!("(left out: {pipeline}: {reason})");
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "advice": &advice, "rows": &advice.outcome.rows });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let collection = store.collection(name)?;
    let current = collection.pipeline()?;
    let dense = match args.apply {
        false => advice.current.clone(),
        true => match advice.pipeline_to_apply(&current, &encoder_options)? {
            None => advice.current.clone(),
            Some(pipeline) => {
                drop(collection);
                eprintln!("re-embedding {name} into {}", advice.recommended_dense()?);
                let report = store.reembed(name, &pipeline, &BarProgress::default())?;
                println!("Applied: re-embedded {} documents into {}", report.documents, report.to);
                advice.recommended_dense()?
            }
        },
    };
    let collection = store.collection(name)?;
    let record = advice.advised_search(&dense, collection.config().pipeline.clone())?;
    collection.record_advised_search(&record)?;
    let (fusion, row) = advice.fusion_for(&dense)?;
    println!(
        "Recorded for {name}: the {} mode; hybrid searches with --alpha auto fuse by {} ({row}).",
        record.mode,
        fusion.name()
    );
    if !args.apply && advice.recommended_dense()? != advice.current {
        println!("Run again with --apply to re-embed the collection into {}.", advice.recommended_dense()?);
    }
    drop(collection);
    store.close()?;
    Ok(())
}

/// The candidates as a Markdown table, best first.
pub fn advice_table(advice: &Advice) -> String {
    let rows = advice.rows.iter().map(|r| {
        vec![
            r.pipeline.clone(),
            format!("{:.2}", 100.0 * r.ndcg10),
            format!("{:.2}–{:.2}", 100.0 * r.ci.0, 100.0 * r.ci.1),
            r.p_vs_best.map_or("-".to_string(), |p| if p < 0.001 { "<0.001".into() } else { format!("{p:.3}") }),
            if r.contender { "yes".into() } else { String::new() },
            if r.pipeline == advice.recommended { "◀ recommended".into() } else { String::new() },
        ]
    });
    let ci = format!("{:.0}% interval", 100.0 * CONFIDENCE);
    let within = format!("within noise (p ≥ {SIGNIFICANCE})");
    let header = ["candidate", "pseudo-nDCG@10", ci.as_str(), "p vs best", within.as_str(), ""];
    let schemes: Vec<String> = advice.schemes.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!(
        "Advice for {}: {} pseudo-queries ({}) over {} documents, no labels; the collection's vectors: {}\n\n{}",
        advice.collection,
        advice.queries,
        schemes.join(", "),
        advice.documents,
        advice.current,
        crate::table::markdown(&header, 1, rows)
    )
}
