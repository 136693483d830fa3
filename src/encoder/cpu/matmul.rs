//! Matrix products C = A·B for CPU inference, with B packed once (weights at load, keys and
//! values per attention head).
//!
//! A general matrix library packs B again on every call; for a 15-token query that packing
//! costs more than the arithmetic. Here B is stored in panels of [`NR`] columns, k-major, so the
//! inner kernel streams it contiguously. A is read where it lies, `mr` rows at a time: packing it
//! into k-major tiles first (a transposing copy) cost more than it saved (SciFact +7 %, a single
//! query's p50 −10 % without it, interleaved runs of `bench encode`, 2026-12-03). The kernel
//! is AVX-512 (12 rows × 32 columns, 24 accumulators in registers) where the CPU has it, AVX2
//! with FMA (6 rows × 16 columns, 12 accumulators) where it has that, and a portable one
//! elsewhere, chosen once.

use std::sync::OnceLock;

use super::gemm::{bf16_bits, split_product, Finish, NR};
use super::partner::Partner;
use crate::simd::features;

/// Depth of one pass: a B panel slice (`KC` × [`NR`] f32, 32 KB) stays in the L1 cache.
const KC: usize = 256;
/// Rows of A per block where the L2 cache's size is not known: an A block (`MC` × [`KC`], 480 KB)
/// stays in a 1 MB L2 cache (10 % faster than 120 rows in a one-thread probe of the layer shapes
/// on the 2-core machine). [`block_rows`] scales it to the CPU's L2.
const MC: usize = 480;
/// Most rows of A for which B is streamed panel by panel over its whole depth: a short query's
/// product is bound by reading the weights, and this reads them in the order they lie.
const STREAM_MAX_ROWS: usize = 24;
/// How many depth rows of a B panel (128 B each) ahead of the kernel the weights are prefetched.
const PREFETCH_DEPTH: usize = 64;

/// B (K × N) packed in panels of [`NR`] columns: `data[(p · k + kk) · NR + j]` = B[kk][p·NR + j],
/// zero beyond column N. In f32, or in bfloat16 ([`Bf16`]) for half the memory.
#[derive(Clone, Debug, Default)]
pub struct PackedB<T = f32> {
    k: usize,
    n: usize,
    data: Vec<T>,
}

/// The bits of a bfloat16 (the high half of an f32), as [`PackedB`] stores the weights of
/// `--dtype bf16` on CPUs without AVX-512 BF16.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bf16(u16);

/// What a [`PackedB`] holds: the kernels read f32, so a depth slice of bfloat16 is widened into
/// a buffer before its tiles use it (exactly: every bfloat16 is an f32).
pub trait Stored: Copy + Default + Send + Sync {
    /// `x` as stored (bfloat16: rounded to nearest, ties to even).
    fn store(x: f32) -> Self;
    /// `slice` as f32, in place or widened into `buffer`.
    fn widened<'a>(slice: &'a [Self], buffer: &'a mut Vec<f32>) -> &'a [f32];
}

impl Stored for f32 {
    fn store(x: f32) -> Self {
        x
    }

    fn widened<'a>(slice: &'a [f32], _: &'a mut Vec<f32>) -> &'a [f32] {
        slice
    }
}

impl Stored for Bf16 {
    fn store(x: f32) -> Self {
        Bf16(bf16_bits(x) as u16)
    }

    fn widened<'a>(slice: &'a [Bf16], buffer: &'a mut Vec<f32>) -> &'a [f32] {
        buffer.clear();
        buffer.extend(slice.iter().map(|h| f32::from_bits(u32::from(h.0) << 16)));
        buffer
    }
}

impl<T: Stored> PackedB<T> {
    /// B = Wᵀ for a weight matrix W given as N rows of K (a dense layer's `weight`, out × in),
    /// row `i` starting at `w[i · ld]`.
    pub fn from_transposed(w: &[f32], n: usize, k: usize, ld: usize) -> Self {
        let mut packed = PackedB::default();
        packed.pack_transposed(w, n, k, ld);
        packed
    }

