//! Search over a sparse vector: exact dot products. A sealed segment is searched through its
//! inverted index (pruned by score bounds when no weight is negative: `SparseFiles::top`), or,
//! when a filter leaves fewer rows than the query's posting lists hold, by scoring each
//! matching row's vector; frozen and appendable rows are scanned. As in Qdrant, a point
//! scores only if it shares a dimension with the query.

use super::search::{Cand, TopK};
use super::state::{State, MEM};
use crate::error::Result;
use crate::filter::rowset::RowSet;
use crate::filter::Filter;
use crate::point::SparseVector;
use crate::segment::sparse::Sink;

/// The shared best candidates, as a segment's pruned search fills them.
struct Into<'a> {
    top: &'a mut TopK,
    source: u32,
}

impl Sink for Into<'_> {
    fn floor(&self) -> f32 {
        self.top.floor()
    }

    fn push(&mut self, row: u32, key: f32) {
        self.top.push(Cand {
            key,
            source: self.source,
            row,
        })
    }
}

impl State {
    /// The best `n` candidates (key = dot product, at least `min_key`) for `q` against sparse
    /// vector `k`, among the points matching `filter`.
    pub fn search_sparse(
        &self,
        k: usize,
        q: &SparseVector,
        n: usize,
        min_key: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<Cand>> {
        let mut top = TopK::new(n, min_key);
        let filter = filter.filter(|f| !f.is_empty());
        for (i, s) in self.sources.iter().enumerate() {
            let src = i as u32;
            let allowed = match filter {
                Some(f) => Some(self.matching(src, f)?),
                None => None,
            };
            if allowed.as_ref().is_some_and(|a| a.count() == 0) {
                continue;
            }
            let mut sink = Into {
                top: &mut top,
                source: src,
            };
            let files = s.segment().and_then(|seg| seg.sparse(k));
            match (files, &allowed) {
                // The index, unless a filter leaves so few rows that scoring each is cheaper.
                (Some(files), a)
                    if a.as_ref().is_none_or(|a| {
                        a.count().saturating_mul(files.mean_nnz() + q.len()) > files.postings_of(q)
                    }) =>
                {
                    let none_deleted = s.deleted.count_ones() == 0;
                    let accept = |r: u32| match a {
                        Some(a) => a.contains(r as usize),
                        None => none_deleted || !s.deleted.get(r as usize),
                    };
                    // Pruned where every weight and value is non-negative, else scored whole.
                    if !files.top(q, &accept, &mut sink)? {
                        files.score(q, |r, key| {
                            if accept(r) {
                                sink.push(r, key);
                            }
                        })?;
                    }
                }
                _ => {
                    let rows: Box<dyn Iterator<Item = usize>> = match &allowed {
                        Some(a) => Box::new(a.iter()),
                        None => Box::new((0..s.rows()).filter(|&r| !s.deleted.get(r))),
                    };
                    for r in rows {
                        if let Some(key) = s.sparse(k, r)?.and_then(|v| v.dot(q)) {
                            sink.push(r as u32, key);
                        }
                    }
                }
            }
        }
        if !self.mem.is_empty() {
            let allowed: Option<RowSet> = match filter {
                Some(f) => Some(self.matching(MEM, f)?),
                None => None,
            };
            for (r, v) in self.mem.sparse[k].iter().enumerate() {
                if allowed.as_ref().is_some_and(|a| !a.contains(r)) {
                    continue;
                }
                if let Some(key) = v.as_ref().and_then(|v| v.dot(q)) {
                    top.push(Cand {
                        key,
                        source: MEM,
                        row: r as u32,
                    });
                }
            }
        }
        Ok(top.into_sorted())
    }
}
