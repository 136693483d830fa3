//! `isovec transform export`: a fitted transform as plain arrays, so another engine can apply
//! the same map to its query vectors.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::transform::Transform;

/// `isovec transform …`
#[derive(clap::Subcommand, Debug)]
pub enum TransformCommand {
    /// Write a whitening's mean and matrix as JSON arrays (`DIR/transform.json`).
    Export(TransformExportArgs),
}

/// Options of `isovec transform export`.
#[derive(clap::Args, Debug)]
pub struct TransformExportArgs {
    /// A transform file written by `isovec fit`.
    pub transform: PathBuf,
    /// Folder to write `transform.json` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Name of the file written in the output folder.
pub const ARRAYS_FILE: &str = "transform.json";

/// Runs `isovec transform …`.
pub fn run(command: TransformCommand) -> anyhow::Result<()> {
    match command {
        TransformCommand::Export(args) => {
            let transform =
                Transform::load(&args.transform).with_context(|| format!("loading {}", args.transform.display()))?;
            let path = write_arrays(&transform, &args.transform, &args.out)?;
            eprintln!("wrote {} ({})", path.display(), transform.kind());
            Ok(())
        }
    }
}

/// Writes `transform`'s arrays to `out/transform.json`; a flow is an error that says why.
///
/// The file holds `kind`, `encoder` (the encoder + pooling whose pooled vectors it takes),
/// `input_dims`, `output_dims`, `mean` (input_dims values), `matrix` (input_dims rows of
/// output_dims values) and `formula`: isovec's vector is `normalize((x − mean) · matrix)` for the
/// pooled vector `x`, in f64.
pub fn write_arrays(transform: &Transform, source: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let whitening = match transform {
        Transform::Whiten(w) => w,
        Transform::Flow(_) => bail!(
            "{} is a BERT-flow: a trained non-linear network, which no mean and matrix reproduce; \
             encode queries with isovec instead (`isovec embed --transform {}`, or the Python package's \
             `isovec.Pipeline(transform=...)`), or fit a whitening (`isovec fit whiten`) for another engine",
            source.display(),
            source.display()
        ),
    };
    let projection = whitening.projection();
    let matrix: Vec<Vec<f64>> = projection.row_iter().map(|row| row.iter().copied().collect()).collect();
    let json = serde_json::json!({
        "kind": whitening.kind(),
        "encoder": whitening.encoder(),
        "input_dims": whitening.input_dims(),
        "output_dims": whitening.output_dims(),
        "formula": "y = normalize((x - mean) @ matrix), x the pooled vector of `encoder` (before normalisation), computed in f64",
        "mean": whitening.mean(),
        "matrix": matrix,
    });
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(ARRAYS_FILE);
    crate::atomic_file::write_bytes(&path, &serde_json::to_vec(&json)?)?;
    Ok(path)
}
