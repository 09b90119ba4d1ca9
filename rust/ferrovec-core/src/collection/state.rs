//! The in-memory view of a collection: sources (sealed segments, and in-memory batches frozen
//! for sealing) plus the appendable rows. There is no global id index: an id is found in the
//! appendable rows' map, else by binary search in each source's id order, newest first. At most
//! one live copy of an id exists; replaced and deleted rows are marked in the source's bitmap.

use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;
use std::sync::Arc;

use super::manifest::PayloadIndexDef;
use super::search::{self, Block, Cand, TopK};
use crate::config::{Distance, Space};
use crate::error::{Error, Result};
use crate::filter::rowset::RowSet;
use crate::filter::Filter;
use crate::index::hnsw;
use crate::index::quant::Codes;
use crate::payload::PayloadOp;
use crate::point::{Payload, PointId};
use crate::query::{PayloadSelector, Record, ScoredPoint, SearchParams};
use crate::segment::{Bitmap, Segment};

/// Source number of the appendable rows in a [`Loc`].
pub const MEM: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub source: u32,
    pub row: u32,
}

/// Rows written since the last freeze. Kept dense: a delete moves the last row into the hole.
#[derive(Default)]
pub struct MemRows {
    pub ids: Vec<PointId>,
    pub vectors: Vec<f32>,
    pub payloads: Vec<Option<Box<[u8]>>>,
    pub index: BTreeMap<PointId, u32>,
}

impl MemRows {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

pub enum SourceKind {
    Sealed(Arc<Segment>),
    /// Appendable rows frozen by a checkpoint, searchable until their segment is installed.
    Frozen(Arc<MemRows>),
}

pub struct Source {
    pub kind: SourceKind,
    pub deleted: Bitmap,
    /// Rows were deleted since the bitmap was last written.
    pub dirty: bool,
}

impl Source {
    pub fn rows(&self) -> usize {
        match &self.kind {
            SourceKind::Sealed(s) => s.rows,
            SourceKind::Frozen(m) => m.len(),
        }
    }

    pub fn live(&self) -> usize {
        self.rows() - self.deleted.count_ones()
    }

    pub fn vectors(&self) -> &[f32] {
        match &self.kind {
            SourceKind::Sealed(s) => s.vectors(),
            SourceKind::Frozen(m) => &m.vectors,
        }
    }

    pub fn segment(&self) -> Option<&Arc<Segment>> {
        match &self.kind {
            SourceKind::Sealed(s) => Some(s),
            SourceKind::Frozen(_) => None,
        }
    }

    pub fn has_graph(&self) -> bool {
        self.segment().is_some_and(|s| s.has_graph())
    }

    fn id(&self, row: usize) -> Result<PointId> {
        match &self.kind {
            SourceKind::Sealed(s) => s.id(row),
            SourceKind::Frozen(m) => Ok(m.ids[row].clone()),
        }
    }

    fn payload(&self, row: usize) -> Result<Option<&[u8]>> {
        match &self.kind {
            SourceKind::Sealed(s) => s.payload(row),
            SourceKind::Frozen(m) => Ok(m.payloads[row].as_deref()),
        }
    }

    /// The live row holding `id` here, if any.
    pub(super) fn find_live(&self, id: &PointId) -> Result<Option<usize>> {
        match &self.kind {
            SourceKind::Sealed(s) => Ok(s.find(id)?.into_iter().find(|&r| !self.deleted.get(r))),
            SourceKind::Frozen(m) => Ok(m
                .index
                .get(id)
                .map(|&r| r as usize)
                .filter(|&r| !self.deleted.get(r))),
        }
    }

