//! `isovec fit whiten|flow`: fits a post-transform on a corpus (no labels) and saves it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::common::{progress_bar, BarProgress, ModelArgs, SourceArgs};
use crate::encoder::Pooling;
use crate::transform::TransformKind;
use crate::transform::{CouplingKind, FlowConfig, PermutationKind};

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
    /// Pooling the transform is fitted for.
    #[arg(long, default_value = "mean")]
    pub pooling: String,
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
    let sentences = args.source.read()?;
    let encoder = args.model.load()?;
    let pooling: Pooling = args.pooling.parse()?;
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
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
    let transform = kind.fit(&encoded.vectors[0], &encoder.id(pooling), &BarProgress::default())?;
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
