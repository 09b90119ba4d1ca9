//! The in-memory view of a collection: sources (sealed segments, and in-memory batches frozen
//! for sealing) plus the appendable rows. There is no global id index: an id is found in the
//! appendable rows' map, else by binary search in each source's id order, newest first. At most
//! one live copy of an id exists; replaced and deleted rows are marked in the source's bitmap.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::manifest::PayloadIndexDef;
use super::search::{self, Block, Cand, TopK, Tuning};
use crate::config::{CodeKind, Distance, Space};
use crate::error::{Error, Result};
use crate::filter::rowset::RowSet;
use crate::filter::Filter;
use crate::index::hnsw;
use crate::index::quant::Codes;
use crate::observe::trace::{self, span, Count, Phase};
use crate::payload::PayloadOp;
use crate::point::{Payload, PointId, SparseRef, SparseVector};
use crate::query::{PayloadSelector, Record, ScoredPoint, SearchParams};
use crate::segment::{Bitmap, Segment};

/// Source number of the appendable rows in a [`Loc`].
pub const MEM: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loc {
    pub source: u32,
    pub row: u32,
}

/// Rows written since the last freeze. Kept dense: a delete moves the last row into the hole.
#[derive(Default)]
pub struct MemRows {
    pub ids: Vec<PointId>,
    pub vectors: Vec<f32>,
    /// Per sparse vector of the collection, one entry per row.
    pub sparse: Vec<Vec<Option<SparseVector>>>,
    pub payloads: Vec<Option<Box<[u8]>>>,
    pub index: BTreeMap<PointId, u32>,
}

impl MemRows {
    pub fn new(sparse_fields: usize) -> Self {
        MemRows {
            sparse: vec![Vec::new(); sparse_fields],
            ..MemRows::default()
        }
    }

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

    /// Row `row`'s sparse vector `k`, if it has one.
    pub fn sparse(&self, k: usize, row: usize) -> Result<Option<SparseRef<'_>>> {
        match &self.kind {
            SourceKind::Sealed(s) => match s.sparse(k) {
                Some(files) => files.get(row),
                None => Ok(None),
            },
            SourceKind::Frozen(m) => Ok(m.sparse[k][row].as_ref().map(SparseVector::as_ref)),
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
pub struct PayloadPlan {
    pub ids: Vec<PointId>,
    pub vectors: Vec<f32>,
    /// Per sparse vector of the collection, one entry per point.
    pub sparse: Vec<Vec<Option<SparseVector>>>,
    pub payloads: Vec<Option<Box<[u8]>>>,
    pub found: Vec<Option<Loc>>,
}

impl PayloadPlan {
    fn new(sparse_fields: usize) -> Self {
        PayloadPlan {
            ids: Vec::new(),
            vectors: Vec::new(),
            sparse: vec![Vec::new(); sparse_fields],
            payloads: Vec::new(),
            found: Vec::new(),
        }
    }
}

/// Per sparse vector of a collection, what its IDF needs: how many live points have it, and
/// per dimension how many of those have that dimension. Kept up to date by every write.
#[derive(Clone, Debug, Default)]
pub struct SparseStats {
    pub points: u64,
    pub df: HashMap<u32, u32>,
}

impl SparseStats {
    fn add(&mut self, v: SparseRef<'_>) {
        self.points += 1;
        for &d in v.indices {
            *self.df.entry(d).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, v: SparseRef<'_>) {
        self.points = self.points.saturating_sub(1);
        for d in v.indices {
            if let Some(n) = self.df.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    self.df.remove(d);
                }
            }
        }
    }

    /// `q` with each weight times its dimension's IDF, as Qdrant computes it:
    /// `ln((N - df + 0.5) / (df + 0.5) + 1)` over the live points that have the vector.
    pub fn weigh(&self, q: &SparseVector) -> SparseVector {
        let n = self.points as f64;
        let values = q
            .indices
            .iter()
            .zip(&q.values)
            .map(|(d, &w)| {
                let df = f64::from(self.df.get(d).copied().unwrap_or(0));
                (f64::from(w) * ((n - df + 0.5) / (df + 0.5) + 1.0).ln()) as f32
            })
            .collect();
        SparseVector {
            indices: q.indices.clone(),
            values,
        }
    }
}

pub struct State {
    /// Values per stored row: all of a point's vectors (`CollectionConfig::width`).
    pub width: usize,
    /// Per sparse vector of the collection, its IDF statistics over the live points.
    pub sparse_stats: Vec<SparseStats>,
    pub sources: Vec<Source>,
    pub mem: MemRows,
    /// Live points.
    pub live: usize,
    /// The collection's payload index definitions (a copy of the manifest's).
    pub index_defs: Vec<PayloadIndexDef>,
}

impl State {
    /// An empty state for rows of `width` values and `sparse_fields` sparse vectors.
    pub fn new(width: usize, sparse_fields: usize) -> Self {
        State {
            width,
            sparse_stats: vec![SparseStats::default(); sparse_fields],
            sources: Vec::new(),
            mem: MemRows::new(sparse_fields),
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
        self.forget_sparse(loc);
        let s = &mut self.sources[loc.source as usize];
        if s.deleted.set(loc.row as usize) {
            s.dirty = true;
        }
    }

    /// Take the live point at `loc` out of the IDF statistics (before it is replaced or
    /// deleted). A sealed row whose file cannot be read is left counted (the read that needs
    /// the row reports the damage).
    fn forget_sparse(&mut self, loc: Loc) {
        for k in 0..self.sparse_stats.len() {
            let old = match loc.source {
                MEM => self.mem.sparse[k][loc.row as usize]
                    .as_ref()
                    .map(SparseVector::as_ref),
                s => self.sources[s as usize]
                    .sparse(k, loc.row as usize)
                    .ok()
                    .flatten(),
            };
            if let Some(v) = old {
                self.sparse_stats[k].remove(v);
            }
        }
    }

    /// The sparse vector `k` of the live point at `loc`, if it has it.
    pub fn sparse(&self, loc: Loc, k: usize) -> Result<Option<SparseRef<'_>>> {
        if loc.source == MEM {
            return Ok(self.mem.sparse[k][loc.row as usize]
                .as_ref()
                .map(SparseVector::as_ref));
        }
        self.sources[loc.source as usize].sparse(k, loc.row as usize)
    }

