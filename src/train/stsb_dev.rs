//! STS-B dev pairs and Spearman's ρ, for model selection during training.
//!
//! Temporary: replaced by `crate::eval::sts` and `crate::eval::spearman` once those are merged.

use std::path::Path;

use crate::{Error, Result};

/// One scored sentence pair.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredPair {
    /// First sentence.
    pub a: String,
    /// Second sentence.
    pub b: String,
    /// Gold similarity, 0–5.
    pub score: f64,
}

/// Reads `senteval/STS/STSBenchmark/sts-dev.csv` under `data_dir` (TAB separated: score is field
/// 5, the sentences fields 6 and 7; never CSV-unquoted, because sentences contain `"`).
pub fn load_stsb_dev(data_dir: &Path) -> Result<Vec<ScoredPair>> {
    let path = data_dir.join("senteval/STS/STSBenchmark/sts-dev.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let f: Vec<&str> = line.split('\t').collect();
            let bad = |message: String| Error::Data {
                path: path.clone(),
                line: i + 1,
                message,
            };
            if f.len() < 7 {
                return Err(bad(format!("{} TAB-separated fields, expected at least 7", f.len())));
            }
            let score = f[4].trim().parse::<f64>().map_err(|e| bad(format!("score {:?}: {e}", f[4])))?;
            Ok(ScoredPair {
                a: f[5].to_string(),
                b: f[6].to_string(),
                score,
            })
        })
        .collect()
}

/// Ranks starting at 1, ties given their average rank.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson on tie-averaged ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_with_ties_matches_hand_value() {
        // x ranks (1, 2.5, 2.5, 4), y ranks (1, 2, 3, 4): Pearson of those is 0.9486833.
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[10.0, 20.0, 30.0, 40.0]);
        assert!((r - 0.948_683_298).abs() < 1e-8, "{r}");
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }
}
