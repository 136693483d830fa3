//! The `isovec` command line.

pub mod advise;
pub mod analyze;
pub mod bench_ann;
pub mod bench_durability;
pub mod bench_encode;
pub mod bench_filter;
pub mod bench_hybrid;
#[cfg(feature = "async")]
pub mod bench_queries;
pub mod common;
pub mod embed;
pub mod eval_retrieval;
pub mod eval_sts;
pub mod export;
pub mod fit;
pub mod get;
pub mod import;
pub mod model;
pub mod npy;
pub mod reembed;
pub mod remote;
pub mod report;
#[cfg(feature = "server")]
pub mod serve;
pub mod store_cmds;
pub mod store_source;
pub mod train;
pub mod transform_export;

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
    /// Encode texts with a pipeline (JSON lines, or a .npy matrix).
    Embed(embed::EmbedArgs),
    /// Fit a whitening or BERT-flow transform on a corpus, without labels.
    Fit(fit::FitArgs),
    /// Anisotropy diagnostics before and after each transform, and the token-frequency table.
    Analyze(analyze::AnalyzeArgs),
    /// Add or replace documents in a store collection (JSON lines or plain text), encoded by a
    /// pipeline or with their vectors made outside isovec (--vectors FILE.npy).
    Index(IndexCmd),
    /// Search a store collection by text (with the collection's recorded pipeline), or by a query
    /// vector made outside isovec (--query-vector FILE.npy).
    Search(SearchCmd),
    /// Which pipeline retrieves best on a collection's own texts, without labels: pseudo-queries
    /// cut out of the texts rank every candidate (raw, transforms, SimCSE, BM25, hybrid fusions);
    /// records the fusion for `--alpha auto`, and `--apply` re-embeds into the recommendation.
    Advise(advise::AdviseArgs),
    /// Encode a collection's texts again into another pipeline (e.g. a transform fitted with
    /// `isovec fit --from store:DIR#COLLECTION`); swapped in under the same name once complete.
    Reembed(reembed::ReembedArgs),
    /// Delete documents by id.
    Delete(store_cmds::DeleteArgs),
    /// Print documents by id, or those a filter allows, as JSON lines.
    Get(store_cmds::GetArgs),
    /// Counts and index state per collection.
    Stats(store_cmds::StatsArgs),
    /// Rebuild a collection's index without deleted entries.
    Compact(store_cmds::CompactArgs),
    /// Fine-tune the encoder (SimCSE).
    Train(train::Args),
    /// Write a collection to a Parquet file (id, text, metadata, passage, vector).
    Export(export::ExportArgs),
    /// Load a Parquet file into a collection (vectors taken as they are, or texts encoded).
    Import(import::ImportArgs),
    /// Fitted transforms for other engines.
    #[command(subcommand)]
    Transform(transform_export::TransformCommand),
    /// STS and retrieval comparisons and anisotropy charts: one Markdown report with SVG charts.
    Report(report::ReportArgs),
    /// Serve the store over HTTP/JSON (the Python package's collection API), so that many
    /// processes can use it at once.
    #[cfg(feature = "server")]
    Serve(serve::ServeArgs),
}

/// `isovec index`: the store options plus the pipeline that encodes the documents, or their
/// vectors made outside isovec.
#[derive(clap::Args, Debug)]
pub struct IndexCmd {
    #[command(flatten)]
    pub index: store_cmds::IndexArgs,
    #[command(flatten)]
    pub vectors: store_cmds::VectorsArgs,
    #[command(flatten)]
    pub pipeline: common::PipelineArgs,
}

/// `isovec search`: the store options plus the pipeline that encodes the query, or its vector.
#[derive(clap::Args, Debug)]
pub struct SearchCmd {
    #[command(flatten)]
    pub search: store_cmds::SearchArgs,
    #[command(flatten)]
    pub query_vector: store_cmds::QueryVectorArgs,
    #[command(flatten)]
    pub pipeline: common::PipelineArgs,
}

/// `isovec eval …`
#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Spearman ×100 on STS12–16, STS-B and SICK-R.
    Sts(eval_sts::EvalStsArgs),
    /// BEIR retrieval per pipeline: nDCG@10, MRR@10, recall@k through HNSW and exact search.
    Retrieval(eval_retrieval::EvalRetrievalArgs),
}

/// `isovec bench …`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Encoding throughput (sentences/s, documents/s) and peak memory.
    Encode(bench_encode::BenchEncodeArgs),
    /// The HNSW index on a fixed vector set: build, recall@10 by ef, queries/s, reopen time.
    Ann(bench_ann::BenchAnnArgs),
    /// Full-text index beside HNSW on a fixed text set: text-index build time, disk per document,
    /// text query latency (p50/p90/p99) in dense, lexical and hybrid mode.
    Hybrid(bench_hybrid::BenchHybridArgs),
    /// SimCSE training steps/s and tokens/s.
    Train(train::BenchTrainArgs),
    /// What surviving a power cut costs: single upserts/s and bulk docs/s, fsync against flush.
    Durability(bench_durability::BenchDurabilityArgs),
    /// What a metadata filter costs: finding the allowed documents by the index against
    /// evaluating every document, and filtered search latency.
    Filter(bench_filter::BenchFilterArgs),
    /// Text queries from concurrent clients through the embedded async API: queries/s and
    /// p50/p99 latency per client count (the in-process side of scripts/bench-serve.py).
    #[cfg(feature = "async")]
    Queries(bench_queries::BenchQueriesArgs),
}

