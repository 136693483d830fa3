//! An async face of the store for tokio services: every call is awaitable, CPU work runs on
//! tokio's blocking threads, and concurrent text queries are encoded together in micro-batches.

use std::sync::Arc;

use crate::store::query_batcher::QueryBatcher;
use crate::store::{check_query_text, Collection, Doc, Hit, SearchMode, SearchParams, Store, TextDoc, UpsertReport};
use crate::{Embedder, Error, Result};

/// A [`Store`] with an embedder, usable from async code; cheap to clone.
#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    queries: QueryBatcher,
}

impl AsyncStore {
    /// Wraps a store; must be called inside a tokio runtime (it starts the batching task).
    pub fn new(store: Arc<Store>, embedder: Arc<dyn Embedder>) -> Self {
        AsyncStore { store, embedder, queries: QueryBatcher::start() }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Searches `collection` for `text`, encoding it together with concurrent queries.
    pub async fn search_text(&self, collection: &str, text: &str, params: SearchParams) -> Result<Vec<Hit>> {
        let collection = self.collection(collection).await?;
        if params.mode == SearchMode::Lexical {
            // Nothing to encode: BM25 runs on the text.
            let text = text.to_string();
            return blocking(move || collection.search_lexical(&text, &params)).await;
        }
        collection.check_pipeline(self.embedder.as_ref())?;
        check_query_text(text)?;
        let mut vectors = self.queries.embed_queries(self.embedder.clone(), vec![text.to_string()]).await?;
        let Some(vector) = vectors.pop() else {
            return Err(Error::Model("the embedder returned no vector for the query".into()));
        };
        let text = text.to_string();
        blocking(move || collection.search_encoded(&vector, &text, &params)).await
    }

    /// Searches `collection` by vector.
    pub async fn search(&self, collection: &str, vector: Vec<f32>, params: SearchParams) -> Result<Vec<Hit>> {
        let collection = self.collection(collection).await?;
        blocking(move || collection.search(&vector, &params)).await
    }

    /// Encodes and upserts documents (one durable batch).
    pub async fn add_texts(&self, collection: &str, docs: Vec<TextDoc>) -> Result<UpsertReport> {
        let collection = self.collection(collection).await?;
        let embedder = self.embedder.clone();
        blocking(move || collection.add_texts_with(embedder.as_ref(), &docs)).await
    }

    /// Upserts documents with their vectors (one durable batch).
    pub async fn upsert(&self, collection: &str, docs: Vec<Doc>) -> Result<UpsertReport> {
        let collection = self.collection(collection).await?;
        blocking(move || collection.upsert(&docs)).await
    }

    /// Deletes documents by id; returns how many existed.
    pub async fn delete(&self, collection: &str, ids: Vec<String>) -> Result<usize> {
        let collection = self.collection(collection).await?;
        blocking(move || collection.delete(&ids)).await
    }

    async fn collection(&self, name: &str) -> Result<Collection> {
        let store = self.store.clone();
        let name = name.to_string();
        // Opening may load or rebuild an index: blocking work.
        blocking(move || store.collection(&name)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Background(format!("a background task failed: {e}")))?
}