    /// Live (id, row) pairs in id order, from `start` on, at most `limit` of them; only rows
    /// in `only` when given.
    fn ordered(
        &self,
        start: Option<&PointId>,
        limit: usize,
        only: Option<&RowSet>,
    ) -> Result<Vec<(PointId, usize)>> {
        let keep = |row: usize| !self.deleted.get(row) && only.is_none_or(|o| o.contains(row));
        let mut out = Vec::new();
        match &self.kind {
            SourceKind::Sealed(s) => {
                let mut i = match start {
                    Some(id) => s.lower_bound(id)?,
                    None => 0,
                };
                while i < s.rows && out.len() < limit {
                    let row = s.row_in_order(i)?;
                    if keep(row) {
                        out.push((s.id(row)?, row));
                    }
                    i += 1;
                }
            }
            SourceKind::Frozen(m) => {
                let iter: Box<dyn Iterator<Item = (&PointId, &u32)>> = match start {
                    Some(id) => Box::new(m.index.range(id.clone()..)),
                    None => Box::new(m.index.iter()),
                };
                for (id, &row) in iter {
                    if out.len() >= limit {
                        break;
                    }
                    if keep(row as usize) {
                        out.push((id.clone(), row as usize));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A payload operation resolved to the points it rewrites.
#[derive(Default)]
pub struct PayloadPlan {
    pub ids: Vec<PointId>,
    pub vectors: Vec<f32>,
    pub payloads: Vec<Option<Box<[u8]>>>,
    pub found: Vec<Option<Loc>>,
}

pub struct State {
    /// Values per stored row: all of a point's vectors (`CollectionConfig::width`).
    pub width: usize,
    pub sources: Vec<Source>,
    pub mem: MemRows,
    /// Live points.
    pub live: usize,
    /// The collection's payload index definitions (a copy of the manifest's).
    pub index_defs: Vec<PayloadIndexDef>,
}

impl State {
    /// An empty state for rows of `width` values.
    pub fn new(width: usize) -> Self {
        State {
            width,
            sources: Vec::new(),
            mem: MemRows::default(),
            live: 0,
            index_defs: Vec::new(),
        }
    }

    /// Where `id` lives now, if anywhere.
    pub fn locate(&self, id: &PointId) -> Result<Option<Loc>> {
        if let Some(&row) = self.mem.index.get(id) {
            return Ok(Some(Loc { source: MEM, row }));
        }
        for (i, s) in self.sources.iter().enumerate().rev() {
            if let Some(row) = s.find_live(id)? {
                return Ok(Some(Loc {
                    source: i as u32,
                    row: row as u32,
                }));
            }
        }
        Ok(None)
    }

    fn mark_deleted(&mut self, loc: Loc) {
        let s = &mut self.sources[loc.source as usize];
        if s.deleted.set(loc.row as usize) {
            s.dirty = true;
        }
    }

    /// Apply an upsert whose ids' current locations in the sources are `found` (looked up
    /// beforehand, so that this step cannot fail half-way).
    pub fn apply_upsert(
        &mut self,
        ids: &[PointId],
        vectors: &[f32],
        payloads: Vec<Option<Box<[u8]>>>,
        found: &[Option<Loc>],
    ) {
        let dim = self.width;
        for (((id, v), p), loc) in ids
            .iter()
            .zip(vectors.chunks_exact(dim))
            .zip(payloads)
            .zip(found)
        {
            if let Some(&row) = self.mem.index.get(id) {
                let r = row as usize;
                self.mem.vectors[r * dim..(r + 1) * dim].copy_from_slice(v);
                self.mem.payloads[r] = p;
                continue;
            }
            match loc {
                Some(l) if l.source != MEM => self.mark_deleted(*l),
                _ => self.live += 1,
            }
            let row = self.mem.ids.len() as u32;
            self.mem.ids.push(id.clone());
            self.mem.vectors.extend_from_slice(v);
            self.mem.payloads.push(p);
            self.mem.index.insert(id.clone(), row);
        }
    }

    /// The new payloads a payload operation gives the points among `ids` that exist (checked
    /// before logging, so applying the plan cannot fail). Ids must be distinct.
    pub fn plan_payload_op(&self, ids: &[PointId], op: &PayloadOp) -> Result<PayloadPlan> {
        let mut plan = PayloadPlan::default();
        for id in ids {
            let Some(loc) = self.locate(id)? else {
                continue;
            };
            let current = self
                .payload(loc, &PayloadSelector::All)?
                .unwrap_or_default();
            let new = op.apply(current);
            let bytes = if new.is_empty() {
                None
            } else {
                Some(
                    serde_json::to_vec(&new)
                        .map_err(|e| Error::invalid(format!("payload is not serialisable: {e}")))?
                        .into_boxed_slice(),
                )
            };
            plan.vectors.extend_from_slice(self.vector(loc));
            plan.ids.push(id.clone());
            plan.payloads.push(bytes);
            plan.found.push((loc.source != MEM).then_some(loc));
        }
        Ok(plan)
    }

    /// New vectors for the points of `ids` that exist, keeping their payloads and the vectors
    /// not given as stored. `given` holds one row of `given_width` values per id (normalised
    /// already); each `(from, to, len)` of `copies` puts `given[from..from + len]` of a row at
    /// `to` in the stored row. Ids must be distinct.
    pub fn plan_vector_update(
        &self,
        ids: &[PointId],
        given: &[f32],
        copies: &[(usize, usize, usize)],
        given_width: usize,
    ) -> Result<PayloadPlan> {
        let mut plan = PayloadPlan::default();
        for (id, v) in ids.iter().zip(given.chunks_exact(given_width)) {
            let Some(loc) = self.locate(id)? else {
                continue;
            };
            let start = plan.vectors.len();
            plan.vectors.extend_from_slice(self.vector(loc));
            let row = &mut plan.vectors[start..];
            for &(from, to, len) in copies {
                row[to..to + len].copy_from_slice(&v[from..from + len]);
            }
            plan.ids.push(id.clone());
            plan.payloads.push(self.payload_bytes(loc)?.map(Box::from));
            plan.found.push((loc.source != MEM).then_some(loc));
        }
        Ok(plan)
    }

    /// Apply a plan: each point is rewritten into the appendable rows (new payload or vector).
    pub fn apply_payload_plan(&mut self, plan: PayloadPlan) -> usize {
        let n = plan.ids.len();
        self.apply_upsert(&plan.ids, &plan.vectors, plan.payloads, &plan.found);
        n
    }

    /// Apply a delete of ids whose locations in the sources are `found` (as for upserts).
    pub fn apply_delete(&mut self, ids: &[PointId], found: &[Option<Loc>]) -> usize {
        let dim = self.width;
        let mut removed = 0;
        for (id, loc) in ids.iter().zip(found) {
            if let Some(row) = self.mem.index.remove(id) {
                let r = row as usize;
                let last = self.mem.ids.len() - 1;
                if r != last {
                    self.mem.ids.swap(r, last);
                    self.mem.payloads.swap(r, last);
                    let (head, tail) = self.mem.vectors.split_at_mut(last * dim);
                    head[r * dim..(r + 1) * dim].copy_from_slice(&tail[..dim]);
                    self.mem.index.insert(self.mem.ids[r].clone(), row);
                }
                self.mem.ids.pop();
                self.mem.payloads.pop();
                self.mem.vectors.truncate(last * dim);
            } else if let Some(l) = loc.filter(|l| l.source != MEM) {
                self.mark_deleted(l);
            } else {
                continue;
            }
            self.live -= 1;
            removed += 1;
        }
        removed
    }

    /// Look up every id in the sources (not the appendable rows, which apply re-checks).
    pub fn locate_all(&self, ids: &[PointId]) -> Result<Vec<Option<Loc>>> {
        ids.iter()
            .map(|id| {
                if self.mem.index.contains_key(id) {
                    return Ok(None);
                }
                self.locate(id)
            })
            .collect()
    }

    pub fn vector(&self, loc: Loc) -> &[f32] {
        let (r, dim) = (loc.row as usize, self.width);
        if loc.source == MEM {
            &self.mem.vectors[r * dim..(r + 1) * dim]
        } else {
            &self.sources[loc.source as usize].vectors()[r * dim..(r + 1) * dim]
        }
    }

    pub fn id(&self, loc: Loc) -> Result<PointId> {
        if loc.source == MEM {
            Ok(self.mem.ids[loc.row as usize].clone())
        } else {
            self.sources[loc.source as usize].id(loc.row as usize)
        }
    }

    /// A point's payload as stored (JSON), `None` if it has none.
    fn payload_bytes(&self, loc: Loc) -> Result<Option<&[u8]>> {
        if loc.source == MEM {
            Ok(self.mem.payloads[loc.row as usize].as_deref())
        } else {
            self.sources[loc.source as usize].payload(loc.row as usize)
        }
    }

    pub fn payload(&self, loc: Loc, sel: &PayloadSelector) -> Result<Option<Payload>> {
        if *sel == PayloadSelector::None {
            return Ok(None);
        }
        let Some(bytes) = self.payload_bytes(loc)? else {
            return Ok(Some(Payload::new()));
        };
        let p: Payload = serde_json::from_slice(bytes).map_err(|e| {
            Error::corrupt(
                PathBuf::from("segments"),
                format!("stored payload is not valid JSON: {e}"),
            )
        })?;
        Ok(Some(match sel {
            PayloadSelector::Include(tree) => tree.include_map(&p),
            PayloadSelector::Exclude(tree) => tree.exclude_map(&p),
            PayloadSelector::None | PayloadSelector::All => p,
        }))
    }

    pub fn record(&self, loc: Loc, sel: &PayloadSelector, with_vector: bool) -> Result<Record> {
        Ok(Record {
            id: self.id(loc)?,
            payload: self.payload(loc, sel)?,
            vector: with_vector.then(|| self.vector(loc).to_vec()),
        })
    }

    /// Up to `limit` live points in id order from `offset`, and the next page's first id.
    pub fn scroll(
        &self,
        limit: usize,
        offset: Option<&PointId>,
        sel: &PayloadSelector,
        with_vector: bool,
        filter: Option<&Filter>,
    ) -> Result<(Vec<Record>, Option<PointId>)> {
        let filter = filter.filter(|f| !f.is_empty());
        let set_of = |src: u32| filter.map(|f| self.matching(src, f)).transpose();
        let mem_set = set_of(MEM)?;
        // Each source yields its first limit+1 live ids from `offset`; merging them gives the
        // first limit+1 overall (ids are unique among live points).
        let want = limit.saturating_add(1);
        let mut merged: BinaryHeap<std::cmp::Reverse<(PointId, u32, u32)>> = BinaryHeap::new();
        let mem_iter: Box<dyn Iterator<Item = (&PointId, &u32)>> = match offset {
            Some(o) => Box::new(self.mem.index.range(o.clone()..)),
            None => Box::new(self.mem.index.iter()),
        };
        let mem_keep = |row: u32| mem_set.as_ref().is_none_or(|m| m.contains(row as usize));
        for (id, &row) in mem_iter.filter(|(_, &r)| mem_keep(r)).take(want) {
            merged.push(std::cmp::Reverse((id.clone(), MEM, row)));
        }
        for (i, s) in self.sources.iter().enumerate() {
            let only = set_of(i as u32)?;
            for (id, row) in s.ordered(offset, want, only.as_ref())? {
                merged.push(std::cmp::Reverse((id, i as u32, row as u32)));
            }
        }
        let mut out = Vec::with_capacity(limit.min(merged.len()));
        while out.len() < limit {
            let Some(std::cmp::Reverse((_, source, row))) = merged.pop() else {
                break;
            };
            out.push(self.record(Loc { source, row }, sel, with_vector)?);
        }
        let next = merged.pop().map(|r| r.0 .0);
        Ok((out, next))
    }

    /// Exactly-scanned blocks: every source without a usable graph (all of them when `exact`),
    /// and the appendable rows.
    fn exact_blocks(&self, graphs_used: &[bool]) -> Vec<Block<'_>> {
        let width = self.width;
        let mut blocks: Vec<Block<'_>> = self
            .sources
            .iter()
            .enumerate()
            .filter(|(i, _)| !graphs_used[*i])
            .map(|(i, s)| Block {
                source: i as u32,
                first_row: 0,
                vectors: s.vectors(),
                deleted: Some(&s.deleted),
            })
            .collect();
        if !self.mem.is_empty() {
            blocks.push(Block {
                source: MEM,
                first_row: 0,
                vectors: &self.mem.vectors[..self.mem.len() * width],
                deleted: None,
            });
        }
        blocks
    }

    /// Which sources to search through their graph of vector `k`.
    fn graph_plan(
        &self,
        k: usize,
        exact: bool,
        full_scan_threshold: usize,
    ) -> Result<Vec<Option<Arc<hnsw::Graph>>>> {
        self.sources
            .iter()
            .map(|s| match s.segment() {
                Some(seg) if !exact && s.rows() >= full_scan_threshold => seg.graph(k),
                _ => Ok(None),
            })
            .collect()
    }

    /// The best `n` candidates for each query (`queries` holds whole vectors `sp`), among the
    /// points matching `params.filter` if it has one.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        sp: Space,
        queries: &[f32],
        n: usize,
        min_key: f32,
        params: &SearchParams,
        ef_construct: usize,
        full_scan_threshold: usize,
    ) -> Result<Vec<Vec<Cand>>> {
        if let Some(f) = params.filter.as_ref().filter(|f| !f.is_empty()) {
            return self.search_filtered(
                sp,
                queries,
                n,
                min_key,
                params,
                ef_construct,
                full_scan_threshold,
                f,
            );
        }
        let graphs = self.graph_plan(sp.index, params.exact, full_scan_threshold)?;
        let used: Vec<bool> = graphs.iter().map(Option::is_some).collect();
        let blocks = self.exact_blocks(&used);
        let nq = queries.len() / sp.dim;
        let exact = if blocks.is_empty() {
            None
        } else if nq == 1 {
            Some(vec![search::search_one(sp, queries, &blocks, n, min_key)])
        } else {
            Some(search::search_many(sp, queries, &blocks, n, min_key))
        };
        // Each graph with the int8 codes it is walked on, if its segment has them.
        type Coded<'s> = Option<(&'s Segment, Codes<'s>)>;
        let mut graph_sources: Vec<(usize, &Arc<hnsw::Graph>, Coded<'_>)> = Vec::new();
        for (i, g) in graphs.iter().enumerate() {
            if let Some(g) = g {
                let coded = match self.sources[i].segment() {
                    Some(seg) => seg.codes(sp.index)?.map(|c| (&**seg, c)),
                    None => None,
                };
                graph_sources.push((i, g, coded));
            }
        }
        if graph_sources.is_empty() {
            return Ok(exact.unwrap_or_else(|| vec![Vec::new(); nq]));
        }
        let ef = params.ef.unwrap_or(ef_construct).max(n);
        let one_query = |q: &[f32]| -> Result<Vec<Cand>> {
            let mut top = TopK::new(n, min_key);
            for &(i, g, coded) in &graph_sources {
                let s = &self.sources[i];
                let deleted = &s.deleted;
                // Rows lacking this vector are graph nodes but never results.
                let absent = s.segment().and_then(|seg| seg.absent(sp));
                let rejecting = deleted.count_ones() > 0 || absent.is_some();
                let accept =
                    |r: u32| !deleted.get(r as usize) && !absent.is_some_and(|a| a.get(r as usize));
                let found =
                    search::graph_search(g, coded, s.vectors(), sp, q, n, ef, &accept, rejecting)?;
                for item in found {
                    top.push(Cand {
                        key: -item.d,
                        source: i as u32,
                        row: item.id,
                    });
                }
            }
            Ok(top.into_sorted())
        };
        let graph_results = search::each_query(queries, sp.dim, one_query)?;
        // Merge only when both the graphs and the exact scan produced candidates.
        let Some(exact) = exact else {
            return Ok(graph_results);
        };
        Ok(exact
            .into_iter()
            .zip(graph_results)
            .map(|(e, g)| {
                let mut top = TopK::new(n, min_key);
                for c in e.into_iter().chain(g) {
                    top.push(c);
                }
                top.into_sorted()
            })
            .collect())
    }

    pub fn scored(
        &self,
        metric: Distance,
        cands: &[Cand],
        params: &SearchParams,
    ) -> Result<Vec<ScoredPoint>> {
        cands
            .iter()
            .skip(params.offset)
            .map(|c| {
                let loc = Loc {
                    source: c.source,
                    row: c.row,
                };
                Ok(ScoredPoint {
                    id: self.id(loc)?,
                    score: search::score_of(metric, c.key),
                    payload: self.payload(loc, &params.with_payload)?,
                    vector: params.with_vector.then(|| self.vector(loc).to_vec()),
                })
            })
            .collect()
    }
}
