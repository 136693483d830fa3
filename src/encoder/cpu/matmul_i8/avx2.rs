//! The AVX2 kernels of [`super::matmul_i8`]: `vpmaddubsw` + `vpmaddwd` tiles of [`MR`] rows ×
//! one panel, and the quantisation of A's rows. Installed only where the CPU has AVX2; each
//! entry point asserts it and checks its slices before the unchecked loads and stores.

use std::arch::x86_64::*;

use super::{Scales, NR8};

/// Rows of a tile: 4 × 2 accumulators, 2 B registers, the broadcast, a constant and the
/// products in flight fit the 16 AVX2 registers.
pub const MR: usize = 4;

/// See [`super::QuantiseFn`]; installed where the CPU has AVX2 (the caller of
/// [`super::matmul_i8`] checked).
pub fn quantise_row(row: &[f32], codes: &mut [u8]) -> f32 {
    assert!(super::available() && codes.len() == row.len());
    // SAFETY: the CPU has AVX2 (asserted).
    unsafe { quantise(row, codes) }
}

#[target_feature(enable = "avx2")]
fn quantise(row: &[f32], codes: &mut [u8]) -> f32 {
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let mut largest = _mm256_setzero_ps();
    for chunk in chunks.clone() {
        // SAFETY: a chunk holds 8 f32.
        let v = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
        // `max` returns its second operand where the first is NaN: NaNs are ignored.
        largest = _mm256_max_ps(_mm256_and_ps(v, magnitude), largest);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), largest) };
    let largest = lanes.iter().chain(tail).fold(0f32, |m, v| m.max(v.abs()));
    let (scale, inverse) = super::steps(largest);
    let (inverse_v, most, least, zero) = (
        _mm256_set1_ps(inverse),
        _mm256_set1_ps(super::A_MAX),
        _mm256_set1_ps(-super::A_MAX),
        _mm256_set1_epi32(super::A_ZERO),
    );
    let (body, rest) = codes.split_at_mut(row.len() - tail.len());
    for (chunk, out) in chunks.zip(body.chunks_exact_mut(8)) {
        // SAFETY: a chunk holds 8 f32, `out` 8 bytes.
        unsafe {
            let x = _mm256_mul_ps(_mm256_loadu_ps(chunk.as_ptr()), inverse_v);
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
            // Clamped as floats, so ±∞ clamp as the scalar code does; NaN becomes 0.
            let x = _mm256_andnot_ps(nan, _mm256_min_ps(_mm256_max_ps(x, least), most));
            // The default rounding mode: to nearest, ties to even.
            let q = _mm256_add_epi32(_mm256_cvtps_epi32(x), zero);
            // 1..=255 fit 16 bits signed and 8 unsigned: pack twice, then take 4 bytes of each lane.
            let words = _mm256_packs_epi32(q, q);
            let bytes = _mm256_packus_epi16(words, words);
            let eight = _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256::<1>(bytes));
            _mm_storel_epi64(out.as_mut_ptr().cast(), eight);
        }
    }
    for (q, &v) in rest.iter_mut().zip(tail) {
        *q = super::code(v, inverse);
    }
    scale
}

/// See [`super::TileFn`]: one panel; installed where the CPU has AVX2 (the caller of
/// [`super::matmul_i8`] checked).
#[allow(clippy::too_many_arguments)]
pub fn tile(
    rows: usize,
    panels: usize,
    kq: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    scales: &Scales<'_>,
    c: &mut [f32],
    ldc: usize,
    cols: usize,
) {
    super::check_tile((MR, 1), rows, panels, kq, a, lda, b, scales, c, ldc, cols);
    assert!(super::available());
    // SAFETY: the CPU has AVX2 (asserted); the slices are long enough (checked).
    unsafe {
        dispatch_rows!(rows, (kq, a, lda, b, scales, c, ldc, cols); 1 2 3 4);
    }
}

/// C[R × cols] = the A rows · one B panel, scaled.
///
/// # Safety
/// The CPU has AVX2; A holds (R − 1)·lda + 4·kq bytes, B kq·64, `scales` R rows and the
/// panel's 16 columns, C (R − 1)·ldc + cols elements, and `cols` ≤ 16 (what `tile` checks).
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_n<const R: usize>(
    kq: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    scales: &Scales<'_>,
    c: &mut [f32],
    ldc: usize,
    cols: usize,
) {
    let ones = _mm256_set1_epi16(1);
    let mut sums = [[_mm256_setzero_si256(); 2]; R];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for q in 0..kq {
        // SAFETY: q < kq, r < R: within A's R rows of kq quads and B's kq · 64 bytes
        // (checked by `tile`); unaligned reads.
        let (b0, b1) = unsafe {
            (_mm256_loadu_si256(bp.add(q * NR8 * 4).cast()), _mm256_loadu_si256(bp.add(q * NR8 * 4 + 32).cast()))
        };
        for (r, sum) in sums.iter_mut().enumerate() {
            // SAFETY: r < R, q < kq: within A's R rows of kq quads (checked by `tile`).
            let x = _mm256_set1_epi32(unsafe { ap.add(r * lda + q * 4).cast::<i32>().read_unaligned() });
            sum[0] = _mm256_add_epi32(sum[0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones));
            sum[1] = _mm256_add_epi32(sum[1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
        }
    }
    for (r, sum) in sums.iter().enumerate() {
        let row_scale = _mm256_set1_ps(scales.rows[r]);
        let out = &mut c[r * ldc..][..cols];
        for (h, &s) in sum.iter().enumerate() {
            let first = h * 8;
            if first >= cols {
                break;
            }
            // SAFETY: `scales` holds the panel's 16 columns (checked by `tile`).
            let value = unsafe {
                let offsets = _mm256_loadu_si256(scales.offsets.as_ptr().add(first).cast());
                let step = _mm256_mul_ps(row_scale, _mm256_loadu_ps(scales.cols.as_ptr().add(first)));
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s, offsets)), step)
            };
            if cols - first >= 8 {
                // SAFETY: 8 columns from `first` lie within the row's `cols`.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(first), value) };
            } else {
                // A narrow edge through a buffer: AMD's masked stores are slow.
                let mut buffer = [0f32; 8];
                // SAFETY: `buffer` holds 8 f32.
                unsafe { _mm256_storeu_ps(buffer.as_mut_ptr(), value) };
                out[first..].copy_from_slice(&buffer[..cols - first]);
            }
        }
    }
}
