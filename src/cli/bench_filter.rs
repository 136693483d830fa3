//! `isovec bench filter`: what a metadata filter costs a dense search. For filters that allow
//! about 90 %, 10 %, 1 % and 0.1 % of the documents: the time to find the allowed documents by
//! the metadata index and by evaluating the filter on every document (what isovec did before the
//! index), both measured in the same run on the same collection, median of the rounds; and the
//! p50/p99 latency of filtered searches (k = 10), which use the index.
//!
//! No model is needed: documents have pseudo-random vectors and metadata
//! `{"group": i % 10, "bucket": i % 1000, "year": 2000 + i % 25, "tags": [...]}`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;

use crate::cli::bench_ann::bench_dir;
use crate::cli::bench_durability::median;
use crate::store::{CollectionConfig, Doc, Filter, SearchParams, Store};
use crate::PipelineId;

/// Arguments of `isovec bench filter`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchFilterArgs {
    /// Documents in the collection.
    #[arg(long, default_value_t = 100_000)]
    pub docs: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    /// Filtered searches timed per filter.
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Rounds of the selection timing (the median is reported; at least 3).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Folder to build the store in; must be new or empty. Default: a temporary folder.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The filters measured, with the share of documents each allows by construction.
const FILTERS: [(&str, &str); 5] = [
    ("NOT group=3", "90 %"),
    ("group=3", "10 %"),
    ("year>=2020 AND group IN (1, 2)", "4 %"),
    ("bucket IN (7, 8, 9, 10, 11, 12, 13, 14, 15, 16)", "1 %"),
    ("bucket=7", "0.1 %"),
];

pub fn run(args: BenchFilterArgs) -> anyhow::Result<()> {
    if args.rounds < 3 {
        bail!("--rounds {} is too few for a median; give at least 3", args.rounds);
    }
    if args.docs == 0 || args.dims == 0 || args.queries == 0 {
        bail!("--docs, --dims and --queries must be at least 1");
    }
    let (dir, _cleanup) = bench_dir(args.dir.as_ref(), "filter");
    let store = Store::open(&dir)?;
    let c = store
        .create_collection("bench", CollectionConfig::new(args.dims, PipelineId::external("random", args.dims)))?;
    let start = Instant::now();
    for chunk in (0..args.docs).collect::<Vec<_>>().chunks(10_000) {
        let docs: Vec<Doc> = chunk.iter().map(|&i| doc(i as u64, args.dims)).collect();
        c.upsert(&docs)?;
    }
    eprintln!("built {} documents in {:.1} s", args.docs, start.elapsed().as_secs_f64());
    let queries: Vec<Vec<f32>> = (0..args.queries).map(|i| vector(u64::MAX - i as u64, args.dims)).collect();
    let mut rows = Vec::new();
    for (expr, share) in FILTERS {
        let filter: Filter = expr.parse()?;
        let repeats = 20;
        let (mut indexed, mut scanned, mut allowed) = (Vec::new(), Vec::new(), 0);
        for _ in 0..args.rounds {
            let (i, s, n) = c.time_filter_selection(&filter, repeats)?;
            indexed.push(i / repeats as f64 * 1e3);
            scanned.push(s / repeats as f64 * 1e3);
            allowed = n;
        }
        let params = SearchParams::k(10).with_filter(filter);
        let mut latencies = Vec::with_capacity(queries.len());
        for q in &queries {
            let start = Instant::now();
            std::hint::black_box(c.search(q, &params)?);
            latencies.push(start.elapsed().as_secs_f64() * 1e3);
        }
        latencies.sort_by(f64::total_cmp);
        let (index_ms, scan_ms) = (median(indexed), median(scanned));
        rows.push(vec![
            format!("`{expr}`"),
            format!("{share} ({allowed})"),
            format!("{index_ms:.3}"),
            format!("{scan_ms:.3}"),
            format!("{:.1}×", scan_ms / index_ms),
            format!("{:.2}", latencies[latencies.len() / 2]),
            format!("{:.2}", latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]),
        ]);
    }
    println!(
        "filter: {} documents, {} dims, k = 10; selection: median of {} rounds of 20; searches: {} queries",
        args.docs, args.dims, args.rounds, args.queries
    );
    print!(
        "{}",
        crate::table::markdown(
            &[
                "filter",
                "allows",
                "selection by index (ms)",
                "by evaluating every document (ms)",
                "ratio",
                "search p50 (ms)",
                "search p99 (ms)"
            ],
            2,
            rows
        )
    );
    Ok(())
}

/// Document `i`: a pseudo-random vector, a short text, and metadata of known selectivity.
fn doc(i: u64, dims: usize) -> Doc {
    Doc {
        id: format!("d{i}"),
        text: format!("document {i}"),
        metadata: serde_json::json!({
            "group": i % 10, "bucket": i % 1000, "year": 2000 + i % 25, "tags": [format!("t{}", i % 7), "all"]
        }),
        vector: vector(i, dims),
    }
}

fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dims)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}
