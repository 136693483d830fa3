//! The encoder in half precision (f16, bf16) and with int8 dense products against the same
//! encoder in f32.
//!
//! On the CPU, bf16 runs isovec's own inference (bfloat16 dense products with AVX-512 BF16,
//! bfloat16 weights times f32 activations elsewhere) and f16 candle's kernels (slowly), which
//! lets the numerical difference be checked here; int8 runs isovec's own inference on CPUs with
//! AVX2. The GPU figures come from `isovec eval sts` and `isovec bench encode` with
//! `--device cuda --dtype f16|bf16`.

use candle_core::DType;
use isovec::encoder::{Encoder, EncoderOptions, Pooling};
use isovec::test_support::default_model;

const SENTENCES: [&str; 5] = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    "Hi",
    "Scientists found that the vaccine reduced the risk of severe illness in older adults.",
    "Two dogs are running through a field of tall grass while a child watches them.",
];

/// Cosine similarity computed in f64.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn encode(path: &std::path::Path, options: EncoderOptions) -> Vec<Vec<Vec<f32>>> {
    let dtype = options.dtype;
    let encoder = Encoder::load(path, EncoderOptions { batch_size: 8, ..options }).unwrap();
    assert_eq!(encoder.dtype(), dtype);
    encoder.encode(&SENTENCES, &[Pooling::Mean, Pooling::ClsBeforePooler]).unwrap().vectors
}

/// Each half-precision vector points where the f32 one does, and the pairwise similarities
/// (what STS scores and search rankings are made of) move by little; but the vectors are not the
/// f32 ones, or the closeness would prove nothing.
fn check_close_to_f32(options: EncoderOptions, min_cosine: f64, max_similarity_shift: f64) {
    let Some(path) = default_model() else { return };
    let dtype = if options.int8 { "int8".to_string() } else { format!("{:?}", options.dtype) };
    let full = encode(&path, EncoderOptions::default());
    let half = encode(&path, options);
    assert_ne!(full, half, "{dtype} gave exactly the f32 vectors: the encoder did not run in {dtype}");
    for (p, (full_p, half_p)) in full.iter().zip(&half).enumerate() {
        for (i, (a, b)) in full_p.iter().zip(half_p).enumerate() {
            assert_eq!(a.len(), b.len());
            assert!(b.iter().all(|x| x.is_finite()), "{dtype} pooling {p} sentence {i}: not finite");
            let c = cosine(a, b);
            assert!(c > min_cosine, "{dtype} pooling {p} sentence {i}: cosine to f32 {c}");
        }
        let mut worst = 0f64;
        for i in 0..SENTENCES.len() {
            for j in i + 1..SENTENCES.len() {
                let shift = (cosine(&full_p[i], &full_p[j]) - cosine(&half_p[i], &half_p[j])).abs();
                worst = worst.max(shift);
            }
        }
        eprintln!("{dtype} pooling {p}: largest change of a pairwise cosine {worst:.2e}");
        assert!(worst < max_similarity_shift, "{dtype} pooling {p}: similarity moved by {worst}");
    }
}

#[test]
fn f16_encodes_close_to_f32() {
    // f16 keeps 11 significant bits: expect agreement to about 1e-3.
    check_close_to_f32(EncoderOptions { dtype: DType::F16, ..Default::default() }, 0.999, 5e-3);
}

#[test]
fn bf16_encodes_close_to_f32() {
    // bf16 keeps only 8 significant bits: a looser bound.
    check_close_to_f32(EncoderOptions { dtype: DType::BF16, ..Default::default() }, 0.99, 3e-2);
}

/// Whether this CPU has AVX2, which int8 needs.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[test]
fn int8_encodes_close_to_f32_or_is_refused_without_avx2() {
    if has_avx2() {
        // 7-bit weights and 8-bit activations per token: cosines of 0.988 ("Hi", 3 tokens) to
        // 0.997 and pairwise similarities moved by up to 0.03 on this model, 2026-12-03.
        check_close_to_f32(EncoderOptions { int8: true, ..Default::default() }, 0.98, 5e-2);
    } else {
        let empty = tempfile::tempdir().unwrap();
        let options = EncoderOptions { int8: true, ..Default::default() };
        let err = Encoder::load(empty.path(), options).err().expect("int8 without AVX2 must be refused").to_string();
        assert!(err.contains("AVX2") && err.contains("--dtype f32"), "{err}");
    }
}

/// int8 is checked before the model folder is read: it needs f32 weights on the CPU (and AVX2).
#[test]
fn int8_is_refused_over_half_precision() {
    let empty = tempfile::tempdir().unwrap();
    let options = EncoderOptions { int8: true, dtype: DType::BF16, ..Default::default() };
    let err = Encoder::load(empty.path(), options).err().expect("int8 over bf16 must be refused").to_string();
    assert!(err.contains("int8") && err.contains("BF16"), "{err}");
}

/// The precision is checked before the model folder is read, so this needs no model: an empty
/// folder would otherwise be refused for having no weights.
#[test]
fn integer_precision_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    for dtype in [DType::U32, DType::U8, DType::I64] {
        let options = EncoderOptions { dtype, ..Default::default() };
        let err = Encoder::load(empty.path(), options).err().expect("integer weights must be refused").to_string();
        assert!(err.contains("f32, f16 or bf16") && err.contains(&format!("{dtype:?}")), "{err}");
    }
}

#[test]
fn precisions_are_named_as_dtype_takes_them() {
    let named = |name: &str| EncoderOptions::default().with_precision(name).map(|o| (o.dtype, o.int8));
    assert_eq!(named("f32").unwrap(), (DType::F32, false));
    assert_eq!(named("BF16").unwrap(), (DType::BF16, false));
    assert_eq!(named("f16").unwrap(), (DType::F16, false));
    assert_eq!(named("int8").unwrap(), (DType::F32, true), "int8 keeps the weights in f32");
    let err = named("fp8").unwrap_err().to_string();
    assert!(err.contains("\"fp8\"") && err.contains("f32, f16, bf16, int8"), "{err}");
}