    /// Apply an upsert whose ids' current locations in the sources are `found` (looked up
    /// beforehand, so that this step cannot fail half-way).
    /// `sparse` holds, per sparse vector of the collection, one entry per point.
    pub fn apply_upsert(
        &mut self,
        ids: &[PointId],
        vectors: &[f32],
        mut sparse: Vec<Vec<Option<SparseVector>>>,
        payloads: Vec<Option<Box<[u8]>>>,
        found: &[Option<Loc>],
    ) {
        let dim = self.width;
        for (i, ((id, p), loc)) in ids.iter().zip(payloads).zip(found).enumerate() {
            let v = &vectors[i * dim..(i + 1) * dim];
            let row = match self.mem.index.get(id) {
                Some(&row) => {
                    self.forget_sparse(Loc { source: MEM, row });
                    let r = row as usize;
                    self.mem.vectors[r * dim..(r + 1) * dim].copy_from_slice(v);
                    self.mem.payloads[r] = p;
                    row
                }
                None => {
                    match loc {
                        Some(l) if l.source != MEM => self.mark_deleted(*l),
                        _ => self.live += 1,
                    }
                    let row = self.mem.ids.len() as u32;
                    self.mem.ids.push(id.clone());
                    self.mem.vectors.extend_from_slice(v);
                    self.mem.payloads.push(p);
                    for column in &mut self.mem.sparse {
                        column.push(None);
                    }
                    self.mem.index.insert(id.clone(), row);
                    row
                }
            };
            for (k, column) in sparse.iter_mut().enumerate() {
                let new = column.get_mut(i).and_then(Option::take);
                if let Some(v) = &new {
                    self.sparse_stats[k].add(v.as_ref());
                }
                self.mem.sparse[k][row as usize] = new;
            }
        }
    }

    /// The new payloads a payload operation gives the points among `ids` that exist (checked
    /// before logging, so applying the plan cannot fail). Ids must be distinct.
    pub fn plan_payload_op(&self, ids: &[PointId], op: &PayloadOp) -> Result<PayloadPlan> {
        let mut plan = PayloadPlan::new(self.sparse_stats.len());
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
            for (k, column) in plan.sparse.iter_mut().enumerate() {
                column.push(self.sparse(loc, k)?.map(SparseRef::to_owned));
            }
            plan.ids.push(id.clone());
            plan.payloads.push(bytes);
            plan.found.push((loc.source != MEM).then_some(loc));
        }
        Ok(plan)
    }

