//! `Collection`: documents of a store with the pipeline that encodes their texts and queries.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use isovec::store::layout::MAX_EF;
use isovec::store::{
    check_query_text, Doc, DocUpdate, Hit, ListParams, PassagesDoc, SearchMode, SearchParams, TextDoc,
};
use isovec::{Embedder, Pipeline as CorePipeline};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{bytes_of, call, metadata_values, parse_filter, rows_of, Failure, Outcome};

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
}

/// The pipeline that encodes texts for `collection`: the one given, else its recorded one.
fn encoder(collection: &isovec::store::Collection, given: &Option<Arc<CorePipeline>>) -> Outcome<Arc<CorePipeline>> {
    match given {
        Some(p) => {
            collection.check_pipeline(p.as_ref())?;
            Ok(p.clone())
        }
        None => Ok(collection.pipeline()?),
    }
}

fn metadata_json(m: &serde_json::Value) -> Option<String> {
    (!m.is_null()).then(|| m.to_string())
}

fn hit_row(h: Hit) -> HitRow {
    let metadata = metadata_json(&h.metadata);
    (h.id, h.score, h.text, metadata)
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
        let c = self.inner.clone();
        let given = self.pipeline.clone();
        let vectors = vectors.map(<[u8]>::to_vec);
        call(py, move || {
            let n = ids.len();
            for (what, len) in
                [("documents", documents.as_ref().map(Vec::len)), ("metadatas", metadata.as_ref().map(Vec::len))]
            {
                if let Some(len) = len.filter(|&l| l != n) {
                    return Err(Failure::invalid(format!("{n} ids and {len} {what}: give one per id")));
                }
            }
            let mut seen = HashSet::new();
            let repeated: Vec<&str> = ids.iter().filter(|id| !seen.insert(id.as_str())).map(String::as_str).collect();
            if !repeated.is_empty() {
                return Err(Failure::new(
                    "DuplicateIDError",
                    format!("ids given more than once: {repeated:?}; give each id once"),
                ));
            }
            let dims = c.config().dims;
            let vectors = query_vectors(vectors, n, vector_dims, dims)?;
            let metadata = match (&metadata, mode.as_str()) {
                (None, "update") => vec![None; n],
                _ => metadata_values(&ids, metadata)?.into_iter().map(Some).collect(),
            };
            let documents = documents.unwrap_or_else(|| vec![None; n]);
            if mode == "update" {
                let updates: Vec<DocUpdate> = ids
                    .into_iter()
                    .zip(documents)
                    .zip(metadata)
                    .enumerate()
                    .map(|(i, ((id, text), metadata))| DocUpdate {
                        id,
                        text,
                        metadata,
                        vector: vectors.as_ref().map(|v| v[i].clone()),
                    })
                    .collect();
                let report = c.update(&updates)?;
                return Ok((report.inserted, report.replaced));
            }
            if mode == "add" {
                let existing = c.existing(&ids)?;
                if !existing.is_empty() {
                    return Err(Failure::new(
                        "DuplicateIDError",
                        format!("ids already in collection {:?}: {existing:?}; use upsert to replace them", c.name()),
                    ));
                }
            } else if mode != "upsert" {
                return Err(Failure::invalid(format!("unknown write mode {mode:?}; use add, upsert or update")));
            }
            let metadata = metadata.into_iter().map(|m| m.unwrap_or_default());
            let report = match vectors {
                Some(vectors) => {
                    let docs: Vec<Doc> = ids
                        .into_iter()
                        .zip(documents)
                        .zip(metadata)
                        .zip(vectors)
                        .map(|(((id, text), metadata), vector)| Doc {
                            id,
                            text: text.unwrap_or_default(),
                            metadata,
                            vector,
                        })
                        .collect();
                    c.upsert(&docs)?
                }
                None => {
                    let mut docs = Vec::with_capacity(n);
                    for ((id, text), metadata) in ids.into_iter().zip(documents).zip(metadata) {
                        let Some(text) = text else {
                            return Err(Failure::invalid(format!(
                                "document {id:?} has neither a text nor a vector; give documents= or embeddings="
                            )));
                        };
                        docs.push(TextDoc { id, text, metadata });
                    }
                    let pipeline = encoder(&c, &given)?;
                    c.add_texts_with(pipeline.as_ref(), &docs)?
                }
            };
            Ok((report.inserted, report.replaced))
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
        let c = self.inner.clone();
        let (rows, flat) = call(py, move || {
            let filter = filter.as_deref().map(parse_filter).transpose()?;
            let docs: Vec<PassagesDoc> = match ids {
                Some(ids) => c
                    .get_many(&ids)?
                    .into_iter()
                    .flatten()
                    .filter(|d| filter.as_ref().is_none_or(|f| f.matches(&d.metadata)))
                    .skip(offset)
                    .take(limit.unwrap_or(usize::MAX))
                    .collect(),
                None => c.list(&ListParams { filter, offset, limit })?,
            };
            let flat = if with_vectors { bytes_of(docs.iter().filter_map(|d| d.vectors.first())) } else { Vec::new() };
            let rows = docs
                .into_iter()
                .map(|d| {
                    let m = metadata_json(&d.metadata);
                    (d.id, d.text, m)
                })
                .collect();
            Ok((rows, flat))
        })?;
        Ok((rows, PyBytes::new(py, &flat)))
    }

    /// Deletes the documents with `ids` that `filter` allows (either may be None, not both);
    /// returns how many were deleted.
    #[pyo3(signature = (ids=None, filter=None))]
    fn delete(&self, py: Python<'_>, ids: Option<Vec<String>>, filter: Option<String>) -> PyResult<usize> {
        let c = self.inner.clone();
        call(py, move || {
            let filter = filter.as_deref().map(parse_filter).transpose()?;
            Ok(match (ids, filter) {
                (Some(ids), None) => c.delete(&ids)?,
                (Some(ids), Some(f)) => {
                    let chosen: Vec<String> = c
                        .get_many(&ids)?
                        .into_iter()
                        .flatten()
                        .filter(|d| f.matches(&d.metadata))
                        .map(|d| d.id)
                        .collect();
                    c.delete(&chosen)?
                }
                (None, Some(f)) => c.delete_where(&f)?,
                (None, None) => {
                    return Err(Failure::invalid(
                        "delete: give ids=, where=, or both (where={} deletes every document)",
                    ))
                }
            })
        })
    }

    /// The `k` best documents for each query: `texts` (encoded together by the collection's
    /// pipeline) and/or `vectors` (`rows × vector_dims` f32 bytes; a hybrid search takes both).
    /// `mode`: dense, lexical, hybrid, or exact (every vector scanned, no filter).
    #[pyo3(signature = (texts=None, vectors=None, rows=0, vector_dims=0, k=10, filter=None, mode="dense", ef=None))]
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
    ) -> PyResult<Vec<Vec<HitRow>>> {
        let c = self.inner.clone();
        let given = self.pipeline.clone();
        let vectors = vectors.map(<[u8]>::to_vec);
        let mode = mode.to_string();
        call(py, move || {
            let dims = c.config().dims;
            let vectors = query_vectors(vectors, rows, vector_dims, dims)?;
            let texts = texts.unwrap_or_default();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            if let Some(v) = &vectors {
                if !refs.is_empty() && refs.len() != v.len() {
                    return Err(Failure::invalid(format!(
                        "{} query texts and {} query vectors: give one text per vector (or only one kind)",
                        refs.len(),
                        v.len()
                    )));
                }
            }
            let encode = |refs: &[&str]| -> Outcome<Vec<Vec<f32>>> {
                if refs.is_empty() {
                    return Ok(Vec::new());
                }
                for text in refs {
                    check_query_text(text)?;
                }
                Ok(encoder(&c, &given)?.embed_queries(refs)?)
            };
            let hits: Vec<Vec<Hit>> = if mode == "exact" {
                if filter.is_some() {
                    return Err(Failure::invalid("an exact search takes no filter; use mode=\"dense\" with a filter"));
                }
                if ef.is_some() {
                    return Err(Failure::invalid(
                        "an exact search scans every vector and takes no ef; give ef with mode=\"dense\" or \"hybrid\"",
                    ));
                }
                let vectors = match vectors {
                    Some(v) => v,
                    None => encode(&refs)?,
                };
                vectors.iter().map(|v| c.search_exact(v, k)).collect::<isovec::Result<_>>()?
            } else {
                let mode: SearchMode = mode.parse()?;
                let mut params = SearchParams::k(k).with_mode(mode);
                if let Some(ef) = ef {
                    if !(1..=MAX_EF).contains(&ef) {
                        return Err(Failure::invalid(format!(
                            "ef = {ef} is out of range; give a width in 1..={MAX_EF} (32–400 is typical)"
                        )));
                    }
                    params = params.with_ef(ef);
                }
                if let Some(f) = filter {
                    params = params.with_filter(parse_filter(&f)?);
                }
                match (mode, vectors) {
                    (SearchMode::Lexical, _) if refs.is_empty() => {
                        return Err(Failure::invalid("a lexical search needs query_texts"))
                    }
                    (SearchMode::Lexical, _) => c.search_texts(&refs, &params)?,
                    (SearchMode::Hybrid, _) if refs.is_empty() => return Err(Failure::invalid(
                        "a hybrid search needs query_texts (and their query_embeddings, or a pipeline that makes them)",
                    )),
                    (_, Some(v)) => c.search_vectors_and_texts(&v, &refs, &params)?,
                    (_, None) => c.search_texts_with(encoder(&c, &given)?.as_ref(), &refs, &params)?,
                }
            };
            Ok(hits.into_iter().map(|h| h.into_iter().map(hit_row).collect()).collect())
        })
    }

    /// The vectors of `texts` as this collection's pipeline makes them (documents, or queries
    /// with the query prefix), as little-endian f32 bytes, row after row.
    #[pyo3(signature = (texts, queries=false))]
    fn embed_bytes<'py>(&self, py: Python<'py>, texts: Vec<String>, queries: bool) -> PyResult<Bound<'py, PyBytes>> {
        let c = self.inner.clone();
        let given = self.pipeline.clone();
        let flat = call(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let pipeline = encoder(&c, &given)?;
            let vectors = if queries { pipeline.embed_queries(&refs) } else { pipeline.embed(&refs) }?;
            Ok(bytes_of(&vectors))
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
