//! Concurrent text queries encoded together: callers hand their texts to one task, which gathers
//! what arrives within a short window and encodes each embedder's texts as one batch (a batch of
//! 32 costs far less than 32 batches of one), then hands each caller its vectors. A caller alone
//! is encoded at once: the window is only waited for when other callers are on their way.
//!
//! Batches are encoded on one long-lived thread of their own. Used by
//! [`crate::store::AsyncStore`] and by `isovec serve`.

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
        // Counted until answered or dropped (a caller whose request was cancelled must not
        // leave the count up, or every lone caller after it would wait out the window).
        let _waiting = Waiting::count(&self.waiting);
        self.jobs.send(Job { embedder, texts, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// One caller in [`QueryBatcher::waiting`], for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether two handles share one embedder (the data pointer; a vtable may be duplicated).
fn same_embedder(a: &Arc<dyn Embedder>, b: &Arc<dyn Embedder>) -> bool {
    std::ptr::eq(Arc::as_ptr(a) as *const (), Arc::as_ptr(b) as *const ())
}

async fn run(mut rx: mpsc::Receiver<Job>, waiting: Arc<AtomicUsize>) {
    let thread = match encoding_thread() {
        Ok(thread) => thread,
        Err(e) => {
            // Every caller gets the reason instead of vectors.
            let message = e.to_string();
            while let Some(job) = rx.recv().await {
                let _ = job.reply.send(Err(Error::Background(message.clone())));
            }
            return;
        }
    };
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
            match encode(&thread, embedder.clone(), all).await {
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
                        let _ = job.reply.send(encode(&thread, embedder.clone(), job.texts).await);
                    }
                }
            }
        }
    }
}

/// A request to the encoding thread: the texts, their embedder, where to send the vectors.
type Encoding = (Arc<dyn Embedder>, Vec<String>, oneshot::Sender<Result<Vec<Vec<f32>>>>);

/// The thread that encodes every batch. Always the same one: a forward pass on a thread that
/// has not run one lately pays for its allocator arena and caches again (a query encoded on a
/// fresh thread took 1.3 ms longer than on the caller's, 4.8 against 3.3 ms p50).
fn encoding_thread() -> Result<std::sync::mpsc::Sender<Encoding>> {
    let (tx, rx) = std::sync::mpsc::channel::<Encoding>();
    std::thread::Builder::new()
        .name("isovec-query-encoder".into())
        .spawn(move || {
            // Ends when every sender is gone (the batching task has stopped).
            for (embedder, texts, reply) in rx {
                let n = texts.len();
                let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    embedder.embed_queries(&refs)
                }));
                let answer = match encoded {
                    Ok(Ok(vectors)) if vectors.len() == n => Ok(vectors),
                    Ok(Ok(vectors)) => {
                        Err(Error::Model(format!("the embedder returned {} vectors for {n} texts", vectors.len())))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::Background(
                        "encoding the queries failed inside isovec (a bug); please report it".into(),
                    )),
                };
                let _ = reply.send(answer);
            }
        })
        .map_err(|e| Error::Background(format!("could not start the query encoding thread: {e}")))?;
    Ok(tx)
}

/// `embedder`'s query vectors of `texts`, from the encoding thread.
async fn encode(
    thread: &std::sync::mpsc::Sender<Encoding>,
    embedder: Arc<dyn Embedder>,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>> {
    let (reply, answer) = oneshot::channel();
    thread.send((embedder, texts, reply)).map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PipelineId;

    /// Each text's vector: its length, then zeros.
    struct Lengths(PipelineId);

    impl Embedder for Lengths {
        fn id(&self) -> &PipelineId {
            &self.0
        }
        fn dims(&self) -> usize {
            4
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|t| vec![t.len() as f32, 0.0, 0.0, 0.0]).collect())
        }
    }

    #[test]
    fn a_cancelled_caller_is_no_longer_counted() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let batcher = QueryBatcher::start();
            let embedder: Arc<dyn Embedder> = Arc::new(Lengths(PipelineId::external("lengths", 4)));
            // A call dropped before its answer, as a cancelled request's is.
            let call = batcher.embed_queries(embedder.clone(), vec!["a".into()]);
            tokio::select! {
                biased;
                _ = call => panic!("answered without the batching task"),
                _ = std::future::ready(()) => {}
            }
            assert_eq!(batcher.waiting.load(Ordering::SeqCst), 0);
            let vectors = batcher.embed_queries(embedder, vec!["b".into(), "cc".into()]).await.unwrap();
            assert_eq!(vectors, [[1.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]);
            assert_eq!(batcher.waiting.load(Ordering::SeqCst), 0);
        });
    }
}
