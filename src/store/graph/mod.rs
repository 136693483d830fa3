//! The HNSW graph of one collection in flat arrays: appended to, linked in parallel, searched
//! without locks, and written to disk as it lies in memory ([`super::graph_file`]).
//!
//! Node `i` (dense numbers in insertion order) has its internal id `ids[i]`, its exact vector
//! `vectors[i·dims..]`, a one-byte code per dimension `codes[i·dims..]` (component j ≈
//! `codes[i·dims + j] · scales[j]`), and one slot block per layer: `[count, link, link, …]` with
//! room for `2m` links on layer 0 and `m` above. The graph is walked with the codes (384 B per
//! MiniLM vector instead of 1,536 B: memory traffic bounds HNSW), and a search re-scores its
//! best candidates with the exact vectors, so scores are exact cosines.
//!
//! Concurrency (how the invariants are kept):
//! - [`Graph::append`] takes `&mut self` (the owner's write lock): it adds nodes with empty link
//!   lists and may re-code every vector when the scales must widen;
//! - [`Graph::link`] and [`Graph::search`] take `&self` and run together. Links are atomics; a
//!   node's lists are rewritten only under that node's lock, one lock held at a time, and a
//!   reader that races a rewrite sees an old or new link in each slot, every one a valid node
//!   (slots only ever hold node numbers below `len()`), so a search stays in bounds whatever it
//!   reads; the count is published after the links it covers.
//!
//! This file holds the storage (the arrays, appending, the codes, slot blocks and node locks);
//! `search.rs` walks the graph and `build.rs` links nodes into it.

mod build;
mod search;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering as Mem};
use std::sync::Mutex;

use search::Visited;

use crate::simd::dot_code;

/// Highest layer a node can have (levels are drawn geometrically; 16 layers hold 2^64 nodes at m 16).
pub(crate) const MAX_LEVEL: usize = 15;

/// `top` when the graph has no node.
const EMPTY: u64 = u64::MAX;

/// An HNSW graph over normalised vectors, in flat arrays.
pub(crate) struct Graph {
    pub(super) dims: usize,
    /// Links per node on layers above 0 (2m on layer 0).
    pub(super) m: usize,
    pub(super) ef_construction: usize,
    /// Dense node number → internal id.
    pub(super) ids: Vec<u64>,
    /// Top layer of each node.
    pub(super) levels: Vec<u8>,
    /// n × dims exact vectors.
    pub(super) vectors: Vec<f32>,
    /// n × dims one-byte codes.
    pub(super) codes: Vec<i8>,
    /// Per dimension: the code unit.
    pub(super) scales: Vec<f32>,
    /// n blocks of `1 + 2m` slots: count, then links.
    pub(super) layer0: Vec<AtomicU32>,
    /// Node i's upper blocks (`levels[i]` of `1 + m` slots each) start at `upper_start[i]`; n + 1 entries.
    pub(super) upper_start: Vec<u64>,
    pub(super) upper: Vec<AtomicU32>,
    /// Entry node in the low 32 bits, its level above; [`EMPTY`] when there is no node.
    pub(super) top: AtomicU64,
    /// Held while the entry point changes.
    entry_lock: Mutex<()>,
    /// One per node, held while its lists change.
    locks: Vec<Mutex<()>>,
    /// Reusable visited sets, one per concurrent search.
    pool: Mutex<Vec<Visited>>,
}

impl Graph {
    /// An empty graph of `dims`-dimensional vectors with `m` links per node (2m on layer 0),
    /// with room reserved for `capacity` nodes.
    pub fn new(dims: usize, m: usize, ef_construction: usize, capacity: usize) -> Graph {
        let mut graph = Graph::from_parts(dims, m, ef_construction);
        graph.scales = vec![0.0; dims];
        graph.upper_start.push(0);
        graph.reserve(capacity);
        graph
    }

