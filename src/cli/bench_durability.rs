//! `isovec bench durability`: what surviving a power cut costs — single-document upserts/s and
//! bulk documents/s with [`Durability::Fsync`] (the default: sled's files, new blob files and
//! their folders fsynced before a write returns) and with [`Durability::Flush`] (sled's flush
//! alone, isovec's behaviour before fsync: survives a process crash, not a power cut).
//!
//! Both are measured in one run, on the same file system, in alternating rounds (the order
//! swaps each round, so drift in the machine's load falls on both), each round on a new store;
//! the table gives each figure's median over the rounds. No model is needed: the documents
//! have random vectors and short synthetic texts, so the figures are the write path's alone.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::cli::bench_ann::bench_dir;
use crate::store::{CollectionConfig, Doc, Durability, Store};
use crate::{EncoderId, PipelineId};

/// Arguments of `isovec bench durability`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchDurabilityArgs {
    /// Single-document upserts timed per round.
    #[arg(long, default_value_t = 300)]
    pub single: usize,
    /// Documents upserted in bulk per round.
    #[arg(long, default_value_t = 20_000)]
    pub bulk: usize,
    /// Documents per bulk upsert.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    /// Rounds per mode (the median is reported; at least 3).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Folder to build the stores in (on the file system to measure); must be new or empty.
    /// Default: a temporary folder, removed afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One round's figures for one mode.
struct Round {
    single_per_s: f64,
    bulk_per_s: f64,
}

pub fn run(args: BenchDurabilityArgs) -> anyhow::Result<()> {
    if args.rounds < 3 {
        bail!("--rounds {} is too few for a median; give at least 3", args.rounds);
    }
    if args.single == 0 || args.bulk == 0 || args.batch == 0 || args.dims == 0 {
        bail!("--single, --bulk, --batch and --dims must be at least 1");
    }
    let (dir, _cleanup) = bench_dir(args.dir.as_ref(), "durability");
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty; give a new or empty folder with --dir", dir.display());
    }
    let modes = [Durability::Fsync, Durability::Flush];
    let mut results: Vec<Vec<Round>> = vec![Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for m in order {
            let store_dir = dir.join(format!("round{round}-{:?}", modes[m]).to_lowercase());
            let r = run_round(&args, &store_dir, modes[m]).with_context(|| format!("round {round}, {:?}", modes[m]))?;
            eprintln!(
                "round {}/{} {:?}: {:.0} single upserts/s, {:.0} bulk docs/s",
                round + 1,
                args.rounds,
                modes[m],
                r.single_per_s,
                r.bulk_per_s
            );
            std::fs::remove_dir_all(&store_dir).with_context(|| format!("removing {}", store_dir.display()))?;
            results[m].push(r);
        }
    }
    let single: Vec<f64> = results.iter().map(|rs| median(rs.iter().map(|r| r.single_per_s).collect())).collect();
    let bulk: Vec<f64> = results.iter().map(|rs| median(rs.iter().map(|r| r.bulk_per_s).collect())).collect();
    let rows = vec![
        vec![
            "fsync (default: survives a power cut)".to_string(),
            format!("{:.0}", single[0]),
            format!("{:.0}", bulk[0]),
        ],
        vec![
            "flush (survives a process crash only)".to_string(),
            format!("{:.0}", single[1]),
            format!("{:.0}", bulk[1]),
        ],
        vec![
            "fsync / flush".to_string(),
            format!("{:.2}×", single[0] / single[1]),
            format!("{:.2}×", bulk[0] / bulk[1]),
        ],
    ];
    println!(
        "durability: median of {} rounds; {} single-document upserts and {} documents in batches of {}, {} dims, in {}",
        args.rounds,
        args.single,
        args.bulk,
        args.batch,
        args.dims,
        dir.display()
    );
    print!("{}", crate::table::markdown(&["durability", "single upserts/s", "bulk docs/s"], 1, rows));
    Ok(())
}

/// A new store in `dir`: `single` upserts of one document, then `bulk` documents in batches.
fn run_round(args: &BenchDurabilityArgs, dir: &std::path::Path, durability: Durability) -> anyhow::Result<Round> {
    let store = Store::open(dir)?.with_durability(durability);
    let c = store.create_collection("bench", CollectionConfig::new(args.dims, pipeline()))?;
    let start = Instant::now();
    for i in 0..args.single {
        c.upsert(&[doc(i as u64, args.dims)])?;
    }
    let single_per_s = args.single as f64 / start.elapsed().as_secs_f64();
    let base = args.single as u64;
    let start = Instant::now();
    let mut done = 0;
    while done < args.bulk {
        let n = args.batch.min(args.bulk - done);
        let docs: Vec<Doc> = (0..n).map(|j| doc(base + (done + j) as u64, args.dims)).collect();
        c.upsert(&docs)?;
        done += n;
    }
    let bulk_per_s = args.bulk as f64 / start.elapsed().as_secs_f64();
    drop(c);
    drop(store);
    Ok(Round { single_per_s, bulk_per_s })
}

/// Document `i`: a pseudo-random vector and a short text of words from a small vocabulary.
fn doc(i: u64, dims: usize) -> Doc {
    let mut s = i.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let vector: Vec<f32> = (0..dims).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect();
    let text = (0..40).map(|_| format!("w{}", next() % 5_000)).collect::<Vec<_>>().join(" ");
    Doc { id: format!("doc-{i}"), text, metadata: serde_json::json!({"n": i}), vector }
}

/// The collection's pipeline id: random vectors come from no encoder.
fn pipeline() -> PipelineId {
    PipelineId {
        encoder: EncoderId {
            model: "bench-durability-random".into(),
            weights_sha256: "0".repeat(64),
            files_sha256: None,
            pooling: "none".into(),
            max_length: 0,
            prefixes: Default::default(),
        },
        transform: None,
        normalize: true,
    }
}

/// The median of `v` (the mean of the middle two for an even length).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
