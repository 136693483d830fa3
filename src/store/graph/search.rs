//! Searching the graph: the greedy descent through the upper layers, the beam search on a layer
//! (shared with linking, [`super::build`]), the public k-nearest search with exact re-scoring,
//! and the exact scan among a given set of ids.
//!
//! Invariants: a search takes `&self` and no node lock, so it runs alongside linking; it only
//! follows links it reads from slots, every one a node number below `len()`, so it stays in
//! bounds whatever a concurrent rewrite leaves; the scores it returns are exact cosines from the
//! stored vectors, not the one-byte estimates that steered the walk.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Graph, QueryCode};
use crate::simd::dot;
use crate::vector::Scored;

/// A distance-ordered candidate: `−cosine` (estimated from codes) and the node number.
///
/// Among equal distances the newer node comes first. Copies of one vector (a document upserted
/// again unchanged leaves one live copy among tombstoned ones) are at exactly equal distances, and
/// the neighbour heuristic keeps the first of them and drops the rest: with the older first, every
/// list kept an old copy, and the live one, once later points arrived, was linked from nowhere.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) struct Candidate(pub f32, pub u32);

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// Nodes seen in one search: `stamps[i] == generation` means visited.
pub(super) struct Visited {
    generation: u32,
    stamps: Vec<u32>,
}

impl Visited {
    /// Starts a new search over `n` nodes (clears all marks in O(1), in O(n) once every 2³² searches).
    fn reset(&mut self, n: usize) {
        if self.stamps.len() < n {
            self.stamps.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `i`; true if it was not marked yet.
    fn insert(&mut self, i: u32) -> bool {
        let s = &mut self.stamps[i as usize];
        let fresh = *s != self.generation;
        *s = self.generation;
        fresh
    }
}

impl Graph {
    /// The exact `k` best by cosine among the nodes whose internal id is in `allowed` (sorted),
    /// from the vectors held here; and how many of `allowed` the graph holds.
    pub fn exact_among(&self, query: &[f32], k: usize, allowed: &[u64]) -> (Vec<Scored>, usize) {
        let mut held = 0;
        let chosen = (0..self.ids.len() as u32).filter(|&i| {
            let keep = allowed.binary_search(&self.ids[i as usize]).is_ok();
            held += usize::from(keep);
            keep
        });
        let best = crate::vector::exact_top_k(query, k, chosen.map(|i| (self.ids[i as usize], self.vector(i))));
        (best, held)
    }

    pub(super) fn take_visited(&self) -> Visited {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or(Visited { generation: 0, stamps: Vec::new() })
    }

    pub(super) fn give_back(&self, visited: Visited) {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(visited);
    }

    /// Moves from `current` to ever nearer neighbours on `level` until none is nearer.
    pub(super) fn greedy(&self, q: &QueryCode, current: &mut u32, best: &mut f32, level: usize, links: &mut Vec<u32>) {
        loop {
            links.clear();
            self.neighbours(*current, level, links);
            let mut moved = false;
            for &n in links.iter() {
                let d = self.distance(q, n);
                if d < *best {
                    (*best, *current, moved) = (d, n, true);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Beam search on `level` from `start`: the `ef` nearest allowed nodes found, nearest first.
    pub(super) fn search_layer(
        &self,
        q: &QueryCode,
        start: Candidate,
        ef: usize,
        level: usize,
        allowed: Option<&dyn Fn(u64) -> bool>,
        visited: &mut Visited,
    ) -> Vec<Candidate> {
        let accepts = |i: u32| allowed.is_none_or(|f| f(self.ids[i as usize]));
        visited.reset(self.len());
        // Min-heap of nodes to expand, max-heap of the best ef allowed nodes.
        let mut frontier = BinaryHeap::with_capacity(ef * 4);
        let mut results: BinaryHeap<Candidate> = BinaryHeap::with_capacity(ef + 1);
        visited.insert(start.1);
        frontier.push(std::cmp::Reverse(start));
        if accepts(start.1) {
            results.push(start);
        }
        let mut links = Vec::with_capacity(2 * self.m);
        while let Some(std::cmp::Reverse(Candidate(d, node))) = frontier.pop() {
            if results.len() >= ef && results.peek().is_some_and(|worst| d > worst.0) {
                break;
            }
            links.clear();
            self.neighbours(node, level, &mut links);
            links.retain(|&n| visited.insert(n));
            for &n in &links {
                prefetch(self.code(n));
            }
            for &n in &links {
                let dn = self.distance(q, n);
                let bound = results.peek().map_or(f32::INFINITY, |worst| worst.0);
                if results.len() < ef || dn < bound {
                    frontier.push(std::cmp::Reverse(Candidate(dn, n)));
                    if accepts(n) {
                        results.push(Candidate(dn, n));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        results.into_sorted_vec()
    }

    /// The `k` nearest neighbours of a normalised query among ids `allowed` accepts, best first,
    /// exploring with a beam of width `ef` (≥ k). Scores are exact cosines.
    pub fn search(&self, query: &[f32], k: usize, ef: usize, allowed: Option<&dyn Fn(u64) -> bool>) -> Vec<Scored> {
        let Some((entry, top_level)) = self.entry() else {
            return Vec::new();
        };
        if k == 0 || query.len() != self.dims {
            return Vec::new();
        }
        let ef = ef.max(k);
        let q = self.query_code(query);
        let (mut current, mut best) = (entry, self.distance(&q, entry));
        let mut links = Vec::with_capacity(2 * self.m);
        for level in (1..=top_level).rev() {
            self.greedy(&q, &mut current, &mut best, level, &mut links);
        }
        let mut visited = self.take_visited();
        let found = self.search_layer(&q, Candidate(best, current), ef, 0, allowed, &mut visited);
        self.give_back(visited);
        // Exact re-scoring of every candidate found: on data whose similarities are close (random
        // vectors), the one-byte scores alone misorder the true top k beyond any short prefix.
        let mut scored: Vec<Scored> = found
            .into_iter()
            .map(|Candidate(_, i)| Scored { internal_id: self.ids[i as usize], score: dot(query, self.vector(i)) })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.internal_id.cmp(&b.internal_id)));
        scored.truncate(k);
        scored
    }
}

/// Asks the CPU to start loading a code's cache lines.
#[inline(always)]
fn prefetch(v: &[i8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in v.chunks(64) {
            // SAFETY: prefetching is a hint: it reads nothing and never faults, whatever the
            // address (and this one lies in `v`).
            unsafe { _mm_prefetch(line.as_ptr(), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}
