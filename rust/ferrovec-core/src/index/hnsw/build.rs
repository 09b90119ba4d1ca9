//! Build: nodes get random levels up front; insertions run in parallel (rayon), each node's
//! link lists behind its own mutex, with hnswlib's neighbour-selection heuristic applied both
//! to the new node's links and, when a neighbour's list is full, to that neighbour's reverse
//! links. The result is laid out flat (`Graph`).

use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

use super::search::{greedy, search_level, Distances};
use super::space::{BuildSpace, FromNode};
use super::{Graph, Item, Links, Words, MAX_LEVEL, NONE, PARAM_WORDS};
use crate::config::HnswConfig;

/// Asked between insertions: true ends the build early.
pub type Stop<'a> = dyn Fn() -> bool + Sync + 'a;

/// hnswlib's neighbour-selection heuristic: walk candidates nearest first and keep one only if
/// it is closer to the base than to every neighbour kept so far.
fn select_heuristic<S: BuildSpace>(space: &S, sorted: &[Item], m: usize) -> Vec<Item> {
    if sorted.len() <= m {
        return sorted.to_vec();
    }
    let mut kept: Vec<Item> = Vec::with_capacity(m);
    for &c in sorted {
        if kept.len() >= m {
            break;
        }
        if kept.iter().all(|k| space.between(c.id, k.id) >= c.d) {
            kept.push(c);
        }
    }
    kept
}

struct Builder<'a, S> {
    space: &'a S,
    m: usize,
    m0: usize,
    ef_construct: usize,
    levels: Vec<u8>,
    /// Level-0 links of every node in one flat array, `1 + m0` slots per node (count, ids), as in
    /// the final layout; atomics so that a node's slots can be read and written under its lock
    /// without `unsafe` (relaxed atomic loads and stores are plain moves on x86 and ARM).
    links0: Vec<AtomicU32>,
    /// Per node: its lock, and its links on levels 1 and up.
    upper: Vec<Mutex<Vec<Vec<u32>>>>,
    /// (entry point, its level); entry is NONE while the graph is empty.
    top: RwLock<(u32, usize)>,
    /// Held by an insertion that will raise the top level, for its whole duration.
    raising: Mutex<()>,
}

impl<S: BuildSpace> Links for Builder<'_, S> {
    #[inline]
    fn for_each_neighbor(&self, node: u32, level: usize, mut f: impl FnMut(u32)) {
        let guard = self.upper[node as usize].lock();
        if level == 0 {
            let base = node as usize * (1 + self.m0);
            let count = (self.links0[base].load(AtomicOrdering::Relaxed) as usize).min(self.m0);
            for slot in &self.links0[base + 1..base + 1 + count] {
                f(slot.load(AtomicOrdering::Relaxed));
            }
        } else if let Some(l) = guard.get(level) {
            l.iter().copied().for_each(f);
        }
    }
}

impl<S> Builder<'_, S> {
    /// Replace `node`'s links at `level`. The caller holds the node's lock.
    fn set_links(
        &self,
        node: u32,
        level: usize,
        upper: &mut [Vec<u32>],
        ids: impl Iterator<Item = u32>,
    ) {
        if level == 0 {
            let base = node as usize * (1 + self.m0);
            let mut count = 0;
            for id in ids.take(self.m0) {
                self.links0[base + 1 + count].store(id, AtomicOrdering::Relaxed);
                count += 1;
            }
            self.links0[base].store(count as u32, AtomicOrdering::Relaxed);
        } else if let Some(l) = upper.get_mut(level) {
            l.clear();
            l.extend(ids);
        }
    }

    /// `node`'s links at `level`, copied. The caller holds the node's lock.
    fn links_of(&self, node: u32, level: usize, upper: &[Vec<u32>]) -> Vec<u32> {
        if level == 0 {
            let base = node as usize * (1 + self.m0);
            let count = (self.links0[base].load(AtomicOrdering::Relaxed) as usize).min(self.m0);
            self.links0[base + 1..base + 1 + count]
                .iter()
                .map(|a| a.load(AtomicOrdering::Relaxed))
                .collect()
        } else {
            upper.get(level).cloned().unwrap_or_default()
        }
    }
}

