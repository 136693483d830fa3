//! SimCSE training (Gao et al. 2021): unsupervised (two dropout views of a sentence are
//! positives) and supervised (NLI entailment positives, contradictions as hard negatives), with
//! model selection on a validation set: STS-B dev ([`DevSet`]) or, to adapt a model to a corpus
//! without labels, pseudo-queries cut out of the corpus ([`super::adapt::PseudoDev`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::alignment::{alignment, uniformity};
use super::augment::{delete_words, step_rng};
use super::checkpoint::{read_training_info, write_checkpoint, TrainingInfo};
use super::data::{epoch_batches, Triplet};
use super::loss::info_nce;
use super::optimizer::{clip_grad_norm, AdamW, AdamWConfig, LinearSchedule};
use crate::encoder::{BatchInput, Bert, BertConfig, Mode, ModelDir, Pooling, TextTokenizer};
use crate::eval::spearman::spearman;
use crate::eval::sts::{self, Split, StsPair, StsSet};
use crate::progress::Progress;
use crate::vector::cosine;
use crate::{Error, Result};

/// Which SimCSE objective to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Two dropout views of each sentence are the positive pair.
    Unsupervised,
    /// Entailment is the positive, the batch's contradictions are extra negatives.
    Supervised,
}

/// How SimCSE's MLP over [CLS] (used with `cls` pooling) is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpUse {
    /// In training only; sentence vectors are the raw [CLS] (the unsupervised recipe).
    TrainOnly,
    /// In training and at test time (the supervised recipe); saved as BERT's pooler.
    Keep,
}

/// Everything that defines a training run except the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimcseConfig {
    /// Unsupervised or supervised.
    pub objective: Objective,
    /// Pooling trained; `cls` means [CLS] through a fresh MLP (dense + tanh).
    pub pooling: Pooling,
    /// Whether the MLP is kept at test time (only with `cls`).
    pub mlp: MlpUse,
    /// InfoNCE temperature τ.
    pub temperature: f64,
    /// Maximum tokens per sentence, special tokens included.
    pub max_length: usize,
    /// Sentences (or triplets) per batch.
    pub batch_size: usize,
    /// Passes over the data (ignored when `max_steps` is set).
    pub epochs: usize,
    /// Stop after this many optimiser steps.
    pub max_steps: Option<usize>,
    /// AdamW settings (peak learning rate included).
    pub optimizer: AdamWConfig,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Global gradient-norm limit (0 disables clipping).
    pub max_grad_norm: f64,
    /// Seed of shuffling and of fresh weights.
    pub seed: u64,
    /// Evaluate on STS-B dev every this many steps (0: only before and after).
    pub eval_every: usize,
    /// Dropout of hidden states and attention probabilities in training — the noise that makes
    /// unsupervised positive pairs; `None` keeps the model's own (0.1 in BERT configs).
    #[serde(default)]
    pub dropout: Option<f64>,
    /// Unsupervised only: each view of a sentence also loses each of its words with this
    /// probability (0: dropout alone, the paper's recipe).
    #[serde(default)]
    pub word_deletion: f64,
    /// Stop once this many evaluations in a row have not beaten the best score (`None`: train
    /// to the last step).
    #[serde(default)]
    pub patience: Option<usize>,
}

impl SimcseConfig {
    /// The paper's unsupervised recipe (lr 3e-5, batch 64, length 32, 1 epoch, [CLS]+MLP in training only).
    pub fn unsupervised() -> Self {
        SimcseConfig {
            objective: Objective::Unsupervised,
            pooling: Pooling::Cls,
            mlp: MlpUse::TrainOnly,
            temperature: 0.05,
            max_length: 32,
            batch_size: 64,
            epochs: 1,
            max_steps: None,
            optimizer: AdamWConfig { lr: 3e-5, ..AdamWConfig::default() },
            warmup_steps: 0,
            max_grad_norm: 1.0,
            seed: 42,
            eval_every: 250,
            dropout: None,
            word_deletion: 0.0,
            patience: None,
        }
    }