    /// Repacks in place (reusing the buffer) from W, N rows of K with row stride `ld`: B = Wᵀ.
    pub fn pack_transposed(&mut self, w: &[f32], n: usize, k: usize, ld: usize) {
        self.resize(k, n);
        for (p, panel) in self.data.chunks_exact_mut(k * NR).enumerate() {
            for j in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + j) * ld..][..k];
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * NR + j] = T::store(v);
                }
            }
        }
    }

    /// Repacks in place from B itself, K rows of N with row stride `ld`.
    pub fn pack(&mut self, b: &[f32], k: usize, n: usize, ld: usize) {
        self.resize(k, n);
        for (p, panel) in self.data.chunks_exact_mut(k * NR).enumerate() {
            let cols = NR.min(n - p * NR);
            for kk in 0..k {
                for (to, &v) in panel[kk * NR..kk * NR + cols].iter_mut().zip(&b[kk * ld + p * NR..][..cols]) {
                    *to = T::store(v);
                }
            }
        }
    }

    fn resize(&mut self, k: usize, n: usize) {
        let len = n.div_ceil(NR) * k * NR;
        self.data.clear();
        self.data.resize(len, T::default());
        self.k = k;
        self.n = n;
    }
}

/// C = A·B for A with `m` rows of B's K (row stride `lda`) into C (row stride `ldc`), calling
/// `finish(first_row, rows)` on finished blocks of C rows (`rows` starts at row `first_row`,
/// `ldc` apart, B's N valid columns each), while they are still in cache: bias, activation,
/// residual, normalisation.
///
/// With a `partner`, the product is split in two: by rows when there are many (each half
/// finishes its own rows), else by column panels, which halves the weights each core streams
/// (one short query), finishing once both halves are done.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Stored>(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB<T>,
    c: &mut [f32],
    ldc: usize,
    partner: Option<&Partner>,
    finish: impl Fn(usize, &mut [f32]) + Sync,
) {
    let (k, n) = (b.k, b.n);
    assert!(m == 0 || (a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n && lda >= k && ldc >= n));
    split_product(m, n, c, ldc, partner, kernels().mc, &finish, |first, rows, panels, c, ldc, finish| {
        product(&a[first * lda..], lda, rows, b, panels, c, ldc, finish)
    });
}

