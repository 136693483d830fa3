//! Building the graph: linking an appended node into every layer it has, the back-links from
//! its neighbours, and HNSW's neighbour-selection heuristic that keeps lists diverse.
//!
//! Invariants: a node's lists are rewritten only under that node's lock, one lock held at a
//! time; a list never holds more than [`Graph::cap`] links (2m on layer 0, m above); a new node's
//! own lists are all set before any node links back to it, so a search that reaches it on some
//! layer finds its links on every lower layer; links added by other threads meanwhile are kept.

use std::sync::atomic::Ordering as Mem;

use super::search::Candidate;
use super::{Graph, QueryCode};

impl Graph {
    /// Links node `i` (appended, not yet linked) into the graph: on each of its layers, its
    /// `m` nearest diverse neighbours among `ef_construction` candidates, and back.
    pub fn link(&self, i: u32) {
        let Some((entry, top_level)) = self.entry() else { return };
        if entry == i {
            return;
        }
        let level = self.levels[i as usize] as usize;
        let q = self.query_code(self.vector(i));
        let (mut current, mut best) = (entry, self.distance(&q, entry));
        let mut links = Vec::with_capacity(2 * self.m);
        for l in (level + 1..=top_level).rev() {
            self.greedy(&q, &mut current, &mut best, l, &mut links);
        }
        let mut visited = self.take_visited();
        // Node i's own lists are all set before any node links back to it, so a search that
        // reaches i on some level finds its links on every lower level too.
        let mut backlinks: Vec<(usize, Vec<u32>)> = Vec::new();
        for l in (0..=level.min(top_level)).rev() {
            let mut found =
                self.search_layer(&q, Candidate(best, current), self.ef_construction, l, None, &mut visited);
            found.retain(|c| c.1 != i);
            let Some(&nearest) = found.first() else { continue };
            let chosen = self.diverse(&found, self.m);
            {
                // Other threads linking at the same time may already have added links to `i`
                // (add_link); they are kept, or one of them would become unreachable.
                let _guard = self.lock(i);
                let mut links = Vec::new();
                self.neighbours(i, l, &mut links);
                let mut merged = chosen.clone();
                merged.extend(links.into_iter().filter(|n| !chosen.contains(n)));
                if merged.len() > self.cap(l) {
                    merged = self.prune(i, &merged, l);
                }
                self.set_neighbours(i, l, &merged);
            }
            backlinks.push((l, chosen));
            (best, current) = (nearest.0, nearest.1);
        }
        self.give_back(visited);
        for (l, chosen) in backlinks {
            for n in chosen {
                self.add_link(n, i, l);
            }
        }
        if level > top_level {
            let _guard = self.entry_lock.lock().unwrap_or_else(|e| e.into_inner());
            if self.entry().is_none_or(|(_, top)| level > top) {
                self.top.store(u64::from(i) | (level as u64) << 32, Mem::Release);
            }
        }
    }

    /// Adds the link `from → to` on `level`; a full list keeps its most diverse links.
    fn add_link(&self, from: u32, to: u32, level: usize) {
        let _guard = self.lock(from);
        let mut links = Vec::with_capacity(self.cap(level) + 1);
        self.neighbours(from, level, &mut links);
        if links.contains(&to) {
            return;
        }
        links.push(to);
        if links.len() > self.cap(level) {
            links = self.prune(from, &links, level);
        }
        self.set_neighbours(from, level, &links);
    }

    /// Most links a node keeps on `level`: 2m on the ground layer, m above.
    fn cap(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// The most diverse [`Graph::cap`] of node `i`'s candidate `links` on `level`.
    fn prune(&self, i: u32, links: &[u32], level: usize) -> Vec<u32> {
        let q = self.query_code(self.vector(i));
        let mut candidates: Vec<Candidate> = links.iter().map(|&n| Candidate(self.distance(&q, n), n)).collect();
        candidates.sort();
        self.diverse(&candidates, self.cap(level))
    }

    /// HNSW's neighbour heuristic: walking `candidates` nearest first, keeps one unless a kept
    /// node is nearer to it than the base is, up to `max` nodes.
    fn diverse(&self, candidates: &[Candidate], max: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(max);
        let (mut q, mut buffer) = (QueryCode::default(), Vec::new());
        for &Candidate(to_base, c) in candidates {
            if kept.len() == max {
                break;
            }
            q.set(self.vector(c), &self.scales, &mut buffer);
            if kept.iter().all(|&r| self.distance(&q, r) > to_base) {
                kept.push(c);
            }
        }
        kept
    }
}
