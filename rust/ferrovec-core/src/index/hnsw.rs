//! Our HNSW graph, in hnswlib's layout: each node's level-0 neighbours are a fixed-size `u32`
//! block (`count, ids...`, `2·m` slots) in one flat array; nodes above level 0 own consecutive
//! `m`-slot blocks in a second array. The flat form is what is written to disk and mapped back.
//!
//! Build: nodes get random levels up front; insertions run in parallel (rayon), each node's link
//! lists behind its own mutex, with hnswlib's neighbour-selection heuristic applied both to the
//! new node's links and, when a neighbour's list is full, to that neighbour's reverse links.
//! Search: greedy descent through the upper levels, then a best-first search of level 0 with a
//! reusable epoch-tagged visited array per thread. Nodes the caller rejects (deleted, filtered
//! out) still route the search but are never returned.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering as AtomicOrdering};

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

use super::quant::{self, Codes};
use crate::distance;
use crate::error::{Error, Result};
use crate::io::Mapped;
use crate::types::Distance;

/// Highest level a node may get (hnswlib caps levels the same way in practice).
const MAX_LEVEL: usize = 16;
const NONE: u32 = u32::MAX;
/// Words of the graph file's parameter block.
const PARAM_WORDS: usize = 8;
/// A search on int8 codes rescores this many candidates per result wanted on f32 ...
const RESCORE_PER_K: usize = 4;
/// ... and at least this many.
const RESCORE_MIN: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    pub m: usize,
    pub ef_construct: usize,
}

impl HnswParams {
    pub fn validate(&self) -> Result<()> {
        if !(2..=256).contains(&self.m) {
            return Err(Error::invalid(format!(
                "hnsw m must be between 2 and 256, got {}",
                self.m
            )));
        }
        if !(1..=4096).contains(&self.ef_construct) {
            return Err(Error::invalid(format!(
                "hnsw ef_construct must be between 1 and 4096, got {}",
                self.ef_construct
            )));
        }
        Ok(())
    }
}

/// Graph distance: lower is closer. For cosine (vectors stored unit-length) and dot it is the
/// negated dot product, so the search key (higher is better) is always `-dist`.
#[inline]
pub fn dist(metric: Distance, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Distance::Cosine | Distance::Dot => -distance::dot_fast(a, b),
        Distance::Euclid => distance::l2sq(a, b),
        Distance::Manhattan => distance::l1(a, b),
    }
}

/// A (distance, node) pair ordered by distance, then node.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub d: f32,
    pub id: u32,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    /// Distances are finite (inputs are checked). A NaN from a damaged file orders as the worst
    /// distance: the order must stay total (a sort panics on one that is not) and never rank
    /// such a point first.
    #[inline]
    fn cmp(&self, o: &Self) -> Ordering {
        // The fast comparison first; only a NaN takes the second branch.
        let by_distance = match self.d.partial_cmp(&o.d) {
            Some(ord) => ord,
            None => self.d.is_nan().cmp(&o.d.is_nan()),
        };
        by_distance.then(self.id.cmp(&o.id))
    }
}

/// Per-thread visited marks: a node is visited in this search iff its mark equals the epoch, so
/// starting a search costs nothing but an increment.
struct Visited {
    /// 16-bit marks, as hnswlib: half the cache footprint; cleared every 65,535 searches.
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn start(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Mark `i`; false if it was already marked.
    #[inline]
    fn insert(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), epoch: 0 }) };
}

/// Read access to link lists, during the build (locked) or afterwards (flat).
trait Links: Sync {
    /// Call `f` on each neighbour of `node` at `level` (under the node's lock while building).
    fn for_each_neighbor(&self, node: u32, level: usize, f: impl FnMut(u32));

    fn copy_neighbors(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        self.for_each_neighbor(node, level, |nb| out.push(nb));
    }

    /// Start loading `node`'s level-0 link list (a hint; default: nothing).
    fn prefetch_links(&self, _node: u32) {}
}

/// A prefetch hint for the cache line holding `p`.
#[inline]
fn prefetch_ptr<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it reads
        // nothing architecturally and never faults. `p` is a valid reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Vectors of the graph's nodes: node `i` is `dim` values at `offset` in row `i` of a
