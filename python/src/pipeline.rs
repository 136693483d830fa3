//! `Pipeline`: encoder + pooling + prefixes + optional transform + normalisation.

use std::path::PathBuf;
use std::sync::Arc;

use isovec::encoder::{EncoderOptions, Pooling};
use isovec::{Embedder, Pipeline as CorePipeline, PipelineRequest, Prefixes, TransformChoice};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{bytes_of, call, Failure, Outcome};

/// The encoder options of a precision (`f32`, `f16`, `bf16`, `int8`).
pub(crate) fn options(dtype: &str) -> Outcome<EncoderOptions> {
    Ok(EncoderOptions::default().with_precision(dtype)?)
}

/// Texts to vectors, as the command line makes them.
#[pyclass(frozen, module = "isovec._native")]
pub(crate) struct Pipeline {
    pub(crate) inner: Arc<CorePipeline>,
}

#[pymethods]
impl Pipeline {
    /// The pipeline named: the parts left out (None) are the defaults, or those of the encoder
    /// the transform was fitted on.
    #[new]
    #[pyo3(signature = (model_dir=None, pooling=None, transform=None, dtype="f32", max_length=None, query_prefix=None, document_prefix=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model_dir: Option<PathBuf>,
        pooling: Option<String>,
        transform: Option<PathBuf>,
        dtype: &str,
        max_length: Option<usize>,
        query_prefix: Option<String>,
        document_prefix: Option<String>,
    ) -> PyResult<Self> {
        let dtype = dtype.to_string();
        let inner = call(py, move || {
            if let Some(dir) = model_dir.as_ref().filter(|d| !d.is_dir()) {
                return Err(Failure::new(
                    "ModelError",
                    format!("no model folder at {}; pass model_dir=a Hugging Face BERT folder", dir.display()),
                ));
            }
            let request = PipelineRequest {
                model: model_dir,
                pooling: pooling.as_deref().map(str::parse::<Pooling>).transpose()?,
                max_length,
                prefixes: Prefixes::named(query_prefix, document_prefix),
                transform: transform.map(TransformChoice::File),
            };
            Ok(request.load(&options(&dtype)?)?)
        })?;
        Ok(Pipeline { inner })
    }

    /// Number of dimensions of each vector.
    #[getter]
    fn dims(&self) -> usize {
        self.inner.dims()
    }

    /// The pipeline id as JSON (what `isovec.pipeline` holds in a Parquet file).
    #[getter]
    fn id(&self, py: Python<'_>) -> PyResult<String> {
        let pipeline = self.inner.clone();
        call(py, move || serde_json::to_string(pipeline.id()).map_err(|e| Failure::invalid(e.to_string())))
    }

    /// The vectors of document `texts` (or of query texts, with the query prefix) as
    /// little-endian f32 bytes, row after row.
    #[pyo3(signature = (texts, queries=false))]
    fn embed_bytes<'py>(&self, py: Python<'py>, texts: Vec<String>, queries: bool) -> PyResult<Bound<'py, PyBytes>> {
        let pipeline = self.inner.clone();
        let flat = call(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = if queries { pipeline.embed_queries(&refs) } else { pipeline.embed(&refs) }?;
            Ok(bytes_of(&vectors))
        })?;
        Ok(PyBytes::new(py, &flat))
    }
}
