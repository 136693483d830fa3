//! Matrix products C ≈ A·B in 8-bit integers on CPUs with AVX2: the dense layers of
//! `--dtype int8` on the CPU.
//!
//! B's columns (a dense layer's output units) are quantised once, symmetrically, to 7 bits
//! (−63..63, one scale per column); A's rows (the tokens' activations) at every product, to 8
//! bits (−127..127, one scale per row), stored offset by 128 as unsigned bytes. One `vpmaddubsw`
//! multiplies 32 unsigned bytes of A by 32 signed bytes of B and adds neighbouring pairs; the 7
//! bits of B keep a pair's sum (at most 2 · 255 · 63) within its 16 bits. `vpmaddwd` adds the
//! pairs to 32-bit sums of 4 products, where an f32 FMA does one product per lane: twice the
//! multiply-adds per instruction, and B takes a quarter of f32's memory. The sums are exact
//! integers; C[r][c] = scale_r · scale_c · (Σ (a + 128) · b − 128 · Σ b).
//!
//! Layout: B in panels of [`NR8`] columns, depth in quads: `data[((p · kq + q) · NR8 + j) · 4 + t]`
//! = B[4q + t][p·NR8 + j], zero beyond N and K.

use super::matmul::{split_product, Finish, NR};
use super::partner::Partner;
use crate::simd::multiversion;

/// Columns of a panel: two AVX2 registers of 32-bit sums.
const NR8: usize = 16;
/// Rows of a tile: 4 × 2 accumulators, 2 B registers, the broadcast, a constant and the
/// products in flight fit the 16 AVX2 registers.
const MR: usize = 4;
/// Rows of A quantised and multiplied per block: a block of the widest layer's rows (1,536
/// bytes each) stays in a 512 KB L2 cache.
const MC: usize = 192;
/// Largest quantised magnitude of B: 7 bits, so that no pair sum of `vpmaddubsw` saturates.
const B_MAX: f32 = 63.0;
/// Largest quantised magnitude of A.
const A_MAX: f32 = 127.0;
/// A's offset to unsigned bytes.
const A_ZERO: i32 = 128;

/// Whether this CPU runs [`matmul_i8`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// B (K × N) quantised per column.
#[derive(Clone, Debug, Default)]
pub struct PackedB8 {
    k: usize,
    n: usize,
    data: Vec<i8>,
    /// Per column: the f32 value of one quantisation step.
    scales: Vec<f32>,
    /// Per column: 128 · Σ_k B[k][c], the offset of A's unsigned bytes, subtracted from the sums.
    offsets: Vec<i32>,
}

impl PackedB8 {
    /// B = Wᵀ for W given as N rows of K (a dense layer's `weight`, out × in).
    pub fn from_transposed(w: &[f32], n: usize, k: usize) -> Self {
        let kq = k.div_ceil(4);
        let mut data = vec![0i8; n.div_ceil(NR8) * kq * NR8 * 4];
        let mut scales = vec![0f32; n];
        let mut offsets = vec![0i32; n];
        for c in 0..n {
            let row = &w[c * k..][..k];
            let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = largest / B_MAX;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let (p, j) = (c / NR8, c % NR8);
            let mut sum = 0i32;
            for (kk, &v) in row.iter().enumerate() {
                let q = (v * inverse).round_ties_even().clamp(-B_MAX, B_MAX) as i8;
                data[((p * kq + kk / 4) * NR8 + j) * 4 + kk % 4] = q;
                sum += i32::from(q);
            }
            scales[c] = scale;
            offsets[c] = A_ZERO * sum;
        }
        PackedB8 { k, n, data, scales, offsets }
    }

    /// B[kk][c] as quantised (for tests).
    #[cfg(test)]
    fn value(&self, kk: usize, c: usize) -> f32 {
        let kq = self.k.div_ceil(4);
        f32::from(self.data[((c / NR8 * kq + kk / 4) * NR8 + c % NR8) * 4 + kk % 4]) * self.scales[c]
    }
}

multiversion! {
    /// Quantises each of `rows` rows of A (`k` values, `lda` apart) into `out` (rows of `ldq`
    /// bytes, the depth beyond `k` left at zero's code), one scale per row into `scales`.
    fn quantise_rows(a: &[f32], lda: usize, rows: usize, k: usize, out: &mut [u8], ldq: usize, scales: &mut [f32]) {
        for r in 0..rows {
            let row = &a[r * lda..][..k];
            // Eight running maxima: the compiler keeps them in one register.
            let mut lanes = [0f32; 8];
            let chunks = row.chunks_exact(8);
            let tail = chunks.remainder().iter().fold(0f32, |m, v| m.max(v.abs()));
            for chunk in chunks {
                for (l, v) in lanes.iter_mut().zip(chunk) {
                    *l = l.max(v.abs());
                }
            }
            let largest = lanes.iter().fold(tail, |m, &v| m.max(v));
            let scale = largest / A_MAX;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let codes = &mut out[r * ldq..][..ldq];
            for (q, &v) in codes.iter_mut().zip(row) {
                *q = ((v * inverse).round_ties_even().clamp(-A_MAX, A_MAX) as i32 + A_ZERO) as u8;
            }
            codes[k..].fill(A_ZERO as u8);
            scales[r] = scale;
        }
    }
}

