//! `isovec embed`: texts to vectors, printed as JSON or written as a `.npy` matrix.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::common::{progress_bar, PipelineArgs};
use crate::store::vecfile::{write_npy, Vectors};
use crate::Embedder;

/// Options of `isovec embed`.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Read texts from this file, one a line (`.gz` is gunzipped), instead of the arguments.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write the vectors here as a `.npy` float32 matrix instead of printing JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Texts to embed.
    pub texts: Vec<String>,
}

/// Runs `isovec embed`.
pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let texts = match &args.input {
        Some(path) => crate::eval::text_file::read_lines(path)?,
        None => args.texts.clone(),
    };
    if texts.is_empty() {
        bail!("nothing to embed: give texts as arguments or --input FILE");
    }
    let pipeline = args.pipeline.load()?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let bar = progress_bar(refs.len() as u64, "embedding");
    let embedded = pipeline.embed_with_progress(&refs, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if embedded.truncated > 0 {
        eprintln!(
            "{} of {} texts were truncated at {} tokens",
            embedded.truncated,
            refs.len(),
            pipeline.encoder().tokenizer().max_length()
        );
    }
    match &args.out {
        Some(path) => {
            let vectors = Vectors { dims: pipeline.dims(), data: embedded.vectors.concat() };
            write_npy(path, &vectors).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{} × {} vectors written to {}", refs.len(), pipeline.dims(), path.display());
        }
        None => {
            for (text, v) in texts.iter().zip(&embedded.vectors) {
                println!("{}", serde_json::json!({ "text": text, "vector": v }));
            }
        }
    }
    Ok(())
}
