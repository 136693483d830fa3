//! Dot products run with the widest SIMD the CPU has (AVX-512, AVX2 + FMA, or the baseline),
//! chosen once at run time: the binary is built for any x86-64. Index search spends most of its
//! time here, and so do dense layers on a few rows (`encoder::dense`).
//!
//! It is also the one place the crate asks the CPU what it has ([`features`]): these dot
//! products, the row passes of [`multiversion!`] and the encoder's matrix kernels
//! (`encoder::cpu`) all choose their code from that one record. Invariant: a kernel compiled
//! for an extension is only called where [`features`] reports it.

use std::sync::OnceLock;

/// The x86-64 extensions (and the L2 cache size) the kernels choose by, detected once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Features {
    /// AVX2.
    pub avx2: bool,
    /// FMA (three-operand fused multiply-add).
    pub fma: bool,
    /// AVX-512 Foundation.
    pub avx512f: bool,
    /// AVX-512 byte and word instructions.
    pub avx512bw: bool,
    /// AVX-512 BF16 (`vdpbf16ps`).
    pub avx512bf16: bool,
    /// AVX-512 VNNI (`vpdpbusd`).
    pub avx512vnni: bool,
    /// The L2 cache's size in KB as CPUID reports it (leaf 0x8000_0006, which AMD and Intel
    /// both fill), if it does.
    pub l2_kb: Option<usize>,
}

impl Features {
    /// AVX2 with FMA: what the 256-bit float kernels need.
    pub fn avx2_fma(&self) -> bool {
        self.avx2 && self.fma
    }
}

/// What this CPU has, detected on the first call.
pub(crate) fn features() -> &'static Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    FEATURES.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            Features {
                avx2: has!("avx2"),
                fma: has!("fma"),
                avx512f: has!("avx512f"),
                avx512bw: has!("avx512bw"),
                avx512bf16: has!("avx512bf16"),
                avx512vnni: has!("avx512vnni"),
                l2_kb: l2_cache_kb(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Features::default()
    })
}

/// The L2 cache's size in KB as CPUID reports it, if it does.
#[cfg(target_arch = "x86_64")]
fn l2_cache_kb() -> Option<usize> {
    use std::arch::x86_64::__cpuid;
    // The extended leaf is read only where the highest extended leaf says it exists.
    if __cpuid(0x8000_0000).eax >= 0x8000_0006 {
        return Some((__cpuid(0x8000_0006).ecx >> 16) as usize);
    }
    None
}

/// Σ a_j · b_j over two f32 slices (the shorter length).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// The dot products of four rows with one vector `w` (all of `w`'s length): four independent
/// accumulations, so the additions overlap instead of waiting on each other.
pub fn dot4(rows: [&[f32]; 4], w: &[f32]) -> [f32; 4] {
    (kernels().dot4)(rows, w)
}

/// Σ q_j · c_j of a 16-bit query and one-byte codes (the shorter length), exactly, in i32: the
/// caller keeps |Σ| below 2³¹ (see `store::graph::QueryCode`).
pub fn dot_code(q: &[i16], c: &[i8]) -> i32 {
    (kernels().dot_code)(q, c)
}

/// `fn name(args) { body }`, compiled three times — for AVX-512F, for AVX2 + FMA and for the
/// baseline — and run in the widest the CPU has (the binary itself is built for any x86-64), so
/// the loops the compiler vectorises in `body` (and in the `#[inline(always)]` functions it
/// calls) use the wide registers. For element-wise passes over rows: bias, activation,
/// normalisation, softmax.
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                let features = $crate::simd::features();
                if features.avx512f {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if features.avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// A dot product kernel of f32 slices.
type DotFn = fn(&[f32], &[f32]) -> f32;
/// A dot product kernel of a 16-bit query and one-byte codes.
type DotCodeFn = fn(&[i16], &[i8]) -> i32;

struct Kernels {
    dot: DotFn,
    dot_code: DotCodeFn,
    dot4: fn([&[f32]; 4], &[f32]) -> [f32; 4],
}

fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let features = features();
            if features.avx512f && features.avx512bw {
                return Kernels { dot: x86::dot_avx512, dot_code: x86::dot_code_avx512, dot4: x86::dot4_avx512 };
            }
            if features.avx2_fma() {
                return Kernels { dot: x86::dot_avx2, dot_code: x86::dot_code_avx2, dot4: x86::dot4_avx2 };
            }
        }
        Kernels { dot: dot_lanes::<8>, dot_code: dot_code_portable, dot4: dot4_lanes::<8> }
    })
}

