//! The kinds of transform a command or an evaluation asks for by name, and fitting them.

use super::{fit_flow, fit_whitening, FlowConfig, Transform};
use crate::progress::Progress;
use crate::{EncoderId, Error, Result};

/// Which transform to fit.
#[derive(Clone, Debug, PartialEq)]
pub enum TransformKind {
    /// Whitening, reduced to `dims` if given.
    Whiten {
        /// The number of dimensions kept (all if `None`).
        dims: Option<usize>,
    },
    /// BERT-flow.
    Flow(FlowConfig),
}

impl TransformKind {
    /// Parses `whiten`, `whiten-K` or `flow` (flow options from `flow`).
    pub fn parse(s: &str, flow: &FlowConfig) -> Result<Self> {
        match s {
            "whiten" => Ok(TransformKind::Whiten { dims: None }),
            "flow" => Ok(TransformKind::Flow(flow.clone())),
            _ => match s.strip_prefix("whiten-").map(str::parse::<usize>) {
                Some(Ok(k)) if k > 0 => Ok(TransformKind::Whiten { dims: Some(k) }),
                _ => Err(Error::InvalidInput(format!(
                    "unknown transform {s:?}; valid: none, whiten, whiten-K (K dimensions, e.g. whiten-128), flow"
                ))),
            },
        }
    }

    /// The name rows carry in `transform`.
    pub fn name(&self) -> String {
        match self {
            TransformKind::Whiten { dims: None } => "whiten".into(),
            TransformKind::Whiten { dims: Some(k) } => format!("whiten-{k}"),
            TransformKind::Flow(_) => "flow".into(),
        }
    }

    /// Fits this transform on vectors from `encoder`.
    pub fn fit(&self, vectors: &[Vec<f32>], encoder: &EncoderId, progress: &dyn Progress) -> Result<Transform> {
        match self {
            TransformKind::Whiten { dims } => Ok(Transform::Whiten(fit_whitening(vectors, encoder, *dims)?)),
            TransformKind::Flow(cfg) => Ok(Transform::Flow(fit_flow(vectors, encoder, cfg, progress)?)),
        }
    }
}