/// C's columns of B's panels `panels` (the first of them at C's column 0), on this thread.
#[allow(clippy::too_many_arguments)]
fn product<T: Stored>(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB<T>,
    panels: std::ops::Range<usize>,
    c: &mut [f32],
    ldc: usize,
    finish: Finish<'_>,
) {
    let (k, n) = (b.k, b.n);
    let kernels = kernels();
    let mr = kernels.mr;
    let first_col = panels.start * NR;
    // Many rows: A in blocks of MC rows × KC deep, each B depth slice used by all of a block's
    // tiles. Few rows (a query): all of A at once, and each panel read over its whole depth
    // before the next, so B streams from memory in the order it lies. Both add the same KC
    // depth slices in the same order: a row's result does not depend on the rows beside it.
    let (block_rows, block_depth) = if m <= STREAM_MAX_ROWS { (m.max(1), k.max(1)) } else { (kernels.mc, KC) };
    let mut buffer = Vec::new();
    for m0 in (0..m).step_by(block_rows) {
        let mb = block_rows.min(m - m0);
        for d0 in (0..k).step_by(block_depth) {
            let db = block_depth.min(k - d0);
            let slices = || (d0..d0 + db).step_by(KC).map(move |k0| (k0, KC.min(d0 + db - k0)));
            for p in panels.clone() {
                let cols = NR.min(n - p * NR);
                for (k0, kb) in slices() {
                    let panel = T::widened(&b.data[(p * k + k0) * NR..][..kb * NR], &mut buffer);
                    for r0 in (0..mb).step_by(mr) {
                        let rows = mr.min(mb - r0);
                        let tile = &a[(m0 + r0) * lda + k0..];
                        let out = &mut c[(m0 + r0) * ldc + p * NR - first_col..];
                        (kernels.tile)(rows, kb, tile, lda, panel, out, ldc, cols, k0 > 0);
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

/// One kernel call: C[rows × cols] (+)= A[rows × kc] · B panel (kc × NR), A with row stride
/// `lda`.
/// `accumulate` adds to C's current values instead of overwriting them.
type TileFn = fn(
    rows: usize,
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    cols: usize,
    accumulate: bool,
);

struct Kernels {
    /// Rows of a full A tile.
    mr: usize,
    tile: TileFn,
    /// Rows of A per block ([`block_rows`]).
    mc: usize,
}

/// Rows of A per block for an L2 cache of `l2_kb` KB (`None`: unknown): an A block (rows × [`KC`]
/// f32) takes 15/32 of it, as [`MC`] does of 1 MB, in whole tiles of 12 rows. A block that does
/// not fit spills to the L3, which other cores (and, on a shared host, other machines) compete
/// for: on a 512 KB L2 (AMD Zen 3) 480 rows left isovec at the mercy of its neighbours.
/// Blocking groups rows only; no result depends on it.
fn block_rows(l2_kb: Option<usize>) -> usize {
    let Some(kb) = l2_kb.filter(|&kb| kb > 0) else { return MC };
    let rows = kb * 1024 * 15 / 32 / (KC * 4);
    (rows / 12 * 12).clamp(48, 1920)
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let mc = block_rows(features().l2_kb);
        #[cfg(target_arch = "x86_64")]
        {
            if features().avx512f {
                return Kernels { mr: avx512::MR, tile: avx512::tile, mc };
            }
            if avx2::available() {
                return Kernels { mr: avx2::MR, tile: avx2::tile, mc };
            }
        }
        Kernels { mr: PORTABLE_MR, tile: portable_tile, mc }
    })
}

/// Rows of the portable kernel's tile.
const PORTABLE_MR: usize = 4;

/// The kernel of CPUs without AVX2 and FMA, in plain Rust.
#[allow(clippy::too_many_arguments)]
fn portable_tile(
    rows: usize,
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    match rows {
        1 => portable_rows::<1>(kc, a, lda, b, c, ldc, cols, accumulate),
        2 => portable_rows::<2>(kc, a, lda, b, c, ldc, cols, accumulate),
        3 => portable_rows::<3>(kc, a, lda, b, c, ldc, cols, accumulate),
        _ => portable_rows::<4>(kc, a, lda, b, c, ldc, cols, accumulate),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn portable_rows<const R: usize>(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    let at = |r: usize, kk: usize| a[r * lda + kk];
    let mut acc = [[0f32; NR]; R];
    for (kk, bv) in b.chunks_exact(NR).take(kc).enumerate() {
        for (r, sums) in acc.iter_mut().enumerate() {
            let x = at(r, kk);
            for (s, &v) in sums.iter_mut().zip(bv) {
                *s += x * v;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let out = &mut c[r * ldc..][..cols];
        for (o, &v) in out.iter_mut().zip(row) {
            *o = if accumulate { *o + v } else { v };
        }
    }
}

/// Panics unless a [`TileFn`] call's slices hold what it reads and writes, for a kernel of
/// `mr` rows: the SIMD kernels check this before their unchecked loads and stores.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn check_tile(mr: usize, rows: usize, kc: usize, a: &[f32], lda: usize, b: &[f32], c: &[f32], ldc: usize, cols: usize) {
    assert!(b.len() >= kc * NR && cols <= NR && rows <= mr && lda >= kc);
    let a_len = rows.saturating_sub(1) * lda + kc;
    assert!(rows == 0 || (a.len() >= a_len && c.len() >= (rows - 1) * ldc + cols));
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::NR;

    /// Rows of a full tile. A panel's 32 columns are done in two halves of 16: 6 rows × 2
    /// accumulators, 2 B registers and a broadcast take 15 of the 16 AVX2 registers.
    pub const MR: usize = 6;

    /// Columns of one half-panel pass: two AVX2 registers of f32.
    const HALF: usize = 16;

    /// Whether the CPU has AVX2 and FMA, which [`tile`] needs.
    pub fn available() -> bool {
        crate::simd::features().avx2_fma()
    }

    /// See [`super::TileFn`]; installed only after [`available`]. Every element is summed over
    /// the depth in the same order, with the same fused multiply-adds, as by the AVX-512 kernel,
    /// so both give the same bits.
    #[allow(clippy::too_many_arguments)]
    pub fn tile(
        rows: usize,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        super::check_tile(MR, rows, kc, a, lda, b, c, ldc, cols);
        for first in (0..cols).step_by(HALF) {
            let width = HALF.min(cols - first);
            // SAFETY: the CPU has AVX2 and FMA (see `kernels()`); the slices are long enough
            // (asserted), and columns first..first + width lie within `cols`.
            unsafe {
                // One instance per tile height, so each keeps its accumulators in registers.
                dispatch_rows!(rows, (kc, a, lda, b, first, c, ldc, width, accumulate); 1 2 3 4 5 6);
            }
        }
    }

    /// C[R × width] at column `first` (+)= A · B's columns first..first + width.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; A holds (R − 1)·lda + kc elements, B kc·NR, C (R − 1)·ldc +
    /// first + width, `first` + 16 ≤ NR and `width` ≤ 16 (what `tile` checks).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_n<const R: usize>(
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        first: usize,
        c: &mut [f32],
        ldc: usize,
        width: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for kk in 0..kc {
            // As in the AVX-512 kernel: this half's line of the weights, ahead.
            _mm_prefetch(bp.wrapping_add((kk + super::PREFETCH_DEPTH) * NR + first).cast(), _MM_HINT_T0);
            // SAFETY: kk < kc and first + 16 ≤ NR: within B's kc·NR elements (the caller
            // checked).
            let (b0, b1) =
                unsafe { (_mm256_loadu_ps(bp.add(kk * NR + first)), _mm256_loadu_ps(bp.add(kk * NR + first + 8))) };
            for r in 0..R {
                // SAFETY: r < R and kk < kc: within A's (R − 1)·lda + kc elements (the caller
                // checked).
                let x = _mm256_set1_ps(unsafe { *ap.add(r * lda + kk) });
                lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
            }
        }
        let cp = c.as_mut_ptr();
        if width == HALF {
            for r in 0..R {
                // SAFETY: row r < R has 16 valid elements from column `first` (checked by the
                // caller).
                unsafe {
                    let out = cp.add(r * ldc + first);
                    let (mut v0, mut v1) = (lo[r], hi[r]);
                    if accumulate {
                        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(out));
                        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(out.add(8)));
                    }
                    _mm256_storeu_ps(out, v0);
                    _mm256_storeu_ps(out.add(8), v1);
                }
            }
            return;
        }
        // A narrower edge (the last panel of an N that is not a multiple of 16, such as a short
        // text's attention scores): through a buffer, as AMD's masked stores are slow.
        for r in 0..R {
            let mut sums = [0f32; HALF];
            // SAFETY: `sums` holds 16 f32.
            unsafe {
                _mm256_storeu_ps(sums.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(sums.as_mut_ptr().add(8), hi[r]);
            }
            let out = &mut c[r * ldc + first..][..width];
            for (o, &v) in out.iter_mut().zip(&sums) {
                *o = if accumulate { *o + v } else { v };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::NR;

    /// Rows of a full tile: 12 × 2 accumulators + 2 B registers of the 32.
    pub const MR: usize = 12;

    /// See [`super::TileFn`]; installed only after detecting AVX-512F.
    #[allow(clippy::too_many_arguments)]
    pub fn tile(
        rows: usize,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        super::check_tile(MR, rows, kc, a, lda, b, c, ldc, cols);
        // SAFETY: the CPU has AVX-512F (see `kernels()`); the slices are long enough (asserted).
        unsafe {
            // One instance per tile height, so each keeps its accumulators in registers.
            dispatch_rows!(rows, (kc, a, lda, b, c, ldc, cols, accumulate); 1 2 3 4 5 6 7 8 9 10 11 12);
        }
    }

    /// C[R × cols] (+)= A · B's first `cols` columns.
    ///
    /// # Safety
    /// The CPU has AVX-512F; A holds (R − 1)·lda + kc elements, B kc·NR, C (R − 1)·ldc + cols,
    /// and `cols` ≤ NR (what `tile` checks).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_n<const R: usize>(
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for kk in 0..kc {
            // Weights stream from memory once per product: asked for PREFETCH_DEPTH
            // rows ahead (a hint: it reads nothing and never faults, past B's end too).
            _mm_prefetch(bp.wrapping_add((kk + super::PREFETCH_DEPTH) * NR).cast(), _MM_HINT_T0);
            _mm_prefetch(bp.wrapping_add((kk + super::PREFETCH_DEPTH) * NR + 16).cast(), _MM_HINT_T0);
            // SAFETY: kk < kc: within B's kc·NR elements (the caller checked).
            let (b0, b1) = unsafe { (_mm512_loadu_ps(bp.add(kk * NR)), _mm512_loadu_ps(bp.add(kk * NR + 16))) };
            for r in 0..R {
                // SAFETY: r < R and kk < kc: within A's (R − 1)·lda + kc elements (the caller
                // checked).
                let x = _mm512_set1_ps(unsafe { *ap.add(r * lda + kk) });
                lo[r] = _mm512_fmadd_ps(x, b0, lo[r]);
                hi[r] = _mm512_fmadd_ps(x, b1, hi[r]);
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
            // SAFETY: row r < R has `cols` valid elements at r·ldc (checked by the caller);
            // masked loads and stores touch no other element.
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::encoder::cpu::partner::with_partner;

    /// C = A·Bᵀ in f64, the independent reference.
    fn reference(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|kk| f64::from(a[i * k + kk]) * f64::from(w[j * k + kk])).sum();
            }
        }
        c
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0).collect()
    }

    fn check(c: &[f32], ldc: usize, want: &[f64], n: usize, k: usize, what: &str) {
        for (i, row) in want.chunks_exact(n).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                let got = f64::from(c[i * ldc + j]);
                assert!((got - w).abs() < 1e-5 * (k as f64).sqrt() * 4.0, "{what}: C[{i}][{j}] = {got}, want {w}");
            }
        }
    }

    #[test]
    fn every_shape_equals_an_f64_product() {
        // Sizes around the tile (12 / 6 / 4 rows), panel (32), depth (256) and block (240 rows on a 512 KB L2) edges.
        for &(m, n, k) in
            &[(1, 1, 1), (3, 33, 7), (13, 64, 300), (15, 384, 384), (121, 70, 513), (250, 32, 256), (300, 100, 40)]
        {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let want = reference(&a, &w, m, n, k);
            let packed: PackedB = PackedB::from_transposed(&w, n, k, k);
            // C wider than N: columns beyond N must be left alone.
            let ldc = n + 3;
            for parallel in [false, true] {
                with_partner(parallel, |partner| {
                    let mut c = vec![7f32; m * ldc];
                    // `finish` sees every row once, after its product: it doubles them here.
                    let finished = std::sync::Mutex::new(vec![0usize; m]);
                    matmul(&a, k, m, &packed, &mut c, ldc, partner, |first, rows| {
                        let count = rows.len().div_ceil(ldc);
                        finished.lock().unwrap()[first..first + count].iter_mut().for_each(|f| *f += 1);
                        for row in rows.chunks_mut(ldc) {
                            row[..n].iter_mut().for_each(|v| *v *= 2.0);
                        }
                    });
                    let doubled: Vec<f64> = want.iter().map(|w| w * 2.0).collect();
                    check(&c, ldc, &doubled, n, k, &format!("{m}×{k}·{k}×{n}, parallel {parallel}"));
                    assert!(finished.lock().unwrap().iter().all(|&f| f == 1), "every row finished once");
                    for i in 0..m {
                        assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == 7.0), "padding columns untouched");
                    }
                });
            }
            // A read in place with a row stride wider than K (a head's queries in the QKV rows).
            let lda = k + 5;
            let mut wide = vec![f32::NAN; m * lda];
            for i in 0..m {
                wide[i * lda..][..k].copy_from_slice(&a[i * k..][..k]);
            }
            let mut c = vec![0f32; m * n];
            matmul(&wide, lda, m, &packed, &mut c, n, None, |_, _| {});
            check(&c, n, &want, n, k, &format!("{m}×{k}·{k}×{n}, A row stride {lda}"));
            // The same B given untransposed (K × N) packs to the same panels.
            let b: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
            let mut direct: PackedB = PackedB::default();
            direct.pack(&b, k, n, n);
            assert_eq!(direct.data, packed.data);
        }
    }

    #[test]
    fn bfloat16_weights_multiply_as_their_f32_values() {
        for &(m, n, k) in &[(1, 1, 1), (13, 64, 300), (121, 70, 513)] {
            let a = values(m * k, 7);
            let w = values(n * k, 8);
            let rounded: Vec<f32> = w.iter().map(|&v| f32::from_bits(bf16_bits(v) << 16)).collect();
            assert!(rounded != w && rounded.iter().zip(&w).all(|(r, v)| (r - v).abs() <= v.abs() / 256.0));
            let half = PackedB::<Bf16>::from_transposed(&w, n, k, k);
            let full = PackedB::<f32>::from_transposed(&rounded, n, k, k);
            let want = reference(&a, &rounded, m, n, k);
            for parallel in [false, true] {
                with_partner(parallel, |partner| {
                    let (mut got, mut same) = (vec![0f32; m * n], vec![0f32; m * n]);
                    matmul(&a, k, m, &half, &mut got, n, partner, |_, _| {});
                    matmul(&a, k, m, &full, &mut same, n, partner, |_, _| {});
                    check(&got, n, &want, n, k, &format!("{m}×{k}·{k}×{n} bf16, parallel {parallel}"));
                    assert_eq!(got, same, "{m}×{k}·{k}×{n}: bf16 weights widen to exactly the rounded f32 ones");
                });
            }
        }
    }

    #[test]
    fn a_row_comes_out_the_same_bits_alone_or_among_many() {
        // A query encoded alone takes the few-rows path, in a batch the blocked one.
        let (n, k) = (70, 700);
        let w = values(n * k, 5);
        let packed: PackedB = PackedB::from_transposed(&w, n, k, k);
        let many = 300;
        let a = values(many * k, 6);
        let mut all = vec![0f32; many * n];
        matmul(&a, k, many, &packed, &mut all, n, None, |_, _| {});
        for (row, len) in [(0usize, 1usize), (37, 5), (280, 20)] {
            let mut few = vec![0f32; len * n];
            matmul(&a[row * k..], k, len, &packed, &mut few, n, None, |_, _| {});
            assert_eq!(few, all[row * n..(row + len) * n], "rows {row}..{}", row + len);
        }
    }

    #[test]
    fn blocks_fill_the_same_share_of_any_l2() {
        assert_eq!(block_rows(Some(1024)), MC, "1 MB: the tuned block");
        assert_eq!(block_rows(Some(512)), 240, "AMD Zen 3");
        assert_eq!(block_rows(Some(2048)), 960);
        assert_eq!(block_rows(Some(256)), 120);
        assert_eq!(block_rows(Some(1)), 48, "never below four AVX2 tiles");
        assert_eq!(block_rows(None), MC);
        assert_eq!(block_rows(Some(0)), MC, "a CPU that reports no size");
        for kb in [200, 1280, 3000] {
            assert_eq!(block_rows(Some(kb)) % 12, 0, "{kb} KB: whole tiles of both kernels");
        }
    }

    /// The kernels this CPU can run, by name.
    fn every_kernel() -> Vec<(&'static str, usize, TileFn)> {
        let mut found: Vec<(&'static str, usize, TileFn)> = vec![("portable", PORTABLE_MR, portable_tile)];
        #[cfg(target_arch = "x86_64")]
        {
            if avx2::available() {
                found.push(("avx2", avx2::MR, avx2::tile));
            }
            if features().avx512f {
                found.push(("avx512", avx512::MR, avx512::tile));
            }
        }
        found
    }

    /// Each kernel this CPU has, driven directly: every tile height, widths around the register
    /// edges, A's rows adjacent and further apart, writing and accumulating. The fused kernels (AVX2 and
    /// AVX-512) add in the same order, so they also agree bit for bit.
    #[test]
    fn every_kernel_equals_an_f64_product() {
        let kernels = every_kernel();
        eprintln!("kernels: {:?}", kernels.iter().map(|k| k.0).collect::<Vec<_>>());
        let mut fused: HashMap<String, Vec<f32>> = HashMap::new();
        for &k in &[1usize, 7, 300] {
            let w = values(NR * k, 4);
            let packed: PackedB = PackedB::from_transposed(&w, NR, k, k);
            for &(name, mr, tile) in &kernels {
                for rows in 1..=mr.min(12) {
                    let a = values(rows * k, 3);
                    // The same rows with 3 more elements between them: lda k + 3.
                    let spread: Vec<f32> = a.chunks(k).flat_map(|row| row.iter().copied().chain([9.0; 3])).collect();
                    for cols in [1, 8, 15, 16, 17, 31, 32] {
                        let want = reference(&a, &w[..cols * k], rows, cols, k);
                        for (tile_a, lda) in [(&a, k), (&spread, k + 3)] {
                            let ldc = cols + 2;
                            let mut c = vec![0.5f32; rows * ldc];
                            tile(rows, k, tile_a, lda, &packed.data, &mut c, ldc, cols, false);
                            let what = format!("{name}: {rows} rows, {cols} columns, depth {k}, lda {lda}");
                            check(&c, ldc, &want, cols, k, &what);
                            assert!(c.chunks(ldc).all(|row| row[cols..] == [0.5, 0.5]), "{what}: beyond the columns");
                            tile(rows, k, tile_a, lda, &packed.data, &mut c, ldc, cols, true);
                            let doubled: Vec<f64> = want.iter().map(|v| v * 2.0).collect();
                            check(&c, ldc, &doubled, cols, k, &format!("{what}, accumulating"));
                            if name != "portable" {
                                let key = format!("{rows} {cols} {k} {lda}");
                                if let Some(other) = fused.insert(key, c.clone()) {
                                    assert_eq!(other, c, "{what}: the fused kernels differ");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
