//! What every request shares: the store, its open collections with their pipelines (kept
//! loaded, so a model is read once), the query batcher and the limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::limits::Limits;
use crate::api::{ApiCollection, ApiError, ApiResult, ErrorKind, OpenCollection};
use crate::encoder::EncoderOptions;
use crate::store::query_batcher::QueryBatcher;
use crate::store::Store;

/// The server's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    open: Mutex<Option<HashMap<String, ApiCollection>>>,
    batcher: QueryBatcher,
    limits: Limits,
}

fn poisoned() -> ApiError {
    ApiError::new(ErrorKind::Internal, "the server's collection table is poisoned (a bug); restart the server")
}

impl AppState {
    /// The state of a server of `store` (inside a tokio runtime).
    pub fn new(store: Arc<Store>, limits: Limits) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                open: Mutex::new(Some(HashMap::new())),
                batcher: QueryBatcher::start(),
                limits,
            }),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn batcher(&self) -> &QueryBatcher {
        &self.inner.batcher
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The open collection `name` (opened, or created as `how` says, on first use).
    pub fn collection(&self, name: &str, how: &OpenCollection) -> ApiResult<ApiCollection> {
        let mut open = self.inner.open.lock().map_err(|_| poisoned())?;
        let open = open.as_mut().ok_or_else(|| ApiError::new(ErrorKind::Store, "the server is stopping"))?;
        if !how.new_only && how.dims.is_none() {
            if let Some(c) = open.get(name) {
                return Ok(c.clone());
            }
        }
        let c = crate::api::open_collection(&self.inner.store, name, how, None, &EncoderOptions::default())?;
        open.insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// Deletes the collection `name`.
    pub fn delete_collection(&self, name: &str) -> ApiResult<()> {
        let mut open = self.inner.open.lock().map_err(|_| poisoned())?;
        if let Some(open) = open.as_mut() {
            open.remove(name);
        }
        crate::api::delete_collection(&self.inner.store, name)
    }

    /// Forgets every open collection (the store can then be closed).
    pub fn close(&self) {
        if let Ok(mut open) = self.inner.open.lock() {
            open.take();
        }
    }
}
