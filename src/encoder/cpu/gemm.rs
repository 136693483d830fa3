//! What the three matrix products share: the panel width [`NR`], the split of one product
//! between the calling thread and its partner ([`split_product`]), and bfloat16 rounding.
//!
//! Invariants: every product packs B in panels of [`NR`] columns (the i8 kernel's narrower
//! panels tile them), so a split by column panels lands on whole panels; each row of C is
//! finished exactly once, after all of its columns are written (a split by columns finishes
//! once both halves are in).

use super::partner::Partner;

/// Columns of a B panel: two AVX-512 registers of f32.
pub const NR: usize = 32;

/// `finish` with the row number of C's first row.
pub(super) type Finish<'a> = Option<(usize, &'a (dyn Fn(usize, &mut [f32]) + Sync))>;

/// All of C (m × n) by `product(first, rows, panels, c, ldc, finish)` — C's columns of B's
/// `panels` for A's `rows` rows from row `first`, on the calling thread — alone or split in two with a `partner`: by rows when there
/// are at least two blocks of `block_rows` (each half finishes its own rows), else by column
/// panels, which halves the weights each core streams (one short query), finishing once both
/// halves are done.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_product(
    m: usize,
    n: usize,
    c: &mut [f32],
    ldc: usize,
    partner: Option<&Partner>,
    block_rows: usize,
    finish: &(dyn Fn(usize, &mut [f32]) + Sync),
    product: impl Fn(usize, usize, std::ops::Range<usize>, &mut [f32], usize, Finish<'_>) + Sync,
) {
    let panels = n.div_ceil(NR);
    let Some(partner) = partner.filter(|_| m >= 2 * block_rows || (m > 0 && panels > 1)) else {
        return product(0, m, 0..panels, c, ldc, Some((0, finish)));
    };
    if m >= 2 * block_rows {
        let half = m / 2;
        let (top, bottom) = c.split_at_mut(half * ldc);
        let bottom = std::sync::Mutex::new(bottom);
        partner.join(
            || product(0, half, 0..panels, top, ldc, Some((0, finish))),
            || {
                let mut bottom = bottom.lock().unwrap_or_else(|e| e.into_inner());
                product(half, m - half, 0..panels, &mut bottom, ldc, Some((half, finish)))
            },
        );
        return;
    }
    let mid = panels / 2;
    let right_cols = n - mid * NR;
    let right = std::sync::Mutex::new(vec![0f32; m * right_cols]);
    partner.join(
        || product(0, m, 0..mid, c, ldc, None),
        || product(0, m, mid..panels, &mut right.lock().unwrap_or_else(|e| e.into_inner()), right_cols, None),
    );
    let right = right.into_inner().unwrap_or_else(|e| e.into_inner());
    for (row, part) in c.chunks_mut(ldc).zip(right.chunks_exact(right_cols)) {
        row[mid * NR..n].copy_from_slice(part);
    }
    let end = ((m - 1) * ldc + n).min(c.len());
    finish(0, &mut c[..end]);
}

/// `x` rounded to the nearest bfloat16 (ties to even), as its 16 bits.
pub fn bf16_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if x.is_nan() {
        return (b >> 16) | 0x40;
    }
    b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16
}