/// C ≈ A·B as [`super::matmul::matmul`] computes it (same arguments, `finish` on blocks of
/// finished rows), in 8-bit integers. Only call it where [`available`] is true.
#[allow(clippy::too_many_arguments)]
pub fn matmul_i8(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB8,
    c: &mut [f32],
    ldc: usize,
    partner: Option<&Partner>,
    finish: impl Fn(usize, &mut [f32]) + Sync,
) {
    let (k, n) = (b.k, b.n);
    assert!(available(), "int8 products need AVX2");
    assert!(m == 0 || (a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n && lda >= k && ldc >= n));
    split_product(m, n, c, ldc, partner, MC, &finish, |first, rows, panels, c, ldc, finish| {
        product(&a[first * lda..], lda, rows, b, panels, c, ldc, finish)
    });
}

/// C's columns of the [`NR`]-wide `panels` (the first of them at C's column 0) for A's `m`
/// rows, on this thread.
#[allow(clippy::too_many_arguments)]
fn product(a: &[f32], lda: usize, m: usize, b: &PackedB8, panels: std::ops::Range<usize>, c: &mut [f32], ldc: usize, finish: Finish<'_>) {
    let (k, n) = (b.k, b.n);
    let kq = k.div_ceil(4);
    let ldq = kq * 4;
    let first_col = panels.start * NR;
    // The same columns in panels of NR8.
    let narrow = panels.start * (NR / NR8)..(panels.end * (NR / NR8)).min(n.div_ceil(NR8));
    let block = MC.min(m);
    let mut codes = vec![0u8; block * ldq];
    let mut scales = vec![0f32; block];
    for m0 in (0..m).step_by(MC) {
        let mb = MC.min(m - m0);
        quantise_rows(&a[m0 * lda..], lda, mb, k, &mut codes, ldq, &mut scales);
        for p in narrow.clone() {
            let panel = &b.data[p * kq * NR8 * 4..][..kq * NR8 * 4];
            let cols = NR8.min(n - p * NR8);
            for r0 in (0..mb).step_by(MR) {
                let rows = MR.min(mb - r0);
                let mut sums = [[0i32; NR8]; MR];
                avx2::tile(rows, kq, &codes[r0 * ldq..], ldq, panel, &mut sums);
                for (r, row_sums) in sums.iter().take(rows).enumerate() {
                    let out = &mut c[(m0 + r0 + r) * ldc + p * NR8 - first_col..][..cols];
                    let columns = p * NR8..p * NR8 + cols;
                    for (((o, &s), &offset), &scale) in out.iter_mut().zip(row_sums).zip(&b.offsets[columns.clone()]).zip(&b.scales[columns]) {
                        *o = (s - offset) as f32 * (scales[r0 + r] * scale);
                    }
                }
            }
        }
        if let Some((first_row, finish)) = finish {
            let end = ((m0 + mb - 1) * ldc + n).min(c.len());
            finish(first_row + m0, &mut c[m0 * ldc..end]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{MR, NR8};

    /// `sums[r][j]` = Σ_q Σ_t A[r][4q + t] · B[4q + t][j] over a panel's `kq` quads, for `rows`
    /// rows of A's codes `lda` bytes apart.
    pub fn tile(rows: usize, kq: usize, a: &[u8], lda: usize, b: &[i8], sums: &mut [[i32; NR8]; MR]) {
        assert!(super::available() && rows <= MR && lda >= kq * 4 && b.len() >= kq * NR8 * 4);
        assert!(rows == 0 || a.len() >= (rows - 1) * lda + kq * 4);
        // SAFETY: the CPU has AVX2 (asserted); the slices are long enough (asserted).
        unsafe {
            dispatch_rows!(rows, (kq, a, lda, b, sums); 1 2 3 4);
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn rows_n<const R: usize>(kq: usize, a: &[u8], lda: usize, b: &[i8], sums: &mut [[i32; NR8]; MR]) {
        let ones = _mm256_set1_epi16(1);
        let mut lo = [_mm256_setzero_si256(); R];
        let mut hi = [_mm256_setzero_si256(); R];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for q in 0..kq {
            // SAFETY: q < kq, r < R: within A's R rows of kq quads and B's kq · 64 bytes
            // (checked by `tile`); unaligned reads.
            let (b0, b1) = unsafe {
                (
                    _mm256_loadu_si256(bp.add(q * NR8 * 4).cast()),
                    _mm256_loadu_si256(bp.add(q * NR8 * 4 + 32).cast()),
                )
            };
            for r in 0..R {
                let x = _mm256_set1_epi32(unsafe { ap.add(r * lda + q * 4).cast::<i32>().read_unaligned() });
                lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones));
                hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
            }
        }
        for r in 0..R {
            // SAFETY: `sums[r]` holds 16 i32.
            unsafe {
                _mm256_storeu_si256(sums[r].as_mut_ptr().cast(), lo[r]);
                _mm256_storeu_si256(sums[r].as_mut_ptr().add(8).cast(), hi[r]);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::{MR, NR8};

    pub fn tile(_: usize, _: usize, _: &[u8], _: usize, _: &[i8], _: &mut [[i32; NR8]; MR]) {
        unreachable!("int8 products are only offered where `available()` is true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::partner::with_partner;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0).collect()
    }

    /// A's row as quantised (the same f32 steps as `quantise_rows`), as values.
    fn quantised_row(row: &[f32]) -> Vec<f64> {
        let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let step = largest / 127.0;
        if step == 0.0 {
            return vec![0.0; row.len()];
        }
        let inverse = 1.0 / step;
        row.iter().map(|&v| f64::from((v * inverse).round_ties_even().clamp(-127.0, 127.0)) * f64::from(step)).collect()
    }

    #[test]
    fn every_shape_equals_an_f64_product_of_the_quantised_operands() {
        if !available() {
            // Nothing to run: the encoder refuses int8 without AVX2.
            return;
        }
        // Around the tile (4 rows), the panels (16 and 32 columns), the quads and the block (192 rows).
        for &(m, n, k) in &[(1, 1, 1), (3, 33, 7), (13, 64, 301), (15, 384, 384), (200, 70, 600), (400, 40, 40)] {
            let mut a = values(m * k, 1);
            a[..k].fill(0.0); // a row of zeros: no scale to divide by
            let w = values(n * k, 2);
            let packed = PackedB8::from_transposed(&w, n, k);
            let ldc = n + 3;
            for parallel in [false, true] {
                with_partner(parallel, |partner| {
                    let mut c = vec![7f32; m * ldc];
                    let finished = std::sync::Mutex::new(vec![0usize; m]);
                    matmul_i8(&a, k, m, &packed, &mut c, ldc, partner, |first, rows| {
                        let count = rows.len().div_ceil(ldc);
                        finished.lock().unwrap()[first..first + count].iter_mut().for_each(|f| *f += 1);
                    });
                    assert!(finished.lock().unwrap().iter().all(|&f| f == 1), "every row finished once");
                    let mut worst = 0f64;
                    for i in 0..m {
                        let qa = quantised_row(&a[i * k..][..k]);
                        for j in 0..n {
                            let want: f64 = (0..k).map(|kk| qa[kk] * f64::from(packed.value(kk, j))).sum();
                            let exact: f64 = (0..k).map(|kk| f64::from(a[i * k + kk]) * f64::from(w[j * k + kk])).sum();
                            let got = f64::from(c[i * ldc + j]);
                            assert!((got - want).abs() < 1e-5 * (1.0 + want.abs()), "{m}×{k}·{k}×{n}: C[{i}][{j}] = {got}, want {want}");
                            worst = worst.max((got - exact).abs() / (k as f64).sqrt());
                        }
                        assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == 7.0), "padding columns untouched");
                    }
                    // The quantisation error itself: steps of 1/127 and 1/63 of values below 1.
                    assert!(worst < 0.02, "{m}×{k}·{k}×{n}: error {worst} per √k against the f32 product");
                });
            }
        }
    }

    #[test]
    fn weights_are_quantised_to_seven_bits_per_column() {
        let w = [0.6f32, -1.0, 0.25, 0.0, 3.0, 1.4, -3.0, 0.1];
        let packed = PackedB8::from_transposed(&w, 2, 4);
        assert_eq!(packed.scales, vec![1.0 / 63.0, 3.0 / 63.0]);
        assert_eq!(packed.value(1, 0), -1.0);
        assert_eq!(packed.value(0, 1), 3.0);
        let step = |v: f32, c: usize| v * packed.scales[c];
        assert_eq!(packed.value(0, 0), step(38.0, 0), "0.6 is 37.8 steps: 38");
        assert_eq!(packed.value(2, 0), step(16.0, 0), "0.25 is 15.75 steps: 16");
        assert_eq!(packed.value(3, 1), step(2.0, 1), "0.1 is 2.1 steps: 2");
        assert_eq!(packed.offsets, vec![128 * (38 - 63 + 16), 128 * (63 + 29 - 63 + 2)]);
    }
}
