//! BERT inference on the CPU in f32 over the model's own weights (the dense layers' products in
//! bfloat16 for a bf16 model, or in 8-bit integers with `int8`), for [`Encoder`](crate::encoder::Encoder).
//!
//! [`Bert`]'s forward pass is a graph of candle operations: every one allocates its output,
//! many copy (head split, transposes, contiguous), a padded batch computes padding tokens, and a
//! short query pays for all of that more than for its arithmetic. Here the texts of a batch lie
//! back to back without padding; each layer is four matrix products over all of their tokens
//! (query, key and value fused into one) whose bias, GELU, residual and LayerNorm run on each
//! block of rows as it is finished, and attention runs per text and head on that text's own
//! tokens, so there is no mask. Inference only: training keeps the differentiable [`Bert`].

use candle_core::{CpuStorage, DType, Storage, Tensor};
use tracing::trace_span;

use super::matmul::{matmul, Bf16, PackedB};
use super::matmul_bf16::{self, matmul_bf16, PackedB16};
use super::matmul_i8::{matmul_i8, PackedB8};
use super::partner::{with_partner, Partner};
use crate::encoder::bert::{Bert, LayerNorm};
use crate::encoder::dense::Dense;
use crate::encoder::math::{add_bias, add_bias_gelu, add_residual_norm, scaled_softmax_rows, Norm};
use crate::encoder::pooling::{no_pooler, Pooling, Source};
use crate::{Error, Result};

/// y = x Wᵀ + b with W packed for [`matmul`], or in a bf16 model for [`matmul_bf16`] where the
/// CPU has AVX-512 BF16.
struct Affine {
    weight: Weight,
    bias: Vec<f32>,
}

/// A dense layer's packed weight, in the model's precision.
enum Weight {
    F32(PackedB),
    /// A bf16 model on a CPU with AVX-512 BF16: weights and activations multiplied in bfloat16.
    Bf16Products(PackedB16),
    /// A bf16 model elsewhere: bfloat16 weights (half the memory to stream) times f32
    /// activations, in f32.
    Bf16Weights(PackedB<Bf16>),
    /// An f32 model encoding with `int8`: weights and activations quantised to 8-bit integers.
    Int8(PackedB8),
}

impl Affine {
    /// From dense layers sharing their input, their outputs side by side (fused query/key/value);
    /// an f32 model's quantised to 8 bits with `int8`.
    fn stack(parts: &[&candle_nn::Linear], int8: bool) -> Result<Self> {
        let mut weight = Vec::new();
        let mut bias = Vec::new();
        let mut inputs = 0;
        for part in parts {
            let (_, k) = part.weight().dims2()?;
            inputs = k;
            weight.extend(values(part.weight())?);
            match part.bias() {
                Some(b) => bias.extend(values(b)?),
                None => bias.extend(std::iter::repeat_n(0.0, part.weight().dim(0)?)),
            }
        }
        let outputs = bias.len();
        let weight = if parts.first().is_some_and(|p| p.weight().dtype() == DType::BF16) {
            if matmul_bf16::available() {
                Weight::Bf16Products(PackedB16::from_transposed(&weight, outputs, inputs))
            } else {
                Weight::Bf16Weights(PackedB::from_transposed(&weight, outputs, inputs, inputs))
            }
        } else if int8 {
            Weight::Int8(PackedB8::from_transposed(&weight, outputs, inputs))
        } else {
            Weight::F32(PackedB::from_transposed(&weight, outputs, inputs, inputs))
        };
        Ok(Affine { weight, bias })
    }

    fn dense(d: &Dense, int8: bool) -> Result<Self> {
        Self::stack(&[d.linear()], int8)
    }

    /// C = A·Wᵀ with `finish` as [`matmul`] takes it (the bias is the caller's, in `finish`).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        a: &[f32],
        lda: usize,
        m: usize,
        c: &mut [f32],
        ldc: usize,
        partner: Option<&Partner>,
        finish: impl Fn(usize, &mut [f32]) + Sync,
    ) {
        match &self.weight {
            Weight::Bf16Products(w) => matmul_bf16(a, lda, m, w, c, ldc, partner, finish),
            Weight::Bf16Weights(w) => matmul(a, lda, m, w, c, ldc, partner, finish),
            Weight::Int8(w) => matmul_i8(a, lda, m, w, c, ldc, partner, finish),
            Weight::F32(w) => matmul(a, lda, m, w, c, ldc, partner, finish),
        }
    }

    fn outputs(&self) -> usize {
        self.bias.len()
    }
}