    /// The paper's supervised recipe (lr 5e-5, batch 512, 3 epochs, MLP kept).
    pub fn supervised() -> Self {
        SimcseConfig {
            objective: Objective::Supervised,
            mlp: MlpUse::Keep,
            batch_size: 512,
            epochs: 3,
            optimizer: AdamWConfig { lr: 5e-5, ..AdamWConfig::default() },
            ..Self::unsupervised()
        }
    }

    /// The pooling to encode with after training (what `training.json` recommends).
    pub fn inference_pooling(&self) -> Pooling {
        match (self.pooling, self.mlp) {
            (Pooling::Cls, MlpUse::TrainOnly) => Pooling::ClsBeforePooler,
            (p, _) => p,
        }
    }
}

/// Where the starting weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelInit {
    /// The model folder's weights (a SimCSE checkpoint also restores its MLP).
    Pretrained,
    /// A fresh BERT of this shape, seeded, with the model folder's vocabulary and tokenizer.
    Random {
        /// Transformer layers.
        layers: usize,
        /// Hidden size.
        hidden: usize,
        /// Attention heads.
        heads: usize,
    },
}

/// Tokenized training examples.
pub enum TrainingData {
    /// One sentence each (unsupervised).
    Sentences(Vec<Vec<u32>>),
    /// Anchor, positive, hard negative (supervised).
    Triplets(Vec<[Vec<u32>; 3]>),
}

impl TrainingData {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            TrainingData::Sentences(s) => s.len(),
            TrainingData::Triplets(t) => t.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// STS-B dev prepared for repeated evaluation.
pub struct DevSet {
    pairs: Vec<StsPair>,
    sentences: Vec<String>,
    index: HashMap<String, usize>,
}

impl DevSet {
    /// Wraps scored pairs (e.g. from STS-B dev).
    pub fn new(pairs: Vec<StsPair>) -> Self {
        let mut index = HashMap::new();
        let mut sentences = Vec::new();
        for p in &pairs {
            for s in [&p.a, &p.b] {
                if !index.contains_key(s) {
                    index.insert(s.clone(), sentences.len());
                    sentences.push(s.clone());
                }
            }
        }
        DevSet { pairs, sentences, index }
    }

    /// Loads STS-B dev from the data folder.
    pub fn stsb(data_dir: &Path) -> Result<Self> {
        Ok(Self::new(sts::load(data_dir, StsSet::StsB, Split::Dev)?.pairs().cloned().collect()))
    }
}

/// A set that scores a model state during training, to keep the best checkpoint and stop early.
pub trait Validation {
    /// What is being done, for progress messages (e.g. `evaluating on STS-B dev…`).
    fn describe(&self) -> String;
    /// Scores the trainer's current weights (inference mode, no dropout).
    fn validate(&self, trainer: &Trainer) -> Result<Validated>;
}

/// The scores of one model state on a [`Validation`] set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validated {
    /// STS-B dev.
    StsbDev(DevScores),
    /// Pseudo-queries cut out of the training corpus.
    PseudoQueries(PseudoScores),
}

/// Pseudo-query retrieval scores of one model state (exact cosine search).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PseudoScores {
    /// nDCG@10 over the pseudo-queries (each has one relevant document).
    pub ndcg10: f64,
    /// Share of the pseudo-queries whose document is in the top 10.
    pub recall10: f64,
}

impl Validated {
    /// The score that selects checkpoints (higher is better): STS-B dev Spearman ×100, or
    /// pseudo-query nDCG@10.
    pub fn score(&self) -> f64 {
        match self {
            Validated::StsbDev(s) => s.spearman,
            Validated::PseudoQueries(p) => p.ndcg10,
        }
    }

