//! `isovec import`: a Parquet file (isovec's export, or one written by Ray, Spark, pandas) into
//! a collection.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::common::{progress_bar, PipelineArgs};
use super::store_cmds::StoreArgs;
use crate::parquet_io::ParquetImport;
use crate::Embedder;

/// Options of `isovec import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The Parquet file: columns `id`, `text`, optional `metadata`, `passage`, `vector`.
    pub file: PathBuf,
    // The pipeline that encodes the texts of a file without vectors (unused otherwise).
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Runs `isovec import`: checks the whole file, then writes it (a bad file changes nothing).
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let bar = progress_bar(0, "checking");
    let file = ParquetImport::verify(&args.file, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let checked = start.elapsed().as_secs_f64();
    let options = args.pipeline.model.options()?;
    let store = super::store_cmds::open_store(&args.target.store, true, &options)?;
    let name = &args.target.collection;
    let existing = store.list_collections()?.iter().any(|(n, _)| n == name);
    // Texts to encode: by the existing collection's pipeline (parts named checked against it),
    // else by the pipeline named.
    let pipeline = match (file.info().has_vectors, existing) {
        (true, _) => None,
        (false, true) => Some(store.collection(name)?.pipeline_for(&args.pipeline.request()?)?),
        (false, false) => Some(args.pipeline.load().context("loading the pipeline that encodes the file's texts")?),
    };
    let bar = progress_bar(file.info().rows, if pipeline.is_some() { "encoding" } else { "importing" });
    let embedder = pipeline.as_deref().map(|p| p as &dyn Embedder);
    let report = store.import_parquet(&args.target.collection, &file, embedder, &|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    store.close()?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "imported {} rows of {} into {}/{} ({} new, {} replaced documents{}) in {secs:.1} s ({checked:.1} s checking the file), {:.0} rows/s",
        report.rows,
        args.file.display(),
        args.target.store.display(),
        args.target.collection,
        report.inserted,
        report.replaced,
        if report.encoded { ", texts encoded" } else { ", vectors taken as they are" },
        report.rows as f64 / secs.max(1e-9)
    );
    Ok(())
}