struct Layer {
    qkv: Affine,
    attention_output: Affine,
    attention_norm: Norm,
    intermediate: Affine,
    output: Affine,
    output_norm: Norm,
}

/// Most tokens in one forward pass: a batch of long texts runs in several, so that a pass's
/// activations (about 16 hidden widths of f32 per token) stay in the caches between its
/// matrix products instead of going out to memory and back.
const PASS_TOKENS: usize = 512;

/// The CPU inference copy of a [`Bert`] (f32, or bf16 dense layers): dense weights packed, an f32
/// model's word embeddings shared.
pub struct CpuBert {
    /// (vocab, hidden), read in place: the largest tensor is not copied.
    word_embeddings: Tensor,
    position_embeddings: Vec<f32>,
    /// Token type 0's embedding (every isovec input is one segment).
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    pooler: Option<Affine>,
    hidden: usize,
    heads: usize,
}

/// A tensor's values, flattened, as f32.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

impl Norm {
    /// A copy of candle's LayerNorm parameters.
    fn load(ln: &LayerNorm) -> Result<Self> {
        Ok(Norm { weight: values(&ln.weight)?, bias: values(&ln.bias)?, eps: ln.eps as f32 })
    }
}

impl CpuBert {
    /// Copies `bert`'s weights for CPU inference, or `None` when it does not run on the CPU in
    /// f32 or bf16. A bf16 model's dense layers multiply in bfloat16 with f32 sums on a CPU with
    /// AVX-512 BF16, and elsewhere their bfloat16 weights with the f32 activations; everything
    /// else (embeddings, attention, LayerNorm, GELU) runs in f32 over its bf16 parameters.
    /// With `int8` (the caller checked that the CPU has AVX2), an f32 model's dense layers in
    /// the encoder multiply in 8-bit integers, and the rest stays f32.
    pub fn new(bert: &Bert, int8: bool) -> Result<Option<Self>> {
        let word = bert.embeddings.word_embeddings.embeddings();
        let runs = matches!(bert.dtype(), DType::F32 | DType::BF16);
        if !word.device().is_cpu() || !runs {
            return Ok(None);
        }
        // Read in place in f32; a bf16 model's table is copied to f32 once.
        let word = word.to_dtype(DType::F32)?.contiguous()?;
        let cfg = bert.config();
        let e = &bert.embeddings;
        let layers = bert
            .layers
            .iter()
            .map(|l| {
                let a = &l.attention;
                Ok(Layer {
                    qkv: Affine::stack(&[a.query.linear(), a.key.linear(), a.value.linear()], int8)?,
                    attention_output: Affine::dense(&l.attention_output.dense, int8)?,
                    attention_norm: Norm::load(&l.attention_output.layer_norm)?,
                    intermediate: Affine::dense(&l.intermediate, int8)?,
                    output: Affine::dense(&l.output.dense, int8)?,
                    output_norm: Norm::load(&l.output.layer_norm)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(CpuBert {
            word_embeddings: word.clone(),
            position_embeddings: values(e.position_embeddings.embeddings())?,
            token_type: values(&e.token_type_embeddings.embeddings().get(0)?)?,
            embedding_norm: Norm::load(&e.layer_norm)?,
            layers,
            // The pooler stays f32: it runs on one row per text.
            pooler: bert.pooler.as_ref().map(|p| Affine::stack(&[p], false)).transpose()?,
            hidden: cfg.hidden_size,
            heads: cfg.num_attention_heads,
        }))
    }

    /// Encodes a batch of token id sequences; returns, per pooling, the flat (texts × hidden) rows.
    /// `parallel` splits each matrix product with a second thread (for a batch that runs alone).
    ///
    /// The batch runs in passes of about [`PASS_TOKENS`] tokens. Texts are independent (there is
    /// no padding and attention stays within a text), so passes change no result.
    pub fn encode(&self, ids: &[&[u32]], poolings: &[Pooling], parallel: bool) -> Result<Vec<Vec<f32>>> {
        let _span = trace_span!("cpu_bert", texts = ids.len(), parallel).entered();
        with_partner(parallel, |partner| {
            let mut out = vec![Vec::new(); poolings.len()];
            let mut rest = ids;
            while !rest.is_empty() {
                let mut tokens = 0;
                let texts = rest
                    .iter()
                    .take_while(|s| {
                        tokens += s.len();
                        tokens <= PASS_TOKENS
                    })
                    .count()
                    .max(1);
                let (pass, after) = rest.split_at(texts);
                for (all, part) in out.iter_mut().zip(self.encode_pass(pass, poolings, partner)?) {
                    all.extend(part);
                }
                rest = after;
            }
            Ok(out)
        })
    }

    /// [`CpuBert::encode`] in one forward pass.
    fn encode_pass(&self, ids: &[&[u32]], poolings: &[Pooling], partner: Option<&Partner>) -> Result<Vec<Vec<f32>>> {
        let _span = trace_span!("pass", texts = ids.len()).entered();
        let last = self.layers.len();
        let sources: Vec<Source> = poolings.iter().map(|p| p.source(last)).collect();
        let mut keep = vec![false; last + 1];
        for s in &sources {
            match *s {
                Source::Pooler => keep[last] = true,
                Source::Cls(l) => keep[l] = true,
                Source::Mean(a, b) => (keep[a], keep[b]) = (true, true),
            }
        }
        let states = self.forward(ids, &keep, partner)?;
        let state = |l: usize| states[l].as_deref().expect("kept above");
        let _span = trace_span!("pooling").entered();
        let h = self.hidden;
        let starts: Vec<usize> = ids
            .iter()
            .scan(0, |t, s| {
                let o = *t;
                *t += s.len();
                Some(o)
            })
            .collect();
        sources
            .iter()
            .map(|source| {
                let mut out = vec![0f32; ids.len() * h];
                for ((row, s), &start) in out.chunks_exact_mut(h).zip(ids).zip(&starts) {
                    match *source {
                        Source::Pooler => {}
                        Source::Cls(l) => row.copy_from_slice(&state(l)[start * h..][..h]),
                        Source::Mean(a, b) => {
                            let (x, y) = (state(a), state(b));
                            for t in start..start + s.len() {
                                let (xr, yr) = (&x[t * h..][..h], &y[t * h..][..h]);
                                for ((o, &u), &v) in row.iter_mut().zip(xr).zip(yr) {
                                    *o += (u + v) * 0.5;
                                }
                            }
                            let inv = 1.0 / s.len() as f32;
                            row.iter_mut().for_each(|o| *o *= inv);
                        }
                    }
                }
                if *source == Source::Pooler {
                    let pooler = self.pooler.as_ref().ok_or_else(no_pooler)?;
                    let x = state(last);
                    let cls: Vec<f32> = starts.iter().flat_map(|&t| x[t * h..][..h].iter().copied()).collect();
                    pooler.apply(&cls, h, ids.len(), &mut out, h, None, |_, rows| {
                        for row in rows.chunks_mut(h) {
                            for (v, &b) in row.iter_mut().zip(&pooler.bias) {
                                *v = (*v + b).tanh();
                            }
                        }
                    });
                }
                Ok(out)
            })
            .collect()
    }

    /// Hidden states `i` with `keep[i]` (0: embeddings, then each layer), each (tokens × hidden)
    /// over the texts back to back.
    fn forward(&self, ids: &[&[u32]], keep: &[bool], partner: Option<&Partner>) -> Result<Vec<Option<Vec<f32>>>> {
        let h = self.hidden;
        let tokens: usize = ids.iter().map(|s| s.len()).sum();
        let mut states: Vec<Option<Vec<f32>>> = vec![None; keep.len()];
        let mut x = self.embed(ids, tokens)?;
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut context = vec![0f32; tokens * h];
        let mut attended = vec![0f32; tokens * h];
        let mut inner = vec![0f32; tokens * self.layers.first().map_or(0, |l| l.intermediate.outputs())];
        let mut scratch = Attention::default();
        for (i, layer) in self.layers.iter().enumerate() {
            let _layer = trace_span!("layer", i).entered();
            if keep[i] {
                states[i] = Some(x.clone());
            }
            let qkv_bias = &layer.qkv.bias;
            trace_span!("qkv").in_scope(|| {
                layer.qkv.apply(&x, h, tokens, &mut qkv, 3 * h, partner, |_, rows| add_bias(rows, qkv_bias))
            });
            trace_span!("attention").in_scope(|| {
                let mut start = 0;
                for s in ids {
                    scratch.run(&qkv, start, s.len(), h, self.heads, &mut context);
                    start += s.len();
                }
            });
            let (ao, an) = (&layer.attention_output, &layer.attention_norm);
            trace_span!("attention_output")
                .in_scope(|| ao.apply(&context, h, tokens, &mut attended, h, partner, residual_norm(ao, an, &x, h)));
            let inter = &layer.intermediate;
            let n_inner = inter.outputs();
            trace_span!("intermediate").in_scope(|| {
                inter.apply(&attended, h, tokens, &mut inner, n_inner, partner, |_, rows| {
                    add_bias_gelu(rows, &inter.bias)
                })
            });
            let (o, on) = (&layer.output, &layer.output_norm);
            trace_span!("output")
                .in_scope(|| o.apply(&inner, n_inner, tokens, &mut x, h, partner, residual_norm(o, on, &attended, h)));
        }
        let last = self.layers.len();
        if keep[last] {
            states[last] = Some(x);
        }
        Ok(states)
    }

    /// Word + position + token type 0 embeddings, normalised: (tokens × hidden).
    fn embed(&self, ids: &[&[u32]], tokens: usize) -> Result<Vec<f32>> {
        let _span = trace_span!("embeddings", tokens).entered();
        let h = self.hidden;
        let positions = self.position_embeddings.len() / h.max(1);
        let (storage, layout) = self.word_embeddings.storage_and_layout();
        let (Storage::Cpu(CpuStorage::F32(all)), Some((w0, w1))) = (&*storage, layout.contiguous_offsets()) else {
            return Err(Error::Model("the word embeddings are not f32 on the CPU".into()));
        };
        let words = &all[w0..w1];
        let vocab = words.len() / h.max(1);
        let mut x = vec![0f32; tokens * h];
        let mut rows = x.chunks_exact_mut(h);
        for s in ids {
            if s.len() > positions {
                return Err(Error::InvalidInput(format!(
                    "{} tokens, and the model has {positions} positions: truncate the text",
                    s.len()
                )));
            }
            for (p, &id) in s.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(Error::InvalidInput(format!("token id {id} is outside the {vocab}-token vocabulary")));
                }
                let row = rows.next().expect("tokens counted the rows");
                let (w, pos) = (&words[id * h..][..h], &self.position_embeddings[p * h..][..h]);
                for (((v, &a), &b), &c) in row.iter_mut().zip(w).zip(pos).zip(&self.token_type) {
                    *v = a + b + c;
                }
                self.embedding_norm.apply(row);
            }
        }
        Ok(x)
    }
}

/// The `finish` of a dense layer followed by residual and LayerNorm: row += bias + residual row,
/// then normalised (rows `h` wide).
fn residual_norm<'a>(
    a: &'a Affine,
    norm: &'a Norm,
    residual: &'a [f32],
    h: usize,
) -> impl Fn(usize, &mut [f32]) + Sync + 'a {
    move |first, rows| add_residual_norm(rows, &a.bias, &residual[first * h..], norm)
}

