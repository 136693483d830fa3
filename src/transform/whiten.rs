//! Whitening (Su et al. 2021): x̃ = (x − μ) W[:, :k] with Σ = U Λ Uᵀ and W = U Λ^(−1/2).
//!
//! μ and Σ are accumulated in one streaming pass in f64, so any corpus fits in O(d²) memory.
//! Σ is the population covariance (divided by n), so the whitened training vectors have
//! covariance exactly I.

use std::path::Path;

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::check_input;
use super::file::{StoredTensor, TransformFile};
use crate::{EncoderId, Error, Result, TransformId};

/// Family name of whitening in transform files.
pub(crate) const FAMILY: &str = "whiten";

/// Eigenvalues at or below this fraction of the largest are treated as zero variance: their
/// directions cannot be whitened (Λ^(−1/2) would blow up rounding noise).
pub const RELATIVE_EIGENVALUE_FLOOR: f64 = 1e-10;

/// Rows buffered before they are folded into the scatter matrix with one matrix product.
const BUFFER_ROWS: usize = 256;

/// Streaming mean and covariance (f64) of one encoder's vectors, then a [`Whitening`].
///
/// Sums are taken around the first vector pushed (a shift), which keeps the one-pass
/// formula Σ = S/n − m mᵀ accurate when the mean is large compared to the spread.
#[derive(Debug, Clone)]
pub struct WhiteningAccumulator {
    encoder: EncoderId,
    dims: usize,
    count: u64,
    shift: Option<Vec<f64>>,
    sum: Vec<f64>,
    scatter: DMatrix<f64>,
    pending: Vec<f64>,
}

impl WhiteningAccumulator {
    /// An empty accumulator for `dims`-dimensional vectors of `encoder`.
    pub fn new(encoder: EncoderId, dims: usize) -> Self {
        WhiteningAccumulator {
            encoder,
            dims,
            count: 0,
            shift: None,
            sum: vec![0.0; dims],
            scatter: DMatrix::zeros(dims, dims),
            pending: Vec::with_capacity(BUFFER_ROWS * dims),
        }
    }

    /// Number of vectors pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one vector.
    pub fn push(&mut self, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dims {
            return Err(Error::Dimension { expected: self.dims, found: vector.len() });
        }
        if vector.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "vector {} holds NaN or infinity; check the encoder output before whitening",
                self.count
            )));
        }
        let shift = self.shift.get_or_insert_with(|| vector.iter().map(|&v| f64::from(v)).collect());
        self.pending.extend(vector.iter().zip(shift.iter()).map(|(&v, s)| f64::from(v) - s));
        self.count += 1;
        if self.pending.len() >= BUFFER_ROWS * self.dims {
            self.flush();
        }
        Ok(())
    }

    /// Adds many vectors.
    pub fn push_batch(&mut self, vectors: &[Vec<f32>]) -> Result<()> {
        vectors.iter().try_for_each(|v| self.push(v))
    }

    /// Folds the buffered rows into the sums.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rows = self.pending.len() / self.dims;
        let block = DMatrix::from_row_slice(rows, self.dims, &self.pending);
        for (s, col) in self.sum.iter_mut().zip(block.column_iter()) {
            *s += col.sum();
        }
        self.scatter.gemm_tr(1.0, &block, &block, 1.0);
        self.pending.clear();
    }

    /// The mean and (population) covariance of the vectors pushed so far.
    pub fn moments(&mut self) -> Result<(Vec<f64>, DMatrix<f64>)> {
        if self.count < 2 {
            return Err(Error::InvalidInput(format!(
                "whitening needs at least 2 vectors (got {}); fit on more sentences",
                self.count
            )));
        }
        self.flush();
        let n = self.count as f64;
        let shifted_mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let m = DMatrix::from_column_slice(self.dims, 1, &shifted_mean);
        let mut cov = &self.scatter / n - &m * m.transpose();
        // Symmetrise away rounding so the eigen-solver sees an exactly symmetric matrix.
        cov = (&cov + cov.transpose()) * 0.5;
        let shift = self.shift.as_deref().unwrap_or(&[]);
        let mean = shifted_mean.iter().zip(shift).map(|(a, b)| a + b).collect();
        Ok((mean, cov))
    }

    /// Eigendecomposes the covariance and keeps the `k` largest directions (if `None`, every
    /// direction with non-zero variance).
    pub fn finish(mut self, k: Option<usize>) -> Result<Whitening> {
        let (mean, cov) = self.moments()?;
        let d = self.dims;
        let requested = k;
        if let Some(k) = requested.filter(|&k| k == 0 || k > d) {
            return Err(Error::InvalidInput(format!("whitening can keep 1 to {d} dimensions, not {k}")));
        }
        let eigen = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let largest = eigen.eigenvalues[order[0]];
        let floor = largest.max(0.0) * RELATIVE_EIGENVALUE_FLOOR;
        let usable = order.iter().take_while(|&&i| eigen.eigenvalues[i] > floor && eigen.eigenvalues[i] > 0.0).count();
        // Full whitening keeps every direction that has variance: vectors after a final
        // LayerNorm lie in a hyperplane (and some dimensions may be constant), and those
        // zero-variance directions cannot be scaled to unit variance.
        let k = match requested {
            Some(k) => k,
            None => {
                if usable < d {
                    tracing::warn!(
                        "whitening: {} of {d} directions have no variance; keeping the other {usable}",
                        d - usable
                    );
                }
                usable
            }
        };
        if usable == 0 {
            return Err(Error::InvalidInput(format!(
                "no direction has variance in {} vectors: the sentences are all encoded alike (cut to the same \
                 first tokens?); fit on more varied sentences",
                self.count
            )));
        }
        if usable < k {
            return Err(Error::InvalidInput(format!(
                "only {usable} of {d} directions have non-zero variance in {} vectors, so {k} \
                 cannot be whitened; pass k ≤ {usable} or fit on more (and more varied) \
                 sentences (at least {} are needed for full whitening)",
                self.count,
                d + 1
            )));
        }
        let eigenvalues: Vec<f64> = order[..k].iter().map(|&i| eigen.eigenvalues[i]).collect();
        let projection = DMatrix::from_fn(d, k, |r, c| eigen.eigenvectors[(r, order[c])] / eigenvalues[c].sqrt());
        Ok(Whitening { encoder: self.encoder, mean, projection, eigenvalues })
    }
}

