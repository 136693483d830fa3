//! The AVX-512 VNNI kernels of [`super::matmul_i8`]: `vpdpbusd` tiles of [`MR`] rows ×
//! [`PANELS`] panels, and the quantisation of A's rows. Installed only where [`available`] is
//! true; each entry point asserts it and checks its slices before the unchecked loads and
//! stores. The integer sums equal the AVX2 kernel's bit for bit.

use std::arch::x86_64::*;

use super::{Scales, NR8};

/// Rows of a full tile: 8 × 2 accumulators, 2 B registers and the broadcast of the 32.
pub const MR: usize = 8;
/// Panels of a full tile: 32 columns, two registers of 16 sums.
pub const PANELS: usize = 2;

/// Whether this CPU runs [`tile`]: AVX-512 VNNI's `vpdpbusd` multiplies 4 unsigned bytes
/// of A by 4 signed bytes of B and adds the 4 products to a 32-bit sum, in one instruction
/// where AVX2 takes three, with 16 sums per register.
pub fn available() -> bool {
    let features = crate::simd::features();
    features.avx512f && features.avx512vnni
}

/// See [`super::QuantiseFn`]; installed only after [`available`].
pub fn quantise_row(row: &[f32], codes: &mut [u8]) -> f32 {
    assert!(available() && codes.len() == row.len());
    // SAFETY: the CPU has AVX-512F (asserted).
    unsafe { quantise(row, codes) }
}

#[target_feature(enable = "avx512f")]
fn quantise(row: &[f32], codes: &mut [u8]) -> f32 {
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder();
    let mut largest = _mm512_setzero_ps();
    for chunk in chunks.clone() {
        // SAFETY: a chunk holds 16 f32.
        let v = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
        // `max` returns its second operand where the first is NaN: NaNs are ignored.
        largest = _mm512_max_ps(_mm512_abs_ps(v), largest);
    }
    let largest = tail.iter().fold(_mm512_reduce_max_ps(largest), |m, v| m.max(v.abs()));
    let (scale, inverse) = super::steps(largest);
    let (inverse_v, most, least, zero) = (
        _mm512_set1_ps(inverse),
        _mm512_set1_ps(super::A_MAX),
        _mm512_set1_ps(-super::A_MAX),
        _mm512_set1_epi32(super::A_ZERO),
    );
    let (body, rest) = codes.split_at_mut(row.len() - tail.len());
    for (chunk, out) in chunks.zip(body.chunks_exact_mut(16)) {
        // SAFETY: a chunk holds 16 f32, `out` 16 bytes.
        unsafe {
            let x = _mm512_mul_ps(_mm512_loadu_ps(chunk.as_ptr()), inverse_v);
            let number = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(x, x);
            // Clamped as floats, so ±∞ clamp as the scalar code does; NaN becomes 0.
            let x = _mm512_maskz_mov_ps(number, _mm512_min_ps(_mm512_max_ps(x, least), most));
            // The default rounding mode: to nearest, ties to even.
            let q = _mm512_add_epi32(_mm512_cvtps_epi32(x), zero);
            _mm_storeu_si128(out.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(q));
        }
    }
    for (q, &v) in rest.iter_mut().zip(tail) {
        *q = super::code(v, inverse);
    }
    scale
}

/// See [`super::TileFn`]; installed only after [`available`].
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
    super::check_tile((MR, PANELS), rows, panels, kq, a, lda, b, scales, c, ldc, cols);
    assert!(available());
    // SAFETY: the CPU has AVX-512F and VNNI (asserted); the slices are long enough (checked).
    unsafe {
        if panels == 2 {
            dispatch_rows!(rows, (kq, a, lda, b, scales, c, ldc, cols); 1 2 3 4 5 6 7 8);
        } else {
            dispatch_rows!(fn rows_one; rows, (kq, a, lda, b, scales, c, ldc, cols); 1 2 3 4 5 6 7 8);
        }
    }
}

/// A tile of two panels (32 columns).
///
/// # Safety
/// As for [`rows_panels`] with two panels.
#[target_feature(enable = "avx512f,avx512vnni")]
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
    // SAFETY: this function's contract is that of `rows_panels` with P = 2.
    unsafe { rows_panels::<R, 2>(kq, a, lda, b, scales, c, ldc, cols) }
}

/// A tile of one panel (C's last 16 columns, where N is not a multiple of 32).
///
/// # Safety
/// As for [`rows_panels`] with one panel.
#[target_feature(enable = "avx512f,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_one<const R: usize>(
    kq: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    scales: &Scales<'_>,
    c: &mut [f32],
    ldc: usize,
    cols: usize,
) {
    // SAFETY: this function's contract is that of `rows_panels` with P = 1.
    unsafe { rows_panels::<R, 1>(kq, a, lda, b, scales, c, ldc, cols) }
}

/// C[R × cols] = the A rows · P B panels, scaled.
///
/// # Safety
/// The CPU has AVX-512F and VNNI; A holds (R − 1)·lda + 4·kq bytes, B P panels of kq·64,
/// `scales` R rows and the tile's P·16 columns, C (R − 1)·ldc + cols elements, and `cols`
/// ≤ P·16 (what `tile` checks).
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_panels<const R: usize, const P: usize>(
    kq: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    scales: &Scales<'_>,
    c: &mut [f32],
    ldc: usize,
    cols: usize,
) {
    let mut sums = [[_mm512_setzero_si512(); P]; R];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let panel_bytes = kq * NR8 * 4;
    for q in 0..kq {
        let mut bq = [_mm512_setzero_si512(); P];
        for (p, v) in bq.iter_mut().enumerate() {
            // SAFETY: q < kq, p < P: within B's P panels of kq · 64 bytes (checked by `tile`).
            *v = unsafe { _mm512_loadu_si512(bp.add(p * panel_bytes + q * NR8 * 4).cast()) };
        }
        for (r, sum) in sums.iter_mut().enumerate() {
            // SAFETY: r < R, q < kq: within A's R rows of kq quads (checked by `tile`).
            let x = _mm512_set1_epi32(unsafe { ap.add(r * lda + q * 4).cast::<i32>().read_unaligned() });
            for (s, &v) in sum.iter_mut().zip(&bq) {
                *s = _mm512_dpbusd_epi32(*s, x, v);
            }
        }
    }
    let cp = c.as_mut_ptr();
    for (r, sum) in sums.iter().enumerate() {
        let row_scale = _mm512_set1_ps(scales.rows[r]);
        for (p, &s) in sum.iter().enumerate() {
            let first = p * NR8;
            if first >= cols {
                break;
            }
            let mask: __mmask16 = if cols - first >= 16 { 0xffff } else { (1u16 << (cols - first)) - 1 };
            // SAFETY: `scales` holds the tile's P · 16 columns (checked by `tile`); row r has
            // `cols` columns at r · ldc, and the masked store touches no other.
            unsafe {
                let offsets = _mm512_loadu_si512(scales.offsets.as_ptr().add(first).cast());
                let step = _mm512_mul_ps(row_scale, _mm512_loadu_ps(scales.cols.as_ptr().add(first)));
                let value = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s, offsets)), step);
                _mm512_mask_storeu_ps(cp.add(r * ldc + first), mask, value);
            }
        }
    }
}
