//! Search modes, and how a hybrid search fuses its dense and lexical rankings into one.

use std::collections::HashMap;
use std::hash::Hash;
use std::str::FromStr;

use crate::{Error, Result};

/// Which index answers a search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchMode {
    /// Cosine similarity of the vectors, through the HNSW index.
    #[default]
    Dense,
    /// BM25 over the full-text index.
    Lexical,
    /// Both rankings, fused (see [`Fusion`]).
    Hybrid,
}

impl SearchMode {
    /// The mode's name: `dense`, `lexical` or `hybrid`.
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Dense => "dense",
            SearchMode::Lexical => "lexical",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

impl FromStr for SearchMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dense" => Ok(SearchMode::Dense),
            "lexical" | "bm25" => Ok(SearchMode::Lexical),
            "hybrid" => Ok(SearchMode::Hybrid),
            _ => Err(Error::InvalidInput(format!("unknown search mode {s:?}; use dense, lexical or hybrid"))),
        }
    }
}

/// The constant of reciprocal-rank fusion used unless another is given (Cormack et al., 2009).
pub const RRF_K: f32 = 60.0;
/// The dense side's weight in the default convex fusion (chosen on the SciFact train split; the
/// README gives the measurements).
pub const DEFAULT_ALPHA: f32 = 0.5;
/// How many candidates each side of a hybrid search retrieves unless told otherwise.
pub const DEFAULT_DEPTH: usize = 100;

/// How a hybrid search combines the dense and the lexical ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fusion {
    /// Reciprocal-rank fusion: a document scores `Σ 1 / (k + rank)` over the rankings it is in
    /// (ranks from 1).
    Rrf {
        /// The rank offset (60 in the original paper).
        k: f32,
    },
    /// Convex combination `α · dense + (1 − α) · lexical` of the scores, each min–max
    /// normalised over its own ranking; a document missing from a ranking gets 0 from it.
    Convex {
        /// The dense side's weight, in [0, 1].
        alpha: f32,
    },
    /// The fusion `isovec advise` chose for the collection on its pseudo-queries, without labels
    /// (its record, see `collection::advised_search`). A collection resolves it before fusing
    /// (`Collection::search_hybrid`), and errors where there is no record for its pipeline;
    /// [`fuse`] given it unresolved uses the default.
    Auto,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Convex { alpha: DEFAULT_ALPHA }
    }
}

impl Fusion {
    /// Parses `rrf`, `convex` (with `alpha` when given) or `auto` (the advised fusion).
    pub fn parse(name: &str, alpha: Option<f32>) -> Result<Self> {
        let fusion = match name.trim().to_ascii_lowercase().as_str() {
            "auto" => {
                if alpha.is_some() {
                    return Err(Error::InvalidInput(
                        "the fusion `auto` is the weight `isovec advise` chose; give no alpha with it".into(),
                    ));
                }
                Fusion::Auto
            }
            "rrf" => {
                if alpha.is_some() {
                    return Err(Error::InvalidInput(
                        "--alpha weighs the convex fusion; rrf has no weight (use --fusion convex --alpha A)".into(),
                    ));
                }
                Fusion::Rrf { k: RRF_K }
            }
            "convex" => Fusion::Convex { alpha: alpha.unwrap_or(DEFAULT_ALPHA) },
            _ => return Err(Error::InvalidInput(format!("unknown fusion {name:?}; use rrf, convex or auto"))),
        };
        fusion.validate()?;
        Ok(fusion)
    }

    /// Errors for an α outside [0, 1] or a non-positive RRF constant.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Fusion::Convex { alpha } if !(0.0..=1.0).contains(&alpha) => Err(Error::InvalidInput(format!(
                "the convex fusion's alpha (the dense side's weight) must lie in [0, 1], got {alpha}"
            ))),
            Fusion::Rrf { k } if !(k.is_finite() && k > 0.0) => {
                Err(Error::InvalidInput(format!("the RRF constant must be a positive number (usual: 60), got {k}")))
            }
            _ => Ok(()),
        }
    }

    /// A short name for tables: `rrf`, `convex α=0.5`.
    pub fn name(&self) -> String {
        match self {
            Fusion::Rrf { k } if *k == RRF_K => "rrf".into(),
            Fusion::Rrf { k } => format!("rrf k={k}"),
            Fusion::Convex { alpha } => format!("convex α={alpha}"),
            Fusion::Auto => "auto".into(),
        }
    }
}