    /// New vectors for the points of `ids` that exist, keeping their payloads and the vectors
    /// not given as stored. `given` holds one row of `given_width` values per id (normalised
    /// already); each `(from, to, len)` of `copies` puts `given[from..from + len]` of a row at
    /// `to` in the stored row. `sparse` holds the sparse vectors given (by position in the
    /// config, one entry per id, `None`: removed). Ids must be distinct.
    pub fn plan_vector_update(
        &self,
        ids: &[PointId],
        given: &[f32],
        copies: &[(usize, usize, usize)],
        given_width: usize,
        sparse: &[(usize, Vec<Option<SparseVector>>)],
    ) -> Result<PayloadPlan> {
        let mut plan = PayloadPlan::new(self.sparse_stats.len());
        for (i, id) in ids.iter().enumerate() {
            let Some(loc) = self.locate(id)? else {
                continue;
            };
            let start = plan.vectors.len();
            plan.vectors.extend_from_slice(self.vector(loc));
            let row = &mut plan.vectors[start..];
            let v = &given[i * given_width..(i + 1) * given_width];
            for &(from, to, len) in copies {
                row[to..to + len].copy_from_slice(&v[from..from + len]);
            }
            for (k, column) in plan.sparse.iter_mut().enumerate() {
                let new = match sparse.iter().find(|(f, _)| *f == k) {
                    Some((_, values)) => values[i].clone(),
                    None => self.sparse(loc, k)?.map(SparseRef::to_owned),
                };
                column.push(new);
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
        self.apply_upsert(
            &plan.ids,
            &plan.vectors,
            plan.sparse,
            plan.payloads,
            &plan.found,
        );
        n
    }

    /// Apply a delete of ids whose locations in the sources are `found` (as for upserts).
    pub fn apply_delete(&mut self, ids: &[PointId], found: &[Option<Loc>]) -> usize {
        let dim = self.width;
        let mut removed = 0;
        for (id, loc) in ids.iter().zip(found) {
            if let Some(row) = self.mem.index.remove(id) {
                self.forget_sparse(Loc { source: MEM, row });
                let r = row as usize;
                let last = self.mem.ids.len() - 1;
                for column in &mut self.mem.sparse {
                    column.swap_remove(r);
                }
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
            sparse: self.sparse_vectors(loc, with_vector)?,
        })
    }

    /// Every sparse vector of the point at `loc` (none unless `wanted`).
    pub fn sparse_vectors(&self, loc: Loc, wanted: bool) -> Result<Vec<Option<SparseVector>>> {
        if !wanted {
            return Ok(Vec::new());
        }
        (0..self.sparse_stats.len())
            .map(|k| Ok(self.sparse(loc, k)?.map(SparseRef::to_owned)))
            .collect()
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
                Some(seg) if graph_choice(s, exact, full_scan_threshold).walks() => seg.graph(k),
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
        tuning: &Tuning,
    ) -> Result<Vec<Vec<Cand>>> {
        if let Some(f) = params.filter.as_ref().filter(|f| !f.is_empty()) {
            return self.search_filtered(sp, queries, n, min_key, params, tuning, f);
        }
        let graphs = self.graph_plan(sp.index, params.exact, tuning.full_scan_threshold)?;
        let used: Vec<bool> = graphs.iter().map(Option::is_some).collect();
        let blocks = self.exact_blocks(&used);
        let nq = queries.len() / sp.dim;
        let exact = if blocks.is_empty() {
            None
        } else {
            let _s = span(Phase::ExactScan);
            let rows: usize = blocks.iter().map(|b| b.vectors.len() / sp.stride).sum();
            let what = || format!("{} exact source(s), {rows} rows", blocks.len());
            Some(trace::step(
                what,
                "exact",
                |r: &Vec<Vec<Cand>>| r[0].len(),
                || {
                    trace::add(Count::ExactDistances, (rows * nq) as u64);
                    if nq == 1 {
                        vec![search::search_one(sp, queries, &blocks, n, min_key)]
                    } else {
                        search::search_many(sp, queries, &blocks, n, min_key)
                    }
                },
            ))
        };
        // Each graph with the codes it is walked on, if its segment has them.
        type Coded<'s> = Option<(&'s Segment, Codes<'s>)>;
        let mut graph_sources: Vec<(usize, &Arc<hnsw::Graph>, Coded<'_>)> = Vec::new();
        for (i, g) in graphs.iter().enumerate() {
            if let Some(g) = g {
                let coded = match self.sources[i].segment().filter(|_| tuning.use_codes) {
                    Some(seg) => seg.codes(sp.index)?.map(|c| (&**seg, c)),
                    None => None,
                };
                graph_sources.push((i, g, coded));
            }
        }
        if graph_sources.is_empty() {
            return Ok(exact.unwrap_or_else(|| vec![Vec::new(); nq]));
        }
        let ef = params.ef.unwrap_or(tuning.ef_construct).max(n);
        // One source's walk for query `q`, as candidates.
        let walk = |&(i, g, coded): &(usize, &Arc<hnsw::Graph>, Coded<'_>),
                    q: &[f32]|
         -> Result<Vec<Cand>> {
            let s = &self.sources[i];
            let deleted = &s.deleted;
            // Rows lacking this vector are graph nodes but never results.
            let absent = s.segment().and_then(|seg| seg.absent(sp));
            let rejecting = deleted.count_ones() > 0 || absent.is_some();
            let accept =
                |r: u32| !deleted.get(r as usize) && !absent.is_some_and(|a| a.get(r as usize));
            let _s = span(Phase::Graph);
            let found = trace::step(
                || self.source_label(i as u32),
                method(true, coded.map(|(_, c)| c.kind)),
                found_len,
                || {
                    search::graph_search(
                        g,
                        coded,
                        tuning,
                        s.vectors(),
                        sp,
                        q,
                        n,
                        ef,
                        &accept,
                        rejecting,
                    )
                },
            )?;
            Ok(found
                .into_iter()
                .map(|item| Cand {
                    key: -item.d,
                    source: i as u32,
                    row: item.id,
                })
                .collect())
        };
        // One query over several large graphs walks them in parallel: the pool's threads are
        // otherwise idle while it runs. Batches already spread their queries over the pool, and
        // a traced call stays on its thread (the trace is the calling thread's).
        let parallel =
            walks_in_parallel(nq, graph_sources.iter().map(|(_, g, _)| g.n)) && !trace::active();
        let one_query = |q: &[f32]| -> Result<Vec<Cand>> {
            let mut top = TopK::new(n, min_key);
            let found: Vec<Vec<Cand>> = if parallel {
                use rayon::prelude::*;
                crate::pool::install(|| {
                    graph_sources
                        .par_iter()
                        .map(|src| walk(src, q))
                        .collect::<Result<_>>()
                })?
            } else {
                graph_sources
                    .iter()
                    .map(|src| walk(src, q))
                    .collect::<Result<_>>()?
            };
            for c in found.into_iter().flatten() {
                top.push(c);
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

    /// How `explain` and the profiler name source `src`.
    pub fn source_label(&self, src: u32) -> String {
        if src == MEM {
            return "appendable rows".into();
        }
        match &self.sources[src as usize].kind {
            SourceKind::Sealed(seg) => format!("segment {}", seg.id),
            SourceKind::Frozen(_) => "rows being sealed".into(),
        }
    }

    pub fn scored(
        &self,
        metric: Distance,
        cands: &[Cand],
        params: &SearchParams,
    ) -> Result<Vec<ScoredPoint>> {
        let _s = span(Phase::PayloadRead);
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
                    sparse: self.sparse_vectors(loc, params.with_vector)?,
                    order_value: None,
                })
            })
            .collect()
    }
}

/// How many candidates a traced step found.
pub(super) fn found_len<T>(r: &Result<Vec<T>>) -> usize {
    r.as_ref().map_or(0, Vec::len)
}

/// How a search treats one source, and why: decided on every search, so it is a plain value;
/// its words are made only when `explain` or the profiler asks (`Display`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Choice {
    /// Walk its graph: indexed, with this many rows (at least `full_scan_threshold`).
    Indexed {
        rows: usize,
        threshold: usize,
    },
    ExactAsked,
    /// Appendable rows (written since the last checkpoint).
    Appendable,
    /// Rows being sealed into a segment.
    Sealing,
    /// Too few rows for a graph to pay.
    Small {
        rows: usize,
        threshold: usize,
    },
    NotIndexed,
    /// Filtered: scoring the matching rows against a filtered walk's cost, in rows.
    Filtered {
        walk: bool,
        matching: usize,
        live: usize,
        walk_cost: f64,
        ef: usize,
    },
}

/// A single query walks the graphs of several sources in parallel when at least two have this
/// many nodes (a walk of a smaller graph takes less than handing it to another thread costs).
const PARALLEL_GRAPH_MIN_ROWS: usize = 50_000;

/// Whether `nq` queries over graphs of these sizes walk them in parallel: one query, at least
/// two graphs of `PARALLEL_GRAPH_MIN_ROWS`, and a pool of more than one thread.
pub(super) fn walks_in_parallel(nq: usize, graph_nodes: impl Iterator<Item = usize>) -> bool {
    nq == 1
        && graph_nodes
            .filter(|&n| n >= PARALLEL_GRAPH_MIN_ROWS)
            .count()
            > 1
        && crate::pool::num_threads() > 1
}

/// How `explain` and the profiler name a way of searching a source.
pub(super) fn method(walks: bool, codes: Option<CodeKind>) -> &'static str {
    match (walks, codes) {
        (true, Some(CodeKind::Int8)) => "graph on int8 codes",
        (true, Some(CodeKind::Int4)) => "graph on int4 codes",
        (true, Some(CodeKind::Binary)) => "graph on binary codes",
        (true, None) => "graph",
        _ => "exact",
    }
}

/// How they name scoring a source's matching rows one by one (on its codes, then rescored, or
/// on f32), after a filtered walk found too few or instead of one.
pub(super) fn method_scan(codes: Option<CodeKind>, after_walk: bool) -> &'static str {
    match (codes, after_walk) {
        (Some(CodeKind::Int8), _) => "int8 codes over matching rows, rescored",
        (Some(CodeKind::Int4), _) => "int4 codes over matching rows, rescored",
        (Some(CodeKind::Binary), _) => "binary codes over matching rows, rescored",
        (None, true) => "exact (the filtered walk found too few)",
        (None, false) => "exact over matching rows",
    }
}

