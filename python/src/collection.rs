//! `Collection`: documents of a store with the pipeline that encodes their texts and queries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use isovec::api::{ApiCollection, DeleteRequest, GetRequest, Include, QueryRequest, Where, WriteMode, WriteRequest};
use isovec::store::SearchParams;
use isovec::Pipeline as CorePipeline;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{bytes_of, call, metadata_values, rows_of, Failure, Outcome};

/// A hit as Python receives it: id, score, text, metadata JSON (None without metadata).
type HitRow = (String, f32, String, Option<String>);
/// A document as Python receives it: id, text, metadata JSON (None without metadata).
type DocRow = (String, String, Option<String>);

/// A collection of a store, with the pipeline that encodes its texts and queries: the one given
/// when it was opened, else the one it records (none for vectors made outside isovec).
#[pyclass(frozen, module = "isovec._native")]
pub(crate) struct Collection {
    inner: isovec::store::Collection,
    pipeline: Option<Arc<CorePipeline>>,
}

impl Collection {
    pub(crate) fn new(inner: isovec::store::Collection, pipeline: Option<Arc<CorePipeline>>) -> Collection {
        Collection { inner, pipeline }
    }

    /// The collection as the request layer serves it.
    fn api(&self) -> ApiCollection {
        ApiCollection::new(self.inner.clone(), self.pipeline.clone())
    }
}

fn metadata_json(m: &serde_json::Value) -> Option<String> {
    (!m.is_null()).then(|| m.to_string())
}

/// Query vectors given as bytes, checked against the collection's dimension.
fn query_vectors(bytes: Option<Vec<u8>>, rows: usize, dims: usize, expected: usize) -> Outcome<Option<Vec<Vec<f32>>>> {
    let Some(bytes) = bytes else { return Ok(None) };
    if dims != expected {
        return Err(isovec::Error::Dimension { expected, found: dims }.into());
    }
    Ok(Some(rows_of(&bytes, rows, dims, "query_embeddings")?))
}

#[pymethods]
impl Collection {
    /// The collection's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Number of dimensions of its vectors.
    #[getter]
    fn dims(&self) -> usize {
        self.inner.config().dims
    }

    /// Whether it holds vectors made outside isovec.
    #[getter]
    fn external(&self) -> bool {
        self.inner.config().pipeline.is_external()
    }

    /// The record of the pipeline that makes its vectors, as JSON (None without a record).
    fn spec(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let c = self.inner.clone();
        call(py, move || {
            Ok(c.spec()?.map(|s| s.to_json().map(|b| String::from_utf8_lossy(&b).into_owned())).transpose()?)
        })
    }

