//! Concurrent text queries encoded together: callers hand their texts to one task, which gathers
//! what arrives within a short window and encodes each embedder's texts as one batch (a batch of
//! 32 costs far less than 32 batches of one), then hands each caller its vectors. A caller alone
//! is encoded at once: the window is only waited for when other callers are on their way.
//!
//! Used by [`crate::store::AsyncStore`] and by `isovec serve`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{Embedder, Error, Result};

/// Longest wait for more queries to join a batch.
const WINDOW: Duration = Duration::from_millis(2);
/// Most texts encoded in one batch.
const MAX_TEXTS: usize = 64;
/// Callers queued before more callers wait to be queued.
const QUEUE: usize = 1024;

struct Job {
    embedder: Arc<dyn Embedder>,
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
}

/// The handle callers send their texts to; cheap to clone.
#[derive(Clone)]
pub(crate) struct QueryBatcher {
    jobs: mpsc::Sender<Job>,
    /// Callers that have sent their texts and wait for their vectors: when the one at hand is
    /// alone, it is encoded at once instead of waiting for company.
    waiting: Arc<AtomicUsize>,
}

fn stopped() -> Error {
    Error::Background(
        "the query batching task stopped: the tokio runtime that started it is shutting down; \
         send the query again from a running runtime"
            .into(),
    )
}

impl QueryBatcher {
    /// Starts the batching task (inside a tokio runtime).
    pub(crate) fn start() -> QueryBatcher {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let waiting = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(rx, waiting.clone()));
        QueryBatcher { jobs, waiting }
    }

    /// The query vectors of `texts` as `embedder` makes them ([`Embedder::embed_queries`]),
    /// encoded together with concurrent callers' texts for the same embedder.
    pub(crate) async fn embed_queries(&self, embedder: Arc<dyn Embedder>, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let sent = self.jobs.send(Job { embedder, texts, reply }).await.map_err(|_| stopped());
        let answered = match sent {
            Ok(()) => answer.await.map_err(|_| stopped()),
            Err(e) => Err(e),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        answered?
    }
}

/// Whether two handles share one embedder (the data pointer; a vtable may be duplicated).
fn same_embedder(a: &Arc<dyn Embedder>, b: &Arc<dyn Embedder>) -> bool {
    std::ptr::eq(Arc::as_ptr(a) as *const (), Arc::as_ptr(b) as *const ())
}

async fn run(mut rx: mpsc::Receiver<Job>, waiting: Arc<AtomicUsize>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut texts = jobs[0].texts.len();
        let deadline = tokio::time::Instant::now() + WINDOW;
        // Wait for company only when other callers are on their way.
        while texts < MAX_TEXTS && waiting.load(Ordering::SeqCst) > jobs.len() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => {
                    texts += job.texts.len();
                    jobs.push(job);
                }
                _ => break,
            }
        }
        // One batch per embedder, in order of arrival. Awaited on purpose: callers arriving
        // meanwhile queue up and form the next batch.
        while !jobs.is_empty() {
            let embedder = jobs[0].embedder.clone();
            let (same, rest): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| same_embedder(&j.embedder, &embedder));
            jobs = rest;
            let all: Vec<String> = same.iter().flat_map(|j| j.texts.iter().cloned()).collect();
            match encode(embedder.clone(), all).await {
                Ok(mut vectors) => {
                    for job in same.into_iter().rev() {
                        let mine = vectors.split_off(vectors.len() - job.texts.len());
                        let _ = job.reply.send(Ok(mine));
                    }
                }
                // One caller's bad text must not fail the others: each alone, with its own answer.
                Err(e) if same.len() == 1 => {
                    let _ = same.into_iter().next().map(|job| job.reply.send(Err(e)));
                }
                Err(_) => {
                    for job in same {
                        let _ = job.reply.send(encode(embedder.clone(), job.texts).await);
                    }
                }
            }
        }
    }
}

/// `embedder`'s query vectors of `texts`, on a blocking thread.
async fn encode(embedder: Arc<dyn Embedder>, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
    let n = texts.len();
    let encoded = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        embedder.embed_queries(&refs)
    })
    .await;
    match encoded {
        Ok(Ok(vectors)) if vectors.len() == n => Ok(vectors),
        Ok(Ok(vectors)) => Err(Error::Model(format!("the embedder returned {} vectors for {n} texts", vectors.len()))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Background("encoding the queries failed inside isovec (a bug); please report it".into())),
    }
}
