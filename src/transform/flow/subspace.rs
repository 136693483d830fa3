//! The subspace a flow runs in: sentence vectors without their zero-variance directions.
//!
//! Vectors after a final LayerNorm lie in a hyperplane, and some models have constant
//! dimensions: all-MiniLM-L6-v2's mean-pooled vectors have 3 of 384 directions with no variance
//! at all (eigenvalues ~1e-16 of the largest). A density on such data is unbounded — the flow
//! gains likelihood without limit by shrinking those directions, their outputs blow up and
//! dominate every cosine (measured before this fix: mean cosine of random pairs 0.93, STS
//! average 13–20). So before the flow, vectors are projected onto the directions that do have
//! variance, and the flow runs in those r < d dimensions.
//!
//! The basis is chosen as close to the original coordinates as possible, so the flow still sees
//! (nearly) the encoder's own dimensions, as in the BERT-flow paper: the k coordinates most
//! aligned with the null space are dropped, and the remaining r columns of the projector
//! I − N Nᵀ are orthonormalised. `u ↦ u Q` loses only the null-space component, which is the
//! same for every training vector; [`Subspace::lift`] puts it back.

use nalgebra::{DMatrix, SymmetricEigen};

use super::super::whiten::{WhiteningAccumulator, RELATIVE_EIGENVALUE_FLOOR};
use crate::{EncoderId, Error, Result};

/// An orthonormal basis of the directions with variance, and the constant rest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subspace {
    /// d × r, orthonormal columns.
    basis: DMatrix<f64>,
    /// The part of the training mean outside the subspace (d values).
    offset: Vec<f64>,
}

impl Subspace {
    /// The subspace of `vectors` (n × d), or `None` when every direction has variance.
    pub fn fit(vectors: &[Vec<f32>], encoder: &EncoderId) -> Result<Option<Subspace>> {
        let d = vectors.first().map_or(0, Vec::len);
        let mut acc = WhiteningAccumulator::new(encoder.clone(), d);
        acc.push_batch(vectors)?;
        let (mean, cov) = acc.moments()?;
        let eigen = SymmetricEigen::new(cov);
        let largest = eigen.eigenvalues.max();
        let floor = largest.max(0.0) * RELATIVE_EIGENVALUE_FLOOR;
        let null: Vec<usize> = (0..d).filter(|&i| eigen.eigenvalues[i] <= floor).collect();
        if null.is_empty() {
            return Ok(None);
        }
        if d - null.len() < 2 {
            return Err(Error::InvalidInput(format!(
                "the flow's training vectors vary in {} of {d} directions; it needs at least 2 \
                 — fit on more (and more varied) sentences",
                d - null.len()
            )));
        }
        let n = DMatrix::from_fn(d, null.len(), |r, c| eigen.eigenvectors[(r, null[c])]);
        let dropped = most_aligned_coordinates(&n);
        let kept: Vec<usize> = (0..d).filter(|i| !dropped.contains(i)).collect();
        let projector = DMatrix::<f64>::identity(d, d) - &n * n.transpose();
        let columns = DMatrix::from_fn(d, kept.len(), |r, c| projector[(r, kept[c])]);
        let qr = columns.qr();
        let (mut basis, r) = (qr.q(), qr.r());
        // Signs so that column j points along its coordinate e_kept[j], not against it.
        for j in 0..kept.len() {
            if r[(j, j)] < 0.0 {
                basis.column_mut(j).neg_mut();
            }
        }
        let mean = DMatrix::from_row_slice(1, d, &mean);
        let offset = &mean - &mean * &basis * basis.transpose();
        tracing::info!(
            "flow: {} of {d} directions have no variance; the flow runs in the other {}",
            null.len(),
            kept.len()
        );
        Ok(Some(Subspace { basis, offset: offset.iter().copied().collect() }))
    }

    /// Rebuilds a subspace from its stored parts (`basis` row-major d × r).
    pub fn from_parts(d: usize, r: usize, basis: &[f64], offset: Vec<f64>) -> Subspace {
        Subspace { basis: DMatrix::from_row_slice(d, r, basis), offset }
    }

    /// The basis row-major (d × r) and the offset, for storing.
    pub fn parts(&self) -> (Vec<f64>, &[f64]) {
        (self.basis.transpose().as_slice().to_vec(), &self.offset)
    }

    /// Dimension of the vectors it accepts (d).
    pub fn input_dims(&self) -> usize {
        self.basis.nrows()
    }

    /// Dimension of the subspace (r).
    pub fn dims(&self) -> usize {
        self.basis.ncols()
    }

    /// Coordinates of `vectors` (d each) in the subspace (r each): u Q.
    pub fn project(&self, vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let d = self.input_dims();
        let u = DMatrix::from_fn(vectors.len(), d, |r, c| f64::from(vectors[r][c]));
        to_rows(&(u * &self.basis))
    }

    /// Back from subspace coordinates to d dimensions: x Qᵀ + offset.
    pub fn lift(&self, coordinates: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let r = self.dims();
        let x = DMatrix::from_fn(coordinates.len(), r, |i, c| f64::from(coordinates[i][c]));
        let mut u = x * self.basis.transpose();
        for mut row in u.row_iter_mut() {
            for (v, o) in row.iter_mut().zip(&self.offset) {
                *v += o;
            }
        }
        to_rows(&u)
    }
}

/// The k coordinates (rows of the d × k orthonormal `null`) whose axes lie closest to the null
/// space, picked greedily with pivoting so that the dropped set is never degenerate.
fn most_aligned_coordinates(null: &DMatrix<f64>) -> Vec<usize> {
    let mut rows = null.clone();
    let mut dropped = Vec::with_capacity(null.ncols());
    for _ in 0..null.ncols() {
        let best = (0..rows.nrows())
            .filter(|i| !dropped.contains(i))
            .max_by(|&a, &b| rows.row(a).norm_squared().total_cmp(&rows.row(b).norm_squared()));
        // The columns are orthonormal, so k pivots always exist; stop rather than divide by 0.
        let Some(pick) = best.filter(|&i| rows.row(i).norm() > 0.0) else {
            break;
        };
        let pivot = rows.row(pick).normalize();
        for i in 0..rows.nrows() {
            let along = rows.row(i).dot(&pivot);
            let correction = &pivot * along;
            let mut row = rows.row_mut(i);
            row -= correction;
        }
        dropped.push(pick);
    }
    dropped
}

fn to_rows(m: &DMatrix<f64>) -> Vec<Vec<f32>> {
    m.row_iter().map(|row| row.iter().map(|&v| v as f32).collect()).collect()
}