    /// The score's name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Validated::StsbDev(_) => "STS-B dev",
            Validated::PseudoQueries(_) => "pseudo nDCG@10",
        }
    }

    /// The score formatted for messages (Spearman ×100 with 2 decimals, nDCG with 4).
    pub fn formatted(&self) -> String {
        match self {
            Validated::StsbDev(s) => format!("{:.2}", s.spearman),
            Validated::PseudoQueries(p) => format!("{:.4}", p.ndcg10),
        }
    }

    /// The STS-B dev scores, if that is what was measured.
    pub fn stsb(&self) -> Option<DevScores> {
        match self {
            Validated::StsbDev(s) => Some(*s),
            Validated::PseudoQueries(_) => None,
        }
    }

    /// The line written to `log.jsonl` for an evaluation at `step`.
    fn log_line(&self, step: usize) -> serde_json::Value {
        match self {
            Validated::StsbDev(s) => serde_json::json!({
                "step": step, "stsb_dev": s.spearman, "alignment": s.alignment, "uniformity": s.uniformity
            }),
            Validated::PseudoQueries(p) => {
                serde_json::json!({"step": step, "pseudo_ndcg10": p.ndcg10, "pseudo_recall10": p.recall10})
            }
        }
    }
}

impl Validation for DevSet {
    fn describe(&self) -> String {
        format!("evaluating on STS-B dev ({} pairs)…", self.pairs.len())
    }

    fn validate(&self, trainer: &Trainer) -> Result<Validated> {
        trainer.evaluate(self).map(Validated::StsbDev)
    }
}

/// One evaluation of a run: the step and the validation score there.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Optimiser steps taken when it was evaluated.
    pub step: usize,
    /// The scores.
    pub scores: Validated,
}

/// STS-B dev Spearman (×100), alignment and uniformity of one model state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevScores {
    /// Spearman ×100 between cosine and gold.
    pub spearman: f64,
    /// Mean squared distance of normalised vectors over pairs scored ≥ 4.
    pub alignment: f64,
    /// log mean exp(−2‖x−y‖²) over all pairs of dev sentences.
    pub uniformity: f64,
}

/// What one optimiser step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean InfoNCE loss of the batch (before the update).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// The outcome of [`Trainer::fit`] and [`Trainer::fit_with`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitReport {
    /// STS-B dev scores before the first step (when validated on STS-B dev).
    pub before: Option<DevScores>,
    /// STS-B dev scores after the last step (when validated on STS-B dev).
    pub after: Option<DevScores>,
    /// The best STS-B dev scores and their step (when validated on STS-B dev).
    pub best: Option<(usize, DevScores)>,
    /// Every evaluation on the validation set, in step order: before the first step, every
    /// `eval_every` steps, and after the last step.
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
    /// The evaluation whose weights are in the best checkpoint.
    #[serde(default)]
    pub best_evaluation: Option<Evaluation>,
    /// Whether training stopped before its last step because `patience` evaluations in a row
    /// did not beat the best.
    #[serde(default)]
    pub stopped_early: bool,
    /// Steps taken in this run.
    pub steps: usize,
    /// Wall-clock seconds spent in training steps (evaluation excluded).
    pub train_seconds: f64,
    /// The best checkpoint, if one was written.
    pub best_checkpoint: Option<PathBuf>,
    /// The final checkpoint.
    pub last_checkpoint: Option<PathBuf>,
}

/// A BERT being trained with SimCSE, with its optimiser.
pub struct Trainer {
    bert: Bert,
    mlp: Option<Linear>,
    varmap: VarMap,
    optimizer: AdamW,
    tokenizer: TextTokenizer,
    pad_id: u32,
    source: ModelDir,
    bert_config: BertConfig,
    /// Tensors saved unchanged (the source model's pooler when SimCSE's MLP is not used).
    carried: HashMap<String, Tensor>,
    config: SimcseConfig,
    device: Device,
    step: usize,
}

/// `n` samples of N(0, std²) from a seeded generator.
fn normal_vec(rng: &mut rand::rngs::StdRng, n: usize, std: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.sample::<f64, _>(rand_distr::StandardNormal) * std) as f32).collect()
}

/// BERT's initialisation: weights N(0, 0.02²), biases 0, LayerNorm scales 1.
fn fresh_value(name: &str, shape: &[usize], rng: &mut rand::rngs::StdRng, device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    let data = if name.ends_with("bias") {
        vec![0f32; n]
    } else if name.contains("LayerNorm") {
        vec![1f32; n]
    } else {
        normal_vec(rng, n, 0.02)
    };
    Ok(Tensor::from_vec(data, shape, device)?)
}

