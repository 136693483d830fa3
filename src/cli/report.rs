//! `isovec report`: the STS comparison, the retrieval comparison (dense, BM25, and each dense
//! pipeline fused with BM25) and the anisotropy charts in one Markdown report with SVG charts.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::common::{BarProgress, DataArgs, ModelArgs};
use super::eval_retrieval::{run_comparison, RetrievalArgs};
use crate::encoder::Pooling;
use crate::eval::anisotropy::Anisotropy;
use crate::eval::histogram_svg::write_histogram_svg;
use crate::eval::retrieval_charts::{write_recall_curves_svg, write_scatter_svg};
use crate::eval::retrieval_run::{markdown_tables, RetrievalRow};
use crate::eval::significance::{paired_randomization_p, DEFAULT_ROUNDS};
use crate::eval::sts::{Split, StsSet};
use crate::eval::sts_table::{self, FitSource, StsPlan, StsRow, TransformSpec};
use crate::table;
use crate::transform::{FlowConfig, TransformKind};

/// Options of `isovec report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// Folder for report.md, report.json and the charts.
    #[arg(long)]
    pub out: PathBuf,
    /// SimCSE checkpoint folders to compare too (repeat for several).
    #[arg(long)]
    pub simcse: Vec<PathBuf>,
    /// Tiny subsets (STS-B only, mean pooling; 20 queries and 300 documents), for tests.
    #[arg(long)]
    pub quick: bool,
    /// Random document pairs for the cosine histograms.
    #[arg(long, default_value_t = 100_000)]
    pub pairs: usize,
    /// Leave out the `bm25` row and the `hybrid:` row of each dense pipeline.
    #[arg(long)]
    pub no_lexical: bool,
    /// The "Without labels" section: the same comparison on this many pseudo-queries cut out of
    /// the corpus, charted against the labelled scores, with what `isovec advise` would
    /// recommend (0: no such section; 20 with --quick).
    #[arg(long, default_value_t = 300)]
    pub pseudo_queries: usize,
}

