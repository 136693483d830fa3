//! `isovec bench queries`: text queries from concurrent clients through the embedded async API
//! ([`crate::store::AsyncStore`]), whose micro-batches encode concurrent queries together; the
//! in-process side of `scripts/bench-serve.py`, which puts it beside `isovec serve` and Chroma's
//! server on the same queries.
//!
//! Each client is a task that sends its share of the queries (client `c` takes queries `c`,
//! `c + clients`, …) one at a time and awaits each answer. Per client count: queries/s over the
//! whole run and the p50/p99 latency of a query; the hits' ids go to `--json` so the caller can
//! check them (recall).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::bench_hybrid::Latencies;
use crate::store::{AsyncStore, SearchParams, Store};
use crate::Embedder;

/// Arguments of `isovec bench queries`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchQueriesArgs {
    /// Store holding the collection (with its recorded pipeline).
    #[arg(long)]
    pub store: PathBuf,
    /// Collection to query.
    #[arg(long, default_value = "default")]
    pub collection: String,
    /// Query texts, one per line.
    #[arg(long)]
    pub queries: PathBuf,
    /// Concurrent client counts, one run each, comma-separated.
    #[arg(long, default_value = "1,4,16,64", value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Hits per query.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Also write the figures and every query's hit ids as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: BenchQueriesArgs) -> anyhow::Result<()> {
    let queries: Vec<String> =
        crate::eval::text_file::read_lines(&args.queries)?.into_iter().filter(|q| !q.trim().is_empty()).collect();
    if queries.is_empty() {
        bail!("{} holds no query text; give a file with one query per line", args.queries.display());
    }
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients needs counts of at least 1, e.g. 1,4,16,64");
    }
    let store = Arc::new(Store::open(&args.store)?);
    let collection = store.collection(&args.collection)?;
    let embedder: Arc<dyn Embedder> = collection
        .pipeline()
        .with_context(|| format!("collection {:?} has no pipeline to encode text queries", args.collection))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let queries = Arc::new(queries);
    let rows = runtime.block_on(async {
        let api = AsyncStore::new(store.clone(), embedder);
        // Warm-up: the index and the model's buffers.
        clients_run(&api, &args.collection, Arc::new(queries[..queries.len().min(64)].to_vec()), 4, args.k).await?;
        let mut rows = Vec::new();
        for &clients in &args.clients {
            let (wall, latencies, ids) = clients_run(&api, &args.collection, queries.clone(), clients, args.k).await?;
            rows.push((clients, queries.len() as f64 / wall.as_secs_f64(), Latencies::new(&latencies), ids));
        }
        anyhow::Ok(rows)
    })?;
    println!("| clients | queries/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|");
    for (clients, qps, latencies, _) in &rows {
        println!("| {clients} | {qps:.0} | {:.1} | {:.1} |", latencies.p(50.0), latencies.p(99.0));
    }
    if let Some(path) = &args.json {
        let runs: Vec<serde_json::Value> = rows
            .iter()
            .map(|(clients, qps, latencies, ids)| {
                let mut figures = latencies.json();
                figures["clients"] = (*clients).into();
                figures["qps"] = (*qps).into();
                figures["ids"] = serde_json::json!(ids);
                figures
            })
            .collect();
        std::fs::write(path, serde_json::to_vec(&serde_json::json!({"runs": runs}))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `clients` tasks sharing `queries`: the wall time, each query's latency and hit ids.
async fn clients_run(
    api: &AsyncStore,
    collection: &str,
    queries: Arc<Vec<String>>,
    clients: usize,
    k: usize,
) -> anyhow::Result<(Duration, Vec<Duration>, Vec<Vec<String>>)> {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (api, collection, queries) = (api.clone(), collection.to_string(), queries.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            for i in (c..queries.len()).step_by(clients) {
                let asked = Instant::now();
                let hits = api.search_text(&collection, &queries[i], SearchParams::k(k)).await?;
                answered.push((i, asked.elapsed(), hits.into_iter().map(|h| h.id).collect::<Vec<_>>()));
            }
            Ok::<_, crate::Error>(answered)
        }));
    }
    let mut latencies = vec![Duration::ZERO; queries.len()];
    let mut ids = vec![Vec::new(); queries.len()];
    for task in tasks {
        for (i, latency, hits) in task.await.context("a client task failed")?? {
            latencies[i] = latency;
            ids[i] = hits;
        }
    }
    Ok((start.elapsed(), latencies, ids))
}
