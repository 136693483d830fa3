//! `isovec train simcse …` and `isovec bench train …`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use super::common::{BarProgress, DeviceArgs};
use crate::encoder::{default_model_dir, Pooling};
use crate::progress::{Progress, Silent};
use crate::train::checkpoint::read_training_info;
use crate::train::data::{read_corpus, read_triplets};
use crate::train::{bench_train, DevSet, MlpUse, ModelInit, Objective, SimcseConfig, Trainer};

/// `isovec train`: fine-tune the encoder.
#[derive(Debug, Parser)]
pub struct Args {
    /// What to train.
    #[command(subcommand)]
    pub command: TrainCommand,
}

/// Training methods.
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// SimCSE contrastive training (unsupervised on sentences, or supervised on NLI triplets).
    Simcse(SimcseArgs),
}

/// The SimCSE objective on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Two dropout views of each corpus sentence are positives.
    Unsup,
    /// NLI triplets: entailment positive, contradictions extra negatives.
    Sup,
}

/// Whether SimCSE's MLP over [CLS] is kept after training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MlpArg {
    /// Used in training only (vectors are the raw [CLS]).
    TrainOnly,
    /// Kept, saved as BERT's pooler (vectors are `cls` pooling).
    Keep,
}

/// Arguments of `isovec train simcse`.
#[derive(Debug, Parser, serde::Serialize)]
pub struct SimcseArgs {
    /// `unsup` (needs --corpus) or `sup` (needs --triplets).
    #[arg(long, value_enum)]
    #[serde(serialize_with = "debug_string")]
    pub mode: ModeArg,
    /// One sentence a line (unsupervised).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// CSV with header `sent0,sent1,hard_neg` (supervised).
    #[arg(long)]
    pub triplets: Option<PathBuf>,
    /// Where checkpoints go: OUTPUT/best (best on STS-B dev), OUTPUT/last, OUTPUT/log.jsonl.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Hugging Face BERT folder to start from (default: the default model); its tokenizer is always used.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Continue from a checkpoint written by this command (weights, MLP, step count and data order).
    #[arg(long, conflicts_with_all = ["model", "from_scratch"])]
    pub resume: Option<PathBuf>,
    /// Start from a random BERT of this shape, `LAYERS,HIDDEN,HEADS` (e.g. `2,128,2`), with the model's vocabulary.
    #[arg(long, value_name = "LAYERS,HIDDEN,HEADS")]
    pub from_scratch: Option<String>,
    /// Pooling trained: `cls` is [CLS] through SimCSE's fresh MLP (dense + tanh); also cls_before_pooler, mean, first_last_avg, …
    #[arg(long, default_value = "cls")]
    pub pooler: String,
    /// Keep the MLP at test time (default: train-only for unsup, keep for sup, as in the paper).
    #[arg(long, value_enum)]
    #[serde(serialize_with = "debug_string")]
    pub mlp: Option<MlpArg>,
    /// InfoNCE temperature.
    #[arg(long, default_value_t = 0.05)]
    pub temperature: f64,
    /// Maximum tokens per sentence, special tokens included.
    #[arg(long, default_value_t = 32)]
    pub max_length: usize,
    /// Sentences (or triplets) per batch (default 64 unsup, 512 sup).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default 3e-5 unsup, 5e-5 sup).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Passes over the data (default 1 unsup, 3 sup); ignored with --max-steps.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many optimiser steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Linear warm-up steps (then linear decay to zero).
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: usize,
    /// Decoupled weight decay (never on biases or LayerNorm).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Seed of data shuffling and fresh weights.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Evaluate on STS-B dev (and keep the best checkpoint) every this many steps.
    #[arg(long, default_value_t = 250)]
    pub eval_every: usize,
    /// Dropout of hidden states and attention in training (default: the model's, 0.1 for BERT).
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Unsupervised: also delete each word of each view with this probability (0: dropout alone, as the paper).
    #[arg(long, default_value_t = 0.0)]
    pub word_deletion: f64,
    /// Benchmark data folder holding senteval/STS/STSBenchmark/sts-dev.csv (default: env ISOVEC_DATA).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N examples of the training file.
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub device: DeviceArgs,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn debug_string<T: std::fmt::Debug, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:?}").to_lowercase())
}

