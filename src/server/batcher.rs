//! Concurrent text queries encoded together: requests hand their texts to one task, which
//! gathers what arrives within a short window and encodes each pipeline's texts as one batch (a
//! batch of 32 costs far less than 32 batches of one), then hands each request its vectors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::api::{ApiError, ApiResult, ErrorKind};
use crate::{Embedder, Pipeline};

/// Longest wait for more queries to join a batch.
const WINDOW: Duration = Duration::from_millis(2);
/// Most texts encoded in one batch.
const MAX_TEXTS: usize = 64;
/// Requests queued before callers wait.
const QUEUE: usize = 1024;

struct Job {
    pipeline: Arc<Pipeline>,
    texts: Vec<String>,
    reply: oneshot::Sender<ApiResult<Vec<Vec<f32>>>>,
}

/// The handle requests send their texts to; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
    /// Requests that have sent their texts and wait for their vectors: when the one at hand is
    /// alone, it is encoded at once instead of waiting for company.
    waiting: Arc<AtomicUsize>,
}

fn stopped() -> ApiError {
    ApiError::new(ErrorKind::Internal, "the server is stopping; send the request again once it is back")
}

impl Batcher {
    /// Starts the batching task (inside a tokio runtime).
    pub fn start() -> Batcher {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let waiting = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(rx, waiting.clone()));
        Batcher { jobs, waiting }
    }

    /// The query vectors of `texts` as `pipeline` makes them, encoded with concurrent requests'.
    pub async fn embed_queries(&self, pipeline: Arc<Pipeline>, texts: Vec<String>) -> ApiResult<Vec<Vec<f32>>> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let sent = self.jobs.send(Job { pipeline, texts, reply }).await.map_err(|_| stopped());
        let answered = match sent {
            Ok(()) => answer.await.map_err(|_| stopped()),
            Err(e) => Err(e),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        answered?
    }
}

async fn run(mut rx: mpsc::Receiver<Job>, waiting: Arc<AtomicUsize>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut texts = jobs[0].texts.len();
        let deadline = tokio::time::Instant::now() + WINDOW;
        // Wait for company only when other requests are on their way.
        while texts < MAX_TEXTS && waiting.load(Ordering::SeqCst) > jobs.len() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => {
                    texts += job.texts.len();
                    jobs.push(job);
                }
                _ => break,
            }
        }
        // One batch per pipeline, in order of arrival.
        while !jobs.is_empty() {
            let pipeline = jobs[0].pipeline.clone();
            let (same, rest): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| Arc::ptr_eq(&j.pipeline, &pipeline));
            jobs = rest;
            let all: Vec<String> = same.iter().flat_map(|j| j.texts.iter().cloned()).collect();
            let encoded = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                pipeline.embed_queries(&refs)
            })
            .await;
            match encoded {
                Ok(Ok(mut vectors)) => {
                    for job in same.into_iter().rev() {
                        let mine = vectors.split_off(vectors.len() - job.texts.len());
                        let _ = job.reply.send(Ok(mine));
                    }
                }
                Ok(Err(e)) => {
                    let e = ApiError::from(e);
                    for job in same {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
                Err(_) => {
                    for job in same {
                        let _ = job.reply.send(Err(ApiError::new(
                            ErrorKind::Internal,
                            "encoding the queries failed inside isovec (a bug); please report it",
                        )));
                    }
                }
            }
        }
    }
}
