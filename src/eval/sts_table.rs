//! The STS comparison: every (pooling × transform) configuration scored on every STS set,
//! encoding each sentence once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::sts::{self, Split, StsDataset, StsSet};
use crate::encoder::{Encoder, Pooling};
use crate::progress::Progress;
use crate::transform::{Transform, TransformKind};
use crate::vector::cosine;
use crate::{Error, Pipeline, Result};

/// Where a transform is fitted (never on labels).
#[derive(Clone, Debug, PartialEq)]
pub enum FitSource {
    /// All sentences (train + dev + test, both sides) of the data set being evaluated.
    Target,
    /// Sentences read from files (one a line; a `.csv` contributes every field of every row).
    Files(Vec<PathBuf>),
}

impl FitSource {
    /// Parses `target` or `PATH[+PATH…]`.
    pub fn parse(s: &str) -> Self {
        if s == "target" {
            FitSource::Target
        } else {
            FitSource::Files(s.split('+').map(PathBuf::from).collect())
        }
    }

    /// The name rows carry in `fit_on`.
    pub fn name(&self) -> String {
        match self {
            FitSource::Target => "target".into(),
            FitSource::Files(files) => files
                .iter()
                .map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("+"),
        }
    }
}

/// A transform to fit and where.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformSpec {
    /// The transform.
    pub kind: TransformKind,
    /// The sentences it is fitted on.
    pub fit_on: FitSource,
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct StsPlan {
    /// The benchmarks to score.
    pub sets: Vec<StsSet>,
    /// Split for STS-B and SICK-R (STS12–16 only have a test set).
    pub split: Split,
    /// The poolings to score.
    pub poolings: Vec<Pooling>,
    /// Transforms besides `none` (which is always scored).
    pub transforms: Vec<TransformSpec>,
}

/// One row of the table: one configuration under one aggregation.
#[derive(Clone, Debug, Serialize)]
pub struct StsRow {
    /// The model's name.
    pub model: String,
    /// The pooling.
    pub pooling: String,
    /// The transform (`none` for raw vectors).
    pub transform: String,
    /// What the transform was fitted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_on: Option<String>,
    /// How a set's subsets make its score: `all` (their pairs pooled) or `wmean` (their scores,
    /// weighted by their sizes).
    pub aggregation: String,
    /// Spearman ×100 per set name, and `avg`.
    pub scores: BTreeMap<String, f64>,
}

/// Reads the sentences of a fitting source file: one a line, or every field of a CSV's rows.
pub fn read_fit_sentences(path: &Path) -> Result<Vec<String>> {
    if path.extension().is_some_and(|e| e == "csv") {
        let text = String::from_utf8(super::text_file::read_bytes(path)?).map_err(|e| Error::Data {
            path: path.into(),
            line: 0,
            message: format!("not UTF-8: {e}"),
        })?;
        let rows = super::text_file::parse_csv(&text).map_err(|(line, message)| Error::Data {
            path: path.into(),
            line,
            message,
        })?;
        Ok(rows.into_iter().skip(1).flat_map(|(_, fields)| fields).filter(|s| !s.trim().is_empty()).collect())
    } else {
        Ok(super::text_file::read_lines(path)?.into_iter().filter(|s| !s.trim().is_empty()).collect())
    }
}

