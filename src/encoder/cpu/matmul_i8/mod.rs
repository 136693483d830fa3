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
//! Where the CPU has AVX-512 VNNI, one `vpdpbusd` does the work of those three instructions on
//! twice the lanes, in tiles of 8 rows × 32 columns. It adds the same integers, so both kernels
//! give the same C bit for bit; B keeps its 7 bits there too.
//!
//! Layout: B in panels of [`NR8`] columns, depth in quads: `data[((p · kq + q) · NR8 + j) · 4 + t]`
//! = B[4q + t][p·NR8 + j], zero beyond N and K.
//!
//! This file packs B, quantises A's rows and drives the tiles; the kernels are in `avx2.rs` and
//! `avx512.rs`. Invariants: a kernel is installed only where the CPU has its instructions
//! ([`available`], `avx512::available`, from `crate::simd::features`), and every tile checks
//! its slices (`check_tile`) before its unchecked loads and stores.

use super::gemm::{split_product, Finish, NR};
use super::partner::Partner;
use crate::simd::features;

/// Columns of a panel: two AVX2 registers of 32-bit sums.
const NR8: usize = 16;
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
    features().avx2
}

/// B (K × N) quantised per column.
#[derive(Clone, Debug, Default)]
pub struct PackedB8 {
    k: usize,
    n: usize,
    data: Vec<i8>,
    /// Per column, padded with zeros to whole panels: the f32 value of one quantisation step.
    scales: Vec<f32>,
    /// Per column, padded with zeros to whole panels: 128 · Σ_k B[k][c], the offset of A's
    /// unsigned bytes, subtracted from the sums.
    offsets: Vec<i32>,
}

