//! `isovec train simcse …` and `isovec bench train …`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use super::common::{BarProgress, DeviceArgs};
use crate::encoder::{default_model_dir, Pooling};
use crate::progress::{Progress, Silent};
use crate::train::adapt::{adaptation_data, open_collection, AdaptConfig, Adaptation, CollectionTexts, PseudoDev};
use crate::train::checkpoint::read_training_info;
use crate::train::data::{read_corpus, read_triplets};
use crate::train::{
    bench_train, DevSet, FitReport, MlpUse, ModelInit, Objective, SimcseConfig, Trainer, Validated, Validation,
};

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
    /// SimCSE contrastive training (unsupervised on sentences or on a store collection's texts, or supervised on NLI triplets).
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
///
/// With `--store DIR --collection NAME` (unsup only) the model is adapted to a collection: it
/// trains on the sentences of the collection's own texts, starts from the collection's model
/// with the collection's pooling, and keeps the checkpoint that scores best on pseudo-queries
/// cut out of the collection (never on labels); the documents that serve as pseudo-queries are
/// held out of training. The defaults then change to suit adapting a trained model (shown as
/// `collection:` in each option's help).
#[derive(Debug, Parser, serde::Serialize)]
pub struct SimcseArgs {
    /// `unsup` (needs --corpus, or --store and --collection) or `sup` (needs --triplets).
    #[arg(long, value_enum)]
    #[serde(serialize_with = "debug_string")]
    pub mode: ModeArg,
    /// One sentence a line (unsupervised).
    #[arg(long, conflicts_with_all = ["store", "collection"])]
    pub corpus: Option<PathBuf>,
    /// CSV with header `sent0,sent1,hard_neg` (supervised).
    #[arg(long, conflicts_with_all = ["store", "collection"])]
    pub triplets: Option<PathBuf>,
    /// Store holding the collection to adapt to (with --collection).
    #[arg(long, requires = "collection")]
    pub store: Option<PathBuf>,
    /// Collection whose texts to train on, split into sentences (fragments under 5 words dropped).
    #[arg(long, requires = "store")]
    pub collection: Option<String>,
    /// Where checkpoints go: OUTPUT/best (best on the validation set: STS-B dev, or pseudo-queries with
    /// --collection), OUTPUT/last, OUTPUT/log.jsonl.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Hugging Face BERT folder to start from (default: the default model; collection: the collection's
    /// model); its tokenizer is always used.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Continue from a checkpoint written by this command (weights, MLP, step count and data order).
    #[arg(long, conflicts_with_all = ["model", "from_scratch"])]
    pub resume: Option<PathBuf>,
    /// Start from a random BERT of this shape, `LAYERS,HIDDEN,HEADS` (e.g. `2,128,2`), with the model's vocabulary.
    #[arg(long, value_name = "LAYERS,HIDDEN,HEADS")]
    pub from_scratch: Option<String>,
    /// Pooling trained: `cls` is [CLS] through SimCSE's fresh MLP (dense + tanh); also cls_before_pooler, mean,
    /// first_last_avg, … (default cls; collection: the collection's pooling, no MLP).
    #[arg(long)]
    pub pooler: Option<String>,
    /// Keep the MLP at test time (default: train-only for unsup, keep for sup, as in the paper).
    #[arg(long, value_enum)]
    #[serde(serialize_with = "debug_string")]
    pub mlp: Option<MlpArg>,
    /// InfoNCE temperature.
    #[arg(long, default_value_t = 0.05)]
    pub temperature: f64,
    /// Maximum tokens per training sentence, special tokens included (default 32; collection: 64).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Sentences (or triplets) per batch (default 64 unsup, 512 sup; collection: 32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default 3e-5 unsup, 5e-5 sup; collection: 1e-5, a trained model is only nudged).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Passes over the data (default 1 unsup, 3 sup); ignored with --max-steps.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many optimiser steps (default: the epochs; collection: 300).
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
    /// Evaluate (and keep the best checkpoint) every this many steps (default 250; collection: 50).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Stop after this many evaluations in a row without a better score (default: never; collection:
    /// 2).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Collection: pseudo-queries to validate on, cut out of the collection's texts with --seed (their
    /// documents are held out of training) (default 300).
    #[arg(long, requires = "collection")]
    pub pseudo_queries: Option<usize>,
    /// Collection: documents the pseudo-queries are searched in at each evaluation (every queried document
    /// and a fixed random sample of the others), encoded at the collection's maximum length (default 1000).
    #[arg(long, requires = "collection")]
    pub pseudo_docs: Option<usize>,
    /// Dropout of hidden states and attention in training (default: the model's, 0.1 for BERT).
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Unsupervised: also delete each word of each view with this probability (0: dropout alone, as the paper).
    #[arg(long, default_value_t = 0.0)]
    pub word_deletion: f64,
    /// Benchmark data folder holding senteval/STS/STSBenchmark/sts-dev.csv (default: env ISOVEC_DATA); not
    /// used with --collection, which validates on pseudo-queries.
    #[arg(long, conflicts_with = "collection")]
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

/// Defaults of `--store … --collection …` (adapting a trained model to a collection), each
/// named in the option's help: sentences fit in 64 tokens, a small rate and few steps only
/// nudge the model, and pseudo-queries stop it once it stops improving.
mod adapt_defaults {
    pub const MAX_LENGTH: usize = 64;
    pub const BATCH_SIZE: usize = 32;
    pub const LR: f64 = 1e-5;
    pub const MAX_STEPS: usize = 300;
    pub const EVAL_EVERY: usize = 50;
    pub const PATIENCE: usize = 2;
}

/// Turns the command line into a training configuration; `collection_pooling` is the pooling
/// of the collection trained on (`--collection`), the default pooling then.
pub fn simcse_config(args: &SimcseArgs, collection_pooling: Option<Pooling>) -> anyhow::Result<SimcseConfig> {
    let mut c = match args.mode {
        ModeArg::Unsup => SimcseConfig::unsupervised(),
        ModeArg::Sup => SimcseConfig::supervised(),
    };
    let adapting = collection_pooling.is_some();
    c.pooling = match (&args.pooler, collection_pooling) {
        (Some(p), _) => p.parse::<Pooling>()?,
        (None, Some(Pooling::Cls)) => bail!(
            "the collection pools with `cls` (BERT's pooler), and `--pooler cls` would train a fresh SimCSE MLP in \
             its place: name the pooling to train with --pooler (e.g. cls_before_pooler or mean)"
        ),
        (None, Some(p)) => p,
        (None, None) => Pooling::Cls,
    };
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
    c.max_length = args.max_length.unwrap_or(if adapting { adapt_defaults::MAX_LENGTH } else { 32 });
    c.batch_size = args.batch_size.unwrap_or(if adapting { adapt_defaults::BATCH_SIZE } else { c.batch_size });
    c.optimizer.lr = args.lr.unwrap_or(if adapting { adapt_defaults::LR } else { c.optimizer.lr });
    c.optimizer.weight_decay = args.weight_decay;
    c.epochs = args.epochs.unwrap_or(c.epochs);
    c.max_steps = args.max_steps.or(adapting.then_some(adapt_defaults::MAX_STEPS));
    c.warmup_steps = args.warmup_steps;
    c.max_grad_norm = args.max_grad_norm;
    c.seed = args.seed;
    c.eval_every = args.eval_every.unwrap_or(if adapting { adapt_defaults::EVAL_EVERY } else { c.eval_every });
    c.patience = args.patience.or(adapting.then_some(adapt_defaults::PATIENCE));
    if c.patience == Some(0) {
        bail!("--patience must be at least 1 evaluation");
    }
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

/// What `--store … --collection …` trains and validates on.
struct CollectionRun {
    texts: CollectionTexts,
    adaptation: Adaptation,
    config: AdaptConfig,
    store: PathBuf,
    name: String,
}

fn read_collection_run(args: &SimcseArgs) -> anyhow::Result<Option<CollectionRun>> {
    let (Some(store), Some(name)) = (&args.store, &args.collection) else {
        // (clap waives `requires` when --corpus, which conflicts with --collection, is given.)
        if args.pseudo_queries.is_some() || args.pseudo_docs.is_some() {
            bail!(
                "--pseudo-queries and --pseudo-docs validate training on a collection: give --store and --collection"
            );
        }
        return Ok(None);
    };
    if args.mode != ModeArg::Unsup {
        bail!("--store/--collection train unsupervised SimCSE on the collection's texts: use --mode unsup");
    }
    let texts = open_collection(store, name)
        .with_context(|| format!("reading collection {name:?} of the store {}", store.display()))?;
    let defaults = AdaptConfig::default();
    let config = AdaptConfig {
        queries: args.pseudo_queries.unwrap_or(defaults.queries),
        documents: args.pseudo_docs.unwrap_or(defaults.documents),
        seed: args.seed,
        ..defaults
    };
    let adaptation = adaptation_data(&texts.documents, &config)
        .with_context(|| format!("making training sentences and pseudo-queries from collection {name:?}"))?;
    Ok(Some(CollectionRun { texts, adaptation, config, store: store.clone(), name: name.clone() }))
}

/// Runs `isovec train simcse …`.
pub fn run_simcse(args: &SimcseArgs) -> anyhow::Result<()> {
    let collection = read_collection_run(args)?;
    let config = simcse_config(args, collection.as_ref().map(|c| c.texts.pooling))?;
    let device = args.device.open()?;
    let start_model = || {
        args.model
            .clone()
            .or_else(|| collection.as_ref().map(|c| c.texts.model_dir.clone()))
            .unwrap_or_else(default_model_dir)
    };
    let (model_dir, init, start_step) = match (&args.resume, &args.from_scratch) {
        (Some(dir), _) => {
            let info = read_training_info(dir)?.with_context(|| {
                format!("{}: no training.json; to start from this model use --model instead of --resume", dir.display())
            })?;
            (dir.clone(), ModelInit::Pretrained, info.step)
        }
        (None, Some(shape)) => (start_model(), parse_shape(shape)?, 0),
        (None, None) => (start_model(), ModelInit::Pretrained, 0),
    };
    let mut trainer = Trainer::new(&model_dir, &init, config.clone(), &device)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    trainer.set_step(start_step);

    let data = match (args.mode, &args.corpus, &args.triplets, &collection) {
        (ModeArg::Unsup, None, None, Some(c)) => {
            let mut s = c.adaptation.sentences.clone();
            s.truncate(args.limit.unwrap_or(usize::MAX));
            trainer.tokenize_sentences(&s)?
        }
        (ModeArg::Unsup, Some(corpus), None, None) => {
            let mut s = read_corpus(corpus)?;
            s.truncate(args.limit.unwrap_or(usize::MAX));
            trainer.tokenize_sentences(&s)?
        }
        (ModeArg::Sup, None, Some(triplets), None) => {
            let mut t = read_triplets(triplets)?;
            t.truncate(args.limit.unwrap_or(usize::MAX));
            trainer.tokenize_triplets(&t)?
        }
        (ModeArg::Unsup, _, _, _) => bail!(
            "--mode unsup takes --corpus FILE (one sentence a line), or --store DIR --collection NAME, and no --triplets"
        ),
        (ModeArg::Sup, _, _, _) => bail!("--mode sup takes --triplets FILE (CSV sent0,sent1,hard_neg) and no --corpus"),
    };

    let stsb;
    let pseudo;
    let validation: Option<&dyn Validation> = match &collection {
        Some(c) => {
            pseudo =
                PseudoDev::new(&trainer, &c.adaptation.pseudo, c.config.documents, c.texts.max_length, c.config.seed)?;
            let a = &c.adaptation;
            eprintln!(
                "collection {:?}: {} documents with text ({} without), {} held out for {} pseudo-queries searched among \
                 {} documents at {} tokens; {} training sentences ({} fragments under 5 words and {} duplicates \
                 dropped); model {}, pooling {}",
                c.name,
                c.texts.documents.len(),
                c.texts.without_text,
                a.held_out,
                pseudo.queries(),
                pseudo.documents(),
                c.texts.max_length,
                a.sentences.len(),
                a.fragments,
                a.duplicates,
                model_dir.display(),
                config.inference_pooling()
            );
            if let Some(kind) = &c.texts.transform {
                eprintln!(
                    "warning: collection {:?} has a {kind} transform, fitted on the old model's vectors: training and \
                     pseudo-queries use the encoder alone; fit the transform again for the trained model",
                    c.name
                );
            }
            Some(&pseudo)
        }
        None => match data_dir(&args.data) {
            Some(dir) => {
                stsb = DevSet::stsb(&dir).with_context(|| {
                    format!("reading STS-B dev under {} (pass --data DIR or set ISOVEC_DATA)", dir.display())
                })?;
                Some(&stsb)
            }
            None => {
                tracing::warn!(
                    "no --data and no ISOVEC_DATA: training without STS-B dev evaluation; only OUTPUT/last is written"
                );
                None
            }
        },
    };
    let mut recorded = serde_json::to_value(args)?;
    if let Some(map) = recorded.as_object_mut() {
        map.insert("resolved".into(), serde_json::to_value(&config)?);
        map.insert("model_dir".into(), serde_json::to_value(&model_dir)?);
        if let Some(c) = &collection {
            map.insert(
                "collection".into(),
                serde_json::json!({
                    "store": c.store,
                    "name": c.name,
                    "documents": c.texts.documents.len(),
                    "held_out": c.adaptation.held_out,
                    "sentences": c.adaptation.sentences.len(),
                    "max_length": c.texts.max_length,
                }),
            );
        }
    }
    let bar = BarProgress::default();
    let progress: &dyn Progress = if args.quiet { &Silent } else { &bar };
    let started = std::time::Instant::now();
    let report = trainer.fit_with(&data, validation, &args.output, recorded, progress)?;
    println!("{}", summary(&report, &config, &args.output, started.elapsed().as_secs_f64()));
    Ok(())
}

fn summary(report: &FitReport, config: &SimcseConfig, output: &Path, wall_seconds: f64) -> String {
    let fmt = |v: &Validated| match v {
        Validated::StsbDev(s) => {
            format!("{:.2} (alignment {:.4}, uniformity {:.4})", s.spearman, s.alignment, s.uniformity)
        }
        Validated::PseudoQueries(p) => format!("{:.4} (recall@10 {:.4})", p.ndcg10, p.recall10),
    };
    let mut out = format!(
        "steps: {} in {:.0} s ({:.2} steps/s); {:.1} min in all, evaluations included{}\n",
        report.steps,
        report.train_seconds,
        report.steps as f64 / report.train_seconds.max(1e-9),
        wall_seconds / 60.0,
        if report.stopped_early {
            format!(" (stopped early: {} evaluations without a better score)", config.patience.unwrap_or(0))
        } else {
            String::new()
        }
    );
    if let (Some(first), Some(last)) = (report.evaluations.first(), report.evaluations.last()) {
        let name = first.scores.name();
        out += &format!("{name} before (step {}): {}\n", first.step, fmt(&first.scores));
        out += &format!("{name} after (step {}):  {}\n", last.step, fmt(&last.scores));
    }
    if let Some(best) = &report.best_evaluation {
        out += &format!("best: step {}: {}\n", best.step, fmt(&best.scores));
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(extra: &[&str]) -> Result<SimcseArgs, clap::Error> {
        SimcseArgs::try_parse_from(
            ["simcse", "--mode", "unsup", "--output", "out"].into_iter().chain(extra.iter().copied()),
        )
    }

    #[test]
    fn collection_defaults_are_the_ones_the_help_names() {
        use adapt_defaults::*;
        let c = simcse_config(&parse(&["--store", "s", "--collection", "c"]).unwrap(), Some(Pooling::Mean)).unwrap();
        assert_eq!(
            (c.pooling, c.inference_pooling(), c.max_length, c.batch_size, c.max_steps, c.eval_every, c.patience),
            (Pooling::Mean, Pooling::Mean, MAX_LENGTH, BATCH_SIZE, Some(MAX_STEPS), EVAL_EVERY, Some(PATIENCE))
        );
        assert_eq!(c.optimizer.lr, LR);
        let help = SimcseArgs::command().render_long_help().to_string();
        for n in [MAX_LENGTH, BATCH_SIZE, MAX_STEPS, EVAL_EVERY, PATIENCE] {
            assert!(help.contains(&format!("collection: {n}")), "the help does not name the default {n}:\n{help}");
        }
        assert!(LR == 1e-5 && help.contains("collection: 1e-5"), "{help}");
        // Without a collection the defaults stay the paper's.
        let c = simcse_config(&parse(&["--corpus", "f.txt"]).unwrap(), None).unwrap();
        assert_eq!(
            (c.pooling, c.max_length, c.batch_size, c.max_steps, c.eval_every),
            (Pooling::Cls, 32, 64, None, 250)
        );
        assert_eq!((c.optimizer.lr, c.patience), (3e-5, None));
        // Options given win over the collection's defaults.
        let args =
            parse(&["--store", "s", "--collection", "c", "--lr", "2e-5", "--pooler", "cls_before_pooler"]).unwrap();
        let c = simcse_config(&args, Some(Pooling::Mean)).unwrap();
        assert_eq!((c.optimizer.lr, c.pooling), (2e-5, Pooling::ClsBeforePooler));
    }

    #[test]
    fn conflicting_collection_options_are_refused() {
        assert!(parse(&["--store", "s"]).is_err(), "--store needs --collection");
        assert!(parse(&["--collection", "c"]).is_err(), "--collection needs --store");
        assert!(parse(&["--store", "s", "--collection", "c", "--corpus", "f.txt"]).is_err());
        assert!(parse(&["--store", "s", "--collection", "c", "--data", "d"]).is_err());
        assert!(parse(&["--pseudo-docs", "10"]).is_err(), "pseudo-queries need a collection");
        let e = read_collection_run(&parse(&["--corpus", "f.txt", "--pseudo-docs", "10"]).unwrap()).err().unwrap();
        assert!(e.to_string().contains("--collection"), "{e}");
        let args = parse(&["--store", "s", "--collection", "c"]).unwrap();
        let e = simcse_config(&args, Some(Pooling::Cls)).unwrap_err().to_string();
        assert!(e.contains("--pooler"), "{e}");
        let e = simcse_config(
            &parse(&["--store", "s", "--collection", "c", "--patience", "0"]).unwrap(),
            Some(Pooling::Mean),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--patience"), "{e}");
    }
}
