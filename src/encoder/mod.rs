//! The encoder: text → tokens → BERT → pooled sentence vectors.
//!
//! Two BERTs over the same weights: candle's differentiable one ([`bert`], what training and
//! GPUs run) and the CPU inference engine (`cpu`, what [`Encoder`] runs on the CPU in f32 or
//! bf16), which gives every pooling within 1e-5 of the first (see `cpu`'s contract).

mod batching;
pub mod bert;
mod candle_ops;
pub mod config;
mod cpu;
mod dense;
pub mod fetch;
mod math;
pub mod model_dir;
pub mod pooling;
pub mod tokenizer;
pub mod training_info;
mod tuning;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use rayon::prelude::*;

pub(crate) use batching::length_batches;
pub use bert::{BatchInput, Bert, BertOutput, Mode};
pub use config::BertConfig;
pub use fetch::{default_model_dir, fetch_default_model};
pub use model_dir::ModelDir;
pub use pooling::Pooling;
pub use tokenizer::{TextTokenizer, Tokens};
pub use tuning::{tune_process, TUNING_ENV};

use crate::{EncoderId, Error, Result};

/// Options for loading an encoder.
#[derive(Clone, Debug)]
pub struct EncoderOptions {
    /// Maximum tokens per text, special tokens included (default: the model's maximum).
    pub max_length: Option<usize>,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Where the model runs.
    pub device: Device,
    /// Precision of the weights and activations: F32, or F16/BF16. On a CPU with AVX-512 BF16,
    /// BF16 runs the dense layers in bfloat16 with f32 sums and the rest in f32, faster than
    /// F32; on other CPUs it keeps the dense weights in bfloat16 (half the memory a short
    /// query streams) and multiplies them with f32 activations. F16 on a CPU is slower than
    /// F32. Pooled vectors are always f32.
    pub dtype: DType,
    /// The dense layers' products in 8-bit integers (weights per output unit, activations per
    /// token, quantised symmetrically), the rest in f32: on a CPU with AVX2, with `dtype` F32.
    /// An explicit option, faster than f32 and not quite as exact (README: scores beside f32's).
    pub int8: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions { max_length: None, batch_size: 32, device: Device::Cpu, dtype: DType::F32, int8: false }
    }
}

impl EncoderOptions {
    /// These options with the precision named as `--dtype` takes it: `f32`, `f16`, `bf16` or
    /// `int8` (f32 weights, int8 dense products), any case.
    pub fn with_precision(self, name: &str) -> Result<Self> {
        let (dtype, int8) = match name.to_ascii_lowercase().as_str() {
            "f32" => (DType::F32, false),
            "f16" => (DType::F16, false),
            "bf16" => (DType::BF16, false),
            "int8" => (DType::F32, true),
            _ => return Err(Error::InvalidInput(format!("precision {name:?} is not one of f32, f16, bf16, int8"))),
        };
        Ok(EncoderOptions { dtype, int8, ..self })
    }
}

/// Rejects precisions the encoder cannot run in.
fn check_dtype(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => Ok(()),
        other => Err(Error::InvalidInput(format!("the encoder runs in f32, f16 or bf16, not {other:?}"))),
    }
}

/// Refuses int8 where it cannot run: it is for f32 models on CPUs with AVX2.
fn check_int8(options: &EncoderOptions) -> Result<()> {
    if !options.int8 {
        return Ok(());
    }
    if !options.device.is_cpu() || options.dtype != DType::F32 {
        return Err(Error::InvalidInput(format!(
            "int8 runs on the CPU over f32 weights, not on {:?} in {:?}: use --device cpu, or f16/bf16 on a GPU",
            options.device, options.dtype
        )));
    }
    if !cpu::int8_available() {
        return Err(Error::InvalidInput("int8 needs a CPU with AVX2, and this one has none: use --dtype f32".into()));
    }
    Ok(())
}

/// Largest tensor of a batch, in bytes: [`tune_process`] lets glibc keep freed blocks up to this
/// size in the heap, and [`Encoder::batches`] keeps a batch's attention scores below it.
const MMAP_THRESHOLD: usize = 32 << 20;

/// Sentence vectors for one or several poolings of the same texts.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// `vectors[p][i]`: text `i` pooled with the `p`-th requested pooling.
    pub vectors: Vec<Vec<Vec<f32>>>,
    /// How many texts were cut at the maximum length.
    pub truncated: usize,
}

