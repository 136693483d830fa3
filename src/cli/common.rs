//! Options and helpers shared by the subcommands.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use candle_core::{DType, Device};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::encoder::{default_model_dir, Encoder, EncoderOptions, Pooling};
use crate::progress::Progress;
use crate::{Pipeline, PipelineRequest, Prefixes, TransformChoice};

/// Which model, and how to run it.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Hugging Face BERT folder (default: a collection's recorded model, else the installed
    /// default model: `isovec model fetch`, or the folder `ISOVEC_MODEL` names).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Maximum tokens per text; longer texts are truncated (default: the model's maximum).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Precision of weights and activations. bf16 on a CPU with AVX-512 BF16: the dense layers
    /// multiply in bfloat16 with f32 sums, about 1.6× f32's speed (README: scores beside
    /// f32's); on other CPUs bf16 halves the dense weights' memory and runs at about f32's
    /// speed. int8 (CPU with AVX2): f32 weights, the dense layers' products in 8-bit integers,
    /// faster than f32 (README: scores beside f32's). On a GPU, f16 and bf16 run throughout;
    /// f16 on a CPU runs, but slower than f32. Vectors come out as f32 either way. The SQLite
    /// extension takes the same variable.
    #[arg(long, env = "ISOVEC_DTYPE", value_enum, ignore_case = true, default_value_t = Precision::F32)]
    pub dtype: Precision,
}

impl ModelArgs {
    /// The model folder to use.
    pub fn model_dir(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(default_model_dir)
    }

    /// The encoder options these arguments ask for.
    pub fn options(&self) -> anyhow::Result<EncoderOptions> {
        Ok(EncoderOptions {
            max_length: self.max_length,
            batch_size: self.batch_size,
            device: self.device.open()?,
            dtype: self.dtype.dtype(),
            int8: self.dtype == Precision::Int8,
        })
    }

    /// Loads the encoder.
    pub fn load(&self) -> anyhow::Result<Arc<Encoder>> {
        let dir = self.model_dir();
        if self.model.is_none() && !dir.join("model.safetensors").is_file() {
            bail!(
                "the default model is not installed at {}: run `isovec model fetch` (or pass --model DIR)",
                dir.display()
            );
        }
        let options = self.options()?;
        let encoder =
            Encoder::load(&dir, options).with_context(|| format!("loading the model from {}", dir.display()))?;
        Ok(Arc::new(encoder))
    }
}

/// Where the model runs.
#[derive(Args, Clone, Debug, serde::Serialize)]
pub struct DeviceArgs {
    /// Where the model runs: `cuda` needs a binary built with `--features cuda` and a GPU; `auto`
    /// takes the GPU when there is one.
    #[arg(long, value_enum, ignore_case = true, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    /// Which GPU `--device cuda` opens (0 is the first).
    #[arg(long, default_value_t = 0)]
    pub cuda_device: usize,
}

/// The values of `--device`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda,
    Auto,
}

impl DeviceArgs {
    /// Opens the device asked for.
    pub fn open(&self) -> anyhow::Result<Device> {
        let ordinal = self.cuda_device;
        match self.device {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Auto => Ok(Device::cuda_if_available(ordinal).unwrap_or(Device::Cpu)),
            DeviceKind::Cuda => Device::new_cuda(ordinal).with_context(|| {
                format!("cannot open CUDA device {ordinal}: is this binary built with `--features cuda`, and is a GPU present?")
            }),
        }
    }
}

impl std::fmt::Display for DeviceArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.device {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda => write!(f, "cuda:{}", self.cuda_device),
            DeviceKind::Auto => f.write_str("auto"),
        }
    }
}

/// The values of `--dtype`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F16,
    Bf16,
    /// f32 weights, the dense layers' products in 8-bit integers (CPU with AVX2).
    Int8,
}

impl Precision {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 | Precision::Int8 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// A pipeline: model + pooling + prefixes + optional transform file. For a collection that
/// records its pipeline, every part left out is the collection's, and a part given must agree.
#[derive(Args, Clone, Debug)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Pooling: cls, cls_before_pooler, mean, first_last_avg, emb_last_avg, last2avg, static
    /// (default: the collection's, else mean).
    #[arg(long)]
    pub pooling: Option<String>,
    /// Text put before every query, e.g. "query: " for e5-style models (part of the pipeline).
    #[arg(long)]
    pub query_prefix: Option<String>,
    /// Text put before every document, e.g. "passage: " for e5-style models (part of the pipeline).
    #[arg(long)]
    pub document_prefix: Option<String>,
    /// A fitted transform file (`isovec fit whiten|flow`; default: the collection's, else none).
    #[arg(long)]
    pub transform: Option<PathBuf>,
}

impl PipelineArgs {
    /// The parts of the pipeline these arguments name (the encoder options aside).
    pub fn request(&self) -> anyhow::Result<PipelineRequest> {
        let prefixes = Prefixes::named(self.query_prefix.clone(), self.document_prefix.clone());
        Ok(PipelineRequest {
            model: self.model.model.clone(),
            pooling: self.pooling.as_deref().map(str::parse::<Pooling>).transpose()?,
            max_length: self.model.max_length,
            prefixes,
            transform: self.transform.clone().map(TransformChoice::File),
        })
    }

