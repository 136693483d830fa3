//! The `isovec` command line.

pub mod bench_encode;
pub mod common;
pub mod eval_sts;
pub mod model;

use clap::{Parser, Subcommand};

/// isovec: embedded semantic search with isotropic sentence embeddings.
#[derive(Parser, Debug)]
#[command(name = "isovec", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Install or inspect models.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Evaluate embedding methods.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Measure speed and memory.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `isovec eval …`
#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Spearman ×100 on STS12–16, STS-B and SICK-R.
    Sts(eval_sts::EvalStsArgs),
}

/// `isovec bench …`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Encoding throughput (sentences/s, documents/s) and peak memory.
    Encode(bench_encode::BenchEncodeArgs),
}

/// Runs the command line; errors are printed with their causes.
pub fn main() -> std::process::ExitCode {
    // isovec runs one batch per core; candle's own per-operation threads would compete with
    // that (and spin while waiting), so they are off unless the user asks for them.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Model(cmd) => model::run(cmd),
        Command::Eval(EvalCommand::Sts(args)) => eval_sts::run(args),
        Command::Bench(BenchCommand::Encode(args)) => bench_encode::run(args),
    }
}
