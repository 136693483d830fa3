//! `isovec fit whiten|flow`: fits a post-transform on a corpus (no labels) and saves it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::common::{progress_bar, BarProgress, ModelArgs, SourceArgs};
use crate::encoder::Pooling;
use crate::transform::TransformKind;
use crate::transform::{CouplingKind, FlowConfig, PermutationKind};
use crate::{Embedder, PipelineRequest, Prefixes, TransformChoice};

/// Which transform.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitKind {
    Whiten,
    Flow,
}

/// Options of `isovec fit`.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// whiten or flow.
    pub kind: FitKind,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Pooling the transform is fitted for (default: a `store:` collection's, else mean).
    #[arg(long)]
    pub pooling: Option<String>,
    /// Text put before every sentence, as the pipeline puts it before documents (default: a
    /// `store:` collection's, else none). The transform belongs to the pipeline with both
    /// prefixes: give the query prefix too.
    #[arg(long)]
    pub document_prefix: Option<String>,
    /// The query prefix of the pipeline the transform is for (default: a `store:` collection's,
    /// else none).
    #[arg(long)]
    pub query_prefix: Option<String>,
    /// Whitening: keep this many dimensions (default: all).
    #[arg(long)]
    pub dims: Option<usize>,
    /// Flow: levels.
    #[arg(long, default_value_t = 3)]
    pub levels: usize,
    /// Flow: steps per level.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Flow: coupling network width.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Flow: affine instead of additive coupling.
    #[arg(long)]
    pub affine: bool,
    /// Flow: a learned LU-parametrised 1×1 map instead of the fixed reversal.
    #[arg(long)]
    pub lu: bool,
    /// Flow: learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Flow: passes over the sentences.
    #[arg(long, default_value_t = 1.0)]
    pub epochs: f64,
    /// Flow: vectors per step.
    #[arg(long, default_value_t = 32)]
    pub flow_batch_size: usize,
    /// Seed of the flow's initialisation and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the transform (safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

impl FitArgs {
    fn flow_config(&self) -> FlowConfig {
        FlowConfig {
            levels: self.levels,
            steps_per_level: self.steps,
            width: self.width,
            coupling: if self.affine { CouplingKind::Affine } else { CouplingKind::Additive },
            permutation: if self.lu { PermutationKind::Lu } else { PermutationKind::Reverse },
            learning_rate: self.lr,
            epochs: self.epochs,
            batch_size: self.flow_batch_size,
            seed: self.seed,
            ..FlowConfig::default()
        }
    }
}

/// Runs `isovec fit`.
pub fn run(args: FitArgs) -> anyhow::Result<()> {
    let (sentences, recorded) = args.source.read_with_pipeline()?;
    // The encoder the transform is for: the parts named, the others those of the collection
    // read (`--from store:`), else the defaults; never a transform.
    let request = PipelineRequest {
        model: args.model.model.clone(),
        pooling: args.pooling.as_deref().map(str::parse::<Pooling>).transpose()?,
        max_length: args.model.max_length,
        prefixes: Prefixes::named(args.query_prefix.clone(), args.document_prefix.clone()),
        transform: Some(TransformChoice::None),
    };
    let options = args.model.options()?;
    let pipeline = match &recorded {
        Some(spec) => request.load_changed(spec, &options)?,
        None => request.load(&options)?,
    };
    let (encoder, pooling) = (pipeline.encoder(), pipeline.pooling());
    let prefix = &pipeline.prefixes().document;
    let prefixed: Vec<String> = sentences.iter().map(|s| format!("{prefix}{s}")).collect();
    let refs: Vec<&str> = prefixed.iter().map(String::as_str).collect();
    let bar = progress_bar(refs.len() as u64, "encoding");
    let encoded = encoder.encode_with_progress(&refs, &[pooling], &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if encoded.truncated > 0 {
        eprintln!(
            "{} of {} sentences were truncated at {} tokens",
            encoded.truncated,
            refs.len(),
            encoder.tokenizer().max_length()
        );
    }
    let kind = match args.kind {
        FitKind::Whiten => TransformKind::Whiten { dims: args.dims },
        FitKind::Flow => TransformKind::Flow(args.flow_config()),
    };
    let start = std::time::Instant::now();
    let transform = kind.fit(&encoded.vectors[0], &pipeline.id().encoder, &BarProgress::default())?;
    transform.save(&args.out)?;
    println!(
        "{} fitted on {} sentences ({} → {} dims) in {:.1}s, written to {}",
        transform.kind(),
        refs.len(),
        transform.input_dims(),
        transform.output_dims(),
        start.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
