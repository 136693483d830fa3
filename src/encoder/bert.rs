//! isovec's own BERT on candle-nn: trainable (real dropout, a LayerNorm with a backward pass)
//! and returning every hidden state.
//!
//! Variable names mirror the checkpoint's tensor names (`embeddings.word_embeddings.weight`,
//! `encoder.layer.0.attention.self.query.weight`, …) so loading needs no mapping table.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::dense::Dense;

use super::config::BertConfig;
use crate::{Error, Result};

/// How a forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Fast fused kernels, no dropout, no gradients needed.
    Infer,
    /// Training: dropout on, every op differentiable.
    Train,
    /// Every op differentiable, dropout off (deterministic: gradient checks, evaluation of a trainee).
    Differentiable,
}

impl Mode {
    fn dropout(self) -> bool {
        self == Mode::Train
    }
    fn fused(self) -> bool {
        self == Mode::Infer
    }
}

/// A padded batch of token ids.
#[derive(Clone, Debug)]
pub struct BatchInput {
    /// (batch, seq) u32.
    pub input_ids: Tensor,
    /// (batch, seq) u32.
    pub token_type_ids: Tensor,
    /// (batch, seq) f32: 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor,
}

impl BatchInput {
    /// Pads token id sequences on the right to the longest of the batch.
    pub fn from_ids(ids: &[&[u32]], pad_id: u32, device: &Device) -> Result<Self> {
        let seq = ids.iter().map(|s| s.len()).max().unwrap_or(0);
        let b = ids.len();
        let mut input = vec![pad_id; b * seq];
        let mut mask = vec![0f32; b * seq];
        for (i, s) in ids.iter().enumerate() {
            input[i * seq..i * seq + s.len()].copy_from_slice(s);
            mask[i * seq..i * seq + s.len()].iter_mut().for_each(|m| *m = 1.0);
        }
        Ok(BatchInput {
            input_ids: Tensor::from_vec(input, (b, seq), device)?,
            token_type_ids: Tensor::zeros((b, seq), DType::U32, device)?,
            attention_mask: Tensor::from_vec(mask, (b, seq), device)?,
        })
    }
}

/// What a forward pass returns.
#[derive(Clone, Debug)]
pub struct BertOutput {
    /// Embedding-layer output followed by every layer's output, each (batch, seq, hidden).
    pub hidden_states: Vec<Tensor>,
    /// The pooler's output (dense + tanh on the last layer's [CLS]), if the checkpoint has a pooler.
    pub pooler_output: Option<Tensor>,
}

impl BertOutput {
    /// The same outputs converted to `dtype` (a cheap copy of handles when already `dtype`).
    pub fn to_dtype(&self, dtype: DType) -> Result<BertOutput> {
        Ok(BertOutput {
            hidden_states: self.hidden_states.iter().map(|h| h.to_dtype(dtype)).collect::<candle_core::Result<_>>()?,
            pooler_output: self.pooler_output.as_ref().map(|p| p.to_dtype(dtype)).transpose()?,
        })
    }
}

/// Layer normalisation over the last dimension, with a backward pass.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub(super) weight: Tensor,
    pub(super) bias: Tensor,
    pub(super) eps: f64,
}

impl LayerNorm {
    /// Loads `weight` and `bias` (size `dim`).
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    /// Normalises `x`; `fused` uses candle's kernel, which has no backward pass.
    pub fn forward(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        if fused {
            return Ok(candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps as f32)?);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}

fn dropout(x: Tensor, p: f64, mode: Mode) -> Result<Tensor> {
    if mode.dropout() && p > 0.0 {
        Ok(candle_nn::ops::dropout(&x, p as f32)?)
    } else {
        Ok(x)
    }
}

pub(super) struct Embeddings {
    pub(super) word_embeddings: Embedding,
    pub(super) position_embeddings: Embedding,
    pub(super) token_type_embeddings: Embedding,
    pub(super) layer_norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Embeddings {
            word_embeddings: candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"))?,
            position_embeddings: candle_nn::embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type_embeddings: candle_nn::embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), cfg.hidden_size, cfg.layer_norm_eps)?,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    fn forward(&self, input: &BatchInput, mode: Mode) -> Result<Tensor> {
        let (_, seq) = input.input_ids.dims2()?;
        let positions = Tensor::arange(0u32, seq as u32, input.input_ids.device())?;
        let x = self
            .word_embeddings
            .forward(&input.input_ids)?
            .broadcast_add(&self.position_embeddings.forward(&positions)?)?
            .add(&self.token_type_embeddings.forward(&input.token_type_ids)?)?;
        dropout(self.layer_norm.forward(&x, mode.fused())?, self.dropout, mode)
    }
}

pub(super) struct SelfAttention {
    pub(super) query: Dense,
    pub(super) key: Dense,
    pub(super) value: Dense,
    pub(super) heads: usize,
    pub(super) head_dim: usize,
    dropout: f64,
}

