//! An async face of the store for tokio services: every call is awaitable, CPU work runs on
//! tokio's blocking threads, and concurrent text queries are encoded together in micro-batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Collection, Doc, Hit, SearchMode, SearchParams, Store, TextDoc, UpsertReport};
use crate::{Embedder, Error, Result};

/// Longest wait for more queries to join a micro-batch.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// Most queries encoded in one micro-batch.
const BATCH_MAX: usize = 32;
/// Queued text queries before callers wait.
const QUEUE: usize = 1024;

struct QueryJob {
    collection: Collection,
    text: String,
    params: SearchParams,
    reply: oneshot::Sender<Result<Vec<Hit>>>,
}

/// A [`Store`] with an embedder, usable from async code; cheap to clone.
#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    queries: mpsc::Sender<QueryJob>,
}

impl AsyncStore {
    /// Wraps a store; must be called inside a tokio runtime (it starts the batching task).
    pub fn new(store: Arc<Store>, embedder: Arc<dyn Embedder>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(batch_queries(rx, embedder.clone()));
        AsyncStore { store, embedder, queries: tx }
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
        let (reply, answer) = oneshot::channel();
        let job = QueryJob { collection, text: text.to_string(), params, reply };
        self.queries.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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

fn stopped() -> Error {
    Error::Background("the query batching task stopped; recreate the AsyncStore inside a running tokio runtime".into())
}

/// Collects queries arriving within a short window and encodes them in one call.
async fn batch_queries(mut rx: mpsc::Receiver<QueryJob>, embedder: Arc<dyn Embedder>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while jobs.len() < BATCH_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => jobs.push(job),
                _ => break,
            }
        }
        let embedder = embedder.clone();
        // Awaited on purpose: queries arriving meanwhile queue up and form the next batch.
        let _ = tokio::task::spawn_blocking(move || answer_batch(jobs, embedder.as_ref())).await;
    }
}

fn answer_batch(jobs: Vec<QueryJob>, embedder: &dyn Embedder) {
    let mut ready = Vec::with_capacity(jobs.len());
    for job in jobs {
        let check = job.collection.check_pipeline(embedder).and_then(|_| {
            if job.text.trim().is_empty() {
                Err(Error::InvalidInput("the query text is empty; give some words to search for".into()))
            } else {
                Ok(())
            }
        });
        match check {
            Ok(()) => ready.push(job),
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    let n_texts = ready.len();
    let encoded = {
        let texts: Vec<&str> = ready.iter().map(|j| j.text.as_str()).collect();
        embedder.embed(&texts)
    };
    match encoded {
        Ok(vectors) if vectors.len() == ready.len() => {
            for (job, vector) in ready.into_iter().zip(vectors) {
                let found = match job.params.mode {
                    SearchMode::Hybrid => job.collection.search_hybrid(&vector, &job.text, &job.params),
                    _ => job.collection.search(&vector, &job.params),
                };
                let _ = job.reply.send(found);
            }
        }
        Ok(vectors) => {
            let n = vectors.len();
            for job in ready {
                let _ =
                    job.reply.send(Err(Error::Model(format!("the embedder returned {n} vectors for {n_texts} texts"))));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for job in ready {
                let _ = job.reply.send(Err(Error::Model(format!("encoding the query failed: {message}"))));
            }
        }
    }
}