fn parse_shape(spec: &str) -> anyhow::Result<ModelInit> {
    let parts: Vec<usize> = spec
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--from-scratch {spec:?}: expected LAYERS,HIDDEN,HEADS such as 2,128,2"))?;
    match parts[..] {
        [layers, hidden, heads] if layers > 0 && heads > 0 && hidden % heads == 0 => {
            Ok(ModelInit::Random { layers, hidden, heads })
        }
        _ => bail!("--from-scratch {spec:?}: expected three positive numbers LAYERS,HIDDEN,HEADS with HIDDEN divisible by HEADS"),
    }
}

fn data_dir(arg: &Option<PathBuf>) -> Option<PathBuf> {
    arg.clone().or_else(|| std::env::var_os("ISOVEC_DATA").map(PathBuf::from))
}

/// Turns the command line into a training configuration.
pub fn simcse_config(args: &SimcseArgs) -> anyhow::Result<SimcseConfig> {
    let mut c = match args.mode {
        ModeArg::Unsup => SimcseConfig::unsupervised(),
        ModeArg::Sup => SimcseConfig::supervised(),
    };
    c.pooling = args.pooler.parse::<Pooling>()?;
    if let Some(m) = args.mlp {
        if c.pooling != Pooling::Cls {
            bail!("--mlp only applies to --pooler cls (SimCSE's MLP over [CLS])");
        }
        c.mlp = match m {
            MlpArg::TrainOnly => MlpUse::TrainOnly,
            MlpArg::Keep => MlpUse::Keep,
        };
    }
    c.temperature = args.temperature;
    c.max_length = args.max_length;
    c.batch_size = args.batch_size.unwrap_or(c.batch_size);
    c.optimizer.lr = args.lr.unwrap_or(c.optimizer.lr);
    c.optimizer.weight_decay = args.weight_decay;
    c.epochs = args.epochs.unwrap_or(c.epochs);
    c.max_steps = args.max_steps;
    c.warmup_steps = args.warmup_steps;
    c.max_grad_norm = args.max_grad_norm;
    c.seed = args.seed;
    c.eval_every = args.eval_every;
    c.dropout = args.dropout;
    if args.word_deletion > 0.0 && c.objective != Objective::Unsupervised {
        bail!("--word-deletion augments the unsupervised views; --mode sup trains on given pairs");
    }
    c.word_deletion = args.word_deletion;
    Ok(c)
}

/// Runs `isovec train …`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        TrainCommand::Simcse(a) => run_simcse(&a),
    }
}