    /// A graph with no arrays filled (the snapshot reader fills them).
    pub(super) fn from_parts(dims: usize, m: usize, ef_construction: usize) -> Graph {
        Graph {
            dims,
            m,
            ef_construction,
            ids: Vec::new(),
            levels: Vec::new(),
            vectors: Vec::new(),
            codes: Vec::new(),
            scales: Vec::new(),
            layer0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            top: AtomicU64::new(EMPTY),
            entry_lock: Mutex::new(()),
            locks: Vec::new(),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Gives every node its lock (after the arrays were filled by the snapshot reader).
    pub(super) fn finish_loading(&mut self) {
        self.locks = (0..self.ids.len()).map(|_| Mutex::new(())).collect();
    }

    fn reserve(&mut self, extra: usize) {
        self.ids.reserve(extra);
        self.levels.reserve(extra);
        self.vectors.reserve(extra * self.dims);
        self.codes.reserve(extra * self.dims);
        self.layer0.reserve(extra * self.block0());
        self.upper_start.reserve(extra);
        self.locks.reserve(extra);
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Slots of a layer-0 block.
    pub(super) fn block0(&self) -> usize {
        1 + 2 * self.m
    }

    /// Slots of an upper-layer block.
    pub(super) fn block_upper(&self) -> usize {
        1 + self.m
    }

    /// The entry node and its level, if any node exists.
    pub(super) fn entry(&self) -> Option<(u32, usize)> {
        let top = self.top.load(Mem::Acquire);
        (top != EMPTY).then_some((top as u32, (top >> 32) as usize))
    }

    /// Adds normalised `(vector, internal id)` items as unlinked nodes; returns their node
    /// numbers. The caller links them with [`Graph::link`]. Vectors must have `dims` components.
    pub fn append(&mut self, items: &[(Vec<f32>, u64)]) -> std::ops::Range<u32> {
        let start = self.len();
        self.widen_scales(items);
        self.reserve(items.len());
        let (block0, block_upper) = (self.block0(), self.block_upper());
        for (vector, id) in items {
            let level = level_of(*id, self.m);
            self.ids.push(*id);
            self.levels.push(level as u8);
            self.vectors.extend_from_slice(vector);
            let scales = &self.scales;
            self.codes.extend(vector.iter().zip(scales).map(|(&x, &s)| quantize(x, s)));
            self.layer0.extend((0..block0).map(|_| AtomicU32::new(0)));
            let upper_len = self.upper.len() + level * block_upper;
            self.upper.resize_with(upper_len, || AtomicU32::new(0));
            self.upper_start.push(upper_len as u64);
            self.locks.push(Mutex::new(()));
        }
        if self.entry().is_none() && !items.is_empty() {
            let level = u64::from(self.levels[start]);
            self.top.store(start as u64 | level << 32, Mem::Release);
        }
        start as u32..self.len() as u32
    }

    /// Widens the scales of dimensions where `items` exceed them and re-codes those dimensions.
    /// The first vectors fix the scales to their largest components; a later wider one widens
    /// its dimension with 10 % headroom, so re-coding stays rare.
    fn widen_scales(&mut self, items: &[(Vec<f32>, u64)]) {
        let first = self.is_empty();
        let mut widest = vec![0f32; self.dims];
        for (vector, _) in items {
            for (w, &x) in widest.iter_mut().zip(vector) {
                *w = w.max(x.abs());
            }
        }
        let mut changed = Vec::new();
        for (j, (&w, s)) in widest.iter().zip(self.scales.iter_mut()).enumerate() {
            if first {
                *s = if w > 0.0 { w / 127.0 } else { 1.0 };
            } else if w > *s * 127.0 {
                *s = w * 1.1 / 127.0;
                changed.push(j);
            }
        }
        if changed.is_empty() {
            return;
        }
        let dims = self.dims;
        for (code, vector) in self.codes.chunks_exact_mut(dims).zip(self.vectors.chunks_exact(dims)) {
            for &j in &changed {
                code[j] = quantize(vector[j], self.scales[j]);
            }
        }
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn vector(&self, i: u32) -> &[f32] {
        let start = i as usize * self.dims;
        &self.vectors[start..start + self.dims]
    }

    fn code(&self, i: u32) -> &[i8] {
        let start = i as usize * self.dims;
        &self.codes[start..start + self.dims]
    }

    /// `v` in the codes' terms: dotted with a node's code, it gives the node's cosine with `v`.
    fn query_code(&self, v: &[f32]) -> QueryCode {
        let mut q = QueryCode::default();
        q.set(v, &self.scales, &mut Vec::new());
        q
    }

    /// −cosine between the vector whose form is `q` and node `i`, from its code.
    fn distance(&self, q: &QueryCode, i: u32) -> f32 {
        -(dot_code(&q.q, self.code(i)) as f32 * q.unit)
    }

    /// The slot block of node `i` on `level`: count, then room for the links.
    fn block(&self, i: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let b = self.block0();
            &self.layer0[i as usize * b..(i as usize + 1) * b]
        } else {
            let b = self.block_upper();
            let start = self.upper_start[i as usize] as usize + (level - 1) * b;
            &self.upper[start..start + b]
        }
    }

    /// Appends the links of node `i` on `level` to `out`.
    fn neighbours(&self, i: u32, level: usize, out: &mut Vec<u32>) {
        let block = self.block(i, level);
        let count = (block[0].load(Mem::Acquire) as usize).min(block.len() - 1);
        out.extend(block[1..=count].iter().map(|l| l.load(Mem::Relaxed)));
    }

    /// Replaces the links of node `i` on `level` (the caller holds the node's lock).
    fn set_neighbours(&self, i: u32, level: usize, links: &[u32]) {
        let block = self.block(i, level);
        for (slot, &l) in block[1..].iter().zip(links) {
            slot.store(l, Mem::Relaxed);
        }
        block[0].store(links.len().min(block.len() - 1) as u32, Mem::Release);
    }

    fn lock(&self, i: u32) -> std::sync::MutexGuard<'_, ()> {
        self.locks[i as usize].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A vector in the codes' terms, `v_j · scales_j ≈ q_j · unit` with 16-bit `q_j`, so that its
/// estimated cosine with a node is `unit · Σ q_j · code_j`, summed exactly in 32-bit integers
/// (`vpmaddwd`: 32 codes an instruction, against 16 for f32 multiply-adds after widening).
/// Rounding `q` adds at most half a unit per component, 1/65,534 of the largest: far below the
/// codes' own 1/254.
#[derive(Default)]
struct QueryCode {
    q: Vec<i16>,
    unit: f32,
}

impl QueryCode {
    /// Sets this to `v`'s form (`buffer` holds `v × scales` meanwhile). A vector with a
    /// non-finite component, or all zero, gets the zero form: every estimate 0, as a zero
    /// vector's cosine is.
    fn set(&mut self, v: &[f32], scales: &[f32], buffer: &mut Vec<f32>) {
        // Every component is overwritten: a buffer of the right length is not cleared first.
        buffer.resize(v.len().min(scales.len()), 0.0);
        scale_into(buffer, v, scales);
        let largest = buffer.iter().fold(0f32, |m, x| m.max(x.abs()));
        // |Σ q_j · code_j| ≤ dims · limit · 127 must stay below 2³¹.
        let limit = (i32::MAX as usize / (127 * buffer.len().max(1))).min(i16::MAX as usize) as f32;
        self.q.clear();
        if largest > 0.0 && largest.is_finite() {
            let per_unit = limit / largest;
            self.unit = largest / limit;
            self.q.resize(buffer.len(), 0);
            round_into(&mut self.q, buffer, per_unit, limit);
        } else {
            self.unit = 0.0;
            self.q.resize(buffer.len(), 0);
        }
    }
}

crate::simd::multiversion! {
    /// out = v × scales, component by component.
    fn scale_into(out: &mut [f32], v: &[f32], scales: &[f32]) {
        for ((o, x), s) in out.iter_mut().zip(v).zip(scales) {
            *o = x * s;
        }
    }
}

crate::simd::multiversion! {
    /// out = round(x × per_unit), clamped to ±limit, component by component (vectorised where
    /// the CPU rounds in SIMD: a scalar `round` is a libm call, a fifth of an insertion's cost).
    fn round_into(out: &mut [i16], x: &[f32], per_unit: f32, limit: f32) {
        for (o, v) in out.iter_mut().zip(x) {
            *o = (v * per_unit).round().clamp(-limit, limit) as i16;
        }
    }
}

/// The one-byte code of component `x` with unit `scale`.
fn quantize(x: f32, scale: f32) -> i8 {
    (x / scale).round().clamp(-127.0, 127.0) as i8
}

/// The top layer of the node with internal id `id`: geometric with ratio 1/m, drawn from a hash
/// of the id so a rebuild from the same vectors draws the same levels.
fn level_of(id: u64, m: usize) -> usize {
    // splitmix64
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // Uniform in (0, 1].
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = -u.ln() / (m.max(2) as f64).ln();
    (level as usize).min(MAX_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::dot;
    use crate::transform::synthetic::Gaussian;
    use crate::vector::{exact_top_k, normalized, Scored};
    use std::collections::HashSet;

    fn vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut g = Gaussian::new(seed);
        (0..n).map(|_| normalized(&(0..dims).map(|_| g.sample() as f32).collect::<Vec<_>>()).unwrap()).collect()
    }

    fn ids(found: &[Scored]) -> Vec<u64> {
        found.iter().map(|s| s.internal_id).collect()
    }

    fn build(items: &[(Vec<f32>, u64)], m: usize, batches: usize) -> Graph {
        let mut graph = Graph::new(items[0].0.len(), m, 64, items.len());
        for chunk in items.chunks(items.len().div_ceil(batches)) {
            let nodes = graph.append(chunk);
            std::thread::scope(|s| {
                let graph = &graph;
                let (even, odd): (Vec<u32>, Vec<u32>) = nodes.partition(|i| i % 2 == 0);
                s.spawn(move || even.into_iter().for_each(|i| graph.link(i)));
                s.spawn(move || odd.into_iter().for_each(|i| graph.link(i)));
            });
        }
        graph
    }

    #[test]
    fn search_matches_exact_search() {
        let data = vectors(3000, 24, 1);
        let items: Vec<(Vec<f32>, u64)> = data.iter().cloned().zip((0..3000u64).map(|i| i * 7 + 1)).collect();
        let graph = build(&items, 12, 3);
        assert_eq!(graph.len(), 3000);
        let queries = vectors(100, 24, 2);
        let (mut hits, mut hits_wide) = (0, 0);
        for q in &queries {
            let exact = exact_top_k(q, 10, items.iter().map(|(v, id)| (*id, v.as_slice())));
            let found = graph.search(q, 10, 64, None);
            assert_eq!(found.len(), 10);
            // Scores are the exact cosines, best first.
            for s in &found {
                let v = &items[((s.internal_id - 1) / 7) as usize].0;
                assert_eq!(s.score, dot(q, v));
            }
            assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
            hits += ids(&found).iter().filter(|id| ids(&exact).contains(id)).count();
            // A beam as wide as the graph finds the exact answer, but for the rare node no
            // link leads to any more (HNSW's pruning can cut a node's last in-link).
            let wide = graph.search(q, 10, 3000, None);
            hits_wide += ids(&wide).iter().filter(|id| ids(&exact).contains(id)).count();
        }
        let recall = hits as f64 / 1000.0;
        assert!(recall > 0.9, "recall@10 {recall}");
        assert!(hits_wide >= 995, "recall@10 with the widest beam {}", hits_wide as f64 / 1000.0);
    }

    /// The structure HNSW promises: lists within their room, no self or repeated links, every
    /// node reachable from the entry on layer 0, upper layers only on nodes that have them.
    #[test]
    fn links_are_well_formed_and_layer0_is_connected() {
        let data = vectors(2000, 16, 3);
        let items: Vec<(Vec<f32>, u64)> = data.into_iter().zip(0..2000u64).collect();
        let m = 6;
        let graph = build(&items, m, 4);
        let (entry, top) = graph.entry().unwrap();
        assert_eq!(graph.levels[entry as usize] as usize, top);
        assert!(graph.levels.iter().all(|&l| l as usize <= top));
        let mut links = Vec::new();
        for i in 0..graph.len() as u32 {
            for level in 0..=graph.levels[i as usize] as usize {
                links.clear();
                graph.neighbours(i, level, &mut links);
                assert!(links.len() <= if level == 0 { 2 * m } else { m });
                assert!(!links.contains(&i), "node {i} links to itself");
                let mut unique = links.clone();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!(unique.len(), links.len(), "node {i} repeats a link");
                assert!(links.iter().all(|&n| graph.levels[n as usize] as usize >= level));
                assert!(level > 0 || !links.is_empty(), "node {i} has no link");
            }
        }
        let mut seen = vec![false; graph.len()];
        let mut stack = vec![entry];
        seen[entry as usize] = true;
        while let Some(i) = stack.pop() {
            links.clear();
            graph.neighbours(i, 0, &mut links);
            for &n in &links {
                if !std::mem::replace(&mut seen[n as usize], true) {
                    stack.push(n);
                }
            }
        }
        let reached = seen.iter().filter(|s| **s).count();
        assert!(reached as f64 >= 0.995 * graph.len() as f64, "{reached} of {} reachable", graph.len());
    }

    #[test]
    fn levels_are_geometric_and_repeatable() {
        let m = 16;
        let levels: Vec<usize> = (0..200_000u64).map(|id| level_of(id, m)).collect();
        assert_eq!(levels, (0..200_000u64).map(|id| level_of(id, m)).collect::<Vec<_>>());
        // P(level ≥ l) = m^-l.
        for l in 1..=2 {
            let share = levels.iter().filter(|&&x| x >= l).count() as f64 / levels.len() as f64;
            let want = (m as f64).powi(-(l as i32));
            assert!((share / want - 1.0).abs() < 0.1, "level ≥ {l}: {share} vs {want}");
        }
        assert!(levels.iter().all(|&l| l <= MAX_LEVEL));
    }

    #[test]
    fn a_filter_and_later_batches_are_honoured() {
        let data = vectors(1500, 16, 4);
        let items: Vec<(Vec<f32>, u64)> = data.iter().cloned().zip(0..1500u64).collect();
        let mut graph = build(&items[..1000], 8, 1);
        let q = &data[1200];
        for chunk in items[1000..].chunks(100) {
            for i in graph.append(chunk) {
                graph.link(i);
            }
        }
        assert_eq!(graph.search(q, 1, 64, None)[0].internal_id, 1200);
        let odd = |id: u64| id % 2 == 1;
        let filtered = graph.search(q, 5, 64, Some(&odd));
        assert_eq!(filtered.len(), 5);
        assert!(filtered.iter().all(|s| s.internal_id % 2 == 1));
        let exact = exact_top_k(q, 5, items.iter().filter(|(_, id)| id % 2 == 1).map(|(v, id)| (*id, v.as_slice())));
        assert_eq!(ids(&filtered), ids(&exact));
    }

    /// A vector with a component beyond what the first ones had widens that dimension's scale
    /// (its code is not clipped): its cosine estimate stays close to the exact one.
    #[test]
    fn wider_vectors_widen_the_scales() {
        let dims = 8;
        let small: Vec<(Vec<f32>, u64)> = (0..50u64)
            .map(|i| {
                (
                    normalized(&(0..dims).map(|j| 1.0 + ((i + j as u64) % 5) as f32 * 0.1).collect::<Vec<_>>())
                        .unwrap(),
                    i,
                )
            })
            .collect();
        let mut graph = Graph::new(dims, 4, 16, 100);
        graph.append(&small);
        let before = graph.scales[0];
        let spike = normalized(&[10.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]).unwrap();
        let node = graph.append(&[(spike.clone(), 99)]).start;
        assert!(graph.scales[0] > before);
        // Every code still matches its vector within half a unit.
        for i in 0..graph.len() as u32 {
            for (j, (&c, &x)) in graph.code(i).iter().zip(graph.vector(i)).enumerate() {
                assert!((f32::from(c) * graph.scales[j] - x).abs() <= graph.scales[j] * 0.5 + 1e-6, "node {i} dim {j}");
            }
        }
        let estimate = -graph.distance(&graph.query_code(&spike), node);
        assert!((estimate - 1.0).abs() < 0.02, "{estimate}");
    }

    /// The integer estimate equals Σ v_j · scale_j · code_j computed in f64 from the stored codes,
    /// to the query's rounding (half a unit a component); zero and non-finite queries estimate 0.
    #[test]
    fn code_estimates_equal_the_f64_sum_over_the_codes() {
        for dims in [8usize, 384, 1000] {
            let data = vectors(40, dims, 5);
            let items: Vec<(Vec<f32>, u64)> = data.iter().cloned().zip(0u64..).collect();
            let mut graph = Graph::new(dims, 4, 16, 40);
            graph.append(&items);
            for query in vectors(5, dims, 6) {
                let q = graph.query_code(&query);
                let largest =
                    query.iter().zip(&graph.scales).map(|(x, s)| f64::from((x * s).abs())).fold(0.0, f64::max);
                for i in 0..graph.len() as u32 {
                    let exact: f64 = query
                        .iter()
                        .zip(&graph.scales)
                        .zip(graph.code(i))
                        .map(|((&x, &s), &c)| f64::from(x * s) * f64::from(c))
                        .sum();
                    let estimate = -f64::from(graph.distance(&q, i));
                    // Each rounded component is off by at most half a unit (largest / limit).
                    let bound = largest / 16_000.0 * 0.5 * 127.0 * dims as f64 + 1e-6;
                    assert!((estimate - exact).abs() <= bound, "dims {dims}, node {i}: {estimate} vs {exact}");
                }
            }
            for bad in [vec![0f32; dims], vec![f32::NAN; dims]] {
                assert_eq!(graph.distance(&graph.query_code(&bad), 0), 0.0);
            }
        }
    }

    /// Searches running while batches are linked see a consistent graph (no panic, every result
    /// a real node with its exact score) and find the old points as before.
    #[test]
    fn searches_during_linking_stay_correct() {
        let data = vectors(4000, 16, 5);
        let items: Vec<(Vec<f32>, u64)> = data.iter().cloned().zip(0..4000u64).collect();
        let lock = std::sync::RwLock::new(build(&items[..1000], 8, 1));
        let nodes = lock.write().unwrap().append(&items[1000..]);
        let graph = lock.read().unwrap();
        let found_itself = std::thread::scope(|s| {
            let g = &*graph;
            s.spawn(move || nodes.for_each(|i| g.link(i)));
            let mut found_itself = 0;
            for (n, q) in data[..300].iter().enumerate() {
                let found = g.search(q, 5, 32, None);
                assert_eq!(found.len(), 5);
                for hit in &found {
                    assert_eq!(hit.score, dot(q, &data[hit.internal_id as usize]));
                }
                found_itself += usize::from(found[0].internal_id == n as u64);
            }
            found_itself
        });
        // Each query is a stored point: it is its own nearest neighbour.
        assert!(found_itself >= 290, "{found_itself} of 300 stored points found themselves");
    }

    /// A vector inserted again and again (a document upserted unchanged: one live copy among
    /// tombstoned ones) stays findable by its latest copy after many later points.
    #[test]
    fn the_latest_copy_of_a_repeated_vector_stays_reachable() {
        let (dims, m) = (128, 24);
        let singles = vectors(6000, dims, 11);
        let repeated = vectors(10, dims, 12);
        let mut graph = Graph::new(dims, m, 100, 7000);
        let (mut next, mut copies, mut latest) = (0u64, HashSet::new(), vec![0u64; repeated.len()]);
        // Batches of three points as an ingest loop writes them; in the first 300, every other
        // batch brings one of the repeated vectors again.
        for (b, chunk) in singles.chunks(3).enumerate() {
            let mut batch: Vec<(Vec<f32>, u64)> = Vec::new();
            for v in chunk {
                batch.push((v.clone(), next));
                next += 1;
            }
            if b % 2 == 0 && b < 300 {
                let r = (b / 2) % repeated.len();
                batch.push((repeated[r].clone(), next));
                copies.insert(next);
                latest[r] = next;
                next += 1;
            }
            for i in graph.append(&batch) {
                graph.link(i);
            }
        }
        let live: HashSet<u64> = latest.iter().copied().collect();
        let not_tombstoned = |id: u64| !copies.contains(&id) || live.contains(&id);
        for (r, v) in repeated.iter().enumerate() {
            let found = graph.search(v, 5, 48, Some(&not_tombstoned));
            assert_eq!(found[0].internal_id, latest[r], "repeated vector {r}");
        }
    }
}
