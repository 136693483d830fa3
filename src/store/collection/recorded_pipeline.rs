//! A collection's recorded pipeline (`#pipeline` in its tree, see `layout`): read, opened once
//! per process, checked against the embedders callers give, and recorded the first time a
//! collection without a record is given a pipeline that makes its vectors.

use std::sync::Arc;

use super::Collection;
use crate::pipeline::VectorSource;
use crate::store::layout::{db_error, CollectionConfig, PIPELINE_KEY};
use crate::{Embedder, Error, Pipeline, PipelineRequest, PipelineSpec, Result};

impl Collection {
    /// The record of the pipeline that makes the collection's vectors; `None` for a collection
    /// written before isovec recorded pipelines, or created from vectors without one.
    pub fn spec(&self) -> Result<Option<PipelineSpec>> {
        self.check_alive()?;
        match self.inner.tree.get(PIPELINE_KEY).map_err(db_error)? {
            None => Ok(None),
            Some(bytes) => PipelineSpec::from_json(&bytes, &format!("collection {:?}", self.inner.name)).map(Some),
        }
    }

    /// The collection's pipeline, opened from its record ([`crate::pipeline::open_shared`]:
    /// once per process, shared with every collection of the same pipeline) with the store's
    /// encoder options. A collection without a record gets an error that says which pipeline
    /// to give once ([`Collection::pipeline_for`]) to record it.
    pub fn pipeline(&self) -> Result<Arc<Pipeline>> {
        self.check_alive()?;
        let mut slot = self.inner.pipeline.lock().map_err(|_| super::poisoned())?;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let Some(spec) = self.spec()? else {
            return Err(self.no_record());
        };
        let pipeline = crate::pipeline::open_shared(&spec, &self.inner.encoder_options).map_err(|e| self.about(e))?;
        self.check_pipeline(pipeline.as_ref())?;
        *slot = Some(pipeline.clone());
        Ok(pipeline)
    }

    /// The pipeline a user names for this collection (command-line flags, Python or SQL
    /// arguments): nothing named is [`Collection::pipeline`]; each part named must agree with
    /// the collection's pipeline (else an error says what the collection holds), and the parts
    /// not named come from the record — or, for a collection without one, from its vectors' id
    /// (the model found by its hash), in which case the pipeline is recorded.
    pub fn pipeline_for(&self, request: &PipelineRequest) -> Result<Arc<Pipeline>> {
        if request.is_empty() {
            return self.pipeline();
        }
        let options = &self.inner.encoder_options;
        let pipeline = match self.spec()? {
            Some(spec) => request.load_recorded(&spec, options),
            None => request.load_for_id(&self.inner.config.pipeline, options),
        }
        .map_err(|e| self.about(e))?;
        self.check_pipeline(pipeline.as_ref())?;
        Ok(pipeline)
    }

    /// Errors unless `embedder` makes this collection's vectors; records `embedder`'s pipeline
    /// if the collection has no record yet and `embedder` can be recorded.
    pub fn check_pipeline(&self, embedder: &dyn Embedder) -> Result<()> {
        let expected = &self.inner.config.pipeline;
        if embedder.id() != expected {
            return Err(Error::PipelineMismatch {
                expected: format!("{expected} (collection {})", self.inner.name),
                found: format!("{} (the encoder given)", embedder.id()),
            });
        }
        if self.inner.tree.contains_key(PIPELINE_KEY).map_err(db_error)? {
            return Ok(());
        }
        if let Some(spec) = embedder.spec()? {
            self.check_alive()?;
            self.inner.tree.insert(PIPELINE_KEY, spec.to_json()?).map_err(db_error)?;
            self.inner.durable.flush(&self.inner.db)?;
        }
        Ok(())
    }

    /// Whether both handles are of the same open collection.
    pub(crate) fn same_as(&self, other: &Collection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// `e`, naming this collection.
    fn about(&self, e: Error) -> Error {
        match e {
            Error::Model(m) => Error::Model(format!("collection {:?}: {m}", self.inner.name)),
            Error::InvalidInput(m) => Error::InvalidInput(format!("collection {:?}: {m}", self.inner.name)),
            other => other,
        }
    }

    /// The error for a collection without a record: which pipeline to give, in each front end.
    fn no_record(&self) -> Error {
        let id = &self.inner.config.pipeline;
        let e = &id.encoder;
        let transform = match &id.transform {
            Some(t) => {
                format!(", transform {} (sha256 {}…, its file)", t.kind, t.sha256.get(..12).unwrap_or(&t.sha256))
            }
            None => String::new(),
        };
        Error::InvalidInput(format!(
            "collection {:?} has no record of the pipeline that made its vectors (it was written before isovec \
             recorded pipelines, or from vectors given as they are). Its vectors are {id}: model {} (weights sha256 \
             {}…), pooling {}, maximum length {}{transform}. Give that pipeline once and it is recorded: \
             `isovec search --model DIR --pooling {} --max-length {}{}`, Python `collection(name, pipeline=...)`, \
             SQL `isovec_collection(store, name, 'model:DIR#{}')`",
            self.inner.name,
            e.model,
            e.weights_sha256.get(..12).unwrap_or(&e.weights_sha256),
            e.pooling,
            e.max_length,
            e.pooling,
            e.max_length,
            if id.transform.is_some() { " --transform FILE" } else { "" },
            e.pooling,
        ))
    }
}

/// Checks that `spec` records the pipeline whose vectors `config` describes.
pub(crate) fn check_spec(spec: &PipelineSpec, config: &CollectionConfig) -> Result<()> {
    match &spec.vectors {
        VectorSource::Encoded(e) if e.id == config.pipeline => Ok(()),
        VectorSource::Encoded(e) => Err(Error::PipelineMismatch {
            expected: format!("{} (the collection's vectors)", config.pipeline),
            found: format!("{} (the pipeline record)", e.id),
        }),
        VectorSource::External { dims, .. } if *dims == config.dims => Ok(()),
        VectorSource::External { dims, .. } => Err(Error::Dimension { expected: config.dims, found: *dims }),
    }
}