/// How they name a filtered walk of a graph.
pub(super) fn method_filtered(codes: Option<CodeKind>) -> &'static str {
    match codes {
        Some(CodeKind::Int8) => "filtered graph on int8 codes",
        Some(CodeKind::Int4) => "filtered graph on int4 codes",
        Some(CodeKind::Binary) => "filtered graph on binary codes",
        None => "filtered graph",
    }
}

impl Choice {
    pub(super) fn walks(self) -> bool {
        matches!(
            self,
            Choice::Indexed { .. } | Choice::Filtered { walk: true, .. }
        )
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Choice::Indexed { rows, threshold } => {
                write!(f, "indexed, {rows} rows (at least full_scan_threshold, {threshold})")
            }
            Choice::ExactAsked => f.write_str("exact search was asked for"),
            Choice::Appendable => f.write_str(
                "appendable rows (written since the last checkpoint) are scanned exactly",
            ),
            Choice::Sealing => f.write_str("rows being sealed are scanned exactly"),
            Choice::Small { rows, threshold } => write!(
                f,
                "{rows} rows, fewer than full_scan_threshold ({threshold}): scanning is cheaper"
            ),
            Choice::NotIndexed => {
                f.write_str("not indexed yet: the optimizer has not built its graph")
            }
            Choice::Filtered {
                walk,
                matching,
                live,
                walk_cost,
                ef,
            } => write!(
                f,
                "{matching} matching rows ({:.1}% of {live}) cost {} to score than a filtered walk (about {walk_cost:.0} rows' worth at ef {ef})",
                100.0 * matching as f64 / live.max(1) as f64,
                if walk { "more" } else { "less" }
            ),
        }
    }
}

/// Whether an unfiltered search walks source `s`'s graph, and why.
pub(super) fn graph_choice(s: &Source, exact: bool, full_scan_threshold: usize) -> Choice {
    match s.segment() {
        _ if exact => Choice::ExactAsked,
        None => Choice::Sealing,
        Some(_) if s.rows() < full_scan_threshold => Choice::Small {
            rows: s.rows(),
            threshold: full_scan_threshold,
        },
        Some(_) if !s.has_graph() => Choice::NotIndexed,
        Some(_) => Choice::Indexed {
            rows: s.rows(),
            threshold: full_scan_threshold,
        },
    }
}