impl SelfAttention {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(SelfAttention {
            query: Dense::load(h, h, vb.pp("query"))?,
            key: Dense::load(h, h, vb.pp("key"))?,
            value: Dense::load(h, h, vb.pp("value"))?,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            dropout: cfg.attention_probs_dropout_prob,
        })
    }

    /// `mask` is additive, (batch, 1, 1, seq).
    fn forward(&self, x: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((b, s, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let q = split(self.query.forward(x, mode.fused())?)?;
        let k = split(self.key.forward(x, mode.fused())?)?;
        let v = split(self.value.forward(x, mode.fused())?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = q.matmul(&k.t()?)?;
        let probs = if mode.fused() {
            super::candle_ops::masked_softmax(&scores, mask, scale)?
        } else {
            candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(mask)?, D::Minus1)?
        };
        let probs = dropout(probs, self.dropout, mode)?;
        Ok(probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?)
    }
}

/// A dense layer followed by dropout, residual and LayerNorm (BERT's `*.output` blocks).
pub(super) struct DenseResidualNorm {
    pub(super) dense: Dense,
    pub(super) layer_norm: LayerNorm,
    dropout: f64,
}

impl DenseResidualNorm {
    fn load(vb: VarBuilder, input: usize, cfg: &BertConfig) -> Result<Self> {
        Ok(DenseResidualNorm {
            dense: Dense::load(input, cfg.hidden_size, vb.pp("dense"))?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), cfg.hidden_size, cfg.layer_norm_eps)?,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = dropout(self.dense.forward(x, mode.fused())?, self.dropout, mode)?;
        self.layer_norm.forward(&(y + residual)?, mode.fused())
    }
}

pub(super) struct Layer {
    pub(super) attention: SelfAttention,
    pub(super) attention_output: DenseResidualNorm,
    pub(super) intermediate: Dense,
    pub(super) output: DenseResidualNorm,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Layer {
            attention: SelfAttention::load(vb.pp("attention").pp("self"), cfg)?,
            attention_output: DenseResidualNorm::load(vb.pp("attention").pp("output"), cfg.hidden_size, cfg)?,
            intermediate: Dense::load(cfg.hidden_size, cfg.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: DenseResidualNorm::load(vb.pp("output"), cfg.intermediate_size, cfg)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let a = self.attention.forward(x, mask, mode)?;
        let a = self.attention_output.forward(&a, x, mode)?;
        let i = self.intermediate.forward(&a, mode.fused())?;
        let i = if mode.fused() { super::candle_ops::gelu_erf(&i)? } else { i.gelu_erf()? };
        self.output.forward(&i, &a, mode)
    }
}

/// A BERT encoder with an optional pooler.
pub struct Bert {
    pub(super) embeddings: Embeddings,
    pub(super) layers: Vec<Layer>,
    pub(super) pooler: Option<Linear>,
    config: BertConfig,
}

impl Bert {
    /// Builds the model from a VarBuilder whose names are the checkpoint's (no `bert.` prefix).
    ///
    /// The pooler is loaded when `with_pooler` (a checkpoint without one is an error then).
    pub fn load(vb: VarBuilder, cfg: &BertConfig, with_pooler: bool) -> Result<Self> {
        if cfg.hidden_act != "gelu" {
            return Err(Error::Model(format!(
                "hidden_act {:?} is not supported (only BERT's \"gelu\")",
                cfg.hidden_act
            )));
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(Error::Model(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            )));
        }
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<Result<Vec<_>>>()?;
        let pooler = if with_pooler {
            Some(candle_nn::linear(cfg.hidden_size, cfg.hidden_size, vb.pp("pooler").pp("dense"))?)
        } else {
            None
        };
        Ok(Bert { embeddings: Embeddings::load(vb.pp("embeddings"), cfg)?, layers, pooler, config: cfg.clone() })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The precision of the model's weights (and so of its activations).
    pub fn dtype(&self) -> DType {
        self.embeddings.word_embeddings.embeddings().dtype()
    }

    /// Whether the model has a pooler (needed by `cls` pooling).
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// Runs the model on a padded batch.
    pub fn forward(&self, input: &BatchInput, mode: Mode) -> Result<BertOutput> {
        let (b, s) = input.input_ids.dims2()?;
        // 0 for real tokens, a large negative number for padding, added to attention scores
        // (in the weights' precision: -1e4 is exact in f16 and close enough in bf16).
        let mask = ((input.attention_mask.reshape((b, 1, 1, s))? - 1.0)? * 1e4)?.to_dtype(self.dtype())?;
        let mut hidden = Vec::with_capacity(self.layers.len() + 1);
        hidden.push(self.embeddings.forward(input, mode)?);
        for layer in &self.layers {
            let x = layer.forward(hidden.last().expect("embedding output pushed"), &mask, mode)?;
            hidden.push(x);
        }
        let pooler_output = match &self.pooler {
            Some(dense) => {
                let last = hidden.last().expect("at least the embedding output");
                Some(dense.forward(&last.narrow(1, 0, 1)?.squeeze(1)?)?.tanh()?)
            }
            None => None,
        };
        Ok(BertOutput { hidden_states: hidden, pooler_output })
    }
}