impl PackedB8 {
    /// B = Wᵀ for W given as N rows of K (a dense layer's `weight`, out × in).
    pub fn from_transposed(w: &[f32], n: usize, k: usize) -> Self {
        let kq = k.div_ceil(4);
        let padded = n.div_ceil(NR8) * NR8;
        let mut data = vec![0i8; padded * kq * 4];
        let mut scales = vec![0f32; padded];
        let mut offsets = vec![0i32; padded];
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

/// Quantises each of `rows` rows of A (`k` values, `lda` apart) into `out` (rows of `ldq`
/// bytes, the depth beyond `k` left at zero's code), one scale per row into `scales`.
#[allow(clippy::too_many_arguments)]
fn quantise_rows(
    quantise: QuantiseFn,
    a: &[f32],
    lda: usize,
    rows: usize,
    k: usize,
    out: &mut [u8],
    ldq: usize,
    scales: &mut [f32],
) {
    for r in 0..rows {
        let codes = &mut out[r * ldq..][..ldq];
        scales[r] = quantise(&a[r * lda..][..k], &mut codes[..k]);
        codes[k..].fill(A_ZERO as u8);
    }
}

/// One row of A into `codes` (as long as the row): code = round(v / scale), ties to even,
/// clamped to ±127, plus 128; a NaN's code is 128's. Returns the scale: the row's largest
/// magnitude (NaNs ignored) over 127, 0 for a row of zeros (all its codes 128).
type QuantiseFn = fn(row: &[f32], codes: &mut [u8]) -> f32;

/// Every element of [`QuantiseFn`] one at a time: the reference the vector kernels are tested
/// against.
#[cfg(test)]
fn quantise_row_scalar(row: &[f32], codes: &mut [u8]) -> f32 {
    let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (scale, inverse) = steps(largest);
    for (q, &v) in codes.iter_mut().zip(row) {
        *q = code(v, inverse);
    }
    scale
}

/// The scale of a row whose largest magnitude is `largest`, and its inverse (0 for a row of zeros).
fn steps(largest: f32) -> (f32, f32) {
    let scale = largest / A_MAX;
    (scale, if scale > 0.0 { 1.0 / scale } else { 0.0 })
}

/// One value's code, as [`QuantiseFn`] defines it (the vector kernels' tails).
fn code(v: f32, inverse: f32) -> u8 {
    ((v * inverse).round_ties_even().clamp(-A_MAX, A_MAX) as i32 + A_ZERO) as u8
}

/// What turns a tile's integer sums into C's values: C[r][j] = (sum − `offsets[j]`) ·
/// `rows[r]` · `cols[j]`, for the tile's rows and its panels' whole width of columns.
struct Scales<'a> {
    rows: &'a [f32],
    cols: &'a [f32],
    offsets: &'a [i32],
}

/// One tile: `rows` rows of A's codes (`lda` bytes apart, `kq` quads each) times `panels`
/// adjacent panels of B (`kq` · 64 bytes each), written as f32 to C's first `cols` columns.
type TileFn = fn(
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
);

/// The widest tile this CPU runs.
struct Kernel {
    /// Rows of a full tile.
    rows: usize,
    /// Panels of a full tile.
    panels: usize,
    tile: TileFn,
    quantise: QuantiseFn,
}

/// Checks what every [`TileFn`] relies on.
#[allow(clippy::too_many_arguments)]
fn check_tile(
    kernel: (usize, usize),
    rows: usize,
    panels: usize,
    kq: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    scales: &Scales<'_>,
    c: &[f32],
    ldc: usize,
    cols: usize,
) {
    let width = panels * NR8;
    assert!(
        rows <= kernel.0
            && (1..=kernel.1).contains(&panels)
            && cols <= width
            && lda >= kq * 4
            && b.len() >= panels * kq * NR8 * 4
    );
    assert!(scales.rows.len() >= rows && scales.cols.len() >= width && scales.offsets.len() >= width);
    assert!(rows == 0 || (a.len() >= (rows - 1) * lda + kq * 4 && c.len() >= (rows - 1) * ldc + cols));
}

fn kernel() -> &'static Kernel {
    static KERNEL: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
    KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            return Kernel {
                rows: avx512::MR,
                panels: avx512::PANELS,
                tile: avx512::tile,
                quantise: avx512::quantise_row,
            };
        }
        Kernel { rows: avx2::MR, panels: 1, tile: avx2::tile, quantise: avx2::quantise_row }
    })
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
fn product(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB8,
    panels: std::ops::Range<usize>,
    c: &mut [f32],
    ldc: usize,
    finish: Finish<'_>,
) {
    let (k, n) = (b.k, b.n);
    let kq = k.div_ceil(4);
    let ldq = kq * 4;
    let first_col = panels.start * NR;
    // The same columns in panels of NR8.
    let narrow = panels.start * (NR / NR8)..(panels.end * (NR / NR8)).min(n.div_ceil(NR8));
    let kernel = kernel();
    let block = MC.min(m);
    let mut codes = vec![0u8; block * ldq];
    let mut row_scales = vec![0f32; block];
    for m0 in (0..m).step_by(MC) {
        let mb = MC.min(m - m0);
        quantise_rows(kernel.quantise, &a[m0 * lda..], lda, mb, k, &mut codes, ldq, &mut row_scales);
        for p in narrow.clone().step_by(kernel.panels) {
            let count = kernel.panels.min(narrow.end - p);
            let panel = &b.data[p * kq * NR8 * 4..][..count * kq * NR8 * 4];
            let cols = (count * NR8).min(n - p * NR8);
            let columns = p * NR8..(p + count) * NR8;
            for r0 in (0..mb).step_by(kernel.rows) {
                let rows = kernel.rows.min(mb - r0);
                let scales = Scales {
                    rows: &row_scales[r0..],
                    cols: &b.scales[columns.clone()],
                    offsets: &b.offsets[columns.clone()],
                };
                let out = &mut c[(m0 + r0) * ldc + p * NR8 - first_col..];
                (kernel.tile)(rows, count, kq, &codes[r0 * ldq..], ldq, panel, &scales, out, ldc, cols);
            }
        }
        if let Some((first_row, finish)) = finish {
            let end = ((m0 + mb - 1) * ldc + n).min(c.len());
            finish(first_row + m0, &mut c[m0 * ldc..end]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::Scales;

    pub const MR: usize = 4;

    #[allow(clippy::too_many_arguments)]
    pub fn tile(
        _: usize,
        _: usize,
        _: usize,
        _: &[u8],
        _: usize,
        _: &[i8],
        _: &Scales<'_>,
        _: &mut [f32],
        _: usize,
        _: usize,
    ) {
        unreachable!("int8 products are only offered where `available()` is true")
    }

    pub fn quantise_row(_: &[f32], _: &mut [u8]) -> f32 {
        unreachable!("int8 products are only offered where `available()` is true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::cpu::partner::with_partner;

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
                            assert!(
                                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                                "{m}×{k}·{k}×{n}: C[{i}][{j}] = {got}, want {want}"
                            );
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

    /// Each quantiser this CPU has against the scalar definition, code for code: rows around the
    /// vector widths, ties (a row whose step is exactly 1), zeros, NaN and infinities.
    #[test]
    fn every_quantiser_equals_the_scalar_definition() {
        let mut quantisers: Vec<(&str, QuantiseFn)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if available() {
                quantisers.push(("avx2", avx2::quantise_row));
            }
            if avx512::available() {
                quantisers.push(("avx512", avx512::quantise_row));
            }
        }
        eprintln!("quantisers: {:?}", quantisers.iter().map(|q| q.0).collect::<Vec<_>>());
        let ties: Vec<f32> = (0..40).map(|i| [127.0, -126.5, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5][i % 8]).collect();
        let mut rows: Vec<Vec<f32>> = vec![ties, vec![0.0; 37], values(1536, 9), values(384, 10)];
        for len in [1, 7, 8, 9, 15, 16, 17, 31, 33, 100] {
            rows.push(values(len, len));
        }
        let mut special = values(40, 3);
        special[5] = f32::NAN;
        special[20] = f32::NAN;
        rows.push(special.clone());
        special[30] = f32::INFINITY;
        rows.push(special);
        for row in &rows {
            let mut want = vec![0u8; row.len()];
            let want_scale = quantise_row_scalar(row, &mut want);
            for &(name, quantise) in &quantisers {
                let mut got = vec![7u8; row.len()];
                let scale = quantise(row, &mut got);
                assert_eq!(scale.to_bits(), want_scale.to_bits(), "{name}: scale of a row of {}", row.len());
                assert_eq!(got, want, "{name}: codes of a row of {}", row.len());
            }
        }
        // The definition itself: ties to even, the clamp, NaN at zero's code.
        let mut codes = [0u8; 8];
        assert_eq!(quantise_row_scalar(&[127.0, -126.5, 2.5, -3.5, 0.5, -0.5, f32::NAN, -127.0], &mut codes), 1.0);
        assert_eq!(codes, [255, 2, 130, 124, 128, 128, 128, 1]);
    }

    #[test]
    fn weights_are_quantised_to_seven_bits_per_column() {
        let w = [0.6f32, -1.0, 0.25, 0.0, 3.0, 1.4, -3.0, 0.1];
        let packed = PackedB8::from_transposed(&w, 2, 4);
        assert_eq!(packed.scales[..2], [1.0 / 63.0, 3.0 / 63.0]);
        assert!(packed.scales[2..].iter().all(|&s| s == 0.0) && packed.scales.len() == NR8, "padded to a panel");
        assert_eq!(packed.value(1, 0), -1.0);
        assert_eq!(packed.value(0, 1), 3.0);
        let step = |v: f32, c: usize| v * packed.scales[c];
        assert_eq!(packed.value(0, 0), step(38.0, 0), "0.6 is 37.8 steps: 38");
        assert_eq!(packed.value(2, 0), step(16.0, 0), "0.25 is 15.75 steps: 16");
        assert_eq!(packed.value(3, 1), step(2.0, 1), "0.1 is 2.1 steps: 2");
        assert_eq!(packed.offsets[..2], [128 * (38 - 63 + 16), 128 * (63 + 29 - 63 + 2)]);
    }

    /// The kernels this CPU can run, by name, with their full tile (rows, panels).
    fn every_kernel() -> Vec<(&'static str, usize, usize, TileFn)> {
        let mut found: Vec<(&'static str, usize, usize, TileFn)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if available() {
                found.push(("avx2", avx2::MR, 1, avx2::tile));
            }
            if avx512::available() {
                found.push(("avx512 vnni", avx512::MR, avx512::PANELS, avx512::tile));
            }
        }
        found
    }

    /// Each kernel this CPU has, driven directly on integer codes: every tile height and width,
    /// columns around the register edges, against sums in i64 dequantised the same way; and the
    /// kernels agree bit for bit.
    #[test]
    fn every_kernel_equals_integer_sums() {
        let kernels = every_kernel();
        eprintln!("int8 kernels: {:?}", kernels.iter().map(|k| k.0).collect::<Vec<_>>());
        if kernels.is_empty() {
            // Nothing to run: the encoder refuses int8 without AVX2.
            return;
        }
        let mut seen: std::collections::HashMap<String, Vec<f32>> = std::collections::HashMap::new();
        for kq in [1usize, 5, 96] {
            let lda = kq * 4 + 3;
            // Codes over the whole range: A's unsigned bytes 0..=255, B's −63..=63.
            let a: Vec<u8> = (0..8 * lda).map(|i| ((i * 7919 + 13) % 256) as u8).collect();
            let b: Vec<i8> = (0..2 * kq * NR8 * 4).map(|i| (((i * 104_729 + 5) % 127) as i32 - 63) as i8).collect();
            let row_scales: Vec<f32> = (0..8).map(|r| 0.01 + r as f32 * 0.003).collect();
            let col_scales: Vec<f32> = (0..2 * NR8).map(|j| 0.02 + j as f32 * 0.001).collect();
            let offsets: Vec<i32> = (0..2 * NR8).map(|j| j as i32 * 977 - 9000).collect();
            let scales = Scales { rows: &row_scales, cols: &col_scales, offsets: &offsets };
            for &(name, mr, most_panels, tile) in &kernels {
                for panels in 1..=most_panels {
                    for rows in 1..=mr {
                        for cols in [1, 8, 15, 16, 17, 31, 32].into_iter().filter(|&c| c <= panels * NR8) {
                            let ldc = cols + 2;
                            let mut c = vec![0.5f32; rows * ldc];
                            tile(rows, panels, kq, &a, lda, &b, &scales, &mut c, ldc, cols);
                            let what = format!("{name}: {rows} rows, {panels} panels, {cols} columns, {kq} quads");
                            for r in 0..rows {
                                for j in 0..cols {
                                    let (p, jj) = (j / NR8, j % NR8);
                                    let sum: i64 = (0..kq * 4)
                                        .map(|kk| {
                                            i64::from(a[r * lda + kk])
                                                * i64::from(b[((p * kq + kk / 4) * NR8 + jj) * 4 + kk % 4])
                                        })
                                        .sum();
                                    let want = (sum - i64::from(offsets[j])) as f32 * (row_scales[r] * col_scales[j]);
                                    assert_eq!(c[r * ldc + j], want, "{what}: C[{r}][{j}]");
                                }
                                assert_eq!(c[r * ldc + cols..(r + 1) * ldc], [0.5, 0.5], "{what}: beyond the columns");
                            }
                            // One panel's columns are the same product whichever tile width computed them.
                            let key = format!("{rows} {cols} {kq}");
                            if let Some(other) = seen.insert(key, c.clone()) {
                                assert_eq!(other, c, "{what}: the kernels differ");
                            }
                        }
                    }
                }
            }
        }
    }
}
