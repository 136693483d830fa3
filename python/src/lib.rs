//! isovec's Python extension, `isovec._native`: the pipeline, the store and its collections.
//!
//! The package `isovec` (python/isovec) wraps these classes in plain Python types (numpy arrays,
//! dicts, lists). Every isovec error becomes an `isovec.IsovecError` with isovec's message; a
//! panic inside isovec is caught here and raised the same way, never unwound into Python; the
//! extension prints nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use isovec::encoder::{EncoderOptions, Pooling};
use isovec::parquet_io::ParquetImport;
use isovec::store::layout::MAX_EF;
use isovec::store::{Filter, SearchMode, SearchParams, TextDoc};
use isovec::{Embedder, Pipeline as CorePipeline, PipelineRequest, Prefixes, TransformChoice};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeWarning};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(isovec, IsovecError, PyException, "An error reported by isovec; the message says what to do.");

/// Runs `f` without the GIL, turning its error, or a panic, into an `IsovecError`.
fn call<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, String> + Send) -> PyResult<T> {
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(IsovecError::new_err(message)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(IsovecError::new_err(format!("internal error in isovec ({what}); please report it")))
        }
    }
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The encoder options of a precision (`f32`, `f16`, `bf16`, `int8`).
fn options(dtype: &str) -> Result<EncoderOptions, String> {
    EncoderOptions::default().with_precision(dtype).map_err(text)
}

/// Encoder + pooling + prefixes + optional transform + normalisation: texts to vectors.
#[pyclass(frozen, module = "isovec._native")]
struct Pipeline {
    inner: Arc<CorePipeline>,
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
                return Err(format!("no model folder at {}; pass model_dir=a Hugging Face BERT folder", dir.display()));
            }
            let prefixes = Prefixes::named(query_prefix, document_prefix);
            let request = PipelineRequest {
                model: model_dir,
                pooling: pooling.as_deref().map(str::parse::<Pooling>).transpose().map_err(text)?,
                max_length,
                prefixes,
                transform: transform.map(TransformChoice::File),
            };
            request.load(&options(&dtype)?).map_err(text)
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
    fn id(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.id()).map_err(|e| IsovecError::new_err(e.to_string()))
    }

    /// The vectors of document `texts` (or of query texts, with the query prefix) as
    /// little-endian f32 bytes, row after row.
    #[pyo3(signature = (texts, queries=false))]
    fn embed_bytes<'py>(&self, py: Python<'py>, texts: Vec<String>, queries: bool) -> PyResult<Bound<'py, PyBytes>> {
        let pipeline = self.inner.clone();
        let flat = call(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = if queries { pipeline.embed_queries(&refs) } else { pipeline.embed(&refs) }.map_err(text)?;
            Ok(vectors.iter().flatten().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
        })?;
        Ok(PyBytes::new(py, &flat))
    }
}

/// An open store directory.
#[pyclass(frozen, module = "isovec._native")]
struct Store {
    inner: Mutex<Option<Arc<isovec::store::Store>>>,
    /// How pipelines run: the collections' recorded ones, and the default one of new collections.
    options: EncoderOptions,
}

impl Store {
    fn get(&self) -> PyResult<Arc<isovec::store::Store>> {
        let guard =
            self.inner.lock().map_err(|_| IsovecError::new_err("the store's lock is poisoned; open it again"))?;
        guard.clone().ok_or_else(|| IsovecError::new_err("the store is closed; open it again"))
    }
}

#[pymethods]
impl Store {
    /// Opens (or creates) the store; its collections' pipelines run in precision `dtype`.
    #[new]
    #[pyo3(signature = (path, dtype="f32"))]
    fn new(py: Python<'_>, path: PathBuf, dtype: &str) -> PyResult<Self> {
        let dtype = dtype.to_string();
        let (store, options) = call(py, move || {
            let options = options(&dtype)?;
            let store = isovec::store::Store::open(&path).map_err(text)?;
            Ok((store.with_encoder_options(options.clone()), options))
        })?;
        Ok(Store { inner: Mutex::new(Some(Arc::new(store))), options })
    }