/// Fuses two rankings (best first, each with its own scores) into one, best first. Ties go to
/// the better dense rank, then the better lexical rank, then the smaller key.
pub fn fuse<K: Clone + Eq + Hash + Ord>(dense: &[(K, f32)], lexical: &[(K, f32)], fusion: Fusion) -> Vec<(K, f32)> {
    let fusion = if fusion == Fusion::Auto { Fusion::default() } else { fusion };
    // key → (fused score, dense rank, lexical rank); ranks from 0, usize::MAX when absent.
    let mut fused: HashMap<K, (f64, usize, usize)> = HashMap::with_capacity(dense.len() + lexical.len());
    let contributions = |ranking: &[(K, f32)]| -> Vec<f64> {
        match fusion {
            Fusion::Rrf { k } => (0..ranking.len()).map(|r| 1.0 / (k as f64 + r as f64 + 1.0)).collect(),
            Fusion::Convex { .. } | Fusion::Auto => min_max(ranking),
        }
    };
    let (w_dense, w_lexical) = match fusion {
        Fusion::Rrf { .. } => (1.0, 1.0),
        Fusion::Convex { alpha } => (alpha as f64, 1.0 - alpha as f64),
        Fusion::Auto => (DEFAULT_ALPHA as f64, 1.0 - DEFAULT_ALPHA as f64),
    };
    for (rank, ((key, _), c)) in dense.iter().zip(contributions(dense)).enumerate() {
        let e = fused.entry(key.clone()).or_insert((0.0, usize::MAX, usize::MAX));
        if e.1 == usize::MAX {
            e.0 += w_dense * c;
            e.1 = rank;
        }
    }
    for (rank, ((key, _), c)) in lexical.iter().zip(contributions(lexical)).enumerate() {
        let e = fused.entry(key.clone()).or_insert((0.0, usize::MAX, usize::MAX));
        if e.2 == usize::MAX {
            e.0 += w_lexical * c;
            e.2 = rank;
        }
    }
    let mut out: Vec<(K, (f64, usize, usize))> = fused.into_iter().collect();
    out.sort_by(|(ka, a), (kb, b)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)).then(ka.cmp(kb)));
    out.into_iter().map(|(k, (s, _, _))| (k, s as f32)).collect()
}

/// Scores scaled to [0, 1] over the ranking (all 1 when they are equal).
fn min_max<K>(ranking: &[(K, f32)]) -> Vec<f64> {
    let lo = ranking.iter().map(|(_, s)| *s as f64).fold(f64::INFINITY, f64::min);
    let hi = ranking.iter().map(|(_, s)| *s as f64).fold(f64::NEG_INFINITY, f64::max);
    ranking.iter().map(|(_, s)| if hi > lo { (*s as f64 - lo) / (hi - lo) } else { 1.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_sums_reciprocal_ranks() {
        let dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)];
        let lexical = [("c", 12.0), ("a", 3.0)];
        let got = fuse(&dense, &lexical, Fusion::Rrf { k: 60.0 });
        // a: 1/61 + 1/62; c: 1/63 + 1/61; b: 1/62.
        let want = [("a", 1.0 / 61.0 + 1.0 / 62.0), ("c", 1.0 / 63.0 + 1.0 / 61.0), ("b", 1.0 / 62.0)];
        assert_eq!(got.len(), 3);
        for ((k, s), (wk, ws)) in got.iter().zip(want) {
            assert_eq!(*k, wk);
            assert!((*s as f64 - ws).abs() < 1e-7, "{k}: {s} vs {ws}");
        }
    }

    #[test]
    fn convex_weighs_min_max_normalised_scores() {
        let dense = [("a", 0.9), ("b", 0.7), ("c", 0.5)];
        let lexical = [("c", 10.0), ("d", 6.0), ("a", 2.0)];
        let alpha = 0.3;
        let got: HashMap<&str, f32> = fuse(&dense, &lexical, Fusion::Convex { alpha }).into_iter().collect();
        // dense normalised: a 1, b 0.5, c 0; lexical: c 1, d 0.5, a 0.
        let want = [("a", 0.3), ("b", 0.15), ("c", 0.7), ("d", 0.35)];
        for (k, w) in want {
            assert!((got[k] as f64 - w).abs() < 1e-6, "{k}: {} vs {w}", got[k]);
        }
        // α = 1 is the dense ranking; α = 0 the lexical one (documents only on the other side last).
        let only_dense: Vec<&str> =
            fuse(&dense, &lexical, Fusion::Convex { alpha: 1.0 }).into_iter().map(|(k, _)| k).collect();
        assert_eq!(&only_dense[..3], ["a", "b", "c"]);
        let only_lexical: Vec<&str> =
            fuse(&dense, &lexical, Fusion::Convex { alpha: 0.0 }).into_iter().map(|(k, _)| k).collect();
        assert_eq!(&only_lexical[..3], ["c", "d", "a"]);
    }

    #[test]
    fn equal_scores_and_empty_sides() {
        let dense = [("x", 0.5), ("y", 0.5)];
        let got = fuse::<&str>(&dense, &[], Fusion::Convex { alpha: 0.5 });
        // Equal scores normalise to 1; the tie goes to the better dense rank.
        assert_eq!(got, vec![("x", 0.5), ("y", 0.5)]);
        assert!(fuse::<&str>(&[], &[], Fusion::default()).is_empty());
    }

    #[test]
    fn parsing_and_validation() {
        assert_eq!(Fusion::parse("convex", Some(0.7)).unwrap(), Fusion::Convex { alpha: 0.7 });
        assert_eq!(Fusion::parse("RRF", None).unwrap(), Fusion::Rrf { k: RRF_K });
        assert!(Fusion::parse("rrf", Some(0.5)).is_err());
        assert!(Fusion::parse("convex", Some(1.5)).unwrap_err().to_string().contains("[0, 1]"));
        assert!(Fusion::parse("max", None).is_err());
        assert_eq!(Fusion::parse("auto", None).unwrap(), Fusion::Auto);
        assert!(Fusion::parse("auto", Some(0.5)).is_err());
        assert_eq!("hybrid".parse::<SearchMode>().unwrap(), SearchMode::Hybrid);
        assert!("semantic".parse::<SearchMode>().unwrap_err().to_string().contains("dense, lexical or hybrid"));
    }
}
