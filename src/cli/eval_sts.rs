//! `isovec eval sts`: Spearman ×100 on STS12–16, STS-B and SICK-R for poolings × transforms.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::common::{parse_poolings, BarProgress, DataArgs, ModelArgs};
use crate::eval::sts::{Split, StsSet};
use crate::eval::sts_table::{self, FitSource, StsPlan, TransformSpec};
use crate::transform::{FlowConfig, TransformKind};

/// Options of `isovec eval sts`.
#[derive(Args, Debug)]
pub struct EvalStsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Poolings, repeated or comma-separated (`all` for the seven).
    #[arg(long, default_value = "mean")]
    pub pooling: Vec<String>,
    /// Sets, comma-separated: STS12,STS13,STS14,STS15,STS16,STS-B,SICK-R.
    #[arg(long, value_delimiter = ',', default_value = "STS12,STS13,STS14,STS15,STS16,STS-B,SICK-R")]
    pub sets: Vec<String>,
    /// Split of STS-B and SICK-R: test (as the papers), dev, train, or all (MTEB's SICK-R: 9,927 pairs).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Transforms to fit and score besides `none`: whiten, whiten-K, flow; `KIND@SOURCE` picks
    /// the fitting source for one of them (else --fit-on). Repeat for several.
    #[arg(long)]
    pub transform: Vec<String>,
    /// Default fitting source: `target` (the evaluated set's own sentences, labels unused) or
    /// text files `PATH[+PATH…]` (one sentence a line; a .csv gives every field).
    #[arg(long, default_value = "target")]
    pub fit_on: String,
    /// Reduce plain `whiten` to this many dimensions.
    #[arg(long)]
    pub dims: Option<usize>,
    /// Flow: passes over the fitting sentences.
    #[arg(long, default_value_t = 1.0)]
    pub flow_epochs: f64,
    /// Flow: learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub flow_lr: f64,
    /// Seed of the flow's initialisation and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl EvalStsArgs {
    /// The evaluation plan the options describe.
    pub fn plan(&self) -> anyhow::Result<StsPlan> {
        let sets = self.sets.iter().map(|s| s.parse::<StsSet>()).collect::<Result<Vec<_>, _>>()?;
        let split: Split = self.split.parse()?;
        let flow = FlowConfig {
            epochs: self.flow_epochs,
            learning_rate: self.flow_lr,
            seed: self.seed,
            ..FlowConfig::default()
        };
        let mut transforms = Vec::new();
        for t in &self.transform {
            let (kind, source) = t.split_once('@').unwrap_or((t.as_str(), self.fit_on.as_str()));
            if kind == "none" {
                continue;
            }
            let kind = match (TransformKind::parse(kind, &flow)?, self.dims) {
                (TransformKind::Whiten { dims: None }, Some(k)) => TransformKind::Whiten { dims: Some(k) },
                (k, _) => k,
            };
            transforms.push(TransformSpec { kind, fit_on: FitSource::parse(source) });
        }
        Ok(StsPlan { sets, split, poolings: parse_poolings(&self.pooling)?, transforms })
    }
}

/// Runs `isovec eval sts`.
pub fn run(args: EvalStsArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let encoder = args.model.load()?;
    let rows = sts_table::evaluate(&encoder, &args.data.data, &plan, &BarProgress::default())?;
    println!("Spearman ×100 (cosine); STS-B and SICK-R split: {}", args.split);
    print!("{}", sts_table::markdown_table(&rows, &plan.sets));
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "rows": rows });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("rows written to {}", path.display());
    }
    Ok(())
}
