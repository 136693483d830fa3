//! Per-process caches: opened stores, loaded encoders, transforms and pipelines.
//!
//! Loading a model takes most of a second and a sled store can be open in only one process at a
//! time, so each is opened once and kept (keyed by canonical path) until the process ends or
//! `isovec_close(store)` lets a store go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use isovec::encoder::{Encoder, EncoderOptions};
use isovec::store::Store;
use isovec::transform::Transform;
use isovec::{EncoderId, Error, Pipeline, PipelineId, Result, TransformId};

/// Open stores by canonical directory.
static STORES: LazyLock<Mutex<HashMap<PathBuf, Arc<Store>>>> = LazyLock::new(Default::default);
/// Loaded encoders by canonical model folder and requested maximum length.
static ENCODERS: LazyLock<Mutex<HashMap<EncoderKey, Arc<Encoder>>>> = LazyLock::new(Default::default);
/// A model folder and the maximum length it was loaded for.
type EncoderKey = (PathBuf, Option<usize>);
/// Loaded transforms by canonical file path.
static TRANSFORM_FILES: LazyLock<Mutex<HashMap<PathBuf, Arc<Transform>>>> = LazyLock::new(Default::default);
/// Every transform loaded so far, by id: how a collection's pipeline finds its transform.
static TRANSFORMS: LazyLock<Mutex<HashMap<TransformId, Arc<Transform>>>> = LazyLock::new(Default::default);
/// Built pipelines by id.
static PIPELINES: LazyLock<Mutex<HashMap<PipelineId, Arc<Pipeline>>>> = LazyLock::new(Default::default);

/// Locks a cache; a panic in another thread while it held the lock does not poison the data
/// (every insertion is a single `insert` of a complete value).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::io(path, e))
}

/// The store in `dir`, opened once per process; `create` allows making a new store there.
/// A store outside the store root ([`crate::store_root`]) is refused.
pub fn store(dir: &Path, create: bool) -> Result<Arc<Store>> {
    if dir.as_os_str().is_empty() {
        return Err(Error::InvalidInput("the store path is empty; give the store's directory".into()));
    }
    crate::store_root::check(dir)?;
    let mut stores = lock(&STORES);
    if let Ok(key) = std::fs::canonicalize(dir) {
        if let Some(s) = stores.get(&key) {
            return Ok(s.clone());
        }
    }
    let store = if create { Store::open(dir)? } else { Store::open_existing(dir)? };
    let store = Arc::new(store);
    stores.insert(canonical(dir)?, store.clone());
    Ok(store)
}

/// Snapshots and forgets the store in `dir`; returns whether it was open.
pub fn close_store(dir: &Path) -> Result<bool> {
    let Ok(key) = std::fs::canonicalize(dir) else {
        return Ok(false);
    };
    let removed = lock(&STORES).remove(&key);
    match removed {
        None => Ok(false),
        Some(store) => {
            // Another statement may still hold a handle; then the store closes when it ends.
            match Arc::try_unwrap(store) {
                Ok(store) => store.close()?,
                Err(shared) => shared.snapshot()?,
            }
            Ok(true)
        }
    }
}

/// The encoder in `dir` (with `max_length`, default the model's), loaded once per process.
pub fn encoder(dir: &Path, max_length: Option<usize>) -> Result<Arc<Encoder>> {
    let key = (canonical(dir).map_err(|e| missing_model(dir, e))?, max_length);
    let mut encoders = lock(&ENCODERS);
    if let Some(e) = encoders.get(&key) {
        return Ok(e.clone());
    }
    // In the process's precision (`ISOVEC_DTYPE`, read at load).
    let options = EncoderOptions { max_length, ..crate::precision::encoder_options()? };
    // Loaded from the path as given: the model's name (its folder name) labels pipeline ids.
    let encoder = Arc::new(Encoder::load(dir, options)?);
    encoders.insert(key, encoder.clone());
    Ok(encoder)
}

fn missing_model(dir: &Path, e: Error) -> Error {
    Error::Model(format!(
        "no model folder at {} ({e}); install the default model with `isovec model fetch`, or name a Hugging Face BERT folder",
        dir.display()
    ))
}

/// An already-loaded encoder that produces `id` (same model files and maximum length), if any.
pub fn loaded_encoder(id: &EncoderId) -> Option<Arc<Encoder>> {
    lock(&ENCODERS).values().find(|e| e.produces(id)).cloned()
}

/// The transform file at `path`, loaded once per process (and remembered by its id).
pub fn transform_file(path: &Path) -> Result<Arc<Transform>> {
    let key = canonical(path)?;
    let mut files = lock(&TRANSFORM_FILES);
    if let Some(t) = files.get(&key) {
        return Ok(t.clone());
    }
    let t = Arc::new(Transform::load(&key)?);
    lock(&TRANSFORMS).insert(t.id(), t.clone());
    files.insert(key, t.clone());
    Ok(t)
}

/// A transform loaded earlier in this process with this id, if any.
pub fn loaded_transform(id: &TransformId) -> Option<Arc<Transform>> {
    lock(&TRANSFORMS).get(id).cloned()
}

/// The cached pipeline with this id, if built before.
pub fn pipeline(id: &PipelineId) -> Option<Arc<Pipeline>> {
    lock(&PIPELINES).get(id).cloned()
}

/// Remembers a built pipeline; returns the cached one if another thread was first.
pub fn remember_pipeline(p: Pipeline) -> Arc<Pipeline> {
    use isovec::Embedder;
    lock(&PIPELINES).entry(p.id().clone()).or_insert_with(|| Arc::new(p)).clone()
}
