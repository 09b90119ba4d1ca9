//! Search: a greedy descent through the upper levels, then a best-first search of level 0,
//! on the f32 rows or on a segment's codes (`index/quant/`).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{dist, Graph, Item, Links, Rows, NONE};
use crate::config::{CodeKind, Distance};
use crate::error::Result;
use crate::index::quant::{BinaryQuery, Codes, Estimator, Int4Query, Int8Query};
use crate::observe::trace::{self, Count, Phase};

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

/// Distances from one query to the graph's nodes.
pub(super) trait Distances {
    /// Nodes addressable (ids at or above are skipped).
    fn nodes(&self) -> usize;
    /// Start loading node `i`'s data.
    fn prefetch(&self, i: u32);
    /// Distance from the query to node `i`: lower is closer.
    fn dist(&self, i: u32) -> f32;
}

/// Exact distances on the f32 rows.
pub(super) struct Exact<'a> {
    pub(super) rows: Rows<'a>,
    pub(super) metric: Distance,
    pub(super) q: &'a [f32],
}

impl Distances for Exact<'_> {
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

/// Estimated (negated) dot products on a segment's codes.
struct Coded<'a, E> {
    codes: Codes<'a>,
    query: E,
    nodes: usize,
}

impl<E: Estimator> Distances for Coded<'_, E> {
    fn nodes(&self) -> usize {
        self.nodes
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        self.codes.prefetch(i);
    }

    #[inline]
    fn dist(&self, i: u32) -> f32 {
        -self.query.dot(self.codes.get(i))
    }
}

/// Best-first search of one level. `accept` says which nodes may be returned; rejected nodes
/// still route. Returns up to `ef` accepted nodes, nearest first.
#[allow(clippy::too_many_arguments)]
pub(super) fn search_level<L: Links, S: Distances, F: Fn(u32) -> bool>(
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
        let (mut expanded, mut computed) = (0u64, 0u64);
        while let Some(Reverse(c)) = cand.pop() {
            if c.d > bound {
                break;
            }
            expanded += 1;
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
            computed += fresh.len() as u64;
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
        trace::add(Count::NodesVisited, expanded);
        trace::add(Count::GraphDistances, computed);
        top.into_sorted_vec()
    })
}

/// Greedy walk on one upper level towards `q`.
pub(super) fn greedy<L: Links, S: Distances>(links: &L, space: &S, cur: &mut Item, level: usize) {
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

impl Graph {
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

    /// Like `search`, but walking the graph on `codes` (see `index/quant/`). With `rescore`,
    /// the best `rescore` of the `max(ef, rescore)` nodes found are rescored with `exact` (the
    /// f32 distance from `q` to a node), then cut to `k`; without, the codes' estimates are
    /// the distances.
    #[allow(clippy::too_many_arguments)]
    pub fn search_coded<F: Fn(u32) -> bool>(
        &self,
        codes: Codes<'_>,
        exact: &mut dyn FnMut(u32) -> Result<f32>,
        q: &[f32],
        k: usize,
        ef: usize,
        rescore: Option<usize>,
        accept: &F,
        rejecting: bool,
    ) -> Result<Vec<Item>> {
        if codes.len() < self.n || codes.dim != q.len() {
            return Ok(Vec::new());
        }
        let ef = ef.max(k).max(rescore.unwrap_or(0));
        let mut found = match codes.kind {
            CodeKind::Int8 => self.walk_codes::<Int8Query, F>(codes, q, ef, accept, rejecting),
            CodeKind::Int4 => self.walk_codes::<Int4Query, F>(codes, q, ef, accept, rejecting),
            CodeKind::Binary => self.walk_codes::<BinaryQuery, F>(codes, q, ef, accept, rejecting),
        };
        if let Some(n) = rescore {
            // The codes rank well enough that the true top k sit among the first few k: only
            // those are rescored, which also keeps the f32 rows a query reads few.
            found.truncate(n.max(k));
            let _s = trace::span(Phase::Rescore);
            trace::add(Count::Rescored, found.len() as u64);
            for it in &mut found {
                it.d = exact(it.id)?;
            }
            found.sort_unstable();
        }
        found.truncate(k);
        Ok(found)
    }

    fn walk_codes<E: Estimator, F: Fn(u32) -> bool>(
        &self,
        codes: Codes<'_>,
        q: &[f32],
        ef: usize,
        accept: &F,
        rejecting: bool,
    ) -> Vec<Item> {
        let space = Coded {
            query: E::new(&codes.params, q),
            codes,
            nodes: self.n,
        };
        self.search_in(&space, ef, accept, rejecting)
    }

    /// Up to `ef` accepted nodes nearest in `space`, nearest first.
    pub(super) fn search_in<S: Distances, F: Fn(u32) -> bool>(
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
}
