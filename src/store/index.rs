//! The HNSW index of one collection: isovec's own graph ([`Graph`]), built in parallel and
//! searched while it grows.
//!
//! Vectors enter the index L2-normalised, so the score of a hit is its cosine. The index is
//! derived state: it can always be rebuilt from the vectors in sled.
//!
//! A batch of points is first appended to the graph under its write lock (a copy of the
//! vectors: searches wait milliseconds), then linked under the read lock on every core while
//! searches go on; a search may meet points of the batch before they are linked, which only
//! makes them harder to find until then (the collection hides them until the write is visible).

use std::path::Path;
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use rayon::prelude::*;

use crate::store::graph::Graph;
use crate::store::graph_file::{self, Sum};
use crate::store::layout::{damaged, HnswParams};
use crate::vector::Scored;
use crate::{Error, Result};

/// Batches at least this large are linked on every core.
const PARALLEL_MIN: usize = 64;

/// Most vector components reserved up front (256 MiB of f32; the graph grows past it as points
/// arrive).
const MAX_RESERVED_COMPONENTS: usize = 1 << 26;

/// An HNSW graph over normalised vectors keyed by internal id.
pub struct Index {
    graph: RwLock<Graph>,
    /// Dimensions of every vector.
    dims: usize,
    /// Held by an insertion from its append to its last link, so batches link one at a time.
    inserting: Mutex<()>,
}

impl Index {
    /// An empty index of `dims`-dimensional vectors sized for about `capacity` of them; errors
    /// on parameters out of range (callers check stored configurations first).
    pub fn new(params: &HnswParams, dims: usize, capacity: usize) -> Result<Self> {
        params.validate().map_err(|e| Error::Index(format!("cannot build an HNSW index: {e}")))?;
        if dims == 0 {
            return Err(Error::Index("cannot build an HNSW index of 0-dimensional vectors".into()));
        }
        // The capacity is only a hint: a damaged count must not turn into an allocation that
        // aborts the process.
        let graph = Graph::new(dims, params.m, params.ef_construction, capacity.min(MAX_RESERVED_COMPONENTS / dims));
        Ok(Index::wrap(graph))
    }

    fn wrap(graph: Graph) -> Self {
        Index { dims: graph.dims, graph: RwLock::new(graph), inserting: Mutex::new(()) }
    }

    fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.graph.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks that a vector read back from the database has the index's dimensions (a damaged
    /// record would otherwise corrupt the graph).
    pub fn check_stored(&self, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dims {
            return Err(damaged(&format!(
                "a vector record has {} dimensions, the collection {}",
                vector.len(),
                self.dims
            )));
        }
        Ok(())
    }

    /// Inserts normalised vectors of the index's dimensions; large batches are linked in parallel.
    pub fn insert(&self, items: &[(Vec<f32>, u64)]) -> Result<()> {
        if let Some((v, _)) = items.iter().find(|(v, _)| v.len() != self.dims) {
            return Err(Error::Dimension { expected: self.dims, found: v.len() });
        }
        let _inserting = self.inserting.lock().unwrap_or_else(|e| e.into_inner());
        let nodes = {
            let mut graph = self.graph.write().unwrap_or_else(|e| e.into_inner());
            if graph.len() + items.len() >= u32::MAX as usize {
                return Err(Error::Index(format!(
                    "an HNSW index holds at most {} points; split the collection",
                    u32::MAX - 1
                )));
            }
            graph.append(items)
        };
        let graph = self.read();
        if items.len() >= PARALLEL_MIN {
            nodes.into_par_iter().for_each(|i| graph.link(i));
        } else {
            nodes.for_each(|i| graph.link(i));
        }
        Ok(())
    }

    /// Number of vectors in the graph (deleted ones included).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// The `k` nearest neighbours of a normalised query among internal ids `allowed` accepts.
    pub fn search(&self, query: &[f32], k: usize, ef: usize, allowed: Option<&dyn Fn(u64) -> bool>) -> Vec<Scored> {
        let graph = self.read();
        if graph.is_empty() || k == 0 {
            return Vec::new();
        }
        // Neither k nor a beam wider than the graph finds more; both size allocations, so a
        // huge value must not reach them.
        let k = k.min(graph.len());
        let ef = ef.clamp(k, graph.len().max(k));
        graph.search(query, k, ef, allowed)
    }

    /// The exact `k` best by cosine among internal ids `allowed` (sorted) that the index holds,
    /// and how many of them it holds.
    pub fn exact_among(&self, query: &[f32], k: usize, allowed: &[u64]) -> (Vec<Scored>, usize) {
        self.read().exact_among(query, k.min(allowed.len()), allowed)
    }