/// A loaded BERT model with its tokenizer, ready to encode text.
///
/// Batches are encoded in parallel, one per core (rayon). candle's own per-operation threads
/// compete with that; loading an encoder changes nothing in the process, so a program that
/// owns its process calls [`tune_process`] first (the isovec CLI does).
pub struct Encoder {
    bert: Bert,
    /// The CPU inference copy of `bert` that encoding runs on, when it runs on the CPU in f32 or
    /// bf16 (or with `int8`).
    cpu: Option<cpu::CpuBert>,
    tokenizer: TextTokenizer,
    name: String,
    path: PathBuf,
    weights_sha256: String,
    files_sha256: String,
    pad_id: u32,
    options: EncoderOptions,
}

impl Encoder {
    /// Loads any Hugging Face BERT folder.
    pub fn load(path: &Path, options: EncoderOptions) -> Result<Self> {
        check_dtype(options.dtype)?;
        check_int8(&options)?;
        let dir = ModelDir::open(path)?;
        let config = dir.read_config()?;
        let weights = dir.read_weights(&options.device)?;
        let with_pooler = weights.contains_key("pooler.dense.weight");
        // The VarBuilder converts each f32 checkpoint tensor to the requested precision.
        let vb = VarBuilder::from_tensors(weights, options.dtype, &options.device);
        let bert = Bert::load(vb, &config, with_pooler)
            .map_err(|e| Error::Model(format!("{}: {e}", dir.weights.display())))?;
        // Hashed at every load, no cache: for the default model's 90 MB this took 68 ms of a
        // 160 ms load (sha2 with the CPU's SHA instructions, 2-core machine), and a cache keyed by
        // size and mtime would be fooled by edits that keep both.
        let weights_sha256 = dir.weights_sha256()?;
        Self::from_parts(bert, &dir, weights_sha256, options)
    }

    /// Wraps an already-built model with the tokenizer of `dir`; `weights_sha256` identifies its
    /// weights (the id also covers `dir`'s config and tokenizer files).
    pub fn from_parts(bert: Bert, dir: &ModelDir, weights_sha256: String, options: EncoderOptions) -> Result<Self> {
        let model_max = bert.config().max_position_embeddings;
        let max_length = options.max_length.unwrap_or(model_max);
        if max_length < 3 || max_length > model_max {
            return Err(Error::InvalidInput(format!(
                "maximum length {max_length} must be between 3 and the model's {model_max} positions"
            )));
        }
        if options.batch_size == 0 {
            return Err(Error::InvalidInput("batch size must be at least 1".into()));
        }
        let tokenizer = TextTokenizer::load(dir, max_length)?;
        let files_sha256 = dir.files_sha256(&weights_sha256)?;
        let pad_id = tokenizer.token_id("[PAD]").unwrap_or(bert.config().pad_token_id as u32);
        check_int8(&options)?;
        let cpu = cpu::CpuBert::new(&bert, options.int8)?;
        Ok(Encoder {
            cpu,
            bert,
            tokenizer,
            name: dir.name(),
            path: dir.path.clone(),
            weights_sha256,
            files_sha256,
            pad_id,
            options,
        })
    }

    /// The model's name (its folder name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// sha256 of the weights.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// sha256 over the model files that determine the vectors ([`ModelDir::files_sha256`]).
    pub fn files_sha256(&self) -> &str {
        &self.files_sha256
    }

    /// The BERT model.
    pub fn bert(&self) -> &Bert {
        &self.bert
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.options.device
    }

    /// The precision of the model's weights and activations.
    pub fn dtype(&self) -> DType {
        self.bert.dtype()
    }

    /// Hidden size: the dimension of every pooled vector.
    pub fn dims(&self) -> usize {
        self.bert.config().hidden_size
    }

    /// The identity of this encoder with one pooling.
    pub fn id(&self, pooling: Pooling) -> EncoderId {
        EncoderId {
            model: self.name.clone(),
            weights_sha256: self.weights_sha256.clone(),
            files_sha256: Some(self.files_sha256.clone()),
            pooling: pooling.name().into(),
            max_length: self.tokenizer.max_length(),
            prefixes: Default::default(),
        }
    }

    /// Whether this encoder, with the pooling `id` names, produces `id`'s vectors.
    pub fn produces(&self, id: &EncoderId) -> bool {
        id.pooling.parse::<Pooling>().is_ok_and(|p| self.id(p) == *id)
    }