    /// Loads the pipeline named, the defaults for the parts left out (not a collection's).
    pub fn load(&self) -> anyhow::Result<Arc<Pipeline>> {
        let request = self.request()?;
        request.load(&self.model.options()?).with_context(|| match &request.model {
            Some(dir) => format!("loading the pipeline of the model in {}", dir.display()),
            None => "loading the pipeline of the default model".to_string(),
        })
    }
}

/// The benchmark data folder: `--data`, else `$ISOVEC_DATA`.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Benchmark data folder (the layout of shared/data: senteval/, retrieval/, ann/ …).
    #[arg(long, env = "ISOVEC_DATA")]
    pub data: PathBuf,
}

/// A progress bar for `len` items, drawn on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta}) {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Progress bars on stderr, one per stage: a stage's name is printed when it starts, and a
/// counted stage gets a bar (hidden when stderr is not a terminal).
#[derive(Default)]
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for BarProgress {
    fn start(&self, stage: &str, total: usize) {
        eprintln!("{stage}");
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(old) = bar.take() {
                old.finish_and_clear();
            }
            if total > 0 {
                *bar = Some(progress_bar(total as u64, stage.split(' ').next().unwrap_or(stage)));
            }
        }
    }

    fn advance(&self, n: usize) {
        if let Ok(bar) = self.bar.lock() {
            if let Some(bar) = bar.as_ref() {
                bar.inc(n as u64);
            }
        }
    }

    fn message(&self, message: &str) {
        if let Ok(bar) = self.bar.lock() {
            match bar.as_ref() {
                Some(bar) => bar.set_prefix(message.to_string()),
                None => eprintln!("{message}"),
            }
        }
    }

    fn finish(&self) {
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(old) = bar.take() {
                old.finish_and_clear();
            }
        }
    }
}

/// Parses a comma-separated list of poolings.
pub fn parse_poolings(list: &[String]) -> anyhow::Result<Vec<Pooling>> {
    let mut out = Vec::new();
    for item in list.iter().flat_map(|s| s.split(',')) {
        let p: Pooling = if item == "all" {
            out.extend(Pooling::ALL);
            continue;
        } else {
            item.parse()?
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Where fitting or analysis sentences come from.
#[derive(Args, Clone, Debug)]
pub struct SourceArgs {
    /// `target` (every sentence of the STS sets, labels unused; needs --data), text files
    /// `PATH[+PATH…]` (one sentence a line; a .csv gives every field), or `store:DIR[#COLLECTION]`.
    #[arg(long = "from")]
    pub from: String,
    /// Benchmark data folder, for `--from target`.
    #[arg(long, env = "ISOVEC_DATA")]
    pub data: Option<PathBuf>,
    /// STS sets whose sentences make up `target`.
    #[arg(long, value_delimiter = ',', default_value = "STS12,STS13,STS14,STS15,STS16,STS-B,SICK-R")]
    pub sets: Vec<String>,
    /// Use at most this many sentences (the first ones).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl SourceArgs {
    /// Reads the sentences.
    pub fn read(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.read_with_pipeline()?.0)
    }

    /// Reads the sentences, with the pipeline a `store:` collection records, if any.
    pub fn read_with_pipeline(&self) -> anyhow::Result<(Vec<String>, Option<crate::PipelineSpec>)> {
        use crate::eval::sts::StsSet;
        let mut recorded = None;
        let mut sentences = if self.from == "target" {
            let data = self.data.as_ref().context("--from target needs --data DIR (or ISOVEC_DATA)")?;
            let sets = self.sets.iter().map(|s| s.parse::<StsSet>()).collect::<Result<Vec<_>, _>>()?;
            crate::eval::sts::target_sentences(data, &sets)?
        } else if let Some(spec) = self.from.strip_prefix("store:") {
            let (texts, spec) = super::store_source::read_collection(spec)?;
            recorded = spec;
            texts
        } else {
            let mut out = Vec::new();
            for path in self.from.split('+') {
                out.extend(crate::eval::sts_table::read_fit_sentences(std::path::Path::new(path))?);
            }
            out
        };
        if let Some(n) = self.limit {
            sentences.truncate(n);
        }
        if sentences.is_empty() {
            bail!("{}: no sentences to fit on", self.from);
        }
        Ok((sentences, recorded))
    }
}

/// The folder a command works in: `given`, or a temporary `isovec-<what>-<pid>` folder removed
/// when the returned guard drops, however the command ends.
pub fn work_dir(given: Option<&PathBuf>, what: &str) -> (PathBuf, Option<RemoveOnDrop>) {
    match given {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("isovec-{what}-{}", std::process::id()));
            (d.clone(), Some(RemoveOnDrop(d)))
        }
    }
}

/// A temporary folder, removed when dropped.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // Best effort: a leftover temporary folder is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
