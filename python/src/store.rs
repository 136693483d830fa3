//! `Store`: an open store directory, and its collections by name.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use isovec::api::{delete_collection, open_collection, OpenCollection};
use isovec::encoder::EncoderOptions;
use isovec::parquet_io::ParquetImport;
use isovec::Embedder;
use pyo3::prelude::*;

use crate::collection::Collection;
use crate::pipeline::{options, Pipeline};
use crate::{call, Failure, Outcome};

/// An open store directory.
#[pyclass(frozen, module = "isovec._native")]
pub(crate) struct Store {
    inner: Mutex<Option<Arc<isovec::store::Store>>>,
    /// How pipelines run: the collections' recorded ones, and the default one of new collections.
    options: EncoderOptions,
}

impl Store {
    fn get(&self) -> Outcome<Arc<isovec::store::Store>> {
        let guard =
            self.inner.lock().map_err(|_| Failure::new("StoreError", "the store's lock is poisoned; open it again"))?;
        guard.clone().ok_or_else(|| Failure::new("StoreError", "the store is closed; open it again"))
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
            let store = isovec::store::Store::open(&path)?;
            Ok((store.with_encoder_options(options.clone()), options))
        })?;
        Ok(Store { inner: Mutex::new(Some(Arc::new(store))), options })
    }

    /// The collection `name`, created if `create` and missing (an existing one with `new_only`
    /// is an error). `external` = (model name, dims): a collection of vectors made outside
    /// isovec. Else, with `pipeline`, the collection holds that pipeline's vectors; without, a
    /// new one is for the default pipeline and an existing one encodes with its recorded one.
    #[pyo3(signature = (name, pipeline=None, external=None, create=true, new_only=false))]
    fn collection(
        &self,
        py: Python<'_>,
        name: String,
        pipeline: Option<&Pipeline>,
        external: Option<(String, usize)>,
        create: bool,
        new_only: bool,
    ) -> PyResult<Collection> {
        let given = pipeline.map(|p| p.inner.clone());
        let options = self.options.clone();
        let store = self.get().map_err(|f| f.into_py(py))?;
        let api = call(py, move || {
            let (model, dims) = external.map_or((None, None), |(m, d)| (Some(m), Some(d)));
            let how = OpenCollection { create, new_only, dims, model };
            Ok(open_collection(&store, &name, &how, given, &options)?)
        })?;
        Ok(Collection::new(api.collection, api.pipeline))
    }

    /// The names of the store's collections.
    fn list_collections(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let store = self.get().map_err(|f| f.into_py(py))?;
        call(py, move || Ok(store.list_collections()?.into_iter().map(|(n, _)| n).collect()))
    }

    /// Deletes the collection `name` and its documents.
    fn delete_collection(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let store = self.get().map_err(|f| f.into_py(py))?;
        call(py, move || Ok(delete_collection(&store, &name)?))
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
        let store = self.get().map_err(|f| f.into_py(py))?;
        let embedder = pipeline.map(|p| p.inner.clone());
        call(py, move || {
            let file = ParquetImport::verify(&path, &|_, _| {})?;
            let embedder = embedder.as_deref().map(|p| p as &dyn Embedder);
            let report = store.import_parquet(&name, &file, embedder, &|_, _| {})?;
            Ok((report.rows, report.inserted, report.replaced))
        })
    }

    /// Snapshots and closes the store (its collections become unusable).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let store = self
            .inner
            .lock()
            .map_err(|_| Failure::new("StoreError", "the store's lock is poisoned").into_py(py))?
            .take();
        match store.and_then(Arc::into_inner) {
            Some(store) => call(py, move || Ok(store.close()?)),
            None => Ok(()),
        }
    }
}
