//! A pipeline as a user names it (command-line flags, Python arguments, an SQL pipeline string):
//! the parts given, the others taken from a collection's record or from the defaults.

use std::path::PathBuf;
use std::sync::Arc;

use super::{shared, Embedder, EncoderId, Pipeline, PipelineId, PipelineSpec, Prefixes};
use crate::encoder::{default_model_dir, EncoderOptions, Pooling};
use crate::transform::Transform;
use crate::{Error, Result};

/// The transform a user asks for.
#[derive(Clone, Debug)]
pub enum TransformChoice {
    /// No transform (`--no-transform`).
    None,
    /// A transform file (`isovec fit`).
    File(PathBuf),
    /// A transform already loaded.
    Loaded(Arc<Transform>),
}

/// The parts of a pipeline a user named; `None` is "not said".
#[derive(Clone, Debug, Default)]
pub struct PipelineRequest {
    /// A model folder (default: the default model).
    pub model: Option<PathBuf>,
    /// The pooling (default: mean).
    pub pooling: Option<Pooling>,
    /// The maximum length in tokens (default: the model's).
    pub max_length: Option<usize>,
    /// The query and document prefixes (default: none).
    pub prefixes: Option<Prefixes>,
    /// The transform (default: none).
    pub transform: Option<TransformChoice>,
}

