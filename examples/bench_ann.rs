//! Runs `isovec bench ann` before it is wired into the binary:
//! `cargo run --release --example bench_ann -- --random 100000` or
//! `cargo run --release --example bench_ann -- --base base.npy --queries queries.npy --gt gt_top100.tsv`.

use clap::Parser;
use isovec::cli::bench_ann::{run_ann_bench, BenchAnnArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchAnnArgs,
}

fn main() -> anyhow::Result<()> {
    run_ann_bench(Cli::parse().args)
}