/// The portable loop: `L` independent accumulators so the compiler vectorises it `L` wide.
#[inline(always)]
fn dot_lanes<const L: usize>(q: &[f32], c: &[f32]) -> f32 {
    let n = q.len().min(c.len());
    let (q, c) = (&q[..n], &c[..n]);
    let mut acc = [0f32; L];
    let (qc, cc) = (q.chunks_exact(L), c.chunks_exact(L));
    let (q_rest, c_rest) = (qc.remainder(), cc.remainder());
    for (x, y) in qc.zip(cc) {
        for j in 0..L {
            acc[j] += x[j] * y[j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in q_rest.iter().zip(c_rest) {
        sum += x * y;
    }
    sum
}

/// The portable code dot product (integer sums are exact, so every kernel gives the same result).
fn dot_code_portable(q: &[i16], c: &[i8]) -> i32 {
    q.iter().zip(c).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// Four rows against one vector, `L` lanes per row.
#[inline(always)]
fn dot4_lanes<const L: usize>(rows: [&[f32]; 4], w: &[f32]) -> [f32; 4] {
    let n = w.len();
    let mut out = [0f32; 4];
    if rows.iter().any(|r| r.len() < n) {
        for (o, r) in out.iter_mut().zip(rows) {
            *o = dot_lanes::<L>(r, w);
        }
        return out;
    }
    let [r0, r1, r2, r3] = rows.map(|r| &r[..n]);
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; L], [0f32; L], [0f32; L], [0f32; L]);
    let full = n / L * L;
    for start in (0..full).step_by(L) {
        let wc = &w[start..start + L];
        let (x0, x1, x2, x3) =
            (&r0[start..start + L], &r1[start..start + L], &r2[start..start + L], &r3[start..start + L]);
        for j in 0..L {
            a0[j] += x0[j] * wc[j];
            a1[j] += x1[j] * wc[j];
            a2[j] += x2[j] * wc[j];
            a3[j] += x3[j] * wc[j];
        }
    }
    out = [a0.iter().sum(), a1.iter().sum(), a2.iter().sum(), a3.iter().sum()];
    for j in full..n {
        out[0] += r0[j] * w[j];
        out[1] += r1[j] * w[j];
        out[2] += r2[j] * w[j];
        out[3] += r3[j] * w[j];
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{dot4_lanes, dot_code_portable, dot_lanes};

    /// 32 codes at a time: widened to 16 bits, multiplied with the query's pairs and each pair
    /// summed into 32 bits (`vpmaddwd`), two accumulators; the tail in the portable loop.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn code_avx512(q: &[i16], c: &[i8]) -> i32 {
        let n = q.len().min(c.len());
        let (mut a0, mut a1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let mut j = 0;
        while j + 64 <= n {
            // SAFETY: j + 64 ≤ n, so the 64 lanes read from j lie in both slices.
            unsafe {
                let c0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(c.as_ptr().add(j).cast()));
                let c1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(c.as_ptr().add(j + 32).cast()));
                a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(_mm512_loadu_si512(q.as_ptr().add(j).cast()), c0));
                a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(_mm512_loadu_si512(q.as_ptr().add(j + 32).cast()), c1));
            }
            j += 64;
        }
        if j + 32 <= n {
            // SAFETY: j + 32 ≤ n, so the 32 lanes read from j lie in both slices.
            unsafe {
                let c0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(c.as_ptr().add(j).cast()));
                a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(_mm512_loadu_si512(q.as_ptr().add(j).cast()), c0));
            }
            j += 32;
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1)) + dot_code_portable(&q[j..n], &c[j..n])
    }

    /// [`code_avx512`] 16 codes at a time.
    #[target_feature(enable = "avx2")]
    fn code_avx2(q: &[i16], c: &[i8]) -> i32 {
        let n = q.len().min(c.len());
        let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let mut j = 0;
        while j + 32 <= n {
            // SAFETY: j + 32 ≤ n, so the 32 lanes read from j lie in both slices.
            unsafe {
                let c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(c.as_ptr().add(j).cast()));
                let c1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(c.as_ptr().add(j + 16).cast()));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_loadu_si256(q.as_ptr().add(j).cast()), c0));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_loadu_si256(q.as_ptr().add(j + 16).cast()), c1));
            }
            j += 32;
        }
        if j + 16 <= n {
            // SAFETY: j + 16 ≤ n, so the 16 lanes read from j lie in both slices.
            unsafe {
                let c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(c.as_ptr().add(j).cast()));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_loadu_si256(q.as_ptr().add(j).cast()), c0));
            }
            j += 16;
        }
        let s = _mm256_add_epi32(a0, a1);
        let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s) + dot_code_portable(&q[j..n], &c[j..n])
    }

    /// `pub fn $name` runs `$body` compiled with `$features`; `kernels()` installs it only after
    /// detecting those features, which is what makes the `unsafe` call sound.
    macro_rules! kernel {
        ($features:literal, $name:ident, $inner:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $body:expr) => {
            pub fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: only called on CPUs that have `$features` (see `kernels()`).
                unsafe { $inner($($arg),*) }
            }

            #[target_feature(enable = $features)]
            fn $inner($($arg: $ty),*) -> $ret {
                $body
            }
        };
    }

    kernel!("avx512f", dot_avx512, dot_avx512_inner, (a: &[f32], b: &[f32]) -> f32, dot_lanes::<16>(a, b));
    kernel!("avx512f,avx512bw", dot_code_avx512, dot_code_avx512_inner, (q: &[i16], c: &[i8]) -> i32, code_avx512(q, c));
    kernel!("avx512f", dot4_avx512, dot4_avx512_inner, (rows: [&[f32]; 4], w: &[f32]) -> [f32; 4], dot4_lanes::<16>(rows, w));
    kernel!("avx2,fma", dot_avx2, dot_avx2_inner, (a: &[f32], b: &[f32]) -> f32, dot_lanes::<8>(a, b));
    kernel!("avx2,fma", dot_code_avx2, dot_code_avx2_inner, (q: &[i16], c: &[i8]) -> i32, code_avx2(q, c));
    kernel!("avx2,fma", dot4_avx2, dot4_avx2_inner, (rows: [&[f32]; 4], w: &[f32]) -> [f32; 4], dot4_lanes::<8>(rows, w));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_matches_an_f64_sum() {
        for n in [0usize, 1, 7, 16, 37, 71, 381, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            let tol = 1e-5 * (1.0 + n as f64);
            let mut variants: Vec<DotFn> = vec![dot, dot_lanes::<8>];
            #[cfg(target_arch = "x86_64")]
            {
                if features().avx512f {
                    variants.push(x86::dot_avx512);
                }
                if features().avx2_fma() {
                    variants.push(x86::dot_avx2);
                }
            }
            let rows: Vec<Vec<f32>> = (0..4).map(|k| a.iter().map(|x| x * (k as f32 + 1.0)).collect()).collect();
            let four = dot4([&rows[0], &rows[1], &rows[2], &rows[3]], &b);
            for (k, v) in four.iter().enumerate() {
                let want = exact * (k as f64 + 1.0);
                assert!((f64::from(*v) - want).abs() < tol * 4.0, "dot4 row {k}, n {n}: {v} vs {want}");
            }
            for f in variants {
                assert!((f64::from(f(&a, &b)) - exact).abs() < tol, "n {n}: {} vs {exact}", f(&a, &b));
            }
        }
    }

    #[test]
    fn every_code_kernel_gives_the_exact_integer_sum() {
        let mut variants: Vec<DotCodeFn> = vec![dot_code, dot_code_portable];
        #[cfg(target_arch = "x86_64")]
        {
            if features().avx512f && features().avx512bw {
                variants.push(x86::dot_code_avx512);
            }
            if features().avx2_fma() {
                variants.push(x86::dot_code_avx2);
            }
        }
        // Every tail length past 64-, 32- and 16-wide steps, and the extreme values (−32768 × −128
        // pairs would overflow a pair sum; the query stays within ±32767 and codes within ±127).
        for n in (0..=70).chain([383, 384, 385, 768]) {
            let q: Vec<i16> =
                (0..n).map(|i| if i % 5 == 0 { 32767 } else { ((i * 7919 % 65535) as i32 - 32767) as i16 }).collect();
            let c: Vec<i8> =
                (0..n).map(|i| if i % 3 == 0 { -127 } else { ((i * 53 % 255) as i32 - 127) as i8 }).collect();
            let exact: i64 = q.iter().zip(&c).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
            for (v, f) in variants.iter().enumerate() {
                assert_eq!(i64::from(f(&q, &c)), exact, "kernel {v}, n {n}");
                // The shorter length counts.
                if n > 0 {
                    let shorter: i64 = q[..n - 1].iter().zip(&c).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
                    assert_eq!(i64::from(f(&q[..n - 1], &c)), shorter, "kernel {v}, n {n}, shorter query");
                }
            }
        }
    }
}