impl PipelineRequest {
    /// Whether nothing was said: then a collection's own pipeline is used as it is.
    pub fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.pooling.is_none()
            && self.max_length.is_none()
            && self.prefixes.is_none()
            && self.transform.is_none()
    }

    /// The pipeline named, with the defaults for the parts left out: the default model (which
    /// must be installed), mean pooling, the model's maximum length, no prefix, no transform.
    /// Loaded with `options` (their maximum length is ignored), the encoder shared per process.
    pub fn load(&self, options: &EncoderOptions) -> Result<Arc<Pipeline>> {
        let dir = match &self.model {
            Some(dir) => dir.clone(),
            None => {
                let dir = default_model_dir();
                if !dir.join("model.safetensors").is_file() {
                    return Err(Error::Model(format!(
                        "the default model is not installed at {}: run `isovec model fetch` (or name a model folder)",
                        dir.display()
                    )));
                }
                dir
            }
        };
        let transform = match &self.transform {
            None | Some(TransformChoice::None) => None,
            Some(TransformChoice::File(path)) => Some(Arc::new(Transform::load(path)?)),
            Some(TransformChoice::Loaded(t)) => Some(t.clone()),
        };
        // A transform knows the encoder it was fitted on: its pooling, length and prefixes are
        // the defaults for the parts not named.
        let fitted = transform.as_ref().map(|t| t.encoder().clone());
        let pooling = match (self.pooling, &fitted) {
            (Some(p), _) => p,
            (None, Some(e)) => e.pooling.parse()?,
            (None, None) => Pooling::Mean,
        };
        let max_length = self.max_length.or(fitted.as_ref().map(|e| e.max_length));
        let prefixes = self.prefixes.clone().or(fitted.map(|e| e.prefixes)).unwrap_or_default();
        let encoder = shared::encoder(&dir, max_length, options)?;
        Ok(Arc::new(Pipeline::with_prefixes(encoder, pooling, prefixes, transform)?))
    }

    /// The pipeline of a collection recorded as `spec`, with every part this request names
    /// checked against the record first: a part that differs is an error that says what the
    /// collection holds. A named model folder is used if it holds the recorded model; the rest
    /// comes from the record.
    pub fn load_recorded(&self, spec: &PipelineSpec, options: &EncoderOptions) -> Result<Arc<Pipeline>> {
        let recorded = &spec.encoded()?.id;
        self.check_against(recorded)?;
        match &self.model {
            None => shared::open_shared(spec, options),
            Some(dir) => Ok(Arc::new(Pipeline::open_with_model(spec, Some(dir), options)?)),
        }
    }

    /// The pipeline of a collection that has no record (written before isovec recorded
    /// pipelines), whose vectors are `id`'s: the parts not named come from `id` (pooling,
    /// maximum length, prefixes), the model from the folder named or else found by its hash.
    /// The transform must be named if `id` has one (its parameters are nowhere else).
    pub fn load_for_id(&self, id: &PipelineId, options: &EncoderOptions) -> Result<Arc<Pipeline>> {
        self.check_against(id)?;
        let mut full = self.clone();
        full.pooling = Some(id.encoder.pooling.parse()?);
        full.max_length = Some(id.encoder.max_length);
        full.prefixes = Some(id.encoder.prefixes.clone());
        if full.model.is_none() {
            full.model = Some(super::find_model(&id.encoder, None, None)?);
        }
        if id.transform.is_some()
            && !matches!(self.transform, Some(TransformChoice::File(_) | TransformChoice::Loaded(_)))
        {
            return Err(Error::InvalidInput(format!(
                "the vectors are {id}, made with a transform whose parameters are not in the store: give its file \
                 (--transform FILE, transform=..., 'transform:FILE')"
            )));
        }
        let pipeline = full.load(options)?;
        if pipeline.id() != id {
            return Err(Error::PipelineMismatch { expected: id.to_string(), found: pipeline.id().to_string() });
        }
        Ok(pipeline)
    }

    /// The pipeline that differs from the recorded `spec` in the parts this request names: what
    /// re-embedding a collection into it loads. A model named anew brings its own maximum
    /// length unless one is named; the recorded transform is kept unless a transform (or none)
    /// is named, and it must fit the new encoder.
    pub fn load_changed(&self, spec: &PipelineSpec, options: &EncoderOptions) -> Result<Arc<Pipeline>> {
        let recorded = spec.encoded()?;
        let id = &recorded.id.encoder;
        let model = match &self.model {
            Some(dir) => dir.clone(),
            None => super::find_model(id, Some(&recorded.model), None)?,
        };
        let transform = match &self.transform {
            Some(t) => t.clone(),
            None => match &recorded.transform {
                None => TransformChoice::None,
                Some(stored) => TransformChoice::Loaded(Arc::new(stored.load(&recorded.id, "the recorded pipeline")?)),
            },
        };
        let kept_transform = self.transform.is_none() && recorded.id.transform.is_some();
        let full = PipelineRequest {
            model: Some(model),
            pooling: Some(match self.pooling {
                Some(p) => p,
                None => id.pooling.parse()?,
            }),
            max_length: self.max_length.or(if self.model.is_none() { Some(id.max_length) } else { None }),
            prefixes: Some(self.prefixes.clone().unwrap_or_else(|| id.prefixes.clone())),
            transform: Some(transform),
        };
        full.load(options).map_err(|e| match e {
            Error::PipelineMismatch { expected, found } if kept_transform => Error::PipelineMismatch {
                expected: format!("{expected} (the collection's transform)"),
                found: format!(
                    "{found}; the transform does not fit the new encoder: name a transform fitted on it, or none \
                     (--transform FILE or --no-transform)"
                ),
            },
            other => other,
        })
    }

    /// Errors if a part named differs from `id`'s, saying what `id` holds.
    fn check_against(&self, id: &PipelineId) -> Result<()> {
        let e: &EncoderId = &id.encoder;
        let mut conflicts = Vec::new();
        if let Some(p) = self.pooling {
            if p.name() != e.pooling {
                conflicts.push(format!("pooling {} (asked: {})", e.pooling, p.name()));
            }
        }
        if let Some(n) = self.max_length {
            if n != e.max_length {
                conflicts.push(format!("maximum length {} (asked: {n})", e.max_length));
            }
        }
        if let Some(p) = &self.prefixes {
            if *p != e.prefixes {
                conflicts.push(format!("prefixes {:?} (asked: {:?})", e.prefixes, p));
            }
        }
        let asked_transform = match &self.transform {
            None => None,
            Some(TransformChoice::None) => Some(None),
            Some(TransformChoice::File(path)) => Some(Some(Transform::load(path)?.id())),
            Some(TransformChoice::Loaded(t)) => Some(Some(t.id())),
        };
        if let Some(asked) = asked_transform {
            if asked != id.transform {
                let name = |t: &Option<super::TransformId>| match t {
                    None => "none".to_string(),
                    Some(t) => format!("{} ({}…)", t.kind, t.sha256.get(..12).unwrap_or(&t.sha256)),
                };
                conflicts.push(format!("transform {} (asked: {})", name(&id.transform), name(&asked)));
            }
        }
        if conflicts.is_empty() {
            return Ok(());
        }
        Err(Error::PipelineMismatch {
            expected: format!("the collection's pipeline {id}, with {}", conflicts.join(", ")),
            found: "other settings; leave them out to use the collection's, or re-embed the collection \
                    (`isovec reembed`) to change its pipeline"
                .into(),
        })
    }
}