fn random_levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let mult = 1.0 / (m as f64).ln();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Uniform in (0, 1].
            let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            ((-u.ln() * mult) as usize).min(MAX_LEVEL) as u8
        })
        .collect()
}

impl<'a, S: BuildSpace> Builder<'a, S> {
    fn new(space: &'a S, m: usize, ef_construct: usize, levels: Vec<u8>) -> Self {
        let m0 = m * 2;
        let upper = levels
            .iter()
            .map(|&l| Mutex::new(vec![Vec::new(); l as usize + 1]))
            .collect();
        let links0 = (0..levels.len() * (1 + m0))
            .map(|_| AtomicU32::new(0))
            .collect();
        Builder {
            space,
            m,
            m0,
            ef_construct,
            levels,
            links0,
            upper,
            top: RwLock::new((NONE, 0)),
            raising: Mutex::new(()),
        }
    }

    /// Start from an existing graph; nodes beyond it get fresh random levels.
    fn extend(space: &'a S, base: &Graph, seed: u64) -> Self {
        let n = space.len();
        let mut levels: Vec<u8> = (0..base.n).map(|i| base.level(i as u32) as u8).collect();
        levels.extend(random_levels(n - base.n, base.m, seed));
        let b = Builder::new(space, base.m, base.ef_construct, levels);
        let mut buf = Vec::new();
        for i in 0..base.n {
            let mut upper = b.upper[i].lock();
            for level in 0..upper.len() {
                base.copy_neighbors(i as u32, level, &mut buf);
                b.set_links(i as u32, level, &mut upper, buf.iter().copied());
            }
        }
        *b.top.write() = (base.entry, base.max_level);
        b
    }

    fn insert_all(&self, start: u32, stop: &Stop<'_>) {
        let n = self.space.len() as u32;
        crate::pool::install(|| {
            (start..n).into_par_iter().for_each(|i| {
                if !stop() {
                    self.insert(i);
                }
            })
        });
    }

    fn insert(&self, q: u32) {
        let level = self.levels[q as usize] as usize;
        let raise_guard = self.raising.lock();
        let (entry, max_level) = *self.top.read();
        let _raise_guard = if entry == NONE || level > max_level {
            Some(raise_guard)
        } else {
            drop(raise_guard);
            None
        };
        if entry == NONE {
            *self.top.write() = (q, level);
            return;
        }
        let space = FromNode {
            space: self.space,
            q,
        };
        let mut cur = Item {
            d: space.dist(entry),
            id: entry,
        };
        for l in (level + 1..=max_level).rev() {
            greedy(self, &space, &mut cur, l);
        }
        let mut eps = vec![cur];
        for l in (0..=level.min(max_level)).rev() {
            let found = search_level(self, &space, &eps, self.ef_construct, l, &|_| true, false);
            let chosen = select_heuristic(self.space, &found, self.m);
            self.link_new(q, l, &chosen);
            for c in &chosen {
                self.connect(c.id, q, c.d, l);
            }
            eps = found;
        }
        if level > max_level {
            *self.top.write() = (q, level);
        }
    }

    /// Give the new node `q` its `chosen` links at `level`, keeping the links that concurrent
    /// insertions added to it meanwhile (they reached `q` through a level above). Overwriting
    /// them left those nodes linked to `q` with no way back: clusters of equal vectors split
    /// into parts no search could cross.
    fn link_new(&self, q: u32, level: usize, chosen: &[Item]) {
        let cap = if level == 0 { self.m0 } else { self.m };
        let mut upper = self.upper[q as usize].lock();
        let added = self.links_of(q, level, &upper);
        if added.is_empty() {
            // The common case: nobody reached `q` yet.
            self.set_links(q, level, &mut upper, chosen.iter().map(|c| c.id));
            return;
        }
        let mut links = chosen.to_vec();
        for id in added {
            if !chosen.iter().any(|c| c.id == id) {
                let d = self.space.between(q, id);
                links.push(Item { d, id });
            }
        }
        if links.len() > cap {
            links.sort_unstable();
            links = select_heuristic(self.space, &links, cap);
        }
        self.set_links(q, level, &mut upper, links.iter().map(|c| c.id));
    }

