//! The HNSW index of one collection: a wrapper over hnsw_rs that never exits or panics on isovec.
//!
//! Vectors enter the index L2-normalised, so the distance is `1 - dot` and the score of a hit is
//! its cosine. The index is derived state: it can always be rebuilt from the vectors in sled.
//!
//! hnsw_rs builds, extends and persists the graph; searches run on a flat copy of it
//! ([`Graph`]), 3–4× faster. Points inserted after the copy was taken are kept aside in `recent`
//! and scanned exactly; once there are more than [`RECENT_LIMIT`], the next search takes a fresh
//! copy (0.6–0.8 s per 100k vectors of 384 dimensions). Besides the links, the copy holds one byte
//! per dimension of each vector.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Mutex, RwLock};

use hnsw_rs::prelude::{AnnT, Distance, FilterT, Hnsw, HnswIo};

use crate::store::graph::Graph;
pub use crate::simd::dot;
pub(crate) use crate::vector::TopK;
pub use crate::vector::{exact_top_k, normalized, Scored};
use crate::store::layout::{damaged, HnswParams};
use crate::{Error, Result};

/// Points inserted since the last copy of the graph above which a search takes a new copy
/// (scanning them exactly costs about as much as a graph search at this size).
pub const RECENT_LIMIT: usize = 2048;

/// Highest number of layers hnsw_rs supports.
const MAX_LAYERS: usize = 16;

/// Largest capacity hint passed to hnsw_rs (it grows past it as points arrive).
const MAX_CAPACITY_HINT: usize = 1 << 22;

/// Names of the two files hnsw_rs's dump writes for a basename.
const DUMP_SUFFIXES: [&str; 2] = [".hnsw.graph", ".hnsw.data"];

/// Distance `1 - <a, b>` between normalised vectors, clamped at 0.
///
/// isovec's own distance rather than hnsw_rs's `DistDot`: the latter asserts `dot <= 1`, which
/// rounding breaks for a query equal to a stored vector, and hnsw_rs asserts distances are >= 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}



/// An HNSW graph over normalised vectors keyed by internal id.
pub struct Index {
    hnsw: Hnsw<'static, f32, CosineDistance>,
    /// Dimensions of every vector (0: not known, for a loaded graph without points).
    dims: usize,
    view: RwLock<View>,
    /// Held while a copy of the graph is taken, so only one search takes it.
    copying: Mutex<()>,
}

/// What searches read: a copy of the graph and the points inserted since.
#[derive(Default)]
struct View {
    graph: Option<Graph>,
    recent: Vec<(Vec<f32>, u64)>,
}

impl Index {
    /// An empty index of `dims`-dimensional vectors sized for about `capacity` of them; errors
    /// on parameters hnsw_rs would exit or panic on (the last gate: callers check stored
    /// configurations first).
    pub fn new(params: &HnswParams, dims: usize, capacity: usize) -> Result<Self> {
        params
            .validate()
            .map_err(|e| Error::Index(format!("cannot build an HNSW index: {e}")))?;
        // The capacity is a hint hnsw_rs reserves memory for; a damaged count must not turn
        // into an allocation that aborts the process.
        let hnsw = Hnsw::new(
            params.m,
            capacity.clamp(1024, MAX_CAPACITY_HINT),
            MAX_LAYERS,
            params.ef_construction,
            CosineDistance,
        );
        Ok(Index::wrap(hnsw, dims))
    }

    fn wrap(hnsw: Hnsw<'static, f32, CosineDistance>, dims: usize) -> Self {
        Index {
            hnsw,
            dims,
            view: RwLock::new(View::default()),
            copying: Mutex::new(()),
        }
    }

    /// Checks that a vector read back from the database has the index's dimensions (a damaged
    /// record would otherwise corrupt the search copy of the graph).
    pub fn check_stored(&self, vector: &[f32]) -> Result<()> {
        if self.dims != 0 && vector.len() != self.dims {
            return Err(damaged(&format!(
                "a vector record has {} dimensions, the collection {}",
                vector.len(),
                self.dims
            )));
        }
        Ok(())
    }

    /// Inserts normalised vectors of the index's dimensions; large batches are inserted in parallel.
    pub fn insert(&self, items: &[(Vec<f32>, u64)]) {
        if items.len() >= 256 {
            let refs: Vec<(&Vec<f32>, usize)> =
                items.iter().map(|(v, id)| (v, *id as usize)).collect();
            self.hnsw.parallel_insert(&refs);
        } else {
            for (v, id) in items {
                self.hnsw.insert((v.as_slice(), *id as usize));
            }
        }
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        if view.graph.is_some() {
            view.recent.extend_from_slice(items);
        }
    }

    /// Takes a fresh copy of the graph for searches (done by searches when needed; call it to
    /// pay the cost up front, e.g. right after a bulk load). Returns at once if another thread
    /// is taking one.
    pub fn refresh_search_copy(&self) {
        let Ok(_copying) = self.copying.try_lock() else {
            return;
        };
        // Inserts wait while the copy is taken, so every point is in the copy or in `recent`
        // (or, inserted concurrently, in both: results are deduplicated).
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        view.graph = Graph::copy(&self.hnsw);
        view.recent.clear();
    }