/// Runs the comparison; `progress` is told what is being done.
pub fn evaluate(
    encoder: &Arc<Encoder>,
    data_dir: &Path,
    plan: &StsPlan,
    progress: &dyn Progress,
) -> Result<Vec<StsRow>> {
    // Every sentence needed: evaluation pairs, target corpora, fitting files.
    let mut eval_sets: Vec<StsDataset> = Vec::new();
    let mut target: HashMap<StsSet, Vec<String>> = HashMap::new();
    let needs_target = plan.transforms.iter().any(|t| t.fit_on == FitSource::Target);
    for &set in &plan.sets {
        let split = if matches!(set, StsSet::StsB | StsSet::SickR) { plan.split } else { Split::Test };
        eval_sets.push(sts::load(data_dir, set, split)?);
        if needs_target {
            target.insert(set, sts::target_sentences(data_dir, &[set])?);
        }
    }
    let mut files: HashMap<String, Vec<String>> = HashMap::new();
    for spec in &plan.transforms {
        if let FitSource::Files(paths) = &spec.fit_on {
            let mut sentences = Vec::new();
            for p in paths {
                sentences.extend(read_fit_sentences(p)?);
            }
            files.insert(spec.fit_on.name(), sentences);
        }
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut unique: Vec<&str> = Vec::new();
    let all = eval_sets
        .iter()
        .flat_map(|d| d.sentences())
        .chain(target.values().flatten().map(String::as_str))
        .chain(files.values().flatten().map(String::as_str));
    for s in all {
        index.entry(s).or_insert_with(|| {
            unique.push(s);
            unique.len() - 1
        });
    }
    progress.start(&format!("encoding {} sentences with {} poolings", unique.len(), plan.poolings.len()), 0);
    let encoded = encoder.encode(&unique, &plan.poolings)?;
    if encoded.truncated > 0 {
        progress.message(&format!(
            "{} sentences were truncated at {} tokens",
            encoded.truncated,
            encoder.tokenizer().max_length()
        ));
    }

    let mut rows = Vec::new();
    for (p, &pooling) in plan.poolings.iter().enumerate() {
        let vectors = &encoded.vectors[p];
        let lookup = |sentences: &[String]| -> Vec<Vec<f32>> {
            sentences.iter().map(|s| vectors[index[s.as_str()]].clone()).collect()
        };
        let encoder_id = encoder.id(pooling);
        // `None` first, then each transform.
        /// A configuration's name, its transform's fingerprint and its transform per set.
        type Config = (String, Option<String>, Vec<Option<Arc<Transform>>>);
        let mut configs: Vec<Config> = vec![("none".into(), None, eval_sets.iter().map(|_| None).collect())];
        for spec in &plan.transforms {
            progress.start(&format!("fitting {} on {} for {}", spec.kind.name(), spec.fit_on.name(), pooling), 0);
            let fitted = match &spec.fit_on {
                FitSource::Target => eval_sets
                    .iter()
                    .map(|d| Ok(Some(Arc::new(spec.kind.fit(&lookup(&target[&d.set]), &encoder_id, progress)?))))
                    .collect::<Result<Vec<_>>>()?,
                FitSource::Files(_) => {
                    // One fit serves every set.
                    let t = Arc::new(spec.kind.fit(&lookup(&files[&spec.fit_on.name()]), &encoder_id, progress)?);
                    eval_sets.iter().map(|_| Some(t.clone())).collect()
                }
            };
            configs.push((spec.kind.name(), Some(spec.fit_on.name()), fitted));
        }
        for (name, fit_on, transforms) in configs {
            let mut all = BTreeMap::new();
            let mut wmean = BTreeMap::new();
            for (ds, transform) in eval_sets.iter().zip(&transforms) {
                let sentences: Vec<&str> = ds.sentences();
                let raw: Vec<Vec<f32>> = sentences.iter().map(|s| vectors[index[s]].clone()).collect();
                let vs = Pipeline::new(encoder.clone(), pooling, transform.clone())?.apply(raw)?;
                let pos: HashMap<&str, usize> = sentences.iter().enumerate().map(|(i, s)| (*s, i)).collect();
                let sims: Vec<f64> =
                    ds.pairs().map(|pair| cosine(&vs[pos[pair.a.as_str()]], &vs[pos[pair.b.as_str()]])).collect();
                let score = sts::try_score(ds, &sims)?;
                all.insert(ds.set.name().to_string(), score.all);
                wmean.insert(ds.set.name().to_string(), score.wmean);
            }
            for (aggregation, mut scores) in [("all", all), ("wmean", wmean)] {
                let avg = scores.values().sum::<f64>() / scores.len().max(1) as f64;
                scores.insert("avg".into(), avg);
                rows.push(StsRow {
                    model: encoder.name().into(),
                    pooling: pooling.name().into(),
                    transform: name.clone(),
                    fit_on: fit_on.clone(),
                    aggregation: aggregation.into(),
                    scores,
                });
            }
        }
    }
    Ok(rows)
}

/// Renders rows as a Markdown table with the set columns in `sets` order.
pub fn markdown_table(rows: &[StsRow], sets: &[StsSet]) -> String {
    let names: Vec<&str> = sets.iter().map(|s| s.name()).chain(["avg"]).collect();
    let header: Vec<&str> =
        ["model", "pooling", "transform", "fit on", "agg"].into_iter().chain(names.iter().copied()).collect();
    let cells = rows.iter().map(|r| {
        let mut cells = vec![
            r.model.clone(),
            r.pooling.clone(),
            r.transform.clone(),
            r.fit_on.clone().unwrap_or_else(|| "-".into()),
            r.aggregation.clone(),
        ];
        cells.extend(names.iter().map(|key| r.scores.get(*key).map_or("-".into(), |v| format!("{v:.2}"))));
        cells
    });
    crate::table::markdown(&header, 5, cells)
}