    /// Add `q` to `node`'s links at `level`, pruning with the heuristic when the list is full.
    fn connect(&self, node: u32, q: u32, d: f32, level: usize) {
        let cap = if level == 0 { self.m0 } else { self.m };
        let mut upper = self.upper[node as usize].lock();
        if level >= upper.len() {
            return;
        }
        let list = self.links_of(node, level, &upper);
        if list.contains(&q) {
            return;
        }
        if list.len() < cap {
            self.set_links(node, level, &mut upper, list.into_iter().chain([q]));
            return;
        }
        let mut cands: Vec<Item> = list
            .iter()
            .map(|&x| Item {
                d: self.space.between(node, x),
                id: x,
            })
            .collect();
        cands.push(Item { d, id: q });
        cands.sort_unstable();
        let kept = select_heuristic(self.space, &cands, cap);
        self.set_links(node, level, &mut upper, kept.iter().map(|c| c.id));
    }

    fn finish(self) -> Graph {
        let n = self.space.len();
        let (entry, max_level) = *self.top.read();
        let stride0 = 1 + self.m0;
        let stride = 1 + self.m;
        let upper_blocks: usize = self.levels.iter().map(|&l| l as usize).sum();
        let off_levels = PARAM_WORDS;
        let off_index = off_levels + n.div_ceil(4);
        let off_level0 = off_index + n;
        let off_upper = off_level0 + n * stride0;
        let mut words = vec![0u32; off_upper + upper_blocks * stride];
        let header = [
            self.m as u32,
            self.m0 as u32,
            self.ef_construct as u32,
            max_level as u32,
            entry,
            upper_blocks as u32,
            n as u32,
            0,
        ];
        words[..PARAM_WORDS].copy_from_slice(&header);
        let mut next_block = 0u32;
        for (w, a) in words[off_level0..off_level0 + n * stride0]
            .iter_mut()
            .zip(&self.links0)
        {
            *w = a.load(AtomicOrdering::Relaxed);
        }
        for (i, node) in self.upper.into_iter().enumerate() {
            let node = node.into_inner();
            let level = self.levels[i] as usize;
            words[off_levels + i / 4] |= (level as u32) << (8 * (i % 4));
            if level == 0 {
                words[off_index + i] = NONE;
                continue;
            }
            words[off_index + i] = next_block;
            for (l, links) in node.iter().enumerate().skip(1) {
                let base = off_upper + (next_block as usize + l - 1) * stride;
                words[base] = links.len() as u32;
                words[base + 1..base + 1 + links.len()].copy_from_slice(links);
            }
            next_block += level as u32;
        }
        Graph {
            words: Words::Owned(words),
            n,
            m: self.m,
            m0: self.m0,
            ef_construct: self.ef_construct,
            max_level,
            entry,
            off_levels,
            off_index,
            off_level0,
            off_upper,
            upper_blocks,
        }
    }
}

/// Build a graph over all nodes of `space`, in parallel on the core's thread pool. Once `stop`
/// answers true the remaining insertions return at once (the caller then discards the graph).
pub fn build<S: BuildSpace>(space: &S, params: &HnswConfig, seed: u64, stop: &Stop<'_>) -> Graph {
    let levels = random_levels(space.len(), params.m, seed);
    let b = Builder::new(space, params.m, params.ef_construct, levels);
    b.insert_all(0, stop);
    b.finish()
}

/// A graph over `space` whose first `base.n` nodes are `base`'s: `base`'s links are kept and
/// the new nodes inserted.
pub fn extend<S: BuildSpace>(space: &S, base: &Graph, seed: u64, stop: &Stop<'_>) -> Graph {
    let b = Builder::extend(space, base, seed);
    b.insert_all(base.n as u32, stop);
    b.finish()
}
