//! `isovec export`: a collection as one Parquet file.

use std::path::PathBuf;
use std::time::Instant;

use super::common::progress_bar;
use super::store_cmds::StoreArgs;
use crate::store::Store;

/// Options of `isovec export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The Parquet file to write (replaced if it exists).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `isovec export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let store = Store::open_existing(&args.target.store)?;
    let collection = store.collection(&args.target.collection)?;
    let bar = progress_bar(collection.count()?, "exporting");
    let start = Instant::now();
    let report = collection.export_parquet(&args.out, &|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "exported {} documents ({} rows) of {}/{} to {} in {secs:.1} s, {:.0} rows/s",
        report.documents,
        report.rows,
        args.target.store.display(),
        args.target.collection,
        args.out.display(),
        report.rows as f64 / secs.max(1e-9)
    );
    Ok(())
}