const MLP_PREFIX: &str = "mlp.dense.";

impl Trainer {
    /// Builds a trainee from a model folder (its tokenizer always; its weights unless `init` is random).
    pub fn new(model_dir: &Path, init: &ModelInit, config: SimcseConfig, device: &Device) -> Result<Self> {
        if config.batch_size < 2 {
            return Err(Error::InvalidInput(
                "batch size must be at least 2: the other sentences of the batch are the negatives".into(),
            ));
        }
        let source = ModelDir::open(model_dir)?;
        let tokenizer = TextTokenizer::load(&source, config.max_length)?;
        let mut bert_config = match init {
            ModelInit::Pretrained => source.read_config()?,
            ModelInit::Random { layers, hidden, heads } => {
                let vocab = source.read_config().map(|c| c.vocab_size).unwrap_or(0).max(tokenizer.vocab_size());
                BertConfig::tiny(vocab, *hidden, *layers, *heads)
            }
        };
        if let Some(p) = config.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::InvalidInput(format!("dropout must be in [0, 1), not {p}")));
            }
            bert_config.hidden_dropout_prob = p;
            bert_config.attention_probs_dropout_prob = p;
        }
        if !(0.0..1.0).contains(&config.word_deletion) {
            return Err(Error::InvalidInput(format!("word deletion must be in [0, 1), not {}", config.word_deletion)));
        }
        if config.max_length > bert_config.max_position_embeddings {
            return Err(Error::InvalidInput(format!(
                "maximum length {} exceeds the model's {} positions",
                config.max_length, bert_config.max_position_embeddings
            )));
        }
        let use_mlp = config.pooling == Pooling::Cls;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let bert = Bert::load(vb.clone(), &bert_config, false)?;
        let h = bert_config.hidden_size;
        let mlp = if use_mlp { Some(candle_nn::linear(h, h, vb.pp("mlp").pp("dense"))?) } else { None };

        // Replace candle's default initial values: by the checkpoint's, or by a seeded BERT init.
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let mut weights = match init {
            ModelInit::Pretrained => source.read_weights(device)?,
            ModelInit::Random { .. } => HashMap::new(),
        };
        let resumed_mlp = read_training_info(&source.path)?.is_some_and(|i| i.pooler_is_simcse_mlp);
        let mut names: Vec<(String, Var)> = varmap.data().lock().map_err(|_| poisoned())?.clone().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, var) in &names {
            let value = if let Some(rest) = name.strip_prefix(MLP_PREFIX) {
                let saved = format!("pooler.dense.{rest}");
                match weights.get(&saved) {
                    Some(t) if resumed_mlp => t.clone(),
                    _ => fresh_value(name, var.dims(), &mut rng, device)?,
                }
            } else if matches!(init, ModelInit::Random { .. }) {
                fresh_value(name, var.dims(), &mut rng, device)?
            } else {
                weights
                    .remove(name)
                    .ok_or_else(|| Error::Model(format!("{}: tensor {name} is missing", source.weights.display())))?
            };
            if value.dims() != var.dims() {
                return Err(Error::Model(format!(
                    "{}: tensor {name} is {:?}, the model needs {:?}",
                    source.weights.display(),
                    value.dims(),
                    var.dims()
                )));
            }
            var.set(&value)?;
        }
        let carried = if use_mlp {
            HashMap::new()
        } else {
            weights.into_iter().filter(|(k, _)| k.starts_with("pooler.dense.")).collect()
        };
        let optimizer = AdamW::new(names, config.optimizer.clone())?;
        let pad_id = tokenizer.token_id("[PAD]").unwrap_or(bert_config.pad_token_id as u32);
        Ok(Trainer {
            bert,
            mlp,
            varmap,
            optimizer,
            tokenizer,
            pad_id,
            source,
            bert_config,
            carried,
            config,
            device: device.clone(),
            step: 0,
        })
    }

    /// The run's settings.
    pub fn config(&self) -> &SimcseConfig {
        &self.config
    }

    /// The tokenizer (truncating at the configured maximum length).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The model folder training started from (its tokenizer files are the trainee's).
    pub fn model_dir(&self) -> &ModelDir {
        &self.source
    }

    /// The shape of the BERT being trained (dropout as trained).
    pub fn bert_config(&self) -> &BertConfig {
        &self.bert_config
    }

    /// Optimiser steps taken (including those of a resumed checkpoint).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Sets the step counter (to continue a run's schedule and data order from a checkpoint).
    pub fn set_step(&mut self, step: usize) {
        self.step = step;
    }

    /// A copy of every trainable variable with its name (`mlp.dense.*` for SimCSE's MLP), sorted by name.
    pub fn variables(&self) -> Result<Vec<(String, Tensor)>> {
        self.optimizer.vars().map(|(n, v)| Ok((n.to_string(), v.as_tensor().copy()?))).collect()
    }

    /// Tokenizes sentences for training.
    pub fn tokenize_sentences(&self, sentences: &[String]) -> Result<TrainingData> {
        let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
        Ok(TrainingData::Sentences(self.tokenizer.tokenize(&refs)?.into_iter().map(|t| t.ids).collect()))
    }

    /// Tokenizes triplets for training.
    pub fn tokenize_triplets(&self, triplets: &[Triplet]) -> Result<TrainingData> {
        let flat: Vec<&str> =
            triplets.iter().flat_map(|t| [t.anchor.as_str(), t.positive.as_str(), t.hard_negative.as_str()]).collect();
        let mut ids = self.tokenizer.tokenize(&flat)?.into_iter().map(|t| t.ids);
        let mut out = Vec::with_capacity(triplets.len());
        while let (Some(a), Some(p), Some(n)) = (ids.next(), ids.next(), ids.next()) {
            out.push([a, p, n]);
        }
        Ok(TrainingData::Triplets(out))
    }

    /// Sentence vectors of a batch of token ids; `training` applies the MLP even when it is train-only.
    pub fn embed(&self, ids: &[&[u32]], mode: Mode, training: bool) -> Result<Tensor> {
        let input = BatchInput::from_ids(ids, self.pad_id, &self.device)?;
        let out = self.bert.forward(&input, mode)?;
        match (self.config.pooling, &self.mlp) {
            (Pooling::Cls, Some(mlp)) => {
                let last =
                    out.hidden_states.last().ok_or_else(|| Error::Model("BERT returned no hidden states".into()))?;
                let cls = last.narrow(1, 0, 1)?.squeeze(1)?;
                if training || self.config.mlp == MlpUse::Keep {
                    Ok(mlp.forward(&cls)?.tanh()?)
                } else {
                    Ok(cls)
                }
            }
            (pooling, _) => pooling.pool(&out, &input.attention_mask),
        }
    }

    /// The InfoNCE loss of a batch of example indices, in the given mode (differentiable).
    pub fn batch_loss(&self, data: &TrainingData, batch: &[usize], mode: Mode) -> Result<Tensor> {
        let b = batch.len();
        let t = self.config.temperature;
        match data {
            TrainingData::Sentences(s) => {
                // Each sentence twice in one pass: dropout (and word deletion) make the copies differ.
                // (`delete_words` with probability 0 returns the sentence unchanged.)
                let mut rng = step_rng(self.config.seed, self.step);
                let views: Vec<Vec<u32>> = (0..2)
                    .flat_map(|_| batch.iter().map(|&i| s[i].as_slice()))
                    .map(|v| delete_words(v, self.config.word_deletion, &mut rng))
                    .collect();
                let ids: Vec<&[u32]> = views.iter().map(Vec::as_slice).collect();
                let z = self.embed(&ids, mode, true)?;
                info_nce(&z.narrow(0, 0, b)?, &z.narrow(0, b, b)?, None, t)
            }
            TrainingData::Triplets(tr) => {
                let ids: Vec<&[u32]> = (0..3).flat_map(|k| batch.iter().map(move |&i| tr[i][k].as_slice())).collect();
                let z = self.embed(&ids, mode, true)?;
                info_nce(&z.narrow(0, 0, b)?, &z.narrow(0, b, b)?, Some(&z.narrow(0, 2 * b, b)?), t)
            }
        }
    }

    /// One optimiser step on a batch with dropout on, at the scheduled learning rate.
    pub fn train_step(&mut self, data: &TrainingData, batch: &[usize], schedule: &LinearSchedule) -> Result<StepStats> {
        let loss = self.batch_loss(data, batch, Mode::Train)?;
        let loss_value = loss.to_scalar::<f32>()? as f64;
        if !loss_value.is_finite() {
            return Err(Error::InvalidInput(format!(
                "the loss became {loss_value} at step {}: lower the learning rate",
                self.step
            )));
        }
        let mut grads = loss.backward()?;
        let vars: Vec<Var> = self.optimizer.vars().map(|(_, v)| v.clone()).collect();
        let grad_norm = clip_grad_norm(&mut grads, vars.iter(), self.config.max_grad_norm)?;
        let lr = self.config.optimizer.lr * schedule.factor(self.step);
        self.optimizer.step(&grads, lr)?;
        self.step += 1;
        Ok(StepStats { loss: loss_value, grad_norm, lr })
    }

    /// Encodes texts with the inference pooling (no dropout), batched by length.
    pub fn encode(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let tokens: Vec<Vec<u32>> = self.tokenizer.tokenize(texts)?.into_iter().map(|t| t.ids).collect();
        self.encode_ids(&tokens, batch_size)
    }

    /// Encodes tokenized texts (e.g. tokenized at another maximum length than training's) with
    /// the inference pooling (no dropout), batched by length.
    pub fn encode_ids(&self, tokens: &[Vec<u32>], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
        let mut out = vec![Vec::new(); tokens.len()];
        for chunk in crate::encoder::length_batches(&lengths, |_| batch_size) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&i| tokens[i].as_slice()).collect();
            // Detached from the variables: evaluation must not build a backward graph.
            let z = self.embed(&ids, Mode::Infer, false)?.detach().to_vec2::<f32>()?;
            for (row, &i) in z.into_iter().zip(&chunk) {
                out[i] = row;
            }
        }
        Ok(out)
    }

    /// STS-B dev Spearman, alignment (pairs scored ≥ 4) and uniformity (all dev sentences).
    pub fn evaluate(&self, dev: &DevSet) -> Result<DevScores> {
        let refs: Vec<&str> = dev.sentences.iter().map(String::as_str).collect();
        let vectors = self.encode(&refs, 128)?;
        let v = |s: &str| &vectors[dev.index[s]];
        let sims: Vec<f64> = dev.pairs.iter().map(|p| cosine(v(&p.a), v(&p.b))).collect();
        let gold: Vec<f64> = dev.pairs.iter().map(|p| p.score).collect();
        let positives: Vec<&StsPair> = dev.pairs.iter().filter(|p| p.score >= 4.0).collect();
        let left: Vec<Vec<f32>> = positives.iter().map(|p| v(&p.a).clone()).collect();
        let right: Vec<Vec<f32>> = positives.iter().map(|p| v(&p.b).clone()).collect();
        Ok(DevScores {
            spearman: 100.0 * spearman(&sims, &gold),
            alignment: alignment(&left, &right)?,
            uniformity: uniformity(&vectors)?,
        })
    }

    /// The weights under standard BERT names; SimCSE's MLP is saved as BERT's pooler.
    pub fn checkpoint_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = self.carried.clone();
        for (name, var) in self.varmap.data().lock().map_err(|_| poisoned())?.iter() {
            let key = match name.strip_prefix(MLP_PREFIX) {
                Some(rest) => format!("pooler.dense.{rest}"),
                None => name.clone(),
            };
            out.insert(key, var.as_tensor().detach());
        }
        Ok(out)
    }

    /// Writes a Hugging Face checkpoint folder with `training.json`.
    pub fn save(&self, dir: &Path, scores: Option<DevScores>, args: serde_json::Value) -> Result<()> {
        self.save_validated(dir, scores.map(Validated::StsbDev).as_ref(), args)
    }

    /// Writes a Hugging Face checkpoint folder with `training.json`, which records `scores`:
    /// STS-B dev in its own fields, pseudo-query scores under `args.validation` (the pooling to
    /// encode with is always recorded).
    pub fn save_validated(&self, dir: &Path, scores: Option<&Validated>, mut args: serde_json::Value) -> Result<()> {
        let stsb = scores.and_then(Validated::stsb);
        if let (Some(Validated::PseudoQueries(p)), Some(map)) = (scores, args.as_object_mut()) {
            map.insert("validation".into(), serde_json::json!({"pseudo_queries": p}));
        }
        let info = TrainingInfo {
            step: self.step,
            stsb_dev_spearman: stsb.map(|s| s.spearman),
            alignment: stsb.map(|s| s.alignment),
            uniformity: stsb.map(|s| s.uniformity),
            pooling: self.config.inference_pooling().name().into(),
            pooler_is_simcse_mlp: self.mlp.is_some(),
            source_model: self.source.path.clone(),
            args,
        };
        write_checkpoint(dir, &self.bert_config, &self.checkpoint_tensors()?, &self.source, &info)
    }

    /// Trains to the configured number of steps, evaluating on STS-B dev (when given): see
    /// [`Trainer::fit_with`].
    pub fn fit(
        &mut self,
        data: &TrainingData,
        dev: Option<&DevSet>,
        out_dir: &Path,
        args: serde_json::Value,
        progress: &dyn Progress,
    ) -> Result<FitReport> {
        self.fit_with(data, dev.map(|d| d as &dyn Validation), out_dir, args, progress)
    }

    /// Trains to the configured number of steps, evaluating on `validation` before the first
    /// step, every `eval_every` steps and after the last, and keeping the best-scoring weights
    /// in `out_dir/best` (the weights before training count: if no step beats them, `best` is
    /// the starting model) and the final ones in `out_dir/last`. With `patience` set, training
    /// stops once that many evaluations in a row have not beaten the best. Each step is told to
    /// `progress`, with the loss, the speed and the last score as the message; every step and
    /// every evaluation is a line of `out_dir/log.jsonl`.
    pub fn fit_with(
        &mut self,
        data: &TrainingData,
        validation: Option<&dyn Validation>,
        out_dir: &Path,
        args: serde_json::Value,
        progress: &dyn Progress,
    ) -> Result<FitReport> {
        if data.len() < 2 {
            return Err(Error::InvalidInput("training needs at least two examples".into()));
        }
        if self.config.patience == Some(0) {
            return Err(Error::InvalidInput("patience must be at least 1 evaluation".into()));
        }
        let per_epoch = data.len().div_ceil(self.config.batch_size);
        let total = self.config.max_steps.unwrap_or(self.config.epochs * per_epoch);
        let schedule = LinearSchedule { warmup_steps: self.config.warmup_steps, total_steps: total };
        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
        let log_path = out_dir.join("log.jsonl");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let mut write_log = |value: serde_json::Value| -> Result<()> {
            use std::io::Write;
            writeln!(log, "{value}").map_err(|e| Error::io(&log_path, e))
        };

        progress.start("training", total);
        // Steps told to `progress` so far (a resumed run starts past 0).
        let mut shown = self.step.min(total);
        progress.advance(shown);

        let mut report = FitReport {
            before: None,
            after: None,
            best: None,
            evaluations: Vec::new(),
            best_evaluation: None,
            stopped_early: false,
            steps: 0,
            train_seconds: 0.0,
            best_checkpoint: None,
            last_checkpoint: None,
        };
        let best_dir = out_dir.join("best");
        // Evaluations in a row that did not beat the best.
        let mut stale = 0usize;
        let evaluate = |trainer: &Trainer,
                        report: &mut FitReport,
                        stale: &mut usize,
                        write_log: &mut dyn FnMut(serde_json::Value) -> Result<()>|
         -> Result<Option<Validated>> {
            let Some(validation) = validation else { return Ok(None) };
            progress.message(&validation.describe());
            let scores = validation.validate(trainer)?;
            write_log(scores.log_line(trainer.step))?;
            let evaluation = Evaluation { step: trainer.step, scores };
            report.evaluations.push(evaluation);
            // Only a strictly higher score replaces the best: a tie keeps the earlier weights.
            if report.best_evaluation.is_none_or(|b| scores.score() > b.scores.score()) {
                report.best_evaluation = Some(evaluation);
                report.best = scores.stsb().map(|s| (trainer.step, s));
                trainer.save_validated(&best_dir, Some(&scores), args.clone())?;
                report.best_checkpoint = Some(best_dir.clone());
                *stale = 0;
            } else {
                *stale += 1;
            }
            Ok(Some(scores))
        };
        let before = evaluate(self, &mut report, &mut stale, &mut write_log)?;
        report.before = before.and_then(|v| v.stsb());
        let mut last_score = before;
        // The step of the latest evaluation: a run that stops right after one is not scored again.
        let mut evaluated_at = before.map(|_| self.step);

        let mut epoch_cache: Option<(usize, Vec<Vec<usize>>)> = None;
        let started = Instant::now();
        let mut eval_seconds = 0.0;
        let mut loss_avg: Option<f64> = None;
        while self.step < total {
            let epoch = self.step / per_epoch;
            if epoch_cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
                epoch_cache = Some((epoch, epoch_batches(data.len(), self.config.batch_size, self.config.seed, epoch)));
            }
            let batches = &epoch_cache.as_ref().map(|(_, b)| b).ok_or_else(poisoned)?;
            let batch = batches[self.step % per_epoch].clone();
            if batch.len() < 2 {
                // A lone sentence has no negatives; skip it rather than train on a zero loss.
                self.step += 1;
                continue;
            }
            let stats = self.train_step(data, &batch, &schedule)?;
            report.steps += 1;
            loss_avg = Some(loss_avg.map_or(stats.loss, |a| 0.9 * a + 0.1 * stats.loss));
            write_log(
                serde_json::json!({"step": self.step, "loss": stats.loss, "grad_norm": stats.grad_norm, "lr": stats.lr}),
            )?;
            let rate = report.steps as f64 / (started.elapsed().as_secs_f64() - eval_seconds).max(1e-9);
            let score_text = last_score.map_or("-".to_string(), |v| format!("{} {}", v.name(), v.formatted()));
            progress.message(&format!("loss {:.4} | {rate:.2} steps/s | {score_text}", loss_avg.unwrap_or(stats.loss)));
            progress.advance(self.step.saturating_sub(shown));
            shown = shown.max(self.step);
            if self.config.eval_every > 0 && self.step.is_multiple_of(self.config.eval_every) && self.step < total {
                let t = Instant::now();
                if let Some(v) = evaluate(self, &mut report, &mut stale, &mut write_log)? {
                    last_score = Some(v);
                    evaluated_at = Some(self.step);
                }
                eval_seconds += t.elapsed().as_secs_f64();
                if self.config.patience.is_some_and(|p| stale >= p) {
                    report.stopped_early = true;
                    break;
                }
            }
        }
        report.train_seconds = started.elapsed().as_secs_f64() - eval_seconds;
        let after = if evaluated_at == Some(self.step) {
            last_score
        } else {
            evaluate(self, &mut report, &mut stale, &mut write_log)?
        };
        report.after = after.and_then(|v| v.stsb());
        progress.message(&format!(
            "done: {} steps{} | {}",
            report.steps,
            if report.stopped_early { " (stopped early)" } else { "" },
            after.map_or("-".to_string(), |v| format!("{} {}", v.name(), v.formatted()))
        ));
        progress.finish();
        let last_dir = out_dir.join("last");
        self.save_validated(&last_dir, after.as_ref(), args)?;
        report.last_checkpoint = Some(last_dir);
        Ok(report)
    }
}

fn poisoned() -> Error {
    Error::InvalidInput("internal state was poisoned by an earlier panic; restart training".into())
}
