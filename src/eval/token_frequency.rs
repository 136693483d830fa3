//! The BERT-flow paper's word-frequency table: token-embedding norm and neighbourhood by
//! frequency bucket (frequent tokens sit near the origin, rare ones far and sparse).

use nalgebra::DMatrix;
use rayon::prelude::*;

/// Frequency-rank buckets as the paper labels them, with their [start, end) ranks.
const BUCKETS: [(&str, usize, usize); 4] =
    [("(0,100)", 0, 100), ("[100,500)", 100, 500), ("[500,5K)", 500, 5_000), ("[5K,…)", 5_000, usize::MAX)];

/// Query tokens per matrix block: a block's dot products with the pool take
/// pool × 256 × 4 bytes (31 MB for a 30k vocabulary).
const QUERY_BLOCK: usize = 256;

/// Extra candidates taken from the fast f32 distances and re-ranked exactly in f64: the
/// ‖q‖² + ‖p‖² − 2 q·p form loses precision when distances are much smaller than norms.
const RERANK_SLACK: usize = 8;

/// One row of the frequency table.
#[derive(Clone, Debug, PartialEq)]
pub struct FreqBucketRow {
    /// "(0,100)", "[100,500)", "[500,5K)" or "[5K,…)": 0-based frequency ranks covered.
    pub bucket: String,
    /// Number of tokens in the bucket.
    pub tokens: usize,
    /// Mean ℓ2 norm of the bucket's token embeddings (NaN for an empty bucket).
    pub mean_l2_norm: f64,
    /// Per requested k: mean ℓ2 distance to the k nearest other token embeddings.
    pub knn_l2: Vec<f64>,
    /// Per requested k: mean dot product with those same k nearest (by ℓ2) embeddings.
    pub knn_dot: Vec<f64>,
}

/// Builds the table from one embedding row per vocabulary id and a corpus frequency per id.
///
/// Ranking: only tokens seen at least once (`counts[id] > 0`) are ranked, by descending count,
/// ties by ascending id; unseen tokens have no frequency rank, so putting them in the rarest
/// bucket would mix "rare" with "never seen" (the [unused] slots, for instance).
/// Neighbours: exact ℓ2 nearest neighbours among *all* vocabulary embeddings (seen or not,
/// the token itself excluded), as the paper describes; only the bucketed tokens are queried,
/// in blocks through a blocked GEMM (‖q‖² + ‖p‖² − 2 q·p), in parallel; the best k + 8
/// candidates are re-ranked by exact f64 distance, which is also what is reported.
/// Defined values: ids beyond `counts` count as unseen; rows whose dimension differs from row 0
/// are left out of both buckets and pool; a k larger than the available neighbours uses all of
/// them, and k = 0 gives 0.
pub fn frequency_table(embeddings: &[Vec<f32>], counts: &[u64], ks: &[usize]) -> Vec<FreqBucketRow> {
    let dims = embeddings.first().map_or(0, Vec::len);
    let valid: Vec<usize> = (0..embeddings.len()).filter(|&id| embeddings[id].len() == dims).collect();
    let mut seen: Vec<usize> = valid.iter().copied().filter(|&id| counts.get(id).is_some_and(|&c| c > 0)).collect();
    seen.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let k_max = ks.iter().copied().max().unwrap_or(0);
    let neighbours = nearest_neighbours(embeddings, &valid, &seen, dims, k_max);
    BUCKETS
        .iter()
        .map(|&(label, start, end)| {
            let lo = start.min(seen.len());
            let hi = end.min(seen.len());
            bucket_row(label, embeddings, &seen[lo..hi], &neighbours[lo..hi], ks)
        })
        .collect()
}

fn bucket_row(
    label: &str,
    embeddings: &[Vec<f32>],
    tokens: &[usize],
    neighbours: &[Vec<usize>],
    ks: &[usize],
) -> FreqBucketRow {
    let mean = |values: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        if n == 0 {
            f64::NAN
        } else {
            sum / n as f64
        }
    };
    let knn_mean = |k: usize, f: fn(&[f32], &[f32]) -> f64| {
        mean(&mut tokens.iter().zip(neighbours).map(|(&t, near)| {
            let used = &near[..k.min(near.len())];
            if used.is_empty() {
                return 0.0;
            }
            used.iter().map(|&n| f(&embeddings[t], &embeddings[n])).sum::<f64>() / used.len() as f64
        }))
    };
    FreqBucketRow {
        bucket: label.to_string(),
        tokens: tokens.len(),
        mean_l2_norm: mean(&mut tokens.iter().map(|&t| dot(&embeddings[t], &embeddings[t]).sqrt())),
        knn_l2: ks.iter().map(|&k| knn_mean(k, l2)).collect(),
        knn_dot: ks.iter().map(|&k| knn_mean(k, dot)).collect(),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt()
}