    /// Number of vectors in the graph (deleted ones included).
    pub fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` nearest neighbours of a normalised query among ids the filter allows.
    pub fn search(&self, query: &[f32], k: usize, ef: usize, filter: Option<&dyn FilterT>) -> Vec<Scored> {
        if self.is_empty() || k == 0 {
            return Vec::new();
        }
        // Neither k nor a beam wider than the graph finds more; both size allocations, so a
        // huge value must not reach them.
        let k = k.min(self.len());
        let ef = ef.clamp(k, self.len().max(k));
        let stale = {
            let view = self.view.read().unwrap_or_else(|e| e.into_inner());
            view.graph.is_none() || view.recent.len() > RECENT_LIMIT
        };
        if stale {
            self.refresh_search_copy();
        }
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        let Some(graph) = &view.graph else {
            // No copy: the graph had no points when it was taken.
            return self.search_hnsw_rs(query, k, ef, filter);
        };
        let allowed = filter.map(|f| move |id: u64| f.hnsw_filter(&(id as usize)));
        let allowed_dyn = allowed.as_ref().map(|f| f as &dyn Fn(u64) -> bool);
        let found = graph.search(query, k, ef, allowed_dyn);
        if view.recent.is_empty() {
            return found;
        }
        let recent = view
            .recent
            .iter()
            .filter(|(_, id)| allowed_dyn.is_none_or(|f| f(*id)))
            .map(|(v, id)| (*id, v.as_slice()));
        let mut merged = exact_top_k(query, k, recent);
        merged.extend(found);
        merged.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.internal_id.cmp(&b.internal_id)));
        merged.dedup_by_key(|s| s.internal_id);
        merged.truncate(k);
        merged
    }

    #[cfg(test)]
    pub(crate) fn hnsw_for_tests(&self) -> &Hnsw<'static, f32, CosineDistance> {
        &self.hnsw
    }

    /// hnsw_rs's own search.
    pub(crate) fn search_hnsw_rs(&self, query: &[f32], k: usize, ef: usize, filter: Option<&dyn FilterT>) -> Vec<Scored> {
        self.hnsw
            .search_filter(query, k, ef.max(k), filter)
            .into_iter()
            .map(|n| Scored {
                internal_id: n.d_id as u64,
                score: 1.0 - n.distance,
            })
            .collect()
    }

    /// Writes the graph and data files into `dir` (which must exist); returns their basename.
    pub fn dump(&self, dir: &Path, basename: &str) -> Result<String> {
        // hnsw_rs's dump prints to stdout and panics when it cannot create its two files, the
        // only prints on this path. Creating them first, exactly as it does, keeps that from
        // happening (it then only reopens files that exist in a folder isovec just made);
        // other panics inside the dump become errors below.
        for suffix in DUMP_SUFFIXES {
            let path = dir.join(format!("{basename}{suffix}"));
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::Index(format!(
                    "writing the index snapshot {}: {e}; check free disk space and permissions",
                    path.display()
                )))?;
        }
        let res = catch_unwind(AssertUnwindSafe(|| self.hnsw.file_dump(dir, basename)));
        match res {
            Ok(Ok(name)) => Ok(name),
            Ok(Err(e)) => Err(Error::Index(format!(
                "writing the index snapshot in {}: {e}; check free disk space and permissions",
                dir.display()
            ))),
            Err(_) => Err(Error::Index(format!(
                "writing the index snapshot in {} failed; check free disk space and permissions",
                dir.display()
            ))),
        }
    }

    /// Loads a graph written by [`Index::dump`]. The caller must have verified the files'
    /// checksums: hnsw_rs's loader exits the process on some damaged files.
    pub fn load(dir: &Path, basename: &str) -> Result<Self> {
        // The reloaded graph borrows its loader for the lifetime of the data (used only for
        // mmap, which isovec leaves off). Leaking the loader, a few hundred bytes per load,
        // gives the graph a 'static lifetime so it can live in the collection.
        let io = Box::new(HnswIo::new(dir, basename));
        let res = catch_unwind(AssertUnwindSafe(move || {
            let io: &'static mut HnswIo = Box::leak(io);
            io.load_hnsw::<f32, CosineDistance>()
        }));
        match res {
            Ok(Ok(mut hnsw)) => {
                // Inserts after loading use the parameters stored in the files (m in one byte).
                let stored = HnswParams {
                    m: hnsw.get_max_nb_connection() as usize,
                    ef_construction: hnsw.get_ef_construction(),
                    ef_search: 1,
                };
                stored
                    .validate()
                    .map_err(|e| Error::Damaged { what: format!("the index snapshot is damaged: {e}"), path: Some(dir.to_path_buf()) })?;
                // The loader turns on candidate extension; keep construction as configured.
                hnsw.set_extend_candidates(false);
                let dims = hnsw.get_point_indexation().get_data_dimension();
                let index = Index::wrap(hnsw, dims);
                index.refresh_search_copy();
                Ok(index)
            }
            Ok(Err(e)) => Err(Error::Damaged { what: format!("loading the index snapshot: {e}"), path: Some(dir.to_path_buf()) }),
            Err(_) => Err(Error::Damaged { what: "loading the index snapshot failed".into(), path: Some(dir.to_path_buf()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Cosine distance `1 - cos(a, b)` computed in f64 from the raw coordinates, norms included.
    fn cosine_distance_f64(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        1.0 - dot / (norm(a) * norm(b))
    }

    #[test]
    fn dot_matches_f64() {
        let a = unit(1, 37);
        let b = unit(2, 37);
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - exact).abs() < 1e-6);
    }

    #[test]
    fn cosine_distance_matches_f64() {
        for seed in 0..20 {
            let (a, b) = (unit(seed, 37), unit(seed + 100, 37));
            let d = CosineDistance.eval(&a, &b) as f64;
            assert!((d - cosine_distance_f64(&a, &b)).abs() < 1e-6, "seed {seed}: {d}");
        }
        let a = unit(7, 37);
        let opposite: Vec<f32> = a.iter().map(|x| -x).collect();
        assert!((CosineDistance.eval(&a, &opposite) - 2.0).abs() < 1e-6);
        // A vector's distance to itself is 0 up to rounding, and rounding never makes it negative.
        for seed in 0..50 {
            let v = unit(seed, 384);
            let d = CosineDistance.eval(&v, &v);
            assert!((0.0..1e-6).contains(&d), "seed {seed}: {d}");
        }
        let (x, y) = ([1.0f32, 0.0, 0.0], [0.0f32, 1.0, 0.0]);
        assert_eq!(CosineDistance.eval(&x, &y), 1.0);
    }

    #[test]
    fn hnsw_agrees_with_exact_search_and_survives_dump() {
        let dims = 16;
        let items: Vec<(Vec<f32>, u64)> = (0..600).map(|i| (unit(i, dims), i * 3)).collect();
        let index = Index::new(&HnswParams::default(), dims, items.len()).unwrap();
        index.insert(&items);
        let q = unit(10_000, dims);
        let exact = exact_top_k(&q, 5, items.iter().map(|(v, id)| (*id, v.as_slice())));
        let approx = index.search(&q, 5, 200, None);
        assert_eq!(
            approx.iter().map(|s| s.internal_id).collect::<Vec<_>>(),
            exact.iter().map(|s| s.internal_id).collect::<Vec<_>>()
        );
        let dir = tempfile::tempdir().unwrap();
        let name = index.dump(dir.path(), "index").unwrap();
        let loaded = Index::load(dir.path(), &name).unwrap();
        assert_eq!(loaded.len(), 600);
        // Only the two files of the basename, nothing else.
        let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        files.sort();
        assert_eq!(files, ["index.hnsw.data", "index.hnsw.graph"]);
        let again = loaded.search(&q, 5, 200, None);
        assert_eq!(again, approx);
        // The filter removes ids from results.
        let odd = |id: &usize| id % 2 == 1;
        let filtered = loaded.search(&q, 5, 200, Some(&odd));
        assert!(filtered.iter().all(|s| s.internal_id % 2 == 1));
        assert_eq!(filtered.len(), 5);
    }

    #[test]
    fn parameters_hnsw_rs_would_exit_on_are_errors() {
        for (m, ef) in [(0, 100), (1, 100), (256, 100), (10_000, 100), (24, 0), (24, usize::MAX)] {
            let params = HnswParams { m, ef_construction: ef, ef_search: 10 };
            assert!(Index::new(&params, 8, 10).is_err(), "m={m} ef_construction={ef}");
        }
        // A damaged document count is only a capacity hint.
        let index = Index::new(&HnswParams::default(), 8, usize::MAX).unwrap();
        let items: Vec<(Vec<f32>, u64)> = (0..20).map(|i| (unit(i, 8), i)).collect();
        index.insert(&items);
        // k and ef far beyond the graph return every point, best first.
        let all = index.search(&unit(99, 8), usize::MAX, usize::MAX, None);
        let exact = exact_top_k(&unit(99, 8), 20, items.iter().map(|(v, id)| (*id, v.as_slice())));
        assert_eq!(all, exact);
    }

    #[test]
    fn a_dump_into_an_unwritable_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::new(&HnswParams::default(), 4, 10).unwrap();
        index.insert(&[(unit(1, 4), 1)]);
        assert!(index.check_stored(&unit(2, 4)).is_ok());
        assert!(index.check_stored(&unit(2, 3)).unwrap_err().to_string().contains("3 dimensions"));
        let missing = dir.path().join("no-such-folder");
        let err = index.dump(&missing, "index").unwrap_err().to_string();
        assert!(err.contains("no-such-folder") && err.contains("disk space"), "{err}");
    }
}
