//! Matrix products C = A·B with both operands rounded to bfloat16 and f32 sums, on CPUs with
//! AVX-512 BF16: the dense layers of `--dtype bf16` on the CPU.
//!
//! One `vdpbf16ps` multiplies and adds 32 pairs where an f32 FMA does 16, and B takes half the
//! memory. The layout is [`super::matmul`]'s with depth in pairs: B panels of [`NR`] columns
//! whose lane j holds rows 2q and 2q + 1 of column j (low half first), and A tiles of `MR` rows
//! holding (A[r][2q], A[r][2q + 1]) side by side.

use super::gemm::{bf16_bits, split_product, Finish, NR};
use super::partner::Partner;
use crate::simd::features;

/// Depth pairs per pass: a B panel slice (`KQ` × [`NR`] pairs, 16 KB) stays in the L1 cache.
const KQ: usize = 128;
/// Rows of A per block.
const MC: usize = 480;
/// Rows of an A tile: 12 × 2 accumulators.
const MR: usize = 12;

/// Whether this CPU runs [`matmul_bf16`].
pub fn available() -> bool {
    features().avx512f && features().avx512bf16
}

/// Two values as one pair lane: `lo` in the low half.
fn pair(lo: f32, hi: f32) -> u32 {
    bf16_bits(lo) | bf16_bits(hi) << 16
}

/// B (K × N) in bfloat16 pairs: `data[(p · kq + q) · NR + j]` = (B[2q][c], B[2q + 1][c]) for
/// column c = p·NR + j; zero beyond N and K.
#[derive(Clone, Debug, Default)]
pub struct PackedB16 {
    k: usize,
    n: usize,
    data: Vec<u32>,
}

impl PackedB16 {
    /// B = Wᵀ for W given as N rows of K (a dense layer's `weight`, out × in).
    pub fn from_transposed(w: &[f32], n: usize, k: usize) -> Self {
        let kq = k.div_ceil(2);
        let mut data = vec![0u32; n.div_ceil(NR) * kq * NR];
        for (p, panel) in data.chunks_exact_mut(kq * NR).enumerate() {
            for j in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + j) * k..][..k];
                for q in 0..kq {
                    panel[q * NR + j] = pair(row[2 * q], row.get(2 * q + 1).copied().unwrap_or(0.0));
                }
            }
        }
        PackedB16 { k, n, data }
    }
}

/// C = A·B as [`super::matmul::matmul`] computes it (same arguments, `finish` on blocks of
/// finished rows), with A and B rounded to bfloat16. Only call it where [`available`] is true.
#[allow(clippy::too_many_arguments)]
pub fn matmul_bf16(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB16,
    c: &mut [f32],
    ldc: usize,
    partner: Option<&Partner>,
    finish: impl Fn(usize, &mut [f32]) + Sync,
) {
    let (k, n) = (b.k, b.n);
    assert!(available(), "bf16 products need AVX-512 BF16");
    assert!(m == 0 || (a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n && lda >= k && ldc >= n));
    split_product(m, n, c, ldc, partner, MC, &finish, |first, rows, panels, c, ldc, finish| {
        product(&a[first * lda..], lda, rows, b, panels, c, ldc, finish)
    });
}

