//! Pipelines and encoders loaded once per process and shared while in use.
//!
//! Loading a model takes most of a second and its weights tens of megabytes, so collections
//! (of any store) with the same pipeline share one, and pipelines with the same model share one
//! encoder. The caches hold weak references: a model is freed when nothing uses it any more.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use super::{Pipeline, PipelineSpec};
use crate::encoder::{Encoder, EncoderOptions};
use crate::{Error, Result};

/// Pipelines by fingerprint and how they run.
static PIPELINES: LazyLock<Mutex<HashMap<String, Weak<Pipeline>>>> = LazyLock::new(Default::default);
/// Encoders by canonical folder, maximum length and how they run.
static ENCODERS: LazyLock<Mutex<HashMap<String, Weak<Encoder>>>> = LazyLock::new(Default::default);

/// The pipeline `spec` records, opened once per process for each way of running it
/// (`options`: device, precision, batch size) and shared while in use. See [`Pipeline::open`].
pub fn open_shared(spec: &PipelineSpec, options: &EncoderOptions) -> Result<Arc<Pipeline>> {
    let id = &spec.encoded()?.id;
    let key = format!("{} {}", id.fingerprint(), runs_as(options));
    // Held while loading: two threads asking for one pipeline load it once.
    let mut pipelines = lock(&PIPELINES);
    if let Some(p) = pipelines.get(&key).and_then(Weak::upgrade) {
        return Ok(p);
    }
    let pipeline = Arc::new(Pipeline::open(spec, options)?);
    pipelines.retain(|_, p| p.strong_count() > 0);
    pipelines.insert(key, Arc::downgrade(&pipeline));
    Ok(pipeline)
}

/// The encoder in `dir` with `max_length` (default the model's), loaded once per process for
/// each way of running it and shared while in use.
pub(crate) fn encoder(dir: &Path, max_length: Option<usize>, options: &EncoderOptions) -> Result<Arc<Encoder>> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    // Keyed by the length in effect, so that the model's own and the same length named share.
    let max_length = match max_length {
        Some(n) => n,
        None => crate::encoder::ModelDir::open(dir)?.read_config()?.max_position_embeddings,
    };
    let key = format!("{} {max_length} {}", canonical.display(), runs_as(options));
    let mut encoders = lock(&ENCODERS);
    if let Some(e) = encoders.get(&key).and_then(Weak::upgrade) {
        // The files may have changed since: the caller checks the encoder's id.
        return Ok(e);
    }
    // Loaded from the path as given: the model's name (its folder's name) labels pipeline ids.
    let encoder = Arc::new(Encoder::load(dir, EncoderOptions { max_length: Some(max_length), ..options.clone() })?);
    encoders.retain(|_, e| e.strong_count() > 0);
    encoders.insert(key, Arc::downgrade(&encoder));
    Ok(encoder)
}

/// How an encoder runs, as a cache key: everything in the options but the maximum length.
fn runs_as(options: &EncoderOptions) -> String {
    format!("{:?} {:?} int8={} batch={}", options.device, options.dtype, options.int8, options.batch_size)
}

/// Locks a cache; every insertion is a single `insert` of a complete value, so a panic in
/// another thread while it held the lock leaves nothing half done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
