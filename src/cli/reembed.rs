//! `isovec reembed`: a collection's texts encoded again into another pipeline, swapped in under
//! the same name once complete (see `store::reembed`).

use anyhow::Context;

use super::common::{BarProgress, PipelineArgs};
use super::store_cmds::{open_store, StoreArgs};
use crate::{Embedder, TransformChoice};

/// `isovec reembed`: re-encode a collection's stored texts into another pipeline.
#[derive(clap::Args, Debug)]
pub struct ReembedArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The new pipeline: the parts named replace the collection's (a new --model brings its own
    /// maximum length unless --max-length is given), the others stay.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Drop the collection's transform.
    #[arg(long, conflicts_with = "transform")]
    pub no_transform: bool,
}

/// Runs `isovec reembed`.
pub fn run(args: ReembedArgs) -> anyhow::Result<()> {
    let mut request = args.pipeline.request()?;
    if args.no_transform {
        request.transform = Some(TransformChoice::None);
    }
    if request.is_empty() {
        anyhow::bail!(
            "name what changes: --model, --pooling, --max-length, --query-prefix/--document-prefix, --transform or \
             --no-transform"
        );
    }
    let options = args.pipeline.model.options()?;
    let store = open_store(&args.target.store, false, &options)?;
    let name = &args.target.collection;
    let collection = store.collection(name)?;
    let spec = collection.spec()?.with_context(|| {
        format!(
            "collection {name:?} has no record of its pipeline; record it first by searching it once with its pipeline \
             (isovec search --model ... --pooling ... [--transform ...])"
        )
    })?;
    let pipeline =
        request.load_changed(&spec, &options).with_context(|| format!("loading the new pipeline of {name}"))?;
    drop(collection);
    let start = std::time::Instant::now();
    let report = store.reembed(name, pipeline.as_ref(), &BarProgress::default())?;
    store.close()?;
    eprintln!(
        "re-embedded {} documents ({} vectors) of {}/{name} in {:.1} s\n  from {}\n  to   {}",
        report.documents,
        report.vectors,
        args.target.store.display(),
        start.elapsed().as_secs_f64(),
        report.from,
        pipeline.id()
    );
    if report.truncated > 0 {
        eprintln!("{} texts were longer than the new encoder's limit and lost their tail", report.truncated);
    }
    Ok(())
}