/// C's columns of B's panels `panels` (the first of them at C's column 0) for A's `m` rows, on
/// this thread.
#[allow(clippy::too_many_arguments)]
fn product(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB16,
    panels: std::ops::Range<usize>,
    c: &mut [f32],
    ldc: usize,
    finish: Finish<'_>,
) {
    let (k, n) = (b.k, b.n);
    let kq = k.div_ceil(2);
    let first_col = panels.start * NR;
    let mut packed_a = vec![0u32; MC.min(m.div_ceil(MR) * MR) * KQ.min(kq)];
    for m0 in (0..m).step_by(MC) {
        let mb = MC.min(m - m0);
        for q0 in (0..kq).step_by(KQ) {
            let qb = KQ.min(kq - q0);
            for (t, r0) in (0..mb).step_by(MR).enumerate() {
                let rows = MR.min(mb - r0);
                let tile = &mut packed_a[t * MR * qb..][..rows * qb];
                for (q, column) in tile.chunks_exact_mut(rows).enumerate() {
                    let kk = 2 * (q0 + q);
                    for (r, v) in column.iter_mut().enumerate() {
                        let row = &a[(m0 + r0 + r) * lda..][..k];
                        *v = pair(row[kk], if kk + 1 < k { row[kk + 1] } else { 0.0 });
                    }
                }
            }
            for p in panels.clone() {
                let panel = &b.data[(p * kq + q0) * NR..][..qb * NR];
                let cols = NR.min(n - p * NR);
                for (t, r0) in (0..mb).step_by(MR).enumerate() {
                    let rows = MR.min(mb - r0);
                    let out = &mut c[(m0 + r0) * ldc + p * NR - first_col..];
                    avx512::tile(rows, qb, &packed_a[t * MR * qb..][..rows * qb], panel, out, ldc, cols, q0 > 0);
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
mod avx512 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// C[rows × cols] (+)= A tile (`qb` pairs deep, packed) · B panel slice.
    #[allow(clippy::too_many_arguments)]
    pub fn tile(
        rows: usize,
        qb: usize,
        a: &[u32],
        b: &[u32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        assert!(super::available() && rows <= MR && cols <= NR && a.len() >= rows * qb && b.len() >= qb * NR);
        assert!(rows == 0 || c.len() >= (rows - 1) * ldc + cols);
        // SAFETY: the CPU has AVX-512F and BF16 (asserted); the slices are long enough (asserted).
        unsafe {
            dispatch_rows!(rows, (qb, a, b, c, ldc, cols, accumulate); 1 2 3 4 5 6 7 8 9 10 11 12);
        }
    }

    /// C[R × cols] (+)= the A tile · the B panel slice.
    ///
    /// # Safety
    /// The CPU has AVX-512F and BF16; A holds R·qb pairs, B qb·NR, C (R − 1)·ldc + cols
    /// elements, and `cols` ≤ NR (what `tile` checks).
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn rows_n<const R: usize>(
        qb: usize,
        a: &[u32],
        b: &[u32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for q in 0..qb {
            // SAFETY: q < qb: within the qb·NR pairs of B (checked by `tile`).
            let (b0, b1): (__m512bh, __m512bh) = unsafe {
                (
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(q * NR).cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(q * NR + 16).cast())),
                )
            };
            for r in 0..R {
                // SAFETY: q < qb, r < R: within the R·qb pairs of A (checked by `tile`); a pair of
                // bfloat16 is 32 bits, like the lanes it is broadcast to.
                let x: __m512bh = unsafe { std::mem::transmute(_mm512_set1_epi32(*ap.add(q * R + r) as i32)) };
                lo[r] = _mm512_dpbf16_ps(lo[r], x, b0);
                hi[r] = _mm512_dpbf16_ps(hi[r], x, b1);
            }
        }
        let mask_lo: __mmask16 = if cols >= 16 { 0xffff } else { (1u16 << cols) - 1 };
        let mask_hi: __mmask16 = if cols >= 32 {
            0xffff
        } else if cols <= 16 {
            0
        } else {
            (1u16 << (cols - 16)) - 1
        };
        let cp = c.as_mut_ptr();
        for r in 0..R {
            // SAFETY: row r < R has `cols` valid elements at r·ldc (checked by `tile`), so `out`
            // lies within C; masked loads and stores touch no other element. The upper half's
            // address is formed with `wrapping_add`: with `cols` < 16 in C's last row it lies past
            // C's end, where `add` would be undefined behaviour even though its mask is empty.
            unsafe {
                let out = cp.add(r * ldc);
                let (mut v0, mut v1) = (lo[r], hi[r]);
                if accumulate {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(mask_lo, out));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(mask_hi, out.wrapping_add(16)));
                }
                _mm512_mask_storeu_ps(out, mask_lo, v0);
                _mm512_mask_storeu_ps(out.wrapping_add(16), mask_hi, v1);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    #[allow(clippy::too_many_arguments)]
    pub fn tile(_: usize, _: usize, _: &[u32], _: &[u32], _: &mut [f32], _: usize, _: usize, _: bool) {
        unreachable!("bf16 products are only offered where `available()` is true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::cpu::partner::with_partner;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0).collect()
    }

    fn bf16(x: f32) -> f64 {
        f64::from(f32::from_bits(bf16_bits(x) << 16))
    }

    #[test]
    fn rounding_to_bfloat16_is_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even one, 1.
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_bits(-2.5), 0xc020);
        assert!(f32::from_bits(bf16_bits(f32::NAN) << 16).is_nan());
    }

    /// A tile whose last row is narrower than 16 columns and ends exactly at C's end (the case
    /// where the upper half's address lies past C): the row's sums are right and the buffer
    /// beyond C is untouched.
    #[test]
    fn a_narrow_last_row_at_the_end_of_c_is_written_and_nothing_beyond() {
        if !available() {
            return;
        }
        let (rows, qb, ldc) = (3, 5, 40);
        let a: Vec<u32> = values(rows * qb * 2, 3).chunks_exact(2).map(|p| pair(p[0], p[1])).collect();
        let b: Vec<u32> = values(qb * NR * 2, 4).chunks_exact(2).map(|p| pair(p[0], p[1])).collect();
        let half = |v: u32, hi: bool| f64::from(f32::from_bits(if hi { v & 0xffff_0000 } else { v << 16 }));
        for cols in [1, 7, 15, 16] {
            for accumulate in [false, true] {
                let len = (rows - 1) * ldc + cols;
                let mut buffer = vec![2f32; len + 64];
                avx512::tile(rows, qb, &a, &b, &mut buffer[..len], ldc, cols, accumulate);
                for r in 0..rows {
                    for j in 0..cols {
                        let sum: f64 = (0..qb)
                            .map(|q| {
                                let (x, y) = (a[q * rows + r], b[q * NR + j]);
                                half(x, false) * half(y, false) + half(x, true) * half(y, true)
                            })
                            .sum();
                        let want = sum + if accumulate { 2.0 } else { 0.0 };
                        let got = f64::from(buffer[r * ldc + j]);
                        assert!((got - want).abs() < 1e-4, "cols {cols}: C[{r}][{j}] = {got}, want {want}");
                    }
                    if r + 1 < rows {
                        assert!(
                            buffer[r * ldc + cols..(r + 1) * ldc].iter().all(|&v| v == 2.0),
                            "cols {cols}: row {r} written past its columns"
                        );
                    }
                }
                assert!(buffer[len..].iter().all(|&v| v == 2.0), "cols {cols}: written past C's end");
            }
        }
    }

    #[test]
    fn every_shape_equals_an_f64_product_of_the_rounded_operands() {
        if !available() {
            // Nothing to run: the encoder never calls this without the instructions.
            #[cfg(target_arch = "x86_64")]
            assert!(!(features().avx512f && features().avx512bf16));
            return;
        }
        for &(m, n, k) in &[(1, 1, 1), (3, 33, 7), (13, 64, 301), (15, 384, 384), (500, 70, 600), (1000, 40, 40)] {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let packed = PackedB16::from_transposed(&w, n, k);
            let ldc = n + 3;
            for parallel in [false, true] {
                with_partner(parallel, |partner| {
                    let mut c = vec![7f32; m * ldc];
                    let finished = std::sync::Mutex::new(vec![0usize; m]);
                    matmul_bf16(&a, k, m, &packed, &mut c, ldc, partner, |first, rows| {
                        let count = rows.len().div_ceil(ldc);
                        finished.lock().unwrap()[first..first + count].iter_mut().for_each(|f| *f += 1);
                    });
                    assert!(finished.lock().unwrap().iter().all(|&f| f == 1), "every row finished once");
                    for i in 0..m {
                        for j in 0..n {
                            let want: f64 = (0..k).map(|kk| bf16(a[i * k + kk]) * bf16(w[j * k + kk])).sum();
                            let got = f64::from(c[i * ldc + j]);
                            assert!(
                                (got - want).abs() < 1e-5 * (k as f64).sqrt() * 4.0,
                                "{m}×{k}·{k}×{n}: C[{i}][{j}] = {got}, want {want}"
                            );
                        }
                        assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == 7.0), "padding columns untouched");
                    }
                });
            }
        }
    }
}