/// Runs the command line; errors are printed with their causes.
pub fn main() -> std::process::ExitCode {
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

/// The embedder of a collection from the pipeline arguments: the collection's recorded pipeline,
/// every part named checked against it; for a new collection, the pipeline named.
fn embedder_for(args: &common::PipelineArgs) -> anyhow::Result<Box<store_cmds::EmbedderFor<'_>>> {
    let request = args.request()?;
    let options = args.model.options()?;
    Ok(Box::new(move |collection| {
        let pipeline = match collection {
            Some(c) => c.pipeline_for(&request)?,
            None => request.load(&options)?,
        };
        Ok(pipeline as std::sync::Arc<dyn crate::Embedder>)
    }))
}

/// Refuses pipeline options with `--server`: the server's collections encode with the pipelines
/// they record, and no request names a model or transform file.
fn no_pipeline_over_http(args: &common::PipelineArgs) -> anyhow::Result<()> {
    if let Some(path) = args.model.model.as_ref().or(args.transform.as_ref()) {
        return Err(remote::no_path_over_http("--model/--transform", path));
    }
    if args.pooling.is_some()
        || args.query_prefix.is_some()
        || args.document_prefix.is_some()
        || args.model.max_length.is_some()
    {
        anyhow::bail!(
            "with --server, the collection encodes with the pipeline it records: leave out --pooling, the prefixes and \
             --max-length"
        );
    }
    Ok(())
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Model(cmd) => model::run(cmd),
        Command::Eval(EvalCommand::Sts(args)) => eval_sts::run(args),
        Command::Eval(EvalCommand::Retrieval(args)) => eval_retrieval::run(args),
        Command::Bench(BenchCommand::Encode(args)) => bench_encode::run(args),
        Command::Bench(BenchCommand::Ann(args)) => bench_ann::run_ann_bench(args),
        Command::Bench(BenchCommand::Hybrid(args)) => bench_hybrid::run(args),
        Command::Bench(BenchCommand::Filter(args)) => bench_filter::run(args),
        #[cfg(feature = "async")]
        Command::Bench(BenchCommand::Queries(args)) => bench_queries::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Fit(args) => fit::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Index(cmd) if cmd.index.target.server.is_some() => {
            if let Some(path) = &cmd.vectors.vectors {
                return Err(remote::no_path_over_http("--vectors", path));
            }
            no_pipeline_over_http(&cmd.pipeline)?;
            remote::index(&remote::Remote::of(&cmd.index.target)?.expect("a server"), &cmd.index)
        }
        Command::Search(cmd) if cmd.search.target.server.is_some() => {
            no_pipeline_over_http(&cmd.pipeline)?;
            let remote = remote::Remote::of(&cmd.search.target)?.expect("a server");
            remote::search(&remote, &cmd.search, &cmd.query_vector)
        }
        Command::Index(cmd) if cmd.vectors.vectors.is_some() => {
            store_cmds::index_vectors(&cmd.index, &cmd.vectors).map(drop)
        }
        Command::Index(cmd) => {
            let options = cmd.pipeline.model.options()?;
            store_cmds::index(&cmd.index, &options, &embedder_for(&cmd.pipeline)?).map(drop)
        }
        Command::Search(cmd) => {
            let options = cmd.pipeline.model.options()?;
            store_cmds::search_with(&cmd.search, &cmd.query_vector, &options, &embedder_for(&cmd.pipeline)?)
        }
        Command::Advise(args) => advise::run(args),
        Command::Reembed(args) => reembed::run(args),
        Command::Delete(args) => match remote::Remote::of(&args.target)? {
            Some(server) => {
                let n = remote::delete(&server, &args.target, &args.ids)?;
                eprintln!("deleted {n} of {} ids from {}", args.ids.len(), args.target.collection);
                Ok(())
            }
            None => store_cmds::delete(&args),
        },
        Command::Get(args) => get::run(&args),
        Command::Stats(args) => store_cmds::stats(&args),
        Command::Compact(args) => store_cmds::compact(&args),
        Command::Train(args) => train::run(args),
        Command::Bench(BenchCommand::Train(args)) => train::run_bench(args),
        Command::Bench(BenchCommand::Durability(args)) => bench_durability::run(args),
        Command::Report(args) => report::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Transform(cmd) => transform_export::run(cmd),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(args),
    }
}
