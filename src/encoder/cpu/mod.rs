//! The CPU inference engine: BERT's forward pass by hand over packed weights, for the
//! [`Encoder`](super::Encoder) on the CPU in f32 or bf16 (or with `int8`).
//!
//! Contract with candle's differentiable BERT ([`super::Bert`] in `Mode::Differentiable`):
//! every pooling of every text, encoded by [`CpuBert`] from an f32 model, lies within 1e-5 of
//! what that model gives on the same texts as a padded batch
//! (`model::tests::every_pooling_equals_the_differentiable_bert_on_a_padded_batch`, and the
//! `encoder_bert` suite on real checkpoints). Within the engine a text's vector is the same
//! bits in any batch, any pass and with or without the partner thread.
//!
//! Inside: [`model`] (the weights' inference copy and the forward pass, with `tracing` spans
//! naming its stages), the matrix products ([`matmul`] f32 and bf16-stored, [`matmul_bf16`],
//! [`matmul_i8`], over [`gemm`]'s shared split), [`partner`] (the second thread of one
//! product); its row math (softmax, GELU, LayerNorm) is `encoder::math`, beside this module
//! because candle's inference ops (`encoder::candle_ops`) reuse it. Which kernels run is read
//! from the crate's one record of CPU features (`crate::simd::features`). What leaves the
//! boundary: [`CpuBert`] and [`int8_available`].

/// `match rows { r => rows_n::<r>(args) }` for each listed `r` (or `f::<r>` with `fn f;` first):
/// the matrix kernels keep one instance per tile height, so each holds its accumulators in
/// registers.
macro_rules! dispatch_rows {
    (fn $f:ident; $rows:expr, $args:tt; $($r:literal)*) => {
        match $rows {
            $($r => $f::<$r> $args,)*
            _ => {}
        }
    };
    ($rows:expr, $args:tt; $($r:literal)*) => {
        dispatch_rows!(fn rows_n; $rows, $args; $($r)*)
    };
}

mod gemm;
mod matmul;
mod matmul_bf16;
mod matmul_i8;
mod model;
mod partner;

pub(super) use model::CpuBert;

/// Whether this CPU runs the `int8` products (AVX2).
pub(super) fn int8_available() -> bool {
    matmul_i8::available()
}