    /// The collection `name`. Without `pipeline`, its texts and queries are encoded by the
    /// pipeline it records, and a missing collection is created for the default pipeline. With
    /// one, the collection must hold that pipeline's vectors (one without a record of its
    /// pipeline records it), and a missing one is created for it.
    #[pyo3(signature = (name, pipeline=None))]
    fn collection(&self, py: Python<'_>, name: String, pipeline: Option<&Pipeline>) -> PyResult<Collection> {
        let store = self.get()?;
        let given = pipeline.map(|p| p.inner.clone());
        let options = self.options.clone();
        let (inner, pipeline) = call(py, move || {
            if let Some(p) = given {
                return Ok((store.get_or_create_collection_for(&name, p.as_ref()).map_err(text)?, Some(p)));
            }
            if store.list_collections().map_err(text)?.iter().any(|(n, _)| *n == name) {
                return Ok((store.collection(&name).map_err(text)?, None));
            }
            let default = PipelineRequest::default().load(&options).map_err(text)?;
            Ok((store.get_or_create_collection_for(&name, default.as_ref()).map_err(text)?, Some(default)))
        })?;
        Ok(Collection { inner, pipeline })
    }

    /// Imports a Parquet file into collection `name`; returns (rows, inserted, replaced).
    #[pyo3(signature = (name, path, pipeline=None))]
    fn import_parquet(
        &self,
        py: Python<'_>,
        name: String,
        path: PathBuf,
        pipeline: Option<&Pipeline>,
    ) -> PyResult<(u64, u64, u64)> {
        let store = self.get()?;
        let embedder = pipeline.map(|p| p.inner.clone());
        call(py, move || {
            let file = ParquetImport::verify(&path, &|_, _| {}).map_err(text)?;
            let embedder = embedder.as_deref().map(|p| p as &dyn Embedder);
            let report = store.import_parquet(&name, &file, embedder, &|_, _| {}).map_err(text)?;
            Ok((report.rows, report.inserted, report.replaced))
        })
    }

    /// Snapshots and closes the store (its collections become unusable).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let store = self.inner.lock().map_err(|_| IsovecError::new_err("the store's lock is poisoned"))?.take();
        match store.and_then(Arc::into_inner) {
            Some(store) => call(py, move || store.close().map_err(text)),
            None => Ok(()),
        }
    }
}

/// A collection of a store, with the pipeline that encodes its texts and queries: the one given
/// when it was opened, else the one it records.
#[pyclass(frozen, module = "isovec._native")]
struct Collection {
    inner: isovec::store::Collection,
    pipeline: Option<Arc<CorePipeline>>,
}

#[pymethods]
impl Collection {
    /// Encodes and upserts documents; `metadata` holds one JSON object text (or None) per
    /// document. Returns (inserted, replaced).
    #[pyo3(signature = (ids, texts, metadata=None))]
    fn add(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        texts: Vec<String>,
        metadata: Option<Vec<Option<String>>>,
    ) -> PyResult<(usize, usize)> {
        if ids.len() != texts.len() || metadata.as_ref().is_some_and(|m| m.len() != ids.len()) {
            return Err(IsovecError::new_err(format!(
                "{} ids, {} texts and {} metadata: give one of each per document",
                ids.len(),
                texts.len(),
                metadata.as_ref().map_or(ids.len(), Vec::len)
            )));
        }
        let collection = self.inner.clone();
        let pipeline = self.pipeline.clone();
        call(py, move || {
            let mut docs = Vec::with_capacity(ids.len());
            let mut metadata = metadata.unwrap_or_default().into_iter();
            for (id, text) in ids.into_iter().zip(texts) {
                let metadata = match metadata.next().flatten() {
                    Some(json) => {
                        serde_json::from_str(&json).map_err(|e| format!("metadata of {id:?} is not JSON: {e}"))?
                    }
                    None => serde_json::Value::Null,
                };
                docs.push(TextDoc { id, text, metadata });
            }
            let report = match &pipeline {
                Some(p) => collection.add_texts_with(p.as_ref(), &docs),
                None => collection.add_texts(&docs),
            }
            .map_err(text)?;
            Ok((report.inserted, report.replaced))
        })
    }