/// Buffers of the attention of one text, reused across texts, heads and layers.
#[derive(Default)]
struct Attention {
    keys: PackedB,
    values: PackedB,
    scores: Vec<f32>,
}

impl Attention {
    /// Self-attention of the `len` tokens from `start`: `qkv` rows hold query, key and value
    /// (each `h` wide, heads side by side); writes the heads' outputs into `context`'s rows.
    fn run(&mut self, qkv: &[f32], start: usize, len: usize, h: usize, heads: usize, context: &mut [f32]) {
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let ld = 3 * h;
        self.scores.resize(len * len, 0.0);
        for head in 0..heads {
            let q = &qkv[start * ld + head * d..];
            self.keys.pack_transposed(&qkv[start * ld + h + head * d..], len, d, ld);
            self.values.pack(&qkv[start * ld + 2 * h + head * d..], len, d, ld);
            matmul(q, ld, len, &self.keys, &mut self.scores, len, None, |_, rows| {
                scaled_softmax_rows(rows, len, scale)
            });
            matmul(&self.scores, len, len, &self.values, &mut context[start * h + head * d..], h, None, |_, _| {});
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::encoder::{BatchInput, BertConfig, Mode};

    fn tiny(map: &VarMap) -> Bert {
        // 72 wide, 3 heads: a head (24) is narrower than a panel (32), and 72 and 288 end mid-panel.
        let cfg = BertConfig::tiny(60, 72, 2, 3);
        Bert::load(VarBuilder::from_varmap(map, DType::F32, &Device::Cpu), &cfg, true).unwrap()
    }

    #[test]
    fn every_pooling_equals_the_differentiable_bert_on_a_padded_batch() {
        let map = VarMap::new();
        let bert = tiny(&map);
        let cpu = CpuBert::new(&bert, false).unwrap().expect("f32 on the CPU");
        let texts: Vec<Vec<u32>> =
            [30usize, 13, 4, 1].iter().map(|&n| (0..n).map(|i| ((i * 17 + n) % 60) as u32).collect()).collect();
        let ids: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
        let fast = cpu.encode(&ids, &Pooling::ALL, false).unwrap();
        let input = BatchInput::from_ids(&ids, 0, &Device::Cpu).unwrap();
        let out = bert.forward(&input, Mode::Differentiable).unwrap();
        for (p, pooling) in Pooling::ALL.iter().enumerate() {
            let want =
                pooling.pool(&out, &input.attention_mask).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(fast[p].len(), want.len());
            let diff = fast[p].iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            let size = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
            assert!(diff < 1e-5, "{pooling}: max |cpu − candle| = {diff}");
            assert!(size > 0.1, "{pooling}: outputs of size {size} would make the comparison weak");
        }
    }

    #[test]
    fn a_bf16_model_encodes_as_the_f32_model_of_its_values_but_for_rounded_activations() {
        let map = VarMap::new();
        tiny(&map);
        let tensors = |dtype| -> std::collections::HashMap<String, Tensor> {
            let vars = map.data().lock().unwrap();
            vars.iter()
                .map(|(name, v)| (name.clone(), v.as_tensor().to_dtype(DType::BF16).unwrap().to_dtype(dtype).unwrap()))
                .collect()
        };
        let cfg = BertConfig::tiny(60, 72, 2, 3);
        let load =
            |dtype| Bert::load(VarBuilder::from_tensors(tensors(dtype), dtype, &Device::Cpu), &cfg, true).unwrap();
        let (half, full) = (load(DType::BF16), load(DType::F32));
        let half = CpuBert::new(&half, false).unwrap().expect("bf16 runs on any CPU");
        let full = CpuBert::new(&full, false).unwrap().unwrap();
        let texts: Vec<Vec<u32>> =
            [40usize, 7].iter().map(|&n| (0..n).map(|i| ((i * 13 + n) % 60) as u32).collect()).collect();
        let ids: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
        for parallel in [false, true] {
            let got = half.encode(&ids, &[Pooling::Mean], parallel).unwrap().remove(0);
            let want = full.encode(&ids, &[Pooling::Mean], parallel).unwrap().remove(0);
            if matmul_bf16::available() {
                // AVX-512 BF16 rounds the activations too: close, not equal.
                let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(got != want && diff < 0.05, "parallel {parallel}: max |bf16 − f32| = {diff}");
            } else {
                // bfloat16 weights widen exactly to the f32 model's: the same products.
                assert_eq!(got, want, "parallel {parallel}");
            }
        }
    }

    #[test]
    fn a_text_comes_out_the_same_bits_in_any_batch_and_any_pass() {
        let map = VarMap::new();
        let cpu = CpuBert::new(&tiny(&map), false).unwrap().unwrap();
        // 555 tokens: the batch runs in two passes; the short texts take the few-rows products alone.
        let texts: Vec<Vec<u32>> =
            [300usize, 250, 5].iter().map(|&n| (0..n).map(|i| ((i * 31 + n) % 60) as u32).collect()).collect();
        let ids: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
        assert!(texts.iter().map(Vec::len).sum::<usize>() > PASS_TOKENS);
        for parallel in [false, true] {
            let batch = cpu.encode(&ids, &[Pooling::Mean], parallel).unwrap().remove(0);
            for (i, text) in ids.iter().enumerate() {
                let alone = cpu.encode(&[text], &[Pooling::Mean], parallel).unwrap().remove(0);
                assert_eq!(alone, batch[i * 72..(i + 1) * 72], "text {i}, parallel {parallel}");
            }
        }
    }

    #[test]
    fn token_ids_beyond_the_vocabulary_or_positions_are_errors() {
        let map = VarMap::new();
        let cpu = CpuBert::new(&tiny(&map), false).unwrap().unwrap();
        let err = cpu.encode(&[&[1, 60, 2]], &[Pooling::Mean], false).unwrap_err().to_string();
        assert!(err.contains("token id 60 is outside the 60-token vocabulary"), "{err}");
        let long = vec![1u32; 513];
        let err = cpu.encode(&[long.as_slice()], &[Pooling::Mean], false).unwrap_err().to_string();
        assert!(err.contains("513 tokens, and the model has 512 positions"), "{err}");
    }
}
