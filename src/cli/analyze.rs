//! `isovec analyze`: how anisotropic a pipeline's vectors are on a corpus, before and after each
//! transform (fitted on that corpus), and the BERT-flow paper's token-frequency table.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::common::{parse_poolings, progress_bar, BarProgress, ModelArgs, SourceArgs};
use crate::eval::anisotropy::{analyze, Anisotropy};
use crate::eval::histogram_svg::write_histogram_svg;
use crate::eval::token_frequency::frequency_table;
use crate::transform::FlowConfig;
use crate::transform::TransformKind;
use crate::Pipeline;

/// Options of `isovec analyze`.
#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Poolings to analyse (repeated or comma-separated).
    #[arg(long, default_value = "mean")]
    pub pooling: Vec<String>,
    /// Transforms fitted on the same sentences and analysed after: whiten, whiten-K, flow.
    #[arg(long, value_delimiter = ',', default_value = "whiten,whiten-128,flow")]
    pub transforms: Vec<String>,
    /// Random pairs for the mean cosine and the histogram.
    #[arg(long, default_value_t = 100_000)]
    pub pairs: usize,
    /// Seed of the pairs and of the flow.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the token-frequency table.
    #[arg(long)]
    pub no_token_table: bool,
    /// Folder for the histogram charts (SVG), one per pooling.
    #[arg(long, default_value = "isovec-analysis")]
    pub out: PathBuf,
}

/// Runs `isovec analyze`.
pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let sentences = args.source.read()?;
    let encoder = args.model.load()?;
    let poolings = parse_poolings(&args.pooling)?;
    let flow = FlowConfig { seed: args.seed, ..FlowConfig::default() };
    let kinds = args
        .transforms
        .iter()
        .filter(|t| t.as_str() != "none")
        .map(|t| TransformKind::parse(t, &flow))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let bar = progress_bar(refs.len() as u64, "encoding");
    let encoded = encoder.encode_with_progress(&refs, &poolings, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    println!("Anisotropy of {} sentences from {} ({} random pairs)", refs.len(), args.source.from, args.pairs);
    let mut rows = Vec::new();
    for (p, &pooling) in poolings.iter().enumerate() {
        let raw = &encoded.vectors[p];
        let mut series: Vec<(String, Anisotropy)> = vec![("none".into(), analyze(raw, args.pairs, args.seed))];
        for kind in &kinds {
            let transform = Arc::new(kind.fit(raw, &encoder.id(pooling), &BarProgress::default())?);
            let out = Pipeline::new(encoder.clone(), pooling, Some(transform))?.apply(raw.clone())?;
            series.push((kind.name(), analyze(&out, args.pairs, args.seed)));
        }
        for (name, a) in &series {
            rows.push(vec![
                pooling.to_string(),
                name.clone(),
                format!("{:.3}", a.mean_cosine),
                format!("{:.3}", a.top1_variance_share),
                format!("{:.3}", a.top10_variance_share),
            ]);
        }
        let path = args.out.join(format!("cosine-histogram-{pooling}.svg"));
        let labelled: Vec<(&str, &Anisotropy)> = series.iter().map(|(n, a)| (n.as_str(), a)).collect();
        write_histogram_svg(&path, &labelled)?;
        eprintln!("chart: {}", path.display());
    }

    let header = ["pooling", "transform", "mean cosine", "top-1 PC variance", "top-10 PC variance"];
    print!("{}", crate::table::markdown(&header, 2, rows));

    if !args.no_token_table {
        token_table(&encoder, &refs)?;
    }
    Ok(())
}

/// The BERT-flow paper's table: word embeddings grouped by corpus frequency rank.
fn token_table(encoder: &crate::encoder::Encoder, sentences: &[&str]) -> anyhow::Result<()> {
    let dir = crate::encoder::ModelDir::open(encoder.path())?;
    let weights = dir.read_weights(&candle_core::Device::Cpu)?;
    let table = weights
        .get("embeddings.word_embeddings.weight")
        .context("the model has no embeddings.word_embeddings.weight")?;
    let embeddings: Vec<Vec<f32>> = table.to_vec2()?;
    let mut counts = vec![0u64; embeddings.len()];
    let special: Vec<u32> =
        ["[CLS]", "[SEP]", "[PAD]"].iter().filter_map(|t| encoder.tokenizer().token_id(t)).collect();
    for tokens in encoder.tokenizer().tokenize(sentences)? {
        for id in tokens.ids {
            if !special.contains(&id) {
                if let Some(c) = counts.get_mut(id as usize) {
                    *c += 1;
                }
            }
        }
    }
    let ks = [3, 5, 7];
    let rows = frequency_table(&embeddings, &counts, &ks);
    println!();
    println!("Token embeddings by corpus frequency rank (ℓ2 norm; mean k-NN ℓ2 distance and dot product)");
    let header =
        ["rank", "tokens", "mean ℓ2 norm", "3-NN ℓ2", "5-NN ℓ2", "7-NN ℓ2", "3-NN dot", "5-NN dot", "7-NN dot"];
    let cells = rows.into_iter().map(|r| {
        let mut cells = vec![r.bucket.to_string(), r.tokens.to_string(), format!("{:.3}", r.mean_l2_norm)];
        cells.extend(r.knn_l2.iter().chain(&r.knn_dot).map(|x| format!("{x:.3}")));
        cells
    });
    print!("{}", crate::table::markdown(&header, 1, cells));
    Ok(())
}