/// Runs `isovec report`.
pub fn run(mut args: ReportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    if args.retrieval.pseudo.is_some() {
        anyhow::bail!(
            "the report scores the labelled queries; its \"Without labels\" section uses pseudo-queries \
             (--pseudo-queries N), so leave out --pseudo"
        );
    }
    if args.quick {
        args.pseudo_queries = args.pseudo_queries.min(20);
        args.retrieval.max_queries.get_or_insert(20);
        args.retrieval.max_docs.get_or_insert(300);
        args.pairs = args.pairs.min(5_000);
    }
    for path in &args.simcse {
        args.retrieval.pipelines.push(format!("simcse:{}", path.display()));
    }
    if !args.no_lexical {
        add_lexical_rows(&mut args.retrieval.pipelines);
    }
    let retrieval_pooling: Pooling = args.retrieval.pooling.parse()?;

    // 1. STS: every pooling × (none, whiten, whiten-128, flow), fitted on each set's sentences.
    let sets: Vec<StsSet> = if args.quick {
        vec![StsSet::StsB]
    } else {
        vec![StsSet::Sts12, StsSet::Sts13, StsSet::Sts14, StsSet::Sts15, StsSet::Sts16, StsSet::StsB, StsSet::SickR]
    };
    let flow = FlowConfig {
        epochs: args.retrieval.flow_epochs,
        levels: args.retrieval.flow_levels,
        steps_per_level: args.retrieval.flow_steps,
        width: args.retrieval.flow_width,
        seed: args.retrieval.seed,
        ..FlowConfig::default()
    };
    let transforms = ["whiten", "whiten-128", "flow"]
        .iter()
        .map(|t| Ok(TransformSpec { kind: TransformKind::parse(t, &flow)?, fit_on: FitSource::Target }))
        .collect::<crate::Result<Vec<_>>>()?;
    let plan = StsPlan {
        sets: sets.clone(),
        split: Split::Test,
        poolings: if args.quick { vec![retrieval_pooling] } else { Pooling::ALL.to_vec() },
        transforms,
    };
    eprintln!("[1/3] STS comparison ({} sets, {} poolings, none + 3 transforms)", sets.len(), plan.poolings.len());
    let sts_start = Instant::now();
    let encoder = args.model.load()?;
    let mut sts_rows = sts_table::evaluate(&encoder, &args.data.data, &plan, &BarProgress::default())?;
    drop(encoder);
    for path in &args.simcse {
        let model = ModelArgs { model: Some(path.clone()), ..args.model.clone() };
        let enc = model.load()?;
        let pooling = match crate::train::checkpoint::read_training_info(path)? {
            Some(info) => info.pooling.parse()?,
            None => retrieval_pooling,
        };
        let simcse_plan = StsPlan { poolings: vec![pooling], transforms: Vec::new(), ..plan.clone() };
        eprintln!("  STS of {}", path.display());
        let mut rows = sts_table::evaluate(&enc, &args.data.data, &simcse_plan, &BarProgress::default())?;
        let name = crate::eval::retrieval_run::RetrievalPipeline::Encoder(path.clone()).name();
        rows.iter_mut().for_each(|r| {
            r.model = name.trim_start_matches("simcse:").to_string();
            r.transform = name.clone();
        });
        sts_rows.extend(rows);
    }
    let sts_seconds = sts_start.elapsed().as_secs_f64();

    // 2. Retrieval, with the document vectors' anisotropy per pipeline.
    eprintln!("[2/3] retrieval comparison on {}", args.retrieval.dataset.display());
    let retrieval_start = Instant::now();
    let data = args.retrieval.load_data(&args.data.data)?;
    let outcome = run_comparison(&args.model, &args.retrieval, &data, args.pairs)?;
    let pseudo = match args.pseudo_queries {
        0 => None,
        n => {
            eprintln!("[2/3] the same comparison on {n} pseudo-queries (no labels)");
            let pseudo_args = RetrievalArgs { pseudo: Some(n), ..args.retrieval.clone() };
            let pseudo_data = pseudo_args.load_data(&args.data.data)?;
            Some(run_comparison(&args.model, &pseudo_args, &pseudo_data, 0)?)
        }
    };
    let retrieval_seconds = retrieval_start.elapsed().as_secs_f64();

    // 3. Charts and the report.
    eprintln!("[3/3] charts and report in {}", args.out.display());
    let curves: Vec<(String, [f64; 4])> = outcome
        .rows
        .iter()
        .map(|r| (r.pipeline.clone(), [r.exact.recall1, r.exact.recall5, r.exact.recall10, r.exact.recall100]))
        .collect();
    write_recall_curves_svg(&args.out.join("recall-at-k.svg"), "Recall@k, exact search", &curves)?;
    let hnsw_curves: Vec<(String, [f64; 4])> = outcome
        .rows
        .iter()
        .map(|r| (r.pipeline.clone(), [r.hnsw.recall1, r.hnsw.recall5, r.hnsw.recall10, r.hnsw.recall100]))
        .collect();
    write_recall_curves_svg(&args.out.join("recall-at-k-hnsw.svg"), "Recall@k, HNSW search", &hnsw_curves)?;
    let points = sts_vs_ndcg(&sts_rows, &outcome.rows, retrieval_pooling);
    write_scatter_svg(
        &args.out.join("sts-vs-ndcg.svg"),
        "STS average against retrieval nDCG@10",
        "STS Spearman ×100, average (all)",
        "nDCG@10 (exact)",
        &points,
    )?;
    let hybrid = dense_and_hybrid(&outcome.rows);
    if !hybrid.is_empty() {
        let points: Vec<(String, f64, f64)> =
            hybrid.iter().map(|h| (h.dense.clone(), h.dense_ndcg, h.hybrid_ndcg)).collect();
        write_scatter_svg(
            &args.out.join("dense-vs-hybrid.svg"),
            "nDCG@10 alone and fused with BM25",
            "nDCG@10, dense (exact)",
            "nDCG@10, hybrid with BM25 (exact)",
            &points,
        )?;
    }
    let without_labels = pseudo.as_ref().map(|p| WithoutLabels::new(&outcome.rows, &p.rows, args.retrieval.seed));
    if let Some(w) = &without_labels {
        let points: Vec<(String, f64, f64)> =
            w.rows.iter().map(|r| (r.pipeline.clone(), 100.0 * r.pseudo, 100.0 * r.labelled)).collect();
        write_scatter_svg(
            &args.out.join("pseudo-vs-true.svg"),
            "nDCG@10 on pseudo-queries (no labels) against labelled queries",
            "pseudo-nDCG@10 ×100 (store)",
            "nDCG@10 ×100 (store)",
            &points,
        )?;
    }
    let labelled: Vec<(&str, &Anisotropy)> = outcome.anisotropy.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_histogram_svg(&args.out.join("cosine-histogram.svg"), &labelled)?;

    let report = render(
        &args,
        &sets,
        &sts_rows,
        &outcome,
        &points,
        &hybrid,
        without_labels.as_ref(),
        &data,
        [sts_seconds, retrieval_seconds, started.elapsed().as_secs_f64()],
    );
    let md = args.out.join("report.md");
    std::fs::write(&md, report).with_context(|| format!("writing {}", md.display()))?;
    let json = serde_json::json!({
        "sts": sts_rows,
        "retrieval": outcome.rows,
        "pseudo_retrieval": pseudo.as_ref().map(|p| &p.rows),
        "truncated": outcome.truncated,
        "skipped": outcome.skipped,
        "anisotropy": outcome.anisotropy.iter().map(|(n, a)| serde_json::json!({
            "pipeline": n, "mean_cosine": a.mean_cosine, "top1_variance_share": a.top1_variance_share,
            "top10_variance_share": a.top10_variance_share, "vectors": a.vectors,
        })).collect::<Vec<_>>(),
    });
    let json_path = args.out.join("report.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!("report: {}", md.display());
    Ok(())
}

/// Adds `bm25` and `hybrid:<p>` for each dense pipeline `p` that lacks them.
fn add_lexical_rows(pipelines: &mut Vec<String>) {
    let dense: Vec<String> = pipelines.iter().filter(|p| *p != "bm25" && !p.starts_with("hybrid:")).cloned().collect();
    if !pipelines.iter().any(|p| p == "bm25") {
        pipelines.push("bm25".into());
    }
    for p in dense {
        let hybrid = format!("hybrid:{p}");
        if !pipelines.contains(&hybrid) {
            pipelines.push(hybrid);
        }
    }
}

/// A dense pipeline and its fusion with BM25, side by side.
struct DenseAndHybrid {
    dense: String,
    dense_ndcg: f64,
    hybrid_ndcg: f64,
    /// The hybrid row's nDCG@10 minus `hybrid:raw`'s, and the p-value of that difference.
    against_hybrid_raw: Option<(f64, f64)>,
}

/// Every dense row that has a `hybrid:` row with the default fusion (exact search).
fn dense_and_hybrid(rows: &[RetrievalRow]) -> Vec<DenseAndHybrid> {
    let hybrid_raw = rows.iter().find(|r| r.pipeline == "hybrid:raw");
    rows.iter()
        .filter_map(|dense| {
            let hybrid = rows.iter().find(|r| r.pipeline == format!("hybrid:{}", dense.pipeline))?;
            let against_hybrid_raw = hybrid_raw.filter(|h| h.pipeline != hybrid.pipeline).and_then(|h| {
                let p = paired_randomization_p(&hybrid.per_query_ndcg10[1], &h.per_query_ndcg10[1], DEFAULT_ROUNDS, 0)?;
                Some((hybrid.exact.ndcg10 - h.exact.ndcg10, p))
            });
            Some(DenseAndHybrid {
                dense: dense.pipeline.clone(),
                dense_ndcg: dense.exact.ndcg10,
                hybrid_ndcg: hybrid.exact.ndcg10,
                against_hybrid_raw,
            })
        })
        .collect()
}

/// Each pipeline's nDCG@10 on pseudo-queries beside its labelled one, and what `isovec advise`
/// would recommend from the pseudo-queries alone.
struct WithoutLabels {
    rows: Vec<PseudoAndTrue>,
    /// Kendall's τ-b between the two columns.
    tau: Option<f64>,
    /// The recommended pipeline and its labelled nDCG@10.
    recommended: Option<(String, f64)>,
    /// The pipeline best on the labelled queries and its nDCG@10.
    best: Option<(String, f64)>,
    queries: usize,
}

struct PseudoAndTrue {
    pipeline: String,
    pseudo: f64,
    labelled: f64,
    contender: bool,
}

impl WithoutLabels {
    fn new(labelled: &[RetrievalRow], pseudo: &[RetrievalRow], seed: u64) -> Self {
        let (judged, recommended) = crate::eval::advise::judge(pseudo, seed);
        let rows: Vec<PseudoAndTrue> = judged
            .iter()
            .filter_map(|j| {
                let t = labelled.iter().find(|r| r.pipeline == j.pipeline)?;
                Some(PseudoAndTrue {
                    pipeline: j.pipeline.clone(),
                    pseudo: j.ndcg10,
                    labelled: t.hnsw.ndcg10,
                    contender: j.contender,
                })
            })
            .collect();
        let xs: Vec<f64> = rows.iter().map(|r| r.pseudo).collect();
        let ys: Vec<f64> = rows.iter().map(|r| r.labelled).collect();
        let labelled_of = |name: &str| rows.iter().find(|r| r.pipeline == name).map(|r| (name.to_string(), r.labelled));
        let recommended = recommended.and_then(|i| labelled_of(&judged[i].pipeline));
        let best =
            rows.iter().max_by(|a, b| a.labelled.total_cmp(&b.labelled)).map(|r| (r.pipeline.clone(), r.labelled));
        let queries = pseudo.first().map_or(0, |r| r.hnsw.queries);
        WithoutLabels { tau: crate::eval::kendall::kendall_tau_b(&xs, &ys), rows, recommended, best, queries }
    }

    fn render(&self, md: &mut String) {
        let _ = writeln!(md, "## Without labels\n");
        let _ = writeln!(md, "The same comparison on {} pseudo-queries cut out of the corpus (a sentence or a run of words of a document, which loses it and is the query's one relevant document; no labels), beside the labelled queries, both through the store. `isovec advise` ranks a collection's candidates this way and recommends the simplest one not clearly worse than the best (paired randomisation test, p ≥ {}).\n", self.queries, crate::eval::advise::SIGNIFICANCE);
        let rows = self.rows.iter().map(|r| {
            let mark = match &self.recommended {
                Some((name, _)) if *name == r.pipeline => "◀ recommended",
                _ if r.contender => "within noise of the best",
                _ => "",
            };
            vec![
                r.pipeline.clone(),
                format!("{:.2}", 100.0 * r.pseudo),
                format!("{:.2}", 100.0 * r.labelled),
                mark.into(),
            ]
        });
        md.push_str(&table::markdown(&["pipeline", "pseudo-nDCG@10", "nDCG@10 (labelled)", ""], 1, rows));
        let tau = self.tau.map_or("-".to_string(), |t| format!("{t:.3}"));
        let _ = writeln!(md, "\nKendall's τ-b between the columns: {tau} over {} pipelines.", self.rows.len());
        if let (Some((rec, rec_ndcg)), Some((best, best_ndcg))) = (&self.recommended, &self.best) {
            let _ = writeln!(
                md,
                "Recommended without labels: {rec} ({:.2} on the labelled queries); best on them: {best} ({:.2}); gap {:.2}.",
                100.0 * rec_ndcg,
                100.0 * best_ndcg,
                100.0 * (best_ndcg - rec_ndcg)
            );
        }
        let _ = writeln!(md, "\n![pseudo against labelled nDCG@10](pseudo-vs-true.svg)\n");
    }
}

/// The STS row a retrieval pipeline corresponds to: same pooling, transform `none` for `raw`.
fn sts_vs_ndcg(sts: &[StsRow], retrieval: &[RetrievalRow], pooling: Pooling) -> Vec<(String, f64, f64)> {
    retrieval
        .iter()
        .filter_map(|r| {
            let transform = if r.pipeline == "raw" { "none" } else { r.pipeline.as_str() };
            let simcse = r.pipeline.starts_with("simcse:");
            sts.iter()
                .find(|s| s.aggregation == "all" && s.transform == transform && (simcse || s.pooling == pooling.name()))
                .and_then(|s| s.scores.get("avg"))
                .map(|avg| (r.pipeline.clone(), *avg, r.exact.ndcg10))
        })
        .collect()
}

// One argument per part of the report (and its timings): a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn render(
    args: &ReportArgs,
    sets: &[StsSet],
    sts_rows: &[StsRow],
    outcome: &crate::eval::retrieval_run::RetrievalOutcome,
    points: &[(String, f64, f64)],
    hybrid: &[DenseAndHybrid],
    without_labels: Option<&WithoutLabels>,
    data: &crate::eval::retrieval::BeirData,
    [sts_s, retrieval_s, total_s]: [f64; 3],
) -> String {
    let mut md = String::new();
    let model = args.model.model_dir();
    let model = match &args.model.model {
        // The default model's folder is machine-specific; its name says which it is.
        None => format!(
            "`{}` (the default model)",
            model.file_name().map_or_else(|| model.display().to_string(), |n| n.to_string_lossy().into_owned())
        ),
        Some(_) => format!("`{}`", model.display()),
    };
    let _ = writeln!(md, "# isovec report\n");
    let _ = writeln!(
        md,
        "Model {}{}. STS: Spearman ×100 of cosine similarities, STS-B and SICK-R test splits; transforms fitted on each set's own sentences (no labels). Retrieval: {} ({} split, {} documents, {} judged queries), documents encoded as title + \" \" + text, transforms fitted on the corpus documents (no labels).\n",
        model,
        if args.quick { " — **quick mode (tiny subsets; numbers are not comparable to the papers)**" } else { "" },
        args.retrieval.dataset.display(),
        args.retrieval.split,
        data.corpus.len(),
        data.queries.len(),
    );
    let _ = writeln!(md, "Time: STS {sts_s:.0} s, retrieval {retrieval_s:.0} s, total {total_s:.0} s.\n");
    let _ = writeln!(md, "## STS\n");
    md.push_str(&sts_table::markdown_table(sts_rows, sets));
    let _ = writeln!(md, "\n## Retrieval\n");
    let _ = writeln!(md, "Rankings of depth 100 through the store (`store`: its HNSW index; for `bm25` its full-text index; for `hybrid:` both, fused) and with exact dense search (`exact`; fused with the same BM25 ranking for `hybrid:` rows). ANN recall@10: share of the exact top 10 that the store returns. p vs raw: paired randomisation test of the per-query nDCG@10 against `raw` ({DEFAULT_ROUNDS} rounds), and p vs hybrid:raw the same for the other `hybrid:` rows; with a few hundred queries, differences under about a point are noise.\n");
    md.push_str(&markdown_tables(&outcome.rows));
    for (model, count, max) in &outcome.truncated {
        let _ = writeln!(md, "\n{model}: {count} of {} documents truncated at {max} tokens.", data.corpus.len());
    }
    for (name, reason) in &outcome.skipped {
        let _ = writeln!(md, "\n{name}: skipped, {reason}");
    }
    if let Some(best) = outcome.rows.iter().max_by(|a, b| a.exact.ndcg10.total_cmp(&b.exact.ndcg10)) {
        if let Some(raw) = outcome.rows.iter().find(|r| r.pipeline == "raw") {
            let _ = writeln!(
                md,
                "\nBest exact nDCG@10: **{}** ({:.4}; raw {:.4}, difference {:+.4}).",
                best.pipeline,
                best.exact.ndcg10,
                raw.exact.ndcg10,
                best.exact.ndcg10 - raw.exact.ndcg10
            );
        }
    }
    let _ = writeln!(md, "\n![recall@k, exact](recall-at-k.svg)\n\n![recall@k, HNSW](recall-at-k-hnsw.svg)\n");
    if !hybrid.is_empty() {
        let _ = writeln!(md, "## Beside lexical matching\n");
        let _ = writeln!(md, "Does a transform (or SimCSE) still help once BM25 carries the exact terms? Each dense pipeline alone and fused with BM25 (default fusion, exact dense search); the last column tests each fused row against `hybrid:raw`.\n");
        let rows = hybrid.iter().map(|h| {
            let (diff, p) = match h.against_hybrid_raw {
                Some((d, p)) => (format!("{d:+.4}"), if p < 0.001 { "<0.001".to_string() } else { format!("{p:.3}") }),
                None => ("-".into(), "-".into()),
            };
            vec![h.dense.to_string(), format!("{:.4}", h.dense_ndcg), format!("{:.4}", h.hybrid_ndcg), diff, p]
        });
        let header = ["pipeline", "nDCG@10 dense", "nDCG@10 hybrid", "hybrid − hybrid:raw", "p"];
        md.push_str(&table::markdown(&header, 1, rows));
        let _ = writeln!(md, "\n![dense against hybrid nDCG@10](dense-vs-hybrid.svg)\n");
    }
    if let Some(w) = without_labels {
        w.render(&mut md);
    }
    let _ = writeln!(md, "## STS against retrieval\n");
    let rows = points.iter().map(|(name, sts, ndcg)| vec![name.to_string(), format!("{sts:.2}"), format!("{ndcg:.4}")]);
    md.push_str(&table::markdown(&["pipeline", "STS avg (all)", "nDCG@10 (exact)"], 1, rows));
    let _ = writeln!(md, "\n![STS against nDCG@10](sts-vs-ndcg.svg)\n");
    let _ = writeln!(md, "## Anisotropy of the corpus vectors\n");
    let _ = writeln!(md, "Random document pairs: {}.\n", args.pairs);
    let rows = outcome.anisotropy.iter().map(|(name, a)| {
        vec![
            name.to_string(),
            format!("{:.3}", a.mean_cosine),
            format!("{:.3}", a.top1_variance_share),
            format!("{:.3}", a.top10_variance_share),
        ]
    });
    md.push_str(&table::markdown(&["pipeline", "mean cosine", "top-1 PC variance", "top-10 PC variance"], 1, rows));
    let _ = writeln!(md, "\n![cosine histograms](cosine-histogram.svg)");
    md
}