/// For each query id, the ids of its `k` nearest pool embeddings by ℓ2, nearest first.
fn nearest_neighbours(
    embeddings: &[Vec<f32>],
    pool: &[usize],
    queries: &[usize],
    dims: usize,
    k: usize,
) -> Vec<Vec<usize>> {
    if k == 0 || pool.is_empty() || dims == 0 {
        return vec![Vec::new(); queries.len()];
    }
    // Pool as a (pool × d) matrix so that pool · queries is one GEMM per block.
    let pool_matrix = DMatrix::from_fn(pool.len(), dims, |r, c| embeddings[pool[r]][c]);
    let pool_norms: Vec<f32> = pool.iter().map(|&p| embeddings[p].iter().map(|x| x * x).sum()).collect();
    queries
        .par_chunks(QUERY_BLOCK)
        .flat_map_iter(|block| {
            let query_matrix = DMatrix::from_fn(dims, block.len(), |r, c| embeddings[block[c]][r]);
            let dots = &pool_matrix * &query_matrix;
            block
                .iter()
                .enumerate()
                .map(|(col, &query)| {
                    let q_norm: f32 = embeddings[query].iter().map(|x| x * x).sum();
                    let column = dots.column(col);
                    let distances = pool
                        .iter()
                        .enumerate()
                        .filter(|&(_, &p)| p != query)
                        .map(|(row, &p)| (q_norm + pool_norms[row] - 2.0 * column[row], p));
                    let mut candidates: Vec<(f64, usize)> = smallest_k(distances, k + RERANK_SLACK)
                        .into_iter()
                        .map(|p| (l2(&embeddings[query], &embeddings[p]), p))
                        .collect();
                    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    candidates.into_iter().take(k).map(|(_, p)| p).collect()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The ids with the `k` smallest keys, smallest first (ties: lower id first).
fn smallest_k(items: impl Iterator<Item = (f32, usize)>, k: usize) -> Vec<usize> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    let better = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    for item in items {
        if best.len() == k && best.last().is_some_and(|last| better(&item, last).is_ge()) {
            continue;
        }
        let at = best.partition_point(|b| better(b, &item).is_lt());
        best.insert(at, item);
        best.truncate(k);
    }
    best.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn hand_computed_small_vocabulary() {
        // Seen t0 (0,0), t1 (1,0), t2 (0,2), t3 (3,0); unseen t4 (0,1.9) is still a neighbour.
        // 1-NN: t0→t1 (1), t1→t0 (1), t2→t4 (0.1), t3→t1 (2): mean 4.1/4 = 1.025
        // dots with them: 0, 0, 2·1.9 = 3.8, 3·1 = 3: mean 6.8/4 = 1.7; norms 0,1,2,3: mean 1.5
        // 2-NN adds t0→t4 (1.9), t1→t3 (2; t4 is √4.61 ≈ 2.15), t2→t0 (2), t3→t0 (3):
        // distances (1.45 + 1.5 + 1.05 + 2.5)/4 = 1.625; dots (0 + 1.5 + 1.9 + 1.5)/4 = 1.225
        let emb = vec![vec![0.0, 0.0], vec![1.0, 0.0], vec![0.0, 2.0], vec![3.0, 0.0], vec![0.0, 1.9]];
        let counts = [10, 9, 8, 7, 0];
        let rows = frequency_table(&emb, &counts, &[1, 2]);
        assert_eq!(rows.len(), 4);
        let r = &rows[0];
        assert_eq!((r.bucket.as_str(), r.tokens), ("(0,100)", 4));
        assert!(close(r.mean_l2_norm, 1.5));
        assert!(close(r.knn_l2[0], 1.025));
        assert!(close(r.knn_dot[0], 1.7));
        assert!(close(r.knn_l2[1], 1.625));
        assert!(close(r.knn_dot[1], 1.225));
        assert!(rows[1..].iter().all(|r| r.tokens == 0 && r.mean_l2_norm.is_nan()));
    }

    /// Independent O(n²) f64 recomputation of the whole table.
    fn brute_force(emb: &[Vec<f32>], counts: &[u64], ks: &[usize]) -> Vec<(usize, f64, Vec<f64>, Vec<f64>)> {
        let mut seen: Vec<usize> = (0..emb.len()).filter(|&i| counts[i] > 0).collect();
        seen.sort_by_key(|&i| (std::cmp::Reverse(counts[i]), i));
        let bounds = [(0, 100), (100, 500), (500, 5000), (5000, usize::MAX)];
        bounds
            .iter()
            .map(|&(s, e)| {
                let toks: Vec<usize> = seen.iter().copied().skip(s).take(e.saturating_sub(s)).collect();
                let n = toks.len() as f64;
                let norm = toks.iter().map(|&t| dot(&emb[t], &emb[t]).sqrt()).sum::<f64>() / n;
                let mut l2s = vec![0.0; ks.len()];
                let mut dots = vec![0.0; ks.len()];
                for &t in &toks {
                    let mut others: Vec<(f64, usize)> =
                        (0..emb.len()).filter(|&o| o != t).map(|o| (l2(&emb[t], &emb[o]), o)).collect();
                    others.sort_by(|a, b| a.0.total_cmp(&b.0));
                    for (ki, &k) in ks.iter().enumerate() {
                        l2s[ki] += others[..k].iter().map(|o| o.0).sum::<f64>() / k as f64 / n;
                        dots[ki] += others[..k].iter().map(|o| dot(&emb[t], &emb[o.1])).sum::<f64>() / k as f64 / n;
                    }
                }
                (toks.len(), norm, l2s, dots)
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_a_pseudo_random_vocabulary() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let emb: Vec<Vec<f32>> = (0..700)
            .map(|i| {
                let scale = 0.5 + i as f32 / 700.0;
                (0..8).map(|_| rng.random_range(-1.0..1.0f32) * scale).collect()
            })
            .collect();
        // Zipf-like counts with ties and about one unseen token in seven.
        let counts: Vec<u64> = (0..700u64).map(|i| if i % 7 == 3 { 0 } else { 100_000 / (i + 1) }).collect();
        let ks = [3, 5, 7];
        let got = frequency_table(&emb, &counts, &ks);
        let want = brute_force(&emb, &counts, &ks);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.tokens, w.0, "{}", g.bucket);
            if g.tokens == 0 {
                continue;
            }
            assert!(close(g.mean_l2_norm, w.1), "{}", g.bucket);
            for (i, k) in ks.iter().enumerate() {
                let (l2_got, l2_want) = (g.knn_l2[i], w.2[i]);
                assert!(close(l2_got, l2_want), "{} k={k}: {l2_got} vs {l2_want}", g.bucket);
                assert!(close(g.knn_dot[i], w.3[i]), "{} k={k}", g.bucket);
            }
        }
        assert_eq!(got[0].tokens, 100);
        assert_eq!(got[1].tokens, 400);
        assert_eq!(got[2].tokens, 600 - 500);
    }

    #[test]
    fn buckets_cover_the_paper_rank_ranges() {
        // 5,010 seen tokens evenly on the unit circle: 100 / 400 / 4,500 / 10 per bucket; every
        // token's nearest other token is the next one, at chord 2·sin(π/n) and dot cos(2π/n).
        let n = 5010;
        let step = 2.0 * std::f64::consts::PI / n as f64;
        let emb: Vec<Vec<f32>> =
            (0..n).map(|i| vec![(i as f64 * step).cos() as f32, (i as f64 * step).sin() as f32]).collect();
        let counts: Vec<u64> = (0..n as u64).map(|i| 6000 - i).collect();
        let rows = frequency_table(&emb, &counts, &[1]);
        let sizes: Vec<usize> = rows.iter().map(|r| r.tokens).collect();
        assert_eq!(sizes, vec![100, 400, 4500, 10]);
        let labels: Vec<&str> = rows.iter().map(|r| r.bucket.as_str()).collect();
        assert_eq!(labels, vec!["(0,100)", "[100,500)", "[500,5K)", "[5K,…)"]);
        for r in &rows {
            assert!(close(r.mean_l2_norm, 1.0));
            assert!(close(r.knn_l2[0], 2.0 * (step / 2.0).sin()), "{}: {}", r.bucket, r.knn_l2[0]);
            assert!(close(r.knn_dot[0], step.cos()));
        }
    }

    #[test]
    fn degenerate_inputs_have_defined_values() {
        assert!(frequency_table(&[], &[], &[3]).iter().all(|r| r.tokens == 0));
        // Short counts, a wrong-dimension row, k beyond the vocabulary, k = 0.
        let emb = vec![vec![0.0, 0.0], vec![1.0, 0.0], vec![5.0]];
        let rows = frequency_table(&emb, &[3, 2, 1], &[0, 1, 10]);
        assert_eq!(rows[0].tokens, 2);
        assert_eq!(rows[0].knn_l2, vec![0.0, 1.0, 1.0]);
        assert_eq!(rows[0].knn_dot, vec![0.0, 0.0, 0.0]);
        let rows = frequency_table(&emb[..2], &[1], &[1]);
        assert_eq!(rows[0].tokens, 1);
    }
}