/// row-major slice of `stride` values per row (a point's rows hold all its named vectors).
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    data: &'a [f32],
    dim: usize,
    stride: usize,
    offset: usize,
}

impl<'a> Rows<'a> {
    /// Rows of exactly `dim` values.
    pub fn dense(data: &'a [f32], dim: usize) -> Self {
        Rows {
            data,
            dim,
            stride: dim,
            offset: 0,
        }
    }

    /// One vector (`space`) of rows holding all of a point's vectors.
    pub fn of(data: &'a [f32], space: crate::types::Space) -> Self {
        Rows {
            data,
            dim: space.dim,
            stride: space.stride,
            offset: space.offset,
        }
    }

    /// The first `n` rows.
    pub fn first(self, n: usize) -> Self {
        Rows {
            data: &self.data[..(n * self.stride).min(self.data.len())],
            ..self
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Ask the CPU to start loading row `i` (its first cache lines) before it is needed.
    #[inline]
    fn prefetch(&self, i: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let start = i as usize * self.stride + self.offset;
            if let Some(row) = self.data.get(start..start + self.dim) {
                for line in row.chunks(16).take(4) {
                    // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint:
                    // it reads nothing architecturally and never faults. The pointer is in bounds
                    // anyway (a line of `row`). Covered by every search test.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    #[inline]
    pub fn get(&self, i: u32) -> &'a [f32] {
        let s = i as usize * self.stride + self.offset;
        &self.data[s..s + self.dim]
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.stride
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Distances from one query to the graph's nodes.
trait Space {
    /// Nodes addressable (ids at or above are skipped).
    fn nodes(&self) -> usize;
    /// Start loading node `i`'s data.
    fn prefetch(&self, i: u32);
    /// Distance from the query to node `i`: lower is closer.
    fn dist(&self, i: u32) -> f32;
}

/// Exact distances on the f32 rows.
struct Exact<'a> {
    rows: Rows<'a>,
    metric: Distance,
    q: &'a [f32],
}

impl Space for Exact<'_> {
    fn nodes(&self) -> usize {
        self.rows.len()
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        self.rows.prefetch(i);
    }

    #[inline]
    fn dist(&self, i: u32) -> f32 {
        dist(self.metric, self.q, self.rows.get(i))
    }
}

/// Approximate (negated) dot products on int8 codes.
struct Coded<'a> {
    codes: Codes<'a>,
    q: Vec<i8>,
    nodes: usize,
}

impl Space for Coded<'_> {
    fn nodes(&self) -> usize {
        self.nodes
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        self.codes.prefetch(i);
    }

    #[inline]
    fn dist(&self, i: u32) -> f32 {
        -(quant::dot_i8(&self.q, self.codes.get(i)) as f32)
    }
}

/// Best-first search of one level. `accept` says which nodes may be returned; rejected nodes
/// still route. Returns up to `ef` accepted nodes, nearest first.
#[allow(clippy::too_many_arguments)]
fn search_level<L: Links, S: Space, F: Fn(u32) -> bool>(
    links: &L,
    space: &S,
    entry: &[Item],
    ef: usize,
    level: usize,
    accept: &F,
    rejecting: bool,
) -> Vec<Item> {
    let n = space.nodes();
    VISITED.with(|v| {
        let mut visited = v.borrow_mut();
        visited.start(n);
        let mut cand: BinaryHeap<Reverse<Item>> = BinaryHeap::new();
        let mut top: BinaryHeap<Item> = BinaryHeap::with_capacity(ef + 1);
        for &e in entry {
            if (e.id as usize) < n && visited.insert(e.id) {
                cand.push(Reverse(e));
                if !rejecting || accept(e.id) {
                    top.push(e);
                    if top.len() > ef {
                        top.pop();
                    }
                }
            }
        }
        let mut bound = if top.len() >= ef {
            top.peek().map_or(f32::INFINITY, |t| t.d)
        } else {
            f32::INFINITY
        };
        let mut fresh = Vec::with_capacity(64);
        while let Some(Reverse(c)) = cand.pop() {
            if c.d > bound {
                break;
            }
            // The next candidate's links are the next cache miss: start loading them now.
            if let Some(Reverse(next)) = cand.peek() {
                links.prefetch_links(next.id);
            }
            // Filter first and prefetch every unvisited neighbour: their vectors are the cache
            // misses this loop waits on.
            fresh.clear();
            links.for_each_neighbor(c.id, level, |nb| {
                if (nb as usize) < n && visited.insert(nb) {
                    space.prefetch(nb);
                    fresh.push(nb);
                }
            });
            for &nb in &fresh {
                let d = space.dist(nb);
                // `bound` is the worst kept distance once `top` is full, infinity before.
                if d < bound {
                    cand.push(Reverse(Item { d, id: nb }));
                    if !rejecting || accept(nb) {
                        top.push(Item { d, id: nb });
                        if top.len() > ef {
                            top.pop();
                        }
                    }
                    if top.len() >= ef {
                        bound = top.peek().map_or(f32::INFINITY, |t| t.d);
                    }
                }
            }
        }
        top.into_sorted_vec()
    })
}

/// Greedy walk on one upper level towards `q`.
fn greedy<L: Links, S: Space>(links: &L, space: &S, cur: &mut Item, level: usize) {
    let n = space.nodes();
    let mut buf = Vec::with_capacity(64);
    loop {
        let mut moved = false;
        links.copy_neighbors(cur.id, level, &mut buf);
        for &nb in &buf {
            if nb as usize >= n {
                continue;
            }
            let d = space.dist(nb);
            if d < cur.d {
                *cur = Item { d, id: nb };
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

/// hnswlib's neighbour-selection heuristic: walk candidates nearest first and keep one only if
/// it is closer to the base than to every neighbour kept so far.
fn select_heuristic(rows: Rows<'_>, metric: Distance, sorted: &[Item], m: usize) -> Vec<Item> {
    if sorted.len() <= m {
        return sorted.to_vec();
    }
    let mut kept: Vec<Item> = Vec::with_capacity(m);
    for &c in sorted {
        if kept.len() >= m {
            break;
        }
        let cv = rows.get(c.id);
        if kept.iter().all(|k| dist(metric, cv, rows.get(k.id)) >= c.d) {
            kept.push(c);
        }
    }
    kept
}

// ----- build ---------------------------------------------------------------------------------

struct Builder<'a> {
    rows: Rows<'a>,
    metric: Distance,
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

impl Links for Builder<'_> {
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

impl Builder<'_> {
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

impl<'a> Builder<'a> {
    fn new(rows: Rows<'a>, metric: Distance, params: HnswParams, levels: Vec<u8>) -> Self {
        let m0 = params.m * 2;
        let upper = levels
            .iter()
            .map(|&l| Mutex::new(vec![Vec::new(); l as usize + 1]))
            .collect();
        let links0 = (0..levels.len() * (1 + m0))
            .map(|_| AtomicU32::new(0))
            .collect();
        Builder {
            rows,
            metric,
            m: params.m,
            m0,
            ef_construct: params.ef_construct,
            levels,
            links0,
            upper,
            top: RwLock::new((NONE, 0)),
            raising: Mutex::new(()),
        }
    }

    /// Start from an existing graph; nodes beyond it get fresh random levels.
    fn extend(rows: Rows<'a>, metric: Distance, base: &Graph, seed: u64) -> Self {
        let n = rows.len();
        let params = HnswParams {
            m: base.m,
            ef_construct: base.ef_construct,
        };
        let mut levels: Vec<u8> = (0..base.n).map(|i| base.level(i as u32) as u8).collect();
        levels.extend(random_levels(n - base.n, base.m, seed));
        let b = Builder::new(rows, metric, params, levels);
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

    fn insert_all(&self, start: u32, cancel: &AtomicBool) {
        let n = self.rows.len() as u32;
        crate::pool::install(|| {
            (start..n).into_par_iter().for_each(|i| {
                if !cancel.load(AtomicOrdering::Relaxed) {
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
        let space = Exact {
            rows: self.rows,
            metric: self.metric,
            q: self.rows.get(q),
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
            let chosen = select_heuristic(self.rows, self.metric, &found, self.m);
            {
                let mut upper = self.upper[q as usize].lock();
                self.set_links(q, l, &mut upper, chosen.iter().map(|c| c.id));
            }
            for c in &chosen {
                self.connect(c.id, q, c.d, l);
            }
            eps = found;
        }
        if level > max_level {
            *self.top.write() = (q, level);
        }
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
        let nv = self.rows.get(node);
        let mut cands: Vec<Item> = list
            .iter()
            .map(|&x| Item {
                d: dist(self.metric, nv, self.rows.get(x)),
                id: x,
            })
            .collect();
        cands.push(Item { d, id: q });
        cands.sort_unstable();
        let kept = select_heuristic(self.rows, self.metric, &cands, cap);
        self.set_links(node, level, &mut upper, kept.iter().map(|c| c.id));
    }

    fn finish(self) -> Graph {
        let n = self.rows.len();
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

/// Build a graph over all rows, in parallel on the core's thread pool. Setting `cancel` makes
/// the remaining insertions return at once (the caller then discards the graph).
pub fn build(
    rows: Rows<'_>,
    metric: Distance,
    params: HnswParams,
    seed: u64,
    cancel: &AtomicBool,
) -> Graph {
    let levels = random_levels(rows.len(), params.m, seed);
    let b = Builder::new(rows, metric, params, levels);
    b.insert_all(0, cancel);
    b.finish()
}

/// A graph over `rows` whose first `base.n` rows are `base`'s nodes: `base`'s links are kept
/// and the new rows inserted.
pub fn extend(
    rows: Rows<'_>,
    metric: Distance,
    base: &Graph,
    seed: u64,
    cancel: &AtomicBool,
) -> Graph {
    let b = Builder::extend(rows, metric, base, seed);
    b.insert_all(base.n as u32, cancel);
    b.finish()
}

// ----- the flat graph ------------------------------------------------------------------------

enum Words {
    Owned(Vec<u32>),
    Mapped(Mapped, usize),
}

pub struct Graph {
    words: Words,
    pub n: usize,
    pub m: usize,
    m0: usize,
    pub ef_construct: usize,
    max_level: usize,
    entry: u32,
    off_levels: usize,
    off_index: usize,
    off_level0: usize,
    off_upper: usize,
    upper_blocks: usize,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("n", &self.n)
            .field("m", &self.m)
            .field("max_level", &self.max_level)
            .finish_non_exhaustive()
    }
}

impl Links for Graph {
    #[inline]
    fn for_each_neighbor(&self, node: u32, level: usize, f: impl FnMut(u32)) {
        self.neighbors(node, level).iter().copied().for_each(f);
    }

    #[inline]
    fn prefetch_links(&self, node: u32) {
        if let Some(w) = self
            .words()
            .get(self.off_level0 + node as usize * (1 + self.m0))
        {
            prefetch_ptr(w);
        }
    }
}

impl Graph {
    fn words(&self) -> &[u32] {
        match &self.words {
            Words::Owned(v) => v,
            // Checked in `from_mapped`: aligned and long enough.
            Words::Mapped(m, start) => bytemuck::try_cast_slice(&m[*start..]).unwrap_or(&[]),
        }
    }

    /// The body as little-endian bytes, for writing to a file.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self.words())
    }

    fn level(&self, node: u32) -> usize {
        let w = self.words()[self.off_levels + node as usize / 4];
        ((w >> (8 * (node as usize % 4))) & 0xff) as usize
    }

    /// Links of `node` at `level` (empty if the node has no such level). Counts are clamped to
    /// the block size, so a damaged file cannot make us read outside its block.
    #[inline]
    fn neighbors(&self, node: u32, level: usize) -> &[u32] {
        let w = self.words();
        let (base, cap) = if level == 0 {
            (self.off_level0 + node as usize * (1 + self.m0), self.m0)
        } else {
            let first = w[self.off_index + node as usize];
            if first == NONE || level > self.level(node) {
                return &[];
            }
            let block = first as usize + level - 1;
            if block >= self.upper_blocks {
                return &[];
            }
            (self.off_upper + block * (1 + self.m), self.m)
        };
        let count = (w[base] as usize).min(cap);
        &w[base + 1..base + 1 + count]
    }

    /// Open a graph from a file body (after the common header), checking its shape.
    pub fn from_mapped(
        map: Mapped,
        start: usize,
        n: usize,
        path: &std::path::Path,
    ) -> Result<Graph> {
        let corrupt = |d: &str| Error::corrupt(path, format!("graph file: {d}"));
        let body = map.get(start..).ok_or_else(|| corrupt("too short"))?;
        let words: &[u32] = bytemuck::try_cast_slice(body).map_err(|_| corrupt("misaligned"))?;
        if words.len() < PARAM_WORDS {
            return Err(corrupt("no parameter block"));
        }
        let (m, m0, ef_construct, max_level, entry, upper_blocks, nn) = (
            words[0] as usize,
            words[1] as usize,
            words[2] as usize,
            words[3] as usize,
            words[4],
            words[5] as usize,
            words[6] as usize,
        );
        if nn != n || !(2..=256).contains(&m) || m0 < m || m0 > 512 || max_level > MAX_LEVEL {
            return Err(corrupt("parameters out of range"));
        }
        if (n > 0 && entry as usize >= n) || (n == 0 && entry != NONE) {
            return Err(corrupt("entry point out of range"));
        }
        let off_levels = PARAM_WORDS;
        let off_index = off_levels + n.div_ceil(4);
        let off_level0 = off_index + n;
        let off_upper = off_level0 + n * (1 + m0);
        let total = off_upper + upper_blocks * (1 + m);
        if words.len() != total {
            return Err(corrupt(&format!("{} words, expected {total}", words.len())));
        }
        Ok(Graph {
            words: Words::Mapped(map, start),
            n,
            m,
            m0,
            ef_construct,
            max_level,
            entry,
            off_levels,
            off_index,
            off_level0,
            off_upper,
            upper_blocks,
        })
    }

    /// The `ef`-best accepted nodes for `q`, nearest first (then cut to `k`).
    #[allow(clippy::too_many_arguments)]
    pub fn search<F: Fn(u32) -> bool>(
        &self,
        rows: Rows<'_>,
        metric: Distance,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: &F,
        rejecting: bool,
    ) -> Vec<Item> {
        if rows.len() < self.n {
            return Vec::new();
        }
        let rows = rows.first(self.n);
        let mut found = self.search_in(&Exact { rows, metric, q }, ef.max(k), accept, rejecting);
        found.truncate(k);
        found
    }

    /// Like `search`, but walking the graph on int8 `codes` (see `quant.rs`): the best
    /// `max(4·k, 20)` of the `ef` nodes found are rescored with `exact` (the f32 distance from
    /// `q` to a node), then cut to `k`.
    #[allow(clippy::too_many_arguments)]
    pub fn search_coded<F: Fn(u32) -> bool>(
        &self,
        codes: Codes<'_>,
        exact: &mut dyn FnMut(u32) -> Result<f32>,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: &F,
        rejecting: bool,
    ) -> Result<Vec<Item>> {
        if codes.len() < self.n || codes.dim != q.len() {
            return Ok(Vec::new());
        }
        let space = Coded {
            codes,
            q: quant::encode_query(q),
            nodes: self.n,
        };
        let mut found = self.search_in(&space, ef.max(k), accept, rejecting);
        // The codes rank well enough that the true top k sit among the first few k: only those
        // are rescored (on 100k x 384, rescoring 2·k gave the same recall as all ef, to four
        // decimals), which also keeps the f32 rows a query reads few.
        found.truncate((RESCORE_PER_K * k).max(RESCORE_MIN));
        for it in &mut found {
            it.d = exact(it.id)?;
        }
        found.sort_unstable();
        found.truncate(k);
        Ok(found)
    }

    /// Up to `ef` accepted nodes nearest in `space`, nearest first.
    fn search_in<S: Space, F: Fn(u32) -> bool>(
        &self,
        space: &S,
        ef: usize,
        accept: &F,
        rejecting: bool,
    ) -> Vec<Item> {
        if self.n == 0 || self.entry == NONE || space.nodes() < self.n {
            return Vec::new();
        }
        let mut cur = Item {
            d: space.dist(self.entry),
            id: self.entry,
        };
        for l in (1..=self.max_level).rev() {
            greedy(self, space, &mut cur, l);
        }
        search_level(self, space, &[cur], ef, 0, accept, rejecting)
    }

    /// Estimated recall@10 of searches at `ef`, leave-one-out: the neighbours of sampled rows
    /// (the row itself excluded) against an exact scan. The self-check after every build.
    pub fn self_check(
        &self,
        rows: Rows<'_>,
        metric: Distance,
        ef: usize,
        samples: usize,
        seed: u64,
    ) -> f32 {
        let n = self.n.min(rows.len());
        if n < 20 {
            return 1.0;
        }
        let k = 10;
        let mut x = seed | 1;
        let picks: Vec<u32> = (0..samples)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % n as u64) as u32
            })
            .collect();
        let hits: usize = crate::pool::install(|| {
            picks
                .par_iter()
                .map(|&a| {
                    let q = rows.get(a);
                    let mut exact: Vec<Item> = (0..n as u32)
                        .filter(|&i| i != a)
                        .map(|i| Item {
                            d: dist(metric, q, rows.get(i)),
                            id: i,
                        })
                        .collect();
                    exact.select_nth_unstable(k - 1);
                    let truth: Vec<u32> = exact[..k].iter().map(|i| i.id).collect();
                    let got = self.search(rows, metric, q, k, ef, &|i| i != a, true);
                    got.iter().filter(|g| truth.contains(&g.id)).count()
                })
                .sum()
        });
        hits as f32 / (samples * k) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clustered unit vectors: centres plus noise.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut x = seed | 1;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<f32> = (0..50 * dim).map(|_| rnd()).collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = &centres[(i % 50) * dim..(i % 50 + 1) * dim];
            let v: Vec<f32> = c.iter().map(|&c| c + 0.3 * rnd()).collect();
            distance::normalize_into(&v, &mut out);
        }
        out
    }

    /// A graph over `rows` built with `m` and `ef_construct`, seed 1.
    fn graph(rows: Rows<'_>, metric: Distance, m: usize, ef_construct: usize) -> Graph {
        let params = HnswParams { m, ef_construct };
        build(rows, metric, params, 1, &AtomicBool::new(false))
    }

    #[test]
    fn recall_is_high_and_rejected_nodes_are_never_returned() {
        let dim = 32;
        let data = clustered(5000, dim, 7);
        let rows = Rows::dense(&data, dim);
        let g = graph(rows, Distance::Cosine, 16, 100);
        let recall = g.self_check(rows, Distance::Cosine, 64, 100, 3);
        assert!(recall >= 0.95, "recall {recall}");
        let q = rows.get(17);
        let even = |i: u32| i.is_multiple_of(2);
        let got = g.search(rows, Distance::Cosine, q, 10, 64, &even, true);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|i| i.id % 2 == 0));
        // Round trip through bytes, as when written and mapped back.
        let bytes = g.as_bytes().to_vec();
        let mut file = vec![0u8; 64];
        file.extend_from_slice(&bytes);
        let g2 = Graph::from_mapped(Mapped::from_vec(file), 64, 5000, std::path::Path::new("g"));
        let g2 = match g2 {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        let a = g.search(rows, Distance::Cosine, q, 10, 64, &|_| true, false);
        let b = g2.search(rows, Distance::Cosine, q, 10, 64, &|_| true, false);
        assert_eq!(a, b);
    }

    #[test]
    fn filtered_traversal_keeps_recall_at_every_selectivity() {
        let dim = 32;
        let n = 5000;
        let data = clustered(n, dim, 13);
        let rows = Rows::dense(&data, dim);
        let g = graph(rows, Distance::Cosine, 16, 100);
        // Membership by a hash of the row, independent of the clusters.
        let member = |i: u32, per_mille: u64| {
            (u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 1000 < per_mille
        };
        for per_mille in [500, 100, 10] {
            let accept = |i: u32| member(i, per_mille);
            let (mut hits, mut want) = (0, 0);
            for qi in (0..n as u32).step_by(97) {
                let q = rows.get(qi);
                let mut truth: Vec<(f32, u32)> = (0..n as u32)
                    .filter(|&i| accept(i))
                    .map(|i| (dist(Distance::Cosine, q, rows.get(i)), i))
                    .collect();
                truth.sort_by(|a, b| a.0.total_cmp(&b.0));
                truth.truncate(10);
                let got = g.search(rows, Distance::Cosine, q, 10, 64, &accept, true);
                assert!(got.iter().all(|it| accept(it.id)));
                hits += truth
                    .iter()
                    .filter(|t| got.iter().any(|it| it.id == t.1))
                    .count();
                want += truth.len();
            }
            let recall = hits as f64 / want as f64;
            assert!(recall >= 0.95, "{per_mille}‰: recall {recall}");
        }
    }

    #[test]
    fn search_on_int8_codes_keeps_recall() {
        let dim = 48;
        let n = 4000;
        let data = clustered(n, dim, 21);
        let rows = Rows::dense(&data, dim);
        let g = graph(rows, Distance::Cosine, 16, 100);
        let scale = quant::scale_of(&data);
        let mut codes = Vec::new();
        quant::encode_into(&data, scale, &mut codes);
        let codes = Codes { data: &codes, dim };
        let (mut same, mut total) = (0, 0);
        for qi in (0..n as u32).step_by(41) {
            let q = rows.get(qi);
            let exact = g.search(rows, Distance::Cosine, q, 10, 64, &|_| true, false);
            let mut exact_dist = |id: u32| Ok(dist(Distance::Cosine, q, rows.get(id)));
            let coded = g
                .search_coded(codes, &mut exact_dist, q, 10, 64, &|_| true, false)
                .expect("no I/O here");
            assert_eq!(coded.len(), 10);
            // Rescored on f32: distances are exact and sorted.
            for w in coded.windows(2) {
                assert!(w[0].d <= w[1].d);
            }
            for it in &coded {
                assert_eq!(it.d, dist(Distance::Cosine, q, rows.get(it.id)));
            }
            same += coded
                .iter()
                .filter(|c| exact.iter().any(|e| e.id == c.id))
                .count();
            total += 10;
        }
        assert!(same as f64 / total as f64 >= 0.97, "overlap {same}/{total}");
    }

    #[test]
    fn extending_a_graph_keeps_recall() {
        let dim = 24;
        let data = clustered(4000, dim, 9);
        let first = Rows::dense(&data[..2000 * dim], dim);
        let all = Rows::dense(&data, dim);
        let base = graph(first, Distance::Dot, 12, 80);
        let g = extend(all, Distance::Dot, &base, 2, &AtomicBool::new(false));
        assert_eq!(g.n, 4000);
        let recall = g.self_check(all, Distance::Dot, 64, 100, 5);
        assert!(recall >= 0.95, "recall {recall}");
    }

    #[test]
    fn damaged_graph_files_are_rejected_not_trusted() {
        let dim = 8;
        let data = clustered(300, dim, 3);
        let rows = Rows::dense(&data, dim);
        let g = graph(rows, Distance::Euclid, 8, 40);
        let mut file = vec![0u8; 64];
        file.extend_from_slice(g.as_bytes());
        let p = std::path::Path::new("g");
        assert!(Graph::from_mapped(
            Mapped::from_vec(file[..file.len() - 4].to_vec()),
            64,
            300,
            p
        )
        .is_err());
        assert!(Graph::from_mapped(Mapped::from_vec(file.clone()), 64, 299, p).is_err());
        // Neighbour ids out of range are skipped at search time, not followed.
        let mut bad = file.clone();
        for chunk in bad[64 + 4 * 200..].chunks_exact_mut(4).step_by(3) {
            chunk.copy_from_slice(&u32::MAX.to_le_bytes());
        }
        if let Ok(g) = Graph::from_mapped(Mapped::from_vec(bad), 64, 300, p) {
            let _ = g.search(
                rows,
                Distance::Euclid,
                rows.get(0),
                10,
                40,
                &|_| true,
                false,
            );
        }
    }
}