    /// The `k` best documents for `text` as (id, score, text, metadata JSON or None) tuples;
    /// `mode` is dense, lexical, hybrid or exact (a scan of every vector, no filter); `ef` is the
    /// HNSW candidate list width of a dense or hybrid search (default: the collection's).
    #[pyo3(signature = (text, k=10, filter=None, mode="dense", ef=None))]
    fn search(
        &self,
        py: Python<'_>,
        text: String,
        k: usize,
        filter: Option<String>,
        mode: &str,
        ef: Option<usize>,
    ) -> PyResult<Vec<HitRow>> {
        let collection = self.inner.clone();
        let pipeline = self.pipeline.clone();
        let mode = mode.to_string();
        call(py, move || {
            let hits = if mode == "exact" {
                if filter.is_some() {
                    return Err("an exact search takes no filter; use mode=\"dense\" with a filter".to_string());
                }
                if ef.is_some() {
                    return Err(
                        "an exact search scans every vector and takes no ef; give ef with mode=\"dense\" or \"hybrid\""
                            .to_string(),
                    );
                }
                let pipeline = match pipeline {
                    Some(p) => p,
                    None => collection.pipeline().map_err(self::text)?,
                };
                collection.check_pipeline(pipeline.as_ref()).map_err(self::text)?;
                let query = pipeline.embed_queries(&[text.as_str()]).map_err(self::text)?;
                let query = query.first().ok_or("the pipeline returned no vector")?;
                collection.search_exact(query, k).map_err(self::text)?
            } else {
                let mode: SearchMode = mode.parse().map_err(self::text)?;
                let mut params = SearchParams::k(k).with_mode(mode);
                if let Some(ef) = ef {
                    if !(1..=MAX_EF).contains(&ef) {
                        return Err(format!(
                            "ef = {ef} is out of range; give a width in 1..={MAX_EF} (32–400 is typical)"
                        ));
                    }
                    params = params.with_ef(ef);
                }
                if let Some(f) = filter {
                    params = params.with_filter(parse_filter(&f)?);
                }
                match &pipeline {
                    Some(p) => collection.search_text_with(p.as_ref(), &text, &params),
                    None => collection.search_text(&text, &params),
                }
                .map_err(self::text)?
            };
            Ok(hits
                .into_iter()
                .map(|h| {
                    let metadata = (!h.metadata.is_null()).then(|| h.metadata.to_string());
                    (h.id, h.score, h.text, metadata)
                })
                .collect())
        })
    }

    /// Number of documents.
    fn count(&self, py: Python<'_>) -> PyResult<u64> {
        let collection = self.inner.clone();
        call(py, move || collection.count().map_err(text))
    }

    /// Writes the collection to a Parquet file; returns the number of rows.
    fn export_parquet(&self, py: Python<'_>, path: PathBuf) -> PyResult<u64> {
        let collection = self.inner.clone();
        call(py, move || Ok(collection.export_parquet(&path, &|_, _| {}).map_err(text)?.rows))
    }
}

/// A hit as Python receives it: id, score, text, metadata JSON (None without metadata).
type HitRow = (String, f32, String, Option<String>);

/// A filter expression (`lang=en AND year>=2020`) or JSON object text (`{"lang": "en"}`).
fn parse_filter(filter: &str) -> Result<Filter, String> {
    if filter.trim_start().starts_with('{') {
        let json: serde_json::Value =
            serde_json::from_str(filter).map_err(|e| format!("filter is not valid JSON: {e}"))?;
        Filter::from_json(&json).map_err(text)
    } else {
        Filter::parse(filter).map_err(text)
    }
}

/// Sets what the isovec command line sets for CPU encoding in a process that encodes only (one
/// candle thread per operation, allocator thresholds) and returns True, if the process runs no
/// other thread yet. Otherwise it changes nothing — changing the environment or the allocator
/// while other threads may use them is unsound, and importing numpy alone starts threads — warns
/// (RuntimeWarning) with the variables to set in the environment before Python starts instead
/// (`isovec::encoder::TUNING_ENV`), and returns False.
#[pyfunction]
fn tune_process(py: Python<'_>) -> PyResult<bool> {
    match isovec::encoder::tune_process() {
        Ok(()) => Ok(true),
        Err(e) => {
            let message = std::ffi::CString::new(e.to_string()).unwrap_or_default();
            PyErr::warn(py, py.get_type::<PyRuntimeWarning>().as_any(), &message, 1)?;
            Ok(false)
        }
    }
}

/// The module `isovec._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("IsovecError", m.py().get_type::<IsovecError>())?;
    m.add_class::<Pipeline>()?;
    m.add_class::<Store>()?;
    m.add_class::<Collection>()?;
    m.add_function(wrap_pyfunction!(tune_process, m)?)?;
    m.add("TUNING_ENV", isovec::encoder::TUNING_ENV)?;
    Ok(())
}