/// Runs `isovec train simcse …`.
pub fn run_simcse(args: &SimcseArgs) -> anyhow::Result<()> {
    let config = simcse_config(args)?;
    let device = args.device.open()?;
    let (model_dir, init, start_step) = match (&args.resume, &args.from_scratch) {
        (Some(dir), _) => {
            let info = read_training_info(dir)?.with_context(|| {
                format!("{}: no training.json; to start from this model use --model instead of --resume", dir.display())
            })?;
            (dir.clone(), ModelInit::Pretrained, info.step)
        }
        (None, Some(shape)) => (args.model.clone().unwrap_or_else(default_model_dir), parse_shape(shape)?, 0),
        (None, None) => (args.model.clone().unwrap_or_else(default_model_dir), ModelInit::Pretrained, 0),
    };
    let mut trainer = Trainer::new(&model_dir, &init, config.clone(), &device)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    trainer.set_step(start_step);

    let data = match (args.mode, &args.corpus, &args.triplets) {
        (ModeArg::Unsup, Some(corpus), None) => {
            let mut s = read_corpus(corpus)?;
            s.truncate(args.limit.unwrap_or(usize::MAX));
            trainer.tokenize_sentences(&s)?
        }
        (ModeArg::Sup, None, Some(triplets)) => {
            let mut t = read_triplets(triplets)?;
            t.truncate(args.limit.unwrap_or(usize::MAX));
            trainer.tokenize_triplets(&t)?
        }
        (ModeArg::Unsup, _, _) => bail!("--mode unsup takes --corpus FILE (one sentence a line) and no --triplets"),
        (ModeArg::Sup, _, _) => bail!("--mode sup takes --triplets FILE (CSV sent0,sent1,hard_neg) and no --corpus"),
    };

    let dev = match data_dir(&args.data) {
        Some(dir) => Some(DevSet::stsb(&dir).with_context(|| {
            format!("reading STS-B dev under {} (pass --data DIR or set ISOVEC_DATA)", dir.display())
        })?),
        None => {
            tracing::warn!(
                "no --data and no ISOVEC_DATA: training without STS-B dev evaluation; only OUTPUT/last is written"
            );
            None
        }
    };
    let mut recorded = serde_json::to_value(args)?;
    if let Some(map) = recorded.as_object_mut() {
        map.insert("resolved".into(), serde_json::to_value(&config)?);
        map.insert("model_dir".into(), serde_json::to_value(&model_dir)?);
    }
    let bar = BarProgress::default();
    let progress: &dyn Progress = if args.quiet { &Silent } else { &bar };
    let report = trainer.fit(&data, dev.as_ref(), &args.output, recorded, progress)?;
    println!("{}", summary(&report, &config, &args.output));
    Ok(())
}

fn summary(report: &crate::train::FitReport, config: &SimcseConfig, output: &Path) -> String {
    let fmt = |s: Option<crate::train::DevScores>| {
        s.map_or("-".to_string(), |s| {
            format!("{:.2} (alignment {:.4}, uniformity {:.4})", s.spearman, s.alignment, s.uniformity)
        })
    };
    let mut out = format!(
        "steps: {} in {:.0} s ({:.2} steps/s)\nSTS-B dev before: {}\nSTS-B dev after:  {}\n",
        report.steps,
        report.train_seconds,
        report.steps as f64 / report.train_seconds.max(1e-9),
        fmt(report.before),
        fmt(report.after)
    );
    if let Some((step, best)) = report.best {
        out += &format!("best: step {step}: {}\n", fmt(Some(best)));
    }
    out += &format!(
        "checkpoints: {} (best), {} (last); encode with pooling `{}`",
        output.join("best").display(),
        output.join("last").display(),
        config.inference_pooling()
    );
    out
}

/// Arguments of `isovec bench train`.
#[derive(Debug, Parser)]
pub struct BenchTrainArgs {
    /// Model folder (default: the default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sentences to train on, one a line (cycled).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Sentences per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Maximum tokens per sentence.
    #[arg(long, default_value_t = 32)]
    pub max_length: usize,
    /// Steps timed (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Runs `isovec bench train`: prints training steps/s and tokens/s.
pub fn run_bench(args: BenchTrainArgs) -> anyhow::Result<()> {
    let device = args.device.open()?;
    let model = args.model.unwrap_or_else(default_model_dir);
    let sentences = read_corpus(&args.corpus)?;
    let b = bench_train(&model, &sentences, args.batch_size, args.max_length, args.steps, &device)?;
    let header = ["model", "device", "batch", "max length", "steps", "steps/s", "tokens/s"];
    let row = vec![
        model.file_name().map_or("model".into(), |n| n.to_string_lossy().into_owned()),
        args.device.to_string(),
        b.batch_size.to_string(),
        b.max_length.to_string(),
        b.steps.to_string(),
        format!("{:.3}", b.steps_per_second),
        format!("{:.0}", b.tokens_per_second),
    ];
    print!("{}", crate::table::markdown(&header, 2, [row]));
    Ok(())
}