    /// Checks that the model can produce `pooling`.
    pub fn check_pooling(&self, pooling: Pooling) -> Result<()> {
        if pooling == Pooling::Cls && !self.bert.has_pooler() {
            return Err(Error::InvalidInput(format!(
                "`cls` pooling needs BERT's pooler, and {} has none: use `cls_before_pooler` or `mean`",
                self.name
            )));
        }
        Ok(())
    }

    /// Encodes texts once and pools them each way asked; vectors come back in input order.
    ///
    /// Texts are sorted by length and padded per batch, so little work is spent on padding.
    pub fn encode(&self, texts: &[&str], poolings: &[Pooling]) -> Result<Encoded> {
        self.encode_with_progress(texts, poolings, &|_| {})
    }

    /// Like [`Encoder::encode`], calling `progress(n)` after each batch of `n` texts.
    pub fn encode_with_progress(
        &self,
        texts: &[&str],
        poolings: &[Pooling],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Encoded> {
        for &p in poolings {
            self.check_pooling(p)?;
        }
        let tokens = self.tokenizer.tokenize(texts)?;
        let truncated = tokens.iter().filter(|t| t.truncated).count();
        let dims = self.dims();
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        let batches = length_batches(&lengths, |longest| self.batch_size_for(longest));
        // A batch that runs alone (a query) splits its matrix products over the cores instead.
        let alone = batches.len() == 1;
        let encode_batch = |chunk: &Vec<usize>| -> Result<Vec<Vec<f32>>> {
            let ids: Vec<&[u32]> = chunk.iter().map(|&i| tokens[i].ids.as_slice()).collect();
            let rows = self.forward_batch(&ids, poolings, alone)?;
            progress(chunk.len());
            Ok(rows)
        };
        // On the CPU batches run in parallel, one per core: on few cores this beats splitting
        // each operation across threads (see [`tune_process`]). A GPU
        // already runs each batch's operations in parallel; feeding it from several threads
        // would only interleave their kernels on the one stream.
        let pooled: Vec<Vec<Vec<f32>>> = if self.options.device.is_cpu() {
            batches.par_iter().map(encode_batch).collect::<Result<_>>()?
        } else {
            batches.iter().map(encode_batch).collect::<Result<_>>()?
        };
        let mut vectors = vec![vec![Vec::new(); texts.len()]; poolings.len()];
        for (chunk, rows) in batches.iter().zip(pooled) {
            for (p, flat) in rows.into_iter().enumerate() {
                for (row, &i) in flat.chunks(dims).zip(chunk.iter()) {
                    vectors[p][i] = row.to_vec();
                }
            }
        }
        Ok(Encoded { vectors, truncated })
    }

    /// How many texts go in a batch whose longest text has `longest` tokens: the batch size, and,
    /// on candle's path, fewer for long texts so that a batch's attention scores
    /// (batch × heads × len² f32) stay under [`MMAP_THRESHOLD`] (the CPU path holds one text's
    /// scores of one head at a time).
    fn batch_size_for(&self, longest: usize) -> usize {
        let heads = if self.cpu.is_some() { 0 } else { self.bert.config().num_attention_heads };
        let per_text = heads * longest.max(1) * longest.max(1) * 4;
        MMAP_THRESHOLD.checked_div(per_text).unwrap_or(usize::MAX).clamp(1, self.options.batch_size)
    }

    /// One forward pass on a batch of token ids; returns, per pooling, the flat (batch × dims) rows.
    pub fn encode_ids(&self, ids: &[&[u32]], poolings: &[Pooling]) -> Result<Vec<Vec<f32>>> {
        self.forward_batch(ids, poolings, false)
    }

    /// [`Encoder::encode_ids`]; `parallel` lets the CPU path split each operation over the cores.
    fn forward_batch(&self, ids: &[&[u32]], poolings: &[Pooling], parallel: bool) -> Result<Vec<Vec<f32>>> {
        if let Some(cpu) = &self.cpu {
            return cpu.encode(ids, poolings, parallel);
        }
        let input = BatchInput::from_ids(ids, self.pad_id, &self.options.device)?;
        // Pooling sums over tokens: do it in f32 whatever precision the model ran in.
        let out = self.bert.forward(&input, Mode::Infer)?.to_dtype(DType::F32)?;
        poolings
            .iter()
            .map(|p| {
                let pooled = p.pool(&out, &input.attention_mask)?;
                Ok(pooled.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
            })
            .collect()
    }
}