    /// Writes documents; `mode` is `add` (every id new), `upsert` (add or replace) or `update`
    /// (every id exists; parts given None stay). `vectors`: `rows × vector_dims` little-endian
    /// f32 bytes, else the texts are encoded. Returns (inserted, replaced).
    #[pyo3(signature = (mode, ids, documents=None, vectors=None, vector_dims=0, metadata=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        mode: String,
        ids: Vec<String>,
        documents: Option<Vec<Option<String>>>,
        vectors: Option<&[u8]>,
        vector_dims: usize,
        metadata: Option<Vec<Option<String>>>,
    ) -> PyResult<(usize, usize)> {
        let api = self.api();
        let vectors = vectors.map(<[u8]>::to_vec);
        call(py, move || {
            let mode = match mode.as_str() {
                "add" => WriteMode::Add,
                "upsert" => WriteMode::Upsert,
                "update" => WriteMode::Update,
                _ => return Err(Failure::invalid(format!("unknown write mode {mode:?}; use add, upsert or update"))),
            };
            let embeddings = query_vectors(vectors, ids.len(), vector_dims, api.collection.config().dims)?;
            let metadatas = match metadata {
                Some(m) => {
                    if m.len() != ids.len() {
                        return Err(Failure::invalid(format!(
                            "{} ids and {} metadatas: give one per id",
                            ids.len(),
                            m.len()
                        )));
                    }
                    Some(metadata_values(&ids, Some(m))?.into_iter().map(Some).collect())
                }
                None => None,
            };
            let counts = api.write(mode, WriteRequest { ids, documents, embeddings, metadatas })?;
            Ok((counts.inserted, counts.replaced))
        })
    }

    /// Documents by `ids` (in that order, missing ones left out) or all, those `filter` allows,
    /// from `offset`, at most `limit`: (rows, their first vectors as f32 bytes if `with_vectors`).
    #[pyo3(signature = (ids=None, filter=None, offset=0, limit=None, with_vectors=false))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: Option<Vec<String>>,
        filter: Option<String>,
        offset: usize,
        limit: Option<usize>,
        with_vectors: bool,
    ) -> PyResult<(Vec<DocRow>, Bound<'py, PyBytes>)> {
        let api = self.api();
        let (rows, flat) = call(py, move || {
            let mut include = vec![Include::Documents, Include::Metadatas];
            if with_vectors {
                include.push(Include::Embeddings);
            }
            let got = api.get(&GetRequest { ids, filter: filter.map(Where::Expression), offset, limit, include })?;
            let flat = got.embeddings.as_ref().map(bytes_of).unwrap_or_default();
            let rows = got
                .ids
                .into_iter()
                .zip(got.documents.unwrap_or_default())
                .zip(got.metadatas.unwrap_or_default())
                .map(|((id, text), m)| (id, text, metadata_json(&m)))
                .collect();
            Ok((rows, flat))
        })?;
        Ok((rows, PyBytes::new(py, &flat)))
    }

    /// Deletes the documents with `ids` that `filter` allows (either may be None, not both);
    /// returns how many were deleted.
    #[pyo3(signature = (ids=None, filter=None))]
    fn delete(&self, py: Python<'_>, ids: Option<Vec<String>>, filter: Option<String>) -> PyResult<usize> {
        let api = self.api();
        call(py, move || Ok(api.delete(&DeleteRequest { ids, filter: filter.map(Where::Expression) })?.deleted))
    }

    /// The `k` best documents for each query: `texts` (encoded together by the collection's
    /// pipeline) and/or `vectors` (`rows × vector_dims` f32 bytes; a hybrid search takes both).
    /// `mode`: dense, lexical, hybrid, or exact (every vector scanned, no filter); `fusion`
    /// (convex, rrf or auto) and `alpha` shape a hybrid search.
    #[pyo3(signature = (texts=None, vectors=None, rows=0, vector_dims=0, k=10, filter=None, mode="dense", ef=None, fusion=None, alpha=None))]
    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        py: Python<'_>,
        texts: Option<Vec<String>>,
        vectors: Option<&[u8]>,
        rows: usize,
        vector_dims: usize,
        k: usize,
        filter: Option<String>,
        mode: &str,
        ef: Option<usize>,
        fusion: Option<String>,
        alpha: Option<f32>,
    ) -> PyResult<Vec<Vec<HitRow>>> {
        let api = self.api();
        let vectors = vectors.map(<[u8]>::to_vec);
        let mode = mode.to_string();
        call(py, move || {
            let query_embeddings = query_vectors(vectors, rows, vector_dims, api.collection.config().dims)?;
            let req = QueryRequest {
                query_texts: texts,
                query_embeddings,
                n_results: k,
                filter: filter.map(Where::Expression),
                mode,
                ef,
                fusion,
                alpha,
                include: vec![Include::Documents, Include::Metadatas, Include::Scores],
                ..QueryRequest::default()
            };
            let result = api.query(&req, None)?;
            Ok(result
                .ids
                .into_iter()
                .zip(result.scores.unwrap_or_default())
                .zip(result.documents.unwrap_or_default())
                .zip(result.metadatas.unwrap_or_default())
                .map(|(((ids, scores), texts), metadatas)| {
                    ids.into_iter()
                        .zip(scores)
                        .zip(texts)
                        .zip(metadatas)
                        .map(|(((id, score), text), m)| (id, score, text, metadata_json(&m)))
                        .collect()
                })
                .collect())
        })
    }

    /// The vectors of `texts` as this collection's pipeline makes them (documents, or queries
    /// with the query prefix), as little-endian f32 bytes, row after row.
    #[pyo3(signature = (texts, queries=false))]
    fn embed_bytes<'py>(&self, py: Python<'py>, texts: Vec<String>, queries: bool) -> PyResult<Bound<'py, PyBytes>> {
        let api = self.api();
        let flat = call(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(bytes_of(&api.embed(&refs, queries)?))
        })?;
        Ok(PyBytes::new(py, &flat))
    }

    /// Number of documents.
    fn count(&self, py: Python<'_>) -> PyResult<u64> {
        let c = self.inner.clone();
        call(py, move || Ok(c.count()?))
    }

    /// Writes the collection to a Parquet file; returns the number of rows.
    fn export_parquet(&self, py: Python<'_>, path: PathBuf) -> PyResult<u64> {
        let c = self.inner.clone();
        call(py, move || Ok(c.export_parquet(&path, &|_, _| {})?.rows))
    }

    /// For benchmarks: seconds the Rust library takes for one dense search of each query vector
    /// after another (`rows × dims` f32 bytes), nothing crossing into Python in between.
    fn time_searches(&self, py: Python<'_>, vectors: &[u8], rows: usize, k: usize) -> PyResult<f64> {
        let c = self.inner.clone();
        let vectors = vectors.to_vec();
        call(py, move || {
            let queries = rows_of(&vectors, rows, c.config().dims, "vectors")?;
            let params = SearchParams::k(k);
            let start = Instant::now();
            for q in &queries {
                std::hint::black_box(c.search(q, &params)?);
            }
            Ok(start.elapsed().as_secs_f64())
        })
    }
}