/// Fits whitening on `vectors` of `encoder`, keeping `k` dimensions (all if `None`).
pub fn fit_whitening(vectors: &[Vec<f32>], encoder: &EncoderId, k: Option<usize>) -> Result<Whitening> {
    let first = vectors
        .first()
        .ok_or_else(|| Error::InvalidInput("whitening needs vectors to fit on; got none".to_string()))?;
    let mut acc = WhiteningAccumulator::new(encoder.clone(), first.len());
    acc.push_batch(vectors)?;
    acc.finish(k)
}

/// A fitted whitening: subtract the mean, project on the top-k scaled eigenvectors.
#[derive(Debug, Clone)]
pub struct Whitening {
    encoder: EncoderId,
    mean: Vec<f64>,
    /// d × k, column j = u_j / sqrt(λ_j), λ in decreasing order.
    projection: DMatrix<f64>,
    /// The k kept eigenvalues of Σ, decreasing.
    eigenvalues: Vec<f64>,
}

/// Configuration stored in the file's metadata.
#[derive(Serialize, Deserialize)]
struct WhiteningConfig {
    input_dims: usize,
    output_dims: usize,
}

impl Whitening {
    /// `whiten` when all dimensions are kept, else `whiten-<k>`.
    pub fn kind(&self) -> String {
        if self.output_dims() == self.input_dims() {
            FAMILY.to_string()
        } else {
            format!("{FAMILY}-{}", self.output_dims())
        }
    }

    /// Kind plus sha256 of the parameters.
    pub fn id(&self) -> TransformId {
        TransformId { kind: self.kind(), sha256: self.to_file().parameters_sha256() }
    }

    /// The encoder + pooling it was fitted on.
    pub fn encoder(&self) -> &EncoderId {
        &self.encoder
    }

    /// Dimension of accepted vectors.
    pub fn input_dims(&self) -> usize {
        self.mean.len()
    }

    /// Dimension of returned vectors (k).
    pub fn output_dims(&self) -> usize {
        self.projection.ncols()
    }

    /// The fitted mean μ.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The kept eigenvalues of the covariance, largest first.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// The d × k matrix W[:, :k] = U Λ^(−1/2) restricted to the kept directions.
    pub fn projection(&self) -> &DMatrix<f64> {
        &self.projection
    }

    /// Whitens vectors of `encoder` (computed in f64, returned as f32).
    pub fn apply(&self, encoder: &EncoderId, vectors: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        check_input(&self.encoder, self.input_dims(), encoder, vectors)?;
        let d = self.input_dims();
        let mut out = Vec::with_capacity(vectors.len());
        for chunk in vectors.chunks(1024) {
            let centred = DMatrix::from_fn(chunk.len(), d, |r, c| f64::from(chunk[r][c]) - self.mean[c]);
            let whitened = centred * &self.projection;
            out.extend(whitened.row_iter().map(|row| row.iter().map(|&v| v as f32).collect::<Vec<f32>>()));
        }
        Ok(out)
    }

    /// Writes the whitening to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.to_file().save(path)
    }

    /// Reads a whitening file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_file(TransformFile::load(path)?, path)
    }

    pub(crate) fn to_file(&self) -> TransformFile {
        let (d, k) = (self.input_dims(), self.output_dims());
        let config = WhiteningConfig { input_dims: d, output_dims: k };
        // Row-major d × k.
        let projection: Vec<f64> = self.projection.transpose().as_slice().to_vec();
        TransformFile {
            family: FAMILY.to_string(),
            encoder: self.encoder.clone(),
            config: serde_json::to_string(&config).unwrap_or_default(),
            tensors: vec![
                StoredTensor::from_f64("mean", vec![d], &self.mean),
                StoredTensor::from_f64("projection", vec![d, k], &projection),
                StoredTensor::from_f64("eigenvalues", vec![k], &self.eigenvalues),
            ],
        }
    }

    pub(crate) fn from_file(file: TransformFile, path: &Path) -> Result<Self> {
        if file.family != FAMILY {
            return Err(Error::Transform(format!(
                "{}: holds a `{}` transform, not whitening",
                path.display(),
                file.family
            )));
        }
        let config: WhiteningConfig = serde_json::from_str(&file.config).map_err(|e| {
            Error::Transform(format!("{}: damaged whitening configuration ({e}); re-fit it", path.display()))
        })?;
        let (d, k) = (config.input_dims, config.output_dims);
        if d == 0 || k == 0 || k > d {
            return Err(Error::Transform(format!(
                "{}: damaged whitening configuration ({d} → {k} dimensions); re-fit it",
                path.display()
            )));
        }
        let mean = file.tensor("mean", &[d], path)?.to_f64();
        let projection = file.tensor("projection", &[d, k], path)?.to_f64();
        let eigenvalues = file.tensor("eigenvalues", &[k], path)?.to_f64();
        Ok(Whitening {
            encoder: file.encoder,
            mean,
            projection: DMatrix::from_row_slice(d, k, &projection),
            eigenvalues,
        })
    }
}

#[cfg(test)]
mod tests;
