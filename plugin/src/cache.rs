//! Per-process caches: opened stores, and the pipelines SQL names.
//!
//! Loading a model takes most of a second and a sled store can be open in only one process at a
//! time, so each is opened once and kept until the process ends or `isovec_close(store)` lets a
//! store go. Stores are keyed by canonical path, pipelines by the string that names them
//! ([`PipelineName`]); a collection's own pipeline is kept by its collection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use isovec::store::Store;
use isovec::{Error, Pipeline, Result};

use crate::pipeline_name::PipelineName;

/// Open stores by canonical directory.
static STORES: LazyLock<Mutex<HashMap<PathBuf, Arc<Store>>>> = LazyLock::new(Default::default);
/// Pipelines by the name SQL gave them.
static PIPELINES: LazyLock<Mutex<HashMap<PipelineName, Arc<Pipeline>>>> = LazyLock::new(Default::default);

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
    // Collections' recorded pipelines encode in the process's precision.
    let store = Arc::new(store.with_encoder_options(crate::precision::encoder_options()?));
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

/// The pipeline `name` names, loaded by `load` the first time and kept until the process ends
/// (the library's own cache lets a pipeline go as soon as nothing uses it, which between two SQL
/// calls is always). Two threads asking for one pipeline load it once.
pub fn pipeline(name: &PipelineName, load: impl FnOnce() -> Result<Arc<Pipeline>>) -> Result<Arc<Pipeline>> {
    let mut pipelines = lock(&PIPELINES);
    if let Some(p) = pipelines.get(name) {
        return Ok(p.clone());
    }
    let pipeline = load()?;
    pipelines.insert(name.clone(), pipeline.clone());
    Ok(pipeline)
}
