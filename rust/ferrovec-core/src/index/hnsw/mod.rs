//! Our HNSW graph, in hnswlib's layout: each node's level-0 neighbours are a fixed-size `u32`
//! block (`count, ids...`, `2·m` slots) in one flat array; nodes above level 0 own consecutive
//! `m`-slot blocks in a second array. The flat form is what is written to disk and mapped back.
//!
//! Build: nodes get random levels up front; insertions run in parallel (rayon), each node's link
//! lists behind its own mutex, with hnswlib's neighbour-selection heuristic applied both to the
//! new node's links and, when a neighbour's list is full, to that neighbour's reverse links.
//! The build measures distances in a `BuildSpace`: a merge builds on int8 codes (`space.rs`).
//! Search: greedy descent through the upper levels, then a best-first search of level 0 with a
//! reusable epoch-tagged visited array per thread. Nodes the caller rejects (deleted, filtered
//! out) still route the search but are never returned.

mod build;
mod check;
mod search;
mod space;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use crate::config::Distance;
use crate::distance;
use crate::error::{Error, Result};
use crate::io::Mapped;

pub use build::{build, extend, Stop};
pub use space::{BuildSpace, CodeSpace, RowSpace};

/// Highest level a node may get (hnswlib caps levels the same way in practice).
const MAX_LEVEL: usize = 16;
const NONE: u32 = u32::MAX;
/// Words of the graph file's parameter block.
const PARAM_WORDS: usize = 8;
/// A search on codes rescores at least this many candidates on f32 (with `oversampling`
/// per result wanted above it).
pub(crate) const RESCORE_MIN: usize = 20;

/// How many candidates a search on codes rescores on f32: `oversampling` per result wanted,
/// and at least `RESCORE_MIN`.
pub fn rescore_count(k: usize, oversampling: f32) -> usize {
    ((k as f32 * oversampling).ceil() as usize).max(RESCORE_MIN)
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
    pub fn of(data: &'a [f32], space: crate::config::Space) -> Self {
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
    pub(super) fn prefetch(&self, i: u32) {
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
}