    /// Writes the graph to a new file at `path` (see [`graph_file`]); returns its length and CRC32.
    pub fn write(&self, path: &Path) -> Result<Sum> {
        graph_file::write(&self.read(), path)
    }

    /// Reads a graph written by [`Index::write`], with the file's length and CRC32 (for the caller
    /// to compare with what it recorded).
    pub fn read_file(path: &Path) -> Result<(Self, Sum)> {
        let (graph, sum) = graph_file::read(path)?;
        Ok((Index::wrap(graph), sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::{exact_top_k, normalized};

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        // xorshift so the test needs no RNG crate state.
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        let v: Vec<f32> = (0..dims)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        normalized(&v).unwrap()
    }

    #[test]
    fn dot_matches_f64() {
        let a = unit(1, 37);
        let b = unit(2, 37);
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((crate::simd::dot(&a, &b) as f64 - exact).abs() < 1e-6);
    }

    #[test]
    fn the_index_agrees_with_exact_search_and_survives_a_snapshot() {
        let dims = 16;
        let items: Vec<(Vec<f32>, u64)> = (0..600).map(|i| (unit(i, dims), i * 3)).collect();
        let index = Index::new(&HnswParams::default(), dims, items.len()).unwrap();
        index.insert(&items).unwrap();
        let q = unit(10_000, dims);
        let exact = exact_top_k(&q, 5, items.iter().map(|(v, id)| (*id, v.as_slice())));
        let approx = index.search(&q, 5, 200, None);
        assert_eq!(
            approx.iter().map(|s| s.internal_id).collect::<Vec<_>>(),
            exact.iter().map(|s| s.internal_id).collect::<Vec<_>>()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph");
        let written = index.write(&path).unwrap();
        let (loaded, read) = Index::read_file(&path).unwrap();
        assert_eq!(written, read);
        assert_eq!(written.len, std::fs::metadata(&path).unwrap().len());
        assert_eq!(loaded.len(), 600);
        let again = loaded.search(&q, 5, 200, None);
        assert_eq!(again, approx);
        // The filter removes ids from results.
        let odd = |id: u64| id % 2 == 1;
        let filtered = loaded.search(&q, 5, 200, Some(&odd));
        assert!(filtered.iter().all(|s| s.internal_id % 2 == 1));
        assert_eq!(filtered.len(), 5);
        // The loaded index takes more points, and finds them.
        loaded.insert(&[(unit(77_777, dims), 5_000)]).unwrap();
        assert_eq!(loaded.search(&unit(77_777, dims), 1, 50, None)[0].internal_id, 5_000);
    }

    #[test]
    fn parameters_out_of_range_are_errors() {
        for (m, ef) in [(0, 100), (1, 100), (256, 100), (10_000, 100), (24, 0), (24, usize::MAX)] {
            let params = HnswParams { m, ef_construction: ef, ef_search: 10 };
            assert!(Index::new(&params, 8, 10).is_err(), "m={m} ef_construction={ef}");
        }
        // A damaged document count is only a capacity hint.
        let index = Index::new(&HnswParams::default(), 8, usize::MAX).unwrap();
        let items: Vec<(Vec<f32>, u64)> = (0..20).map(|i| (unit(i, 8), i)).collect();
        index.insert(&items).unwrap();
        // k and ef far beyond the graph return every point, best first.
        let all = index.search(&unit(99, 8), usize::MAX, usize::MAX, None);
        let exact = exact_top_k(&unit(99, 8), 20, items.iter().map(|(v, id)| (*id, v.as_slice())));
        assert_eq!(all, exact);
        // A vector of other dimensions is refused, and nothing of its batch goes in.
        assert!(index.insert(&[(unit(1, 8), 100), (unit(2, 7), 101)]).is_err());
        assert_eq!(index.len(), 20);
    }

    #[test]
    fn a_snapshot_into_an_unwritable_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(&HnswParams::default(), 4, 10).unwrap();
        index.insert(&[(unit(1, 4), 1)]).unwrap();
        assert!(index.check_stored(&unit(2, 4)).is_ok());
        assert!(index.check_stored(&unit(2, 3)).unwrap_err().to_string().contains("3 dimensions"));
        let missing = dir.path().join("no-such-folder").join("graph");
        let err = index.write(&missing).unwrap_err().to_string();
        assert!(err.contains("no-such-folder"), "{err}");
    }
}
