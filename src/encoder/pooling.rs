//! Pooling: from a batch's hidden states to one vector per sentence, as the papers define it.

use candle_core::Tensor;

use super::bert::BertOutput;
use crate::{Error, Result};

/// The poolings used by the BERT-flow, whitening and SimCSE papers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Last-layer [CLS] through BERT's pooler (dense + tanh).
    Cls,
    /// Raw last-layer [CLS].
    ClsBeforePooler,
    /// Mean of last-layer token states over real tokens.
    Mean,
    /// Mean over tokens of (first layer output + last layer output) / 2.
    FirstLastAvg,
    /// Mean over tokens of (embedding-layer output + last layer output) / 2.
    EmbLastAvg,
    /// Mean over tokens of the average of the last two layers.
    Last2Avg,
    /// Mean of the embedding-layer output.
    Static,
}

impl Pooling {
    /// Every pooling, in the order tables list them.
    pub const ALL: [Pooling; 7] = [
        Pooling::Cls,
        Pooling::ClsBeforePooler,
        Pooling::Mean,
        Pooling::FirstLastAvg,
        Pooling::EmbLastAvg,
        Pooling::Last2Avg,
        Pooling::Static,
    ];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::ClsBeforePooler => "cls_before_pooler",
            Pooling::Mean => "mean",
            Pooling::FirstLastAvg => "first_last_avg",
            Pooling::EmbLastAvg => "emb_last_avg",
            Pooling::Last2Avg => "last2avg",
            Pooling::Static => "static",
        }
    }

    /// What this pooling reads from a model with hidden states `0..=last` (0: embeddings).
    pub fn source(self, last: usize) -> Source {
        match self {
            Pooling::Cls => Source::Pooler,
            Pooling::ClsBeforePooler => Source::Cls(last),
            Pooling::Mean => Source::Mean(last, last),
            Pooling::FirstLastAvg => Source::Mean(1.min(last), last),
            Pooling::EmbLastAvg => Source::Mean(0, last),
            Pooling::Last2Avg => Source::Mean(last.saturating_sub(1), last),
            Pooling::Static => Source::Mean(0, 0),
        }
    }

    /// Pools a batch: (batch, hidden). `mask` is (batch, seq) f32, 1 for real tokens.
    pub fn pool(self, out: &BertOutput, mask: &Tensor) -> Result<Tensor> {
        let h = &out.hidden_states;
        match self.source(h.len() - 1) {
            Source::Pooler => out.pooler_output.clone().ok_or_else(no_pooler),
            Source::Cls(layer) => Ok(h[layer].narrow(1, 0, 1)?.squeeze(1)?),
            Source::Mean(a, b) if a == b => masked_mean(&h[a], mask),
            Source::Mean(a, b) => masked_mean(&((&h[a] + &h[b])? * 0.5)?, mask),
        }
    }
}

/// The hidden states a pooling reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// BERT's pooler (dense + tanh) on the last layer's [CLS].
    Pooler,
    /// The [CLS] token's state in this hidden state.
    Cls(usize),
    /// The mean over real tokens of the average of these two hidden states (equal: just that one).
    Mean(usize, usize),
}

/// The error for `cls` pooling on a model without a pooler.
pub(super) fn no_pooler() -> Error {
    Error::InvalidInput(
        "`cls` pooling needs BERT's pooler, and this model has none (pooler.dense.*): \
         use `cls_before_pooler` or `mean`"
            .into(),
    )
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Pooling::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let valid: Vec<_> = Pooling::ALL.iter().map(|p| p.name()).collect();
            Error::InvalidInput(format!("unknown pooling {s:?}; valid poolings: {}", valid.join(", ")))
        })
    }
}

/// Mean over the real tokens: padding never leaks into the result.
fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.unsqueeze(2)?;
    let summed = x.broadcast_mul(&m)?.sum(1)?;
    let counts = mask.sum_keepdim(1)?;
    Ok(summed.broadcast_div(&counts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_valid() {
        for p in Pooling::ALL {
            assert_eq!(p.name().parse::<Pooling>().unwrap(), p);
        }
        let err = "avg".parse::<Pooling>().unwrap_err().to_string();
        assert!(err.contains("unknown pooling \"avg\""), "{err}");
        assert!(err.contains("first_last_avg") && err.contains("static"), "{err}");
    }

    #[test]
    fn masked_mean_ignores_padding() {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &dev).unwrap();
        let mask = Tensor::new(&[[1f32, 1., 0.]], &dev).unwrap();
        let m = masked_mean(&x, &mask).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(m, vec![vec![2.0, 3.0]]);
    }
}
