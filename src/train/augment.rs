//! Word deletion, an augmentation of the unsupervised positive pair on top of dropout.
//!
//! SimCSE's own recipe uses dropout alone (its Table 1 compares deletion, cropping and synonym
//! replacement on pre-trained BERT and finds dropout best). A randomly initialised encoder is
//! different: its two dropout views of a sentence share every token, so the loss is solved by
//! telling token sets apart and nothing forces graded similarity. Deleting words independently
//! in each view makes a sentence's vector have to survive losing some of its words.

use rand::{Rng, SeedableRng};

/// Deletes each token strictly between the first and the last (the special `[CLS]` and `[SEP]`)
/// with probability `p`, keeping at least one of them. Sequences of three tokens or fewer are
/// returned unchanged.
pub fn delete_words(ids: &[u32], p: f64, rng: &mut impl Rng) -> Vec<u32> {
    if ids.len() <= 3 || p <= 0.0 {
        return ids.to_vec();
    }
    let inner = &ids[1..ids.len() - 1];
    let mut kept: Vec<u32> = inner.iter().copied().filter(|_| !rng.random_bool(p.min(1.0))).collect();
    if kept.is_empty() {
        kept.push(inner[rng.random_range(0..inner.len())]);
    }
    let mut out = Vec::with_capacity(kept.len() + 2);
    out.push(ids[0]);
    out.extend(kept);
    out.push(ids[ids.len() - 1]);
    out
}

/// The generator of one training step's deletions: a function of the seed and the step, so a
/// resumed run deletes the same words as an uninterrupted one.
pub fn step_rng(seed: u64, step: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_special_tokens_and_order_and_deletes_at_the_rate_asked() {
        let ids: Vec<u32> = (0..102).collect();
        let mut rng = step_rng(7, 3);
        let mut deleted = 0usize;
        let trials = 400;
        for _ in 0..trials {
            let out = delete_words(&ids, 0.2, &mut rng);
            assert_eq!(out[0], 0);
            assert_eq!(*out.last().unwrap(), 101);
            assert!(out.windows(2).all(|w| w[0] < w[1]), "order kept, nothing repeated");
            deleted += ids.len() - out.len();
        }
        let rate = deleted as f64 / (trials * 100) as f64;
        assert!((rate - 0.2).abs() < 0.01, "deletion rate {rate}");
    }

    #[test]
    fn never_empties_a_sentence_and_leaves_short_ones_alone() {
        let mut rng = step_rng(1, 0);
        for _ in 0..100 {
            let out = delete_words(&[101, 5, 6, 102], 0.99, &mut rng);
            assert_eq!(out.len(), 3);
            assert!(out[1] == 5 || out[1] == 6);
        }
        assert_eq!(delete_words(&[101, 5, 102], 0.9, &mut rng), vec![101, 5, 102]);
        assert_eq!(delete_words(&[101, 5, 6, 102], 0.0, &mut rng), vec![101, 5, 6, 102]);
    }

    #[test]
    fn the_same_seed_and_step_delete_the_same_words() {
        let ids: Vec<u32> = (0..40).collect();
        let a = delete_words(&ids, 0.3, &mut step_rng(42, 9));
        let b = delete_words(&ids, 0.3, &mut step_rng(42, 9));
        let c = delete_words(&ids, 0.3, &mut step_rng(42, 10));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
